//! Text excerpts: the first bytes of an object that looks like text, cut at a character
//! boundary.
//!
//! An object is text when its content type says so (`text/*`, JSON, XML, YAML and their
//! `+json`/`+xml` kin), when its key has a text extension, or, failing both, when its first
//! bytes are valid UTF-8. Whatever was declared, bytes with a NUL in them are binary: no text
//! format uses NUL, and showing one would only put garbage on a page. Only the excerpt is
//! decrypted, however large the object.

use vault::ObjectReader;

use super::error::PreviewError;
use super::source;

/// Extensions of files that are text, whatever content type they were stored with.
const TEXT_EXTENSIONS: &str = "txt text md markdown rst adoc csv tsv log json jsonl ndjson xml \
    yaml yml toml ini cfg conf env properties html htm css svg js mjs cjs ts tsx jsx rs py rb go \
    java kt c h cc cpp hpp cs swift php pl lua sh bash zsh fish ps1 bat sql graphql proto tex srt \
    vtt diff patch";

/// An excerpt ready to send.
#[derive(Debug)]
pub struct Excerpt {
    /// Valid UTF-8, at most the bytes asked for.
    pub text: String,
    /// Whether the object goes on past the excerpt.
    pub truncated: bool,
}

/// Reads the first `max_bytes` of `reader`'s object as text.
///
/// # Errors
/// `Unsupported` when the object does not look like text, or a storage failure.
pub fn from_object(reader: &ObjectReader, max_bytes: usize) -> Result<Excerpt, PreviewError> {
    let declared = declared_text(
        reader.entry.attrs.content_type.as_deref(),
        &reader.entry.path,
    );
    let mut head = Vec::new();
    source::read_into(reader, 0, max_bytes as u64, &mut head)?;
    let text = excerpt(&head, declared)?;
    Ok(Excerpt {
        truncated: reader.len() > head.len() as u64,
        text,
    })
}

/// Whether the content type or the key's extension says the object is text.
fn declared_text(content_type: Option<&str>, key: &str) -> bool {
    let by_type = content_type.is_some_and(is_text_type);
    let extension = key
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    let by_extension = extension.is_some_and(|ext| {
        TEXT_EXTENSIONS
            .split_ascii_whitespace()
            .any(|known| known == ext)
    });
    by_type || by_extension
}

fn is_text_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind == "text"
        || (kind == "application"
            && (matches!(
                subtype,
                "json" | "xml" | "yaml" | "x-yaml" | "toml" | "javascript" | "x-sh" | "sql"
            ) || subtype.ends_with("+json")
                || subtype.ends_with("+xml")
                || subtype.ends_with("+yaml")))
}

/// The text of `head`, cut before a character the excerpt splits. Declared text with invalid
/// sequences (a Latin-1 file, say) shows them as U+FFFD; undeclared bytes must be clean UTF-8.
fn excerpt(head: &[u8], declared: bool) -> Result<String, PreviewError> {
    if head.contains(&0) {
        return Err(PreviewError::Unsupported(
            "no text preview: the object is binary (it contains NUL bytes)".to_owned(),
        ));
    }
    let head = without_split_char(head);
    match std::str::from_utf8(head) {
        Ok(text) => Ok(text.to_owned()),
        Err(_) if declared => {
            let lossy = String::from_utf8_lossy(head);
            Ok(cut_at_boundary(&lossy, head.len()).to_owned())
        }
        Err(_) => Err(PreviewError::Unsupported(
            "no text preview: the object is neither declared as text nor valid UTF-8".to_owned(),
        )),
    }
}

/// `bytes` without a multi-byte sequence that the end of the excerpt cuts short.
fn without_split_char(bytes: &[u8]) -> &[u8] {
    // A UTF-8 sequence is at most 4 bytes, so only the last 3 can start an unfinished one.
    for back in 1..=bytes.len().min(3) {
        let start = bytes.len() - back;
        let byte = bytes[start];
        if byte & 0b1100_0000 == 0b1000_0000 {
            continue;
        }
        let needed = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if needed > back {
            &bytes[..start]
        } else {
            bytes
        };
    }
    bytes
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn cut_at_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_and_extensions_declare_text() {
        assert!(declared_text(Some("text/plain; charset=utf-8"), "a"));
        assert!(declared_text(Some("application/json"), "a"));
        assert!(declared_text(Some("application/ld+json"), "a"));
        assert!(declared_text(Some("Application/YAML"), "a"));
        assert!(declared_text(None, "dir/notes.MD"));
        assert!(declared_text(
            Some("application/octet-stream"),
            "x/config.yml"
        ));
        assert!(!declared_text(
            Some("application/octet-stream"),
            "photo.jpg"
        ));
        assert!(!declared_text(None, "archive.tar.gz"));
        assert!(!declared_text(None, "dir.txt/blob"));
    }

    #[test]
    fn a_split_character_is_left_out() {
        let text = "héllo €".as_bytes();
        // "€" is 3 bytes; cut inside it at every possible point.
        let full = text.len();
        assert_eq!(excerpt(&text[..full - 1], false).unwrap(), "héllo ");
        assert_eq!(excerpt(&text[..full - 2], false).unwrap(), "héllo ");
        assert_eq!(excerpt(&text[..full], false).unwrap(), "héllo €");
        assert_eq!(excerpt(&text[..2], false).unwrap(), "h");
        assert_eq!(excerpt(&text[..3], false).unwrap(), "hé");
        assert_eq!(
            excerpt("😀".as_bytes().get(..3).unwrap(), false).unwrap(),
            ""
        );
    }

    #[test]
    fn binary_is_refused_even_when_declared_text() {
        assert!(matches!(
            excerpt(b"ab\0cd", true),
            Err(PreviewError::Unsupported(_))
        ));
        assert!(matches!(
            excerpt(&[0xff, 0xfe, 0x41], false),
            Err(PreviewError::Unsupported(_))
        ));
    }

    #[test]
    fn declared_text_in_another_encoding_is_shown_lossily_within_the_limit() {
        let latin1 = b"caf\xe9 cr\xe8me";
        let text = excerpt(latin1, true).unwrap();
        assert!(text.starts_with("caf\u{fffd}"));
        assert!(text.len() <= latin1.len());
    }
}
