//! Multipart uploads: CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
//! AbortMultipartUpload, ListMultipartUploads, ListParts.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http_body_util::BodyExt;
use vault::meta::parts::StoredPart;
use vault::meta::uploads::{Upload, UploadQuery};
use vault::{BucketRow, CompletePart, MAX_PART_NUMBER, VaultError};

use super::bucket::xml_response;
use super::object::{attrs_from_headers, object_key, write_condition};
use super::{blocking, iso8601_ms};
use crate::auth::Authenticated;
use crate::body::{self, BodyExpectations};
use crate::checksum::{ChecksumAlgorithm, combine};
use crate::error::{S3Error, S3ErrorCode};
use crate::router::{Target, query_value};
use crate::xml::XmlWriter;
use crate::{Gateway, OWNER_DISPLAY_NAME, OWNER_ID};

/// The most parts or uploads one listing page holds.
const MAX_PAGE: usize = 1000;
/// The largest CompleteMultipartUpload body read: 10,000 parts with checksums fit in ~2 MiB.
const MAX_COMPLETE_BODY: usize = 4 * 1024 * 1024;
/// The largest part S3 accepts.
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// How an upload's object checksum is formed, as declared at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChecksumKind {
    Composite,
    FullObject,
}

/// The stored form of an upload's declared checksum: `CRC32` or `CRC32:FULL_OBJECT`.
fn parse_declared(declared: Option<&str>) -> Option<(ChecksumAlgorithm, ChecksumKind)> {
    let declared = declared?;
    let (name, kind) = declared.split_once(':').unwrap_or((declared, "COMPOSITE"));
    let kind = if kind == "FULL_OBJECT" {
        ChecksumKind::FullObject
    } else {
        ChecksumKind::Composite
    };
    Some((ChecksumAlgorithm::from_name(name)?, kind))
}

fn invalid_argument(message: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument, message)
}

/// The `partNumber` query parameter, 1..=10000.
///
/// # Errors
/// `InvalidArgument` otherwise.
pub fn part_number(query: &[(String, String)]) -> Result<u32, S3Error> {
    query_value(query, "partNumber")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            invalid_argument("Part number must be an integer between 1 and 10000, inclusive")
        })
}

/// The upload named by `uploadId`, in this bucket.
///
/// # Errors
/// `NoSuchUpload`, also when the upload belongs to another key.
pub async fn find_upload(
    gateway: &Gateway,
    bucket: &BucketRow,
    target: &Target,
    query: &[(String, String)],
) -> Result<Upload, S3Error> {
    let upload_id = query_value(query, "uploadId")
        .unwrap_or_default()
        .to_owned();
    let vault = bucket.vault;
    let id = upload_id.clone();
    let upload = blocking(&gateway.engine, move |engine| engine.upload(vault, &id)).await?;
    if Some(upload.key.as_str()) != target.key.as_deref() {
        return Err(S3Error::from(VaultError::NoSuchUpload(upload_id)));
    }
    Ok(upload)
}

/// `POST /bucket/key?uploads`.
///
/// # Errors
/// An invalid key, metadata or checksum algorithm.
pub async fn create_multipart_upload(
    gateway: &Gateway,
    bucket: &BucketRow,
    target: &Target,
    parts: &Parts,
) -> Result<Response, S3Error> {
    let key = object_key(target)?;
    let attrs = attrs_from_headers(&parts.headers)?;
    let text = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let algorithm = text("x-amz-checksum-algorithm")
        .map(|name| {
            ChecksumAlgorithm::from_name(name)
                .ok_or_else(|| invalid_argument("Checksum algorithm provided is unsupported."))
        })
        .transpose()?;
    let full_object = match text("x-amz-checksum-type") {
        None => matches!(algorithm, Some(ChecksumAlgorithm::Crc64Nvme)),
        Some(kind) if kind.eq_ignore_ascii_case("FULL_OBJECT") => true,
        Some(kind) if kind.eq_ignore_ascii_case("COMPOSITE") => false,
        Some(_) => {
            return Err(invalid_argument(
                "Value for x-amz-checksum-type header is invalid.",
            ));
        }
    };
    if full_object
        && matches!(
            algorithm,
            Some(ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256)
        )
    {
        return Err(invalid_argument(
            "The FULL_OBJECT checksum type cannot be used with the SHA1 or SHA256 checksum algorithm.",
        ));
    }
    let declared = algorithm.map(|alg| {
        if full_object {
            format!("{}:FULL_OBJECT", alg.name())
        } else {
            alg.name().to_owned()
        }
    });
    let vault = bucket.vault;
    let key_for_engine = key.clone();
    let upload = blocking(&gateway.engine, move |engine| {
        engine.create_upload(vault, &key_for_engine, attrs, declared)
    })
    .await?;

    let mut xml = XmlWriter::new();
    xml.open_root("InitiateMultipartUploadResult");
    xml.element("Bucket", &bucket.name);
    xml.element("Key", key.as_str());
    xml.element("UploadId", &upload.upload_id);
    xml.close("InitiateMultipartUploadResult");
    let mut response = xml_response(xml.finish());
    if let Some(algorithm) = algorithm {
        let headers = response.headers_mut();
        headers.insert(
            "x-amz-checksum-algorithm",
            HeaderValue::from_static(algorithm.name()),
        );
        let kind = if full_object {
            "FULL_OBJECT"
        } else {
            "COMPOSITE"
        };
        headers.insert("x-amz-checksum-type", HeaderValue::from_static(kind));
    }
    Ok(response)
}

/// `PUT /bucket/key?partNumber=N&uploadId=U`.
///
/// # Errors
/// `NoSuchUpload`, a bad part number, or any check of the body.
pub async fn upload_part(
    gateway: &Gateway,
    bucket: &BucketRow,
    target: &Target,
    parts: &Parts,
    query: &[(String, String)],
    body: Body,
    auth: Authenticated,
) -> Result<Response, S3Error> {
    let number = part_number(query)?;
    let upload = find_upload(gateway, bucket, target, query).await?;
    let declared = parse_declared(upload.checksum_algorithm.as_deref());
    let max_len = gateway.config.max_body_size.min(MAX_PART_SIZE);
    let mut expect =
        BodyExpectations::from_headers(&parts.headers, auth.payload, auth.streaming, max_len)?;
    expect.compute = declared.map(|(algorithm, _)| algorithm);
    expect.part = true;
    let received = body::receive(&gateway.engine, bucket.vault, body, expect).await?;
    let checksum =
        declared.and_then(|(algorithm, _)| received.checksums.get(algorithm.name()).cloned());
    let writer = received.writer;
    let part_checksum = checksum.clone();
    let part = blocking(&gateway.engine, move |engine| {
        engine.commit_part(&upload, number, writer, part_checksum)
    })
    .await?;

    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(header::ETAG, format!("\"{}\"", part.etag));
    if let (Some((algorithm, _)), Some(value)) = (declared, checksum) {
        response = response.header(algorithm.header_name(), value);
    }
    Ok(response.body(Body::empty()).expect("valid response"))
}

/// Records a part whose content was produced elsewhere (UploadPartCopy).
///
/// # Errors
/// `NoSuchUpload`, or a storage failure.
pub async fn commit_copied_part(
    gateway: &Gateway,
    upload: Upload,
    number: u32,
    writer: vault::ObjectWriter,
    checksum: Option<String>,
) -> Result<StoredPart, S3Error> {
    blocking(&gateway.engine, move |engine| {
        engine.commit_part(&upload, number, writer, checksum)
    })
    .await
}

/// The declared checksum algorithm of an upload, for parts written by copy.
#[must_use]
pub fn declared_algorithm(upload: &Upload) -> Option<ChecksumAlgorithm> {
    parse_declared(upload.checksum_algorithm.as_deref()).map(|(algorithm, _)| algorithm)
}

struct RequestedPart {
    part_number: u32,
    etag: String,
    checksums: Vec<(ChecksumAlgorithm, String)>,
}

fn malformed() -> S3Error {
    S3Error::new(
        S3ErrorCode::MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema.",
    )
}

/// The fields of one `<Part>` as they are read: number, ETag, checksums.
type PartFields = (
    Option<u32>,
    Option<String>,
    Vec<(ChecksumAlgorithm, String)>,
);

/// Parses `<CompleteMultipartUpload><Part><PartNumber/><ETag/><ChecksumCRC32/>…</Part>…`.
fn parse_complete(body: &[u8]) -> Result<Vec<RequestedPart>, S3Error> {
    use quick_xml::events::Event;

    let mut reader = quick_xml::Reader::from_reader(body);
    let mut path: Vec<String> = Vec::new();
    let mut parts = Vec::new();
    let mut current: Option<PartFields> = None;
    let mut field_text = String::new();
    loop {
        match reader.read_event().map_err(|_| malformed())? {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                if path.is_empty() && name != "CompleteMultipartUpload" {
                    return Err(malformed());
                }
                if path.len() == 1 && name == "Part" {
                    current = Some((None, None, Vec::new()));
                }
                field_text.clear();
                path.push(name);
            }
            Event::End(_) => {
                if path.len() == 3 {
                    let value = std::mem::take(&mut field_text).trim().to_owned();
                    if let Some((number, etag, checksums)) = current.as_mut() {
                        match path[2].as_str() {
                            "PartNumber" => *number = Some(value.parse().map_err(|_| malformed())?),
                            "ETag" => *etag = Some(value),
                            other => {
                                let algorithm = other
                                    .strip_prefix("Checksum")
                                    .and_then(ChecksumAlgorithm::from_name);
                                if let Some(algorithm) = algorithm {
                                    checksums.push((algorithm, value));
                                }
                            }
                        }
                    }
                }
                if path.len() == 2 && path[1] == "Part" {
                    let (number, etag, checksums) = current.take().ok_or_else(malformed)?;
                    parts.push(RequestedPart {
                        part_number: number.ok_or_else(malformed)?,
                        etag: etag.ok_or_else(malformed)?,
                        checksums,
                    });
                }
                path.pop();
            }
            Event::Text(text) if path.len() == 3 => {
                field_text.push_str(&text.xml_content().map_err(|_| malformed())?);
            }
            Event::GeneralRef(reference) if path.len() == 3 => {
                field_text
                    .push_str(&crate::xml::resolve_reference(&reference).map_err(|_| malformed())?);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() || parts.is_empty() {
        return Err(malformed());
    }
    Ok(parts)
}

/// `POST /bucket/key?uploadId=U`.
///
/// # Errors
/// `MalformedXML`, `InvalidPart`, `InvalidPartOrder`, `EntityTooSmall`, `NoSuchUpload`,
/// `PreconditionFailed`.
pub async fn complete_multipart_upload(
    gateway: &Gateway,
    bucket: &BucketRow,
    target: &Target,
    parts: &Parts,
    query: &[(String, String)],
    body: Body,
) -> Result<Response, S3Error> {
    let upload = find_upload(gateway, bucket, target, query).await?;
    let condition = write_condition(&parts.headers)?;
    let bytes = http_body_util::Limited::new(body, MAX_COMPLETE_BODY)
        .collect()
        .await
        .map_err(|_| malformed())?
        .to_bytes();
    let requested = parse_complete(&bytes)?;
    let declared = parse_declared(upload.checksum_algorithm.as_deref());
    let claimed: Vec<(u32, Vec<(ChecksumAlgorithm, String)>)> = requested
        .iter()
        .map(|p| (p.part_number, p.checksums.clone()))
        .collect();
    let wanted: Vec<CompletePart> = requested
        .into_iter()
        .map(|p| CompletePart {
            part_number: p.part_number,
            etag: p.etag,
        })
        .collect();
    let min_part_size = gateway.config.min_part_size;
    let upload_for_engine = upload.clone();
    let entry = blocking(&gateway.engine, move |engine| {
        let object_checksum = |chosen: &[StoredPart]| object_checksum(declared, chosen);
        check_claimed_checksums(
            declared,
            &claimed,
            &engine.list_parts(&upload_for_engine, 0, usize::MAX)?.parts,
        )?;
        engine.complete_upload(
            &upload_for_engine,
            &wanted,
            min_part_size,
            &condition,
            &object_checksum,
        )
    })
    .await?;

    let mut xml = XmlWriter::new();
    xml.open_root("CompleteMultipartUploadResult");
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    xml.element(
        "Location",
        &format!("http://{host}/{}/{}", bucket.name, upload.key),
    );
    xml.element("Bucket", &bucket.name);
    xml.element("Key", &upload.key);
    xml.element(
        "ETag",
        &format!("\"{}\"", entry.etag.as_deref().unwrap_or_default()),
    );
    if let Some((algorithm, kind)) = declared
        && let Some(value) = entry.attrs.checksums.get(algorithm.name())
    {
        xml.element(&format!("Checksum{}", algorithm.name()), value);
        xml.element(
            "ChecksumType",
            if kind == ChecksumKind::FullObject {
                "FULL_OBJECT"
            } else {
                "COMPOSITE"
            },
        );
    }
    xml.close("CompleteMultipartUploadResult");
    Ok(xml_response(xml.finish()))
}

/// A checksum a completion claims for a part must be the one recorded for it.
fn check_claimed_checksums(
    declared: Option<(ChecksumAlgorithm, ChecksumKind)>,
    claimed: &[(u32, Vec<(ChecksumAlgorithm, String)>)],
    stored: &[StoredPart],
) -> Result<(), VaultError> {
    for (number, checksums) in claimed {
        for (algorithm, value) in checksums {
            let recorded = stored
                .iter()
                .find(|p| p.part_number == *number)
                .and_then(|p| p.checksum.as_deref());
            let matches = declared.is_some_and(|(alg, _)| alg == *algorithm)
                && recorded == Some(value.as_str());
            if !matches {
                return Err(VaultError::InvalidPart {
                    part_number: *number,
                });
            }
        }
    }
    Ok(())
}

fn object_checksum(
    declared: Option<(ChecksumAlgorithm, ChecksumKind)>,
    chosen: &[StoredPart],
) -> Option<(String, String)> {
    let (algorithm, kind) = declared?;
    let values: Option<Vec<&str>> = chosen.iter().map(|p| p.checksum.as_deref()).collect();
    let values = values?;
    let value = match kind {
        ChecksumKind::Composite => combine::composite(algorithm, &values)?,
        ChecksumKind::FullObject => {
            let sized: Vec<(&str, u64)> = values
                .iter()
                .zip(chosen)
                .map(|(v, p)| (*v, p.size))
                .collect();
            combine::full_object(algorithm, &sized)?
        }
    };
    Some((algorithm.name().to_owned(), value))
}

/// `DELETE /bucket/key?uploadId=U`.
///
/// # Errors
/// `NoSuchUpload`.
pub async fn abort_multipart_upload(
    gateway: &Gateway,
    bucket: &BucketRow,
    target: &Target,
    query: &[(String, String)],
) -> Result<Response, S3Error> {
    let upload = find_upload(gateway, bucket, target, query).await?;
    blocking(&gateway.engine, move |engine| engine.abort_upload(&upload)).await?;
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .expect("valid response"))
}

/// A page-size parameter (`max-keys`, `max-uploads`, `max-parts`): 0..=1000, 1000 when absent.
pub(crate) fn page_size(query: &[(String, String)], name: &str) -> Result<usize, S3Error> {
    match query_value(query, name) {
        None => Ok(MAX_PAGE),
        Some(value) => value
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| usize::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE))
            .ok_or_else(|| {
                invalid_argument(&format!(
                    "Provided {name} not an integer or within integer range"
                ))
            }),
    }
}

fn owner(xml: &mut XmlWriter, element: &str) {
    xml.open(element);
    xml.element("ID", OWNER_ID);
    xml.element("DisplayName", OWNER_DISPLAY_NAME);
    xml.close(element);
}

/// `GET /bucket?uploads`.
///
/// # Errors
/// `InvalidArgument` for a bad `max-uploads`.
pub async fn list_multipart_uploads(
    gateway: &Gateway,
    bucket: &BucketRow,
    query: &[(String, String)],
) -> Result<Response, S3Error> {
    let max_uploads = page_size(query, "max-uploads")?;
    let listing = UploadQuery {
        prefix: query_value(query, "prefix").unwrap_or_default().to_owned(),
        key_marker: query_value(query, "key-marker")
            .unwrap_or_default()
            .to_owned(),
        upload_id_marker: query_value(query, "upload-id-marker")
            .unwrap_or_default()
            .to_owned(),
        max_uploads,
    };
    let vault = bucket.vault;
    let shown = listing.clone();
    let (uploads, truncated) = if max_uploads == 0 {
        (Vec::new(), false)
    } else {
        blocking(&gateway.engine, move |engine| {
            engine.list_uploads(vault, &listing)
        })
        .await?
    };

    let mut xml = XmlWriter::new();
    xml.open_root("ListMultipartUploadsResult");
    xml.element("Bucket", &bucket.name);
    xml.element("KeyMarker", &shown.key_marker);
    xml.element("UploadIdMarker", &shown.upload_id_marker);
    if let Some(last) = uploads.last().filter(|_| truncated) {
        xml.element("NextKeyMarker", &last.key);
        xml.element("NextUploadIdMarker", &last.upload_id);
    }
    xml.element("Prefix", &shown.prefix);
    xml.element("MaxUploads", &max_uploads.to_string());
    xml.element("IsTruncated", if truncated { "true" } else { "false" });
    for upload in &uploads {
        xml.open("Upload");
        xml.element("Key", &upload.key);
        xml.element("UploadId", &upload.upload_id);
        owner(&mut xml, "Initiator");
        owner(&mut xml, "Owner");
        xml.element("StorageClass", "STANDARD");
        xml.element("Initiated", &iso8601_ms(upload.created_ms));
        xml.close("Upload");
    }
    xml.close("ListMultipartUploadsResult");
    Ok(xml_response(xml.finish()))
}

/// `GET /bucket/key?uploadId=U`.
///
/// # Errors
/// `NoSuchUpload`, `InvalidArgument` for bad paging parameters.
pub async fn list_parts(
    gateway: &Gateway,
    bucket: &BucketRow,
    target: &Target,
    query: &[(String, String)],
) -> Result<Response, S3Error> {
    let upload = find_upload(gateway, bucket, target, query).await?;
    let max_parts = page_size(query, "max-parts")?;
    let marker = match query_value(query, "part-number-marker") {
        None => 0,
        Some(value) => value
            .parse::<u32>()
            .map_err(|_| invalid_argument("Provided part-number-marker not an integer"))?,
    };
    let for_engine = upload.clone();
    let page = blocking(&gateway.engine, move |engine| {
        engine.list_parts(&for_engine, marker, max_parts)
    })
    .await?;
    let declared = parse_declared(upload.checksum_algorithm.as_deref());

    let mut xml = XmlWriter::new();
    xml.open_root("ListPartsResult");
    xml.element("Bucket", &bucket.name);
    xml.element("Key", &upload.key);
    xml.element("UploadId", &upload.upload_id);
    owner(&mut xml, "Initiator");
    owner(&mut xml, "Owner");
    xml.element("StorageClass", "STANDARD");
    xml.element("PartNumberMarker", &marker.to_string());
    if let Some(last) = page.parts.last().filter(|_| page.truncated) {
        xml.element("NextPartNumberMarker", &last.part_number.to_string());
    }
    xml.element("MaxParts", &max_parts.to_string());
    xml.element("IsTruncated", if page.truncated { "true" } else { "false" });
    if let Some((algorithm, kind)) = declared {
        xml.element("ChecksumAlgorithm", algorithm.name());
        xml.element(
            "ChecksumType",
            if kind == ChecksumKind::FullObject {
                "FULL_OBJECT"
            } else {
                "COMPOSITE"
            },
        );
    }
    for (part, modified) in page.parts.iter().zip(&page.modified_ms) {
        xml.open("Part");
        xml.element("PartNumber", &part.part_number.to_string());
        xml.element("LastModified", &iso8601_ms(*modified));
        xml.element("ETag", &format!("\"{}\"", part.etag));
        xml.element("Size", &part.size.to_string());
        if let (Some((algorithm, _)), Some(value)) = (declared, &part.checksum) {
            xml.element(&format!("Checksum{}", algorithm.name()), value);
        }
        xml.close("Part");
    }
    xml.close("ListPartsResult");
    Ok(xml_response(xml.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_bodies_parse_with_checksums_and_entities() {
        let body = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
            <Part><PartNumber>1</PartNumber><ETag>&quot;abc&quot;</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>
            <Part><ETag>"def"</ETag><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>"#;
        let parts = parse_complete(body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].part_number, parts[0].etag.as_str()),
            (1, "\"abc\"")
        );
        assert_eq!(
            parts[0].checksums,
            vec![(ChecksumAlgorithm::Crc32, "AAAAAA==".to_owned())]
        );
        assert_eq!(
            (parts[1].part_number, parts[1].etag.as_str()),
            (2, "\"def\"")
        );
    }

    #[test]
    fn malformed_complete_bodies_are_refused() {
        for body in [
            &b""[..],
            b"<CompleteMultipartUpload></CompleteMultipartUpload>",
            b"<Other><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></Other>",
            b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
            b"<CompleteMultipartUpload><Part><ETag>x</ETag></Part></CompleteMultipartUpload>",
            b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>",
        ] {
            assert_eq!(parse_complete(body).err().map(|e| e.code), Some(S3ErrorCode::MalformedXML));
        }
    }
}
