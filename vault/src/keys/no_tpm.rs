//! Stand-in for the TPM sealer in builds without the `tpm` feature, so callers compile the same
//! way and learn at run time that TPM support is missing.

use std::convert::Infallible;

use crate::crypto::SecretKey;
use crate::keys::{KeyError, KeyProvider, KeySealer};

/// Stand-in for the TPM sealer in builds without the `tpm` feature; it cannot be created.
pub struct TpmSealer {
    never: Infallible,
}

impl TpmSealer {
    /// Always fails: this build has no TPM support.
    ///
    /// # Errors
    /// Always [`KeyError::TpmSupportDisabled`].
    pub fn connect(_tcti: &str) -> Result<Self, KeyError> {
        Err(KeyError::TpmSupportDisabled)
    }

    /// The TCTI string this sealer talks to.
    #[must_use]
    pub fn tcti(&self) -> &str {
        match self.never {}
    }
}

impl KeySealer for TpmSealer {
    fn provider(&self) -> KeyProvider {
        KeyProvider::Tpm
    }

    fn seal(&self, _key: &SecretKey) -> Result<Vec<u8>, KeyError> {
        match self.never {}
    }

    fn unseal(&self, _sealed: &[u8]) -> Result<SecretKey, KeyError> {
        match self.never {}
    }
}
