//! Control messages, version 3.

use serde::{Deserialize, Serialize};

/// The version of the messages below.
pub const PROTOCOL_VERSION: u32 = 3;

/// One request as sent on the socket.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// Must equal [`PROTOCOL_VERSION`].
    pub version: u32,
    /// What to do.
    pub request: Request,
}

/// What `vh` can ask of the daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    /// The node's overall state.
    Status,
    /// The daemon's version.
    Version,
    /// Turn the S3 gateway on in the config file and start it.
    GatewayEnable,
    /// Turn the S3 gateway off in the config file and stop it.
    GatewayDisable,
    /// The gateway's state.
    GatewayStatus,
    /// Create a gateway credential.
    CredentialCreate {
        /// The operator's name for it.
        name: String,
        /// What it is for.
        description: Option<String>,
        /// When it stops working, milliseconds since the epoch; `None` for never.
        expires_at_ms: Option<i64>,
    },
    /// List gateway credentials.
    CredentialList,
    /// One gateway credential, without its secret.
    CredentialShow {
        /// Its access key id.
        access_key: String,
    },
    /// Revoke a gateway credential.
    CredentialRevoke {
        /// Its access key id.
        access_key: String,
    },
    /// Create a bucket on a new local vault.
    BucketCreateLocal {
        /// The bucket name.
        name: String,
        /// Override `s3_gateway.default_api_exclusive`.
        api_exclusive: Option<bool>,
    },
    /// Serve an existing vault as a bucket.
    BucketBind {
        /// The bucket name.
        name: String,
        /// The vault's name or id.
        vault: String,
        /// The bucket mode (`local`).
        mode: String,
        /// Whether only the gateway may write into the vault.
        api_exclusive: bool,
    },
    /// List buckets.
    BucketList,
    /// One bucket, with its vault's object count and size.
    BucketShow {
        /// The bucket name.
        name: String,
    },
    /// Remove a bucket binding, keeping the vault.
    BucketUnbind {
        /// The bucket name.
        name: String,
    },
    /// Set whether only the gateway may write into a bucket's vault.
    BucketSetApiExclusive {
        /// The bucket name.
        name: String,
        /// The new setting.
        api_exclusive: bool,
    },
    /// Create a vault.
    VaultCreate {
        /// The vault name.
        name: String,
    },
    /// List vaults.
    VaultList,
    /// One vault, with its bound buckets, object count and size.
    VaultShow {
        /// The vault's name or id.
        vault: String,
    },
    /// Give a vault a new name.
    VaultRename {
        /// The vault's name or id.
        vault: String,
        /// The new name.
        new_name: String,
    },
    /// Delete a vault and everything in it.
    VaultDelete {
        /// The vault's name or id.
        vault: String,
        /// Unbind the buckets it serves first, instead of refusing.
        force: bool,
    },
    /// Show a vault in the FUSE mount.
    VaultMount {
        /// The vault's name or id.
        vault: String,
    },
    /// Hide a vault from the FUSE mount; its data stays.
    VaultUnmount {
        /// The vault's name or id.
        vault: String,
    },
    /// Start one service (when the config enables it).
    ServiceStart {
        /// Its name, e.g. `S3GatewayService`.
        name: String,
    },
    /// Stop one service until it is started again.
    ServiceStop {
        /// Its name.
        name: String,
    },
    /// Restart one service.
    ServiceRestart {
        /// Its name.
        name: String,
    },
    /// Abort one service's task as if it had crashed, to see the watchdog bring it back.
    DebugKillService {
        /// Its name.
        name: String,
    },
}

/// The daemon's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Reply {
    /// The request succeeded.
    Ok {
        /// What it produced.
        result: Output,
    },
    /// The request failed; the message names the problem and, where there is one, the fix.
    Error {
        /// For people.
        message: String,
    },
}

/// What a successful request produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Output {
    /// Nothing beyond success.
    Done {
        /// A one-line confirmation.
        message: String,
    },
    /// The node's state.
    Status(NodeStatus),
    /// The S3 gateway's state (`vh s3-gateway status`; fails when it should run and does not).
    Gateway(ServiceStatus),
    /// One service's state after `vh service start|stop|restart`.
    Service(ServiceStatus),
    /// A credential just created, with its secret.
    NewCredential(NewCredential),
    /// Credentials, without secrets.
    Credentials(Vec<CredentialInfo>),
    /// One credential in detail, without its secret.
    Credential(CredentialInfo),
    /// One bucket.
    Bucket(BucketInfo),
    /// One bucket in detail (`vh s3-gateway bucket show`).
    BucketDetail(BucketDetail),
    /// Buckets.
    Buckets(Vec<BucketInfo>),
    /// One vault.
    Vault(VaultInfo),
    /// One vault in detail (`vh vault show`).
    VaultDetail(VaultDetail),
    /// Vaults.
    Vaults(Vec<VaultInfo>),
    /// The daemon's version.
    Version(VersionInfo),
}

/// The daemon's version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The daemon's package version.
    pub version: String,
    /// The control protocol it speaks.
    pub protocol: u32,
}

/// The node's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The daemon's version.
    pub version: String,
    /// The config file in use.
    pub config_path: String,
    /// The data directory.
    pub data_dir: String,
    /// `tpm` or `software`.
    pub key_provider: String,
    /// Every service.
    pub services: Vec<ServiceStatus>,
    /// How many vaults exist.
    pub vaults: usize,
    /// How many buckets exist.
    pub buckets: usize,
}

/// One service's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Its name, e.g. `S3GatewayService`.
    pub name: String,
    /// `running`, `disabled`, `failed` or `stopped`.
    pub state: String,
    /// Whether the config says it should run.
    pub enabled: bool,
    /// Where it listens, if it does.
    pub listen: Option<String>,
    /// When it started, seconds since the epoch.
    pub started_at: Option<u64>,
    /// How often it was restarted.
    pub restarts: u32,
    /// The last failure, if it failed.
    pub error: Option<String>,
    /// Requests served since the node started (for services that serve requests).
    #[serde(default)]
    pub requests: u64,
    /// Requests that failed since the node started.
    #[serde(default)]
    pub errors: u64,
}

/// A credential just created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewCredential {
    /// The operator's name for it.
    pub name: String,
    /// `VH…`.
    pub access_key_id: String,
    /// Shown this once.
    pub secret_access_key: String,
    /// What it is for.
    pub description: Option<String>,
    /// When it stops working, seconds since the epoch; `None` for never.
    pub expires_at: Option<u64>,
}

/// A credential as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialInfo {
    /// `VH…`.
    pub access_key_id: String,
    /// The operator's name for it.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub state: String,
    /// Creation time, seconds since the epoch.
    pub created_at: u64,
    /// When it stops (or stopped) working, seconds since the epoch; `None` for never.
    pub expires_at: Option<u64>,
    /// When a request last used it, seconds since the epoch; `None` for never.
    pub last_used_at: Option<u64>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<u64>,
}

/// A bucket as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketInfo {
    /// The bucket name.
    pub name: String,
    /// The vault's id.
    pub vault_id: i64,
    /// The vault's name.
    pub vault_name: String,
    /// `local`, `remote_cache` or `remote_proxy`.
    pub mode: String,
    /// Whether only the gateway may write into the vault.
    pub api_exclusive: bool,
    /// Creation time, seconds since the epoch.
    pub created_at: u64,
}

/// A bucket in detail.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketDetail {
    /// The binding.
    #[serde(flatten)]
    pub bucket: BucketInfo,
    /// How many objects its vault holds.
    pub objects: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// A vault as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VaultInfo {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Creation time, seconds since the epoch.
    pub created_at: u64,
    /// The buckets bound to it.
    pub buckets: Vec<String>,
    /// Whether the FUSE mount shows it.
    pub mounted: bool,
}

/// A vault in detail.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VaultDetail {
    /// Id, name, creation time, bound buckets and mount flag.
    #[serde(flatten)]
    pub vault: VaultInfo,
    /// How many objects (files) it holds.
    pub objects: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}
