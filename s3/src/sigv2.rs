//! Server-side verification of AWS Signature Version 2 for the S3 gateway.
//!
//! Covers both ways S3 clients still sign with SigV2: the `Authorization: AWS <key>:<signature>`
//! header and presigned URLs carrying `AWSAccessKeyId`, `Signature` and `Expires` query
//! parameters, as described in
//! [Signing and authenticating REST requests](https://docs.aws.amazon.com/AmazonS3/latest/API/RESTAuthentication.html).
//! boto3's `generate_presigned_url` produces the latter by default, and s3cmd (with
//! `signature_v2`) and older tools send the former.
//!
//! The signature is `Base64(HMAC-SHA1(secret, StringToSign))` over
//!
//! ```text
//! HTTP-Verb \n Content-MD5 \n Content-Type \n Date (or Expires) \n
//! CanonicalizedAmzHeaders CanonicalizedResource
//! ```
//!
//! Where the specification leaves room, the rules follow botocore's `HmacV1Auth` and
//! `HmacV1QueryAuth` (the signer of boto3 and the AWS CLI), as they are what most SigV2 requests
//! are signed with: the sub-resources kept in the resource are its list ([`SUBRESOURCES`]), their
//! values are decoded, and a bucket-only path is signed with a trailing slash.
//!
//! As with SigV4, verification happens in two steps so that the caller owns the credential store:
//! [`parse`] extracts what the client claims without any secret, the caller looks up the secret
//! for [`V2Request::access_key`] (and records the bucket of a virtual-hosted request in
//! [`V2Request::virtual_host_bucket`]), and [`verify`] rebuilds the string to sign, checks the
//! clock and compares signatures. SigV2 never covers the body: only `Content-MD5`, when sent, does.
//!
//! Security: signatures are compared in constant time; no error message or `Debug` output
//! contains a signature, the secret or the `Authorization` header.

mod canonical;
mod error;
mod parse;
#[cfg(test)]
mod tests;
mod verify;

use std::fmt;

use time::OffsetDateTime;

pub use error::SigV2Error;
pub use parse::parse;
pub use verify::verify;

/// The `Authorization` scheme of SigV2 requests.
pub const SCHEME: &str = "AWS";

/// The query parameters kept in the canonicalized resource: botocore's `QSAOfInterest`, which
/// covers the list in the S3 documentation plus the sub-resources added since (`tagging`,
/// `restore`, `select` and others). Other clients' lists agree on every sub-resource the gateway
/// serves.
pub const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// How the request carries its signature, and the time it is valid for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V2Kind {
    /// `Authorization: AWS <key>:<signature>`; valid within 15 minutes of `date` (the
    /// `x-amz-date` header, else `Date`).
    Header {
        /// The request date.
        date: OffsetDateTime,
    },
    /// Presigned URL; valid until `expires`, in seconds since the Unix epoch.
    Presigned {
        /// The `Expires` query parameter.
        expires: i64,
    },
}

/// Everything a client claims about its SigV2 signature, parsed from one request.
///
/// `Debug` leaves out the signature.
#[derive(Clone)]
pub struct V2Request {
    /// The access key id.
    pub access_key: String,
    /// The signature the client sent, base64 (percent-decoded for presigned URLs).
    pub signature: String,
    /// Header or presigned URL.
    pub kind: V2Kind,
    /// The bucket named by the `Host` header of a virtual-hosted-style request, which SigV2 signs
    /// in front of the path. [`parse`] leaves it `None`; the caller, which resolves the host, sets
    /// it. `None` means the path is signed as sent (path style).
    pub virtual_host_bucket: Option<String>,
}

impl fmt::Debug for V2Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V2Request")
            .field("access_key", &self.access_key)
            .field("kind", &self.kind)
            .field("virtual_host_bucket", &self.virtual_host_bucket)
            .finish_non_exhaustive()
    }
}
