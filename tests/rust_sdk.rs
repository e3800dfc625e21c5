//! The client scenario with the AWS SDK for Rust (`aws-sdk-s3`) at its default checksum
//! settings, path style, over plain HTTP, plus the signed streaming upload the SDK cannot be
//! made to send.
//!
//! Over `http://` the SDK sends a body it streams (a file) as `aws-chunked` with signed chunks
//! and a signed trailing CRC32 (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`), and an in-memory
//! body with its CRC32 in a header; an interceptor records what went on the wire so the test
//! knows which of the two it exercised. Plain `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (signed
//! chunks, no trailer), which the AWS CLI v1 and older SDKs send, is never chosen by this SDK, so
//! that upload is built with the harness's raw client, along with one whose chunk signature is
//! wrong.

mod common;
#[path = "clients/support.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_s3::error::{BoxError, ProvideErrorMetadata};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumMode, CompletedMultipartUpload, CompletedPart, Delete, MetadataDirective,
    ObjectIdentifier,
};
use tokio::task::JoinSet;

use common::{Payload, REGION, TestNode, random_bytes, signed_chunks_with_bad_signature};
use support::{
    BIG_KEY, BIG_RANGES, BIG_SIZE, COPY_KEY, Checks, EMPTY_KEY, META_BODY, META_CONTENT_TYPE,
    META_KEY, META_PAIRS, SMALL_BODY, SMALL_KEY, TREE_LISTED_DIR, TREE_PREFIX, listed_dir_keys,
    node_with_credential, sha256_hex, tree_dirs, tree_keys,
};

const BUCKET: &str = "matrix-rust-sdk";
/// The part size of the manual multipart upload: 100 MiB is 13 parts.
const PART_SIZE: usize = 8 << 20;
/// A file the SDK streams from disk, so it goes `aws-chunked` (several 64 KiB chunks).
const STREAMED_KEY: &str = "small/streamed.bin";
const STREAMED_SIZE: usize = (3 << 20) + 123;

#[test]
fn rust_sdk_runs_the_client_scenario() {
    let (node, access_key, secret) = node_with_credential("rust-sdk");
    let wire = Wire::default();
    let client = client(&node, &access_key, &secret, &wire);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("start a tokio runtime");
    let mut checks = Checks::new("aws-sdk-s3");
    runtime.block_on(scenario(&client, &node, &wire, &mut checks));
    checks.finish();
}

#[test]
fn signed_streaming_upload_round_trips_and_a_bad_chunk_signature_stores_nothing() {
    let (node, access_key, secret) = node_with_credential("streaming");
    node.create_bucket(BUCKET);
    let creds = (access_key.as_str(), secret.as_str());
    let get = |key: &str| {
        node.request("GET", &format!("/{BUCKET}/{key}"))
            .creds(creds.0, creds.1)
            .send()
    };

    // 1 MiB and a bit in 64 KiB chunks, and 100 KiB in 8 KiB chunks (the smallest S3 allows).
    for (key, size, chunk) in [
        ("stream/one.bin", (1 << 20) + 3, 64 << 10),
        ("stream/two.bin", 100 << 10, 8 << 10),
    ] {
        let data = random_bytes(size);
        node.request("PUT", &format!("/{BUCKET}/{key}"))
            .creds(creds.0, creds.1)
            .signed_chunks(chunk)
            .body(&data)
            .send()
            .assert_ok(&format!("signed streaming PUT of {key}"));
        let back = get(key);
        back.assert_ok(&format!("GET {key}"));
        common::assert_same_bytes(&back.body, &data, &format!("{key} read back"));
        assert_eq!(
            back.header("etag"),
            Some(format!("\"{}\"", md5_hex(&data)).as_str()),
            "{key}: the ETag is the MD5 of the decoded content"
        );
    }

    // The second of 17 chunks has a wrong signature: refused, and nothing is stored, neither
    // under a new key nor over an existing one.
    let data = random_bytes(16 * (64 << 10) + 5);
    for key in ["stream/refused.bin", "stream/one.bin"] {
        let before = get(key);
        let response = signed_chunks_with_bad_signature(
            node.port(),
            &format!("/{BUCKET}/{key}"),
            &data,
            64 << 10,
            creds,
            1,
        )
        .send();
        response.assert_error(
            403,
            "SignatureDoesNotMatch",
            &format!("bad chunk signature on {key}"),
        );
        let after = get(key);
        assert_eq!(
            (after.status, after.code()),
            (before.status, before.code()),
            "{key} changed after a refused upload"
        );
        if before.status == 200 {
            common::assert_same_bytes(
                &after.body,
                &before.body,
                &format!("{key} after a refused upload"),
            );
        }
    }
    let listing = node
        .request("GET", &format!("/{BUCKET}?list-type=2&prefix=stream/"))
        .creds(creds.0, creds.1)
        .send();
    listing.assert_ok("list after the refused uploads");
    assert_eq!(
        common::xml_values(&listing.text(), "Key"),
        ["stream/one.bin", "stream/two.bin"],
        "{}",
        listing.text()
    );
}

fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(data))
}

/// One request as it went on the wire: its method and URI, and its payload-related headers.
type SentRequest = (String, Vec<(String, String)>);

/// Every request the SDK sent, in order.
#[derive(Clone, Debug, Default)]
struct Wire(Arc<Mutex<Vec<SentRequest>>>);

impl Wire {
    /// The headers of the last request whose URI contains `needle`.
    fn last(&self, needle: &str) -> Vec<(String, String)> {
        let seen = self.0.lock().expect("the wire log is not poisoned");
        seen.iter()
            .rev()
            .find(|(request, _)| request.contains(needle))
            .map(|(_, headers)| headers.clone())
            .unwrap_or_default()
    }
}

impl Intercept for Wire {
    fn name(&self) -> &'static str {
        "Wire"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let headers = [
            "content-encoding",
            "x-amz-content-sha256",
            "x-amz-trailer",
            "x-amz-checksum-crc32",
        ]
        .iter()
        .filter_map(|name| {
            request
                .headers()
                .get(*name)
                .map(|value| ((*name).to_owned(), value.to_owned()))
        })
        .collect();
        let line = format!("{} {}", request.method(), request.uri());
        self.0
            .lock()
            .expect("the wire log is not poisoned")
            .push((line, headers));
        Ok(())
    }
}

/// A client for the node: path style, static credentials, a plain-HTTP connector, default
/// checksum settings, no retries (a retry would hide a failed request).
fn client(node: &TestNode, access_key: &str, secret: &str, wire: &Wire) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(node.endpoint())
        .credentials_provider(Credentials::new(access_key, secret, None, None, "vh-test"))
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .interceptor(wire.clone())
        .build();
    Client::from_conf(config)
}

async fn scenario(client: &Client, node: &TestNode, wire: &Wire, checks: &mut Checks) {
    if let Err(e) = client.create_bucket().bucket(BUCKET).send().await {
        checks.fail("create_bucket", format!("{e:?}"));
        return;
    }
    match client.list_buckets().send().await {
        Ok(out) => {
            let names: Vec<&str> = out.buckets().iter().filter_map(|b| b.name()).collect();
            checks.eq("list_buckets after create_bucket", names, vec![BUCKET]);
        }
        Err(e) => checks.fail("list_buckets", format!("{e:?}")),
    }
    small_objects(client, node, wire, checks).await;
    big_object(client, checks).await;
    tree_listing(client, checks).await;
    metadata_and_copy(client, checks).await;
    presigned(client, node, checks).await;
    deletes(client, checks).await;
}

/// Reads a whole object; `None` (and a failed check) when the SDK reports an error.
async fn read(client: &Client, checks: &mut Checks, what: &str, key: &str) -> Option<Vec<u8>> {
    let result = client.get_object().bucket(BUCKET).key(key).send().await;
    let body = match result {
        Ok(out) => out.body.collect().await,
        Err(e) => {
            checks.fail(what, format!("{e:?}"));
            return None;
        }
    };
    body.map(|b| b.into_bytes().to_vec())
        .map_err(|e| checks.fail(what, format!("{e:?}")))
        .ok()
}

fn crc32_base64(data: &[u8]) -> String {
    use base64::Engine as _;
    let crc = crc32(data);
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

/// CRC-32 (IEEE), bit by bit: small inputs only.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

async fn small_objects(client: &Client, node: &TestNode, wire: &Wire, checks: &mut Checks) {
    for (key, body) in [(SMALL_KEY, SMALL_BODY), (EMPTY_KEY, &b""[..])] {
        let put = client
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await;
        match put {
            Ok(out) => {
                checks.eq(
                    &format!("put_object {key} ETag"),
                    out.e_tag(),
                    Some(format!("\"{}\"", md5_hex(body)).as_str()),
                );
                checks.eq(
                    &format!("put_object {key} ChecksumCRC32"),
                    out.checksum_crc32(),
                    Some(crc32_base64(body).as_str()),
                );
            }
            Err(e) => checks.fail(&format!("put_object {key}"), format!("{e:?}")),
        }
        let header = wire.last(key);
        checks.check(
            &format!("put_object {key} sent its CRC32 in a header"),
            header.iter().any(|(n, _)| n == "x-amz-checksum-crc32"),
            || format!("{header:?}"),
        );
        let back = read(client, checks, &format!("get_object {key}"), key).await;
        checks.eq(
            &format!("{key} read back"),
            back.as_deref().map(sha256_hex),
            Some(sha256_hex(body)),
        );
        match client.head_object().bucket(BUCKET).key(key).send().await {
            Ok(out) => checks.eq(
                &format!("head_object {key} content_length"),
                out.content_length(),
                Some(body.len() as i64),
            ),
            Err(e) => checks.fail(&format!("head_object {key}"), format!("{e:?}")),
        };
    }

    // A body streamed from a file goes aws-chunked with a trailing checksum.
    let data = random_bytes(STREAMED_SIZE);
    let file = node.root().join("streamed.bin");
    std::fs::write(&file, &data).expect("write the streamed file");
    let body = ByteStream::from_path(&file)
        .await
        .expect("open the streamed file");
    let put = client
        .put_object()
        .bucket(BUCKET)
        .key(STREAMED_KEY)
        .body(body)
        .send()
        .await;
    if let Err(e) = &put {
        checks.fail("put_object of a streamed file", format!("{e:?}"));
    }
    let header = wire.last(STREAMED_KEY);
    let value = |name: &str| {
        header
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    checks.eq(
        "streamed put: content-encoding",
        value("content-encoding"),
        Some("aws-chunked"),
    );
    checks.eq(
        "streamed put: x-amz-content-sha256",
        value("x-amz-content-sha256"),
        Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"),
    );
    checks.eq(
        "streamed put: x-amz-trailer",
        value("x-amz-trailer"),
        Some("x-amz-checksum-crc32"),
    );
    let back = read(
        client,
        checks,
        "get_object of the streamed file",
        STREAMED_KEY,
    )
    .await;
    checks.eq(
        "streamed file read back",
        back.as_deref().map(sha256_hex),
        Some(sha256_hex(&data)),
    );
    let checked = client
        .get_object()
        .bucket(BUCKET)
        .key(STREAMED_KEY)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await;
    match checked {
        Ok(out) => {
            checks.eq(
                "streamed file checksum_crc32",
                out.checksum_crc32().map(str::to_owned),
                Some(crc32_base64(&data)),
            );
            // The SDK validates the CRC32 while the body is read and fails on a mismatch.
            match out.body.collect().await {
                Ok(bytes) => checks.eq(
                    "checksum-validated read",
                    sha256_hex(&bytes.into_bytes()),
                    sha256_hex(&data),
                ),
                Err(e) => checks.fail("checksum-validated read", format!("{e:?}")),
            };
        }
        Err(e) => checks.fail("get_object with checksum_mode ENABLED", format!("{e:?}")),
    }

    match client
        .get_object()
        .bucket(BUCKET)
        .key("small/none.txt")
        .send()
        .await
    {
        Ok(_) => checks.fail("get_object of a missing key", "succeeded"),
        Err(e) => checks.eq(
            "get_object of a missing key",
            e.into_service_error().is_no_such_key(),
            true,
        ),
    };
}

async fn big_object(client: &Client, checks: &mut Checks) {
    let data = Arc::new(random_bytes(BIG_SIZE));
    let created = client
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(BIG_KEY)
        .send()
        .await;
    let upload_id = match created.map(|out| out.upload_id().map(str::to_owned)) {
        Ok(Some(id)) => id,
        other => {
            checks.fail("create_multipart_upload", format!("{other:?}"));
            return;
        }
    };
    let mut parts = Vec::new();
    for (index, piece) in data.chunks(PART_SIZE).enumerate() {
        let number = i32::try_from(index + 1).expect("13 parts");
        let uploaded = client
            .upload_part()
            .bucket(BUCKET)
            .key(BIG_KEY)
            .upload_id(&upload_id)
            .part_number(number)
            .body(ByteStream::from(piece.to_vec()))
            .send()
            .await;
        match uploaded {
            Ok(out) => parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_owned))
                    .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                    .build(),
            ),
            Err(e) => {
                checks.fail(&format!("upload_part {number}"), format!("{e:?}"));
                return;
            }
        }
    }
    let completed = client
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(BIG_KEY)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await;
    match completed {
        Ok(out) => {
            let etag = out.e_tag().unwrap_or_default();
            checks.check(
                "complete_multipart_upload ETag has 13 parts",
                etag.trim_matches('"').ends_with("-13"),
                || etag.to_owned(),
            );
        }
        Err(e) => checks.fail("complete_multipart_upload", format!("{e:?}")),
    }
    match client
        .head_object()
        .bucket(BUCKET)
        .key(BIG_KEY)
        .send()
        .await
    {
        Ok(out) => checks.eq(
            "100 MiB content_length",
            out.content_length(),
            Some(BIG_SIZE as i64),
        ),
        Err(e) => checks.fail("head_object of 100 MiB", format!("{e:?}")),
    };
    let back = read(client, checks, "get_object of 100 MiB", BIG_KEY).await;
    checks.eq(
        "100 MiB read back",
        back.as_deref().map(sha256_hex),
        Some(sha256_hex(&data)),
    );
    for &(first, last) in &BIG_RANGES {
        let range = format!("bytes={first}-{last}");
        match client
            .get_object()
            .bucket(BUCKET)
            .key(BIG_KEY)
            .range(&range)
            .send()
            .await
        {
            Ok(out) => {
                checks.eq(
                    &format!("{range} content_range"),
                    out.content_range().map(str::to_owned),
                    Some(format!("bytes {first}-{last}/{BIG_SIZE}")),
                );
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map(|b| b.into_bytes().to_vec())
                    .ok();
                let expected = data
                    [usize::try_from(first).expect("fits")..=usize::try_from(last).expect("fits")]
                    .to_vec();
                checks.eq(&format!("{range} bytes"), bytes, Some(expected));
            }
            Err(e) => checks.fail(&format!("get_object {range}"), format!("{e:?}")),
        }
    }
}

async fn tree_listing(client: &Client, checks: &mut Checks) {
    let mut failed = Vec::new();
    for batch in tree_keys().chunks(16) {
        let mut puts = JoinSet::new();
        for key in batch {
            let request = client
                .put_object()
                .bucket(BUCKET)
                .key(key)
                .body(ByteStream::from(key.clone().into_bytes()));
            let key = key.clone();
            puts.spawn(async move { (key, request.send().await.map(|_| ())) });
        }
        for (key, result) in puts.join_all().await {
            if let Err(e) = result {
                failed.push(format!("{key}: {e:?}"));
            }
        }
    }
    checks.eq("put_object of 2,500 keys: failures", failed, Vec::new());

    let (keys, prefixes, _) = list(client, checks, TREE_PREFIX, Some("/"), None).await;
    checks.eq(
        "common prefixes at the top of the tree",
        prefixes,
        tree_dirs(),
    );
    checks.eq("keys at the top of the tree", keys, Vec::new());
    let (keys, prefixes, _) = list(client, checks, TREE_LISTED_DIR, Some("/"), None).await;
    checks.eq("keys of one directory", keys, listed_dir_keys());
    checks.eq("prefixes of one directory", prefixes, Vec::new());
    let (keys, _, pages) = list(client, checks, TREE_PREFIX, None, Some(1000)).await;
    checks.eq("paged listing: every key once, in order", keys, tree_keys());
    checks.eq("paged listing: keys per page", pages, vec![1000, 1000, 500]);
}

/// Pages through `list_objects_v2`; returns the keys, the common prefixes and the key count of
/// every page.
async fn list(
    client: &Client,
    checks: &mut Checks,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: Option<i32>,
) -> (Vec<String>, Vec<String>, Vec<i32>) {
    let mut pages = client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .set_delimiter(delimiter.map(str::to_owned))
        .set_max_keys(max_keys)
        .into_paginator()
        .send();
    let (mut keys, mut prefixes, mut counts) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => {
                keys.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_owned)),
                );
                prefixes.extend(
                    page.common_prefixes()
                        .iter()
                        .filter_map(|p| p.prefix().map(str::to_owned)),
                );
                counts.push(page.key_count().unwrap_or(-1));
            }
            Err(e) => {
                checks.fail(&format!("list_objects_v2 of {prefix}"), format!("{e:?}"));
                break;
            }
        }
    }
    (keys, prefixes, counts)
}

async fn metadata_and_copy(client: &Client, checks: &mut Checks) {
    let mut put = client
        .put_object()
        .bucket(BUCKET)
        .key(META_KEY)
        .content_type(META_CONTENT_TYPE)
        .body(ByteStream::from(META_BODY.to_vec()));
    for (name, value) in META_PAIRS {
        put = put.metadata(name, value);
    }
    if let Err(e) = put.send().await {
        checks.fail(
            "put_object with content_type and metadata",
            format!("{e:?}"),
        );
    }
    let copied = client
        .copy_object()
        .bucket(BUCKET)
        .key(COPY_KEY)
        .copy_source(format!("{BUCKET}/{META_KEY}"))
        .send()
        .await;
    match copied {
        Ok(out) => checks.eq(
            "copy_object ETag",
            out.copy_object_result().and_then(|r| r.e_tag()),
            Some(format!("\"{}\"", md5_hex(META_BODY)).as_str()),
        ),
        Err(e) => checks.fail("copy_object", format!("{e:?}")),
    };
    let expected: Vec<(String, String)> = META_PAIRS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    for key in [META_KEY, COPY_KEY] {
        match client.head_object().bucket(BUCKET).key(key).send().await {
            Ok(out) => {
                checks.eq(
                    &format!("{key} content_type"),
                    out.content_type(),
                    Some(META_CONTENT_TYPE),
                );
                let mut meta: Vec<(String, String)> = out
                    .metadata()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                meta.sort();
                checks.eq(&format!("{key} metadata"), meta, expected.clone());
            }
            Err(e) => checks.fail(&format!("head_object {key}"), format!("{e:?}")),
        }
        let back = read(client, checks, &format!("get_object {key}"), key).await;
        checks.eq(&format!("{key} content"), back, Some(META_BODY.to_vec()));
    }
    let replaced = client
        .copy_object()
        .bucket(BUCKET)
        .key("copy/replaced.md")
        .copy_source(format!("{BUCKET}/{META_KEY}"))
        .metadata_directive(MetadataDirective::Replace)
        .metadata("color", "red")
        .content_type("text/plain")
        .send()
        .await;
    if let Err(e) = replaced {
        checks.fail("copy_object with REPLACE", format!("{e:?}"));
    }
    match client
        .head_object()
        .bucket(BUCKET)
        .key("copy/replaced.md")
        .send()
        .await
    {
        Ok(out) => {
            checks.eq(
                "replaced copy content_type",
                out.content_type(),
                Some("text/plain"),
            );
            checks.eq(
                "replaced copy metadata",
                out.metadata()
                    .and_then(|m| m.get("color"))
                    .map(String::as_str),
                Some("red"),
            );
            checks.eq(
                "replaced copy metadata size",
                out.metadata().map(std::collections::HashMap::len),
                Some(1),
            );
        }
        Err(e) => checks.fail("head_object of the replaced copy", format!("{e:?}")),
    }
}

async fn presigned(client: &Client, node: &TestNode, checks: &mut Checks) {
    let config = PresigningConfig::expires_in(Duration::from_secs(300)).expect("a valid expiry");
    match client
        .get_object()
        .bucket(BUCKET)
        .key(SMALL_KEY)
        .presigned(config.clone())
        .await
    {
        Ok(request) => match support::fetch_presigned(node, request.uri()) {
            Ok((status, body)) => {
                checks.eq("presigned GET: status", status, 200);
                checks.eq("presigned GET: body", body, support::small_text());
            }
            Err(problem) => checks.fail("presigned GET", problem),
        },
        Err(e) => checks.fail("presigned get_object", format!("{e:?}")),
    }
    let body = b"uploaded through a presigned URL\n";
    match client
        .put_object()
        .bucket(BUCKET)
        .key("presigned/put.txt")
        .presigned(config)
        .await
    {
        Ok(request) => match support::presigned_path(node, request.uri()) {
            Ok(path) => {
                let mut raw = node
                    .request("PUT", &path)
                    .payload(Payload::Omitted)
                    .body(body);
                for (name, value) in request.headers() {
                    raw = raw.header(name, value);
                }
                let response = raw.send();
                checks.eq("presigned PUT: status", response.status, 200);
                let back = read(
                    client,
                    checks,
                    "get_object of the presigned PUT",
                    "presigned/put.txt",
                )
                .await;
                checks.eq("presigned PUT: stored body", back, Some(body.to_vec()));
            }
            Err(problem) => checks.fail("presigned PUT", problem),
        },
        Err(e) => checks.fail("presigned put_object", format!("{e:?}")),
    }
}

fn identifiers(keys: &[String]) -> Vec<ObjectIdentifier> {
    keys.iter()
        .map(|k| {
            ObjectIdentifier::builder()
                .key(k)
                .build()
                .expect("a key is set")
        })
        .collect()
}

async fn deletes(client: &Client, checks: &mut Checks) {
    if let Err(e) = client
        .delete_object()
        .bucket(BUCKET)
        .key(SMALL_KEY)
        .send()
        .await
    {
        checks.fail("delete_object", format!("{e:?}"));
    }
    match client
        .head_object()
        .bucket(BUCKET)
        .key(SMALL_KEY)
        .send()
        .await
    {
        Ok(_) => checks.fail(
            "head_object after delete_object",
            "the object is still there",
        ),
        Err(e) => checks.eq(
            "head_object after delete_object",
            e.into_service_error().is_not_found(),
            true,
        ),
    };
    let two = [EMPTY_KEY.to_owned(), COPY_KEY.to_owned()];
    let delete = Delete::builder()
        .set_objects(Some(identifiers(&two)))
        .build()
        .expect("objects are set");
    match client
        .delete_objects()
        .bucket(BUCKET)
        .delete(delete)
        .send()
        .await
    {
        Ok(out) => {
            let mut deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
            deleted.sort_unstable();
            checks.eq("delete_objects deleted", deleted, vec![COPY_KEY, EMPTY_KEY]);
            checks.eq("delete_objects errors", out.errors().len(), 0);
        }
        Err(e) => checks.fail("delete_objects", format!("{e:?}")),
    }
    match client.delete_bucket().bucket(BUCKET).send().await {
        Ok(_) => checks.fail("delete_bucket of a bucket with objects", "succeeded"),
        Err(e) => checks.eq(
            "delete_bucket of a bucket with objects",
            e.code(),
            Some("BucketNotEmpty"),
        ),
    };
    let (left, _, _) = list(client, checks, "", None, None).await;
    for batch in left.chunks(1000) {
        let delete = Delete::builder()
            .set_objects(Some(identifiers(batch)))
            .quiet(true)
            .build()
            .expect("objects are set");
        match client
            .delete_objects()
            .bucket(BUCKET)
            .delete(delete)
            .send()
            .await
        {
            Ok(out) => checks.eq("bulk delete_objects errors", out.errors().len(), 0),
            Err(e) => checks.fail("bulk delete_objects", format!("{e:?}")),
        };
    }
    let (left, _, _) = list(client, checks, "", None, None).await;
    checks.eq("bucket is empty", left, Vec::new());
    if let Err(e) = client.delete_bucket().bucket(BUCKET).send().await {
        checks.fail("delete_bucket", format!("{e:?}"));
    }
    match client.head_bucket().bucket(BUCKET).send().await {
        Ok(_) => checks.fail(
            "head_bucket after delete_bucket",
            "the bucket is still there",
        ),
        Err(e) => checks.eq(
            "head_bucket after delete_bucket",
            e.into_service_error().is_not_found(),
            true,
        ),
    };
}
