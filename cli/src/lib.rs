//! The control protocol between `vh` and the daemon, shared by both so they can't drift apart.
//!
//! `vh` connects to the daemon's Unix control socket, writes one JSON [`Envelope`] line and reads
//! one JSON [`Reply`] line back. [`PROTOCOL_VERSION`] changes whenever a message changes shape;
//! the daemon refuses envelopes of another version with a message saying which it speaks.

pub mod protocol;

/// Paths both binaries use for a development node started with `--dev`, relative to the
/// working directory, so `vaulthalla --dev` and `vh --dev` find each other with no config file.
pub mod dev {
    /// The development node's data directory.
    pub const DATA_DIR: &str = "vh-dev";
    /// Its control socket.
    pub const CONTROL_SOCKET: &str = "vh-dev/control.sock";
    /// Its config file, created when `vh s3-gateway enable` or `disable` first edits it.
    pub const CONFIG_FILE: &str = "vh-dev/config.yaml";
}

/// Where the daemon listens when the config does not say.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/vaulthalla/control.sock";
/// The config file read when neither `--config` nor `VH_CONFIG` names one.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/vaulthalla/config.yaml";
