//! Conformance with the AWS S3 API reference for multipart uploads, copies, conditional
//! requests, listings and bucket operations: each case checks the status, the error code, and
//! the headers or body elements AWS documents, over the raw SigV4 client against a real node.

mod common;

use base64::Engine as _;
use md5::{Digest as _, Md5};

use common::{RawRequest, RawResponse, TestNode, xml_values};

const BUCKET: &str = "conform";
const MIB: usize = 1024 * 1024;

struct Fixture {
    node: TestNode,
    access_key: String,
    secret: String,
}

impl Fixture {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(tweak: impl FnOnce(&mut common::NodeConfig)) -> Self {
        let node = TestNode::start_with(tweak);
        let (access_key, secret) = node.create_credential("conformance");
        node.create_bucket(BUCKET);
        Self {
            node,
            access_key,
            secret,
        }
    }

    fn signed(&self, method: &str, path_and_query: &str) -> RawRequest {
        self.node
            .request(method, path_and_query)
            .creds(&self.access_key, &self.secret)
    }

    fn put(&self, key: &str, body: &[u8]) -> RawResponse {
        let response = self
            .signed("PUT", &format!("/{BUCKET}/{key}"))
            .body(body)
            .send();
        response.assert_ok(&format!("PUT {key}"));
        response
    }

    fn create_upload(&self, key: &str) -> String {
        let response = self
            .signed("POST", &format!("/{BUCKET}/{key}?uploads"))
            .send();
        response.assert_ok("CreateMultipartUpload");
        assert_eq!(response.xml_value("Key").as_deref(), Some(key));
        response.xml_value("UploadId").expect("an UploadId")
    }

    fn upload_part(&self, key: &str, upload: &str, number: u32, body: &[u8]) -> String {
        let response = self
            .signed(
                "PUT",
                &format!("/{BUCKET}/{key}?partNumber={number}&uploadId={upload}"),
            )
            .body(body)
            .send();
        response.assert_ok(&format!("UploadPart {number}"));
        response.header("etag").expect("a part ETag").to_owned()
    }

    fn complete(&self, key: &str, upload: &str, parts: &[(u32, &str)]) -> RawResponse {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (number, etag) in parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        self.signed("POST", &format!("/{BUCKET}/{key}?uploadId={upload}"))
            .body(xml.as_bytes())
            .send()
    }
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

#[test]
fn multipart_uploads_follow_the_reference() {
    let f = Fixture::new();
    let key = "mp/object.bin";
    let upload = f.create_upload(key);
    let part1 = vec![b'a'; 5 * MIB];
    let part2 = b"tail".to_vec();
    let etag1 = f.upload_part(key, &upload, 1, &part1);
    let etag2 = f.upload_part(key, &upload, 2, &part2);
    assert_eq!(etag1, format!("\"{}\"", md5_hex(&part1)));

    let listed = f.signed("GET", &format!("/{BUCKET}?uploads")).send();
    listed.assert_ok("ListMultipartUploads");
    assert_eq!(xml_values(&listed.text(), "UploadId"), vec![upload.clone()]);
    let parts = f
        .signed(
            "GET",
            &format!("/{BUCKET}/{key}?uploadId={upload}&max-parts=1"),
        )
        .send();
    parts.assert_ok("ListParts");
    assert_eq!(parts.xml_value("IsTruncated").as_deref(), Some("true"));
    assert_eq!(
        parts.xml_value("NextPartNumberMarker").as_deref(),
        Some("1")
    );
    assert_eq!(
        xml_values(&parts.text(), "Size"),
        vec![(5 * MIB).to_string()]
    );

    // Part numbers outside 1..=10000 and unknown uploads.
    f.signed(
        "PUT",
        &format!("/{BUCKET}/{key}?partNumber=0&uploadId={upload}"),
    )
    .body(b"x")
    .send()
    .assert_error(400, "InvalidArgument", "part number 0");
    f.signed(
        "PUT",
        &format!("/{BUCKET}/{key}?partNumber=10001&uploadId={upload}"),
    )
    .body(b"x")
    .send()
    .assert_error(400, "InvalidArgument", "part number 10001");
    f.signed(
        "PUT",
        &format!("/{BUCKET}/{key}?partNumber=1&uploadId=nope"),
    )
    .body(b"x")
    .send()
    .assert_error(404, "NoSuchUpload", "unknown upload");

    // Completions that must be refused, leaving the upload open.
    f.signed("POST", &format!("/{BUCKET}/{key}?uploadId={upload}"))
        .body(b"<CompleteMultipartUpload></CompleteMultipartUpload>")
        .send()
        .assert_error(400, "MalformedXML", "no parts");
    f.complete(key, &upload, &[(2, &etag2), (1, &etag1)])
        .assert_error(400, "InvalidPartOrder", "out of order");
    f.complete(key, &upload, &[(1, "\"0123\""), (2, &etag2)])
        .assert_error(400, "InvalidPart", "wrong ETag");
    f.complete(key, &upload, &[(1, &etag1), (3, &etag2)])
        .assert_error(400, "InvalidPart", "missing part");
    let small = f.upload_part(key, &upload, 3, b"small");
    f.complete(key, &upload, &[(3, &small), (2, &etag2)])
        .assert_error(400, "InvalidPartOrder", "order first");
    f.complete(key, &upload, &[(2, &etag2), (3, &small)])
        .assert_error(400, "EntityTooSmall", "small part");

    let done = f.complete(key, &upload, &[(1, &etag1), (2, &etag2)]);
    done.assert_ok("CompleteMultipartUpload");
    let mut md5s = Md5::new();
    md5s.update(Md5::digest(&part1));
    md5s.update(Md5::digest(&part2));
    let expected_etag = format!("\"{}-2\"", hex::encode(md5s.finalize()));
    assert_eq!(
        done.xml_value("ETag").as_deref(),
        Some(expected_etag.as_str())
    );

    let head = f.signed("HEAD", &format!("/{BUCKET}/{key}")).send();
    head.assert_ok("HEAD");
    assert_eq!(head.header("etag"), Some(expected_etag.as_str()));
    assert_eq!(
        head.header("content-length"),
        Some((5 * MIB + 4).to_string().as_str())
    );

    let second = f
        .signed("GET", &format!("/{BUCKET}/{key}?partNumber=2"))
        .send();
    assert_eq!(second.status, 206);
    assert_eq!(second.body, part2);
    assert_eq!(second.header("x-amz-mp-parts-count"), Some("2"));
    assert_eq!(
        second.header("content-range"),
        Some(format!("bytes {}-{}/{}", 5 * MIB, 5 * MIB + 3, 5 * MIB + 4).as_str())
    );
    f.signed("GET", &format!("/{BUCKET}/{key}?partNumber=3"))
        .send()
        .assert_error(416, "InvalidPartNumber", "past the last part");

    // A completed upload is gone.
    f.signed("GET", &format!("/{BUCKET}/{key}?uploadId={upload}"))
        .send()
        .assert_error(404, "NoSuchUpload", "completed");
}

#[test]
fn aborted_uploads_are_gone() {
    let f = Fixture::new();
    let upload = f.create_upload("aborted");
    f.upload_part("aborted", &upload, 1, b"data");
    let aborted = f
        .signed("DELETE", &format!("/{BUCKET}/aborted?uploadId={upload}"))
        .send();
    assert_eq!(aborted.status, 204, "{}", aborted.text());
    f.signed("GET", &format!("/{BUCKET}/aborted?uploadId={upload}"))
        .send()
        .assert_error(404, "NoSuchUpload", "aborted");
    f.signed("DELETE", &format!("/{BUCKET}/aborted?uploadId={upload}"))
        .send()
        .assert_error(404, "NoSuchUpload", "twice");
    f.signed("GET", &format!("/{BUCKET}/aborted"))
        .send()
        .assert_error(404, "NoSuchKey", "never created");
}

#[test]
fn copies_follow_the_reference() {
    let f = Fixture::new();
    f.put("src/a.txt", b"source body");
    let copied = f
        .signed("PUT", &format!("/{BUCKET}/dst/a%20copy.txt"))
        .header("x-amz-copy-source", &format!("/{BUCKET}/src/a.txt"))
        .send();
    copied.assert_ok("CopyObject");
    assert_eq!(
        copied.xml_value("ETag"),
        Some(format!("\"{}\"", md5_hex(b"source body")))
    );
    let got = f
        .signed("GET", &format!("/{BUCKET}/dst/a%20copy.txt"))
        .send();
    assert_eq!(got.body, b"source body");

    f.signed("PUT", &format!("/{BUCKET}/x"))
        .header("x-amz-copy-source", &format!("/{BUCKET}/missing"))
        .send()
        .assert_error(404, "NoSuchKey", "missing source");
    f.signed("PUT", &format!("/{BUCKET}/x"))
        .header("x-amz-copy-source", "/no-such-bucket/k")
        .send()
        .assert_error(404, "NoSuchBucket", "missing source bucket");
    f.signed("PUT", &format!("/{BUCKET}/src/a.txt"))
        .header("x-amz-copy-source", &format!("/{BUCKET}/src/a.txt"))
        .send()
        .assert_error(400, "InvalidRequest", "copy onto itself without REPLACE");
    let replaced = f
        .signed("PUT", &format!("/{BUCKET}/src/a.txt"))
        .header("x-amz-copy-source", &format!("/{BUCKET}/src/a.txt"))
        .header("x-amz-metadata-directive", "REPLACE")
        .header("content-type", "text/plain")
        .header("x-amz-meta-note", "replaced")
        .send();
    replaced.assert_ok("copy onto itself with REPLACE");
    let head = f.signed("HEAD", &format!("/{BUCKET}/src/a.txt")).send();
    assert_eq!(head.header("x-amz-meta-note"), Some("replaced"));
    assert_eq!(head.header("content-type"), Some("text/plain"));

    f.signed("PUT", &format!("/{BUCKET}/y"))
        .header("x-amz-copy-source", &format!("/{BUCKET}/src/a.txt"))
        .header("x-amz-copy-source-if-match", "\"0000\"")
        .send()
        .assert_error(412, "PreconditionFailed", "copy-source-if-match");
    f.signed("PUT", &format!("/{BUCKET}/y"))
        .header("x-amz-copy-source", &format!("/{BUCKET}/src/a.txt"))
        .header("x-amz-metadata-directive", "MERGE")
        .send()
        .assert_error(400, "InvalidArgument", "unknown directive");

    let upload = f.create_upload("ranged");
    f.signed(
        "PUT",
        &format!("/{BUCKET}/ranged?partNumber=1&uploadId={upload}"),
    )
    .header("x-amz-copy-source", &format!("/{BUCKET}/src/a.txt"))
    .header("x-amz-copy-source-range", "bytes=0-100")
    .send()
    .assert_error(416, "InvalidRange", "copy range past the end");
    let part = f
        .signed(
            "PUT",
            &format!("/{BUCKET}/ranged?partNumber=1&uploadId={upload}"),
        )
        .header("x-amz-copy-source", &format!("/{BUCKET}/src/a.txt"))
        .header("x-amz-copy-source-range", "bytes=0-5")
        .send();
    part.assert_ok("UploadPartCopy");
    let etag = part.xml_value("ETag").expect("a part ETag");
    f.complete("ranged", &upload, &[(1, &etag)])
        .assert_ok("complete a copied part");
    assert_eq!(
        f.signed("GET", &format!("/{BUCKET}/ranged")).send().body,
        b"source"
    );
}

#[test]
fn conditional_requests_follow_the_reference() {
    let f = Fixture::new();
    let etag = f
        .put("cond", b"v1")
        .header("etag")
        .expect("an ETag")
        .to_owned();
    let get = |name: &str, value: &str| {
        f.signed("GET", &format!("/{BUCKET}/cond"))
            .header(name, value)
            .send()
    };
    let not_modified = get("if-none-match", &etag);
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    get("if-match", "\"abc\"").assert_error(412, "PreconditionFailed", "If-Match");
    assert_eq!(
        get("if-modified-since", "Wed, 01 Jan 2200 00:00:00 GMT").status,
        304
    );
    get("if-unmodified-since", "Sat, 01 Jan 2000 00:00:00 GMT").assert_error(
        412,
        "PreconditionFailed",
        "If-Unmodified-Since",
    );
    assert_eq!(get("if-match", &etag).status, 200);

    f.signed("PUT", &format!("/{BUCKET}/cond"))
        .header("if-none-match", "*")
        .body(b"v2")
        .send()
        .assert_error(412, "PreconditionFailed", "If-None-Match: *");
    f.signed("PUT", &format!("/{BUCKET}/cond"))
        .header("if-match", "\"abc\"")
        .body(b"v2")
        .send()
        .assert_error(412, "PreconditionFailed", "If-Match on PUT");
    assert_eq!(
        f.signed("GET", &format!("/{BUCKET}/cond")).send().body,
        b"v1",
        "refused writes changed nothing"
    );
    f.signed("PUT", &format!("/{BUCKET}/cond"))
        .header("if-match", &etag)
        .body(b"v2")
        .send()
        .assert_ok("If-Match with the current ETag");
}

#[test]
fn racing_conditional_creators_have_exactly_one_winner() {
    let f = Fixture::new();
    let outcomes: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let request = f
                    .signed("PUT", &format!("/{BUCKET}/race"))
                    .header("if-none-match", "*")
                    .body(format!("writer {i}").as_bytes());
                scope.spawn(move || request.send().status)
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a writer thread"))
            .collect()
    });
    assert_eq!(
        outcomes.iter().filter(|s| **s == 200).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|s| **s == 412).count(),
        7,
        "{outcomes:?}"
    );
}

#[test]
fn listing_parameters_are_checked() {
    let f = Fixture::new();
    f.signed("GET", &format!("/{BUCKET}?list-type=2&max-keys=-1"))
        .send()
        .assert_error(400, "InvalidArgument", "negative max-keys");
    f.signed("GET", &format!("/{BUCKET}?list-type=2&max-keys=ten"))
        .send()
        .assert_error(400, "InvalidArgument", "non-numeric max-keys");
    f.signed(
        "GET",
        &format!("/{BUCKET}?list-type=2&continuation-token=bogus!"),
    )
    .send()
    .assert_error(400, "InvalidArgument", "bad continuation token");
    f.signed(
        "GET",
        &format!("/{BUCKET}?list-type=2&encoding-type=base64"),
    )
    .send()
    .assert_error(400, "InvalidArgument", "unknown encoding type");
    for key in ["a/1", "a/2", "b", "c d+e"] {
        f.put(&key.replace(' ', "%20").replace('+', "%2B"), b"x");
    }
    let zero = f
        .signed("GET", &format!("/{BUCKET}?list-type=2&max-keys=0"))
        .send();
    zero.assert_ok("max-keys=0");
    assert_eq!(zero.xml_value("KeyCount").as_deref(), Some("0"));
    let encoded = f
        .signed(
            "GET",
            &format!("/{BUCKET}?list-type=2&delimiter=/&encoding-type=url"),
        )
        .send();
    encoded.assert_ok("encoding-type=url");
    assert_eq!(
        xml_values(&encoded.text(), "Key"),
        vec!["b".to_owned(), "c%20d%2Be".to_owned()]
    );
    assert_eq!(
        xml_values(&encoded.text(), "Prefix"),
        vec![String::new(), "a/".to_owned()]
    );
    let v1 = f.signed("GET", &format!("/{BUCKET}?marker=a/1")).send();
    v1.assert_ok("ListObjects v1 with marker");
    assert_eq!(
        xml_values(&v1.text(), "Key"),
        vec!["a/2".to_owned(), "b".to_owned(), "c d+e".to_owned()]
    );
}

#[test]
fn bucket_operations_follow_the_reference() {
    let f = Fixture::new();
    f.signed("PUT", &format!("/{BUCKET}")).send().assert_error(
        409,
        "BucketAlreadyOwnedByYou",
        "existing bucket",
    );
    f.signed("PUT", "/Bad_Name")
        .send()
        .assert_error(400, "InvalidBucketName", "invalid name");
    f.put("keep", b"x");
    f.signed("DELETE", &format!("/{BUCKET}"))
        .send()
        .assert_error(409, "BucketNotEmpty", "non-empty bucket");
    f.signed("PATCH", &format!("/{BUCKET}/keep"))
        .send()
        .assert_error(405, "MethodNotAllowed", "PATCH");
    let location = f.signed("GET", &format!("/{BUCKET}?location")).send();
    location.assert_ok("GetBucketLocation");
    assert!(
        location.text().contains("<LocationConstraint"),
        "{}",
        location.text()
    );
    let head = f.signed("HEAD", &format!("/{BUCKET}")).send();
    assert_eq!(
        (head.status, head.header("x-amz-bucket-region")),
        (200, Some("us-east-1"))
    );
    let missing = f.signed("HEAD", "/no-such-bucket").send();
    assert_eq!(missing.status, 404);
    assert!(missing.body.is_empty(), "HEAD errors have no body");
}

#[test]
fn bodies_over_the_limit_are_refused_before_they_are_read() {
    let f = Fixture::with(|config| {
        config
            .gateway_extra
            .push(("max_body_size_mb".into(), "1".into()));
    });
    let body = vec![b'z'; MIB + 1];
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&body));
    f.signed("PUT", &format!("/{BUCKET}/big"))
        .header("content-md5", &md5)
        .body(&body)
        .send()
        .assert_error(400, "EntityTooLarge", "over max_body_size_mb");
    f.signed("GET", &format!("/{BUCKET}/big"))
        .send()
        .assert_error(404, "NoSuchKey", "nothing stored");
    f.put("fits", &vec![b'z'; MIB]);
}

#[test]
fn only_the_null_version_exists() {
    let f = Fixture::new();
    f.put("versioned", b"current");
    let null = f
        .signed("GET", &format!("/{BUCKET}/versioned?versionId=null"))
        .send();
    assert_eq!(null.body, b"current");
    f.signed(
        "GET",
        &format!("/{BUCKET}/versioned?versionId=3HL4kqtJlcpXroDTDmJ"),
    )
    .send()
    .assert_error(400, "InvalidArgument", "another version id");
    f.signed(
        "DELETE",
        &format!("/{BUCKET}/versioned?versionId=3HL4kqtJlcpXroDTDmJ"),
    )
    .send()
    .assert_error(400, "InvalidArgument", "deleting another version");
    assert_eq!(
        f.signed("GET", &format!("/{BUCKET}/versioned")).send().body,
        b"current"
    );
}

#[test]
fn features_the_gateway_lacks_are_refused_not_ignored() {
    let f = Fixture::new();
    for (name, value) in [
        ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
        ("x-amz-object-lock-mode", "COMPLIANCE"),
        ("x-amz-tagging", "a=b"),
        ("x-amz-server-side-encryption", "aws:kms"),
    ] {
        f.signed("PUT", &format!("/{BUCKET}/featured"))
            .header(name, value)
            .body(b"x")
            .send()
            .assert_error(501, "NotImplemented", name);
    }
    f.signed("GET", &format!("/{BUCKET}/featured"))
        .send()
        .assert_error(404, "NoSuchKey", "nothing stored");
    f.signed("PUT", &format!("/{BUCKET}/featured"))
        .header("x-amz-server-side-encryption", "AES256")
        .body(b"x")
        .send()
        .assert_ok("SSE with a node-managed key is what the node always does");
}
