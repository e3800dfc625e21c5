//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
//! GetBucketVersioning.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use http_body_util::BodyExt;

use super::{blocking, iso8601_ms};
use crate::error::{S3Error, S3ErrorCode};
use crate::xml::{self, XmlWriter};
use crate::{Gateway, OWNER_DISPLAY_NAME, OWNER_ID};

/// The largest CreateBucket body read; the real one is a few hundred bytes.
const MAX_CREATE_BUCKET_BODY: usize = 64 * 1024;

/// An XML answer with status 200.
pub fn xml_response(document: String) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(Body::from(document))
        .expect("valid response")
}

/// `GET /`.
///
/// # Errors
/// A metadata failure.
pub async fn list_buckets(gateway: &Gateway) -> Result<Response, S3Error> {
    let buckets = blocking(&gateway.engine, vault::Engine::list_buckets).await?;
    let mut xml = XmlWriter::new();
    xml.open_root("ListAllMyBucketsResult");
    xml.open("Owner");
    xml.element("ID", OWNER_ID);
    xml.element("DisplayName", OWNER_DISPLAY_NAME);
    xml.close("Owner");
    xml.open("Buckets");
    for bucket in &buckets {
        xml.open("Bucket");
        xml.element("Name", &bucket.name);
        xml.element("CreationDate", &iso8601_ms(bucket.created_ms));
        xml.close("Bucket");
    }
    xml.close("Buckets");
    xml.close("ListAllMyBucketsResult");
    Ok(xml_response(xml.finish()))
}

/// `PUT /bucket`: a new local bucket on a vault of its own.
///
/// # Errors
/// `InvalidBucketName`, `BucketAlreadyOwnedByYou`, `MalformedXML`, `InvalidRequest` for a mode
/// other than local.
pub async fn create_bucket(gateway: &Gateway, name: &str, body: Body) -> Result<Response, S3Error> {
    let limited = http_body_util::Limited::new(body, MAX_CREATE_BUCKET_BODY);
    let bytes = limited
        .collect()
        .await
        .map_err(|_| {
            S3Error::new(
                S3ErrorCode::MalformedXML,
                "The CreateBucket body is too large or was cut short.",
            )
        })?
        .to_bytes();
    xml::parse_location_constraint(&bytes).map_err(|xml::MalformedXml| {
        S3Error::new(S3ErrorCode::MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema.")
    })?;
    if gateway.config.default_bucket_mode != "local" {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "s3_gateway.default_bucket_mode is not 'local'; remote-backed buckets are created with `vh`",
        ));
    }
    let name_owned = name.to_owned();
    let api_exclusive = gateway.config.default_api_exclusive;
    let mounted = gateway.config.mount_new_vaults;
    blocking(&gateway.engine, move |engine| {
        engine.create_local_bucket_with(&name_owned, api_exclusive, mounted)
    })
    .await?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(http::header::LOCATION, format!("/{name}"))
        .body(Body::empty())
        .expect("valid response"))
}

/// `HEAD /bucket`.
pub fn head_bucket(gateway: &Gateway) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header("x-amz-bucket-region", gateway.config.region.as_str())
        .body(Body::empty())
        .expect("valid response")
}

/// `DELETE /bucket`: only an empty bucket.
///
/// # Errors
/// `NoSuchBucket`, `BucketNotEmpty`.
pub async fn delete_bucket(gateway: &Gateway, name: &str) -> Result<Response, S3Error> {
    let name = name.to_owned();
    blocking(&gateway.engine, move |engine| engine.delete_bucket(&name)).await?;
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .expect("valid response"))
}

/// `GET /bucket?location`. `us-east-1` is answered as an empty constraint, as AWS does.
pub fn get_bucket_location(gateway: &Gateway) -> Response {
    let mut xml = XmlWriter::new();
    xml.open_root("LocationConstraint");
    let region = gateway.config.region.as_str();
    let mut doc = xml.finish();
    if region != "us-east-1" {
        doc.push_str(&quick_xml::escape::escape(region));
    }
    doc.push_str("</LocationConstraint>");
    xml_response(doc)
}

/// `GET /bucket?versioning`: versioning was never enabled on any bucket here.
pub fn get_bucket_versioning() -> Response {
    let mut xml = XmlWriter::new();
    xml.open_root("VersioningConfiguration");
    xml.close("VersioningConfiguration");
    xml_response(xml.finish())
}
