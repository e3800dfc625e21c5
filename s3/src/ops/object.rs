//! Object operations: PutObject, GetObject, HeadObject, DeleteObject.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use tokio::sync::mpsc;
use vault::meta::parts::StoredPart;
use vault::meta::{Entry, ObjectAttrs, WriteCondition};
use vault::{BucketRow, ObjectKey, VaultError};

use super::conditional::{self, ByteRange, Precondition};
use super::{blocking, http_date_ms};
use crate::Gateway;
use crate::auth::Authenticated;
use crate::body::{self, BodyExpectations};
use crate::error::{S3Error, S3ErrorCode};
use crate::router::{Target, query_value};

/// The most user metadata S3 accepts: names plus values, in bytes.
const MAX_USER_METADATA: usize = 2048;
/// Decrypted chunks in flight between the reading task and the connection.
const READ_AHEAD: usize = 4;
/// What S3 answers as `Content-Type` for an object stored without one.
const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// Parses the object key of a request.
///
/// # Errors
/// The key's refusal, mapped to an S3 error.
pub fn object_key(target: &Target) -> Result<ObjectKey, S3Error> {
    let key = target.key.as_deref().unwrap_or_default();
    ObjectKey::parse(key).map_err(|err| S3Error::from(VaultError::InvalidKey(err)))
}

/// `PUT /bucket/key`.
///
/// # Errors
/// Any check of the body, the key or the preconditions, or a storage failure.
pub async fn put_object(
    gateway: &Gateway,
    bucket: &BucketRow,
    target: &Target,
    parts: &Parts,
    body: Body,
    auth: Authenticated,
) -> Result<Response, S3Error> {
    let key = object_key(target)?;
    let mut attrs = attrs_from_headers(&parts.headers)?;
    let condition = write_condition(&parts.headers)?;
    let expect = BodyExpectations::from_headers(
        &parts.headers,
        auth.payload,
        auth.streaming,
        gateway.config.max_body_size,
    )?;
    let received = body::receive(&gateway.engine, bucket.vault, body, expect).await?;
    attrs.checksums = received.checksums;
    let writer = received.writer;
    let checksums = attrs.checksums.clone();
    let entry = blocking(&gateway.engine, move |engine| {
        engine.commit_write(writer, &key, attrs, &condition)
    })
    .await?;

    let mut response = Response::builder().status(StatusCode::OK);
    if let Some(etag) = &entry.etag {
        response = response.header(header::ETAG, quoted(etag));
    }
    for (algorithm, value) in &checksums {
        response = response.header(
            format!("x-amz-checksum-{}", algorithm.to_ascii_lowercase()),
            value,
        );
    }
    Ok(response.body(Body::empty()).expect("valid response"))
}

/// `GET /bucket/key`.
///
/// # Errors
/// `NoSuchKey`, `InvalidRange`, `PreconditionFailed`, or a storage failure.
pub async fn get_object(
    gateway: &Gateway,
    bucket: &BucketRow,
    target: &Target,
    parts: &Parts,
    query: &[(String, String)],
) -> Result<Response, S3Error> {
    let Ok(key) = object_key(target) else {
        return Err(no_such_key(target));
    };
    let vault = bucket.vault;
    let reader = blocking(&gateway.engine, move |engine| {
        engine.open_object(vault, &key)
    })
    .await?;
    if conditional::evaluate(&parts.headers, &reader.entry)? == Precondition::NotModified {
        return Ok(not_modified(&reader.entry));
    }
    let (range, parts_count) = select_range(parts, query, &reader.entry, reader.parts())?;
    let ByteRange { start, end } = range.unwrap_or(ByteRange {
        start: 0,
        end: reader.len(),
    });

    let mut response = object_headers(&reader.entry, &parts.headers, query, range.is_none())?;
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if let Some(count) = parts_count {
        response
            .headers_mut()
            .insert("x-amz-mp-parts-count", HeaderValue::from(count));
    }
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let content_range = format!("bytes {start}-{}/{}", end.saturating_sub(1), reader.len());
        response.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&content_range).expect("ASCII"),
        );
    }

    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        let sent = reader.read_range(start, end, &mut |chunk| {
            tx.blocking_send(Ok(Bytes::copy_from_slice(chunk)))
                .map_err(|_| VaultError::Internal("the client stopped reading".to_owned()))
        });
        match sent {
            Ok(()) | Err(VaultError::Internal(_)) => {}
            Err(err) => {
                tracing::error!(error = %crate::error::ErrorChain(&err), entry = %reader.entry.id, "reading an object failed mid-stream; the response is cut short");
                let _ =
                    tx.blocking_send(Err(std::io::Error::other("stored data could not be read")));
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    *response.body_mut() = Body::from_stream(stream);
    Ok(response)
}

/// `HEAD /bucket/key`.
///
/// # Errors
/// `NoSuchKey`, `PreconditionFailed`, or a storage failure.
pub async fn head_object(
    gateway: &Gateway,
    bucket: &BucketRow,
    target: &Target,
    parts: &Parts,
    query: &[(String, String)],
) -> Result<Response, S3Error> {
    let Ok(key) = object_key(target) else {
        return Err(no_such_key(target));
    };
    let vault = bucket.vault;
    // Only a part-number HEAD needs the part layout; a plain HEAD reads metadata alone.
    let (entry, object_parts) = if query_value(query, "partNumber").is_some() {
        let reader = blocking(&gateway.engine, move |engine| {
            engine.open_object(vault, &key)
        })
        .await?;
        let object_parts = reader.parts().to_vec();
        (reader.entry, object_parts)
    } else {
        let entry = blocking(&gateway.engine, move |engine| {
            engine.head_object(vault, &key)
        })
        .await?;
        (entry, Vec::new())
    };
    if conditional::evaluate(&parts.headers, &entry)? == Precondition::NotModified {
        return Ok(not_modified(&entry));
    }
    let (range, parts_count) = select_range(parts, query, &entry, &object_parts)?;
    let mut response = object_headers(&entry, &parts.headers, query, range.is_none())?;
    if let Some(count) = parts_count {
        response
            .headers_mut()
            .insert("x-amz-mp-parts-count", HeaderValue::from(count));
    }
    match range {
        Some(ByteRange { start, end }) => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
            let content_range = format!("bytes {start}-{}/{}", end.saturating_sub(1), entry.size);
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&content_range).expect("ASCII"),
            );
        }
        None => {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(entry.size));
        }
    }
    Ok(response)
}

/// `DELETE /bucket/key`: succeeds whether or not the key existed.
///
/// # Errors
/// A storage failure.
pub async fn delete_object(
    gateway: &Gateway,
    bucket: &BucketRow,
    target: &Target,
) -> Result<Response, S3Error> {
    // A key that cannot be a path names no object, so deleting it succeeds as for any absent key.
    if let Ok(key) = object_key(target) {
        let vault = bucket.vault;
        blocking(&gateway.engine, move |engine| {
            engine.delete_object(vault, &key)
        })
        .await?;
    }
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .expect("valid response"))
}

/// The byte range a GET or HEAD serves: a `partNumber` (one part of a multipart object, or the
/// whole of any other object as its part 1) or a `Range` header. Also returns the part count to
/// report for a multipart object.
fn select_range(
    parts: &Parts,
    query: &[(String, String)],
    entry: &Entry,
    object_parts: &[StoredPart],
) -> Result<(Option<ByteRange>, Option<usize>), S3Error> {
    if query_value(query, "partNumber").is_none() {
        let header = parts
            .headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok());
        return Ok((conditional::parse_range(header, entry.size)?, None));
    }
    let number = super::multipart::part_number(query)?;
    let invalid = || {
        S3Error::new(
            S3ErrorCode::InvalidPartNumber,
            "The requested partnumber is not satisfiable",
        )
    };
    if object_parts.is_empty() {
        return if number == 1 {
            Ok((
                Some(ByteRange {
                    start: 0,
                    end: entry.size,
                }),
                None,
            ))
        } else {
            Err(invalid())
        };
    }
    // Parts are numbered by position in the object, 1..=count, whatever numbers they were
    // uploaded under: clients read a multipart object back as parts 1 to x-amz-mp-parts-count.
    let index = usize::try_from(number - 1).map_err(|_| invalid())?;
    let part = object_parts.get(index).ok_or_else(invalid)?;
    let range = ByteRange {
        start: part.offset,
        end: part.offset + part.size,
    };
    Ok((Some(range), Some(object_parts.len())))
}

fn no_such_key(target: &Target) -> S3Error {
    S3Error::new(S3ErrorCode::NoSuchKey, "The specified key does not exist.")
        .with_field("Key", target.key.clone().unwrap_or_default())
}

fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

fn not_modified(entry: &Entry) -> Response {
    let mut response = Response::builder().status(StatusCode::NOT_MODIFIED);
    if let Some(etag) = &entry.etag {
        response = response.header(header::ETAG, quoted(etag));
    }
    response
        .header(header::LAST_MODIFIED, http_date_ms(entry.mtime_ms))
        .body(Body::empty())
        .expect("valid response")
}

/// The headers of a GET or HEAD answer: system metadata, user metadata, ETag, dates, checksums
/// (when asked for, and only for the whole object: a part has another checksum), with
/// `response-*` query overrides applied.
fn object_headers(
    entry: &Entry,
    request: &HeaderMap,
    query: &[(String, String)],
    whole_object: bool,
) -> Result<Response, S3Error> {
    let attrs = &entry.attrs;
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: Option<&str>, override_param: &str| {
        let value = query_value(query, override_param).or(value);
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, value);
        }
    };
    set(
        header::CONTENT_TYPE,
        Some(
            attrs
                .content_type
                .as_deref()
                .unwrap_or(DEFAULT_CONTENT_TYPE),
        ),
        "response-content-type",
    );
    set(
        header::CONTENT_ENCODING,
        attrs.content_encoding.as_deref(),
        "response-content-encoding",
    );
    set(
        header::CONTENT_DISPOSITION,
        attrs.content_disposition.as_deref(),
        "response-content-disposition",
    );
    set(
        header::CONTENT_LANGUAGE,
        attrs.content_language.as_deref(),
        "response-content-language",
    );
    set(
        header::CACHE_CONTROL,
        attrs.cache_control.as_deref(),
        "response-cache-control",
    );
    set(
        header::EXPIRES,
        attrs.expires.as_deref(),
        "response-expires",
    );
    if let Some(etag) = &entry.etag {
        headers.insert(
            header::ETAG,
            HeaderValue::from_str(&quoted(etag)).expect("hex ETag"),
        );
    }
    headers.insert(header::LAST_MODIFIED, http_date_ms(entry.mtime_ms));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    for (name, value) in &attrs.user {
        let name = HeaderName::from_bytes(format!("x-amz-meta-{name}").as_bytes());
        if let (Ok(name), Ok(value)) = (name, HeaderValue::from_bytes(value.as_bytes())) {
            headers.append(name, value);
        }
    }
    let checksum_mode = request
        .get("x-amz-checksum-mode")
        .and_then(|v| v.to_str().ok());
    if whole_object && checksum_mode.is_some_and(|mode| mode.eq_ignore_ascii_case("ENABLED")) {
        for (algorithm, value) in &attrs.checksums {
            let name = HeaderName::from_bytes(
                format!("x-amz-checksum-{}", algorithm.to_ascii_lowercase()).as_bytes(),
            );
            if let (Ok(name), Ok(value)) = (name, HeaderValue::from_str(value)) {
                headers.insert(name, value);
            }
        }
    }
    Ok(response)
}

/// The attributes of a PUT: system metadata headers and `x-amz-meta-*`.
///
/// # Errors
/// `MetadataTooLarge` past 2 KB of user metadata.
pub fn attrs_from_headers(headers: &HeaderMap) -> Result<ObjectAttrs, S3Error> {
    let text = |name: HeaderName| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
    };
    let content_encoding = text(header::CONTENT_ENCODING).and_then(|value| {
        // `aws-chunked` only frames the upload; it is not a property of the object.
        let kept: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("aws-chunked"))
            .collect();
        (!kept.is_empty()).then(|| kept.join(", "))
    });
    let mut user = std::collections::BTreeMap::new();
    let mut user_size = 0;
    for (name, value) in headers {
        let Some(meta_name) = name.as_str().strip_prefix("x-amz-meta-") else {
            continue;
        };
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        user_size += meta_name.len() + value.len();
        user.insert(meta_name.to_owned(), value);
    }
    if user_size > MAX_USER_METADATA {
        return Err(S3Error::new(
            S3ErrorCode::MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size.",
        )
        .with_field("Size", user_size.to_string())
        .with_field("MaxSizeAllowed", MAX_USER_METADATA.to_string()));
    }
    Ok(ObjectAttrs {
        content_type: text(header::CONTENT_TYPE),
        content_encoding,
        content_disposition: text(header::CONTENT_DISPOSITION),
        content_language: text(header::CONTENT_LANGUAGE),
        cache_control: text(header::CACHE_CONTROL),
        expires: text(header::EXPIRES),
        user,
        checksums: std::collections::BTreeMap::new(),
    })
}

/// `If-None-Match: *` and `If-Match` on a write.
///
/// # Errors
/// `NotImplemented` for an `If-None-Match` other than `*`, as S3 answers.
pub fn write_condition(headers: &HeaderMap) -> Result<WriteCondition, S3Error> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(value) = text(header::IF_NONE_MATCH) {
        if value != "*" {
            return Err(S3Error::new(
                S3ErrorCode::NotImplemented,
                "A header you provided implies functionality that is not implemented",
            )
            .with_field("Header", "If-None-Match"));
        }
        return Ok(WriteCondition::IfAbsent);
    }
    Ok(match text(header::IF_MATCH) {
        Some(value) => WriteCondition::IfMatch(value.trim_matches('"').to_owned()),
        None => WriteCondition::None,
    })
}
