//! The S3 gateway: an S3-compatible HTTP frontend over the vault engine.
//!
//! A request flows through [`server`] (connection cap, TLS, request id, logging span), [`router`]
//! (bucket, key and operation from host, path and query), [`auth`] (SigV4 in every form S3
//! clients use, see [`sigv4`] and [`chunked`]) and one handler in [`ops`], which calls the
//! engine on a blocking thread. Every failure becomes an [`error::S3Error`] rendered as S3 XML
//! with the code and status AWS uses.
//!
//! Security: signatures are verified before any handler runs; secrets, signatures and the
//! `Authorization` header are never logged; request bodies stream into the engine, which seals
//! them before they touch the disk.

pub mod auth;
pub mod body;
pub mod checksum;
pub mod chunked;
pub mod error;
mod listener;
pub mod metrics;
pub mod ops;
pub mod router;
pub mod server;
pub mod sigv2;
pub mod sigv4;
pub mod tls;
pub mod xml;
pub mod xml_body;

use std::sync::Arc;

use vault::Engine;

pub use router::Addressing;
pub use server::serve;
pub use tls::TlsConfig;

/// The owner shown in listings: the gateway has one owner, the node's operator.
pub const OWNER_ID: &str = "vaulthalla";
/// The owner's display name.
pub const OWNER_DISPLAY_NAME: &str = "vaulthalla";

/// The gateway's settings, as the daemon read them from `s3_gateway` in its config.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Connections served at once; past this a client gets `503 SlowDown`.
    pub max_connections: usize,
    /// The largest object body accepted, in bytes.
    pub max_body_size: u64,
    /// Refuse unsigned requests.
    pub require_sigv4: bool,
    /// Path- and virtual-hosted-style addressing.
    pub addressing: Addressing,
    /// The region reported by GetBucketLocation and HeadBucket.
    pub region: String,
    /// The mode of buckets created through the API.
    pub default_bucket_mode: String,
    /// Whether buckets created through the API are API-exclusive.
    pub default_api_exclusive: bool,
    /// Whether the vaults of buckets created through the API show in the FUSE mount.
    pub mount_new_vaults: bool,
    /// The smallest multipart part but the last, in bytes.
    pub min_part_size: u64,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<TlsConfig>,
}

/// The gateway's shared state.
pub struct Gateway {
    /// The vault engine.
    pub engine: Arc<Engine>,
    /// Settings.
    pub config: GatewayConfig,
    /// Request, byte and connection counters.
    pub metrics: Arc<metrics::GatewayMetrics>,
}
