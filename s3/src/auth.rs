//! Request authentication: who sent the request, and how its body is to be trusted.

use std::sync::Arc;

use http::request::Parts;
use time::OffsetDateTime;
use vault::{Engine, VaultError};

use crate::error::{S3Error, S3ErrorCode};
use crate::sigv4::{self, PayloadHash, StreamingContext};

/// The outcome of authenticating a request.
pub struct Authenticated {
    /// The access key that signed the request, or `None` for an anonymous request (only
    /// accepted when `require_sigv4` is off on a loopback listener).
    pub access_key: Option<String>,
    /// What `x-amz-content-sha256` promised about the body.
    pub payload: PayloadHash,
    /// The chain seed for `aws-chunked` bodies with signed chunks.
    pub streaming: Option<StreamingContext>,
}

/// Checks the request's signature against the credential it names.
///
/// # Errors
/// The S3 error the client gets: `AccessDenied` for an anonymous request when signatures are
/// required, `InvalidAccessKeyId` for an unknown or revoked key, `SignatureDoesNotMatch`, and
/// the other SigV4 failures.
pub async fn authenticate(
    engine: &Arc<Engine>,
    parts: &Parts,
    require_sigv4: bool,
) -> Result<Authenticated, S3Error> {
    let Some(signed) = sigv4::parse(parts)? else {
        if require_sigv4 {
            return Err(S3Error::new(
                S3ErrorCode::AccessDenied,
                "Access Denied: this gateway requires signed requests",
            ));
        }
        let payload = parts
            .headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
            .map_or(Ok(PayloadHash::Unsigned), PayloadHash::parse)?;
        return Ok(Authenticated {
            access_key: None,
            payload,
            streaming: None,
        });
    };

    let lookup_engine = Arc::clone(engine);
    let access_key = signed.access_key.clone();
    let secret = tokio::task::spawn_blocking(move || lookup_engine.credential_secret(&access_key))
        .await
        .map_err(|err| S3Error::internal(&err))?;
    let secret = match secret {
        Ok(secret) => secret,
        Err(VaultError::NoSuchCredential(_)) => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records.",
            ));
        }
        Err(err) => return Err(err.into()),
    };
    let context = sigv4::verify(
        &signed,
        parts,
        secret.expose_secret().as_bytes(),
        OffsetDateTime::now_utc(),
    )?;
    let streaming = signed.payload.has_signed_chunks().then_some(context);
    Ok(Authenticated {
        access_key: Some(signed.access_key),
        payload: signed.payload,
        streaming,
    })
}
