//! ListObjectsV2 and ListObjects (v1).

use axum::response::Response;
use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use vault::meta::{ListItem, ListQuery};
use vault::{BucketRow, VaultError};

use super::bucket::xml_response;
use super::iso8601_ms;
use crate::error::{S3Error, S3ErrorCode};
use crate::router::query_value;
use crate::xml::XmlWriter;
use crate::{Gateway, OWNER_DISPLAY_NAME, OWNER_ID};

/// What `encoding-type=url` leaves unescaped: S3 keeps `/` readable.
const URL_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

pub(crate) struct Encoder {
    pub(crate) url: bool,
}

impl Encoder {
    pub(crate) fn apply(&self, text: &str) -> String {
        if self.url {
            utf8_percent_encode(text, URL_ENCODE_SET).to_string()
        } else {
            text.to_owned()
        }
    }
}

pub(crate) fn parse_max_keys(query: &[(String, String)]) -> Result<usize, S3Error> {
    super::multipart::page_size(query, "max-keys")
}

pub(crate) fn parse_encoding(query: &[(String, String)]) -> Result<Encoder, S3Error> {
    match query_value(query, "encoding-type") {
        None => Ok(Encoder { url: false }),
        Some(value) if value.eq_ignore_ascii_case("url") => Ok(Encoder { url: true }),
        Some(_) => Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "Invalid Encoding Method specified in Request",
        )),
    }
}

/// A continuation token names where the last page ended: after a key, or after a whole common
/// prefix. It is opaque to clients (base64) and checked when it comes back.
fn encode_token(item: &ListItem) -> String {
    let text = match item {
        ListItem::Object(entry) => format!("k{}", entry.path),
        ListItem::Prefix(prefix) => format!("p{prefix}"),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn decode_token(token: &str) -> Result<(String, bool), S3Error> {
    let invalid = || {
        S3Error::new(
            S3ErrorCode::InvalidArgument,
            "The continuation token provided is incorrect",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    match text.split_at_checked(1) {
        Some(("k", key)) => Ok((key.to_owned(), false)),
        Some(("p", prefix)) => Ok((prefix.to_owned(), true)),
        _ => Err(invalid()),
    }
}

async fn run_listing(
    gateway: &Gateway,
    bucket: &BucketRow,
    query: ListQuery,
) -> Result<(Vec<ListItem>, bool), S3Error> {
    if query.max_keys == 0 {
        return Ok((Vec::new(), false));
    }
    let engine = std::sync::Arc::clone(&gateway.engine);
    let vault = bucket.vault;
    tokio::task::spawn_blocking(move || engine.list_objects(vault, &query))
        .await
        .map_err(|err| S3Error::internal(&err))?
        .map_err(|err: VaultError| S3Error::from(err))
}

fn write_items(xml: &mut XmlWriter, items: &[ListItem], encoder: &Encoder, fetch_owner: bool) {
    for item in items {
        let ListItem::Object(entry) = item else {
            continue;
        };
        xml.open("Contents");
        xml.element("Key", &encoder.apply(&entry.path));
        xml.element("LastModified", &iso8601_ms(entry.mtime_ms));
        xml.element(
            "ETag",
            &format!(
                "\"{}\"",
                entry
                    .etag
                    .as_deref()
                    .unwrap_or("d41d8cd98f00b204e9800998ecf8427e")
            ),
        );
        xml.element("Size", &entry.size.to_string());
        if fetch_owner {
            xml.open("Owner");
            xml.element("ID", OWNER_ID);
            xml.element("DisplayName", OWNER_DISPLAY_NAME);
            xml.close("Owner");
        }
        xml.element("StorageClass", "STANDARD");
        xml.close("Contents");
    }
    for item in items {
        let ListItem::Prefix(prefix) = item else {
            continue;
        };
        xml.open("CommonPrefixes");
        xml.element("Prefix", &encoder.apply(prefix));
        xml.close("CommonPrefixes");
    }
}

/// `GET /bucket?list-type=2`.
///
/// # Errors
/// `InvalidArgument` for a bad max-keys, encoding type or continuation token.
pub async fn list_objects_v2(
    gateway: &Gateway,
    bucket: &BucketRow,
    query: &[(String, String)],
) -> Result<Response, S3Error> {
    let max_keys = parse_max_keys(query)?;
    let encoder = parse_encoding(query)?;
    let prefix = query_value(query, "prefix").unwrap_or_default().to_owned();
    let delimiter = query_value(query, "delimiter")
        .unwrap_or_default()
        .to_owned();
    let start_after = query_value(query, "start-after")
        .unwrap_or_default()
        .to_owned();
    let token = query_value(query, "continuation-token");
    let fetch_owner = query_value(query, "fetch-owner") == Some("true");
    let (resume_from, after_prefix) = match token {
        Some(token) => decode_token(token)?,
        None => (start_after.clone(), false),
    };
    let listing = ListQuery {
        prefix: prefix.clone(),
        delimiter: delimiter.clone(),
        start_after: resume_from,
        after_prefix,
        max_keys,
    };
    let (items, truncated) = run_listing(gateway, bucket, listing).await?;

    let mut xml = XmlWriter::new();
    xml.open_root("ListBucketResult");
    xml.element("Name", &bucket.name);
    xml.element("Prefix", &encoder.apply(&prefix));
    if let Some(token) = token {
        xml.element("ContinuationToken", token);
    }
    if truncated && let Some(last) = items.last() {
        xml.element("NextContinuationToken", &encode_token(last));
    }
    xml.element("KeyCount", &items.len().to_string());
    xml.element("MaxKeys", &max_keys.to_string());
    if !delimiter.is_empty() {
        xml.element("Delimiter", &encoder.apply(&delimiter));
    }
    xml.element("IsTruncated", if truncated { "true" } else { "false" });
    if !start_after.is_empty() {
        xml.element("StartAfter", &encoder.apply(&start_after));
    }
    if encoder.url {
        xml.element("EncodingType", "url");
    }
    write_items(&mut xml, &items, &encoder, fetch_owner);
    xml.close("ListBucketResult");
    Ok(xml_response(xml.finish()))
}

/// `GET /bucket` (ListObjects v1, with `marker`).
///
/// # Errors
/// `InvalidArgument` for a bad max-keys or encoding type.
pub async fn list_objects(
    gateway: &Gateway,
    bucket: &BucketRow,
    query: &[(String, String)],
) -> Result<Response, S3Error> {
    let max_keys = parse_max_keys(query)?;
    let encoder = parse_encoding(query)?;
    let prefix = query_value(query, "prefix").unwrap_or_default().to_owned();
    let delimiter = query_value(query, "delimiter")
        .unwrap_or_default()
        .to_owned();
    let marker = query_value(query, "marker").unwrap_or_default().to_owned();
    // A marker that is a common prefix returned by an earlier page resumes after that prefix.
    let after_prefix =
        !delimiter.is_empty() && marker.ends_with(&delimiter) && marker.starts_with(&prefix);
    let listing = ListQuery {
        prefix: prefix.clone(),
        delimiter: delimiter.clone(),
        start_after: marker.clone(),
        after_prefix,
        max_keys,
    };
    let (items, truncated) = run_listing(gateway, bucket, listing).await?;

    let mut xml = XmlWriter::new();
    xml.open_root("ListBucketResult");
    xml.element("Name", &bucket.name);
    xml.element("Prefix", &encoder.apply(&prefix));
    xml.element("Marker", &encoder.apply(&marker));
    if truncated && !delimiter.is_empty() {
        let next = match items.last() {
            Some(ListItem::Object(entry)) => entry.path.clone(),
            Some(ListItem::Prefix(prefix)) => prefix.clone(),
            None => String::new(),
        };
        xml.element("NextMarker", &encoder.apply(&next));
    }
    xml.element("MaxKeys", &max_keys.to_string());
    if !delimiter.is_empty() {
        xml.element("Delimiter", &encoder.apply(&delimiter));
    }
    xml.element("IsTruncated", if truncated { "true" } else { "false" });
    if encoder.url {
        xml.element("EncodingType", "url");
    }
    write_items(&mut xml, &items, &encoder, true);
    xml.close("ListBucketResult");
    Ok(xml_response(xml.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let token = encode_token(&ListItem::Prefix("a/b/".into()));
        assert_eq!(decode_token(&token).unwrap(), ("a/b/".to_owned(), true));
        assert!(decode_token("!!!").is_err());
        assert!(
            decode_token(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("xabc")).is_err()
        );
    }

    #[test]
    fn url_encoding_keeps_slashes() {
        let encoder = Encoder { url: true };
        assert_eq!(encoder.apply("a b/c+d&é"), "a%20b/c%2Bd%26%C3%A9");
    }
}
