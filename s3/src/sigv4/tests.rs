//! End-to-end checks of [`parse`] and [`verify`]: AWS's published SigV4 examples for S3
//! (access key `AKIAIOSFODNN7EXAMPLE`, 2013-05-24, `us-east-1`), tampering, clocks, malformed
//! input and the path and query forms different clients sign.

use http::request::Parts;
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::datetime;

use super::canonical::{self, PathForm};
use super::*;

const SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const NOW: OffsetDateTime = datetime!(2013-05-24 0:00 UTC);
const CREDENTIAL: &str = "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request";

fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn authorization(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={CREDENTIAL},SignedHeaders={signed_headers},Signature={signature}"
    )
}

fn check_at(parts: &Parts, now: OffsetDateTime) -> Result<StreamingContext, AuthError> {
    let req = parse(parts)?.expect("the request is signed");
    verify(&req, parts, SECRET, now)
}

fn check(parts: &Parts) -> Result<StreamingContext, AuthError> {
    check_at(parts, NOW)
}

fn scope() -> CredentialScope {
    CredentialScope {
        date: "20130524".into(),
        region: "us-east-1".into(),
        service: "s3".into(),
    }
}

/// Signs `parts` as a client would, rendering the path in the given form.
fn sign(parts: &mut Parts, signed_headers: &str, path_form: PathForm) {
    let names: Vec<String> = signed_headers.split(';').map(String::from).collect();
    let payload = parts.headers["x-amz-content-sha256"]
        .to_str()
        .unwrap()
        .to_owned();
    let canonical_request = canonical::canonical_request(
        parts.method.as_str(),
        &canonical::canonical_uri(parts.uri.path(), path_form),
        &canonical::canonical_query(parts.uri.query().unwrap_or(""), false),
        &canonical::canonical_headers(parts, &names),
        &names,
        &payload,
    );
    let signature =
        StreamingContext::new(SECRET, &scope(), NOW, "").sign_canonical_request(&canonical_request);
    let value = authorization(signed_headers, &signature).parse().unwrap();
    parts.headers.insert(http::header::AUTHORIZATION, value);
}

fn get_object(range: &str) -> Parts {
    let auth = authorization(
        "host;range;x-amz-content-sha256;x-amz-date",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
    request(
        "GET",
        "/test.txt",
        &[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", range),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
            ("authorization", &auth),
        ],
    )
}

const PRESIGNED: &str = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
    &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
    &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
    &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

fn presigned(extra: &[(&str, &str)]) -> Parts {
    let mut headers = vec![("host", "examplebucket.s3.amazonaws.com")];
    headers.extend_from_slice(extra);
    request("GET", PRESIGNED, &headers)
}

#[test]
fn aws_example_get_object_with_range() {
    let parts = get_object("bytes=0-9");
    let req = parse(&parts).unwrap().unwrap();
    assert_eq!(req.access_key, "AKIAIOSFODNN7EXAMPLE");
    assert_eq!(req.scope, scope());
    assert_eq!(req.amz_date, NOW);
    assert_eq!(req.kind, AuthKind::Header);
    assert_eq!(req.payload, PayloadHash::Sha256(EMPTY_SHA256.into()));

    let context = verify(&req, &parts, SECRET, NOW).unwrap();
    assert_eq!(
        context.seed_signature(),
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
    assert_eq!(context.scope(), "20130524/us-east-1/s3/aws4_request");
    assert_eq!(context.amz_date(), "20130524T000000Z");
}

#[test]
fn aws_example_put_object_whatever_the_client_escaped() {
    let body_sha256 = hex::encode(Sha256::digest(b"Welcome to Amazon S3."));
    assert_eq!(
        body_sha256,
        "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
    );
    let auth = authorization(
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    );
    for path in ["/test$file.text", "/test%24file.text"] {
        let parts = request(
            "PUT",
            path,
            &[
                ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("host", "examplebucket.s3.amazonaws.com"),
                ("x-amz-content-sha256", &body_sha256),
                ("x-amz-date", "20130524T000000Z"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                ("authorization", &auth),
            ],
        );
        check(&parts).unwrap();
    }
}

#[test]
fn aws_example_get_bucket_lifecycle_and_list_objects() {
    let cases = [
        (
            "/?lifecycle",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
        (
            "/?max-keys=2&prefix=J",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ];
    for (uri, signature) in cases {
        let auth = authorization("host;x-amz-content-sha256;x-amz-date", signature);
        let parts = request(
            "GET",
            uri,
            &[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", "20130524T000000Z"),
                ("authorization", &auth),
            ],
        );
        check(&parts).unwrap();
    }
}

#[test]
fn aws_example_presigned_url() {
    let parts = presigned(&[]);
    let req = parse(&parts).unwrap().unwrap();
    assert_eq!(
        req.kind,
        AuthKind::Presigned {
            expires_secs: 86_400
        }
    );
    assert_eq!(req.payload, PayloadHash::Unsigned);
    assert_eq!(req.signed_headers, ["host"]);

    check(&parts).unwrap();
    check_at(&parts, NOW + time::Duration::seconds(86_400)).unwrap();
    assert_eq!(
        check_at(&parts, NOW + time::Duration::seconds(86_401)).unwrap_err(),
        AuthError::RequestExpired
    );
    assert_eq!(
        check_at(&parts, NOW - time::Duration::minutes(16)).unwrap_err(),
        AuthError::RequestNotYetValid
    );
}

#[test]
fn presigned_url_refuses_tampering_and_unsigned_amz_headers() {
    let tampered = request(
        "GET",
        &format!("{PRESIGNED}&versionId=1"),
        &[("host", "examplebucket.s3.amazonaws.com")],
    );
    assert_eq!(
        check(&tampered).unwrap_err(),
        AuthError::SignatureDoesNotMatch
    );
    let other_key = request(
        "GET",
        &PRESIGNED.replace("test.txt", "other.txt"),
        &[("host", "examplebucket.s3.amazonaws.com")],
    );
    assert_eq!(
        check(&other_key).unwrap_err(),
        AuthError::SignatureDoesNotMatch
    );
    let extra_header = presigned(&[("x-amz-acl", "public-read")]);
    assert_eq!(
        check(&extra_header).unwrap_err(),
        AuthError::HeadersNotSigned
    );
}

#[test]
fn aws_example_streaming_seed_and_chunk_signatures() {
    let auth = authorization(
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    );
    let parts = request(
        "PUT",
        "/examplebucket/chunkObject.txt",
        &[
            ("content-encoding", "aws-chunked"),
            ("content-length", "66824"),
            ("host", "s3.amazonaws.com"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-decoded-content-length", "66560"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("authorization", &auth),
        ],
    );
    assert_eq!(
        parse(&parts).unwrap().unwrap().payload,
        PayloadHash::StreamingSigned
    );
    let context = check(&parts).unwrap();

    let chunk1: [u8; 32] = Sha256::digest([b'a'; 65_536]).into();
    let chunk2: [u8; 32] = Sha256::digest([b'a'; 1024]).into();
    let last: [u8; 32] = Sha256::digest([]).into();
    let sig1 = context.chunk_signature(context.seed_signature(), &chunk1);
    assert_eq!(
        sig1,
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    );
    let sig2 = context.chunk_signature(&sig1, &chunk2);
    assert_eq!(
        sig2,
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
    );
    let sig3 = context.chunk_signature(&sig2, &last);
    assert_eq!(
        sig3,
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
    );
}

#[test]
fn aws_example_streaming_trailer_seed_and_trailer_signature() {
    let auth = authorization(
        "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer",
        "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
    );
    let parts = request(
        "PUT",
        "/examplebucket/chunkObject.txt",
        &[
            ("content-encoding", "aws-chunked"),
            ("host", "s3.amazonaws.com"),
            (
                "x-amz-content-sha256",
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
            ),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-decoded-content-length", "66560"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-trailer", "x-amz-checksum-crc32c"),
            ("authorization", &auth),
        ],
    );
    assert_eq!(
        parse(&parts).unwrap().unwrap().payload,
        PayloadHash::StreamingSignedTrailer
    );
    let context = check(&parts).unwrap();

    let trailers: [u8; 32] = Sha256::digest(b"x-amz-checksum-crc32c:sOO8/Q==\n").into();
    let previous = "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992";
    assert_eq!(
        context.trailer_signature(previous, &trailers),
        "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
    );
}

#[test]
fn wrong_secret_or_tampered_header_does_not_match() {
    let parts = get_object("bytes=0-9");
    let req = parse(&parts).unwrap().unwrap();
    let wrong = verify(
        &req,
        &parts,
        b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ",
        NOW,
    );
    assert_eq!(wrong.unwrap_err(), AuthError::SignatureDoesNotMatch);
    assert_eq!(
        check(&get_object("bytes=0-10")).unwrap_err(),
        AuthError::SignatureDoesNotMatch
    );

    let mut other_method = get_object("bytes=0-9");
    other_method.method = http::Method::HEAD;
    assert_eq!(
        check(&other_method).unwrap_err(),
        AuthError::SignatureDoesNotMatch
    );
}

#[test]
fn clock_skew_beyond_fifteen_minutes_is_refused() {
    let parts = get_object("bytes=0-9");
    check_at(&parts, NOW + time::Duration::minutes(15)).unwrap();
    check_at(&parts, NOW - time::Duration::minutes(15)).unwrap();
    for skew in [
        time::Duration::minutes(16),
        time::Duration::minutes(-16),
        time::Duration::days(3),
    ] {
        assert_eq!(
            check_at(&parts, NOW + skew).unwrap_err(),
            AuthError::RequestTimeTooSkewed
        );
    }
}

#[test]
fn date_header_is_used_without_x_amz_date() {
    let mut parts = request(
        "GET",
        "/photos/a.jpg",
        &[
            ("host", "bucket.example"),
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-content-sha256", EMPTY_SHA256),
        ],
    );
    sign(
        &mut parts,
        "date;host;x-amz-content-sha256",
        PathForm::Normalized,
    );
    assert_eq!(parse(&parts).unwrap().unwrap().amz_date, NOW);
    check(&parts).unwrap();
}

fn unsigned_get(uri: &str) -> Parts {
    request(
        "GET",
        uri,
        &[
            ("host", "127.0.0.1:9000"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-amz-date", "20130524T000000Z"),
        ],
    )
}

const SIGNED: &str = "host;x-amz-content-sha256;x-amz-date";

#[test]
fn every_client_rendering_of_path_and_query_verifies() {
    let cases = [
        (
            "/bucket/my%20key+plus?prefix=a%20b&marker=a%2Bb",
            PathForm::Normalized,
        ),
        ("/bucket/my%20key+plus", PathForm::AsSent),
        ("/bucket/caf%c3%a9", PathForm::AsSent),
        ("/bucket/caf%C3%A9/x$y", PathForm::Normalized),
        ("/bucket/key?prefix=a+b", PathForm::Normalized),
        ("/bucket//a/./b/../c", PathForm::Normalized),
    ];
    for (uri, path_form) in cases {
        let mut parts = unsigned_get(uri);
        sign(&mut parts, SIGNED, path_form);
        check(&parts).unwrap_or_else(|error| panic!("{uri}: {error}"));
    }
}

#[test]
fn a_plus_in_the_query_means_a_space_for_the_signature_too() {
    let mut form_encoded = unsigned_get("/bucket/?prefix=a%20b");
    sign(&mut form_encoded, SIGNED, PathForm::Normalized);
    form_encoded.uri = "/bucket/?prefix=a+b".parse().unwrap();
    check(&form_encoded).unwrap();

    let mut literal_plus = unsigned_get("/bucket/?prefix=a%2Bb");
    sign(&mut literal_plus, SIGNED, PathForm::Normalized);
    literal_plus.uri = "/bucket/?prefix=a+b".parse().unwrap();
    assert_eq!(
        check(&literal_plus).unwrap_err(),
        AuthError::SignatureDoesNotMatch
    );
}

#[test]
fn anonymous_requests_parse_to_none() {
    assert!(
        parse(&request("GET", "/bucket/key?list-type=2", &[("host", "h")]))
            .unwrap()
            .is_none()
    );
}

#[test]
fn malformed_requests_get_the_s3_error() {
    let with = |auth: &str, date: &str, sha: Option<&str>| {
        let mut headers = vec![("host", "h"), ("x-amz-date", date), ("authorization", auth)];
        headers.extend(sha.map(|sha| ("x-amz-content-sha256", sha)));
        parse(&request("GET", "/b/k", &headers)).unwrap_err()
    };
    let good = authorization("host;x-amz-date", "ab");
    let day = "20130524T000000Z";
    let malformed = |error: AuthError| matches!(error, AuthError::AuthorizationHeaderMalformed(_));

    assert!(malformed(with(
        "AWS4-HMAC-SHA256 SignedHeaders=host,Signature=ab",
        day,
        Some(EMPTY_SHA256)
    )));
    assert!(malformed(with(
        "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,Signature=ab",
        day,
        Some(EMPTY_SHA256)
    )));
    assert!(malformed(with(
        &good.replace("/s3/", "/ec2/"),
        day,
        Some(EMPTY_SHA256)
    )));
    assert!(malformed(with(
        &good.replace("SignedHeaders=host;", "SignedHeaders="),
        day,
        Some(EMPTY_SHA256)
    )));
    assert!(malformed(with(
        &good,
        "20130525T000000Z",
        Some(EMPTY_SHA256)
    )));
    assert!(malformed(with(
        "AWS4-HMAC-SHA256 Credential",
        day,
        Some(EMPTY_SHA256)
    )));
    assert_eq!(
        with(&good, "2013-05-24", Some(EMPTY_SHA256)),
        AuthError::InvalidDate
    );
    assert_eq!(with(&good, day, None), AuthError::MissingContentSha256);
    assert_eq!(
        with(&good, day, Some("abc")),
        AuthError::InvalidContentSha256
    );
    assert_eq!(
        with(&good.replace("SHA256", "SHA512"), day, None),
        AuthError::UnsupportedAlgorithm
    );
    assert_eq!(
        with(
            "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
            day,
            None
        ),
        AuthError::UnsupportedAlgorithm
    );

    let both = request(
        "GET",
        PRESIGNED,
        &[("host", "h"), ("authorization", good.as_str())],
    );
    assert_eq!(parse(&both).unwrap_err(), AuthError::MultipleAuthMechanisms);
    let v2 = request(
        "GET",
        "/k?AWSAccessKeyId=AK&Expires=1&Signature=x",
        &[("host", "h")],
    );
    assert_eq!(parse(&v2).unwrap_err(), AuthError::UnsupportedAlgorithm);
    let no_expiry = request(
        "GET",
        &PRESIGNED.replace("&X-Amz-Expires=86400", ""),
        &[("host", "h")],
    );
    assert!(matches!(
        parse(&no_expiry),
        Err(AuthError::AuthorizationQueryParametersError(_))
    ));
    let week = request(
        "GET",
        &PRESIGNED.replace("=86400", "=604801"),
        &[("host", "h")],
    );
    assert!(matches!(
        parse(&week),
        Err(AuthError::AuthorizationQueryParametersError(_))
    ));
}

#[test]
fn debug_output_hides_signature_and_token() {
    let parts = request(
        "GET",
        &format!("{PRESIGNED}&X-Amz-Security-Token=tok3n"),
        &[("host", "h")],
    );
    let req = parse(&parts).unwrap().unwrap();
    assert_eq!(req.security_token.as_deref(), Some("tok3n"));
    let shown = format!(
        "{req:?} {:?}",
        StreamingContext::new(SECRET, &req.scope, NOW, &req.signature)
    );
    assert!(!shown.contains("aeeed9bb"), "{shown}");
    assert!(!shown.contains("tok3n"), "{shown}");
}

proptest! {
    #[test]
    fn arbitrary_authorization_headers_never_panic(
        prefixed in any::<bool>(),
        value in proptest::collection::vec(any::<u8>(), 0..200),
        date in ".{0,20}",
    ) {
        let mut bytes = if prefixed { b"AWS4-HMAC-SHA256 ".to_vec() } else { Vec::new() };
        bytes.extend(value);
        let mut builder = http::Request::builder().uri("/b/k").header("host", "h");
        if let Ok(value) = http::HeaderValue::from_bytes(&bytes) {
            builder = builder.header("authorization", value);
        }
        if let Ok(date) = http::HeaderValue::from_str(&date) {
            builder = builder.header("x-amz-date", date);
        }
        let (parts, ()) = builder.body(()).unwrap().into_parts();
        if let Ok(Some(req)) = parse(&parts) {
            let _ = verify(&req, &parts, SECRET, NOW);
        }
    }

    #[test]
    fn arbitrary_structured_authorization_never_panics(
        credential in "[A-Za-z0-9/_-]{0,60}",
        signed in "[a-z;-]{0,40}",
        signature in "[0-9a-fA-F]{0,70}",
    ) {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed}, \
             Signature={signature}"
        );
        let parts = request("PUT", "/b/k", &[
            ("host", "h"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("authorization", &auth),
        ]);
        if let Ok(Some(req)) = parse(&parts) {
            prop_assert!(verify(&req, &parts, SECRET, NOW).is_err());
        }
    }

    #[test]
    fn arbitrary_presigned_queries_never_panic(query in "[ -~]{0,200}") {
        let query = format!("X-Amz-Algorithm=AWS4-HMAC-SHA256&{query}");
        let encoded = canonical::uri_encode(query.as_bytes());
        let encoded = encoded.replace("%3D", "=").replace("%26", "&");
        let parts = request("GET", &format!("/b/k?{encoded}"), &[("host", "h")]);
        if let Ok(Some(req)) = parse(&parts) {
            let _ = verify(&req, &parts, SECRET, NOW);
        }
    }

    #[test]
    fn keys_signed_by_an_sdk_verify(segments in proptest::collection::vec("\\PC{0,12}", 1..4)) {
        let path: Vec<String> =
            segments.iter().map(|segment| canonical::uri_encode(segment.as_bytes())).collect();
        let mut parts = request("GET", &format!("/bucket/{}", path.join("/")), &[
            ("host", "h"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-amz-date", "20130524T000000Z"),
        ]);
        sign(&mut parts, SIGNED, PathForm::Normalized);
        prop_assert!(check(&parts).is_ok());
    }
}
