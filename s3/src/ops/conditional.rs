//! `Range` and the conditional request headers of GET and HEAD, evaluated as S3 does.

use http::HeaderMap;
use vault::meta::Entry;

use crate::error::{S3Error, S3ErrorCode};

/// A byte range to serve, inclusive-exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// Resolves a `Range` header against an object of `size` bytes.
///
/// Returns `None` when the whole object is to be served: no header, or one S3 ignores
/// (not a single `bytes=` range). A range starting past the end is unsatisfiable; one ending
/// past the end is clamped.
///
/// # Errors
/// `InvalidRange` (416) when the range is unsatisfiable.
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<ByteRange>, S3Error> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let parse = |text: &str| text.trim().parse::<u64>().ok();
    let range = match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => return Ok(None),
        (true, false) => {
            let Some(suffix) = parse(last) else {
                return Ok(None);
            };
            if suffix == 0 || size == 0 {
                return Err(unsatisfiable(size));
            }
            ByteRange {
                start: size.saturating_sub(suffix),
                end: size,
            }
        }
        (false, open_end) => {
            let Some(start) = parse(first) else {
                return Ok(None);
            };
            let end = if open_end {
                size
            } else {
                let Some(last) = parse(last) else {
                    return Ok(None);
                };
                if last < start {
                    return Ok(None);
                }
                last.saturating_add(1).min(size)
            };
            if start >= size {
                return Err(unsatisfiable(size));
            }
            ByteRange { start, end }
        }
    };
    Ok(Some(range))
}

fn unsatisfiable(size: u64) -> S3Error {
    S3Error::new(
        S3ErrorCode::InvalidRange,
        "The requested range is not satisfiable",
    )
    .with_field("ActualObjectSize", size.to_string())
}

/// What the conditional headers decide for a GET or HEAD.
#[derive(Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Serve the object.
    Proceed,
    /// Answer 304 Not Modified.
    NotModified,
}

/// Evaluates `If-Match`, `If-None-Match`, `If-Modified-Since` and `If-Unmodified-Since` in
/// S3's order: a true `If-Match` overrides a false `If-Unmodified-Since`, and a false
/// `If-None-Match` overrides a true `If-Modified-Since`.
///
/// # Errors
/// `PreconditionFailed` (412).
pub fn evaluate(headers: &HeaderMap, entry: &Entry) -> Result<Precondition, S3Error> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let etag = entry.etag.as_deref().unwrap_or_default();
    let modified_secs = entry.mtime_ms.div_euclid(1000);
    let date = |name: &str| {
        text(name)
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .and_then(|d| i64::try_from(d.as_secs()).ok())
            })
    };
    let failed = || {
        Err(S3Error::new(
            S3ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        ))
    };

    let if_match = text("if-match").map(|v| etag_list_matches(v, etag));
    match if_match {
        Some(false) => return failed(),
        Some(true) => {}
        None => {
            if date("if-unmodified-since").is_some_and(|since| modified_secs > since) {
                return failed();
            }
        }
    }
    match text("if-none-match").map(|v| etag_list_matches(v, etag)) {
        Some(true) => return Ok(Precondition::NotModified),
        Some(false) => {}
        None => {
            if date("if-modified-since").is_some_and(|since| modified_secs <= since) {
                return Ok(Precondition::NotModified);
            }
        }
    }
    Ok(Precondition::Proceed)
}

/// Whether a comma-separated list of (quoted or bare, possibly weak) ETags names `etag`.
#[must_use]
pub fn etag_list_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|candidate| {
        let candidate = candidate.strip_prefix("W/").unwrap_or(candidate);
        candidate == "*" || candidate.trim_matches('"') == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_s3() {
        let r = |h: &str, size| parse_range(Some(h), size);
        assert_eq!(
            r("bytes=0-9", 100).unwrap(),
            Some(ByteRange { start: 0, end: 10 })
        );
        assert_eq!(
            r("bytes=90-", 100).unwrap(),
            Some(ByteRange {
                start: 90,
                end: 100
            })
        );
        assert_eq!(
            r("bytes=-10", 100).unwrap(),
            Some(ByteRange {
                start: 90,
                end: 100
            })
        );
        assert_eq!(
            r("bytes=-1000", 100).unwrap(),
            Some(ByteRange { start: 0, end: 100 })
        );
        assert_eq!(
            r("bytes=50-1000", 100).unwrap(),
            Some(ByteRange {
                start: 50,
                end: 100
            })
        );
        assert_eq!(
            r("bytes=100-", 100).unwrap_err().code,
            S3ErrorCode::InvalidRange
        );
        assert_eq!(
            r("bytes=0-0", 0).unwrap_err().code,
            S3ErrorCode::InvalidRange
        );
        assert_eq!(
            r("bytes=-5", 0).unwrap_err().code,
            S3ErrorCode::InvalidRange
        );
        assert_eq!(r("bytes=5-2", 100).unwrap(), None);
        assert_eq!(r("bytes=0-1,5-6", 100).unwrap(), None);
        assert_eq!(r("items=0-1", 100).unwrap(), None);
        assert_eq!(r("bytes=x-y", 100).unwrap(), None);
        assert_eq!(parse_range(None, 100).unwrap(), None);
    }

    #[test]
    fn etag_lists_match_quoted_and_bare() {
        assert!(etag_list_matches("\"abc\"", "abc"));
        assert!(etag_list_matches("\"x\", W/\"abc\"", "abc"));
        assert!(etag_list_matches("*", "abc"));
        assert!(!etag_list_matches("\"abd\"", "abc"));
    }
}
