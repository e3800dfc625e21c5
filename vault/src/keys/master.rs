//! The node's master key: created once, sealed by the configured provider, and kept as
//! `master.sealed` in the keys directory. Every other key is wrapped under it, so losing it or
//! silently replacing it makes every vault unreadable; this module never overwrites an existing
//! sealed master key.
//!
//! `master.sealed` (format version 1, frozen) is JSON:
//! `{"version":1,"provider":"tpm"|"software","sealed":"<base64 of the sealer's blob>"}`.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::files::{ensure_private_dir, malformed, read_file, write_private_atomic};
use super::{KeyError, KeyProvider, KeyProviderChoice, KeySealer, SoftwareSealer, TpmSealer};
use crate::crypto::SecretKey;

/// File name of the sealed master key inside the keys directory.
const MASTER_FILE: &str = "master.sealed";

/// File name of the software provider's key-encryption key inside the keys directory.
const KEK_FILE: &str = "software.kek";

/// The kernel's TPM resource manager device, used when no TCTI is configured.
const TPM_DEVICE: &str = "/dev/tpmrm0";

/// Version of the `master.sealed` format. Frozen at 1 for the layout described above.
const FORMAT_VERSION: u32 = 1;

/// Upper bound on `master.sealed`; real files are well under 1 KiB.
const MAX_FILE_LEN: usize = 64 * 1024;

/// The unsealed master key and the provider that protects it at rest.
pub struct MasterKey {
    /// The key itself; wraps every other key of the node.
    pub key: SecretKey,
    /// The provider that sealed it.
    pub provider: KeyProvider,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("key", &"<hidden>")
            .field("provider", &self.provider)
            .finish()
    }
}

/// What `master.sealed` holds.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedFile {
    version: u32,
    provider: KeyProvider,
    sealed: String,
}

/// Loads the master key sealed in `keys_dir`, or creates, seals and stores a new one.
///
/// An existing `master.sealed` is always unsealed with the provider it records; `choice` only
/// decides the provider of a new key. For the TPM, `tcti` defaults to `device:/dev/tpmrm0`;
/// under [`KeyProviderChoice::Auto`] without a `tcti`, the TPM is tried only if that device
/// exists, and the software provider is used otherwise, with a warning.
///
/// # Errors
/// [`KeyError::ProviderMismatch`] if `choice` names a provider other than the recorded one;
/// [`KeyError::Unseal`] if the sealed key is damaged or belongs to another TPM or key file;
/// [`KeyError::KeyFileMalformed`] or [`KeyError::KeyFileInsecure`] for bad files; TPM errors
/// if the TPM is required but unusable; [`KeyError::Io`] if files cannot be read or written.
pub fn load_or_create_master_key(
    keys_dir: &Path,
    choice: KeyProviderChoice,
    tcti: Option<&str>,
) -> Result<MasterKey, KeyError> {
    let path = keys_dir.join(MASTER_FILE);
    if let Some(file) = read_sealed_file(&path)? {
        return unseal_existing(keys_dir, &path, &file, choice, tcti);
    }

    ensure_private_dir(keys_dir)?;
    let key = SecretKey::generate();
    let (provider, sealed) = seal_new(keys_dir, &key, choice, tcti)?;
    write_sealed_file(&path, provider, &sealed)?;
    tracing::info!(%provider, path = %path.display(), "created and sealed a new master key");

    Ok(MasterKey { key, provider })
}

fn unseal_existing(
    keys_dir: &Path,
    path: &Path,
    file: &SealedFile,
    choice: KeyProviderChoice,
    tcti: Option<&str>,
) -> Result<MasterKey, KeyError> {
    let sealed_with = file.provider;
    if let Some(configured) = choice.explicit()
        && configured != sealed_with
    {
        return Err(KeyError::ProviderMismatch {
            sealed_with,
            configured,
        });
    }
    let sealed = BASE64
        .decode(&file.sealed)
        .map_err(|_| malformed(path, "the sealed key is not valid base64"))?;

    let key = match sealed_with {
        KeyProvider::Tpm => TpmSealer::connect(tcti.unwrap_or(&default_tcti()))?.unseal(&sealed)?,
        KeyProvider::Software => {
            let sealer = SoftwareSealer::open(&keys_dir.join(KEK_FILE))?;
            warn_software_only(sealer.path());
            sealer.unseal(&sealed)?
        }
    };
    tracing::info!(provider = %sealed_with, path = %path.display(), "unsealed the master key");

    Ok(MasterKey {
        key,
        provider: sealed_with,
    })
}

/// Seals a new master key with the provider `choice` calls for.
fn seal_new(
    keys_dir: &Path,
    key: &SecretKey,
    choice: KeyProviderChoice,
    tcti: Option<&str>,
) -> Result<(KeyProvider, Vec<u8>), KeyError> {
    let kek_path = keys_dir.join(KEK_FILE);
    match choice {
        KeyProviderChoice::Tpm => {
            let sealer = TpmSealer::connect(tcti.unwrap_or(&default_tcti()))?;
            seal_checked(&sealer, key)
        }
        KeyProviderChoice::Software => seal_software(&kek_path, key),
        KeyProviderChoice::Auto => match try_tpm(key, tcti) {
            Some(sealed) => Ok(sealed),
            None => seal_software(&kek_path, key),
        },
    }
}

fn seal_software(kek_path: &Path, key: &SecretKey) -> Result<(KeyProvider, Vec<u8>), KeyError> {
    let sealer = SoftwareSealer::open_or_create(kek_path)?;
    warn_software_only(sealer.path());
    seal_checked(&sealer, key)
}

/// Under `auto`: seals with the TPM if one is configured or present; `None` to fall back.
fn try_tpm(key: &SecretKey, tcti: Option<&str>) -> Option<(KeyProvider, Vec<u8>)> {
    let tcti = match tcti {
        Some(tcti) => tcti.to_owned(),
        None if Path::new(TPM_DEVICE).exists() => default_tcti(),
        None => {
            tracing::debug!(device = TPM_DEVICE, "no TPM device and no TCTI configured");
            return None;
        }
    };

    match TpmSealer::connect(&tcti).and_then(|sealer| seal_checked(&sealer, key)) {
        Ok(sealed) => Some(sealed),
        Err(e) => {
            tracing::warn!(%tcti, error = %error_chain(&e), "TPM not usable for the master key");
            None
        }
    }
}

/// Seals `key` and unseals the result once before it is stored, so a TPM or key file that
/// cannot give the key back is caught now and not at the next start.
fn seal_checked(
    sealer: &dyn KeySealer,
    key: &SecretKey,
) -> Result<(KeyProvider, Vec<u8>), KeyError> {
    let sealed = sealer.seal(key)?;
    if sealer.unseal(&sealed)? != *key {
        return Err(KeyError::Unseal {
            provider: sealer.provider(),
        });
    }
    Ok((sealer.provider(), sealed))
}

fn warn_software_only(kek_path: &Path) {
    tracing::warn!(
        key_file = %kek_path.display(),
        "no TPM in use: the master key is protected only by a key file readable by the service \
         user; anyone who can read that file and master.sealed can decrypt every vault"
    );
}

fn read_sealed_file(path: &Path) -> Result<Option<SealedFile>, KeyError> {
    let Some(bytes) = read_file(path, MAX_FILE_LEN)? else {
        return Ok(None);
    };
    if bytes.len() > MAX_FILE_LEN {
        return Err(malformed(path, format!("larger than {MAX_FILE_LEN} bytes")));
    }

    let file: SealedFile = serde_json::from_slice(&bytes)
        .map_err(|e| malformed(path, format!("not a sealed master key file: {e}")))?;
    if file.version != FORMAT_VERSION {
        return Err(malformed(
            path,
            format!("unsupported format version {}", file.version),
        ));
    }
    Ok(Some(file))
}

fn write_sealed_file(path: &Path, provider: KeyProvider, sealed: &[u8]) -> Result<(), KeyError> {
    let file = SealedFile {
        version: FORMAT_VERSION,
        provider,
        sealed: BASE64.encode(sealed),
    };
    let mut json = serde_json::to_vec(&file)
        .expect("a struct of an integer, a unit enum and a string always serializes");
    json.push(b'\n');
    write_private_atomic(path, &json)
}

fn default_tcti() -> String {
    format!("device:{TPM_DEVICE}")
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn software(dir: &Path) -> Result<MasterKey, KeyError> {
        load_or_create_master_key(dir, KeyProviderChoice::Software, None)
    }

    fn err_of(result: Result<MasterKey, KeyError>) -> KeyError {
        match result {
            Ok(master) => panic!("expected an error, got {master:?}"),
            Err(e) => e,
        }
    }

    fn rewrite_sealed(dir: &Path, edit: impl FnOnce(&mut SealedFile)) {
        let path = dir.join(MASTER_FILE);
        let mut file: SealedFile = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        edit(&mut file);
        fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    }

    #[test]
    fn software_master_key_survives_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");

        let first = software(&dir).unwrap();
        let second = software(&dir).unwrap();
        let auto = load_or_create_master_key(&dir, KeyProviderChoice::Auto, None).unwrap();

        assert_eq!(first.provider, KeyProvider::Software);
        assert!(first.key == second.key && first.key == auto.key);
        let mode = |name| fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(MASTER_FILE), mode(KEK_FILE)), (0o600, 0o600));
        assert!(!dir.join("master.sealed.tmp").exists());
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join(MASTER_FILE)).unwrap()).unwrap();
        assert_eq!(
            (&json["version"], &json["provider"]),
            (&1.into(), &"software".into())
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let tmp = tempfile::tempdir().unwrap();
        let master = software(tmp.path()).unwrap();

        let shown = format!("{master:?}");

        assert!(
            !shown.contains(&hex::encode(master.key.expose_secret())),
            "{shown}"
        );
        assert!(shown.contains("Software"), "{shown}");
    }

    #[test]
    fn tampered_sealed_key_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        software(tmp.path()).unwrap();
        rewrite_sealed(tmp.path(), |file| {
            let mut sealed = BASE64.decode(&file.sealed).unwrap();
            sealed[20] ^= 0x01;
            file.sealed = BASE64.encode(sealed);
        });

        let err = err_of(software(tmp.path()));

        assert!(matches!(err, KeyError::Unseal { .. }), "{err:?}");
    }

    #[test]
    fn garbled_or_unknown_sealed_file_is_refused_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        software(tmp.path()).unwrap();
        let path = tmp.path().join(MASTER_FILE);
        rewrite_sealed(tmp.path(), |file| file.version = 2);

        let newer = err_of(software(tmp.path()));
        fs::write(&path, b"{\"version\":1,").unwrap();
        let garbled = err_of(software(tmp.path()));

        assert!(
            matches!(newer, KeyError::KeyFileMalformed { .. }),
            "{newer:?}"
        );
        assert!(
            matches!(garbled, KeyError::KeyFileMalformed { .. }),
            "{garbled:?}"
        );
        assert_eq!(
            fs::read(&path).unwrap(),
            b"{\"version\":1,",
            "never replaced"
        );
    }

    #[test]
    fn explicit_other_provider_is_a_mismatch() {
        let tmp = tempfile::tempdir().unwrap();
        software(tmp.path()).unwrap();
        let before = fs::read(tmp.path().join(MASTER_FILE)).unwrap();

        let err = err_of(load_or_create_master_key(
            tmp.path(),
            KeyProviderChoice::Tpm,
            None,
        ));

        let KeyError::ProviderMismatch {
            sealed_with,
            configured,
        } = err
        else {
            panic!("expected a provider mismatch, got {err:?}");
        };
        assert_eq!(
            (sealed_with, configured),
            (KeyProvider::Software, KeyProvider::Tpm)
        );
        assert_eq!(fs::read(tmp.path().join(MASTER_FILE)).unwrap(), before);
    }

    #[test]
    fn missing_key_file_is_not_recreated() {
        let tmp = tempfile::tempdir().unwrap();
        software(tmp.path()).unwrap();
        fs::remove_file(tmp.path().join(KEK_FILE)).unwrap();

        let err = err_of(software(tmp.path()));

        assert!(matches!(err, KeyError::Io { .. }), "{err:?}");
        assert!(!tmp.path().join(KEK_FILE).exists());
    }

    #[cfg(feature = "tpm")]
    #[test]
    fn auto_falls_back_to_software_when_tpm_unreachable() {
        let tmp = tempfile::tempdir().unwrap();
        let port = super::super::test_swtpm::free_port_pair();
        let tcti = format!("swtpm:host=127.0.0.1,port={port}");

        let master =
            load_or_create_master_key(tmp.path(), KeyProviderChoice::Auto, Some(&tcti)).unwrap();

        assert_eq!(master.provider, KeyProvider::Software);
    }

    #[cfg(feature = "tpm")]
    mod with_swtpm {
        use super::*;
        use crate::keys::test_swtpm::Swtpm;

        #[test]
        fn tpm_master_key_round_trips() {
            let tpm = Swtpm::start();
            let tmp = tempfile::tempdir().unwrap();
            let tcti = tpm.tcti();
            let load = |choice| load_or_create_master_key(tmp.path(), choice, Some(&tcti));

            let first = load(KeyProviderChoice::Tpm).unwrap();
            let second = load(KeyProviderChoice::Tpm).unwrap();
            let auto = load(KeyProviderChoice::Auto).unwrap();
            let mismatch = err_of(load(KeyProviderChoice::Software));

            assert_eq!(first.provider, KeyProvider::Tpm);
            assert!(first.key == second.key && first.key == auto.key);
            assert!(
                !tmp.path().join(KEK_FILE).exists(),
                "no software key file for a TPM key"
            );
            assert!(
                matches!(mismatch, KeyError::ProviderMismatch { .. }),
                "{mismatch:?}"
            );
        }

        #[test]
        fn auto_prefers_a_reachable_tpm() {
            let tpm = Swtpm::start();
            let tmp = tempfile::tempdir().unwrap();

            let master =
                load_or_create_master_key(tmp.path(), KeyProviderChoice::Auto, Some(&tpm.tcti()))
                    .unwrap();

            assert_eq!(master.provider, KeyProvider::Tpm);
        }

        #[test]
        fn tpm_master_key_survives_tpm_restart() {
            let mut tpm = Swtpm::start();
            let tmp = tempfile::tempdir().unwrap();
            let load = |tcti: &str| {
                load_or_create_master_key(tmp.path(), KeyProviderChoice::Tpm, Some(tcti))
            };
            let first = load(&tpm.tcti()).unwrap();

            tpm.restart();

            assert!(load(&tpm.tcti()).unwrap().key == first.key);
        }
    }
}
