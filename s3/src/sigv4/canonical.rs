//! The canonical request: the exact bytes a SigV4 signature covers.
//!
//! Follows [Create a canonical request](https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html#create-canonical-request)
//! with the S3 rule that the path is encoded once, not normalised (no `.`/`..` or `//`
//! removal). Clients disagree on how they escape a path or query on the wire (`$` or `%24`,
//! `%20` or `+` for a space in the query), so both are rebuilt from their decoded form, decoded
//! the way the router reads them; [`PathForm`] names the alternatives [`super::verify`] tries.

use http::request::Parts;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, percent_encode};

/// Bytes left alone by SigV4 URI encoding: everything but `A-Z a-z 0-9 - . _ ~` is encoded.
const ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How the canonical URI is derived from the path on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PathForm {
    /// Each `/`-separated segment decoded, then SigV4-encoded: what AWS SDKs sign whatever
    /// escaping they used on the wire.
    Normalized,
    /// The path exactly as received, for clients that sign what they send verbatim.
    AsSent,
}

/// SigV4 URI encoding of raw bytes, upper-case hex.
pub(super) fn uri_encode(bytes: &[u8]) -> String {
    percent_encode(bytes, ENCODE_SET).to_string()
}

/// The canonical URI for the path the client sent.
pub(super) fn canonical_uri(raw_path: &str, form: PathForm) -> String {
    if raw_path.is_empty() {
        return "/".to_owned();
    }
    if form == PathForm::AsSent {
        return raw_path.to_owned();
    }

    let segments: Vec<String> = raw_path
        .split('/')
        .map(|segment| uri_encode(&percent_decode(segment.as_bytes()).collect::<Vec<u8>>()))
        .collect();
    segments.join("/")
}

/// The canonical query string: names and values decoded and re-encoded, sorted by name then
/// value. A presigned request leaves out its own `X-Amz-Signature`.
///
/// A raw `+` reads as a space, as S3 and the router read it (SDKs send `%2B` for a plus and
/// `%20` for a space; only form-encoding clients send `+`, and they mean a space). Reading it
/// any other way would let one signature cover two different requests.
pub(super) fn canonical_query(raw_query: &str, presigned: bool) -> String {
    let encode = |text: &str| {
        let spaced: Vec<u8> = text
            .bytes()
            .map(|b| if b == b'+' { b' ' } else { b })
            .collect();
        uri_encode(&percent_decode(&spaced).collect::<Vec<u8>>())
    };

    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .map(|(name, value)| (encode(name), encode(value)))
        .filter(|(name, _)| !(presigned && name == "X-Amz-Signature"))
        .collect();
    pairs.sort();

    let pairs: Vec<String> = pairs
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    pairs.join("&")
}

/// The canonical headers block: `name:value\n` for each signed header in the order listed.
///
/// Values are trimmed with inner runs of spaces collapsed; repeated headers are joined with
/// `,`. An unsigned-but-listed `host` falls back to the URI authority (HTTP/2 requests carry
/// it as `:authority`).
pub(super) fn canonical_headers(parts: &Parts, signed_headers: &[String]) -> Vec<u8> {
    let mut block = Vec::new();
    for name in signed_headers {
        block.extend_from_slice(name.as_bytes());
        block.push(b':');

        let mut values = parts.headers.get_all(name.as_str()).iter().peekable();
        if values.peek().is_none() && name == "host" {
            let authority = parts
                .uri
                .authority()
                .map_or("", |authority| authority.as_str());
            block.extend_from_slice(authority.as_bytes());
        }
        for (index, value) in values.enumerate() {
            if index > 0 {
                block.push(b',');
            }
            push_trimmed(&mut block, value.as_bytes());
        }

        block.push(b'\n');
    }
    block
}

/// Assembles the canonical request from its parts.
pub(super) fn canonical_request(
    method: &str,
    uri: &str,
    query: &str,
    headers: &[u8],
    signed_headers: &[String],
    payload_hash: &str,
) -> Vec<u8> {
    let mut request = format!("{method}\n{uri}\n{query}\n").into_bytes();
    request.extend_from_slice(headers);
    request.push(b'\n');
    request.extend_from_slice(signed_headers.join(";").as_bytes());
    request.push(b'\n');
    request.extend_from_slice(payload_hash.as_bytes());
    request
}

/// Appends `value` without leading or trailing blanks and with inner blank runs as one space.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let words = value.split(is_blank).filter(|word| !word.is_empty());
    for (index, word) in words.enumerate() {
        if index > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_once_from_their_decoded_form() {
        let normalized = |path| canonical_uri(path, PathForm::Normalized);
        assert_eq!(normalized(""), "/");
        assert_eq!(normalized("/"), "/");
        assert_eq!(normalized("/test$file.text"), "/test%24file.text");
        assert_eq!(normalized("/test%24file.text"), "/test%24file.text");
        assert_eq!(normalized("/my%20key/a+b"), "/my%20key/a%2Bb");
        assert_eq!(normalized("/a%2fb//./../c~"), "/a%2Fb//./../c~");
        assert_eq!(normalized("/caf%C3%A9"), "/caf%C3%A9");
        assert_eq!(normalized("/100%"), "/100%25");
        assert_eq!(canonical_uri("/a+b", PathForm::AsSent), "/a+b");
    }

    #[test]
    fn queries_are_sorted_and_re_encoded() {
        let query = |query| canonical_query(query, false);
        assert_eq!(query(""), "");
        assert_eq!(query("lifecycle"), "lifecycle=");
        assert_eq!(query("prefix=J&max-keys=2"), "max-keys=2&prefix=J");
        assert_eq!(query("b=2&a=2&a=1"), "a=1&a=2&b=2");
        assert_eq!(
            query("prefix=a b&x=%7e&y=a+b&z=a%2Bb"),
            "prefix=a%20b&x=~&y=a%20b&z=a%2Bb"
        );
        assert_eq!(
            canonical_query("X-Amz-Signature=ab&X-Amz-Date=1", true),
            "X-Amz-Date=1"
        );
    }

    #[test]
    fn header_values_are_trimmed_and_joined() {
        let request = http::Request::builder()
            .uri("http://bucket.example:9000/key")
            .header("x-amz-meta-a", "  one   two\t three ")
            .header("x-amz-meta-b", "1")
            .header("x-amz-meta-b", "2")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let names = ["host", "x-amz-meta-a", "x-amz-meta-b", "x-amz-missing"].map(String::from);
        assert_eq!(
            String::from_utf8(canonical_headers(&parts, &names)).unwrap(),
            "host:bucket.example:9000\nx-amz-meta-a:one two three\nx-amz-meta-b:1,2\nx-amz-missing:\n"
        );
    }
}
