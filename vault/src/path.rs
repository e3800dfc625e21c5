//! Validated object keys and names.
//!
//! An object key `a/b/c.txt` is the file `a/b/c.txt` of a vault and a key ending in `/` is a
//! directory marker. Keys that cannot be a path are refused here rather than normalised, so a
//! client never finds its object under a different key than the one it wrote.

use std::fmt;

/// The longest key S3 accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// The longest name of one path segment, in bytes, as most Linux filesystems allow.
pub const MAX_SEGMENT_LEN: usize = 255;

/// Why a key cannot name an entry of a vault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKey {
    /// The key is empty.
    #[error("the key is empty")]
    Empty,
    /// The key is longer than S3 allows.
    #[error("the key is {len} bytes long; keys may be at most {MAX_KEY_LEN} bytes")]
    TooLong {
        /// The key's length in bytes.
        len: usize,
    },
    /// The key holds a NUL byte, which no path can contain.
    #[error("the key contains a NUL character")]
    Nul,
    /// The key starts with `/` or holds `//`, an empty path segment.
    #[error("the key has an empty path segment (a leading '/' or '//')")]
    EmptySegment,
    /// A segment is `.` or `..`.
    #[error("the key has a '.' or '..' path segment")]
    DotSegment,
    /// A segment is longer than a file name may be.
    #[error("a path segment of the key is {len} bytes long; at most {MAX_SEGMENT_LEN} are allowed")]
    SegmentTooLong {
        /// The offending segment's length in bytes.
        len: usize,
    },
}

/// An object key that is also a valid vault path.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Checks `key` and wraps it.
    ///
    /// # Errors
    /// Returns the reason when the key cannot be a path inside a vault.
    pub fn parse(key: &str) -> Result<Self, InvalidKey> {
        if key.is_empty() {
            return Err(InvalidKey::Empty);
        }
        if key.len() > MAX_KEY_LEN {
            return Err(InvalidKey::TooLong { len: key.len() });
        }
        if key.contains('\0') {
            return Err(InvalidKey::Nul);
        }
        let body = key.strip_suffix('/').unwrap_or(key);
        for segment in body.split('/') {
            check_segment(segment)?;
        }
        Ok(Self(key.to_owned()))
    }

    /// The key as the client wrote it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the key names a directory (it ends in `/`).
    #[must_use]
    pub fn is_directory(&self) -> bool {
        self.0.ends_with('/')
    }

    /// The path segments, without the trailing empty one of a directory key.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.strip_suffix('/').unwrap_or(&self.0).split('/')
    }
}

/// Checks one name of a path: what a file or directory may be called inside a vault.
///
/// # Errors
/// Returns the reason the name is refused.
pub fn check_segment(segment: &str) -> Result<(), InvalidKey> {
    if segment.is_empty() {
        return Err(InvalidKey::EmptySegment);
    }
    if segment == "." || segment == ".." {
        return Err(InvalidKey::DotSegment);
    }
    if segment.len() > MAX_SEGMENT_LEN {
        return Err(InvalidKey::SegmentTooLong { len: segment.len() });
    }
    if segment.contains('\0') {
        return Err(InvalidKey::Nul);
    }
    Ok(())
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The smallest string greater than every string that starts with `prefix`, if there is one.
///
/// Listings use it to skip a whole common prefix in one index seek. UTF-8 byte order equals code
/// point order, so bumping the last character (and dropping trailing maxima) gives the bound.
#[must_use]
pub fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            char::MAX => None,
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_keys() {
        for key in [
            "a",
            "a/b/c.txt",
            "dir/",
            "with space/+%=&@:",
            "ünï/cødé",
            "a.b/..c",
        ] {
            assert!(ObjectKey::parse(key).is_ok(), "{key}");
        }
        assert!(ObjectKey::parse("dir/").unwrap().is_directory());
        assert_eq!(
            ObjectKey::parse("a/b/")
                .unwrap()
                .segments()
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn refuses_keys_that_cannot_be_paths() {
        assert_eq!(ObjectKey::parse(""), Err(InvalidKey::Empty));
        assert_eq!(ObjectKey::parse("/a"), Err(InvalidKey::EmptySegment));
        assert_eq!(ObjectKey::parse("a//b"), Err(InvalidKey::EmptySegment));
        assert_eq!(ObjectKey::parse("/"), Err(InvalidKey::EmptySegment));
        assert_eq!(ObjectKey::parse("a/../b"), Err(InvalidKey::DotSegment));
        assert_eq!(ObjectKey::parse("./a"), Err(InvalidKey::DotSegment));
        assert_eq!(ObjectKey::parse("a\0b"), Err(InvalidKey::Nul));
        let long = "x".repeat(256);
        assert_eq!(
            ObjectKey::parse(&long),
            Err(InvalidKey::SegmentTooLong { len: 256 })
        );
        let huge = "a/".repeat(600);
        assert!(matches!(
            ObjectKey::parse(&huge),
            Err(InvalidKey::TooLong { .. })
        ));
    }

    #[test]
    fn prefix_successor_bounds_every_extension() {
        assert_eq!(prefix_successor("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_successor("").as_deref(), None);
        let succ = prefix_successor("ab\u{10FFFF}").unwrap();
        assert_eq!(succ, "ac");
        for ext in ["", "zzz", "\u{10FFFF}\u{10FFFF}"] {
            assert!(format!("a/{ext}") < prefix_successor("a/").unwrap());
        }
    }
}
