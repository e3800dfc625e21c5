//! Reading a small request body whole: the XML document of an operation such as DeleteObjects,
//! a few KiB that the handler parses in memory.
//!
//! The body is capped (past the cap the client gets `MaxMessageLengthExceeded`, as from AWS),
//! unframed when it is `aws-chunked`, and checked against every digest the client sent:
//! `x-amz-content-sha256`, `Content-MD5`, and an `x-amz-checksum-*` header or trailer. Some
//! operations also demand that one of those integrity digests be present.

use axum::body::Body;
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use md5::{Digest as _, Md5};
use sha2::Sha256;

use crate::auth::Authenticated;
use crate::body::BodyExpectations;
use crate::checksum::{ChecksumAlgorithm, ChecksumHasher};
use crate::chunked::{ChunkMode, ChunkedDecoder};
use crate::error::{S3Error, S3ErrorCode};
use crate::sigv4::PayloadHash;

/// Room for `aws-chunked` framing on top of the decoded cap: chunk headers, signatures and
/// trailers of a body that is itself at most a few MiB.
const FRAMING_ALLOWANCE: usize = 256 * 1024;

/// Whether the operation insists on an integrity digest of its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integrity {
    /// Digests are checked when sent.
    Optional,
    /// `Content-MD5` or an `x-amz-checksum-*` header (or trailer) must be sent, as AWS demands
    /// for DeleteObjects.
    Required,
}

/// Reads the whole body, at most `max_len` bytes after unframing, and verifies it.
///
/// # Errors
/// `InvalidRequest` when a required digest is missing, `InvalidDigest` for a malformed
/// `Content-MD5`, `MaxMessageLengthExceeded` past the cap, `IncompleteBody` for a body cut
/// short or that disagrees with its declared length, `BadDigest` or `XAmzContentSHA256Mismatch`
/// when a digest does not match, and the `aws-chunked` failures.
pub async fn read(
    body: Body,
    headers: &HeaderMap,
    auth: Authenticated,
    max_len: usize,
    integrity: Integrity,
) -> Result<Bytes, S3Error> {
    let Authenticated {
        payload, streaming, ..
    } = auth;
    let expect = BodyExpectations::from_headers(headers, payload, streaming, u64::MAX)?;
    let has_digest = expect.content_md5.is_some()
        || expect.checksum_header.is_some()
        || expect.trailer_checksum.is_some();
    if integrity == Integrity::Required && !has_digest {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "Missing required header for this request: Content-MD5",
        ));
    }
    if expect.declared_len.is_some_and(|len| len > max_len as u64) {
        return Err(too_big());
    }

    let (data, trailer_checksum) = collect(body, &expect, max_len).await?;
    if expect
        .declared_len
        .is_some_and(|len| len != data.len() as u64)
    {
        return Err(incomplete());
    }
    verify(&data, &expect, trailer_checksum)?;
    Ok(Bytes::from(data))
}

/// Reads the body off the connection and unframes it; returns the data and the trailing
/// checksum value, if the body had one.
async fn collect(
    body: Body,
    expect: &BodyExpectations,
    max_len: usize,
) -> Result<(Vec<u8>, Option<String>), S3Error> {
    let mut decoder = expect.payload.is_streaming().then(|| {
        let mode = match expect.streaming.clone() {
            Some(context) => ChunkMode::Signed(context),
            None => ChunkMode::Unsigned,
        };
        ChunkedDecoder::new(mode, expect.payload.has_trailer())
    });
    let raw_cap = match decoder {
        Some(_) => max_len.saturating_add(FRAMING_ALLOWANCE),
        None => max_len,
    };
    let mut body = Limited::new(body, raw_cap);
    let mut data = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            if err.downcast_ref::<LengthLimitError>().is_some() {
                too_big()
            } else {
                incomplete()
            }
        })?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        match decoder.as_mut() {
            Some(decoder) => decoder.push(&chunk, &mut data).map_err(S3Error::from)?,
            None => data.extend_from_slice(&chunk),
        }
        if data.len() > max_len {
            return Err(too_big());
        }
    }
    let trailer_checksum = match (decoder, expect.trailer_checksum) {
        (Some(decoder), algorithm) => {
            let trailers = decoder.finish().map_err(S3Error::from)?;
            algorithm.and_then(|algorithm| trailers.checksum(algorithm).map(str::to_owned))
        }
        (None, _) => None,
    };
    Ok((data, trailer_checksum))
}

/// Checks the data against `x-amz-content-sha256`, `Content-MD5` and the checksum header or
/// trailer.
fn verify(
    data: &[u8],
    expect: &BodyExpectations,
    trailer_checksum: Option<String>,
) -> Result<(), S3Error> {
    if let PayloadHash::Sha256(expected) = &expect.payload
        && hex::encode(Sha256::digest(data)) != *expected
    {
        return Err(S3Error::new(
            S3ErrorCode::XAmzContentSHA256Mismatch,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ));
    }
    if let Some(md5) = expect.content_md5
        && Md5::digest(data).as_slice() != md5
    {
        return Err(S3Error::new(
            S3ErrorCode::BadDigest,
            "The Content-MD5 you specified did not match what we received.",
        ));
    }
    let sent = match (&expect.checksum_header, expect.trailer_checksum) {
        (Some((algorithm, value)), _) => Some((*algorithm, Some(value.clone()))),
        (None, Some(algorithm)) => Some((algorithm, trailer_checksum)),
        (None, None) => None,
    };
    let Some((algorithm, value)) = sent else {
        return Ok(());
    };
    let Some(value) = value else {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            format!(
                "The {} trailer was announced but not sent.",
                algorithm.header_name()
            ),
        ));
    };
    if checksum(algorithm, data) != value {
        return Err(S3Error::new(
            S3ErrorCode::BadDigest,
            format!(
                "The {} you specified did not match the calculated checksum.",
                algorithm.name()
            ),
        ));
    }
    Ok(())
}

fn checksum(algorithm: ChecksumAlgorithm, data: &[u8]) -> String {
    let mut hasher = ChecksumHasher::new(algorithm);
    hasher.update(data);
    hasher.finish()
}

fn too_big() -> S3Error {
    S3Error::new(
        S3ErrorCode::MaxMessageLengthExceeded,
        "Your request was too big.",
    )
}

fn incomplete() -> S3Error {
    S3Error::new(
        S3ErrorCode::IncompleteBody,
        "You did not provide the number of bytes specified by the Content-Length HTTP header",
    )
}

/// The base64 `Content-MD5` of `data`.
#[cfg(test)]
pub(crate) fn content_md5(data: &[u8]) -> String {
    use base64::Engine as _;

    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn unsigned() -> Authenticated {
        Authenticated {
            access_key: None,
            payload: PayloadHash::Unsigned,
            streaming: None,
        }
    }

    async fn read_with(
        data: &'static [u8],
        pairs: &[(&str, &str)],
        auth: Authenticated,
    ) -> Result<Bytes, S3Error> {
        read(
            Body::from(data),
            &headers(pairs),
            auth,
            64,
            Integrity::Required,
        )
        .await
    }

    #[tokio::test]
    async fn a_required_digest_must_be_present() {
        let err = read_with(b"<Delete/>", &[], unsigned()).await.unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidRequest);
        assert_eq!(
            err.message,
            "Missing required header for this request: Content-MD5"
        );
        let optional = read(
            Body::from("x"),
            &HeaderMap::new(),
            unsigned(),
            64,
            Integrity::Optional,
        )
        .await;
        assert_eq!(optional.unwrap(), Bytes::from("x"));
    }

    #[tokio::test]
    async fn content_md5_is_checked() {
        let md5 = content_md5(b"<Delete/>");
        let body = read_with(b"<Delete/>", &[("content-md5", &md5)], unsigned()).await;
        assert_eq!(body.unwrap(), Bytes::from("<Delete/>"));
        let err = read_with(b"<Delete></Delete>", &[("content-md5", &md5)], unsigned())
            .await
            .unwrap_err();
        assert_eq!(err.code, S3ErrorCode::BadDigest);
        let err = read_with(b"x", &[("content-md5", "nope")], unsigned())
            .await
            .unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidDigest);
    }

    #[tokio::test]
    async fn checksum_headers_are_checked() {
        let good = checksum(ChecksumAlgorithm::Crc32, b"hello world");
        assert_eq!(good, "DUoRhQ==");
        let ok = read_with(
            b"hello world",
            &[("x-amz-checksum-crc32", &good)],
            unsigned(),
        )
        .await;
        assert!(ok.is_ok());
        let err = read_with(
            b"hello there",
            &[("x-amz-checksum-crc32", &good)],
            unsigned(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, S3ErrorCode::BadDigest);
        assert_eq!(
            err.message,
            "The CRC32 you specified did not match the calculated checksum."
        );
    }

    #[tokio::test]
    async fn signed_payload_hash_is_checked() {
        let md5 = content_md5(b"abc");
        let auth = |hex: &str| Authenticated {
            access_key: Some("AK".into()),
            payload: PayloadHash::Sha256(hex.into()),
            streaming: None,
        };
        let right = hex::encode(Sha256::digest(b"abc"));
        assert!(
            read_with(b"abc", &[("content-md5", &md5)], auth(&right))
                .await
                .is_ok()
        );
        let wrong = hex::encode(Sha256::digest(b"abd"));
        let err = read_with(b"abc", &[("content-md5", &md5)], auth(&wrong))
            .await
            .unwrap_err();
        assert_eq!(err.code, S3ErrorCode::XAmzContentSHA256Mismatch);
    }

    #[tokio::test]
    async fn bodies_past_the_cap_are_refused() {
        let big: &'static [u8] = &[b'a'; 65];
        let md5 = content_md5(big);
        let err = read_with(big, &[("content-md5", &md5)], unsigned())
            .await
            .unwrap_err();
        assert_eq!(err.code, S3ErrorCode::MaxMessageLengthExceeded);
        let err = read_with(
            b"a",
            &[("content-md5", &md5), ("content-length", "100")],
            unsigned(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, S3ErrorCode::MaxMessageLengthExceeded);
        let err = read_with(
            b"a",
            &[("content-md5", &content_md5(b"a")), ("content-length", "2")],
            unsigned(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, S3ErrorCode::IncompleteBody);
    }

    #[tokio::test]
    async fn unsigned_aws_chunked_bodies_with_a_trailer_are_unframed_and_checked() {
        let crc = checksum(ChecksumAlgorithm::Crc32, b"hello world");
        let framed = format!("b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n");
        let framed: &'static [u8] = Box::leak(framed.into_bytes().into_boxed_slice());
        let auth = Authenticated {
            access_key: None,
            payload: PayloadHash::StreamingUnsignedTrailer,
            streaming: None,
        };
        let pairs = [
            ("x-amz-trailer", "x-amz-checksum-crc32"),
            ("x-amz-decoded-content-length", "11"),
            ("content-encoding", "aws-chunked"),
        ];
        let body = read_with(framed, &pairs, auth).await.unwrap();
        assert_eq!(body, Bytes::from("hello world"));
    }
}
