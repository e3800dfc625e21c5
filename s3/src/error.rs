//! S3 errors: every failure the gateway reports, with its S3 code and HTTP status chosen in one
//! exhaustive match, and the XML body rendered in one place.
//!
//! Engine errors map here; failures the client can't act on (storage, metadata, integrity) are
//! logged with their cause where they are turned into `InternalError`, and the client sees only
//! the code and the request id.

use http::StatusCode;
use vault::VaultError;

use crate::xml::XmlWriter;

/// The S3 error codes the gateway returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3ErrorCode {
    /// 403: credentials valid but the request is not allowed (also expired presigned URLs).
    AccessDenied,
    /// 400: the Authorization header can't be parsed.
    AuthorizationHeaderMalformed,
    /// 400: the presigned URL's query parameters can't be used.
    AuthorizationQueryParametersError,
    /// 400: Content-MD5 or a checksum did not match the body.
    BadDigest,
    /// 409: the bucket exists (and it is ours: the gateway has one owner).
    BucketAlreadyOwnedByYou,
    /// 409: DeleteBucket on a bucket with objects.
    BucketNotEmpty,
    /// 400: the body is larger than allowed.
    EntityTooLarge,
    /// 400: the body ended before its declared length.
    IncompleteBody,
    /// 500: the node failed; details are in its log.
    InternalError,
    /// 403: no active credential has this access key.
    InvalidAccessKeyId,
    /// 400: a parameter or header value is not acceptable.
    InvalidArgument,
    /// 400: the bucket name breaks the naming rules.
    InvalidBucketName,
    /// 400: Content-MD5 is not a base64 MD5.
    InvalidDigest,
    /// 416: the Range can't be satisfied.
    InvalidRange,
    /// 400: the request is not valid as a whole.
    InvalidRequest,
    /// 400: the key is longer than 1024 bytes.
    KeyTooLongError,
    /// 400: the XML body can't be parsed or is not what the operation takes.
    MalformedXML,
    /// 400: user metadata over 2 KB.
    MetadataTooLarge,
    /// 400: the trailer of an aws-chunked body is malformed or missing.
    MalformedTrailerError,
    /// 400: an XML request body is larger than the operation accepts.
    MaxMessageLengthExceeded,
    /// 405: the method is not allowed on this resource.
    MethodNotAllowed,
    /// 411: a PUT without Content-Length (and not chunked).
    MissingContentLength,
    /// 404: no such bucket.
    NoSuchBucket,
    /// 404: no such key.
    NoSuchKey,
    /// 404: no multipart upload with this id.
    NoSuchUpload,
    /// 400: a completion names a part that was not uploaded or has another ETag.
    InvalidPart,
    /// 400: a completion lists its parts out of order.
    InvalidPartOrder,
    /// 400: a part other than the last is below the minimum part size.
    EntityTooSmall,
    /// 416: a `partNumber` past the object's last part.
    InvalidPartNumber,
    /// 404: GetBucketCors on a bucket without a CORS configuration.
    NoSuchCORSConfiguration,
    /// 404: GetBucketPolicy (and GetBucketPolicyStatus) on a bucket without a policy.
    NoSuchBucketPolicy,
    /// 404: GetBucketLifecycleConfiguration on a bucket without lifecycle rules.
    NoSuchLifecycleConfiguration,
    /// 404: GetPublicAccessBlock on a bucket without that configuration.
    NoSuchPublicAccessBlockConfiguration,
    /// 404: GetBucketTagging on a bucket without tags.
    NoSuchTagSet,
    /// 404: a version id that names no version.
    NoSuchVersion,
    /// 404: GetBucketWebsite on a bucket that is not a website.
    NoSuchWebsiteConfiguration,
    /// 404: GetObjectLockConfiguration on a bucket created without Object Lock.
    ObjectLockConfigurationNotFoundError,
    /// 404: GetBucketOwnershipControls on a bucket without ownership controls.
    OwnershipControlsNotFoundError,
    /// 404: GetBucketReplication on a bucket without replication.
    ReplicationConfigurationNotFoundError,
    /// 404: GetBucketEncryption on a bucket without a default encryption configuration.
    ServerSideEncryptionConfigurationNotFoundError,
    /// 501: the operation is not offered.
    NotImplemented,
    /// 412: a precondition did not hold.
    PreconditionFailed,
    /// 403: the request's date is too far from the node's clock.
    RequestTimeTooSkewed,
    /// 403: the signature does not match.
    SignatureDoesNotMatch,
    /// 503: too many connections or requests; retry later.
    SlowDown,
    /// 400: the body's SHA-256 differs from `x-amz-content-sha256`.
    XAmzContentSHA256Mismatch,
}

impl S3ErrorCode {
    /// The code as it appears in the XML body.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessDenied => "AccessDenied",
            Self::AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            Self::AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            Self::BadDigest => "BadDigest",
            Self::BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            Self::BucketNotEmpty => "BucketNotEmpty",
            Self::EntityTooLarge => "EntityTooLarge",
            Self::IncompleteBody => "IncompleteBody",
            Self::InternalError => "InternalError",
            Self::InvalidAccessKeyId => "InvalidAccessKeyId",
            Self::InvalidArgument => "InvalidArgument",
            Self::InvalidBucketName => "InvalidBucketName",
            Self::InvalidDigest => "InvalidDigest",
            Self::InvalidRange => "InvalidRange",
            Self::InvalidRequest => "InvalidRequest",
            Self::KeyTooLongError => "KeyTooLongError",
            Self::MalformedXML => "MalformedXML",
            Self::MetadataTooLarge => "MetadataTooLarge",
            Self::MalformedTrailerError => "MalformedTrailerError",
            Self::MaxMessageLengthExceeded => "MaxMessageLengthExceeded",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::MissingContentLength => "MissingContentLength",
            Self::NoSuchBucket => "NoSuchBucket",
            Self::NoSuchKey => "NoSuchKey",
            Self::NoSuchUpload => "NoSuchUpload",
            Self::InvalidPart => "InvalidPart",
            Self::InvalidPartOrder => "InvalidPartOrder",
            Self::EntityTooSmall => "EntityTooSmall",
            Self::InvalidPartNumber => "InvalidPartNumber",
            Self::NoSuchCORSConfiguration => "NoSuchCORSConfiguration",
            Self::NoSuchBucketPolicy => "NoSuchBucketPolicy",
            Self::NoSuchLifecycleConfiguration => "NoSuchLifecycleConfiguration",
            Self::NoSuchPublicAccessBlockConfiguration => "NoSuchPublicAccessBlockConfiguration",
            Self::NoSuchTagSet => "NoSuchTagSet",
            Self::NoSuchVersion => "NoSuchVersion",
            Self::NoSuchWebsiteConfiguration => "NoSuchWebsiteConfiguration",
            Self::ObjectLockConfigurationNotFoundError => "ObjectLockConfigurationNotFoundError",
            Self::OwnershipControlsNotFoundError => "OwnershipControlsNotFoundError",
            Self::ReplicationConfigurationNotFoundError => "ReplicationConfigurationNotFoundError",
            Self::ServerSideEncryptionConfigurationNotFoundError => {
                "ServerSideEncryptionConfigurationNotFoundError"
            }
            Self::NotImplemented => "NotImplemented",
            Self::PreconditionFailed => "PreconditionFailed",
            Self::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::SlowDown => "SlowDown",
            Self::XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
        }
    }

    /// The HTTP status AWS answers this code with.
    #[must_use]
    pub fn status(self) -> StatusCode {
        match self {
            Self::AuthorizationHeaderMalformed
            | Self::AuthorizationQueryParametersError
            | Self::BadDigest
            | Self::EntityTooLarge
            | Self::IncompleteBody
            | Self::InvalidArgument
            | Self::InvalidBucketName
            | Self::InvalidDigest
            | Self::InvalidRequest
            | Self::KeyTooLongError
            | Self::MalformedXML
            | Self::MetadataTooLarge
            | Self::MalformedTrailerError
            | Self::MaxMessageLengthExceeded
            | Self::XAmzContentSHA256Mismatch => StatusCode::BAD_REQUEST,
            Self::AccessDenied
            | Self::InvalidAccessKeyId
            | Self::RequestTimeTooSkewed
            | Self::SignatureDoesNotMatch => StatusCode::FORBIDDEN,
            Self::NoSuchBucket | Self::NoSuchKey | Self::NoSuchUpload => StatusCode::NOT_FOUND,
            Self::InvalidPart | Self::InvalidPartOrder | Self::EntityTooSmall => {
                StatusCode::BAD_REQUEST
            }
            Self::InvalidPartNumber => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::NoSuchCORSConfiguration
            | Self::NoSuchBucketPolicy
            | Self::NoSuchLifecycleConfiguration
            | Self::NoSuchPublicAccessBlockConfiguration
            | Self::NoSuchTagSet
            | Self::NoSuchVersion
            | Self::NoSuchWebsiteConfiguration
            | Self::ObjectLockConfigurationNotFoundError
            | Self::OwnershipControlsNotFoundError
            | Self::ReplicationConfigurationNotFoundError
            | Self::ServerSideEncryptionConfigurationNotFoundError => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BucketAlreadyOwnedByYou | Self::BucketNotEmpty => StatusCode::CONFLICT,
            Self::MissingContentLength => StatusCode::LENGTH_REQUIRED,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            Self::SlowDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An error answer: a code, a message for people, and the resource it concerns.
#[derive(Debug, Clone)]
pub struct S3Error {
    /// The S3 code (and so the status).
    pub code: S3ErrorCode,
    /// A message safe to show the client.
    pub message: String,
    /// The bucket or key the error concerns, shown as `<Resource>`.
    pub resource: Option<String>,
    /// Extra `<Name>value</Name>` fields some codes carry (e.g. `BucketName`, `Key`).
    pub fields: Vec<(&'static str, String)>,
}

impl S3Error {
    /// An error with a code and message.
    pub fn new(code: S3ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            resource: None,
            fields: Vec::new(),
        }
    }

    /// Adds an extra field to the XML body.
    #[must_use]
    pub fn with_field(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.fields.push((name, value.into()));
        self
    }

    /// The XML body for this error.
    #[must_use]
    pub fn to_xml(&self, resource: &str, request_id: &str) -> String {
        let mut xml = XmlWriter::new();
        xml.open("Error");
        xml.element("Code", self.code.as_str());
        xml.element("Message", &self.message);
        for (name, value) in &self.fields {
            xml.element(name, value);
        }
        xml.element("Resource", self.resource.as_deref().unwrap_or(resource));
        xml.element("RequestId", request_id);
        xml.close("Error");
        xml.finish()
    }

    /// `InternalError`, logging `cause` at error (it is never shown to the client).
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %ErrorChain(cause), "request failed inside the node");
        Self::new(
            S3ErrorCode::InternalError,
            "We encountered an internal error. Please try again.",
        )
    }
}

/// Displays an error with all its causes, `a: b: c`.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl From<VaultError> for S3Error {
    fn from(err: VaultError) -> Self {
        use S3ErrorCode as C;
        match &err {
            VaultError::NoSuchBucket(name) => {
                Self::new(C::NoSuchBucket, "The specified bucket does not exist").with_field("BucketName", name)
            }
            VaultError::NoSuchKey(key) => Self::new(C::NoSuchKey, "The specified key does not exist.").with_field("Key", key),
            VaultError::BucketExists(name) => Self::new(
                C::BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it.",
            )
            .with_field("BucketName", name),
            VaultError::BucketNotEmpty(name) => {
                Self::new(C::BucketNotEmpty, "The bucket you tried to delete is not empty").with_field("BucketName", name)
            }
            VaultError::InvalidBucketName { name, reason } => {
                Self::new(C::InvalidBucketName, format!("The specified bucket is not valid: {reason}"))
                    .with_field("BucketName", name)
            }
            VaultError::VaultExists(name) => Self::new(
                C::InvalidBucketName,
                format!("A vault named {name} exists already; bind it with `vh s3-gateway bucket bind`"),
            ),
            VaultError::InvalidKey(vault::InvalidKey::TooLong { .. }) => {
                Self::new(C::KeyTooLongError, "Your key is too long")
            }
            VaultError::InvalidKey(reason) => {
                Self::new(C::InvalidArgument, format!("The key cannot be stored as a path: {reason}"))
            }
            VaultError::KeyConflict { .. } | VaultError::DirectoryWithContent(_) => {
                Self::new(C::InvalidArgument, err.to_string())
            }
            VaultError::PreconditionFailed(_) => Self::new(
                C::PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold",
            )
            .with_field("Condition", "If-Match"),
            VaultError::NoSuchUpload(id) => Self::new(
                C::NoSuchUpload,
                "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
            )
            .with_field("UploadId", id),
            VaultError::InvalidPart { part_number } => Self::new(
                C::InvalidPart,
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
            )
            .with_field("PartNumber", part_number.to_string()),
            VaultError::InvalidPartOrder => Self::new(
                C::InvalidPartOrder,
                "The list of parts was not in ascending order. Parts must be ordered by part number.",
            ),
            VaultError::EntityTooSmall { size, min, .. } => Self::new(
                C::EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size.",
            )
            .with_field("ProposedSize", size.to_string())
            .with_field("MinSizeAllowed", min.to_string()),
            VaultError::NoSuchCredential(_) => Self::new(
                C::InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records.",
            ),
            // Operator-side errors never reach the gateway through a client request; if one
            // does, it is a bug worth a log line.
            VaultError::NoSuchVault(_)
            | VaultError::VaultInUse { .. }
            | VaultError::InvalidName { .. }
            | VaultError::Integrity(_)
            | VaultError::Blob(_)
            | VaultError::Metadata(_)
            | VaultError::Keys(_)
            | VaultError::Crypto(_)
            | VaultError::DataDirInUse(_)
            | VaultError::Tree { .. }
            | VaultError::Internal(_) => Self::internal(&err),
        }
    }
}

impl From<crate::sigv4::AuthError> for S3Error {
    fn from(err: crate::sigv4::AuthError) -> Self {
        Self::new(code_from_str(err.s3_code()), err.to_string())
    }
}

impl From<crate::chunked::ChunkedError> for S3Error {
    fn from(err: crate::chunked::ChunkedError) -> Self {
        Self::new(code_from_str(err.s3_code()), err.to_string())
    }
}

/// The code for a code name reported by the SigV4 and aws-chunked layers, which name their
/// codes as strings so they stay independent of this module.
fn code_from_str(code: &str) -> S3ErrorCode {
    match code {
        "AccessDenied" => S3ErrorCode::AccessDenied,
        "AuthorizationHeaderMalformed" => S3ErrorCode::AuthorizationHeaderMalformed,
        "AuthorizationQueryParametersError" => S3ErrorCode::AuthorizationQueryParametersError,
        "RequestTimeTooSkewed" => S3ErrorCode::RequestTimeTooSkewed,
        "SignatureDoesNotMatch" => S3ErrorCode::SignatureDoesNotMatch,
        "InvalidArgument" => S3ErrorCode::InvalidArgument,
        "XAmzContentSHA256Mismatch" => S3ErrorCode::XAmzContentSHA256Mismatch,
        "IncompleteBody" => S3ErrorCode::IncompleteBody,
        "InvalidRequest" => S3ErrorCode::InvalidRequest,
        "EntityTooLarge" => S3ErrorCode::EntityTooLarge,
        "BadDigest" => S3ErrorCode::BadDigest,
        "MalformedTrailerError" => S3ErrorCode::MalformedTrailerError,
        // Every code those layers emit is listed above; an unknown one is still the
        // client's fault, never the node's.
        _ => S3ErrorCode::InvalidRequest,
    }
}
