//! Extraction of the claimed SigV2 signature from the `Authorization` header or the presigned
//! query, and detection of requests that mix it with another auth mechanism.
//!
//! Nothing here needs the secret; every check is structural. Parsing is total: any input yields
//! a value or a [`SigV2Error`], never a panic.

use http::header::{AUTHORIZATION, DATE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue};
use percent_encoding::percent_decode_str;
use time::format_description::well_known::Rfc2822;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::{SCHEME, SigV2Error, V2Kind, V2Request};

const X_AMZ_DATE: &str = "x-amz-date";

/// The presigned-URL parameters, matched case-sensitively as S3 does.
const ACCESS_KEY_PARAM: &str = "AWSAccessKeyId";
const SIGNATURE_PARAM: &str = "Signature";
const EXPIRES_PARAM: &str = "Expires";
/// The parameter that marks a SigV4 presigned URL.
const V4_ALGORITHM_PARAM: &str = "X-Amz-Algorithm";

/// Extracts the SigV2 claims of a request.
///
/// Returns `Ok(None)` when the request carries no SigV2 signature: no `Authorization: AWS ...`
/// header and none of `AWSAccessKeyId`, `Signature` and `Expires` in the query. It is then
/// anonymous or signed with SigV4, which [`crate::sigv4::parse`] handles.
///
/// # Errors
///
/// [`SigV2Error::MultipleAuthMechanisms`] when SigV2 comes with an `Authorization` header of
/// another scheme, with SigV4 query parameters, or twice (header and query);
/// [`SigV2Error::AuthorizationHeaderSpacing`] or [`SigV2Error::MalformedAuthorization`] for a
/// header that is not `AWS <key>:<signature>`; [`SigV2Error::InvalidDate`] for a header-signed
/// request without a valid date; [`SigV2Error::MissingQueryParameters`] or
/// [`SigV2Error::InvalidExpires`] for an incomplete presigned URL.
pub fn parse(parts: &Parts) -> Result<Option<V2Request>, SigV2Error> {
    let query = QueryAuth::parse(parts.uri.query().unwrap_or(""));
    let header = parts.headers.get(AUTHORIZATION);
    let v2_header = header.filter(|value| is_v2_scheme(value));

    match (header, v2_header, query.has_v2(), query.has_v4) {
        (Some(_), Some(_), true, _) | (Some(_), Some(_), _, true) => {
            Err(SigV2Error::MultipleAuthMechanisms)
        }
        (Some(_), Some(value), false, false) => parse_header_auth(value, &parts.headers).map(Some),
        (Some(_), None, true, _) | (None, _, true, true) => Err(SigV2Error::MultipleAuthMechanisms),
        (None, _, true, false) => parse_presigned(&query).map(Some),
        (Some(_), None, false, _) | (None, _, false, _) => Ok(None),
    }
}

/// Parses an HTTP date as SigV2 clients write it: RFC 1123 with `GMT` or a numeric zone
/// (`+0000`, which s3cmd and the S3 examples use), RFC 850, asctime, or ISO 8601 basic.
pub(super) fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    let value = value.trim();
    if let Ok(at) = OffsetDateTime::parse(value, &Rfc2822) {
        return Some(at);
    }
    if let Ok(at) = httpdate::parse_http_date(value) {
        return Some(OffsetDateTime::from(at));
    }
    let iso_basic = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(value, iso_basic)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// The `Expires` query parameter as sent (percent-decoded), which a presigned URL signs in
/// place of the date.
pub(super) fn expires_param(raw_query: &str) -> Option<String> {
    QueryAuth::parse(raw_query).expires
}

/// Whether an `Authorization` value uses the SigV2 scheme: `AWS` alone or followed by a space.
fn is_v2_scheme(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    let scheme = bytes.split(|b| *b == b' ').next().unwrap_or(bytes);
    scheme == SCHEME.as_bytes()
}

fn parse_header_auth(value: &HeaderValue, headers: &HeaderMap) -> Result<V2Request, SigV2Error> {
    let value = value
        .to_str()
        .map_err(|_| SigV2Error::MalformedAuthorization)?;
    let mut pieces = value.split(' ');
    let (Some(_scheme), Some(credential), None) = (pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(SigV2Error::AuthorizationHeaderSpacing);
    };

    let mut fields = credential.split(':');
    let (Some(access_key), Some(signature), None) = (fields.next(), fields.next(), fields.next())
    else {
        return Err(SigV2Error::MalformedAuthorization);
    };
    if access_key.is_empty() || signature.is_empty() {
        return Err(SigV2Error::MalformedAuthorization);
    }

    Ok(V2Request {
        access_key: access_key.to_owned(),
        signature: signature.to_owned(),
        kind: V2Kind::Header {
            date: header_date(headers)?,
        },
        virtual_host_bucket: None,
    })
}

fn parse_presigned(query: &QueryAuth) -> Result<V2Request, SigV2Error> {
    let (Some(access_key), Some(signature), Some(expires)) =
        (&query.access_key, &query.signature, &query.expires)
    else {
        return Err(SigV2Error::MissingQueryParameters);
    };
    let expires = expires
        .trim()
        .parse::<i64>()
        .map_err(|_| SigV2Error::invalid_expires(expires))?;

    Ok(V2Request {
        access_key: access_key.clone(),
        signature: signature.clone(),
        kind: V2Kind::Presigned { expires },
        virtual_host_bucket: None,
    })
}

/// The request date of a header-signed request: `x-amz-date` when present (then `Date` is
/// ignored, as S3 does), else `Date`.
fn header_date(headers: &HeaderMap) -> Result<OffsetDateTime, SigV2Error> {
    let value = headers
        .get(X_AMZ_DATE)
        .or_else(|| headers.get(DATE))
        .ok_or(SigV2Error::InvalidDate)?;
    let value = value.to_str().map_err(|_| SigV2Error::InvalidDate)?;
    parse_http_date(value).ok_or(SigV2Error::InvalidDate)
}

/// The auth-related query parameters: the SigV2 trio, percent-decoded (a `+` stays a `+`, as it
/// can only be part of a base64 signature), and whether SigV4's marker is present.
struct QueryAuth {
    access_key: Option<String>,
    signature: Option<String>,
    expires: Option<String>,
    has_v4: bool,
}

impl QueryAuth {
    fn parse(raw: &str) -> Self {
        let mut auth = Self {
            access_key: None,
            signature: None,
            expires: None,
            has_v4: false,
        };
        for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode_str(name).decode_utf8_lossy();
            let slot = match name.as_ref() {
                ACCESS_KEY_PARAM => &mut auth.access_key,
                SIGNATURE_PARAM => &mut auth.signature,
                EXPIRES_PARAM => &mut auth.expires,
                V4_ALGORITHM_PARAM => {
                    auth.has_v4 = true;
                    continue;
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(percent_decode_str(value).decode_utf8_lossy().into_owned());
            }
        }
        auth
    }

    /// Whether any SigV2 parameter is present; S3 then requires all three.
    fn has_v2(&self) -> bool {
        self.access_key.is_some() || self.signature.is_some() || self.expires.is_some()
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn dates_parse_in_every_form_clients_send() {
        let at = datetime!(2007-03-27 19:36:42 UTC);
        for value in [
            "Tue, 27 Mar 2007 19:36:42 GMT",
            "Tue, 27 Mar 2007 19:36:42 +0000",
            " Tue, 27 Mar 2007 21:36:42 +0200 ",
            "Tuesday, 27-Mar-07 19:36:42 GMT",
            "Tue Mar 27 19:36:42 2007",
            "20070327T193642Z",
        ] {
            assert_eq!(parse_http_date(value), Some(at), "{value}");
        }
        for bad in [
            "",
            "yesterday",
            "Tue, 32 Mar 2007 19:36:42 GMT",
            "20070327T253642Z",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_the_aws_scheme_is_sigv2() {
        let scheme = |value: &str| is_v2_scheme(&HeaderValue::from_str(value).unwrap());
        assert!(scheme("AWS AK:sig"));
        assert!(scheme("AWS"));
        assert!(scheme("AWS  AK:sig"));
        assert!(!scheme("AWS4-HMAC-SHA256 Credential=x"));
        assert!(!scheme("aws AK:sig"));
        assert!(!scheme("AWSAK:sig"));
        assert!(!scheme("Bearer x"));
    }

    #[test]
    fn query_parameters_are_decoded_and_case_sensitive() {
        let auth = QueryAuth::parse("AWSAccessKeyId=A%2FK&Signature=a%2Bb+c%3D&Expires=5&x=1");
        assert_eq!(auth.access_key.as_deref(), Some("A/K"));
        assert_eq!(auth.signature.as_deref(), Some("a+b+c="));
        assert_eq!(auth.expires.as_deref(), Some("5"));
        assert!(!auth.has_v4);
        let auth = QueryAuth::parse("awsaccesskeyid=A&signature=s&expires=1&X-Amz-Algorithm=x");
        assert!(!auth.has_v2());
        assert!(auth.has_v4);
    }
}
