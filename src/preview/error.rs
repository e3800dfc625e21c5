//! Every way a preview request can fail, mapped in one place to an HTTP status, a stable code
//! and a JSON body.
//!
//! Clients see a code and a message safe to show; the cause of a server-side failure stays in
//! the log. Client mistakes are logged at debug, failures of the node at error.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use s3::sigv4::AuthError;
use vault::VaultError;

/// Why a preview was not served.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The request carries neither an `Authorization` header nor a presigned query.
    #[error(
        "this request is not signed: sign it with SigV4 (Authorization header or presigned URL) \
         using a gateway credential"
    )]
    Unauthenticated,

    /// The SigV4 check failed: malformed, unknown key, wrong signature, expired, skewed.
    #[error("{0}")]
    Auth(#[from] AuthError),

    /// The path names no preview endpoint.
    #[error(
        "no such endpoint: use GET /thumbnail/{{bucket}}/{{key}} or GET /text/{{bucket}}/{{key}}"
    )]
    NoSuchRoute,

    /// A method other than `GET`.
    #[error("only GET is served here")]
    MethodNotAllowed,

    /// The path or a query parameter cannot be read.
    #[error("{0}")]
    BadRequest(String),

    /// The bucket does not exist.
    #[error("the bucket {0} does not exist")]
    NoSuchBucket(String),

    /// The key does not exist in the bucket (or cannot be a key at all).
    #[error("the key does not exist")]
    NoSuchKey,

    /// The object exists but has no preview of the kind asked for.
    #[error("{0}")]
    Unsupported(String),

    /// The object or the image it holds is over a configured limit.
    #[error("{0}")]
    TooLarge(String),

    /// Every connection slot is taken.
    #[error("the preview server is busy; retry shortly")]
    Busy,

    /// The engine failed: storage, metadata, keys, or an integrity check.
    #[error("reading the object failed")]
    Vault(#[source] VaultError),

    /// A blocking task died.
    #[error("a preview task failed")]
    Task(#[source] tokio::task::JoinError),

    /// The thumbnail could not be encoded.
    #[error("encoding the thumbnail failed")]
    Encode(#[source] image::ImageError),
}

impl From<VaultError> for PreviewError {
    fn from(err: VaultError) -> Self {
        match err {
            VaultError::NoSuchBucket(name) => Self::NoSuchBucket(name),
            // A key that cannot be a path names nothing that could exist, as in the gateway.
            VaultError::NoSuchKey(_) | VaultError::InvalidKey(_) => Self::NoSuchKey,
            other => Self::Vault(other),
        }
    }
}

impl PreviewError {
    /// The HTTP status and the code shown in the body.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "MissingSignature"),
            Self::Auth(err) => (err.status(), err.s3_code()),
            Self::NoSuchRoute => (StatusCode::NOT_FOUND, "NoSuchEndpoint"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "InvalidArgument"),
            Self::NoSuchBucket(_) => (StatusCode::NOT_FOUND, "NoSuchBucket"),
            Self::NoSuchKey => (StatusCode::NOT_FOUND, "NoSuchKey"),
            Self::Unsupported(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "TooLarge"),
            Self::Busy => (StatusCode::SERVICE_UNAVAILABLE, "SlowDown"),
            Self::Vault(_) | Self::Task(_) | Self::Encode(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
            }
        }
    }

    /// Whether the failure is the node's, not the client's.
    pub fn is_internal(&self) -> bool {
        self.status_and_code().0.is_server_error() && !matches!(self, Self::Busy)
    }

    /// The answer the client gets: the status, and `{"error": code, "message": text}`.
    pub fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if self.is_internal() {
            "the preview could not be made; the node logged why".to_owned()
        } else {
            self.to_string()
        };
        let body = serde_json::json!({ "error": code, "message": message }).to_string();
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match self {
            Self::Unauthenticated => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(s3::sigv4::ALGORITHM),
                );
            }
            Self::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            Self::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            // The other failures need no header beyond the body's type.
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_failure() {
        let cases = [
            (PreviewError::Unauthenticated, 401),
            (PreviewError::Auth(AuthError::SignatureDoesNotMatch), 403),
            (PreviewError::Auth(AuthError::InvalidAccessKeyId), 403),
            (PreviewError::NoSuchKey, 404),
            (PreviewError::NoSuchBucket("b".into()), 404),
            (PreviewError::Unsupported("binary".into()), 415),
            (PreviewError::TooLarge("big".into()), 413),
            (PreviewError::MethodNotAllowed, 405),
            (PreviewError::Busy, 503),
        ];
        for (error, status) in cases {
            assert_eq!(error.status_and_code().0.as_u16(), status, "{error:?}");
        }
    }

    #[test]
    fn internal_failures_hide_their_cause() {
        let error = PreviewError::Vault(VaultError::Internal("disk on fire".into()));
        assert!(error.is_internal());
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
