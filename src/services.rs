//! The node's services, each a [`crate::supervisor::Service`]: the S3 gateway, the HTTP preview
//! server, the admin listener, the janitor and the sync service.

pub mod admin;
pub mod gateway;
pub mod janitor;
pub mod preview;
pub mod sync;

use std::time::Duration;

use anyhow::Context;

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
