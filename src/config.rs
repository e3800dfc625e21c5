//! The node's configuration: one YAML file read into typed sections, with a default for every
//! key so a fresh install starts with no file at all.
//!
//! Unknown keys are refused (a typo must not silently fall back to a default), and so are values
//! out of range, with a message that names the key.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use vault::KeyProviderChoice;

/// The whole config file.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where vault data, metadata and sealed keys live.
    pub data_dir: PathBuf,
    /// The Unix socket `vh` talks to.
    pub control_socket: PathBuf,
    /// How the master key is sealed.
    pub keys: KeysConfig,
    /// The S3 gateway.
    pub s3_gateway: GatewayConfig,
    /// The HTTP preview server.
    pub preview: PreviewConfig,
    /// The admin listener: `/metrics` and `/health`.
    pub admin: AdminConfig,
    /// The FUSE mount.
    pub fuse: FuseConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/var/lib/vaulthalla"),
            control_socket: PathBuf::from(vh_cli::DEFAULT_CONTROL_SOCKET),
            keys: KeysConfig::default(),
            s3_gateway: GatewayConfig::default(),
            preview: PreviewConfig::default(),
            admin: AdminConfig::default(),
            fuse: FuseConfig::default(),
        }
    }
}

/// `fuse`: every mounted vault as a top-level directory of one FUSE mount.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FuseConfig {
    /// Run the mount.
    pub enabled: bool,
    /// The directory the vaults are mounted on; created when missing.
    pub mount_point: PathBuf,
    /// Let users other than the node's own reach the mount; the kernel then checks each entry's
    /// owner and mode. Mounting without root or `CAP_SYS_ADMIN` needs `user_allow_other` in
    /// `/etc/fuse.conf` for this.
    pub allow_other: bool,
    /// Threads answering the kernel.
    pub threads: usize,
    /// Whether a vault created by `vh vault create` or `vh s3-gateway bucket create-local` is
    /// shown in the mount; `vh vault mount` and `unmount` change it later.
    pub mount_new_vaults: bool,
}

impl Default for FuseConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            mount_point: PathBuf::from("/mnt/vaulthalla"),
            allow_other: true,
            threads: 4,
            mount_new_vaults: true,
        }
    }
}

/// `preview`: thumbnails and text excerpts of vault files over HTTP, for holders of a gateway
/// credential.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreviewConfig {
    /// Run the preview server.
    pub enabled: bool,
    /// The address to listen on.
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// The largest file a thumbnail is made of, in MiB.
    pub max_source_mb: u64,
}

impl Default for PreviewConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "127.0.0.1".to_owned(),
            port: 36970,
            max_source_mb: 64,
        }
    }
}

/// `admin`: Prometheus metrics at `/metrics` and a health check at `/health`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Run the admin listener.
    pub enabled: bool,
    /// The address to listen on; keep it on loopback unless a firewall guards it.
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host: "127.0.0.1".to_owned(),
            port: 39001,
        }
    }
}

/// `keys`: the master key's provider.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// `auto` (TPM when reachable, else a software key file, with a warning), `tpm` or
    /// `software`.
    pub provider: KeyProviderChoice,
    /// The TPM's TCTI, e.g. `device:/dev/tpmrm0` or `swtpm:host=127.0.0.1,port=2321`.
    pub tpm_tcti: Option<String>,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            provider: KeyProviderChoice::Auto,
            tpm_tcti: None,
        }
    }
}

/// `s3_gateway`: the S3-compatible listener.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Run the gateway.
    pub enabled: bool,
    /// The address to listen on.
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// Connections served at once; further clients get `503 SlowDown`.
    pub max_connections: usize,
    /// The largest object body accepted, in MiB.
    pub max_body_size_mb: u64,
    /// Refuse unsigned requests; may be off only on a loopback listener.
    pub require_sigv4: bool,
    /// Accept `http://host/bucket/key`.
    pub allow_path_style: bool,
    /// Accept `http://bucket.host/key`.
    pub allow_virtual_hosted_style: bool,
    /// The domains under which a host's first label names a bucket (`bucket.domain[:port]`);
    /// a host equal to one of them, or any other host, is path style.
    pub base_domains: Vec<String>,
    /// Serve HTTPS with this certificate and key; absent for plain HTTP.
    pub tls: Option<TlsConfig>,
    /// The mode of buckets created through the API.
    pub default_bucket_mode: BucketMode,
    /// Whether buckets created through the API are writable only through the gateway.
    pub default_api_exclusive: bool,
    /// The sync strategy of remote-backed buckets created through the API.
    pub default_remote_sync_strategy: SyncStrategy,
    /// The conflict policy of remote-backed buckets created through the API.
    pub default_remote_conflict_policy: ConflictPolicy,
    /// Multipart uploads.
    pub multipart: MultipartConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "0.0.0.0".to_owned(),
            port: 39000,
            max_connections: 1024,
            max_body_size_mb: 5120,
            require_sigv4: true,
            allow_path_style: true,
            allow_virtual_hosted_style: true,
            base_domains: vec!["localhost".to_owned()],
            tls: None,
            default_bucket_mode: BucketMode::Local,
            default_api_exclusive: true,
            default_remote_sync_strategy: SyncStrategy::Cache,
            default_remote_conflict_policy: ConflictPolicy::KeepLocal,
            multipart: MultipartConfig::default(),
        }
    }
}

/// `s3_gateway.tls`: the listener's certificate and key, both PEM files, both required.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, RSA or EC). Group and others must have no access to the file.
    pub key: PathBuf,
}

/// How a bucket stores its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketMode {
    /// On a local vault.
    Local,
    /// On an upstream S3 vault, with an encrypted local copy of what is read.
    RemoteCache,
    /// On an upstream S3 vault, without a local copy.
    RemoteProxy,
}

impl BucketMode {
    /// The name used in the config and the metadata.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::RemoteCache => "remote_cache",
            Self::RemoteProxy => "remote_proxy",
        }
    }
}

/// How a remote-backed vault syncs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStrategy {
    /// Local copies on demand.
    Cache,
    /// Two-way.
    Sync,
    /// One side wins.
    Mirror,
}

/// Which side wins a conflict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// The local copy.
    KeepLocal,
    /// The upstream copy.
    KeepRemote,
    /// The newer one.
    KeepNewest,
    /// Neither, until an operator resolves it.
    Ask,
}

/// `s3_gateway.multipart`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultipartConfig {
    /// Where in-progress parts are kept (encrypted); empty for inside the data directory.
    pub part_dir: String,
    /// The smallest part but the last, in MiB.
    pub min_part_size_mb: u64,
    /// Uploads older than this are aborted by the janitor.
    pub abort_after_days: u64,
}

impl Default for MultipartConfig {
    fn default() -> Self {
        Self {
            part_dir: String::new(),
            min_part_size_mb: 5,
            abort_after_days: 7,
        }
    }
}

impl Config {
    /// The same config with the paths of a development node (`--dev`): data, control socket
    /// and mount point under `./vh-dev`.
    #[must_use]
    pub fn with_dev_paths(mut self) -> Self {
        self.data_dir = PathBuf::from(vh_cli::dev::DATA_DIR);
        self.control_socket = PathBuf::from(vh_cli::dev::CONTROL_SOCKET);
        self.fuse.mount_point = Path::new(vh_cli::dev::DATA_DIR).join("mnt");
        self
    }

    /// Reads `path`; a missing file means the built-in defaults when `missing_ok`.
    ///
    /// # Errors
    /// The file can't be read, isn't valid YAML, has an unknown key or an invalid value; the
    /// message names the key.
    pub fn load(path: &Path, missing_ok: bool) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && missing_ok => {
                return Ok(Self::default());
            }
            Err(err) => {
                return Err(err).with_context(|| format!("read config file {}", path.display()));
            }
        };
        Self::parse(&text).with_context(|| format!("config file {}", path.display()))
    }

    /// Parses and validates YAML text.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: Self = if text.trim().is_empty() {
            Self::default()
        } else {
            serde_norway::from_str(text)?
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let gateway = &self.s3_gateway;
        let Ok(host) = gateway.host.parse::<IpAddr>() else {
            bail!(
                "s3_gateway.host: {:?} is not an IP address (use e.g. 0.0.0.0 or 127.0.0.1)",
                gateway.host
            );
        };
        if gateway.port == 0 {
            bail!("s3_gateway.port: must be between 1 and 65535");
        }
        if gateway.max_connections == 0 {
            bail!("s3_gateway.max_connections: must be at least 1");
        }
        if gateway.max_body_size_mb == 0 || gateway.max_body_size_mb > 5 * 1024 * 1024 {
            bail!("s3_gateway.max_body_size_mb: must be between 1 and 5242880 (5 TiB)");
        }
        if !gateway.require_sigv4 && !host.is_loopback() {
            bail!(
                "s3_gateway.require_sigv4: may be false only when s3_gateway.host is a loopback \
                 address (127.0.0.1 or ::1), not {host}"
            );
        }
        if !gateway.allow_path_style && !gateway.allow_virtual_hosted_style {
            bail!(
                "s3_gateway.allow_path_style / allow_virtual_hosted_style: at least one must be true"
            );
        }
        validate_base_domains(&gateway.base_domains)?;
        if let Some(tls) = &gateway.tls {
            if tls.cert.as_os_str().is_empty() {
                bail!("s3_gateway.tls.cert: must name the PEM certificate file");
            }
            if tls.key.as_os_str().is_empty() {
                bail!("s3_gateway.tls.key: must name the PEM private key file");
            }
        }
        let multipart = &gateway.multipart;
        if !(1..=5 * 1024).contains(&multipart.min_part_size_mb) {
            bail!("s3_gateway.multipart.min_part_size_mb: must be between 1 and 5120");
        }
        if multipart.abort_after_days == 0 {
            bail!("s3_gateway.multipart.abort_after_days: must be at least 1");
        }
        check_listener("preview", &self.preview.host, self.preview.port)?;
        if !(1..=4096).contains(&self.preview.max_source_mb) {
            bail!("preview.max_source_mb: must be between 1 and 4096");
        }
        check_listener("admin", &self.admin.host, self.admin.port)?;
        validate_fuse(&self.fuse)?;
        if self.data_dir.as_os_str().is_empty() {
            bail!("data_dir: must not be empty");
        }
        if self.control_socket.as_os_str().is_empty() {
            bail!("control_socket: must not be empty");
        }
        Ok(())
    }
}

/// Each base domain must be a bare DNS name: no scheme, port, path or leading dot.
fn validate_base_domains(domains: &[String]) -> anyhow::Result<()> {
    for domain in domains {
        let name = domain.trim_end_matches('.');
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
            bail!(
                "s3_gateway.base_domains: {domain:?} is not a domain name (write e.g. \
                 s3.example.com, without scheme or port)"
            );
        }
    }
    Ok(())
}

fn validate_fuse(fuse: &FuseConfig) -> anyhow::Result<()> {
    if fuse.mount_point.as_os_str().is_empty() {
        bail!("fuse.mount_point: must name a directory, e.g. /mnt/vaulthalla");
    }
    if !(1..=MAX_FUSE_THREADS).contains(&fuse.threads) {
        bail!("fuse.threads: must be between 1 and {MAX_FUSE_THREADS}");
    }
    Ok(())
}

/// More threads than this only wait on the metadata database's single writer.
const MAX_FUSE_THREADS: usize = 64;

fn check_listener(section: &str, host: &str, port: u16) -> anyhow::Result<()> {
    if host.parse::<IpAddr>().is_err() {
        bail!("{section}.host: {host:?} is not an IP address (use e.g. 127.0.0.1)");
    }
    if port == 0 {
        bail!("{section}.port: must be between 1 and 65535");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let config = Config::parse("").unwrap();
        let g = &config.s3_gateway;
        assert!(!g.enabled);
        assert_eq!(
            (
                g.host.as_str(),
                g.port,
                g.max_connections,
                g.max_body_size_mb
            ),
            ("0.0.0.0", 39000, 1024, 5120)
        );
        assert!(
            g.require_sigv4
                && g.allow_path_style
                && g.allow_virtual_hosted_style
                && g.default_api_exclusive
        );
        assert_eq!(g.base_domains, vec!["localhost".to_owned()]);
        assert_eq!(g.tls, None);
        assert_eq!(g.default_bucket_mode, BucketMode::Local);
        assert_eq!(g.default_remote_sync_strategy, SyncStrategy::Cache);
        assert_eq!(g.default_remote_conflict_policy, ConflictPolicy::KeepLocal);
        assert_eq!(
            g.multipart,
            MultipartConfig {
                part_dir: String::new(),
                min_part_size_mb: 5,
                abort_after_days: 7
            }
        );
        assert_eq!(config.keys.provider, KeyProviderChoice::Auto);
        assert_eq!(
            config.fuse,
            FuseConfig {
                enabled: true,
                mount_point: PathBuf::from("/mnt/vaulthalla"),
                allow_other: true,
                threads: 4,
                mount_new_vaults: true,
            }
        );
    }

    #[test]
    fn fuse_section_is_read_checked_and_moved_under_the_dev_directory() {
        let config = Config::parse(
            "fuse:\n  enabled: false\n  mount_point: /srv/vaults\n  allow_other: false\n  \
             threads: 8\n  mount_new_vaults: false\n",
        )
        .unwrap();
        assert_eq!(
            config.fuse,
            FuseConfig {
                enabled: false,
                mount_point: PathBuf::from("/srv/vaults"),
                allow_other: false,
                threads: 8,
                mount_new_vaults: false,
            }
        );
        for (yaml, key) in [
            ("fuse:\n  mountpoint: /x\n", "mountpoint"),
            ("fuse:\n  threads: 0\n", "fuse.threads"),
            ("fuse:\n  threads: 65\n", "fuse.threads"),
            ("fuse:\n  mount_point: ''\n", "fuse.mount_point"),
        ] {
            let err = format!("{:#}", Config::parse(yaml).unwrap_err());
            assert!(err.contains(key), "{yaml}: {err}");
        }
        let dev = config.with_dev_paths();
        assert_eq!(
            dev.fuse.mount_point,
            Path::new(vh_cli::dev::DATA_DIR).join("mnt")
        );
        assert!(!dev.fuse.enabled, "only the paths change");
    }

    #[test]
    fn unknown_and_invalid_keys_are_named() {
        let err = format!(
            "{:#}",
            Config::parse("s3_gateway:\n  enabeld: true\n").unwrap_err()
        );
        assert!(err.contains("enabeld"), "{err}");
        let err = format!(
            "{:#}",
            Config::parse("s3_gateway:\n  port: 0\n").unwrap_err()
        );
        assert!(err.contains("s3_gateway.port"), "{err}");
        let err = format!(
            "{:#}",
            Config::parse("s3_gateway:\n  require_sigv4: false\n").unwrap_err()
        );
        assert!(err.contains("s3_gateway.require_sigv4"), "{err}");
        let err = format!(
            "{:#}",
            Config::parse("keys:\n  provider: hsm\n").unwrap_err()
        );
        assert!(err.contains("hsm"), "{err}");
        let err = format!(
            "{:#}",
            Config::parse("s3_gateway:\n  default_bucket_mode: remote\n").unwrap_err()
        );
        assert!(
            err.contains("default_bucket_mode") || err.contains("remote"),
            "{err}"
        );
        assert!(Config::parse("s3_gateway:\n  host: 127.0.0.1\n  require_sigv4: false\n").is_ok());
    }

    #[test]
    fn tls_needs_both_files_and_base_domains_must_be_names() {
        let config = Config::parse(
            "s3_gateway:\n  base_domains: [s3.example.com, localhost]\n  tls:\n    cert: /etc/vh/cert.pem\n    key: /etc/vh/key.pem\n",
        )
        .unwrap();
        let g = &config.s3_gateway;
        assert_eq!(g.base_domains, ["s3.example.com", "localhost"]);
        assert_eq!(
            g.tls,
            Some(TlsConfig {
                cert: PathBuf::from("/etc/vh/cert.pem"),
                key: PathBuf::from("/etc/vh/key.pem"),
            })
        );
        let err = format!(
            "{:#}",
            Config::parse("s3_gateway:\n  tls:\n    cert: /c.pem\n").unwrap_err()
        );
        assert!(err.contains("key"), "{err}");
        let err = format!(
            "{:#}",
            Config::parse("s3_gateway:\n  tls:\n    cert: /c.pem\n    key: /k.pem\n    ca: x\n")
                .unwrap_err()
        );
        assert!(err.contains("ca"), "{err}");
        let err = format!(
            "{:#}",
            Config::parse("s3_gateway:\n  tls:\n    cert: ''\n    key: /k.pem\n").unwrap_err()
        );
        assert!(err.contains("s3_gateway.tls.cert"), "{err}");
        for bad in [
            "http://s3.example.com",
            "s3.example.com:9000",
            "",
            ".example.com",
            "a b",
        ] {
            let err = format!(
                "{:#}",
                Config::parse(&format!("s3_gateway:\n  base_domains: [{bad:?}]\n")).unwrap_err()
            );
            assert!(err.contains("s3_gateway.base_domains"), "{bad}: {err}");
        }
        assert!(Config::parse("s3_gateway:\n  base_domains: []\n").is_ok());
    }
}
