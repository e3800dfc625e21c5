//! The gateway's listener on a loopback socket: the connection cap answers `503 SlowDown`
//! instead of dropping clients (over plain TCP and after a TLS handshake), frees its slots when
//! connections close, serves HTTPS with a configured certificate, and shuts down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// A gateway serving on an ephemeral loopback port, over an engine in a temporary directory.
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(max_connections: usize, require_sigv4: bool, tls: Option<s3::TlsConfig>) -> Running {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let engine = vault::Engine::open(&vault::EngineConfig {
        data_dir: dir.path().join("data"),
        key_provider: vault::KeyProviderChoice::Software,
        tpm_tcti: None,
        part_dir: None,
    })
    .expect("open an engine with a software key");
    let config = s3::GatewayConfig {
        max_connections,
        max_body_size: 1024 * 1024,
        require_sigv4,
        addressing: s3::Addressing {
            path_style: true,
            virtual_hosted_style: true,
            base_domains: vec!["localhost".to_owned()],
        },
        region: "us-east-1".to_owned(),
        default_bucket_mode: "local".to_owned(),
        default_api_exclusive: true,
        mount_new_vaults: true,
        min_part_size: 5 * 1024 * 1024,
        tls,
    };
    let gateway = Arc::new(s3::Gateway {
        engine: Arc::new(engine),
        config,
        metrics: Arc::default(),
    });
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("the bound address");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(s3::serve(listener, gateway, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop,
        task,
        _dir: dir,
    }
}

/// A response's status and body.
struct Reply {
    status: u16,
    close: bool,
    body: String,
}

/// Sends `GET /` on a kept-alive connection and reads one whole response.
async fn get_root<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Reply {
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("send a request");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut buf).await.expect("read a response head");
        assert!(n > 0, "the connection closed before a response arrived");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8(raw[..head_end].to_vec()).expect("an ASCII response head");
    let status = head[9..12].parse().expect("a status code");
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let length: usize = header("content-length")
        .and_then(|value| value.parse().ok())
        .expect("a Content-Length");
    while raw.len() < head_end + length {
        let n = stream.read(&mut buf).await.expect("read a response body");
        assert!(n > 0, "the connection closed inside a response body");
        raw.extend_from_slice(&buf[..n]);
    }
    Reply {
        status,
        close: header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")),
        body: String::from_utf8(raw[head_end..head_end + length].to_vec()).expect("a UTF-8 body"),
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr)
        .await
        .expect("connect to the gateway")
}

/// Retries `GET /` on new connections until one is served, for at most five seconds: the server
/// frees a slot only once it has seen the old connection close.
async fn served_again(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let mut stream = connect(addr).await;
        if get_root(&mut stream).await.status == 200 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn stop(running: Running) {
    let Running { stop, task, .. } = running;
    stop.send(()).expect("the gateway is still running");
    let outcome = tokio::time::timeout(Duration::from_secs(5), task).await;
    assert!(
        matches!(outcome, Ok(Ok(Ok(())))),
        "the gateway did not shut down gracefully"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_get_503_slow_down_until_a_slot_frees() {
    let running = start(2, false, None).await;
    let mut first = connect(running.addr).await;
    let mut second = connect(running.addr).await;
    assert_eq!(get_root(&mut first).await.status, 200);
    assert_eq!(get_root(&mut second).await.status, 200);

    let mut third = connect(running.addr).await;
    let refused = get_root(&mut third).await;
    assert_eq!(refused.status, 503);
    assert!(
        refused.close,
        "a refused connection is closed after its answer"
    );
    assert!(
        refused.body.contains("<Code>SlowDown</Code>"),
        "{}",
        refused.body
    );
    let mut rest = Vec::new();
    assert_eq!(third.read_to_end(&mut rest).await.unwrap(), 0);

    drop(first);
    assert!(served_again(running.addr).await);
    let kept = get_root(&mut second).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    stop(running).await;
}

fn self_signed() -> (s3::TlsConfig, CertificateDer<'static>) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("generate a self-signed certificate");
    let tls = s3::TlsConfig::from_pem(
        generated.cert.pem().as_bytes(),
        generated.signing_key.serialize_pem().into_bytes(),
    )
    .expect("the generated pair is a TLS configuration");
    (tls, generated.cert.der().clone())
}

fn connector(cert: CertificateDer<'static>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(cert).expect("trust the test certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring offers the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn connect_tls(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let name = ServerName::try_from("localhost").expect("a DNS name");
    connector
        .connect(name, connect(addr).await)
        .await
        .expect("complete the TLS handshake")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_s3_xml_and_the_cap_answers_after_the_handshake() {
    let (tls, cert) = self_signed();
    let running = start(1, true, Some(tls)).await;
    let connector = connector(cert);

    let mut first = connect_tls(running.addr, &connector).await;
    let anonymous = get_root(&mut first).await;
    assert_eq!(anonymous.status, 403);
    assert!(
        anonymous.body.contains("<Code>AccessDenied</Code>"),
        "{}",
        anonymous.body
    );

    let mut second = connect_tls(running.addr, &connector).await;
    let refused = get_root(&mut second).await;
    assert_eq!(refused.status, 503);
    assert!(refused.body.contains("<Code>SlowDown</Code>"));

    let mut plain = connect(running.addr).await;
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(
        !answer.starts_with(b"HTTP/1.1"),
        "plain HTTP must not be answered on a TLS listener"
    );

    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut status = 0;
    while Instant::now() < deadline && status != 403 {
        let mut next = connect_tls(running.addr, &connector).await;
        status = get_root(&mut next).await.status;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 403, "a freed slot serves the next HTTPS client");
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_kept_alive_connections() {
    let running = start(4, false, None).await;
    let mut idle = connect(running.addr).await;
    assert_eq!(get_root(&mut idle).await.status, 200);
    stop(running).await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "the idle connection was closed");
}
