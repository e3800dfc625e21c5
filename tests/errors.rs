//! Refused requests, sent with the raw SigV4 client against a real node: each gets the S3 status
//! and code AWS uses, with a request id in the body and the headers, and a refused write changes
//! nothing (the key stays absent or keeps its old content, and listings stay as they were).
//! The gateway must answer every one of them: no 500, no connection dropped without a status.

mod common;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

use common::{Payload, RawRequest, RawResponse, TestNode, xml_values};

/// The bucket every case writes into.
const BUCKET: &str = "errs";

/// A node with one credential and one bucket.
struct Fixture {
    node: TestNode,
    access_key: String,
    secret: String,
}

impl Fixture {
    fn new() -> Self {
        let node = TestNode::start();
        let (access_key, secret) = node.create_credential("errors");
        node.create_bucket(BUCKET);
        Self {
            node,
            access_key,
            secret,
        }
    }

    /// A request signed with the fixture's credential.
    fn signed(&self, method: &str, path_and_query: &str) -> RawRequest {
        self.node
            .request(method, path_and_query)
            .creds(&self.access_key, &self.secret)
    }

    fn object_path(key: &str) -> String {
        format!("/{BUCKET}/{key}")
    }

    fn put(&self, key: &str, body: &[u8]) {
        self.signed("PUT", &Self::object_path(key))
            .body(body)
            .send()
            .assert_ok(&format!("PUT {key}"));
    }

    fn get(&self, key: &str) -> RawResponse {
        self.signed("GET", &Self::object_path(key)).send()
    }

    /// Every key of the bucket, from ListObjectsV2.
    fn keys(&self) -> Vec<String> {
        let listing = self.signed("GET", &format!("/{BUCKET}?list-type=2")).send();
        listing.assert_ok("ListObjectsV2");
        assert_eq!(
            listing.xml_value("IsTruncated").as_deref(),
            Some("false"),
            "{}",
            listing.text()
        );
        xml_values(&listing.text(), "Key")
    }

    /// Asserts that `key` does not exist: GET says NoSuchKey and the listing lacks it.
    fn assert_absent(&self, key: &str, what: &str) {
        self.get(key)
            .assert_error(404, "NoSuchKey", &format!("{what}: GET {key} afterwards"));
        assert!(
            !self.keys().iter().any(|k| k == key),
            "{what}: {key} is listed"
        );
    }

    /// Every file under the data directory's `blobs/` (committed and temporary), sorted.
    fn blob_files(&self) -> Vec<String> {
        let root = self.node.data_dir().join("blobs");
        let mut files = Vec::new();
        let mut pending = vec![root.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("read a blob directory") {
                let path = entry.expect("read a blob directory entry").path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let name = path.strip_prefix(&root).expect("under blobs/");
                    files.push(name.display().to_string());
                }
            }
        }
        files.sort();
        files
    }

    /// Asserts that the blob store holds exactly the files it held before a refused write:
    /// nothing committed, no partial or temporary file left behind.
    fn assert_blobs_unchanged(&self, before: &[String], what: &str) {
        assert_eq!(self.blob_files(), before, "{what}: the blob files changed");
    }

    /// Sends a write that must be refused with `status` and `code`, then asserts that it
    /// changed nothing: the same keys are listed and the blob store holds the same files (no
    /// committed blob, no partial or temporary file left behind).
    fn assert_refused(&self, request: RawRequest, status: u16, code: &str, what: &str) {
        let keys = self.keys();
        let blobs = self.blob_files();
        request.send().assert_error(status, code, what);
        assert_eq!(self.keys(), keys, "{what}: the listing changed");
        self.assert_blobs_unchanged(&blobs, what);
    }

    /// Asserts that `key` holds `body`.
    fn assert_content(&self, key: &str, body: &[u8], what: &str) {
        let response = self.get(key);
        response.assert_ok(&format!("{what}: GET {key}"));
        assert_eq!(
            response.text(),
            String::from_utf8_lossy(body),
            "{what}: content of {key}"
        );
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn md5_base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

#[test]
fn signed_requests_from_the_raw_client_are_served() {
    let fx = Fixture::new();

    fx.put("plain.txt", b"signed payload");
    fx.assert_content("plain.txt", b"signed payload", "signed payload");

    fx.signed("PUT", "/errs/unsigned.txt")
        .payload(Payload::Unsigned)
        .body(b"unsigned payload")
        .send()
        .assert_ok("PUT with UNSIGNED-PAYLOAD");
    fx.assert_content("unsigned.txt", b"unsigned payload", "unsigned payload");

    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    fx.signed("PUT", "/errs/chunked.bin")
        .body(&data)
        .signed_chunks(64 * 1024)
        .send()
        .assert_ok("PUT with signed aws-chunked body");
    let back = fx.get("chunked.bin");
    back.assert_ok("GET chunked.bin");
    common::assert_same_bytes(&back.body, &data, "signed aws-chunked upload");

    let head = fx.signed("HEAD", "/errs/chunked.bin").send();
    head.assert_ok("HEAD chunked.bin");
    assert_eq!(head.header("content-length"), Some("200000"));
    assert!(head.body.is_empty(), "HEAD returned a body");

    assert_eq!(fx.keys(), ["chunked.bin", "plain.txt", "unsigned.txt"]);
    // Objects up to 32 KiB are sealed into the metadata row; only the large one has a file.
    let blobs = fx.blob_files();
    assert_eq!(blobs.len(), 1, "one blob file, for chunked.bin: {blobs:?}");
    let deleted = fx.signed("DELETE", "/errs/plain.txt").send();
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    fx.assert_absent("plain.txt", "after DELETE");
}

#[test]
fn malformed_create_bucket_xml_is_malformed_xml_and_creates_nothing() {
    let fx = Fixture::new();
    let bodies: [&[u8]; 4] = [
        b"<CreateBucketConfiguration><LocationConstraint>us-east-1",
        b"this is not xml",
        b"<Foo><LocationConstraint>x</LocationConstraint></Foo>",
        b"<CreateBucketConfiguration></Other>",
    ];
    for body in bodies {
        let what = format!("CreateBucket with body {:?}", String::from_utf8_lossy(body));
        fx.assert_refused(
            fx.signed("PUT", "/newbucket").body(body),
            400,
            "MalformedXML",
            &what,
        );
        let head = fx.signed("HEAD", "/newbucket").send();
        assert_eq!(head.status, 404, "{what}: the bucket exists afterwards");
    }
    let listing = fx.signed("GET", "/").send();
    listing.assert_ok("ListBuckets");
    assert_eq!(xml_values(&listing.text(), "Name"), [BUCKET]);
    let vaults = fx.node.vh_json(&["vault", "list"]);
    let names: Vec<&str> = vaults
        .as_array()
        .expect("vault list prints a list")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [BUCKET],
        "a refused CreateBucket left a vault: {vaults}"
    );

    // The same request with no body is a valid CreateBucket.
    fx.signed("PUT", "/newbucket")
        .send()
        .assert_ok("CreateBucket without a body");
    let listing = fx.signed("GET", "/").send();
    assert_eq!(xml_values(&listing.text(), "Name"), [BUCKET, "newbucket"]);
}

#[test]
fn range_past_the_end_is_invalid_range() {
    let fx = Fixture::new();
    fx.put("ten.txt", b"0123456789");

    for range in ["bytes=10-20", "bytes=100-", "bytes=10-"] {
        fx.signed("GET", "/errs/ten.txt")
            .header("range", range)
            .send()
            .assert_error(416, "InvalidRange", &format!("Range {range} on 10 bytes"));
    }

    let part = fx
        .signed("GET", "/errs/ten.txt")
        .header("range", "bytes=2-5")
        .send();
    assert_eq!(part.status, 206, "{}", part.text());
    assert_eq!(part.text(), "2345");
    assert_eq!(part.header("content-range"), Some("bytes 2-5/10"));
    fx.assert_content("ten.txt", b"0123456789", "after the refused ranges");
}

#[test]
fn user_metadata_over_2_kb_is_metadata_too_large_and_stores_nothing() {
    let fx = Fixture::new();
    let big = "v".repeat(2100);
    fx.assert_refused(
        fx.signed("PUT", "/errs/meta.txt")
            .header("x-amz-meta-big", &big)
            .body(b"body"),
        400,
        "MetadataTooLarge",
        "one 2100-byte metadata value",
    );
    fx.assert_absent("meta.txt", "one 2100-byte metadata value");

    let half = "h".repeat(1100);
    fx.assert_refused(
        fx.signed("PUT", "/errs/meta.txt")
            .header("x-amz-meta-one", &half)
            .header("x-amz-meta-two", &half)
            .body(b"body"),
        400,
        "MetadataTooLarge",
        "two 1100-byte metadata values",
    );
    fx.assert_absent("meta.txt", "two 1100-byte metadata values");

    fx.put("meta.txt", b"old");
    fx.assert_refused(
        fx.signed("PUT", "/errs/meta.txt")
            .header("x-amz-meta-big", &big)
            .body(b"new"),
        400,
        "MetadataTooLarge",
        "overwrite with 2100-byte metadata",
    );
    fx.assert_content("meta.txt", b"old", "overwrite with 2100-byte metadata");

    // The limit counts names (without `x-amz-meta-`) and values: 1 + 2047 bytes is allowed,
    // 1 + 2048 is not.
    fx.assert_refused(
        fx.signed("PUT", "/errs/edge.txt")
            .header("x-amz-meta-k", &"e".repeat(2048))
            .body(b"body"),
        400,
        "MetadataTooLarge",
        "2049 bytes of metadata",
    );
    fx.signed("PUT", "/errs/edge.txt")
        .header("x-amz-meta-k", &"e".repeat(2047))
        .body(b"body")
        .send()
        .assert_ok("exactly 2048 bytes of metadata");

    let small = "s".repeat(1000);
    fx.signed("PUT", "/errs/small-meta.txt")
        .header("x-amz-meta-small", &small)
        .body(b"body")
        .send()
        .assert_ok("1000 bytes of metadata");
    let head = fx.signed("HEAD", "/errs/small-meta.txt").send();
    assert_eq!(head.header("x-amz-meta-small"), Some(small.as_str()));
    assert_eq!(fx.keys(), ["edge.txt", "meta.txt", "small-meta.txt"]);
}

#[test]
fn unknown_bucket_is_no_such_bucket_with_a_request_id() {
    let fx = Fixture::new();
    let cases = [
        ("GET", "/nosuchbucket/key"),
        ("GET", "/nosuchbucket?list-type=2"),
        ("GET", "/nosuchbucket"),
        ("PUT", "/nosuchbucket/key"),
        ("DELETE", "/nosuchbucket"),
    ];
    for (method, path) in cases {
        let response = fx.signed(method, path).body(b"").send();
        response.assert_error(404, "NoSuchBucket", &format!("{method} {path}"));
        assert!(
            response.text().contains("<Code>NoSuchBucket</Code>"),
            "{}",
            response.text()
        );
        assert!(
            response.text().contains("<RequestId>"),
            "{}",
            response.text()
        );
    }
    let head = fx.signed("HEAD", "/nosuchbucket").send();
    assert_eq!(head.status, 404);
    assert!(head.header("x-amz-request-id").is_some());

    let listing = fx.signed("GET", "/").send();
    assert_eq!(xml_values(&listing.text(), "Name"), [BUCKET]);
}

#[test]
fn unknown_key_is_no_such_key() {
    let fx = Fixture::new();
    fx.put("present.txt", b"here");
    let response = fx.get("absent.txt");
    response.assert_error(404, "NoSuchKey", "GET absent.txt");
    assert_eq!(response.xml_value("Key").as_deref(), Some("absent.txt"));
    fx.get("present.txt/child")
        .assert_error(404, "NoSuchKey", "GET under a file");
    let head = fx.signed("HEAD", "/errs/absent.txt").send();
    assert_eq!(head.status, 404);
    assert!(head.body.is_empty());
}

#[test]
fn wrong_payload_sha256_is_a_mismatch_and_changes_nothing() {
    let fx = Fixture::new();
    let wrong = Payload::Claimed(sha256_hex(b"something else"));

    fx.assert_refused(
        fx.signed("PUT", "/errs/new.txt")
            .payload(wrong.clone())
            .body(b"the real body"),
        400,
        "XAmzContentSHA256Mismatch",
        "new key",
    );
    fx.assert_absent("new.txt", "new key with a wrong sha256");

    fx.put("old.txt", b"version one");
    fx.assert_refused(
        fx.signed("PUT", "/errs/old.txt")
            .payload(wrong)
            .body(b"version two"),
        400,
        "XAmzContentSHA256Mismatch",
        "overwrite",
    );
    fx.assert_content("old.txt", b"version one", "overwrite with a wrong sha256");

    let two_mib = common::random_bytes(2 << 20);
    fx.assert_refused(
        fx.signed("PUT", "/errs/old.txt")
            .payload(Payload::Claimed(sha256_hex(&two_mib[1..])))
            .body(&two_mib),
        400,
        "XAmzContentSHA256Mismatch",
        "2 MiB overwrite",
    );
    fx.assert_content(
        "old.txt",
        b"version one",
        "2 MiB overwrite with a wrong sha256",
    );
    assert_eq!(fx.keys(), ["old.txt"]);
}

#[test]
fn bad_content_md5_is_bad_digest_or_invalid_digest() {
    let fx = Fixture::new();
    let body = b"checked body";

    fx.assert_refused(
        fx.signed("PUT", "/errs/md5.txt")
            .header("content-md5", &md5_base64(b"another body"))
            .body(body),
        400,
        "BadDigest",
        "MD5 of other data",
    );
    fx.assert_absent("md5.txt", "MD5 of other data");

    fx.assert_refused(
        fx.signed("PUT", "/errs/md5.txt")
            .header("content-md5", "not base64 at all!")
            .body(body),
        400,
        "InvalidDigest",
        "non-base64 Content-MD5",
    );
    fx.assert_absent("md5.txt", "non-base64 Content-MD5");

    fx.assert_refused(
        fx.signed("PUT", "/errs/md5.txt")
            .header("content-md5", "AAAA")
            .body(body),
        400,
        "InvalidDigest",
        "base64 of 3 bytes as Content-MD5",
    );
    fx.assert_absent("md5.txt", "short Content-MD5");

    fx.put("md5.txt", b"original");
    fx.assert_refused(
        fx.signed("PUT", "/errs/md5.txt")
            .header("content-md5", &md5_base64(b"another body"))
            .body(body),
        400,
        "BadDigest",
        "overwrite with MD5 of other data",
    );
    fx.assert_content("md5.txt", b"original", "overwrite with a bad MD5");

    fx.signed("PUT", "/errs/md5.txt")
        .header("content-md5", &md5_base64(body))
        .body(body)
        .send()
        .assert_ok("PUT with the right Content-MD5");
    fx.assert_content("md5.txt", body, "the right Content-MD5");
}

#[test]
fn anonymous_requests_are_access_denied() {
    let fx = Fixture::new();
    fx.put("private.txt", b"private data");

    let anonymous =
        |method: &str, path: &str| fx.node.request(method, path).payload(Payload::Omitted);
    anonymous("GET", "/")
        .send()
        .assert_error(403, "AccessDenied", "anonymous ListBuckets");
    let read = anonymous("GET", "/errs/private.txt").send();
    read.assert_error(403, "AccessDenied", "anonymous GetObject");
    assert!(!read.text().contains("private data"));
    anonymous("GET", "/errs?list-type=2").send().assert_error(
        403,
        "AccessDenied",
        "anonymous ListObjectsV2",
    );
    fx.assert_refused(
        anonymous("PUT", "/errs/anon.txt").body(b"anonymous write"),
        403,
        "AccessDenied",
        "anonymous PutObject",
    );
    fx.assert_refused(
        anonymous("PUT", "/errs/private.txt").body(b"anonymous overwrite"),
        403,
        "AccessDenied",
        "anonymous overwrite",
    );
    fx.assert_refused(
        anonymous("DELETE", "/errs/private.txt"),
        403,
        "AccessDenied",
        "anonymous DeleteObject",
    );
    anonymous("PUT", "/anonbucket").send().assert_error(
        403,
        "AccessDenied",
        "anonymous CreateBucket",
    );

    fx.assert_absent("anon.txt", "anonymous PutObject");
    fx.assert_content(
        "private.txt",
        b"private data",
        "anonymous overwrite and delete",
    );
    let listing = fx.signed("GET", "/").send();
    assert_eq!(xml_values(&listing.text(), "Name"), [BUCKET]);
}

#[test]
fn unknown_access_key_and_wrong_secret_are_refused() {
    let fx = Fixture::new();
    fx.assert_refused(
        fx.node
            .request("PUT", "/errs/k.txt")
            .creds(&fx.access_key, "wrong-secret-wrong-secret-wrong-secret00")
            .body(b"x"),
        403,
        "SignatureDoesNotMatch",
        "wrong secret",
    );
    fx.assert_refused(
        fx.node
            .request("PUT", "/errs/k.txt")
            .creds("VHNOSUCHKEY0000000000000000", &fx.secret)
            .body(b"x"),
        403,
        "InvalidAccessKeyId",
        "unknown access key",
    );
    fx.assert_absent("k.txt", "refused credentials");
}

#[test]
fn malformed_authorization_header_is_refused() {
    let fx = Fixture::new();
    let date = common::amz_date(OffsetDateTime::now_utc());
    let day = &date[..8];
    let headers = [
        format!(
            "AWS4-HMAC-SHA256 Credential=garbage, SignedHeaders=host, Signature={}",
            "0".repeat(64)
        ),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{day}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date",
            fx.access_key
        ),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{day}/us-east-1/s3/aws4_request, Signature={}",
            fx.access_key,
            "0".repeat(64)
        ),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{day}/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature={}",
            fx.access_key,
            "0".repeat(64)
        ),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{day}/us-east-1/s3/aws4_request, SignedHeaders=host, Signature={}, Extra=1",
            fx.access_key,
            "0".repeat(64)
        ),
    ];
    for header in &headers {
        fx.assert_refused(
            fx.signed("PUT", "/errs/auth.txt")
                .authorization(header)
                .body(b"x"),
            400,
            "AuthorizationHeaderMalformed",
            header,
        );
    }
    fx.assert_absent("auth.txt", "malformed Authorization headers");
}

#[test]
fn request_dated_twenty_minutes_away_is_too_skewed() {
    let fx = Fixture::new();
    let past = OffsetDateTime::now_utc() - Duration::minutes(20);
    let future = OffsetDateTime::now_utc() + Duration::minutes(20);

    fx.signed("GET", "/").date(past).send().assert_error(
        403,
        "RequestTimeTooSkewed",
        "ListBuckets 20 min ago",
    );
    fx.assert_refused(
        fx.signed("PUT", "/errs/late.txt").date(past).body(b"late"),
        403,
        "RequestTimeTooSkewed",
        "PutObject 20 min ago",
    );
    fx.assert_refused(
        fx.signed("PUT", "/errs/late.txt")
            .date(future)
            .body(b"early"),
        403,
        "RequestTimeTooSkewed",
        "PutObject 20 min ahead",
    );
    fx.assert_absent("late.txt", "skewed PutObject");

    // Five minutes is within S3's 15-minute window.
    fx.signed("PUT", "/errs/late.txt")
        .date(OffsetDateTime::now_utc() - Duration::minutes(5))
        .body(b"on time")
        .send()
        .assert_ok("PutObject 5 min ago");
}

#[test]
fn keys_that_cannot_be_paths_are_invalid_argument() {
    let fx = Fixture::new();
    fx.put("dir/existing.txt", b"keep");
    let before = fx.keys();
    let long_segment = "s".repeat(256);
    let long_segment_key = format!("dir/{long_segment}");
    let keys = [
        "a//b",
        "a/../b",
        "./x",
        "../x",
        "dir/./y",
        "dir//z",
        "dir/..",
        "/leading",
        "nul%00byte",
        long_segment_key.as_str(),
    ];
    for key in keys {
        let path = Fixture::object_path(key);
        fx.assert_refused(
            fx.signed("PUT", &path).body(b"not a path"),
            400,
            "InvalidArgument",
            &format!("PUT {key}"),
        );
        assert_eq!(fx.keys(), before, "PUT {key} changed the listing");
        fx.signed("GET", &path)
            .send()
            .assert_error(404, "NoSuchKey", &format!("GET {key}"));
        let head = fx.signed("HEAD", &path).send();
        assert_eq!(head.status, 404, "HEAD {key}");
        let delete = fx.signed("DELETE", &path).send();
        assert_eq!(delete.status, 204, "DELETE {key}: {}", delete.text());
    }

    let too_long = format!("{}/end", vec!["k".repeat(200); 6].join("/"));
    fx.assert_refused(
        fx.signed("PUT", &Fixture::object_path(&too_long))
            .body(b"x"),
        400,
        "KeyTooLongError",
        "a 1205-byte key",
    );
    assert_eq!(
        fx.keys(),
        before,
        "PUT of a too long key changed the listing"
    );
    fx.assert_content("dir/existing.txt", b"keep", "after refused keys");
}

#[test]
fn a_key_cannot_be_both_a_file_and_a_directory() {
    let fx = Fixture::new();
    fx.put("a", b"a file");
    let response = fx
        .signed("PUT", "/errs/a/b")
        .body(b"needs a to be a directory")
        .send();
    response.assert_error(400, "InvalidArgument", "PUT a/b over file a");
    assert_eq!(fx.keys(), ["a"]);
    fx.assert_content("a", b"a file", "after PUT a/b");
    fx.get("a/b")
        .assert_error(404, "NoSuchKey", "GET a/b after the refused PUT");

    fx.put("d/x", b"inside d");
    fx.assert_refused(
        fx.signed("PUT", "/errs/d").body(b"needs d to be a file"),
        400,
        "InvalidArgument",
        "PUT d over directory d/",
    );
    assert_eq!(fx.keys(), ["a", "d/x"]);
    fx.assert_content("d/x", b"inside d", "after PUT d");
    fx.get("d")
        .assert_error(404, "NoSuchKey", "GET d after the refused PUT");
}

#[test]
fn directory_marker_with_content_is_refused() {
    let fx = Fixture::new();
    fx.assert_refused(
        fx.signed("PUT", "/errs/folder/").body(b"content"),
        400,
        "InvalidArgument",
        "PUT folder/ with a body",
    );
    assert!(fx.keys().is_empty(), "{:?}", fx.keys());

    fx.signed("PUT", "/errs/folder/")
        .send()
        .assert_ok("PUT folder/ without a body");
    let listing = fx.signed("GET", "/errs?list-type=2").send();
    assert_eq!(xml_values(&listing.text(), "Key"), ["folder/"]);
    assert_eq!(xml_values(&listing.text(), "Size"), ["0"]);
}

#[test]
fn any_range_on_an_empty_object_is_invalid_range() {
    let fx = Fixture::new();
    fx.put("empty", b"");
    for range in ["bytes=0-0", "bytes=0-", "bytes=-1"] {
        fx.signed("GET", "/errs/empty")
            .header("range", range)
            .send()
            .assert_error(
                416,
                "InvalidRange",
                &format!("Range {range} on an empty object"),
            );
    }
    let whole = fx.get("empty");
    assert_eq!(whole.status, 200);
    assert!(whole.body.is_empty());
}

#[test]
fn unsupported_subresource_is_not_implemented() {
    let fx = Fixture::new();
    fx.put("k.txt", b"original");
    let cases = [
        ("PUT", "/errs?acl"),
        ("PUT", "/errs/k.txt?acl"),
        ("PUT", "/errs/new.txt?acl"),
        ("PUT", "/errs/k.txt?tagging"),
        ("PUT", "/errs?lifecycle"),
        ("DELETE", "/errs?policy"),
        ("GET", "/errs?analytics"),
        ("GET", "/errs/k.txt?torrent"),
    ];
    for (method, path) in cases {
        fx.assert_refused(
            fx.signed(method, path)
                .body(if method == "PUT" { b"<x/>" } else { b"" }),
            501,
            "NotImplemented",
            &format!("{method} {path}"),
        );
    }
    fx.assert_content("k.txt", b"original", "after ?acl and ?tagging writes");
    fx.assert_absent("new.txt", "PUT ?acl on a new key");
    let head = fx.signed("HEAD", "/errs").send();
    assert_eq!(head.status, 200, "the bucket is gone after DELETE ?policy");
    let acl = fx.signed("GET", "/errs/k.txt?acl").send();
    assert_ne!(acl.status, 500, "GET ?acl: {}", acl.text());
    assert!(
        !acl.text().contains("original"),
        "GET ?acl served the object"
    );
}

#[test]
fn body_shorter_than_content_length_stores_nothing() {
    let fx = Fixture::new();
    fx.assert_refused(
        fx.signed("PUT", "/errs/short.txt")
            .payload(Payload::Unsigned)
            .body(b"ten bytes!")
            .declared_length(100),
        400,
        "IncompleteBody",
        "10 of 100 bytes, unsigned payload",
    );
    fx.assert_absent("short.txt", "short body");

    fx.put("short.txt", b"complete old body");
    fx.assert_refused(
        fx.signed("PUT", "/errs/short.txt")
            .body(b"ten bytes!")
            .declared_length(100),
        400,
        "IncompleteBody",
        "10 of 100 bytes over an object",
    );
    fx.assert_content("short.txt", b"complete old body", "short overwrite");

    fx.assert_refused(
        fx.signed("PUT", "/errs/empty.txt")
            .payload(Payload::Unsigned)
            .declared_length(1 << 20),
        400,
        "IncompleteBody",
        "0 of 1 MiB",
    );
    fx.assert_absent("empty.txt", "no body at all");

    // Megabytes reach the sealing task, and a temporary blob, before the body ends early.
    let three_mib = common::random_bytes(3 << 20);
    fx.assert_refused(
        fx.signed("PUT", "/errs/big.bin")
            .payload(Payload::Unsigned)
            .body(&three_mib)
            .declared_length(5 << 20),
        400,
        "IncompleteBody",
        "3 of 5 MiB",
    );
    fx.assert_absent("big.bin", "3 of 5 MiB");
    assert_eq!(fx.keys(), ["short.txt"]);
}

#[test]
fn truncated_aws_chunked_body_stores_nothing() {
    let fx = Fixture::new();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let chunk = 32 * 1024;
    let header_len = chunk_frame_len(chunk) - chunk - 2;
    let cuts = [
        ("inside the first chunk header", 10),
        ("inside the first chunk's data", header_len + 1000),
        ("right after the first chunk", chunk_frame_len(chunk)),
        (
            "inside the last data chunk",
            3 * chunk_frame_len(chunk) + 500,
        ),
    ];
    for (what, cut) in cuts {
        fx.assert_refused(
            fx.signed("PUT", "/errs/chunked.bin")
                .body(&data)
                .signed_chunks(chunk)
                .truncate_wire_body(cut),
            400,
            "IncompleteBody",
            &format!("aws-chunked body cut {what}"),
        );
        fx.assert_absent("chunked.bin", what);
    }

    // Everything but the final zero-length chunk.
    let full = fx
        .signed("PUT", "/errs/probe.bin")
        .body(&data)
        .signed_chunks(chunk);
    fx.assert_refused(
        full.clone()
            .truncate_wire_body(encoded_len(data.len(), chunk) - chunk_frame_len(0)),
        400,
        "IncompleteBody",
        "aws-chunked body without its final chunk",
    );
    fx.assert_absent("probe.bin", "no final chunk");

    full.send().assert_ok("the same aws-chunked body, whole");
    let back = fx.get("probe.bin");
    common::assert_same_bytes(&back.body, &data, "whole aws-chunked body");
    assert_eq!(fx.keys(), ["probe.bin"]);
}

/// The length of one signed chunk of `size` bytes on the wire: hex size,
/// `;chunk-signature=`, 64 hex digits, CRLF, data, CRLF.
fn chunk_frame_len(size: usize) -> usize {
    format!("{size:x}").len() + 17 + 64 + 2 + size + 2
}

/// The length of `data_len` bytes sent as signed `aws-chunked` in chunks of `chunk` bytes.
fn encoded_len(data_len: usize, chunk: usize) -> usize {
    let rest = data_len % chunk;
    let last = if rest > 0 { chunk_frame_len(rest) } else { 0 };
    data_len / chunk * chunk_frame_len(chunk) + last + chunk_frame_len(0)
}

#[test]
fn failed_write_preconditions_change_nothing() {
    let fx = Fixture::new();
    fx.put("cond.txt", b"first");
    let etag = fx
        .get("cond.txt")
        .header("etag")
        .expect("GET returns an ETag")
        .to_owned();

    fx.assert_refused(
        fx.signed("PUT", "/errs/cond.txt")
            .header("if-none-match", "*")
            .body(b"second"),
        412,
        "PreconditionFailed",
        "If-None-Match: * over an object",
    );
    fx.assert_refused(
        fx.signed("PUT", "/errs/cond.txt")
            .header("if-match", "\"0123456789abcdef0123456789abcdef\"")
            .body(b"second"),
        412,
        "PreconditionFailed",
        "If-Match with another ETag",
    );
    fx.assert_content("cond.txt", b"first", "failed preconditions");

    fx.signed("PUT", "/errs/cond.txt")
        .header("if-match", &etag)
        .body(b"second")
        .send()
        .assert_ok("If-Match with the current ETag");
    fx.assert_content("cond.txt", b"second", "If-Match with the current ETag");
    fx.signed("PUT", "/errs/fresh.txt")
        .header("if-none-match", "*")
        .body(b"fresh")
        .send()
        .assert_ok("If-None-Match: * on a new key");
    assert_eq!(fx.keys(), ["cond.txt", "fresh.txt"]);
}

#[test]
fn failed_read_preconditions_are_412_or_304() {
    let fx = Fixture::new();
    fx.put("read.txt", b"conditional read");
    let etag = fx
        .get("read.txt")
        .header("etag")
        .expect("GET returns an ETag")
        .to_owned();

    fx.signed("GET", "/errs/read.txt")
        .header("if-match", "\"ffffffffffffffffffffffffffffffff\"")
        .send()
        .assert_error(412, "PreconditionFailed", "GET If-Match with another ETag");
    let not_modified = fx
        .signed("GET", "/errs/read.txt")
        .header("if-none-match", &etag)
        .send();
    assert_eq!(not_modified.status, 304, "{}", not_modified.text());
    assert!(not_modified.body.is_empty(), "304 with a body");
    let served = fx
        .signed("GET", "/errs/read.txt")
        .header("if-match", &etag)
        .send();
    served.assert_ok("GET If-Match with the current ETag");
    assert_eq!(served.text(), "conditional read");
}

#[test]
fn content_sha256_header_must_be_present_and_well_formed() {
    let fx = Fixture::new();
    fx.assert_refused(
        fx.signed("PUT", "/errs/sha.txt")
            .payload(Payload::Claimed("not-a-digest".to_owned()))
            .body(b"x"),
        400,
        "InvalidArgument",
        "x-amz-content-sha256: not-a-digest",
    );
    fx.assert_refused(
        fx.signed("PUT", "/errs/sha.txt")
            .payload(Payload::Omitted)
            .body(b"x"),
        400,
        "InvalidRequest",
        "no x-amz-content-sha256",
    );
    fx.assert_absent("sha.txt", "bad x-amz-content-sha256 headers");
}
