//! The HTTP preview server: thumbnails of images and excerpts of text files kept in the
//! gateway's buckets, for holders of a gateway credential.
//!
//! Two endpoints, both `GET`:
//! - `/thumbnail/{bucket}/{key}?size=N`: a JPEG, PNG, GIF (first frame) or WebP image scaled
//!   down to fit N×N (default 256, clamped to 16..=1024), answered as `image/jpeg`;
//! - `/text/{bucket}/{key}?bytes=N`: the first N bytes (default 4096, at most 65536) of an
//!   object that looks like text, cut at a character boundary, as UTF-8 plain text; the
//!   `x-vh-truncated` header says whether the object goes on past the excerpt.
//!
//! Anything else is refused with a JSON body `{"error", "message"}`: `415` for an object with
//! no preview of that kind, `413` past a limit, `404` for an unknown bucket or key, `401` for
//! an unsigned request and `403` (or `400` when malformed) for a signature that does not
//! verify.
//!
//! A request flows through [`serve`] (connection cap, graceful shutdown), `handler` (routing,
//! span, answer), `auth` (SigV4 as the S3 gateway checks it, header or presigned URL), `source`
//! (the object decrypted range by range into memory) and one renderer, `thumbnail` or `text`.
//!
//! Security: plaintext and previews exist only in memory, on a blocking thread, while a render
//! slot is held: nothing is written to disk and answers say `Cache-Control: no-store`. Images
//! are untrusted: the format is sniffed, the stored size capped, the header's dimensions checked
//! against a pixel budget and the decoder bounded by [`image::Limits`], so a decompression bomb
//! gets a `413` instead of the node's memory. No content, secret or signature is logged.

mod auth;
mod error;
mod handler;
mod source;
mod text;
mod thumbnail;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vault::Engine;

use self::error::PreviewError;
use self::handler::Shared;

/// How long open connections get to finish their requests at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a client gets to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The preview server's settings.
#[derive(Clone, Debug)]
pub struct PreviewConfig {
    /// The largest object a thumbnail is made of, in plaintext bytes; larger ones get `413`.
    /// The whole object is held in memory while its thumbnail is made. Text excerpts read only
    /// their first bytes and are not bound by this.
    pub max_source_bytes: u64,
    /// The largest image decoded, in pixels (width × height, as its header states); larger
    /// ones get `413`. A render holds up to 8 bytes per pixel of this budget.
    pub max_pixels: u64,
    /// Previews made at once; further requests wait for a turn. Peak memory is about this
    /// many times `max_source_bytes` plus the decoded image.
    pub max_concurrent_previews: usize,
    /// Connections served at once; past this a client gets `503` and the connection closes.
    pub max_connections: usize,
}

impl Default for PreviewConfig {
    fn default() -> Self {
        Self {
            max_source_bytes: 64 * 1024 * 1024,
            max_pixels: 40_000_000,
            max_concurrent_previews: 2,
            max_connections: 256,
        }
    }
}

/// Serves previews on `listener` until `shutdown` resolves, then gives open requests up to 10
/// seconds to finish.
///
/// # Errors
/// None today: a failed `accept` (running out of file descriptors, say) is logged and retried.
/// The `Result` leaves room for listener failures that are final.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    config: PreviewConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let shared = Arc::new(Shared::new(engine, config));
    let app = axum::Router::new()
        .fallback(handler::handle)
        .with_state(shared);
    let overloaded = axum::Router::new().fallback(busy);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(err) => {
                    // Running out of file descriptors is transient; back off instead of spinning.
                    tracing::warn!(error = %err, "preview server: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let slot = Arc::clone(&slots).try_acquire_owned().ok();
        let service = if slot.is_some() {
            app.clone()
        } else {
            overloaded.clone()
        };
        tokio::spawn(serve_connection(stream, service, graceful.watcher(), slot));
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some preview connections were still open at shutdown and were closed");
    }
    Ok(())
}

/// Serves one connection with HTTP/1.1 keep-alive until the client or a graceful shutdown
/// closes it, then gives its slot back.
async fn serve_connection(
    stream: TcpStream,
    service: axum::Router,
    watcher: Watcher,
    slot: Option<OwnedSemaphorePermit>,
) {
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    if let Err(err) = watcher.watch(connection).await {
        tracing::debug!(error = %err, "preview connection ended with an error");
    }
    drop(slot);
}

/// The answer on a connection past `max_connections`.
async fn busy() -> axum::response::Response {
    PreviewError::Busy.into_response()
}
