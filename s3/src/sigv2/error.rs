//! SigV2 authentication failures, each mapping to the S3 error code AWS answers with.
//!
//! Codes and messages follow what S3 sends for SigV2 requests. Messages are safe to send to
//! clients and to log: they never quote the signature, the secret or the `Authorization` header
//! (S3 echoes the header in `<ArgumentValue>`; the gateway names only the argument).

use time::OffsetDateTime;

use crate::error::{S3Error, S3ErrorCode};

/// The longest part of a bad `Expires` value quoted back to the client.
const MAX_QUOTED_EXPIRES: usize = 64;

/// Why a request failed SigV2 authentication.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SigV2Error {
    /// `InvalidArgument`: the `Authorization` header is not the scheme, one space and the
    /// credential.
    #[error("Authorization header is invalid -- one and only one ' ' (space) required")]
    AuthorizationHeaderSpacing,

    /// `InvalidArgument`: the credential is not `<access key>:<signature>`.
    #[error("AWS authorization header is invalid.  Expected AwsAccessKeyId:signature")]
    MalformedAuthorization,

    /// `AccessDenied`: some but not all of `AWSAccessKeyId`, `Signature` and `Expires`.
    #[error(
        "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"
    )]
    MissingQueryParameters,

    /// `AccessDenied`: `Expires` is not a whole number of seconds. Carries the value sent
    /// (at most 64 characters of it).
    #[error("Invalid date (should be seconds since epoch): {0}")]
    InvalidExpires(String),

    /// `InvalidArgument`: SigV2 together with SigV4, or with a second SigV2 signature.
    #[error(
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature \
         query string parameter or the Authorization header should be specified"
    )]
    MultipleAuthMechanisms,

    /// `AccessDenied`: a header-signed request whose `x-amz-date` (or, without it, `Date`) is
    /// missing or not a date.
    #[error("AWS authentication requires a valid Date or x-amz-date header")]
    InvalidDate,

    /// `SignatureDoesNotMatch`: the signature differs from every one computed.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check \
         your key and signing method."
    )]
    SignatureDoesNotMatch,

    /// `RequestTimeTooSkewed`: a header-signed request dated more than 15 minutes away from the
    /// server clock.
    #[error("The difference between the request time and the current time is too large.")]
    RequestTimeTooSkewed,

    /// `AccessDenied`: a presigned URL used after its `Expires`.
    #[error("Request has expired")]
    RequestExpired {
        /// The URL's `Expires`, in seconds since the Unix epoch.
        expires: i64,
        /// The server time the request arrived at, in seconds since the Unix epoch.
        server_time: i64,
    },
}

impl SigV2Error {
    /// An [`SigV2Error::InvalidExpires`] quoting at most 64 characters of `value`.
    pub(super) fn invalid_expires(value: &str) -> Self {
        Self::InvalidExpires(value.chars().take(MAX_QUOTED_EXPIRES).collect())
    }

    /// The S3 error code (and so the HTTP status) S3 answers with.
    #[must_use]
    pub fn code(&self) -> S3ErrorCode {
        match self {
            Self::AuthorizationHeaderSpacing
            | Self::MalformedAuthorization
            | Self::MultipleAuthMechanisms => S3ErrorCode::InvalidArgument,
            Self::MissingQueryParameters
            | Self::InvalidExpires(_)
            | Self::InvalidDate
            | Self::RequestExpired { .. } => S3ErrorCode::AccessDenied,
            Self::SignatureDoesNotMatch => S3ErrorCode::SignatureDoesNotMatch,
            Self::RequestTimeTooSkewed => S3ErrorCode::RequestTimeTooSkewed,
        }
    }
}

impl From<SigV2Error> for S3Error {
    fn from(err: SigV2Error) -> Self {
        let error = Self::new(err.code(), err.to_string());
        match err {
            SigV2Error::AuthorizationHeaderSpacing | SigV2Error::MalformedAuthorization => {
                error.with_field("ArgumentName", "Authorization")
            }
            SigV2Error::RequestExpired {
                expires,
                server_time,
            } => error
                .with_field("Expires", format_timestamp(expires))
                .with_field("ServerTime", format_timestamp(server_time)),
            SigV2Error::MissingQueryParameters
            | SigV2Error::InvalidExpires(_)
            | SigV2Error::MultipleAuthMechanisms
            | SigV2Error::InvalidDate
            | SigV2Error::SignatureDoesNotMatch
            | SigV2Error::RequestTimeTooSkewed => error,
        }
    }
}

/// `2007-03-27T19:36:42Z`, as S3 shows times in errors; the bare number when out of range.
fn format_timestamp(secs: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(at) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        ),
        Err(_) => secs.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_statuses_and_fields_follow_s3() {
        let cases = [
            (
                SigV2Error::AuthorizationHeaderSpacing,
                "InvalidArgument",
                400,
            ),
            (SigV2Error::MalformedAuthorization, "InvalidArgument", 400),
            (SigV2Error::MultipleAuthMechanisms, "InvalidArgument", 400),
            (SigV2Error::MissingQueryParameters, "AccessDenied", 403),
            (SigV2Error::invalid_expires("x"), "AccessDenied", 403),
            (SigV2Error::InvalidDate, "AccessDenied", 403),
            (
                SigV2Error::SignatureDoesNotMatch,
                "SignatureDoesNotMatch",
                403,
            ),
            (
                SigV2Error::RequestTimeTooSkewed,
                "RequestTimeTooSkewed",
                403,
            ),
        ];
        for (error, code, status) in cases {
            let s3 = S3Error::from(error);
            assert_eq!(s3.code.as_str(), code);
            assert_eq!(s3.code.status().as_u16(), status);
        }

        let expired = S3Error::from(SigV2Error::RequestExpired {
            expires: 1_175_139_620,
            server_time: 1_175_139_621,
        });
        assert_eq!(expired.code, S3ErrorCode::AccessDenied);
        assert_eq!(expired.message, "Request has expired");
        assert_eq!(
            expired.fields,
            vec![
                ("Expires", "2007-03-29T03:40:20Z".to_owned()),
                ("ServerTime", "2007-03-29T03:40:21Z".to_owned())
            ]
        );
        let malformed = S3Error::from(SigV2Error::MalformedAuthorization);
        assert_eq!(
            malformed.fields,
            vec![("ArgumentName", "Authorization".to_owned())]
        );
    }

    #[test]
    fn bad_expires_values_are_quoted_short() {
        let long = "9".repeat(500);
        let SigV2Error::InvalidExpires(quoted) = SigV2Error::invalid_expires(&long) else {
            panic!("wrong variant");
        };
        assert_eq!(quoted.len(), 64);
    }
}
