//! Request authentication: who sent the request, and how its body is to be trusted.

use std::sync::Arc;

use http::request::Parts;
use time::OffsetDateTime;
use vault::{Engine, Secret, VaultError};

use crate::error::{S3Error, S3ErrorCode};
use crate::sigv2;
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

/// Checks the request's signature against the credential it names, for a path-style request
/// (see [`authenticate_addressed`]).
///
/// # Errors
/// As [`authenticate_addressed`].
pub async fn authenticate(
    engine: &Arc<Engine>,
    parts: &Parts,
    require_sigv4: bool,
) -> Result<Authenticated, S3Error> {
    authenticate_addressed(engine, parts, require_sigv4, None).await
}

/// Checks the request's signature (SigV4, or SigV2 as older clients and boto3's presigned URLs
/// send it) against the credential it names.
///
/// `host_bucket` is the bucket the `Host` header names in a virtual-hosted-style request, which
/// SigV2 signs in front of the path; `None` for path-style requests.
///
/// # Errors
/// The S3 error the client gets: `AccessDenied` for an anonymous request when signatures are
/// required, `InvalidAccessKeyId` for an unknown or revoked key, `SignatureDoesNotMatch`, and
/// the other SigV4 and SigV2 failures.
pub async fn authenticate_addressed(
    engine: &Arc<Engine>,
    parts: &Parts,
    require_sigv4: bool,
    host_bucket: Option<&str>,
) -> Result<Authenticated, S3Error> {
    if let Some(mut signed) = sigv2::parse(parts)? {
        signed.virtual_host_bucket = host_bucket.map(str::to_owned);
        let secret = credential_secret(engine, &signed.access_key).await?;
        sigv2::verify(
            &signed,
            parts,
            secret.expose_secret().as_bytes(),
            OffsetDateTime::now_utc(),
        )?;
        // SigV2 covers no payload hash; a Content-MD5, when sent, is still checked on the body.
        return Ok(Authenticated {
            access_key: Some(signed.access_key),
            payload: PayloadHash::Unsigned,
            streaming: None,
        });
    }

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

    let secret = credential_secret(engine, &signed.access_key).await?;
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

/// The secret of an active credential; `InvalidAccessKeyId` for an unknown or revoked key.
async fn credential_secret(engine: &Arc<Engine>, access_key: &str) -> Result<Secret, S3Error> {
    let lookup_engine = Arc::clone(engine);
    let access_key = access_key.to_owned();
    let secret = tokio::task::spawn_blocking(move || lookup_engine.credential_secret(&access_key))
        .await
        .map_err(|err| S3Error::internal(&err))?;
    match secret {
        Ok(secret) => Ok(secret),
        Err(VaultError::NoSuchCredential(_)) => Err(S3Error::new(
            S3ErrorCode::InvalidAccessKeyId,
            "The AWS Access Key Id you provided does not exist in our records.",
        )),
        Err(err) => Err(err.into()),
    }
}
