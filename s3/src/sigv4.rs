//! Server-side verification of AWS Signature Version 4 for the S3 gateway.
//!
//! Covers both ways S3 clients sign a request: the `Authorization` header
//! ([spec](https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-auth-using-authorization-header.html))
//! and presigned URLs carrying `X-Amz-*` query parameters
//! ([spec](https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html)).
//! The signing process itself is described in
//! [Authenticating Requests (AWS Signature Version 4)](https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html).
//!
//! Verification happens in two steps so that the caller owns the credential store: [`parse`]
//! extracts what the client claims (access key, scope, date, signed headers, payload mode) without
//! any secret, the caller looks up the secret for [`SignedRequest::access_key`] and decides whether
//! it accepts [`CredentialScope::region`], and [`verify`] rebuilds the canonical request, checks
//! the clock and compares signatures. For `aws-chunked` uploads the [`StreamingContext`] returned
//! by [`verify`] seeds the chunk signature chain checked in [`crate::chunked`].
//!
//! Security: signatures are compared in constant time; the derived signing key is wiped on drop
//! and has no `Debug` output; no error message or `Debug` output contains a signature, a security
//! token, the secret or the `Authorization` header.

mod canonical;
mod error;
mod parse;
#[cfg(test)]
mod tests;
mod verify;

use std::fmt;

use time::OffsetDateTime;

pub use error::AuthError;
pub use parse::parse;
pub use verify::{StreamingContext, verify};

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The terminator closing every credential scope.
pub const SCOPE_TERMINATOR: &str = "aws4_request";

/// The service name a credential scope must carry to be accepted here.
pub const SERVICE: &str = "s3";

/// Largest accepted distance between the request date and the server clock, in seconds
/// (15 minutes, as S3 allows).
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

/// Longest lifetime of a presigned URL, in seconds (seven days, as S3 allows).
pub const MAX_PRESIGNED_EXPIRES_SECS: u32 = 604_800;

/// The part of the credential that says where and for what the signature is valid:
/// `<date>/<region>/<service>/aws4_request`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialScope {
    /// The signing date, `YYYYMMDD`; it always equals the date part of the request date.
    pub date: String,
    /// The region the client signed for. The gateway serves one region but accepts whatever the
    /// client chose; the caller decides whether to refuse it.
    pub region: String,
    /// The service name; always [`SERVICE`] after a successful [`parse`].
    pub service: String,
}

impl fmt::Display for CredentialScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            date,
            region,
            service,
        } = self;
        write!(f, "{date}/{region}/{service}/{SCOPE_TERMINATOR}")
    }
}

/// How the request carries its signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKind {
    /// `Authorization: AWS4-HMAC-SHA256 ...` header.
    Header,
    /// Presigned URL; valid for `expires_secs` seconds (1 to [`MAX_PRESIGNED_EXPIRES_SECS`])
    /// after the request date.
    Presigned {
        /// The `X-Amz-Expires` value.
        expires_secs: u32,
    },
}

/// What the client declared about the body in `x-amz-content-sha256`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadHash {
    /// The body's SHA-256 in lower-case hex; the caller must check the body against it
    /// (S3 answers `XAmzContentSHA256Mismatch` when it differs).
    Sha256(String),
    /// `UNSIGNED-PAYLOAD`: the body is not covered by the signature. Presigned URLs default to
    /// this.
    Unsigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: `aws-chunked` body with signed chunks.
    StreamingSigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks plus a signed trailer.
    StreamingSignedTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: `aws-chunked` body with unsigned chunks and a
    /// trailer (usually a checksum).
    StreamingUnsignedTrailer,
}

impl PayloadHash {
    /// Classifies an `x-amz-content-sha256` value.
    ///
    /// # Errors
    ///
    /// [`AuthError::InvalidContentSha256`] for anything but the four literal values above and
    /// 64 hex digits.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let value = value.trim();
        let parsed = match value {
            "UNSIGNED-PAYLOAD" => Self::Unsigned,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Self::StreamingSigned,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => Self::StreamingSignedTrailer,
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Self::StreamingUnsignedTrailer,
            hex if is_sha256_hex(hex) => Self::Sha256(hex.to_ascii_lowercase()),
            _ => return Err(AuthError::InvalidContentSha256),
        };
        Ok(parsed)
    }

    /// The header value naming this payload mode (the hex digest for [`PayloadHash::Sha256`]).
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sha256(hex) => hex,
            Self::Unsigned => "UNSIGNED-PAYLOAD",
            Self::StreamingSigned => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            Self::StreamingSignedTrailer => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
            Self::StreamingUnsignedTrailer => "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        }
    }

    /// Whether the body is `aws-chunked` encoded.
    #[must_use]
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            Self::StreamingSigned | Self::StreamingSignedTrailer | Self::StreamingUnsignedTrailer
        )
    }

    /// Whether every chunk of the body carries a signature.
    #[must_use]
    pub fn has_signed_chunks(&self) -> bool {
        matches!(self, Self::StreamingSigned | Self::StreamingSignedTrailer)
    }

    /// Whether the `aws-chunked` body ends with trailer headers.
    #[must_use]
    pub fn has_trailer(&self) -> bool {
        matches!(
            self,
            Self::StreamingSignedTrailer | Self::StreamingUnsignedTrailer
        )
    }
}

/// Everything a client claims about its signature, parsed from one request.
///
/// `Debug` leaves out the signature and the security token.
#[derive(Clone)]
pub struct SignedRequest {
    /// The access key id from the credential.
    pub access_key: String,
    /// The credential scope.
    pub scope: CredentialScope,
    /// The request date (`x-amz-date`, else `Date`; `X-Amz-Date` for presigned URLs).
    pub amz_date: OffsetDateTime,
    /// The signed header names, lower case, in the order the client listed them.
    pub signed_headers: Vec<String>,
    /// The signature the client sent, lower-case hex.
    pub signature: String,
    /// Header or presigned URL.
    pub kind: AuthKind,
    /// The declared payload mode.
    pub payload: PayloadHash,
    /// `x-amz-security-token` (header) or `X-Amz-Security-Token` (presigned), if sent. The
    /// gateway issues no temporary credentials, so the caller will usually refuse it.
    pub security_token: Option<String>,
}

impl fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRequest")
            .field("access_key", &self.access_key)
            .field("scope", &self.scope)
            .field("amz_date", &self.amz_date)
            .field("signed_headers", &self.signed_headers)
            .field("kind", &self.kind)
            .field("payload", &self.payload)
            .field("has_security_token", &self.security_token.is_some())
            .finish_non_exhaustive()
    }
}

/// Whether `value` is a SHA-256 digest in hex (either letter case).
fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}
