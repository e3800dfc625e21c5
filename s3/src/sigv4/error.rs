//! Authentication failures, each mapping to one S3 error code and HTTP status.
//!
//! Codes and statuses follow the
//! [S3 error responses](https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html)
//! list. Messages are safe to send to clients and to log: they never quote the signature, the
//! secret, a security token or the `Authorization` header.

use http::StatusCode;

/// Why a request failed SigV4 authentication.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `AuthorizationHeaderMalformed`, 400: the `Authorization` header or its credential cannot
    /// be parsed, or its scope is not acceptable. The payload names the problem.
    #[error("The authorization header is malformed; {0}.")]
    AuthorizationHeaderMalformed(&'static str),

    /// `AuthorizationQueryParametersError`, 400: the `X-Amz-*` parameters of a presigned URL
    /// are missing or malformed. The payload names the problem.
    #[error("{0}")]
    AuthorizationQueryParametersError(&'static str),

    /// `InvalidArgument`, 400: the `Authorization` header uses a scheme other than
    /// `AWS4-HMAC-SHA256` (for example SigV2 or SigV4a), or a presigned URL uses SigV2.
    #[error("Unsupported Authorization Type")]
    UnsupportedAlgorithm,

    /// `InvalidArgument`, 400: both an `Authorization` header and presigned query parameters.
    #[error(
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature \
         query string parameter or the Authorization header should be specified"
    )]
    MultipleAuthMechanisms,

    /// `AccessDenied`, 403: neither `x-amz-date` nor `Date` holds a valid date.
    #[error("AWS authentication requires a valid Date or x-amz-date header")]
    InvalidDate,

    /// `InvalidRequest`, 400: a header-signed request without `x-amz-content-sha256`.
    #[error("Missing required header for this request: x-amz-content-sha256")]
    MissingContentSha256,

    /// `InvalidArgument`, 400: `x-amz-content-sha256` is neither a SHA-256 hex digest nor one
    /// of the recognised literal values.
    #[error(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, \
         STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a \
         valid sha256 value."
    )]
    InvalidContentSha256,

    /// `InvalidAccessKeyId`, 403: the access key is unknown; for the caller's credential lookup.
    #[error("The AWS Access Key Id you provided does not exist in our records.")]
    InvalidAccessKeyId,

    /// `SignatureDoesNotMatch`, 403: the signature differs from the one computed.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check \
         your key and signing method."
    )]
    SignatureDoesNotMatch,

    /// `RequestTimeTooSkewed`, 403: a header-signed request dated more than 15 minutes away from
    /// the server clock.
    #[error("The difference between the request time and the current time is too large.")]
    RequestTimeTooSkewed,

    /// `AccessDenied`, 403: a presigned URL used after its expiry.
    #[error("Request has expired")]
    RequestExpired,

    /// `AccessDenied`, 403: a presigned URL dated more than 15 minutes in the future.
    #[error("Request is not valid yet")]
    RequestNotYetValid,

    /// `AccessDenied`, 403: a presigned request carries `x-amz-*` headers it did not sign.
    #[error("There were headers present in the request which were not signed")]
    HeadersNotSigned,
}

impl AuthError {
    /// The S3 error code sent in the `<Code>` element.
    #[must_use]
    pub fn s3_code(&self) -> &'static str {
        match self {
            Self::AuthorizationHeaderMalformed(_) => "AuthorizationHeaderMalformed",
            Self::AuthorizationQueryParametersError(_) => "AuthorizationQueryParametersError",
            Self::UnsupportedAlgorithm
            | Self::MultipleAuthMechanisms
            | Self::InvalidContentSha256 => "InvalidArgument",
            Self::InvalidDate
            | Self::RequestExpired
            | Self::RequestNotYetValid
            | Self::HeadersNotSigned => "AccessDenied",
            Self::MissingContentSha256 => "InvalidRequest",
            Self::InvalidAccessKeyId => "InvalidAccessKeyId",
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::RequestTimeTooSkewed => "RequestTimeTooSkewed",
        }
    }

    /// The HTTP status S3 answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::AuthorizationHeaderMalformed(_)
            | Self::AuthorizationQueryParametersError(_)
            | Self::UnsupportedAlgorithm
            | Self::MultipleAuthMechanisms
            | Self::MissingContentSha256
            | Self::InvalidContentSha256 => StatusCode::BAD_REQUEST,
            Self::InvalidDate
            | Self::InvalidAccessKeyId
            | Self::SignatureDoesNotMatch
            | Self::RequestTimeTooSkewed
            | Self::RequestExpired
            | Self::RequestNotYetValid
            | Self::HeadersNotSigned => StatusCode::FORBIDDEN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_follow_s3() {
        let cases = [
            (
                AuthError::AuthorizationHeaderMalformed("x"),
                "AuthorizationHeaderMalformed",
                400,
            ),
            (
                AuthError::AuthorizationQueryParametersError("x"),
                "AuthorizationQueryParametersError",
                400,
            ),
            (AuthError::UnsupportedAlgorithm, "InvalidArgument", 400),
            (AuthError::MissingContentSha256, "InvalidRequest", 400),
            (AuthError::InvalidContentSha256, "InvalidArgument", 400),
            (
                AuthError::SignatureDoesNotMatch,
                "SignatureDoesNotMatch",
                403,
            ),
            (AuthError::RequestTimeTooSkewed, "RequestTimeTooSkewed", 403),
            (AuthError::RequestExpired, "AccessDenied", 403),
            (AuthError::InvalidDate, "AccessDenied", 403),
        ];
        for (error, code, status) in cases {
            assert_eq!(error.s3_code(), code);
            assert_eq!(error.status().as_u16(), status);
        }
        assert_eq!(AuthError::RequestExpired.to_string(), "Request has expired");
    }
}
