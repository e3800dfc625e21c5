//! Vaults, bucket bindings and gateway credentials: the things an operator manages.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rand::Rng;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Engine;
use crate::crypto::{open_bytes, seal_bytes};
use crate::error::VaultError;
use crate::ids::VaultId;
use crate::meta::catalog::{self, BucketRow, CredentialRow, VaultRow};
use crate::meta::{entries, now_ms};
use crate::names::{check_bucket_name, check_plain_name};

/// Length of the random part of an access key (after `VH`).
const ACCESS_KEY_RANDOM_LEN: usize = 24;
/// Length of a secret access key, as AWS's.
const SECRET_LEN: usize = 40;
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A secret access key in memory: wiped on drop, never printed, compared in constant time.
#[derive(Clone)]
pub struct Secret(Arc<Zeroizing<String>>);

impl Secret {
    /// The secret's text, for signing and for showing once at creation.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

/// A credential just created: the only moment its secret is known outside the node.
#[derive(Debug)]
pub struct NewCredential {
    /// `VH` followed by 24 base32 characters.
    pub access_key: String,
    /// 40 characters; shown once.
    pub secret: Secret,
    /// The operator's name for it.
    pub name: String,
}

/// An active credential's unsealed secret and when it stops working.
struct CachedCredential {
    secret: Secret,
    expires_ms: Option<i64>,
}

/// What the engine keeps in memory about gateway credentials.
///
/// `secrets` holds the unsealed secrets of active credentials, so a request does not pay a
/// database read and an unseal; revocation goes through the engine, which drops the entry in the
/// same step, and expiry is checked on every lookup. `last_used` records when each credential
/// last resolved, so the request path never writes to the database: the daemon flushes it
/// periodically ([`Engine::flush_credential_use`]), and listing or showing credentials flushes it
/// first.
#[derive(Default)]
pub(crate) struct CredentialCache {
    secrets: RwLock<HashMap<String, CachedCredential>>,
    last_used: Mutex<HashMap<String, i64>>,
}

fn secret_context(access_key: &str) -> Vec<u8> {
    format!("vh credential {access_key}").into_bytes()
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

impl Engine {
    /// Creates a vault with a fresh data key, shown in the FUSE mount.
    ///
    /// # Errors
    /// `InvalidName`, `VaultExists`, or a storage failure.
    pub fn create_vault(&self, name: &str) -> Result<VaultRow, VaultError> {
        self.create_vault_with(name, true)
    }

    /// Creates a vault with a fresh data key; `mounted` says whether the FUSE mount shows it.
    /// The flag is set in the same transaction, so a hidden vault never appears in the mount.
    ///
    /// # Errors
    /// `InvalidName`, `VaultExists`, or a storage failure.
    pub fn create_vault_with(&self, name: &str, mounted: bool) -> Result<VaultRow, VaultError> {
        check_plain_name(name)?;
        self.meta
            .write(|tx| self.insert_vault_with_key(tx, name, mounted))
    }

    /// Inserts a vault, its root directory and its first data key.
    fn insert_vault_with_key(
        &self,
        tx: &rusqlite::Transaction<'_>,
        name: &str,
        mounted: bool,
    ) -> Result<VaultRow, VaultError> {
        let (mut vault, _root) = catalog::insert_vault(tx, name)?;
        let (version, wrapped) = self.keyring.new_vault_key(vault.id);
        catalog::insert_vault_key(tx, vault.id, version, &wrapped)?;
        if !mounted {
            catalog::set_vault_mounted(tx, vault.id, false)?;
            vault.mounted = false;
        }
        Ok(vault)
    }

    /// Shows (`true`) or hides a vault in the FUSE mount. A running mount learns of it through
    /// its owner, which tells the kernel to forget the top-level directory it cached.
    ///
    /// # Errors
    /// `NoSuchVault`, or a metadata failure.
    pub fn set_vault_mounted(&self, id: VaultId, mounted: bool) -> Result<VaultRow, VaultError> {
        self.meta.write(|tx| {
            catalog::set_vault_mounted(tx, id, mounted)?;
            catalog::vault_by_id(tx, id)?.ok_or_else(|| VaultError::NoSuchVault(id.to_string()))
        })
    }

    /// Every vault.
    ///
    /// # Errors
    /// A metadata failure.
    pub fn list_vaults(&self) -> Result<Vec<VaultRow>, VaultError> {
        self.meta.read(|conn| Ok(catalog::vaults(conn)?))
    }

    /// The vault named (or numbered) `name_or_id`.
    ///
    /// # Errors
    /// `NoSuchVault`.
    pub fn find_vault(&self, name_or_id: &str) -> Result<VaultRow, VaultError> {
        self.meta.read(|conn| {
            let by_name = catalog::vault_by_name(conn, name_or_id)?;
            let found = match (by_name, name_or_id.parse::<i64>()) {
                (Some(vault), _) => Some(vault),
                (None, Ok(id)) => catalog::vault_by_id(conn, VaultId(id))?,
                (None, Err(_)) => None,
            };
            found.ok_or_else(|| VaultError::NoSuchVault(name_or_id.to_owned()))
        })
    }

    /// Deletes a vault and all its content. A vault bound to a bucket is refused.
    ///
    /// # Errors
    /// `NoSuchVault`, `VaultInUse`.
    pub fn delete_vault(&self, id: VaultId) -> Result<(), VaultError> {
        self.remove_vault(id, false).map(drop)
    }

    /// Unbinds every bucket served by a vault, then deletes the vault and all its content, in
    /// one transaction. Returns the buckets that were unbound.
    ///
    /// # Errors
    /// `NoSuchVault`.
    pub fn delete_vault_and_unbind(&self, id: VaultId) -> Result<Vec<BucketRow>, VaultError> {
        self.remove_vault(id, true)
    }

    fn remove_vault(&self, id: VaultId, unbind: bool) -> Result<Vec<BucketRow>, VaultError> {
        let unbound = self.meta.write(|tx| {
            if catalog::vault_by_id(tx, id)?.is_none() {
                return Err(VaultError::NoSuchVault(id.to_string()));
            }
            let bound = catalog::buckets_of_vault(tx, id)?;
            if let (false, Some(bucket)) = (unbind, bound.first()) {
                return Err(VaultError::VaultInUse {
                    vault: id,
                    bucket: bucket.name.clone(),
                });
            }
            for bucket in &bound {
                catalog::delete_bucket(tx, &bucket.name)?;
            }
            catalog::delete_vault(tx, id)?;
            Ok(bound)
        })?;
        self.keyring.forget_vault(id);
        self.collect_garbage()?;
        Ok(unbound)
    }

    /// Gives a vault a new name; its buckets keep serving it.
    ///
    /// # Errors
    /// `InvalidName`, `NoSuchVault`, `VaultExists`.
    pub fn rename_vault(&self, id: VaultId, new_name: &str) -> Result<VaultRow, VaultError> {
        check_plain_name(new_name)?;
        self.meta.write(|tx| {
            let row = catalog::vault_by_id(tx, id)?
                .ok_or_else(|| VaultError::NoSuchVault(id.to_string()))?;
            catalog::rename_vault(tx, id, new_name)?;
            Ok(VaultRow {
                name: new_name.to_owned(),
                ..row
            })
        })
    }

    /// How many objects (files) a vault holds and their total size in bytes.
    ///
    /// # Errors
    /// A metadata failure.
    pub fn vault_usage(&self, id: VaultId) -> Result<(u64, u64), VaultError> {
        self.meta
            .read(|conn| Ok::<_, VaultError>(catalog::vault_usage(conn, id)?))
    }

    /// Creates a bucket on a new vault of the same name, shown in the FUSE mount.
    ///
    /// # Errors
    /// `InvalidBucketName`, `BucketExists`, `VaultExists`.
    pub fn create_local_bucket(
        &self,
        name: &str,
        api_exclusive: bool,
    ) -> Result<BucketRow, VaultError> {
        self.create_local_bucket_with(name, api_exclusive, true)
    }

    /// Creates a bucket on a new vault of the same name; `mounted` says whether the FUSE mount
    /// shows the vault.
    ///
    /// # Errors
    /// `InvalidBucketName`, `BucketExists`, `VaultExists`.
    pub fn create_local_bucket_with(
        &self,
        name: &str,
        api_exclusive: bool,
        mounted: bool,
    ) -> Result<BucketRow, VaultError> {
        check_bucket_name(name)?;
        self.meta.write(|tx| {
            if catalog::bucket(tx, name)?.is_some() {
                return Err(VaultError::BucketExists(name.to_owned()));
            }
            let vault = self.insert_vault_with_key(tx, name, mounted)?;
            let row = BucketRow {
                name: name.to_owned(),
                vault: vault.id,
                mode: "local".to_owned(),
                api_exclusive,
                owns_vault: true,
                created_ms: now_ms(),
            };
            catalog::insert_bucket(tx, &row)?;
            Ok(row)
        })
    }

    /// Serves an existing vault as a bucket.
    ///
    /// # Errors
    /// `InvalidBucketName`, `BucketExists`, `NoSuchVault`.
    pub fn bind_bucket(
        &self,
        name: &str,
        vault: VaultId,
        mode: &str,
        api_exclusive: bool,
    ) -> Result<BucketRow, VaultError> {
        check_bucket_name(name)?;
        self.meta.write(|tx| {
            if catalog::vault_by_id(tx, vault)?.is_none() {
                return Err(VaultError::NoSuchVault(vault.to_string()));
            }
            let row = BucketRow {
                name: name.to_owned(),
                vault,
                mode: mode.to_owned(),
                api_exclusive,
                owns_vault: false,
                created_ms: now_ms(),
            };
            catalog::insert_bucket(tx, &row)?;
            Ok(row)
        })
    }

    /// Sets whether only the gateway may write into a bucket's vault. A running mount learns of
    /// it through its owner, as for [`Engine::set_vault_mounted`].
    ///
    /// # Errors
    /// `NoSuchBucket`, or a metadata failure.
    pub fn set_bucket_api_exclusive(
        &self,
        name: &str,
        api_exclusive: bool,
    ) -> Result<BucketRow, VaultError> {
        self.meta.write(|tx| {
            catalog::set_bucket_api_exclusive(tx, name, api_exclusive)?;
            catalog::bucket(tx, name)?.ok_or_else(|| VaultError::NoSuchBucket(name.to_owned()))
        })
    }

    /// Removes a bucket binding and keeps its vault and data.
    ///
    /// # Errors
    /// `NoSuchBucket`.
    pub fn unbind_bucket(&self, name: &str) -> Result<BucketRow, VaultError> {
        self.meta.write(|tx| {
            let row = catalog::bucket(tx, name)?
                .ok_or_else(|| VaultError::NoSuchBucket(name.to_owned()))?;
            catalog::delete_bucket(tx, name)?;
            Ok(row)
        })
    }

    /// Deletes an empty bucket, and its vault when the bucket created it (S3 DeleteBucket).
    ///
    /// # Errors
    /// `NoSuchBucket`, `BucketNotEmpty`.
    pub fn delete_bucket(&self, name: &str) -> Result<(), VaultError> {
        let row = self.meta.write(|tx| {
            let row = catalog::bucket(tx, name)?
                .ok_or_else(|| VaultError::NoSuchBucket(name.to_owned()))?;
            if !entries::is_empty(tx, row.vault)? {
                return Err(VaultError::BucketNotEmpty(name.to_owned()));
            }
            catalog::delete_bucket(tx, name)?;
            if row.owns_vault && catalog::buckets_of_vault(tx, row.vault)?.is_empty() {
                catalog::delete_vault(tx, row.vault)?;
            }
            Ok(row)
        })?;
        if row.owns_vault {
            self.keyring.forget_vault(row.vault);
        }
        Ok(())
    }

    /// The bucket called `name`.
    ///
    /// # Errors
    /// `NoSuchBucket`.
    pub fn bucket(&self, name: &str) -> Result<BucketRow, VaultError> {
        self.meta
            .read(|conn| Ok::<_, VaultError>(catalog::bucket(conn, name)?))?
            .ok_or_else(|| VaultError::NoSuchBucket(name.to_owned()))
    }

    /// Every bucket, by name.
    ///
    /// # Errors
    /// A metadata failure.
    pub fn list_buckets(&self) -> Result<Vec<BucketRow>, VaultError> {
        self.meta.read(|conn| Ok(catalog::buckets(conn)?))
    }

    /// Creates a gateway credential that never expires; its secret is returned here and never
    /// again.
    ///
    /// # Errors
    /// `InvalidName`, or a storage failure.
    pub fn create_credential(&self, name: &str) -> Result<NewCredential, VaultError> {
        self.create_credential_with(name, None, None)
    }

    /// Creates a gateway credential with a description and an expiry time (milliseconds since
    /// the epoch); its secret is returned here and never again.
    ///
    /// # Errors
    /// `InvalidName`, or a storage failure.
    pub fn create_credential_with(
        &self,
        name: &str,
        description: Option<&str>,
        expires_ms: Option<i64>,
    ) -> Result<NewCredential, VaultError> {
        check_plain_name(name)?;
        let (key_version, gateway_key) = self.keyring.gateway_key(&self.meta)?;
        let access_key = format!("VH{}", random_string(BASE32, ACCESS_KEY_RANDOM_LEN));
        let secret = Zeroizing::new(random_string(SECRET_ALPHABET, SECRET_LEN));
        let row = CredentialRow {
            secret_sealed: seal_bytes(
                &gateway_key,
                secret.as_bytes(),
                &secret_context(&access_key),
            ),
            access_key: access_key.clone(),
            name: name.to_owned(),
            key_version,
            created_ms: now_ms(),
            revoked_ms: None,
            description: description.map(str::to_owned),
            expires_ms,
            last_used_ms: None,
        };
        self.meta
            .write(|tx| Ok::<_, VaultError>(catalog::insert_credential(tx, &row)?))?;
        Ok(NewCredential {
            access_key,
            secret: Secret(Arc::new(secret)),
            name: name.to_owned(),
        })
    }

    /// Every credential, revoked and expired ones included, without secrets; last-use times are
    /// flushed first so they are current.
    ///
    /// # Errors
    /// A metadata failure.
    pub fn list_credentials(&self) -> Result<Vec<CredentialRow>, VaultError> {
        self.flush_credential_use()?;
        self.meta.read(|conn| Ok(catalog::credentials(conn)?))
    }

    /// One credential, without its secret, with a current last-use time.
    ///
    /// # Errors
    /// `NoSuchCredential`, or a metadata failure.
    pub fn credential(&self, access_key: &str) -> Result<CredentialRow, VaultError> {
        self.flush_credential_use()?;
        self.meta
            .read(|conn| Ok::<_, VaultError>(catalog::credential(conn, access_key)?))?
            .ok_or_else(|| VaultError::NoSuchCredential(access_key.to_owned()))
    }

    /// Writes the last-use times recorded in memory since the previous flush, in one
    /// transaction. On failure they stay in memory for the next try.
    ///
    /// # Errors
    /// A metadata failure.
    pub fn flush_credential_use(&self) -> Result<(), VaultError> {
        let pending: Vec<(String, i64)> = {
            let mut last_used = self.lock_last_used();
            std::mem::take(&mut *last_used).into_iter().collect()
        };
        if pending.is_empty() {
            return Ok(());
        }
        let written = self
            .meta
            .write(|tx| catalog::record_credential_use(tx, &pending));
        if let Err(err) = written {
            let mut last_used = self.lock_last_used();
            for (access_key, at) in pending {
                let slot = last_used.entry(access_key).or_insert(at);
                *slot = (*slot).max(at);
            }
            return Err(err.into());
        }
        Ok(())
    }

    fn lock_last_used(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.credentials
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Revokes a credential; its next request fails.
    ///
    /// # Errors
    /// `NoSuchCredential` when no active credential has this key.
    pub fn revoke_credential(&self, access_key: &str) -> Result<(), VaultError> {
        let revoked = self
            .meta
            .write(|tx| Ok::<_, VaultError>(catalog::revoke_credential(tx, access_key)?))?;
        self.credentials
            .secrets
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(access_key);
        if revoked {
            Ok(())
        } else {
            Err(VaultError::NoSuchCredential(access_key.to_owned()))
        }
    }

    /// The secret of an active credential, for verifying a request's signature. Notes the use
    /// in memory (see [`Engine::flush_credential_use`]); never writes to the database.
    ///
    /// # Errors
    /// `NoSuchCredential` for an unknown, revoked or expired key; a failure to open the sealed
    /// secret.
    pub fn credential_secret(&self, access_key: &str) -> Result<Secret, VaultError> {
        let now = now_ms();
        let secret = match self.cached_secret(access_key, now)? {
            Some(secret) => secret,
            None => self.load_secret(access_key, now)?,
        };
        let mut last_used = self.lock_last_used();
        match last_used.get_mut(access_key) {
            Some(at) => *at = (*at).max(now),
            None => {
                last_used.insert(access_key.to_owned(), now);
            }
        }
        Ok(secret)
    }

    /// The cached secret, `None` when it is not cached; an expired entry is dropped and refused.
    fn cached_secret(&self, access_key: &str, now: i64) -> Result<Option<Secret>, VaultError> {
        {
            let secrets = self
                .credentials
                .secrets
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            match secrets.get(access_key) {
                None => return Ok(None),
                Some(cached) if cached.expires_ms.is_none_or(|at| at > now) => {
                    return Ok(Some(cached.secret.clone()));
                }
                Some(_) => {}
            }
        }
        self.credentials
            .secrets
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(access_key);
        tracing::debug!(access_key, "gateway credential expired");
        Err(VaultError::NoSuchCredential(access_key.to_owned()))
    }

    /// Reads and unseals a usable credential's secret and caches it.
    fn load_secret(&self, access_key: &str, now: i64) -> Result<Secret, VaultError> {
        let row = self
            .meta
            .read(|conn| Ok::<_, VaultError>(catalog::credential(conn, access_key)?))?
            .filter(|row| row.is_usable(now))
            .ok_or_else(|| VaultError::NoSuchCredential(access_key.to_owned()))?;
        let (version, gateway_key) = self.keyring.gateway_key(&self.meta)?;
        if version != row.key_version {
            return Err(VaultError::NoSuchCredential(access_key.to_owned()));
        }
        let plain = open_bytes(
            &gateway_key,
            &row.secret_sealed,
            &secret_context(access_key),
        )?;
        let text = String::from_utf8(plain.to_vec())
            .map_err(|_| VaultError::NoSuchCredential(access_key.to_owned()))?;
        let secret = Secret(Arc::new(Zeroizing::new(text)));
        // Re-check under the write lock: a revocation that raced this lookup must win.
        let mut secrets = self
            .credentials
            .secrets
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let still_usable = self
            .meta
            .read(|conn| Ok::<_, VaultError>(catalog::credential(conn, access_key)?))?
            .is_some_and(|row| row.is_usable(now));
        if !still_usable {
            return Err(VaultError::NoSuchCredential(access_key.to_owned()));
        }
        secrets.insert(
            access_key.to_owned(),
            CachedCredential {
                secret: secret.clone(),
                expires_ms: row.expires_ms,
            },
        );
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::engine::EngineConfig;
    use crate::keys::KeyProviderChoice;
    use crate::meta::{ObjectAttrs, WriteCondition};
    use crate::path::ObjectKey;

    fn open(dir: &Path) -> Engine {
        Engine::open(&EngineConfig {
            data_dir: dir.to_owned(),
            key_provider: KeyProviderChoice::Software,
            tpm_tcti: None,
            part_dir: None,
        })
        .unwrap()
    }

    fn put(engine: &Engine, vault: VaultId, key: &str, data: &[u8]) {
        let mut writer = engine.begin_write(vault).unwrap();
        writer.write(data).unwrap();
        engine
            .commit_write(
                writer,
                &ObjectKey::parse(key).unwrap(),
                ObjectAttrs::default(),
                &WriteCondition::None,
            )
            .unwrap();
    }

    #[test]
    fn an_expired_credential_is_refused_even_when_its_secret_is_cached() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        let created = engine
            .create_credential_with("ci", Some("nightly job"), Some(now_ms() + 3_600_000))
            .unwrap();
        let key = &created.access_key;
        assert_eq!(engine.credential_secret(key).unwrap(), created.secret);
        // The secret is cached now; let its expiry pass without waiting for it.
        engine
            .credentials
            .secrets
            .write()
            .unwrap()
            .get_mut(key.as_str())
            .expect("cached after a lookup")
            .expires_ms = Some(now_ms() - 1);
        assert!(matches!(
            engine.credential_secret(key),
            Err(VaultError::NoSuchCredential(_))
        ));
        assert!(
            !engine
                .credentials
                .secrets
                .read()
                .unwrap()
                .contains_key(key.as_str()),
            "an expired secret leaves the cache"
        );

        let past = engine
            .create_credential_with("old", None, Some(now_ms() - 1))
            .unwrap();
        assert!(matches!(
            engine.credential_secret(&past.access_key),
            Err(VaultError::NoSuchCredential(_))
        ));
        let row = engine.credential(&past.access_key).unwrap();
        assert!(row.is_expired(now_ms()) && row.revoked_ms.is_none());
        let row = engine.credential(key).unwrap();
        assert_eq!(row.description.as_deref(), Some("nightly job"));
    }

    #[test]
    fn last_use_is_kept_in_memory_until_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        let created = engine.create_credential("laptop").unwrap();
        let key = &created.access_key;
        let stored = |engine: &Engine| {
            engine
                .meta
                .read(|conn| catalog::credential(conn, key))
                .unwrap()
                .unwrap()
                .last_used_ms
        };

        let before = now_ms();
        engine.credential_secret(key).unwrap();
        engine.credential_secret(key).unwrap();
        assert_eq!(stored(&engine), None, "a lookup does not write");

        engine.flush_credential_use().unwrap();
        let used = stored(&engine).expect("flushed");
        assert!(used >= before, "{used} < {before}");
        assert!(engine.lock_last_used().is_empty());

        engine.credential_secret(key).unwrap();
        let listed = engine.list_credentials().unwrap();
        assert!(listed[0].last_used_ms.is_some_and(|at| at >= used));
        assert!(engine.lock_last_used().is_empty(), "listing flushed");
        assert!(engine.credential("VHNOSUCHKEY").is_err());
    }

    #[test]
    fn vaults_are_shown_or_hidden_in_the_mount_from_creation_on() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        assert!(engine.create_vault("shown").unwrap().mounted);
        let hidden = engine.create_vault_with("hidden", false).unwrap();
        assert!(!hidden.mounted);
        assert!(!engine.find_vault("hidden").unwrap().mounted);
        let bucket = engine
            .create_local_bucket_with("quiet", true, false)
            .unwrap();
        assert!(!engine.find_vault("quiet").unwrap().mounted);
        assert!(bucket.api_exclusive);
        engine.create_local_bucket("loud", false).unwrap();
        assert!(engine.find_vault("loud").unwrap().mounted);

        let shown = engine.set_vault_mounted(hidden.id, true).unwrap();
        assert_eq!(
            (shown.id, shown.name.as_str(), shown.mounted),
            (hidden.id, "hidden", true)
        );
        let renamed = engine.rename_vault(hidden.id, "visible").unwrap();
        assert!(renamed.mounted, "a rename keeps the flag");
        assert!(!engine.set_vault_mounted(hidden.id, false).unwrap().mounted);
        let listed = engine.list_vaults().unwrap();
        let flags: Vec<(&str, bool)> = listed
            .iter()
            .map(|v| (v.name.as_str(), v.mounted))
            .collect();
        assert_eq!(
            flags,
            [
                ("shown", true),
                ("visible", false),
                ("quiet", false),
                ("loud", true)
            ]
        );
        assert!(matches!(
            engine.set_vault_mounted(VaultId(9999), true),
            Err(VaultError::NoSuchVault(_))
        ));
    }

    #[test]
    fn api_exclusivity_of_a_bucket_is_changed_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        let vault = engine.create_vault("docs").unwrap();
        let bound = engine
            .bind_bucket("docs", vault.id, "local", false)
            .unwrap();
        assert!(!bound.api_exclusive);

        let changed = engine.set_bucket_api_exclusive("docs", true).unwrap();
        assert_eq!((changed.name.as_str(), changed.vault), ("docs", vault.id));
        assert!(changed.api_exclusive && !changed.owns_vault);
        assert_eq!(changed.created_ms, bound.created_ms);
        assert!(engine.bucket("docs").unwrap().api_exclusive);
        assert!(
            !engine
                .set_bucket_api_exclusive("docs", false)
                .unwrap()
                .api_exclusive
        );
        assert!(!engine.bucket("docs").unwrap().api_exclusive);
        assert!(matches!(
            engine.set_bucket_api_exclusive("nosuch", true),
            Err(VaultError::NoSuchBucket(_))
        ));
    }

    #[test]
    fn vaults_are_renamed_measured_and_deleted_with_their_bindings() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        let vault = engine.create_vault("photos").unwrap();
        put(&engine, vault.id, "a.jpg", &[7; 1000]);
        put(&engine, vault.id, "dir/b.jpg", &[8; 24]);
        assert_eq!(engine.vault_usage(vault.id).unwrap(), (2, 1024));

        let renamed = engine.rename_vault(vault.id, "pictures").unwrap();
        assert_eq!((renamed.id, renamed.name.as_str()), (vault.id, "pictures"));
        assert_eq!(engine.find_vault("pictures").unwrap().id, vault.id);
        engine.create_vault("other").unwrap();
        assert!(matches!(
            engine.rename_vault(vault.id, "other"),
            Err(VaultError::VaultExists(_))
        ));
        assert!(matches!(
            engine.rename_vault(vault.id, "bad/name"),
            Err(VaultError::InvalidName { .. })
        ));

        engine
            .bind_bucket("pics", vault.id, "local", false)
            .unwrap();
        engine
            .bind_bucket("pics2", vault.id, "local", false)
            .unwrap();
        assert!(matches!(
            engine.delete_vault(vault.id),
            Err(VaultError::VaultInUse { .. })
        ));
        let unbound = engine.delete_vault_and_unbind(vault.id).unwrap();
        let names: Vec<&str> = unbound.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["pics", "pics2"]);
        assert!(engine.list_buckets().unwrap().is_empty());
        assert!(engine.find_vault("pictures").is_err());
        assert_eq!(engine.vault_usage(vault.id).unwrap(), (0, 0));
        let queued: i64 = engine
            .meta
            .read(|conn| {
                Ok::<_, VaultError>(
                    conn.query_row("SELECT COUNT(*) FROM blob_gc", [], |r| r.get(0))?,
                )
            })
            .unwrap();
        assert_eq!(queued, 0, "the vault's blobs were collected");
    }
}
