//! Routing: turning a request's method, host, path and query into an S3 operation on a bucket
//! and key.
//!
//! S3 names its operations by method plus sub-resource (`GET /b?location`, `GET /b?list-type=2`),
//! so the gateway routes here rather than with path patterns.

use http::Method;
use percent_encoding::percent_decode_str;

use crate::error::{S3Error, S3ErrorCode};
use crate::ops::probes::Probe;

/// An S3 operation the gateway recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `GET /`.
    ListBuckets,
    /// `PUT /bucket`.
    CreateBucket,
    /// `HEAD /bucket`.
    HeadBucket,
    /// `DELETE /bucket`.
    DeleteBucket,
    /// `GET /bucket?location`.
    GetBucketLocation,
    /// `GET /bucket?versioning`: answered as a bucket that never had versioning.
    GetBucketVersioning,
    /// `GET /bucket?list-type=2`.
    ListObjectsV2,
    /// `GET /bucket`.
    ListObjects,
    /// `PUT /bucket/key`.
    PutObject,
    /// `GET /bucket/key`.
    GetObject,
    /// `HEAD /bucket/key`.
    HeadObject,
    /// `DELETE /bucket/key`.
    DeleteObject,
    /// `PUT /bucket/key` with `x-amz-copy-source`.
    CopyObject,
    /// `POST /bucket/key?uploads`.
    CreateMultipartUpload,
    /// `PUT /bucket/key?partNumber=N&uploadId=U`.
    UploadPart,
    /// `PUT /bucket/key?partNumber=N&uploadId=U` with `x-amz-copy-source`.
    UploadPartCopy,
    /// `POST /bucket/key?uploadId=U`.
    CompleteMultipartUpload,
    /// `DELETE /bucket/key?uploadId=U`.
    AbortMultipartUpload,
    /// `GET /bucket?uploads`.
    ListMultipartUploads,
    /// `GET /bucket/key?uploadId=U`.
    ListParts,
    /// `POST /bucket?delete`.
    DeleteObjects,
    /// `GET /bucket?versions`: every object as its one `null` version.
    ListObjectVersions,
    /// `GET` of a bucket or object sub-resource, answered as for a bucket that never used it.
    GetSubresource(Probe),
    /// Known to S3 but not offered here; the name is the sub-resource.
    NotImplemented(&'static str),
}

impl Operation {
    /// The operation's S3 name, for logs and metrics.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ListBuckets => "ListBuckets",
            Self::CreateBucket => "CreateBucket",
            Self::HeadBucket => "HeadBucket",
            Self::DeleteBucket => "DeleteBucket",
            Self::GetBucketLocation => "GetBucketLocation",
            Self::GetBucketVersioning => "GetBucketVersioning",
            Self::ListObjectsV2 => "ListObjectsV2",
            Self::ListObjects => "ListObjects",
            Self::PutObject => "PutObject",
            Self::GetObject => "GetObject",
            Self::HeadObject => "HeadObject",
            Self::DeleteObject => "DeleteObject",
            Self::CopyObject => "CopyObject",
            Self::CreateMultipartUpload => "CreateMultipartUpload",
            Self::UploadPart => "UploadPart",
            Self::UploadPartCopy => "UploadPartCopy",
            Self::CompleteMultipartUpload => "CompleteMultipartUpload",
            Self::AbortMultipartUpload => "AbortMultipartUpload",
            Self::ListMultipartUploads => "ListMultipartUploads",
            Self::ListParts => "ListParts",
            Self::DeleteObjects => "DeleteObjects",
            Self::ListObjectVersions => "ListObjectVersions",
            Self::GetSubresource(probe) => probe.name(),
            Self::NotImplemented(_) => "NotImplemented",
        }
    }
}

/// Sub-resources of S3 the gateway does not offer; a request naming one gets `NotImplemented`.
const UNSUPPORTED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "delete",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "tagging",
    "torrent",
    "versions",
    "website",
];

/// Where a request points: a bucket and a key, both decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    /// The bucket, from the host or the first path segment.
    pub bucket: Option<String>,
    /// The object key, from the rest of the path.
    pub key: Option<String>,
    /// Whether the bucket came from the `Host` header (virtual-hosted style), which changes
    /// what a SigV2 signature covers.
    pub bucket_in_host: bool,
}

/// How the gateway may be addressed.
#[derive(Clone, Debug)]
pub struct Addressing {
    /// Accept `/bucket/key` paths.
    pub path_style: bool,
    /// Accept `bucket.domain/key` hosts.
    pub virtual_hosted_style: bool,
    /// The domains under which a host's first label is a bucket name.
    pub base_domains: Vec<String>,
}

/// The decoded query string, in order, with `+` meaning a space as in form encoding.
#[must_use]
pub fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    let Some(query) = query else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(name), decode_component(value))
        })
        .collect()
}

fn decode_component(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// The value of query parameter `name`, if present.
#[must_use]
pub fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn has_param(query: &[(String, String)], name: &str) -> bool {
    query.iter().any(|(n, _)| n == name)
}

/// Finds the bucket and key a request addresses.
///
/// # Errors
/// `InvalidRequest` when the addressing style used is switched off, `InvalidURI`-like
/// `InvalidArgument` when the path is not valid UTF-8 after decoding.
pub fn resolve_target(
    host: Option<&str>,
    raw_path: &str,
    addressing: &Addressing,
) -> Result<Target, S3Error> {
    let path = percent_decode_str(raw_path).decode_utf8().map_err(|_| {
        S3Error::new(
            S3ErrorCode::InvalidArgument,
            "The request path is not valid UTF-8",
        )
    })?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    if let Some(bucket) = host.and_then(|host| bucket_from_host(host, &addressing.base_domains)) {
        if !addressing.virtual_hosted_style {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                "Virtual-hosted-style requests are disabled on this gateway (s3_gateway.allow_virtual_hosted_style); use path-style addressing",
            ));
        }
        let key = (!path.is_empty()).then(|| path.to_owned());
        return Ok(Target {
            bucket: Some(bucket),
            key,
            bucket_in_host: true,
        });
    }
    if path.is_empty() {
        return Ok(Target::default());
    }
    if !addressing.path_style {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "Path-style requests are disabled on this gateway (s3_gateway.allow_path_style); use virtual-hosted-style addressing",
        ));
    }
    let (bucket, key) = match path.split_once('/') {
        Some((bucket, key)) => (bucket, (!key.is_empty()).then(|| key.to_owned())),
        None => (path, None),
    };
    Ok(Target {
        bucket: Some(bucket.to_owned()),
        key,
        bucket_in_host: false,
    })
}

fn bucket_from_host(host: &str, base_domains: &[String]) -> Option<String> {
    let name = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    // A host that is itself a base domain is path style, even when it also sits under a shorter
    // base domain; otherwise the longest base domain it ends with marks the bucket.
    if base_domains.contains(&name) {
        return None;
    }
    base_domains
        .iter()
        .filter_map(|domain| {
            let bucket = name.strip_suffix(domain.as_str())?.strip_suffix('.')?;
            (!bucket.is_empty()).then_some((domain.len(), bucket))
        })
        .max_by_key(|(domain_len, _)| *domain_len)
        .map(|(_, bucket)| bucket.to_owned())
}

/// Picks the operation for a method and query on a target.
///
/// # Errors
/// `MethodNotAllowed` for a method S3 does not define on the resource.
pub fn operation(
    method: &Method,
    target: &Target,
    query: &[(String, String)],
    is_copy: bool,
) -> Result<Operation, S3Error> {
    if let Some(op) = subresource_operation(method, target, query) {
        return Ok(op);
    }
    if let Some(sub) = UNSUPPORTED_SUBRESOURCES
        .iter()
        .find(|sub| has_param(query, sub))
    {
        return Ok(Operation::NotImplemented(sub));
    }
    // Every object here has the one version `null`; naming any other is an error, not a read
    // of the current object.
    if query_value(query, "versionId").is_some_and(|id| id != "null") {
        return Err(
            S3Error::new(S3ErrorCode::InvalidArgument, "Invalid version id specified")
                .with_field("ArgumentName", "versionId"),
        );
    }
    let not_allowed = || {
        S3Error::new(
            S3ErrorCode::MethodNotAllowed,
            "The specified method is not allowed against this resource.",
        )
    };
    let op = match (target.bucket.is_some(), target.key.is_some(), method) {
        (false, _, &Method::GET) => Operation::ListBuckets,
        (false, _, _) => return Err(not_allowed()),
        (true, false, &Method::GET) if has_param(query, "location") => Operation::GetBucketLocation,
        (true, false, &Method::GET) if has_param(query, "versioning") => {
            Operation::GetBucketVersioning
        }
        (true, false, &Method::GET) if query_value(query, "list-type") == Some("2") => {
            Operation::ListObjectsV2
        }
        (true, false, &Method::GET) if has_param(query, "uploads") => {
            Operation::ListMultipartUploads
        }
        (true, false, &Method::GET) => Operation::ListObjects,
        (true, false, &Method::PUT) if has_param(query, "versioning") => {
            Operation::NotImplemented("versioning")
        }
        (true, false, &Method::PUT) => Operation::CreateBucket,
        (true, false, &Method::HEAD) => Operation::HeadBucket,
        (true, false, &Method::DELETE) => Operation::DeleteBucket,
        (true, true, &Method::PUT) if has_param(query, "uploadId") && is_copy => {
            Operation::UploadPartCopy
        }
        (true, true, &Method::PUT) if has_param(query, "uploadId") => Operation::UploadPart,
        (true, true, &Method::PUT) if is_copy => Operation::CopyObject,
        (true, true, &Method::PUT) => Operation::PutObject,
        (true, true, &Method::GET) if has_param(query, "uploadId") => Operation::ListParts,
        (true, true, &Method::GET) => Operation::GetObject,
        (true, true, &Method::HEAD) => Operation::HeadObject,
        (true, true, &Method::DELETE) if has_param(query, "uploadId") => {
            Operation::AbortMultipartUpload
        }
        (true, true, &Method::DELETE) => Operation::DeleteObject,
        (true, true, &Method::POST) if has_param(query, "uploads") => {
            Operation::CreateMultipartUpload
        }
        (true, true, &Method::POST) if has_param(query, "uploadId") => {
            Operation::CompleteMultipartUpload
        }
        (true, _, &Method::POST) => Operation::NotImplemented("post"),
        (true, _, _) => return Err(not_allowed()),
    };
    Ok(op)
}

/// The sub-resource operations that are offered: DeleteObjects, ListObjectVersions and the
/// read-only probes. Writing a sub-resource stays `NotImplemented`, and so does a probe of a
/// specific object version.
fn subresource_operation(
    method: &Method,
    target: &Target,
    query: &[(String, String)],
) -> Option<Operation> {
    target.bucket.as_ref()?;
    let on_object = target.key.is_some();
    match *method {
        Method::POST if !on_object && has_param(query, "delete") => Some(Operation::DeleteObjects),
        Method::GET if !on_object && has_param(query, "versions") => {
            Some(Operation::ListObjectVersions)
        }
        Method::GET if !has_param(query, "versionId") => {
            Probe::from_query(on_object, query).map(Operation::GetSubresource)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addressing() -> Addressing {
        Addressing {
            path_style: true,
            virtual_hosted_style: true,
            base_domains: vec!["localhost".into()],
        }
    }

    #[test]
    fn path_style_splits_bucket_and_key() {
        let t = resolve_target(
            Some("127.0.0.1:39000"),
            "/archive/a%20b/c%2Bd.txt",
            &addressing(),
        )
        .unwrap();
        assert_eq!(t.bucket.as_deref(), Some("archive"));
        assert_eq!(t.key.as_deref(), Some("a b/c+d.txt"));
        let t = resolve_target(Some("127.0.0.1"), "/archive/", &addressing()).unwrap();
        assert_eq!((t.bucket.as_deref(), t.key), (Some("archive"), None));
        assert_eq!(
            resolve_target(None, "/", &addressing()).unwrap(),
            Target::default()
        );
    }

    #[test]
    fn virtual_hosted_style_takes_the_bucket_from_the_host() {
        let t =
            resolve_target(Some("archive.localhost:39000"), "/dir/file", &addressing()).unwrap();
        assert_eq!(t.bucket.as_deref(), Some("archive"));
        assert_eq!(t.key.as_deref(), Some("dir/file"));
        let mut off = addressing();
        off.virtual_hosted_style = false;
        let err = resolve_target(Some("archive.localhost"), "/x", &off).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidRequest);
        off = addressing();
        off.path_style = false;
        assert!(resolve_target(Some("127.0.0.1"), "/archive/x", &off).is_err());
    }

    #[test]
    fn base_domains_pick_the_longest_match_and_a_bare_domain_is_path_style() {
        let mut addressing = addressing();
        addressing.base_domains = vec!["example.com".into(), "s3.example.com".into()];
        let bucket = |host| {
            resolve_target(Some(host), "/p/k", &addressing)
                .unwrap()
                .bucket
        };
        assert_eq!(bucket("photos.s3.example.com"), Some("photos".into()));
        assert_eq!(bucket("Photos.S3.Example.com.:8443"), Some("photos".into()));
        assert_eq!(bucket("my.photos.example.com"), Some("my.photos".into()));
        assert_eq!(bucket("s3.example.com:39000"), Some("p".into()));
        assert_eq!(bucket("example.com"), Some("p".into()));
        assert_eq!(bucket("notexample.com"), Some("p".into()));
        assert_eq!(bucket("[::1]:39000"), Some("p".into()));
    }

    #[test]
    fn offered_subresources_route_before_the_unsupported_ones() {
        let bucket = Target {
            bucket: Some("b".into()),
            key: None,
            bucket_in_host: false,
        };
        let object = Target {
            bucket: Some("b".into()),
            key: Some("k".into()),
            bucket_in_host: false,
        };
        let q = |s: &str| parse_query(Some(s));
        let op = |method: &Method, target: &Target, query: &str| {
            operation(method, target, &q(query), false).unwrap()
        };
        assert_eq!(
            op(&Method::POST, &bucket, "delete"),
            Operation::DeleteObjects
        );
        assert_eq!(
            op(&Method::GET, &bucket, "versions&prefix=a"),
            Operation::ListObjectVersions
        );
        assert_eq!(
            op(&Method::GET, &bucket, "cors"),
            Operation::GetSubresource(Probe::Cors)
        );
        assert_eq!(
            op(&Method::GET, &object, "acl"),
            Operation::GetSubresource(Probe::ObjectAcl)
        );
        assert_eq!(
            op(&Method::GET, &object, "tagging"),
            Operation::GetSubresource(Probe::ObjectTagging)
        );
        assert_eq!(
            op(&Method::GET, &object, "acl&versionId=v"),
            Operation::NotImplemented("acl")
        );
        assert_eq!(
            op(&Method::PUT, &bucket, "cors"),
            Operation::NotImplemented("cors")
        );
        assert_eq!(
            op(&Method::DELETE, &bucket, "tagging"),
            Operation::NotImplemented("tagging")
        );
        assert_eq!(
            op(&Method::PUT, &object, "tagging"),
            Operation::NotImplemented("tagging")
        );
        assert_eq!(
            op(&Method::POST, &object, "delete"),
            Operation::NotImplemented("delete")
        );
        assert_eq!(
            op(&Method::GET, &bucket, "analytics"),
            Operation::NotImplemented("analytics")
        );
        assert_eq!(
            op(&Method::GET, &object, "torrent"),
            Operation::NotImplemented("torrent")
        );
        assert_eq!(
            Operation::GetSubresource(Probe::Website).name(),
            "GetBucketWebsite"
        );
    }

    #[test]
    fn operations_follow_method_and_subresource() {
        let bucket = Target {
            bucket: Some("b".into()),
            key: None,
            bucket_in_host: false,
        };
        let object = Target {
            bucket: Some("b".into()),
            key: Some("k".into()),
            bucket_in_host: false,
        };
        let q = |s: &str| parse_query(Some(s));
        assert_eq!(
            operation(&Method::GET, &bucket, &q("list-type=2&prefix=a"), false).unwrap(),
            Operation::ListObjectsV2
        );
        assert_eq!(
            operation(&Method::GET, &bucket, &q("location"), false).unwrap(),
            Operation::GetBucketLocation
        );
        assert_eq!(
            operation(&Method::PUT, &bucket, &q("acl"), false).unwrap(),
            Operation::NotImplemented("acl")
        );
        assert_eq!(
            operation(&Method::PUT, &object, &[], false).unwrap(),
            Operation::PutObject
        );
        assert!(operation(&Method::PATCH, &object, &[], false).is_err());
        assert_eq!(
            parse_query(Some("prefix=a+b%2Fc&x")),
            vec![
                ("prefix".into(), "a b/c".into()),
                ("x".into(), String::new())
            ]
        );
    }
}
