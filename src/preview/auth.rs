//! Request authentication: the same SigV4 check the S3 gateway makes, against the gateway's
//! credentials.
//!
//! Both forms clients produce are accepted: the `Authorization` header and the presigned URL
//! (what a web page puts in an `<img src>`). The canonical request is rebuilt from the path and
//! query as sent, so a signature for `/thumbnail/b/k?size=64` covers exactly that preview.

use std::sync::Arc;

use axum::http::request::Parts;
use s3::sigv4::{self, AuthError};
use time::OffsetDateTime;
use vault::{Engine, VaultError};

use super::error::PreviewError;

/// Checks the request's signature; returns the access key that signed it.
///
/// # Errors
/// [`PreviewError::Unauthenticated`] for an unsigned request, [`PreviewError::Auth`] for a
/// malformed, unknown, expired or wrong signature, [`PreviewError::Vault`] when the credential
/// store fails.
pub async fn authenticate(engine: &Arc<Engine>, parts: &Parts) -> Result<String, PreviewError> {
    let Some(signed) = sigv4::parse(parts)? else {
        return Err(PreviewError::Unauthenticated);
    };

    let lookup = Arc::clone(engine);
    let access_key = signed.access_key.clone();
    let secret = tokio::task::spawn_blocking(move || lookup.credential_secret(&access_key))
        .await
        .map_err(PreviewError::Task)?;
    let secret = match secret {
        Ok(secret) => secret,
        Err(VaultError::NoSuchCredential(_)) => {
            return Err(AuthError::InvalidAccessKeyId.into());
        }
        Err(err) => return Err(PreviewError::Vault(err)),
    };

    sigv4::verify(
        &signed,
        parts,
        secret.expose_secret().as_bytes(),
        OffsetDateTime::now_utc(),
    )?;
    Ok(signed.access_key)
}
