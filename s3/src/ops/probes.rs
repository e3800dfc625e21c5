//! Read-only probes of bucket and object sub-resources (`GET /bucket?cors`, `GET /key?acl`, ...),
//! answered as AWS answers for a bucket that never used the feature.
//!
//! Clients and tools read these before they act (s3cmd `info`, Terraform, backup tools that
//! check for Object Lock or versioning): a `404` with the feature's own code, or an empty
//! configuration, tells them the feature is off, where `501 NotImplemented` would make many of
//! them stop. Setting any of these is not offered and answers `501 NotImplemented` (see the
//! router).

use std::sync::Arc;

use axum::response::Response;
use vault::{BucketRow, ObjectKey};

use super::bucket::xml_response;
use crate::error::{S3Error, S3ErrorCode};
use crate::router::Target;
use crate::xml::XmlWriter;
use crate::{Gateway, OWNER_DISPLAY_NAME, OWNER_ID};

/// The namespace AWS puts on a `BucketLoggingStatus`, unlike every other S3 document.
const LOGGING_NAMESPACE: &str = "http://doc.s3.amazonaws.com/2006-03-01";
/// The XML Schema instance namespace of an ACL grantee's `xsi:type`.
const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// A sub-resource read, and so an S3 operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `GET /bucket?acl`.
    BucketAcl,
    /// `GET /bucket/key?acl`.
    ObjectAcl,
    /// `GET /bucket?cors`.
    Cors,
    /// `GET /bucket?lifecycle`.
    Lifecycle,
    /// `GET /bucket?policy`.
    Policy,
    /// `GET /bucket?policyStatus`.
    PolicyStatus,
    /// `GET /bucket?tagging`.
    BucketTagging,
    /// `GET /bucket/key?tagging`.
    ObjectTagging,
    /// `GET /bucket?website`.
    Website,
    /// `GET /bucket?encryption`.
    Encryption,
    /// `GET /bucket?object-lock`.
    ObjectLock,
    /// `GET /bucket?replication`.
    Replication,
    /// `GET /bucket?notification`.
    Notification,
    /// `GET /bucket?logging`.
    Logging,
    /// `GET /bucket?requestPayment`.
    RequestPayment,
    /// `GET /bucket?accelerate`.
    Accelerate,
    /// `GET /bucket?ownershipControls`.
    OwnershipControls,
    /// `GET /bucket?publicAccessBlock`.
    PublicAccessBlock,
}

/// The bucket sub-resources answered, by query parameter.
const BUCKET_PROBES: [(&str, Probe); 16] = [
    ("acl", Probe::BucketAcl),
    ("cors", Probe::Cors),
    ("lifecycle", Probe::Lifecycle),
    ("policy", Probe::Policy),
    ("policyStatus", Probe::PolicyStatus),
    ("tagging", Probe::BucketTagging),
    ("website", Probe::Website),
    ("encryption", Probe::Encryption),
    ("object-lock", Probe::ObjectLock),
    ("replication", Probe::Replication),
    ("notification", Probe::Notification),
    ("logging", Probe::Logging),
    ("requestPayment", Probe::RequestPayment),
    ("accelerate", Probe::Accelerate),
    ("ownershipControls", Probe::OwnershipControls),
    ("publicAccessBlock", Probe::PublicAccessBlock),
];

/// The object sub-resources answered, by query parameter.
const OBJECT_PROBES: [(&str, Probe); 2] =
    [("acl", Probe::ObjectAcl), ("tagging", Probe::ObjectTagging)];

impl Probe {
    /// The probe a `GET` on a bucket (`is_object` false) or an object names, if any.
    #[must_use]
    pub fn from_query(is_object: bool, query: &[(String, String)]) -> Option<Self> {
        let table: &[(&str, Self)] = if is_object {
            &OBJECT_PROBES
        } else {
            &BUCKET_PROBES
        };
        table
            .iter()
            .find(|(param, _)| query.iter().any(|(name, _)| name == param))
            .map(|(_, probe)| *probe)
    }

    /// The S3 operation's name, for logs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::BucketAcl => "GetBucketAcl",
            Self::ObjectAcl => "GetObjectAcl",
            Self::Cors => "GetBucketCors",
            Self::Lifecycle => "GetBucketLifecycleConfiguration",
            Self::Policy => "GetBucketPolicy",
            Self::PolicyStatus => "GetBucketPolicyStatus",
            Self::BucketTagging => "GetBucketTagging",
            Self::ObjectTagging => "GetObjectTagging",
            Self::Website => "GetBucketWebsite",
            Self::Encryption => "GetBucketEncryption",
            Self::ObjectLock => "GetObjectLockConfiguration",
            Self::Replication => "GetBucketReplication",
            Self::Notification => "GetBucketNotificationConfiguration",
            Self::Logging => "GetBucketLogging",
            Self::RequestPayment => "GetBucketRequestPayment",
            Self::Accelerate => "GetBucketAccelerateConfiguration",
            Self::OwnershipControls => "GetBucketOwnershipControls",
            Self::PublicAccessBlock => "GetPublicAccessBlock",
        }
    }
}

/// Answers `probe` on `bucket` (and the target's key, for object probes).
///
/// # Errors
/// The feature's not-found error, as AWS sends it; `NoSuchKey` for an object probe on a missing
/// key.
pub async fn get_subresource(
    gateway: &Gateway,
    bucket: &BucketRow,
    target: &Target,
    probe: Probe,
) -> Result<Response, S3Error> {
    if matches!(probe, Probe::ObjectAcl | Probe::ObjectTagging) {
        require_object(gateway, bucket, target).await?;
    }
    answer(probe, &bucket.name).map(xml_response)
}

/// The document (or error) for `probe` on bucket `name`.
fn answer(probe: Probe, bucket: &str) -> Result<String, S3Error> {
    use S3ErrorCode as C;
    let missing = |code: S3ErrorCode, message: &str| {
        Err(S3Error::new(code, message).with_field("BucketName", bucket))
    };
    match probe {
        Probe::BucketAcl | Probe::ObjectAcl => Ok(access_control_policy()),
        Probe::ObjectTagging => Ok(tagging()),
        Probe::Notification => Ok(empty_document("NotificationConfiguration", None)),
        Probe::Logging => Ok(empty_document(
            "BucketLoggingStatus",
            Some(LOGGING_NAMESPACE),
        )),
        Probe::Accelerate => Ok(empty_document("AccelerateConfiguration", None)),
        Probe::RequestPayment => Ok(request_payment()),
        Probe::Cors => missing(
            C::NoSuchCORSConfiguration,
            "The CORS configuration does not exist",
        ),
        Probe::Lifecycle => missing(
            C::NoSuchLifecycleConfiguration,
            "The lifecycle configuration does not exist",
        ),
        Probe::Policy | Probe::PolicyStatus => {
            missing(C::NoSuchBucketPolicy, "The bucket policy does not exist")
        }
        Probe::BucketTagging => missing(C::NoSuchTagSet, "The TagSet does not exist"),
        Probe::Website => missing(
            C::NoSuchWebsiteConfiguration,
            "The specified bucket does not have a website configuration",
        ),
        Probe::Encryption => missing(
            C::ServerSideEncryptionConfigurationNotFoundError,
            "The server side encryption configuration was not found",
        ),
        Probe::ObjectLock => missing(
            C::ObjectLockConfigurationNotFoundError,
            "Object Lock configuration does not exist for this bucket",
        ),
        Probe::Replication => missing(
            C::ReplicationConfigurationNotFoundError,
            "The replication configuration was not found",
        ),
        Probe::OwnershipControls => missing(
            C::OwnershipControlsNotFoundError,
            "The bucket ownership controls were not found",
        ),
        Probe::PublicAccessBlock => missing(
            C::NoSuchPublicAccessBlockConfiguration,
            "The public access block configuration was not found",
        ),
    }
}

/// Fails with `NoSuchKey` unless the target's key names an object.
async fn require_object(
    gateway: &Gateway,
    bucket: &BucketRow,
    target: &Target,
) -> Result<(), S3Error> {
    let key = target.key.clone().unwrap_or_default();
    let no_such_key = || {
        S3Error::new(S3ErrorCode::NoSuchKey, "The specified key does not exist.")
            .with_field("Key", key.clone())
    };
    let Ok(parsed) = ObjectKey::parse(&key) else {
        return Err(no_such_key());
    };
    let engine = Arc::clone(&gateway.engine);
    let vault = bucket.vault;
    tokio::task::spawn_blocking(move || engine.head_object(vault, &parsed))
        .await
        .map_err(|err| S3Error::internal(&err))?
        .map_err(S3Error::from)?;
    Ok(())
}

/// The one ACL every bucket and object has: the node's owner with full control.
fn access_control_policy() -> String {
    let mut xml = XmlWriter::new();
    xml.open_root("AccessControlPolicy");
    xml.open("Owner");
    xml.element("ID", OWNER_ID);
    xml.element("DisplayName", OWNER_DISPLAY_NAME);
    xml.close("Owner");
    xml.open("AccessControlList");
    xml.open("Grant");
    xml.open_with_attributes(
        "Grantee",
        &[("xmlns:xsi", XSI_NAMESPACE), ("xsi:type", "CanonicalUser")],
    );
    xml.element("ID", OWNER_ID);
    xml.element("DisplayName", OWNER_DISPLAY_NAME);
    xml.close("Grantee");
    xml.element("Permission", "FULL_CONTROL");
    xml.close("Grant");
    xml.close("AccessControlList");
    xml.close("AccessControlPolicy");
    xml.finish()
}

/// An object's (empty) tag set: objects without tags answer an empty set, unlike buckets.
fn tagging() -> String {
    let mut xml = XmlWriter::new();
    xml.open_root("Tagging");
    xml.open("TagSet");
    xml.close("TagSet");
    xml.close("Tagging");
    xml.finish()
}

fn request_payment() -> String {
    let mut xml = XmlWriter::new();
    xml.open_root("RequestPaymentConfiguration");
    xml.element("Payer", "BucketOwner");
    xml.close("RequestPaymentConfiguration");
    xml.finish()
}

/// A configuration with nothing in it, in the S3 namespace unless told otherwise.
fn empty_document(root: &str, namespace: Option<&str>) -> String {
    let mut xml = XmlWriter::new();
    match namespace {
        Some(namespace) => xml.open_with_attributes(root, &[("xmlns", namespace)]),
        None => xml.open_root(root),
    }
    xml.close(root);
    xml.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    const NS: &str = "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";

    fn query(text: &str) -> Vec<(String, String)> {
        crate::router::parse_query(Some(text))
    }

    #[test]
    fn probes_are_found_by_parameter_and_level() {
        assert_eq!(Probe::from_query(false, &query("cors")), Some(Probe::Cors));
        assert_eq!(
            Probe::from_query(false, &query("object-lock=")),
            Some(Probe::ObjectLock)
        );
        assert_eq!(
            Probe::from_query(true, &query("acl")),
            Some(Probe::ObjectAcl)
        );
        assert_eq!(
            Probe::from_query(true, &query("tagging")),
            Some(Probe::ObjectTagging)
        );
        assert_eq!(Probe::from_query(true, &query("cors")), None);
        assert_eq!(Probe::from_query(false, &query("list-type=2")), None);
        assert_eq!(Probe::from_query(false, &query("torrent")), None);
    }

    #[test]
    fn acl_grants_the_owner_full_control() {
        let owner = "<ID>vaulthalla</ID><DisplayName>vaulthalla</DisplayName>";
        assert_eq!(
            answer(Probe::BucketAcl, "b").unwrap(),
            format!(
                "{DECL}<AccessControlPolicy {NS}><Owner>{owner}</Owner><AccessControlList>\
                 <Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
                 xsi:type=\"CanonicalUser\">{owner}</Grantee>\
                 <Permission>FULL_CONTROL</Permission></Grant></AccessControlList>\
                 </AccessControlPolicy>"
            )
        );
        assert_eq!(
            answer(Probe::ObjectAcl, "b").unwrap(),
            answer(Probe::BucketAcl, "b").unwrap()
        );
    }

    #[test]
    fn empty_configurations_have_the_aws_shapes() {
        let cases = [
            (
                Probe::ObjectTagging,
                format!("<Tagging {NS}><TagSet></TagSet></Tagging>"),
            ),
            (
                Probe::Notification,
                format!("<NotificationConfiguration {NS}></NotificationConfiguration>"),
            ),
            (
                Probe::Logging,
                "<BucketLoggingStatus xmlns=\"http://doc.s3.amazonaws.com/2006-03-01\">\
                 </BucketLoggingStatus>"
                    .to_owned(),
            ),
            (
                Probe::Accelerate,
                format!("<AccelerateConfiguration {NS}></AccelerateConfiguration>"),
            ),
            (
                Probe::RequestPayment,
                format!(
                    "<RequestPaymentConfiguration {NS}><Payer>BucketOwner</Payer>\
                     </RequestPaymentConfiguration>"
                ),
            ),
        ];
        for (probe, body) in cases {
            assert_eq!(
                answer(probe, "b").unwrap(),
                format!("{DECL}{body}"),
                "{probe:?}"
            );
        }
    }

    #[test]
    fn missing_configurations_are_404_with_the_bucket_name() {
        let cases = [
            (Probe::Cors, "NoSuchCORSConfiguration"),
            (Probe::Lifecycle, "NoSuchLifecycleConfiguration"),
            (Probe::Policy, "NoSuchBucketPolicy"),
            (Probe::PolicyStatus, "NoSuchBucketPolicy"),
            (Probe::BucketTagging, "NoSuchTagSet"),
            (Probe::Website, "NoSuchWebsiteConfiguration"),
            (
                Probe::Encryption,
                "ServerSideEncryptionConfigurationNotFoundError",
            ),
            (Probe::ObjectLock, "ObjectLockConfigurationNotFoundError"),
            (Probe::Replication, "ReplicationConfigurationNotFoundError"),
            (Probe::OwnershipControls, "OwnershipControlsNotFoundError"),
            (
                Probe::PublicAccessBlock,
                "NoSuchPublicAccessBlockConfiguration",
            ),
        ];
        for (probe, code) in cases {
            let err = answer(probe, "photos").unwrap_err();
            assert_eq!(err.code.as_str(), code);
            assert_eq!(err.code.status(), http::StatusCode::NOT_FOUND);
            let xml = err.to_xml("/photos", "REQ");
            assert!(
                xml.contains(&format!("<Code>{code}</Code>"))
                    && xml.contains("<BucketName>photos</BucketName>"),
                "{xml}"
            );
        }
    }
}
