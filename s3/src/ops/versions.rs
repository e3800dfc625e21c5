//! ListObjectVersions (`GET /bucket?versions`).
//!
//! Versioning is never enabled here, so every object has exactly one version, `null`, which is
//! the latest; there are no delete markers. The listing is ListObjects with versions' element
//! names and paging by `key-marker` and `version-id-marker`, as AWS answers for a bucket that
//! never had versioning. Tools that empty buckets (boto3's `object_versions.delete()`, backup
//! pruners) page through it and delete what it returns.

use axum::response::Response;
use vault::BucketRow;
use vault::meta::{ListItem, ListQuery};

use super::bucket::xml_response;
use super::iso8601_ms;
use crate::error::{S3Error, S3ErrorCode};
use crate::router::query_value;
use crate::xml::XmlWriter;
use crate::{Gateway, OWNER_DISPLAY_NAME, OWNER_ID};

/// The version id of every object in a bucket without versioning.
const NULL_VERSION: &str = "null";
/// The ETag of content-less entries (directory markers): the MD5 of nothing.
const EMPTY_ETAG: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// The request's parameters, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
struct VersionsQuery {
    prefix: String,
    delimiter: String,
    key_marker: String,
    version_id_marker: String,
    max_keys: usize,
    url_encoding: bool,
}

impl VersionsQuery {
    fn parse(query: &[(String, String)]) -> Result<Self, S3Error> {
        let text = |name| query_value(query, name).unwrap_or_default().to_owned();
        let parsed = Self {
            prefix: text("prefix"),
            delimiter: text("delimiter"),
            key_marker: text("key-marker"),
            version_id_marker: text("version-id-marker"),
            max_keys: super::list::parse_max_keys(query)?,
            url_encoding: super::list::parse_encoding(query)?.url,
        };
        if parsed.version_id_marker.is_empty() {
            return Ok(parsed);
        }
        if parsed.key_marker.is_empty() {
            return Err(S3Error::new(
                S3ErrorCode::InvalidArgument,
                "A version-id marker cannot be specified without a key marker.",
            )
            .with_field("ArgumentName", "version-id-marker")
            .with_field("ArgumentValue", parsed.version_id_marker));
        }
        if parsed.version_id_marker != NULL_VERSION {
            return Err(
                S3Error::new(S3ErrorCode::InvalidArgument, "Invalid version id specified")
                    .with_field("ArgumentName", "version-id-marker")
                    .with_field("ArgumentValue", parsed.version_id_marker),
            );
        }
        Ok(parsed)
    }

    /// The engine's listing: keys after the key marker. A `null` version-id marker resumes
    /// after that key too, since `null` is its only version; a marker that is a common prefix
    /// an earlier page ended on resumes after the whole prefix.
    fn listing(&self) -> ListQuery {
        let after_prefix = !self.delimiter.is_empty()
            && self.key_marker.ends_with(&self.delimiter)
            && self.key_marker.starts_with(&self.prefix);
        ListQuery {
            prefix: self.prefix.clone(),
            delimiter: self.delimiter.clone(),
            start_after: self.key_marker.clone(),
            after_prefix,
            max_keys: self.max_keys,
        }
    }

    fn encode(&self, text: &str) -> String {
        super::list::Encoder {
            url: self.url_encoding,
        }
        .apply(text)
    }
}

/// `GET /bucket?versions`.
///
/// # Errors
/// `InvalidArgument` for a bad max-keys, encoding type or version-id marker; a metadata
/// failure.
pub async fn list_object_versions(
    gateway: &Gateway,
    bucket: &BucketRow,
    query: &[(String, String)],
) -> Result<Response, S3Error> {
    let request = VersionsQuery::parse(query)?;
    let (items, truncated) = if request.max_keys == 0 {
        (Vec::new(), false)
    } else {
        let engine = std::sync::Arc::clone(&gateway.engine);
        let vault = bucket.vault;
        let listing = request.listing();
        tokio::task::spawn_blocking(move || engine.list_objects(vault, &listing))
            .await
            .map_err(|err| S3Error::internal(&err))?
            .map_err(S3Error::from)?
    };
    Ok(xml_response(versions_result(
        &bucket.name,
        &request,
        &items,
        truncated,
    )))
}

/// The `<ListVersionsResult>` document, elements in the order AWS sends them.
fn versions_result(
    bucket: &str,
    request: &VersionsQuery,
    items: &[ListItem],
    truncated: bool,
) -> String {
    let mut xml = XmlWriter::new();
    xml.open_root("ListVersionsResult");
    xml.element("Name", bucket);
    xml.element("Prefix", &request.encode(&request.prefix));
    xml.element("KeyMarker", &request.encode(&request.key_marker));
    xml.element("VersionIdMarker", &request.version_id_marker);
    if truncated {
        match items.last() {
            Some(ListItem::Object(entry)) => {
                xml.element("NextKeyMarker", &request.encode(&entry.path));
                xml.element("NextVersionIdMarker", NULL_VERSION);
            }
            // A page that ends on a common prefix resumes after the whole prefix; it has no
            // version to name.
            Some(ListItem::Prefix(prefix)) => {
                xml.element("NextKeyMarker", &request.encode(prefix));
            }
            None => {}
        }
    }
    xml.element("MaxKeys", &request.max_keys.to_string());
    if !request.delimiter.is_empty() {
        xml.element("Delimiter", &request.encode(&request.delimiter));
    }
    xml.element("IsTruncated", if truncated { "true" } else { "false" });
    if request.url_encoding {
        xml.element("EncodingType", "url");
    }
    for item in items {
        let ListItem::Object(entry) = item else {
            continue;
        };
        xml.open("Version");
        xml.element("Key", &request.encode(&entry.path));
        xml.element("VersionId", NULL_VERSION);
        xml.element("IsLatest", "true");
        xml.element("LastModified", &iso8601_ms(entry.mtime_ms));
        let etag = entry.etag.as_deref().unwrap_or(EMPTY_ETAG);
        xml.element("ETag", &format!("\"{etag}\""));
        xml.element("Size", &entry.size.to_string());
        xml.open("Owner");
        xml.element("ID", OWNER_ID);
        xml.element("DisplayName", OWNER_DISPLAY_NAME);
        xml.close("Owner");
        xml.element("StorageClass", "STANDARD");
        xml.close("Version");
    }
    for item in items {
        let ListItem::Prefix(prefix) = item else {
            continue;
        };
        xml.open("CommonPrefixes");
        xml.element("Prefix", &request.encode(prefix));
        xml.close("CommonPrefixes");
    }
    xml.close("ListVersionsResult");
    xml.finish()
}

#[cfg(test)]
mod tests {
    use vault::meta::{Entry, EntryKind, ObjectAttrs};

    use super::*;

    fn query(text: &str) -> Vec<(String, String)> {
        crate::router::parse_query(Some(text))
    }

    fn entry(path: &str, size: u64, etag: Option<&str>) -> ListItem {
        ListItem::Object(Box::new(Entry {
            id: vault::EntryId(7),
            vault: vault::VaultId(1),
            parent: None,
            name: path.rsplit('/').next().unwrap_or_default().to_owned(),
            path: path.to_owned(),
            kind: EntryKind::File,
            explicit: false,
            size,
            mode: 0o644,
            mtime_ms: 1_700_000_000_123,
            blob: None,
            key_version: None,
            etag: etag.map(str::to_owned),
            attrs: ObjectAttrs::default(),
            parts: 0,
            uid: 0,
            gid: 0,
            ctime_ms: 1_700_000_000_123,
            atime_ms: 1_700_000_000_123,
            target: None,
            inline: false,
        }))
    }

    #[test]
    fn result_has_null_versions_then_prefixes_in_aws_order() {
        let request = VersionsQuery::parse(&query("versions&delimiter=/&max-keys=3")).unwrap();
        let items = vec![
            entry("a&b", 5, Some("abc")),
            entry("dir/", 0, None),
            ListItem::Prefix("p/".to_owned()),
        ];
        let owner = "<Owner><ID>vaulthalla</ID><DisplayName>vaulthalla</DisplayName></Owner>";
        let version = |key: &str, etag: &str, size: u32| {
            format!(
                "<Version><Key>{key}</Key><VersionId>null</VersionId><IsLatest>true</IsLatest>\
                 <LastModified>2023-11-14T22:13:20.123Z</LastModified>\
                 <ETag>&quot;{etag}&quot;</ETag><Size>{size}</Size>{owner}\
                 <StorageClass>STANDARD</StorageClass></Version>"
            )
        };
        let expected = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Name>bkt</Name><Prefix></Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker>\
             <NextKeyMarker>p/</NextKeyMarker><MaxKeys>3</MaxKeys><Delimiter>/</Delimiter>\
             <IsTruncated>true</IsTruncated>{}{}\
             <CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes></ListVersionsResult>",
            version("a&amp;b", "abc", 5),
            version("dir/", EMPTY_ETAG, 0),
        );
        assert_eq!(versions_result("bkt", &request, &items, true), expected);
    }

    #[test]
    fn truncated_page_ending_on_a_version_names_it_and_url_encodes_keys() {
        let request = VersionsQuery::parse(&query(
            "versions&encoding-type=url&key-marker=a%20b&version-id-marker=null",
        ))
        .unwrap();
        let doc = versions_result("bkt", &request, &[entry("c d/e", 1, Some("x"))], true);
        assert!(
            doc.contains(
                "<KeyMarker>a%20b</KeyMarker><VersionIdMarker>null</VersionIdMarker>\
                 <NextKeyMarker>c%20d/e</NextKeyMarker><NextVersionIdMarker>null</NextVersionIdMarker>\
                 <MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><EncodingType>url</EncodingType>\
                 <Version><Key>c%20d/e</Key>"
            ),
            "{doc}"
        );
        let done = versions_result("bkt", &request, &[], false);
        assert!(!done.contains("NextKeyMarker"), "{done}");
    }

    #[test]
    fn markers_are_checked() {
        let parsed =
            VersionsQuery::parse(&query("versions&key-marker=a&version-id-marker=null")).unwrap();
        assert_eq!(parsed.listing().start_after, "a");
        let err = VersionsQuery::parse(&query("versions&version-id-marker=null")).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidArgument);
        let err = VersionsQuery::parse(&query("versions&key-marker=a&version-id-marker=3HL4kq"))
            .unwrap_err();
        assert_eq!(err.message, "Invalid version id specified");
        assert!(VersionsQuery::parse(&query("versions&max-keys=-1")).is_err());
        assert!(VersionsQuery::parse(&query("versions&encoding-type=base64")).is_err());
        let parsed =
            VersionsQuery::parse(&query("versions&delimiter=/&prefix=p/&key-marker=p/q/")).unwrap();
        assert!(parsed.listing().after_prefix);
        assert_eq!(VersionsQuery::parse(&[]).unwrap().max_keys, 1000);
    }
}
