//! Extraction of the claimed signature from the `Authorization` header or the presigned query.
//!
//! Nothing here needs the secret; every check is structural. Parsing is total: any input string
//! yields a value or an [`AuthError`], never a panic.

use http::HeaderValue;
use http::header::{AUTHORIZATION, DATE};
use http::request::Parts;
use percent_encoding::percent_decode_str;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::{
    ALGORITHM, AuthError, AuthKind, CredentialScope, MAX_PRESIGNED_EXPIRES_SECS, PayloadHash,
    SCOPE_TERMINATOR, SERVICE, SignedRequest,
};

const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";

const MISSING_QUERY_PARAMS: &str = "Query-string authentication version 4 requires the \
    X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and \
    X-Amz-Expires parameters.";

/// Extracts the SigV4 claims of a request.
///
/// Returns `Ok(None)` for an anonymous request (no `Authorization` header and no presigned
/// query parameters).
///
/// # Errors
///
/// An [`AuthError`] naming the first structural problem: unsupported scheme, malformed header
/// or query parameters, credential scope not for `s3`, missing or invalid date, missing or
/// invalid `x-amz-content-sha256`, or both auth mechanisms at once.
pub fn parse(parts: &Parts) -> Result<Option<SignedRequest>, AuthError> {
    let query = QueryParams::parse(parts.uri.query().unwrap_or(""));
    let header = parts.headers.get(AUTHORIZATION);
    let presigned = query.get("X-Amz-Algorithm").is_some();

    match (header, presigned) {
        (Some(_), true) => Err(AuthError::MultipleAuthMechanisms),
        (Some(value), false) => parse_header_auth(value, parts).map(Some),
        (None, true) => parse_presigned(&query, parts).map(Some),
        // A SigV2 presigned URL: refuse it rather than serving it anonymously.
        (None, false)
            if query.get("Signature").is_some() && query.get("AWSAccessKeyId").is_some() =>
        {
            Err(AuthError::UnsupportedAlgorithm)
        }
        (None, false) => Ok(None),
    }
}

/// The raw `x-amz-content-sha256` value a signature covers, as the client sent it: the header
/// for header auth; for presigned URLs the `X-Amz-Content-Sha256` query parameter, else the
/// header, else `UNSIGNED-PAYLOAD`.
pub(super) fn signed_payload_hash(parts: &Parts, kind: AuthKind) -> Option<String> {
    if let AuthKind::Presigned { .. } = kind {
        let query = QueryParams::parse(parts.uri.query().unwrap_or(""));
        let from_query = query.get("X-Amz-Content-Sha256").map(str::to_owned);
        let from_header = || header_str(parts, X_AMZ_CONTENT_SHA256).map(str::to_owned);
        return Some(
            from_query
                .or_else(from_header)
                .unwrap_or_else(|| "UNSIGNED-PAYLOAD".into()),
        );
    }
    header_str(parts, X_AMZ_CONTENT_SHA256).map(str::to_owned)
}

/// Parses an ISO 8601 basic timestamp, exactly `YYYYMMDD'T'HHMMSS'Z'`.
pub(super) fn parse_amz_date(value: &str) -> Option<OffsetDateTime> {
    let bytes = value.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }

    let number = |from: usize, to: usize| -> Option<u16> {
        let digits = value.get(from..to)?;
        digits.bytes().try_fold(0_u16, |acc, digit| {
            digit
                .is_ascii_digit()
                .then(|| acc * 10 + u16::from(digit - b'0'))
        })
    };
    let two = |from: usize| number(from, from + 2).and_then(|n| u8::try_from(n).ok());

    let month = Month::try_from(two(4)?).ok()?;
    let date = Date::from_calendar_date(i32::from(number(0, 4)?), month, two(6)?).ok()?;
    let time = Time::from_hms(two(9)?, two(11)?, two(13)?).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Formats a timestamp as SigV4 does (`20130524T000000Z`), in UTC.
pub(super) fn format_amz_date(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn parse_header_auth(value: &HeaderValue, parts: &Parts) -> Result<SignedRequest, AuthError> {
    let malformed = AuthError::AuthorizationHeaderMalformed;
    let value = value
        .to_str()
        .map_err(|_| malformed("it contains invalid characters"))?;
    let fields = AuthorizationFields::parse(value)?;

    let (access_key, scope) = parse_credential(fields.credential)
        .map_err(|problem| malformed(problem.header_message()))?;
    let signed_headers = parse_signed_headers(fields.signed_headers).map_err(malformed)?;
    let amz_date = header_date(parts)?;
    if !scope_matches_date(&scope, amz_date) {
        return Err(malformed(
            "the credential date is not the same as the request date",
        ));
    }

    let content_sha256 = match parts.headers.get(X_AMZ_CONTENT_SHA256) {
        None => return Err(AuthError::MissingContentSha256),
        Some(value) => value
            .to_str()
            .map_err(|_| AuthError::InvalidContentSha256)?,
    };
    let payload = PayloadHash::parse(content_sha256)?;

    Ok(SignedRequest {
        access_key,
        scope,
        amz_date,
        signed_headers,
        signature: fields.signature.to_ascii_lowercase(),
        kind: AuthKind::Header,
        payload,
        security_token: header_str(parts, X_AMZ_SECURITY_TOKEN).map(str::to_owned),
    })
}

fn parse_presigned(query: &QueryParams, parts: &Parts) -> Result<SignedRequest, AuthError> {
    let error = AuthError::AuthorizationQueryParametersError;
    let required = |name: &str| query.get(name).ok_or(error(MISSING_QUERY_PARAMS));
    let algorithm = required("X-Amz-Algorithm")?;
    let credential = required("X-Amz-Credential")?;
    let date = required("X-Amz-Date")?;
    let expires = required("X-Amz-Expires")?;
    let signed_headers = required("X-Amz-SignedHeaders")?;
    let signature = required("X-Amz-Signature")?;

    if algorithm != ALGORITHM {
        return Err(error("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\""));
    }
    let (access_key, scope) =
        parse_credential(credential).map_err(|problem| error(problem.query_message()))?;
    let amz_date = parse_amz_date(date).ok_or(error(
        "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
    ))?;
    if !scope_matches_date(&scope, amz_date) {
        return Err(error(
            "Invalid credential date. Date is not the same as X-Amz-Date.",
        ));
    }
    let expires_secs = parse_expires(expires)?;
    let signed_headers = parse_signed_headers(signed_headers).map_err(error)?;

    let kind = AuthKind::Presigned { expires_secs };
    let payload_value = signed_payload_hash(parts, kind).unwrap_or_default();
    let payload = PayloadHash::parse(&payload_value)?;

    Ok(SignedRequest {
        access_key,
        scope,
        amz_date,
        signed_headers,
        signature: signature.to_ascii_lowercase(),
        kind,
        payload,
        security_token: query.get("X-Amz-Security-Token").map(str::to_owned),
    })
}

/// The three fields of an `Authorization: AWS4-HMAC-SHA256 ...` header.
struct AuthorizationFields<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

impl<'a> AuthorizationFields<'a> {
    /// Parses the header, tolerating the separators clients use: `,` or `, ` or spaces between
    /// fields, any field order, and any letter case in the field names.
    fn parse(value: &'a str) -> Result<Self, AuthError> {
        let malformed = AuthError::AuthorizationHeaderMalformed;
        let value = value.trim();
        let (algorithm, rest) = value
            .split_once(|c: char| c.is_ascii_whitespace() || c == ',')
            .unwrap_or((value, ""));
        if algorithm != ALGORITHM {
            return Err(AuthError::UnsupportedAlgorithm);
        }

        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for field in rest
            .split([',', ' ', '\t'])
            .filter(|field| !field.is_empty())
        {
            let Some((name, field_value)) = field.split_once('=') else {
                return Err(malformed(
                    "expected Credential, SignedHeaders and Signature fields",
                ));
            };
            let slot = if name.eq_ignore_ascii_case("Credential") {
                &mut credential
            } else if name.eq_ignore_ascii_case("SignedHeaders") {
                &mut signed_headers
            } else if name.eq_ignore_ascii_case("Signature") {
                &mut signature
            } else {
                return Err(malformed("it contains an unknown field"));
            };
            if slot.replace(field_value).is_some() {
                return Err(malformed("it repeats a field"));
            }
        }

        Ok(Self {
            credential: credential.ok_or(malformed("missing Credential"))?,
            signed_headers: signed_headers.ok_or(malformed("missing SignedHeaders"))?,
            signature: signature
                .filter(|signature| !signature.is_empty())
                .ok_or(malformed("missing Signature"))?,
        })
    }
}

/// What is wrong with a credential string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CredentialProblem {
    Shape,
    Date,
    Service,
    Terminator,
}

impl CredentialProblem {
    fn header_message(self) -> &'static str {
        match self {
            Self::Shape => {
                "the Credential is mal-formed; expecting \
                 \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\""
            }
            Self::Date => "incorrect date format in the Credential; expecting YYYYMMDD",
            Self::Service => "incorrect service in the Credential; this endpoint belongs to s3",
            Self::Terminator => "incorrect terminal in the Credential; expecting aws4_request",
        }
    }

    fn query_message(self) -> &'static str {
        match self {
            Self::Shape => {
                "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; \
                 expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"."
            }
            Self::Date => {
                "Error parsing the X-Amz-Credential parameter; incorrect date format; expecting \
                 YYYYMMDD."
            }
            Self::Service => {
                "Error parsing the X-Amz-Credential parameter; incorrect service. This endpoint \
                 belongs to s3."
            }
            Self::Terminator => {
                "Error parsing the X-Amz-Credential parameter; incorrect terminal. This endpoint \
                 uses aws4_request."
            }
        }
    }
}

/// Splits `AKID/YYYYMMDD/region/service/aws4_request` from the right, so that only the access
/// key may contain further slashes.
fn parse_credential(value: &str) -> Result<(String, CredentialScope), CredentialProblem> {
    let mut pieces = value.trim().rsplitn(5, '/');
    let mut next = || pieces.next().filter(|piece| !piece.is_empty());
    let (Some(terminator), Some(service), Some(region), Some(date), Some(access_key)) =
        (next(), next(), next(), next(), next())
    else {
        return Err(CredentialProblem::Shape);
    };

    if terminator != SCOPE_TERMINATOR {
        return Err(CredentialProblem::Terminator);
    }
    if service != SERVICE {
        return Err(CredentialProblem::Service);
    }
    if parse_amz_date(&format!("{date}T000000Z")).is_none() {
        return Err(CredentialProblem::Date);
    }

    let scope = CredentialScope {
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
    };
    Ok((access_key.to_owned(), scope))
}

/// Parses `host;range;x-amz-date` into lower-case names; `host` must be among them.
fn parse_signed_headers(value: &str) -> Result<Vec<String>, &'static str> {
    let names: Vec<String> = value
        .split(';')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    if names.iter().any(String::is_empty) {
        return Err("SignedHeaders must be a non-empty list of header names");
    }
    if !names.iter().any(|name| name == "host") {
        return Err("the host header must be signed");
    }
    Ok(names)
}

fn parse_expires(value: &str) -> Result<u32, AuthError> {
    let error = AuthError::AuthorizationQueryParametersError;
    let Ok(secs) = value.trim().parse::<i64>() else {
        return Err(error("X-Amz-Expires should be a number"));
    };
    if secs < 0 {
        return Err(error("X-Amz-Expires must be non-negative"));
    }
    if secs == 0 {
        return Err(error("X-Amz-Expires must be at least one second"));
    }
    match u32::try_from(secs) {
        Ok(secs) if secs <= MAX_PRESIGNED_EXPIRES_SECS => Ok(secs),
        _ => Err(error(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        )),
    }
}

/// The request date of a header-signed request: `x-amz-date`, else the HTTP `Date` header.
fn header_date(parts: &Parts) -> Result<OffsetDateTime, AuthError> {
    if let Some(value) = parts.headers.get(X_AMZ_DATE) {
        let value = value.to_str().map_err(|_| AuthError::InvalidDate)?;
        return parse_amz_date(value.trim()).ok_or(AuthError::InvalidDate);
    }

    let value = header_str(parts, DATE.as_str()).ok_or(AuthError::InvalidDate)?;
    let at = httpdate::parse_http_date(value).map_err(|_| AuthError::InvalidDate)?;
    Ok(OffsetDateTime::from(at))
}

fn scope_matches_date(scope: &CredentialScope, amz_date: OffsetDateTime) -> bool {
    format_amz_date(amz_date).get(..8) == Some(scope.date.as_str())
}

fn header_str<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

/// Query parameters, percent-decoded, in the order sent.
struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn parse(raw: &str) -> Self {
        let decode = |text: &str| percent_decode_str(text).decode_utf8_lossy().into_owned();
        let pairs = raw
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .map(|(name, value)| (decode(name), decode(value)))
            .collect();
        Self(pairs)
    }

    /// The first value of `name` (exact case, as S3 matches `X-Amz-*` parameters).
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_parse_strictly() {
        let at = parse_amz_date("20130524T000000Z").unwrap();
        assert_eq!(at, time::macros::datetime!(2013-05-24 0:00 UTC));
        assert_eq!(format_amz_date(at), "20130524T000000Z");
        for bad in [
            "",
            "20130524T000000",
            "20130524T240000Z",
            "20130230T000000Z",
            "2013052AT000000Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
        assert_eq!(parse_amz_date("20130524T00000\u{e9}"), None);
    }

    #[test]
    fn credentials_split_from_the_right() {
        let (key, scope) = parse_credential("AK/I/D/20130524/eu-west-1/s3/aws4_request").unwrap();
        assert_eq!(key, "AK/I/D");
        assert_eq!(scope.region, "eu-west-1");
        assert_eq!(scope.to_string(), "20130524/eu-west-1/s3/aws4_request");

        let problem = |value| parse_credential(value).unwrap_err();
        assert_eq!(
            problem("AK/20130524/us-east-1/s3"),
            CredentialProblem::Shape
        );
        assert_eq!(
            problem("/20130524/us-east-1/s3/aws4_request"),
            CredentialProblem::Shape
        );
        assert_eq!(
            problem("AK/2013052/us-east-1/s3/aws4_request"),
            CredentialProblem::Date
        );
        assert_eq!(
            problem("AK/20130524/us-east-1/ec2/aws4_request"),
            CredentialProblem::Service
        );
        assert_eq!(
            problem("AK/20130524/us-east-1/s3/aws5_request"),
            CredentialProblem::Terminator
        );
    }

    #[test]
    fn authorization_separators_are_tolerated() {
        for header in [
            "AWS4-HMAC-SHA256 Credential=A/B,SignedHeaders=host,Signature=ab",
            "AWS4-HMAC-SHA256 Credential=A/B, SignedHeaders=host, Signature=ab",
            "AWS4-HMAC-SHA256  Signature=ab ,SignedHeaders=host  Credential=A/B,",
            "AWS4-HMAC-SHA256,credential=A/B,signedheaders=host,signature=ab",
        ] {
            let fields = AuthorizationFields::parse(header).unwrap();
            assert_eq!(
                (fields.credential, fields.signed_headers, fields.signature),
                ("A/B", "host", "ab")
            );
        }
    }

    #[test]
    fn expires_bounds() {
        assert_eq!(parse_expires("1"), Ok(1));
        assert_eq!(parse_expires("604800"), Ok(604_800));
        for bad in ["0", "-5", "604801", "abc", "", "99999999999999999999"] {
            assert!(matches!(
                parse_expires(bad),
                Err(AuthError::AuthorizationQueryParametersError(_))
            ));
        }
    }
}
