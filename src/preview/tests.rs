//! The preview server over real HTTP on loopback: an engine on a temporary data directory,
//! objects written through it, requests signed with SigV4 by an independent signer.

use std::collections::HashSet;
use std::io::Cursor;
use std::path::Path;

use hmac::{Hmac, Mac};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use vault::meta::{ObjectAttrs, WriteCondition};
use vault::{BucketRow, EngineConfig, KeyProviderChoice};

use super::*;

const REGION: &str = "us-east-1";

/// A running preview server over a fresh engine with one bucket and one credential.
struct Fixture {
    dir: tempfile::TempDir,
    data_dir: std::path::PathBuf,
    engine: Arc<Engine>,
    bucket: BucketRow,
    access_key: String,
    secret: String,
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Fixture {
    async fn start() -> Self {
        Self::start_with(PreviewConfig::default()).await
    }

    async fn start_with(config: PreviewConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let engine = Engine::open(&EngineConfig {
            data_dir: data_dir.clone(),
            key_provider: KeyProviderChoice::Software,
            tpm_tcti: None,
            part_dir: None,
        })
        .unwrap();
        let bucket = engine.create_local_bucket("pics", false).unwrap();
        let credential = engine.create_credential("preview-test").unwrap();
        let engine = Arc::new(engine);

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Arc::clone(&engine), config, async {
            let _ = stopped.await;
        }));
        Self {
            dir,
            data_dir,
            engine,
            bucket,
            access_key: credential.access_key,
            secret: credential.secret.expose_secret().to_owned(),
            port,
            stop: Some(stop),
            server: Some(server),
        }
    }

    fn put(&self, key: &str, content_type: Option<&str>, data: &[u8]) {
        let mut writer = self.engine.begin_write(self.bucket.vault).unwrap();
        writer.write(data).unwrap();
        let attrs = ObjectAttrs {
            content_type: content_type.map(str::to_owned),
            ..ObjectAttrs::default()
        };
        let key = vault::ObjectKey::parse(key).unwrap();
        self.engine
            .commit_write(writer, &key, attrs, &WriteCondition::None)
            .unwrap();
    }

    /// `GET path?query`, signed in the `Authorization` header.
    async fn get(&self, path: &str, query: &str) -> HttpResponse {
        self.get_signed_with(path, query, &self.access_key, &self.secret)
            .await
    }

    async fn get_signed_with(
        &self,
        path: &str,
        query: &str,
        access_key: &str,
        secret: &str,
    ) -> HttpResponse {
        let headers = self.sign_headers(path, query, access_key, secret);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        request(self.port, "GET", &with_query(path, query), &headers).await
    }

    /// The headers of a header-signed `GET path?query`.
    fn sign_headers(
        &self,
        path: &str,
        query: &str,
        access_key: &str,
        secret: &str,
    ) -> Vec<(&'static str, String)> {
        let date = amz_date(OffsetDateTime::now_utc());
        let payload = hex::encode(Sha256::digest(b""));
        let canonical_headers = format!(
            "host:{}\nx-amz-content-sha256:{payload}\nx-amz-date:{date}\n",
            self.host()
        );
        let signed_names = "host;x-amz-content-sha256;x-amz-date";
        let canonical = format!(
            "GET\n{path}\n{}\n{canonical_headers}\n{signed_names}\n{payload}",
            canonical_query(query)
        );
        let scope = format!("{}/{REGION}/s3/aws4_request", &date[..8]);
        let signature = sign(secret, &date, &scope, &canonical);
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, \
             SignedHeaders={signed_names}, Signature={signature}"
        );
        vec![
            ("x-amz-content-sha256", payload),
            ("x-amz-date", date),
            ("authorization", authorization),
        ]
    }

    /// `GET path?query` as a presigned URL, as a web page would embed it.
    async fn get_presigned(&self, path: &str, query: &str) -> HttpResponse {
        let now = OffsetDateTime::now_utc();
        let date = amz_date(now);
        let scope = format!("{}/{REGION}/s3/aws4_request", &date[..8]);
        let credential = uri_encode(format!("{}/{scope}", self.access_key).as_bytes());
        let mut presign = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}\
             &X-Amz-Date={date}&X-Amz-Expires=300&X-Amz-SignedHeaders=host"
        );
        if !query.is_empty() {
            presign = format!("{query}&{presign}");
        }
        let canonical = format!(
            "GET\n{path}\n{}\nhost:{}\n\nhost\nUNSIGNED-PAYLOAD",
            canonical_query(&presign),
            self.host()
        );
        let signature = sign(&self.secret, &date, &scope, &canonical);
        let url = format!("{path}?{presign}&X-Amz-Signature={signature}");
        request(self.port, "GET", &url, &[]).await
    }

    async fn get_unsigned(&self, path: &str) -> HttpResponse {
        request(self.port, "GET", path, &[]).await
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

#[derive(Debug)]
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// One HTTP/1.1 request on its own connection to the server on loopback.
async fn request(
    port: u16,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> HttpResponse {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut head = format!("{method} {path_and_query} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("the server answers within 30 s")
        .unwrap();

    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if let Some((_, len)) = headers.iter().find(|(n, _)| n == "content-length") {
        body.truncate(len.parse().unwrap());
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

fn amz_date(at: OffsetDateTime) -> String {
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

fn uri_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Query pairs as sent here are already encoded; SigV4 wants them sorted.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .collect();
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The SigV4 signature of `canonical` with `secret`, as AWS documents it.
fn sign(secret: &str, date: &str, scope: &str, canonical: &str) -> String {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [&date[..8], REGION, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()))
}

/// Deterministic noise, so that images do not compress into runs that could match by chance.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as u8
        })
        .collect()
}

fn noisy_png(width: u32, height: u32) -> Vec<u8> {
    let pixels = noise((width * height * 3) as usize, 7);
    let image = RgbImage::from_raw(width, height, pixels).unwrap();
    encode(&DynamicImage::ImageRgb8(image), ImageFormat::Png)
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFF_u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// A valid small PNG whose header claims `width`×`height`.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = encode(
        &DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 1, Rgb([1, 2, 3]))),
        ImageFormat::Png,
    );
    // Signature (8), IHDR length (4), "IHDR" (4), then width and height, then the CRC of
    // "IHDR" and its 13 data bytes.
    assert_eq!(&png[12..16], b"IHDR");
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every file under `dir` that holds any 32-byte window of `secret`.
fn files_holding(dir: &Path, secret: &[u8]) -> Vec<std::path::PathBuf> {
    let windows: HashSet<&[u8]> = secret
        .windows(32)
        // A window of one repeated byte could match any zero-filled page by chance.
        .filter(|w| w.iter().any(|&b| b != w[0]))
        .collect();
    assert!(!windows.is_empty());
    let mut files = Vec::new();
    files_under(dir, &mut files);
    files
        .into_iter()
        .filter(|file| {
            let bytes = std::fs::read(file).unwrap();
            bytes.windows(32).any(|w| windows.contains(w))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_png_becomes_a_jpeg_thumbnail_that_fits() {
    let mut fixture = Fixture::start().await;
    let png = noisy_png(640, 320);
    fixture.put("photos/wide.png", Some("image/png"), &png);

    let response = fixture
        .get("/thumbnail/pics/photos/wide.png", "size=128")
        .await;
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("content-type"), Some("image/jpeg"));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let thumb = image::load_from_memory_with_format(&response.body, ImageFormat::Jpeg).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (128, 64));

    let response = fixture
        .get_presigned("/thumbnail/pics/photos/wide.png", "")
        .await;
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    let thumb = image::load_from_memory(&response.body).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (256, 128));

    let response = fixture
        .get("/thumbnail/pics/photos/wide.png", "size=5")
        .await;
    let thumb = image::load_from_memory(&response.body).unwrap();
    assert_eq!(
        (thumb.width(), thumb.height()),
        (16, 8),
        "sizes clamp to 16"
    );
    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gif_and_webp_images_get_thumbnails_too() {
    let mut fixture = Fixture::start().await;
    let image = DynamicImage::ImageRgb8(RgbImage::from_fn(90, 60, |x, y| {
        Rgb([(x * 2) as u8, (y * 3) as u8, 128])
    }));
    fixture.put("anim.gif", None, &encode(&image, ImageFormat::Gif));
    fixture.put("pic.webp", None, &encode(&image, ImageFormat::WebP));
    // A misleading name and type change nothing: the bytes say what the image is.
    fixture.put(
        "really-a-png.txt",
        Some("text/plain"),
        &encode(&image, ImageFormat::Png),
    );

    for key in ["anim.gif", "pic.webp", "really-a-png.txt"] {
        let response = fixture
            .get(&format!("/thumbnail/pics/{key}"), "size=30")
            .await;
        assert_eq!(response.status, 200, "{key}");
        let thumb = image::load_from_memory(&response.body).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (30, 20), "{key}");
    }
    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_excerpt_is_cut_at_a_character_boundary() {
    let mut fixture = Fixture::start().await;
    // "ab" then "€" (3 bytes): 4 bytes end inside the euro sign.
    let text = "ab€ and then some more text that goes on past the excerpt".repeat(20);
    fixture.put("notes/readme", Some("text/markdown"), text.as_bytes());
    fixture.put("plain", None, text.as_bytes());

    let response = fixture.get("/text/pics/notes/readme", "bytes=4").await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(response.header("x-vh-truncated"), Some("true"));
    assert_eq!(response.body, b"ab");

    let response = fixture.get("/text/pics/notes/readme", "bytes=5").await;
    assert_eq!(String::from_utf8(response.body).unwrap(), "ab€");

    // Undeclared, but valid UTF-8 without NULs: sniffed as text; default length 4096.
    let response = fixture.get("/text/pics/plain", "").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, text.as_bytes());
    assert_eq!(response.header("x-vh-truncated"), Some("false"));

    let response = fixture.get("/text/pics/plain", "bytes=zero").await;
    assert_eq!(response.status, 400);
    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_objects_have_no_preview() {
    let mut fixture = Fixture::start().await;
    let mut binary = noise(5000, 3);
    binary[10] = 0;
    fixture.put("blob.bin", Some("application/octet-stream"), &binary);
    fixture.put("dir/", None, b"");

    for path in [
        "/text/pics/blob.bin",
        "/thumbnail/pics/blob.bin",
        "/text/pics/dir/",
    ] {
        let response = fixture.get(path, "").await;
        assert_eq!(response.status, 415, "{path}");
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.json()["error"], "UnsupportedMediaType");
        assert!(!response.json()["message"].as_str().unwrap().is_empty());
    }
    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_must_carry_a_valid_signature() {
    let mut fixture = Fixture::start().await;
    fixture.put("a.txt", Some("text/plain"), b"hello");

    let unsigned = fixture.get_unsigned("/text/pics/a.txt").await;
    assert_eq!(unsigned.status, 401);
    assert_eq!(
        unsigned.header("www-authenticate"),
        Some("AWS4-HMAC-SHA256")
    );

    let key = fixture.access_key.clone();
    let wrong_secret = fixture
        .get_signed_with("/text/pics/a.txt", "", &key, "not-the-secret")
        .await;
    assert_eq!(wrong_secret.status, 403);
    assert_eq!(wrong_secret.json()["error"], "SignatureDoesNotMatch");

    let unknown_key = fixture
        .get_signed_with("/text/pics/a.txt", "", "VHUNKNOWNKEY", &fixture.secret)
        .await;
    assert_eq!(unknown_key.status, 403);

    // A signature covers the query: changing the length after signing is refused.
    let headers = fixture.sign_headers("/text/pics/a.txt", "bytes=64", &key, &fixture.secret);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let tampered = request(fixture.port, "GET", "/text/pics/a.txt?bytes=2", &headers).await;
    assert_eq!(tampered.status, 403);
    let honest = request(fixture.port, "GET", "/text/pics/a.txt?bytes=64", &headers).await;
    assert_eq!(honest.status, 200);
    assert_eq!(honest.body, b"hello");
    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_buckets_keys_and_paths_are_not_found() {
    let mut fixture = Fixture::start().await;
    for path in [
        "/text/pics/missing.txt",
        "/thumbnail/nope/a.png",
        "/text/pics/a/../b",
    ] {
        let response = fixture.get(path, "").await;
        assert_eq!(response.status, 404, "{path}");
    }
    assert_eq!(fixture.get_unsigned("/elsewhere").await.status, 404);
    let post = request(
        fixture.port,
        "POST",
        "/text/pics/a.txt",
        &[("content-length", "0")],
    )
    .await;
    assert_eq!(post.status, 405);
    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_images_are_refused_without_harm() {
    let mut fixture = Fixture::start_with(PreviewConfig {
        max_source_bytes: 100_000,
        ..PreviewConfig::default()
    })
    .await;
    fixture.put(
        "bomb.png",
        Some("image/png"),
        &png_claiming(100_000, 100_000),
    );
    fixture.put("big.png", Some("image/png"), &noisy_png(400, 400));
    fixture.put("ok.png", Some("image/png"), &noisy_png(64, 64));

    let bomb = fixture.get("/thumbnail/pics/bomb.png", "").await;
    assert_eq!(bomb.status, 413, "{:?}", bomb.json());
    assert_eq!(bomb.json()["error"], "TooLarge");

    let big = fixture.get("/thumbnail/pics/big.png", "").await;
    assert_eq!(big.status, 413, "{:?}", big.json());

    // The node is still serving.
    let ok = fixture.get("/thumbnail/pics/ok.png", "").await;
    assert_eq!(ok.status, 200);
    fixture.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_or_preview_reaches_the_disk() {
    let mut fixture = Fixture::start().await;
    let png = noisy_png(200, 120);
    let text: String = (0..400)
        .map(|line| format!("line {line:04}: the vault keeps this sentence sealed\n"))
        .collect();
    fixture.put("secret.png", Some("image/png"), &png);
    fixture.put("secret.txt", Some("text/plain"), text.as_bytes());

    let thumb = fixture.get("/thumbnail/pics/secret.png", "size=100").await;
    assert_eq!(thumb.status, 200);
    let excerpt = fixture.get("/text/pics/secret.txt", "bytes=65536").await;
    assert_eq!(excerpt.status, 200);
    assert_eq!(excerpt.body, text.as_bytes());
    fixture.stop().await;

    // The check itself finds plaintext where there is some.
    let control = fixture.dir.path().join("control");
    std::fs::create_dir(&control).unwrap();
    std::fs::write(control.join("copy"), &text.as_bytes()[100..140]).unwrap();
    assert_eq!(files_holding(&control, text.as_bytes()).len(), 1);

    // The engine stays open: its database and write-ahead log are checked as they are.
    for (what, plaintext) in [
        ("image", png.as_slice()),
        ("text", text.as_bytes()),
        ("thumbnail", thumb.body.as_slice()),
    ] {
        let leaks = files_holding(&fixture.data_dir, plaintext);
        assert!(leaks.is_empty(), "the {what} is readable in {leaks:?}");
    }
}
