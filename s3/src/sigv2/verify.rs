//! Signature computation and comparison, and the clock checks of SigV2.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use http::request::Parts;
use sha1::Sha1;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use super::canonical;
use super::{SigV2Error, V2Kind, V2Request};
use crate::sigv4::MAX_CLOCK_SKEW_SECS;

/// Verifies the signature of a parsed SigV2 request against `secret`, at server time `now`.
///
/// Rebuilds the string to sign from `parts` (which must be the parts `req` was parsed from, and
/// `req.virtual_host_bucket` must name the bucket of a virtual-hosted request), checks the
/// clock, and compares signatures in constant time. The variants of the string to sign that
/// clients produce for the same request are each tried (see [`canonical`]).
///
/// # Errors
///
/// [`SigV2Error::RequestTimeTooSkewed`] for a header-signed request dated more than 15 minutes
/// from `now`; [`SigV2Error::RequestExpired`] for a presigned URL used after its `Expires`;
/// [`SigV2Error::SignatureDoesNotMatch`] otherwise.
pub fn verify(
    req: &V2Request,
    parts: &Parts,
    secret: &[u8],
    now: OffsetDateTime,
) -> Result<(), SigV2Error> {
    check_clock(req.kind, now)?;

    let provided = req.signature.as_bytes();
    let matches = canonical::strings_to_sign(req, parts)
        .iter()
        .any(|string_to_sign| bool::from(sign(secret, string_to_sign).as_bytes().ct_eq(provided)));
    if !matches {
        return Err(SigV2Error::SignatureDoesNotMatch);
    }
    Ok(())
}

/// `Base64(HMAC-SHA1(secret, string_to_sign))`.
pub(super) fn sign(secret: &[u8], string_to_sign: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign);
    BASE64.encode(mac.finalize().into_bytes())
}

fn check_clock(kind: V2Kind, now: OffsetDateTime) -> Result<(), SigV2Error> {
    match kind {
        V2Kind::Header { date } if (now - date).abs() > Duration::seconds(MAX_CLOCK_SKEW_SECS) => {
            Err(SigV2Error::RequestTimeTooSkewed)
        }
        V2Kind::Header { .. } => Ok(()),
        V2Kind::Presigned { expires } if now.unix_timestamp() > expires => {
            Err(SigV2Error::RequestExpired {
                expires,
                server_time: now.unix_timestamp(),
            })
        }
        V2Kind::Presigned { .. } => Ok(()),
    }
}
