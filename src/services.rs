//! The node's services, each a [`crate::supervisor::Service`]: the S3 gateway, the FUSE mount,
//! the HTTP preview server, the admin listener, the janitor and the sync service.

pub mod admin;
pub mod fuse;
pub mod gateway;
pub mod janitor;
pub mod preview;
pub mod sync;

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::supervisor::{BoxFuture, Running};

/// `host:port` for binding, with brackets around an IPv6 host.
pub fn socket_address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A health check for a listening service: a TCP connection to it succeeds. A wildcard address
/// is checked through loopback.
pub async fn check_tcp(listen: Option<&str>) -> anyhow::Result<()> {
    let Some(listen) = listen else { return Ok(()) };
    let target = listen
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&target),
    )
    .await
    .with_context(|| format!("connecting to {target} timed out"))?
    .with_context(|| format!("connect to {target}"))?;
    Ok(())
}

/// Binds `host:port` and runs `serve` on the listener as a service's task; the future `serve`
/// gets resolves when the supervisor asks the service to stop. `keys` names the config keys of
/// the address, for the error when binding fails.
///
/// # Errors
/// The address cannot be bound.
pub async fn start_listener<F, Fut>(
    host: &str,
    port: u16,
    keys: &str,
    serve: F,
) -> anyhow::Result<Running>
where
    F: FnOnce(TcpListener, BoxFuture<'static, ()>) -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let bind_addr = socket_address(host, port);
    let listener = TcpListener::bind(&bind_addr)
        .await
        .with_context(|| format!("listen on {bind_addr} ({keys})"))?;
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown: BoxFuture<'static, ()> = Box::pin(async {
        let _ = stopped.await;
    });
    let task = tokio::spawn(serve(listener, shutdown));
    Ok(Running {
        task,
        stop,
        listen: Some(bind_addr),
    })
}
