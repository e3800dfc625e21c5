//! The software key sealer: a key-encryption key kept in a file that only the service user can
//! read. It protects the master key against theft of the sealed blob alone, not against anyone
//! who can read the key file, so it is the fallback for machines without a TPM and the sealer
//! used by tests and CI.

use std::io;
use std::path::{Path, PathBuf};

use super::files::{ensure_private_dir, malformed, read_private_file, write_private_atomic};
use super::{KeyError, KeyProvider, KeySealer};
use crate::crypto::{CryptoError, SecretKey, unwrap_key, wrap_key};

/// Length of the key-encryption key file in bytes.
const KEK_LEN: usize = 32;

/// Context bound into every blob this sealer makes. Frozen: changing it makes every master key
/// sealed so far unreadable.
const WRAP_CONTEXT: &[u8] = b"vh master key v1";

/// Seals keys by wrapping them under a key-encryption key read from a private file.
pub struct SoftwareSealer {
    kek: SecretKey,
    path: PathBuf,
}

impl SoftwareSealer {
    /// Opens the key file at `key_file`, or creates it (mode 0600, parent directory 0700) with a
    /// fresh random key if it does not exist.
    ///
    /// # Errors
    /// [`KeyError::KeyFileInsecure`] if group or others have any access to an existing file,
    /// [`KeyError::KeyFileMalformed`] if it is not exactly 32 bytes, [`KeyError::Io`] if it
    /// cannot be read or created.
    pub fn open_or_create(key_file: &Path) -> Result<Self, KeyError> {
        if let Some(sealer) = Self::try_open(key_file)? {
            return Ok(sealer);
        }

        if let Some(dir) = key_file.parent().filter(|d| !d.as_os_str().is_empty()) {
            ensure_private_dir(dir)?;
        }
        let kek = SecretKey::generate();
        write_private_atomic(key_file, kek.expose_secret())?;
        tracing::info!(path = %key_file.display(), "created software key-encryption key file");

        Ok(Self {
            kek,
            path: key_file.to_owned(),
        })
    }

    /// Opens an existing key file, without creating one: a missing key file next to an existing
    /// sealed key means the key file was lost, and a new one could not unseal anything.
    ///
    /// # Errors
    /// As [`SoftwareSealer::open_or_create`], plus [`KeyError::Io`] if the file does not exist.
    pub fn open(key_file: &Path) -> Result<Self, KeyError> {
        Self::try_open(key_file)?.ok_or_else(|| {
            KeyError::io(
                key_file,
                io::Error::new(io::ErrorKind::NotFound, "key file not found"),
            )
        })
    }

    /// Opens an existing key file; `Ok(None)` if there is none.
    fn try_open(key_file: &Path) -> Result<Option<Self>, KeyError> {
        let Some(bytes) = read_private_file(key_file, KEK_LEN)? else {
            return Ok(None);
        };
        if bytes.len() != KEK_LEN {
            let what = format!("{} bytes long, expected {KEK_LEN}", bytes.len());
            return Err(malformed(key_file, what));
        }

        let kek = SecretKey::try_from_slice(&bytes)?;
        Ok(Some(Self {
            kek,
            path: key_file.to_owned(),
        }))
    }

    /// The key file this sealer uses.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl KeySealer for SoftwareSealer {
    fn provider(&self) -> KeyProvider {
        KeyProvider::Software
    }

    fn seal(&self, key: &SecretKey) -> Result<Vec<u8>, KeyError> {
        Ok(wrap_key(&self.kek, key, WRAP_CONTEXT))
    }

    fn unseal(&self, sealed: &[u8]) -> Result<SecretKey, KeyError> {
        unwrap_key(&self.kek, sealed, WRAP_CONTEXT).map_err(|e| match e {
            // A wrong key file and a damaged blob look the same: report both as a failed unseal.
            CryptoError::IntegrityCheckFailed | CryptoError::Malformed { .. } => KeyError::Unseal {
                provider: KeyProvider::Software,
            },
            CryptoError::UnsupportedVersion { .. } | CryptoError::BadKeyLength { .. } => {
                KeyError::Crypto(e)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_private_key_file_and_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        let file = dir.join("software.kek");

        SoftwareSealer::open_or_create(&file).unwrap();

        assert_eq!(mode_of(&dir), 0o700);
        assert_eq!(mode_of(&file), 0o600);
        assert_eq!(fs::read(&file).unwrap().len(), KEK_LEN);
    }

    #[test]
    fn round_trip_survives_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("software.kek");
        let key = SecretKey::generate();

        let sealed = SoftwareSealer::open_or_create(&file)
            .unwrap()
            .seal(&key)
            .unwrap();
        let reopened = SoftwareSealer::open_or_create(&file).unwrap();

        assert_eq!(reopened.provider(), KeyProvider::Software);
        assert!(reopened.unseal(&sealed).unwrap() == key);
    }

    #[test]
    fn refuses_key_file_readable_by_others() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("software.kek");
        SoftwareSealer::open_or_create(&file).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();

        let Err(err) = SoftwareSealer::open_or_create(&file) else {
            panic!("a world-readable key file was accepted");
        };

        assert!(
            matches!(err, KeyError::KeyFileInsecure { mode: 0o644, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("chmod 600 {}", file.display())),
            "{msg}"
        );
    }

    #[test]
    fn refuses_key_file_of_wrong_length() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("software.kek");
        fs::write(&file, [7u8; 31]).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();

        let Err(err) = SoftwareSealer::open_or_create(&file) else {
            panic!("a 31-byte key file was accepted");
        };

        assert!(matches!(err, KeyError::KeyFileMalformed { .. }), "{err:?}");
        assert_eq!(
            fs::read(&file).unwrap(),
            [7u8; 31],
            "the bad file must be left alone"
        );
    }

    #[test]
    fn other_key_file_cannot_unseal() {
        let tmp = tempfile::tempdir().unwrap();
        let a = SoftwareSealer::open_or_create(&tmp.path().join("a.kek")).unwrap();
        let b = SoftwareSealer::open_or_create(&tmp.path().join("b.kek")).unwrap();

        let sealed = a.seal(&SecretKey::generate()).unwrap();

        assert!(matches!(b.unseal(&sealed), Err(KeyError::Unseal { .. })));
    }

    #[test]
    fn tampered_blob_fails_to_unseal() {
        let tmp = tempfile::tempdir().unwrap();
        let sealer = SoftwareSealer::open_or_create(&tmp.path().join("s.kek")).unwrap();
        let mut sealed = sealer.seal(&SecretKey::generate()).unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 0x01;

        assert!(matches!(
            sealer.unseal(&sealed),
            Err(KeyError::Unseal { .. })
        ));
        assert!(matches!(sealer.unseal(&[]), Err(KeyError::Unseal { .. })));
    }
}
