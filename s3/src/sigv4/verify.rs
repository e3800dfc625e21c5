//! Signature computation and comparison, clock checks, and the key material kept for
//! `aws-chunked` bodies.
//!
//! The signing key is derived as in
//! [Calculating a signature](https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html):
//! `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.

use std::fmt;

use hmac::{Hmac, Mac};
use http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use super::canonical::{self, PathForm};
use super::parse::{format_amz_date, signed_payload_hash};
use super::{ALGORITHM, AuthError, AuthKind, CredentialScope, MAX_CLOCK_SKEW_SECS, SignedRequest};

/// Hex SHA-256 of the empty string, used in every chunk string to sign.
const EMPTY_SHA256_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Verifies the signature of a parsed request against `secret`, at server time `now`.
///
/// Rebuilds the canonical request from `parts` (which must be the parts `req` was parsed from),
/// checks the clock, and compares signatures in constant time. The path is tried in the form
/// AWS SDKs sign and, only if that fails, exactly as sent (see [`PathForm`]); both decode to the
/// same key, so neither lets a signature cover a different request.
///
/// # Errors
///
/// [`AuthError::RequestTimeTooSkewed`] for a header-signed request dated more than 15 minutes
/// from `now`; [`AuthError::RequestExpired`] or [`AuthError::RequestNotYetValid`] for a
/// presigned URL used outside its validity; [`AuthError::HeadersNotSigned`] for a presigned
/// request with unsigned `x-amz-*` headers; [`AuthError::SignatureDoesNotMatch`] otherwise.
pub fn verify(
    req: &SignedRequest,
    parts: &Parts,
    secret: &[u8],
    now: OffsetDateTime,
) -> Result<StreamingContext, AuthError> {
    check_clock(req, now)?;
    if let AuthKind::Presigned { .. } = req.kind {
        check_amz_headers_signed(req, parts)?;
    }

    let context = StreamingContext::new(secret, &req.scope, req.amz_date, &req.signature);
    let provided = req.signature.to_ascii_lowercase();
    let matches = canonical_requests(req, parts).any(|canonical_request| {
        let computed = context.sign_canonical_request(&canonical_request);
        bool::from(computed.as_bytes().ct_eq(provided.as_bytes()))
    });
    if !matches {
        return Err(AuthError::SignatureDoesNotMatch);
    }

    Ok(context)
}

/// What `aws-chunked` verification needs once the seed signature is verified: the derived
/// signing key, the seed signature, the scope and the request date.
///
/// The key is wiped on drop (every clone's copy too); `Debug` shows neither the key nor the
/// signature.
#[derive(Clone)]
pub struct StreamingContext {
    key: SigningKey,
    seed_signature: String,
    scope: String,
    amz_date: String,
}

impl StreamingContext {
    /// Derives the signing key for `scope` from `secret` and records the seed signature.
    ///
    /// [`verify`] returns this after checking the seed; building one directly is for signing
    /// (for example test clients producing `aws-chunked` bodies).
    #[must_use]
    pub fn new(
        secret: &[u8],
        scope: &CredentialScope,
        amz_date: OffsetDateTime,
        seed_signature: &str,
    ) -> Self {
        Self {
            key: SigningKey::derive(secret, scope),
            seed_signature: seed_signature.to_ascii_lowercase(),
            scope: scope.to_string(),
            amz_date: format_amz_date(amz_date),
        }
    }

    /// The verified signature of the request headers, which chains into the first chunk.
    #[must_use]
    pub fn seed_signature(&self) -> &str {
        &self.seed_signature
    }

    /// The credential scope string, `20130524/us-east-1/s3/aws4_request`.
    #[must_use]
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The request date as signed, `20130524T000000Z`.
    #[must_use]
    pub fn amz_date(&self) -> &str {
        &self.amz_date
    }

    /// The expected signature of a chunk whose data hashes to `chunk_sha256`, following the
    /// chunk (or seed) signed as `previous_signature`.
    #[must_use]
    pub fn chunk_signature(&self, previous_signature: &str, chunk_sha256: &[u8; 32]) -> String {
        let string_to_sign = format!(
            "{ALGORITHM}-PAYLOAD\n{}\n{}\n{previous_signature}\n{EMPTY_SHA256_HEX}\n{}",
            self.amz_date,
            self.scope,
            hex::encode(chunk_sha256)
        );
        hex::encode(self.key.sign(string_to_sign.as_bytes()))
    }

    /// The expected `x-amz-trailer-signature` for trailer lines hashing to `trailers_sha256`
    /// (the SHA-256 of `name:value\n` for each trailer, sorted by name), following the final
    /// zero-length chunk signed as `previous_signature`.
    #[must_use]
    pub fn trailer_signature(
        &self,
        previous_signature: &str,
        trailers_sha256: &[u8; 32],
    ) -> String {
        let string_to_sign = format!(
            "{ALGORITHM}-TRAILER\n{}\n{}\n{previous_signature}\n{}",
            self.amz_date,
            self.scope,
            hex::encode(trailers_sha256)
        );
        hex::encode(self.key.sign(string_to_sign.as_bytes()))
    }

    /// The signature of a canonical request under this context's key, scope and date.
    pub(super) fn sign_canonical_request(&self, canonical_request: &[u8]) -> String {
        let hashed = hex::encode(Sha256::digest(canonical_request));
        let string_to_sign = format!("{ALGORITHM}\n{}\n{}\n{hashed}", self.amz_date, self.scope);
        hex::encode(self.key.sign(string_to_sign.as_bytes()))
    }
}

impl fmt::Debug for StreamingContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamingContext")
            .field("scope", &self.scope)
            .field("amz_date", &self.amz_date)
            .finish_non_exhaustive()
    }
}

/// The derived SigV4 signing key; wiped on drop, never printed.
#[derive(Clone)]
struct SigningKey([u8; 32]);

impl SigningKey {
    fn derive(secret: &[u8], scope: &CredentialScope) -> Self {
        let mut secret_key = Vec::with_capacity(secret.len() + 4);
        secret_key.extend_from_slice(b"AWS4");
        secret_key.extend_from_slice(secret);

        let mut date_key = hmac_sha256(&secret_key, scope.date.as_bytes());
        wipe(&mut secret_key);
        let mut region_key = hmac_sha256(&date_key, scope.region.as_bytes());
        wipe(&mut date_key);
        let mut service_key = hmac_sha256(&region_key, scope.service.as_bytes());
        wipe(&mut region_key);
        let signing_key = hmac_sha256(&service_key, super::SCOPE_TERMINATOR.as_bytes());
        wipe(&mut service_key);
        Self(signing_key)
    }

    fn sign(&self, message: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0, message)
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Overwrites key material with zeros in a way the optimiser may not remove.
fn wipe(bytes: &mut [u8]) {
    zeroize::Zeroize::zeroize(bytes);
}

fn check_clock(req: &SignedRequest, now: OffsetDateTime) -> Result<(), AuthError> {
    let max_skew = Duration::seconds(MAX_CLOCK_SKEW_SECS);
    match req.kind {
        AuthKind::Header if (now - req.amz_date).abs() > max_skew => {
            Err(AuthError::RequestTimeTooSkewed)
        }
        AuthKind::Header => Ok(()),
        AuthKind::Presigned { .. } if req.amz_date - now > max_skew => {
            Err(AuthError::RequestNotYetValid)
        }
        AuthKind::Presigned { expires_secs }
            if now - req.amz_date > Duration::seconds(expires_secs.into()) =>
        {
            Err(AuthError::RequestExpired)
        }
        AuthKind::Presigned { .. } => Ok(()),
    }
}

/// Presigned URLs are handed to third parties, so every `x-amz-*` header that changes what the
/// request does must be one the signer chose, as S3 requires.
fn check_amz_headers_signed(req: &SignedRequest, parts: &Parts) -> Result<(), AuthError> {
    let unsigned = parts.headers.keys().any(|name| {
        let name = name.as_str();
        name.starts_with("x-amz-") && !req.signed_headers.iter().any(|signed| signed == name)
    });
    if unsigned {
        return Err(AuthError::HeadersNotSigned);
    }
    Ok(())
}

/// The canonical requests to try, most common client behaviour first, built lazily.
fn canonical_requests<'a>(
    req: &'a SignedRequest,
    parts: &'a Parts,
) -> impl Iterator<Item = Vec<u8>> + 'a {
    let raw_path = parts.uri.path();
    let raw_query = parts.uri.query().unwrap_or("");
    let presigned = matches!(req.kind, AuthKind::Presigned { .. });
    let payload =
        signed_payload_hash(parts, req.kind).unwrap_or_else(|| req.payload.as_str().to_owned());

    let normalized = canonical::canonical_uri(raw_path, PathForm::Normalized);
    let as_sent = canonical::canonical_uri(raw_path, PathForm::AsSent);
    let uris = if as_sent == normalized {
        vec![normalized]
    } else {
        vec![normalized, as_sent]
    };

    let query = canonical::canonical_query(raw_query, presigned);
    let headers = canonical::canonical_headers(parts, &req.signed_headers);
    uris.into_iter().map(move |uri| {
        canonical::canonical_request(
            parts.method.as_str(),
            &uri,
            &query,
            &headers,
            &req.signed_headers,
            &payload,
        )
    })
}
