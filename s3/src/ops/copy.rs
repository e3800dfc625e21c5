//! CopyObject and UploadPartCopy: the source is decrypted and sealed again under the
//! destination vault's key, streaming, so buckets on different vaults never share key material.

use std::sync::Arc;

use axum::response::Response;
use http::HeaderMap;
use http::request::Parts;
use percent_encoding::percent_decode_str;
use vault::meta::{Entry, ObjectAttrs};
use vault::{BucketRow, Engine, ObjectKey, ObjectReader, ObjectWriter, VaultError, VaultId};

use super::bucket::xml_response;
use super::conditional::etag_list_matches;
use super::iso8601_ms;
use super::multipart::{commit_copied_part, declared_algorithm, find_upload, part_number};
use super::object::{attrs_from_headers, object_key, write_condition};
use crate::Gateway;
use crate::checksum::{ChecksumAlgorithm, ChecksumHasher};
use crate::error::{S3Error, S3ErrorCode};
use crate::router::Target;
use crate::xml::XmlWriter;

/// The source of a copy, from `x-amz-copy-source`.
struct CopySource {
    bucket: String,
    key: String,
}

fn invalid_source(message: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument, message)
        .with_field("ArgumentName", "x-amz-copy-source")
}

/// Parses `/bucket/key` or `bucket/key`, URL-encoded, with an optional `?versionId=null`.
fn parse_source(headers: &HeaderMap) -> Result<CopySource, S3Error> {
    let raw = headers
        .get("x-amz-copy-source")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (path, version) = raw
        .split_once("?versionId=")
        .map_or((raw, None), |(p, v)| (p, Some(v)));
    if version.is_some_and(|v| v != "null") {
        return Err(invalid_source(
            "Versioning is not enabled on this gateway; only versionId=null can be copied.",
        ));
    }
    let decoded = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| invalid_source("Invalid copy source encoding"))?;
    let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
    let Some((bucket, key)) = decoded
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
    else {
        return Err(invalid_source(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        ));
    };
    Ok(CopySource {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    })
}

fn precondition_failed() -> S3Error {
    S3Error::new(
        S3ErrorCode::PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold",
    )
}

/// `x-amz-copy-source-if-*`, evaluated against the source as S3 does.
fn check_source_conditions(headers: &HeaderMap, source: &Entry) -> Result<(), S3Error> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let etag = source.etag.as_deref().unwrap_or_default();
    let modified = source.mtime_ms.div_euclid(1000);
    let date = |name: &str| {
        text(name)
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok())
    };
    let if_match = text("x-amz-copy-source-if-match").map(|v| etag_list_matches(v, etag));
    if if_match == Some(false) {
        return Err(precondition_failed());
    }
    if if_match.is_none()
        && date("x-amz-copy-source-if-unmodified-since").is_some_and(|since| modified > since)
    {
        return Err(precondition_failed());
    }
    let if_none_match = text("x-amz-copy-source-if-none-match").map(|v| etag_list_matches(v, etag));
    if if_none_match == Some(true) {
        return Err(precondition_failed());
    }
    if if_none_match.is_none()
        && date("x-amz-copy-source-if-modified-since").is_some_and(|since| modified <= since)
    {
        return Err(precondition_failed());
    }
    Ok(())
}

async fn open_source(gateway: &Gateway, source: &CopySource) -> Result<ObjectReader, S3Error> {
    let engine = Arc::clone(&gateway.engine);
    let (bucket, key) = (source.bucket.clone(), source.key.clone());
    tokio::task::spawn_blocking(move || -> Result<ObjectReader, VaultError> {
        let row = engine.bucket(&bucket)?;
        let key = ObjectKey::parse(&key).map_err(|_| VaultError::NoSuchKey(key.clone()))?;
        engine.open_object(row.vault, &key)
    })
    .await
    .map_err(|err| S3Error::internal(&err))?
    .map_err(S3Error::from)
}

/// Streams `start..end` of `source` into a new writer of `vault`, computing `checksum` on the way.
async fn copy_range(
    engine: &Arc<Engine>,
    source: ObjectReader,
    start: u64,
    end: u64,
    vault: VaultId,
    checksum: Option<ChecksumAlgorithm>,
    part: bool,
) -> Result<(ObjectWriter, Option<String>), S3Error> {
    let engine = Arc::clone(engine);
    tokio::task::spawn_blocking(move || -> Result<_, VaultError> {
        let mut writer = if part {
            engine.begin_part(vault)?
        } else {
            engine.begin_write(vault)?
        };
        let mut hasher = checksum.map(ChecksumHasher::new);
        source.read_range(start, end, &mut |chunk| {
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(chunk);
            }
            writer.write(chunk)
        })?;
        Ok((writer, hasher.map(ChecksumHasher::finish)))
    })
    .await
    .map_err(|err| S3Error::internal(&err))?
    .map_err(S3Error::from)
}

/// `PUT /bucket/key` with `x-amz-copy-source`.
///
/// # Errors
/// `NoSuchBucket`/`NoSuchKey` for the source, `PreconditionFailed`, `InvalidRequest` for a copy
/// onto itself that changes nothing, `InvalidArgument` for a bad directive or source.
pub async fn copy_object(
    gateway: &Gateway,
    bucket: &BucketRow,
    target: &Target,
    parts: &Parts,
) -> Result<Response, S3Error> {
    let key = object_key(target)?;
    let source = parse_source(&parts.headers)?;
    let directive = parts
        .headers
        .get("x-amz-metadata-directive")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("COPY");
    let replace = match directive.to_ascii_uppercase().as_str() {
        "COPY" => false,
        "REPLACE" => true,
        _ => {
            return Err(
                S3Error::new(S3ErrorCode::InvalidArgument, "Unknown metadata directive.")
                    .with_field("ArgumentName", "x-amz-metadata-directive"),
            );
        }
    };
    if source.bucket == bucket.name && source.key == key.as_str() && !replace {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let condition = write_condition(&parts.headers)?;
    let reader = open_source(gateway, &source).await?;
    check_source_conditions(&parts.headers, &reader.entry)?;
    let mut attrs = if replace {
        attrs_from_headers(&parts.headers)?
    } else {
        ObjectAttrs {
            checksums: Default::default(),
            ..reader.entry.attrs.clone()
        }
    };
    // A multipart source's checksum describes its parts; the copy is one part and gets its own.
    let checksum = reader
        .entry
        .attrs
        .checksums
        .keys()
        .next()
        .and_then(|name| ChecksumAlgorithm::from_name(name));
    let len = reader.len();
    let (writer, value) = copy_range(
        &gateway.engine,
        reader,
        0,
        len,
        bucket.vault,
        checksum,
        false,
    )
    .await?;
    if let (Some(algorithm), Some(value)) = (checksum, value) {
        attrs.checksums.insert(algorithm.name().to_owned(), value);
    }
    let engine = Arc::clone(&gateway.engine);
    let entry =
        tokio::task::spawn_blocking(move || engine.commit_write(writer, &key, attrs, &condition))
            .await
            .map_err(|err| S3Error::internal(&err))??;

    let mut xml = XmlWriter::new();
    xml.open_root("CopyObjectResult");
    xml.element("LastModified", &iso8601_ms(entry.mtime_ms));
    xml.element(
        "ETag",
        &format!("\"{}\"", entry.etag.as_deref().unwrap_or_default()),
    );
    for (algorithm, value) in &entry.attrs.checksums {
        xml.element(&format!("Checksum{algorithm}"), value);
    }
    xml.close("CopyObjectResult");
    Ok(xml_response(xml.finish()))
}

/// `x-amz-copy-source-range: bytes=first-last`, required to lie inside the source.
fn parse_copy_range(headers: &HeaderMap, size: u64) -> Result<(u64, u64), S3Error> {
    let Some(value) = headers
        .get("x-amz-copy-source-range")
        .and_then(|v| v.to_str().ok())
    else {
        return Ok((0, size));
    };
    let invalid = || {
        S3Error::new(S3ErrorCode::InvalidArgument, "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
            .with_field("ArgumentName", "x-amz-copy-source-range")
    };
    let (first, last) = value
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(invalid)?;
    let first: u64 = first.parse().map_err(|_| invalid())?;
    let last: u64 = last.parse().map_err(|_| invalid())?;
    if first > last {
        return Err(invalid());
    }
    if last >= size {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        )
        .with_field("ActualObjectSize", size.to_string()));
    }
    Ok((first, last + 1))
}

/// `PUT /bucket/key?partNumber=N&uploadId=U` with `x-amz-copy-source`.
///
/// # Errors
/// As CopyObject, plus `NoSuchUpload` and a bad `x-amz-copy-source-range`.
pub async fn upload_part_copy(
    gateway: &Gateway,
    bucket: &BucketRow,
    target: &Target,
    parts: &Parts,
    query: &[(String, String)],
) -> Result<Response, S3Error> {
    let number = part_number(query)?;
    let upload = find_upload(gateway, bucket, target, query).await?;
    let source = parse_source(&parts.headers)?;
    let reader = open_source(gateway, &source).await?;
    check_source_conditions(&parts.headers, &reader.entry)?;
    let (start, end) = parse_copy_range(&parts.headers, reader.len())?;
    let algorithm = declared_algorithm(&upload);
    let (writer, checksum) = copy_range(
        &gateway.engine,
        reader,
        start,
        end,
        bucket.vault,
        algorithm,
        true,
    )
    .await?;
    let part = commit_copied_part(gateway, upload, number, writer, checksum.clone()).await?;

    let mut xml = XmlWriter::new();
    xml.open_root("CopyPartResult");
    xml.element("LastModified", &iso8601_ms(vault::meta::now_ms()));
    xml.element("ETag", &format!("\"{}\"", part.etag));
    if let (Some(algorithm), Some(value)) = (algorithm, checksum) {
        xml.element(&format!("Checksum{}", algorithm.name()), &value);
    }
    xml.close("CopyPartResult");
    Ok(xml_response(xml.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn copy_sources_decode_and_refuse_versions() {
        let source =
            parse_source(&headers(&[("x-amz-copy-source", "/src/a%20b/c%2Bd.txt")])).unwrap();
        assert_eq!(
            (source.bucket.as_str(), source.key.as_str()),
            ("src", "a b/c+d.txt")
        );
        let source =
            parse_source(&headers(&[("x-amz-copy-source", "src/k?versionId=null")])).unwrap();
        assert_eq!(source.key, "k");
        assert!(parse_source(&headers(&[("x-amz-copy-source", "src/k?versionId=abc")])).is_err());
        assert!(parse_source(&headers(&[("x-amz-copy-source", "/onlybucket")])).is_err());
    }

    #[test]
    fn copy_ranges_must_lie_inside_the_source() {
        let range = |v: &str| parse_copy_range(&headers(&[("x-amz-copy-source-range", v)]), 100);
        assert_eq!(range("bytes=0-9").unwrap(), (0, 10));
        assert_eq!(range("bytes=99-99").unwrap(), (99, 100));
        assert_eq!(
            range("bytes=50-100").unwrap_err().code,
            S3ErrorCode::InvalidRange
        );
        assert_eq!(
            range("bytes=9-1").unwrap_err().code,
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(range("0-9").unwrap_err().code, S3ErrorCode::InvalidArgument);
        assert_eq!(parse_copy_range(&HeaderMap::new(), 7).unwrap(), (0, 7));
    }
}
