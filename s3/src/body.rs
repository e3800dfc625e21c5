//! Receiving an object body: unframing `aws-chunked`, enforcing the size limit, and verifying
//! every digest the client sent (`x-amz-content-sha256`, `Content-MD5`, `x-amz-checksum-*` in a
//! header or a trailer) while the plaintext streams into the engine.
//!
//! The network side runs on the async runtime and hands decoded chunks through a small bounded
//! channel to one blocking task, which hashes and seals them; memory per upload is bounded by
//! the channel, whatever the object's size. Nothing is committed until every check has passed.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use base64::Engine as _;
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use vault::{Engine, ObjectWriter, VaultId};

use crate::checksum::{ChecksumAlgorithm, ChecksumHasher};
use crate::chunked::{ChunkMode, ChunkedDecoder};
use crate::error::{S3Error, S3ErrorCode};
use crate::sigv4::{PayloadHash, StreamingContext};

/// Chunks in flight between the network and the sealing task.
const PIPELINE_DEPTH: usize = 8;

/// What the client declared about the body, checked as it arrives.
pub struct BodyExpectations {
    /// `x-amz-content-sha256` and the streaming mode.
    pub payload: PayloadHash,
    /// The signature chain seed, for signed chunks.
    pub streaming: Option<StreamingContext>,
    /// `Content-MD5`, decoded.
    pub content_md5: Option<[u8; 16]>,
    /// An `x-amz-checksum-*` header with its base64 value.
    pub checksum_header: Option<(ChecksumAlgorithm, String)>,
    /// The algorithm announced in `x-amz-trailer`.
    pub trailer_checksum: Option<ChecksumAlgorithm>,
    /// The plaintext length the client announced (`Content-Length` or
    /// `x-amz-decoded-content-length`).
    pub declared_len: Option<u64>,
    /// The most bytes the gateway accepts.
    pub max_len: u64,
    /// The body is a multipart part (written to the part store).
    pub part: bool,
    /// A checksum to compute even when the client sends none (a multipart upload's declared
    /// algorithm, so every part has one for the object's checksum).
    pub compute: Option<ChecksumAlgorithm>,
}

/// A body that passed every check, sealed but not yet committed.
pub struct ReceivedBody {
    /// The engine's writer, to be committed under a key.
    pub writer: ObjectWriter,
    /// The verified checksums, by algorithm name, to store with the object.
    pub checksums: BTreeMap<String, String>,
}

impl BodyExpectations {
    /// Reads the digest headers of a PUT.
    ///
    /// # Errors
    /// `InvalidDigest` for a malformed `Content-MD5`, `InvalidRequest` for a malformed checksum
    /// header or an unknown trailer, `EntityTooLarge` when the declared length is over the limit.
    pub fn from_headers(
        headers: &HeaderMap,
        payload: PayloadHash,
        streaming: Option<StreamingContext>,
        max_len: u64,
    ) -> Result<Self, S3Error> {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let content_md5 = text("content-md5")
            .map(|value| {
                base64::engine::general_purpose::STANDARD
                    .decode(value)
                    .ok()
                    .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
                    .ok_or_else(|| {
                        S3Error::new(
                            S3ErrorCode::InvalidDigest,
                            "The Content-MD5 you specified was invalid.",
                        )
                    })
            })
            .transpose()?;
        let mut checksum_header = None;
        for (name, value) in headers {
            let Some(algorithm) = ChecksumAlgorithm::from_header_name(name.as_str()) else {
                continue;
            };
            let value = value.to_str().unwrap_or_default().trim().to_owned();
            if !algorithm.is_well_formed(&value) {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidRequest,
                    format!("Value for {} header is invalid.", algorithm.header_name()),
                ));
            }
            if checksum_header.is_some() {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidRequest,
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ));
            }
            checksum_header = Some((algorithm, value));
        }
        let trailer_checksum = match text("x-amz-trailer") {
            None => None,
            Some(name) => Some(
                ChecksumAlgorithm::from_header_name(&name.to_ascii_lowercase()).ok_or_else(
                    || {
                        S3Error::new(
                            S3ErrorCode::InvalidRequest,
                            "The value specified in the x-amz-trailer header is not supported",
                        )
                    },
                )?,
            ),
        };
        let declared_len = if payload.is_streaming() {
            let decoded = text("x-amz-decoded-content-length").ok_or_else(|| {
                S3Error::new(S3ErrorCode::MissingContentLength, "You must provide the x-amz-decoded-content-length header for aws-chunked uploads.")
            })?;
            Some(decoded.parse::<u64>().map_err(|_| {
                S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    "x-amz-decoded-content-length is not a number",
                )
            })?)
        } else {
            text("content-length").and_then(|v| v.parse::<u64>().ok())
        };
        if declared_len.is_some_and(|len| len > max_len) {
            return Err(entity_too_large(max_len));
        }
        Ok(Self {
            payload,
            streaming,
            content_md5,
            checksum_header,
            trailer_checksum,
            declared_len,
            max_len,
            compute: None,
            part: false,
        })
    }
}

fn entity_too_large(max_len: u64) -> S3Error {
    S3Error::new(
        S3ErrorCode::EntityTooLarge,
        "Your proposed upload exceeds the maximum allowed object size.",
    )
    .with_field("MaxSizeAllowed", max_len.to_string())
}

fn incomplete() -> S3Error {
    S3Error::new(
        S3ErrorCode::IncompleteBody,
        "You did not provide the number of bytes specified by the Content-Length HTTP header",
    )
}

/// Streams `body` into a new object of `vault`, verifying it on the way.
///
/// # Errors
/// The first check that failed (`BadDigest`, `XAmzContentSHA256Mismatch`, `IncompleteBody`,
/// `EntityTooLarge`, `SignatureDoesNotMatch` for a bad chunk signature) or a storage failure;
/// the partial blob is discarded.
pub async fn receive(
    engine: &Arc<Engine>,
    vault: VaultId,
    body: Body,
    expect: BodyExpectations,
) -> Result<ReceivedBody, S3Error> {
    let (tx, rx) = mpsc::channel::<Bytes>(PIPELINE_DEPTH);
    let sealing_engine = Arc::clone(engine);
    let signed_sha256 = match &expect.payload {
        PayloadHash::Sha256(hex) => Some(hex.clone()),
        _ => None,
    };
    let want_sha256 = signed_sha256.is_some();
    let part = expect.part;
    let header_algorithm = expect.checksum_header.as_ref().map(|(alg, _)| *alg);
    let checksum_algorithm = header_algorithm
        .or(expect.trailer_checksum)
        .or(expect.compute);
    let sealer = tokio::task::spawn_blocking(move || {
        seal(
            &sealing_engine,
            vault,
            part,
            rx,
            want_sha256,
            checksum_algorithm,
        )
    });

    let mut decoder = expect.payload.is_streaming().then(|| {
        let mode = match expect.streaming.clone() {
            Some(context) => ChunkMode::Signed(context),
            None => ChunkMode::Unsigned,
        };
        ChunkedDecoder::new(mode, expect.payload.has_trailer())
    });
    let forwarded = forward_body(body, decoder.as_mut(), &tx, expect.max_len).await;
    drop(tx);
    let sealed = sealer.await.map_err(|err| S3Error::internal(&err))?;
    let received = forwarded?;
    let (writer, sha256, checksum) = sealed?;

    if expect.declared_len.is_some_and(|len| len != received) {
        return Err(incomplete());
    }
    let trailer_value = match decoder {
        Some(decoder) => {
            let trailers = decoder.finish().map_err(S3Error::from)?;
            expect
                .trailer_checksum
                .and_then(|alg| trailers.checksum(alg).map(str::to_owned))
        }
        None => None,
    };
    if let (Some(expected), Some(actual)) = (&signed_sha256, &sha256)
        && expected != actual
    {
        return Err(S3Error::new(
            S3ErrorCode::XAmzContentSHA256Mismatch,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        ));
    }
    if let Some(md5) = expect.content_md5
        && hex::encode(md5) != writer.md5_hex()
    {
        return Err(S3Error::new(
            S3ErrorCode::BadDigest,
            "The Content-MD5 you specified did not match what we received.",
        ));
    }
    let mut checksums = BTreeMap::new();
    if let Some((algorithm, actual)) = checksum {
        let expected = match (&expect.checksum_header, trailer_value) {
            (Some((_, value)), _) => Some(value.clone()),
            (None, Some(value)) => Some(value),
            (None, None) => None,
        };
        let Some(expected) =
            expected.or_else(|| (expect.compute == Some(algorithm)).then(|| actual.clone()))
        else {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                format!(
                    "The {} trailer was announced but not sent.",
                    algorithm.header_name()
                ),
            ));
        };
        if expected != actual {
            return Err(S3Error::new(
                S3ErrorCode::BadDigest,
                format!(
                    "The {} you specified did not match the calculated checksum.",
                    algorithm.name()
                ),
            ));
        }
        checksums.insert(algorithm.name().to_owned(), actual);
    }
    Ok(ReceivedBody { writer, checksums })
}

/// Reads the body off the connection, unframes it and feeds the sealing task. Returns the
/// plaintext length.
async fn forward_body(
    mut body: Body,
    mut decoder: Option<&mut ChunkedDecoder>,
    tx: &mpsc::Sender<Bytes>,
    max_len: u64,
) -> Result<u64, S3Error> {
    let mut received = 0u64;
    let mut decoded = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| incomplete())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let chunk = match decoder.as_deref_mut() {
            Some(decoder) => {
                decoded.clear();
                decoder.push(&data, &mut decoded).map_err(S3Error::from)?;
                Bytes::copy_from_slice(&decoded)
            }
            None => data,
        };
        if chunk.is_empty() {
            continue;
        }
        received += chunk.len() as u64;
        if received > max_len {
            return Err(entity_too_large(max_len));
        }
        if tx.send(chunk).await.is_err() {
            // The sealing task stopped; its own error explains why.
            break;
        }
    }
    Ok(received)
}

type Sealed = (
    ObjectWriter,
    Option<String>,
    Option<(ChecksumAlgorithm, String)>,
);

/// The blocking side: hashes and seals each chunk as it arrives.
fn seal(
    engine: &Engine,
    vault: VaultId,
    part: bool,
    mut rx: mpsc::Receiver<Bytes>,
    want_sha256: bool,
    checksum: Option<ChecksumAlgorithm>,
) -> Result<Sealed, S3Error> {
    let mut writer = if part {
        engine.begin_part(vault)?
    } else {
        engine.begin_write(vault)?
    };
    let mut sha256 = want_sha256.then(Sha256::new);
    let mut checksum = checksum.map(ChecksumHasher::new);
    while let Some(chunk) = rx.blocking_recv() {
        if let Some(hasher) = sha256.as_mut() {
            hasher.update(&chunk);
        }
        if let Some(hasher) = checksum.as_mut() {
            hasher.update(&chunk);
        }
        writer.write(&chunk)?;
    }
    let sha256 = sha256.map(|hasher| hex::encode(hasher.finalize()));
    let checksum = checksum.map(|hasher| (hasher.algorithm(), hasher.finish()));
    Ok((writer, sha256, checksum))
}
