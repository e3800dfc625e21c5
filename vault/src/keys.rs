//! Key sealing: how the node keeps its master key at rest.
//!
//! The master key wraps every other key of the node (per-vault data keys, the gateway key), so it
//! is the one secret that must survive restarts without being stored in the clear. A
//! [`KeySealer`] turns it into an opaque sealed blob and back. Two sealers exist: [`TpmSealer`]
//! binds the blob to a TPM 2.0 (hardware or swtpm), and [`SoftwareSealer`] wraps it under a key
//! file readable by the service user alone, for machines without a TPM and for tests.
//! [`load_or_create_master_key`] chooses between them and keeps the sealed master key on disk.

mod files;
mod master;
#[cfg(not(feature = "tpm"))]
mod no_tpm;
mod software;
#[cfg(feature = "tpm")]
mod tpm;

#[cfg(all(test, feature = "tpm"))]
mod test_swtpm;

use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::crypto::{CryptoError, SecretKey};

pub use master::{MasterKey, load_or_create_master_key};
#[cfg(not(feature = "tpm"))]
pub use no_tpm::TpmSealer;
pub use software::SoftwareSealer;
#[cfg(feature = "tpm")]
pub use tpm::TpmSealer;

/// Where a sealed key's protection comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyProvider {
    /// Sealed to a TPM 2.0: the blob is useless on any other machine.
    Tpm,
    /// Wrapped under a key file on disk: anyone who can read that file can unseal.
    Software,
}

impl fmt::Display for KeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tpm => "tpm",
            Self::Software => "software",
        })
    }
}

/// The configured key provider (`keys.provider: auto | tpm | software`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyProviderChoice {
    /// Use the TPM when one is reachable, otherwise the software provider (with a warning).
    #[default]
    Auto,
    /// Require the TPM; fail rather than fall back.
    Tpm,
    /// Use the software key file even if a TPM is present.
    Software,
}

impl KeyProviderChoice {
    /// The provider this choice insists on, or `None` for [`KeyProviderChoice::Auto`].
    #[must_use]
    pub fn explicit(self) -> Option<KeyProvider> {
        match self {
            Self::Auto => None,
            Self::Tpm => Some(KeyProvider::Tpm),
            Self::Software => Some(KeyProvider::Software),
        }
    }
}

impl fmt::Display for KeyProviderChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Tpm => "tpm",
            Self::Software => "software",
        })
    }
}

/// Seals and unseals keys. Implementations must never log or report key material.
pub trait KeySealer: Send + Sync {
    /// Which provider protects the blobs this sealer produces.
    fn provider(&self) -> KeyProvider;

    /// Seals `key` into an opaque blob that only this sealer (or one rebuilt from the same TPM
    /// or key file) can unseal.
    ///
    /// # Errors
    /// Fails when the backing TPM or key file cannot be used.
    fn seal(&self, key: &SecretKey) -> Result<Vec<u8>, KeyError>;

    /// Recovers the key from a blob made by [`KeySealer::seal`].
    ///
    /// # Errors
    /// [`KeyError::Unseal`] when the blob is damaged or was sealed by another TPM or key file;
    /// other variants when the backing TPM or key file cannot be used.
    fn unseal(&self, sealed: &[u8]) -> Result<SecretKey, KeyError>;
}

/// Boxed cause of a TPM failure; keeps this type the same with or without the `tpm` feature.
pub type TpmCause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of key sealing and master key management. Messages name the file or TPM involved and
/// the fix, and never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file is readable or writable by group or others.
    #[error(
        "key file {path} has mode {mode:o} and is accessible by group or others; \
         run `chmod 600 {path}` and check who may have copied it"
    )]
    KeyFileInsecure {
        /// The offending file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// A key file or sealed key file has the wrong size or layout.
    #[error(
        "key file {path} is malformed ({what}); restore it from a backup, since a new key would \
         leave existing vaults unreadable"
    )]
    KeyFileMalformed {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it, without its content.
        what: String,
    },

    /// Reading, writing or syncing a key file or directory failed.
    #[error("I/O error on {path}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// No usable TPM at the configured TCTI.
    #[error(
        "no usable TPM at TCTI `{tcti}`; check that the TPM device or swtpm is running and that \
         the service user may open it"
    )]
    TpmUnavailable {
        /// The TCTI string that was tried.
        tcti: String,
        /// Why the TPM could not be used.
        #[source]
        source: TpmCause,
    },

    /// This build has no TPM support.
    #[error(
        "this build has no TPM support (built without the `tpm` feature); install a build with \
         TPM support, or set keys.provider to software before the master key is first created"
    )]
    TpmSupportDisabled,

    /// A TPM command failed.
    #[error("TPM {op} failed")]
    Tpm {
        /// The command or step that failed, e.g. `create_primary`.
        op: &'static str,
        /// The TPM or TSS error.
        #[source]
        source: TpmCause,
    },

    /// A sealed blob failed its integrity check or could not be parsed.
    #[error(
        "sealed key could not be unsealed with the {provider} provider: it is damaged or was \
         sealed by a different TPM or key file"
    )]
    Unseal {
        /// The provider that tried to unseal.
        provider: KeyProvider,
    },

    /// The master key on disk is sealed with a different provider than the one configured.
    #[error(
        "the master key is sealed with the {sealed_with} provider but keys.provider is \
         {configured}; set keys.provider to {sealed_with} or auto (a new master key would leave \
         existing vaults unreadable)"
    )]
    ProviderMismatch {
        /// The provider recorded in the sealed master key file.
        sealed_with: KeyProvider,
        /// The provider the configuration asks for.
        configured: KeyProvider,
    },

    /// A key wrapping operation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl KeyError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
