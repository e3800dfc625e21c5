//! One accepted connection, served to its end: the TLS handshake when the gateway speaks HTTPS,
//! then HTTP/1.1 with keep-alive, watched for graceful shutdown.
//!
//! The connection slot ([`server`](crate::server) hands one in, or none when the gateway is
//! full) is held until the connection closes. A connection past the cap still completes its TLS
//! handshake so that the client reads a proper `503 SlowDown` rather than a dropped socket.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::rt::{Read, Write};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use crate::tls::TlsConfig;

/// How long a client gets to complete the TLS handshake before the socket is closed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `stream` with `service` until the client or a graceful shutdown closes it, then gives
/// the connection slot back.
pub(crate) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsConfig>,
    service: axum::Router,
    watcher: Watcher,
    slot: Option<OwnedSemaphorePermit>,
) {
    let outcome = match tls {
        None => serve_http(TokioIo::new(stream), service, watcher).await,
        Some(tls) => {
            let handshake =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await;
            match handshake {
                Ok(Ok(stream)) => serve_http(TokioIo::new(stream), service, watcher).await,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                    Ok(())
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    Ok(())
                }
            }
        }
    };
    if let Err(err) = outcome {
        tracing::debug!(%peer, error = %err, "connection ended with an error");
    }
    drop(slot);
}

/// How long a client may take to send a request's headers, also while a kept-alive connection
/// waits for its next request.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn serve_http<I>(io: I, service: axum::Router, watcher: Watcher) -> Result<(), hyper::Error>
where
    I: Read + Write + Unpin + Send + 'static,
{
    // A client that opens a connection and sends nothing (or headers a byte at a time) would
    // hold one of the `max_connections` slots forever; the timer bounds how long it may take.
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(io, TowerToHyperService::new(service));
    watcher.watch(connection).await
}
