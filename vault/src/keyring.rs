//! The keyring: the unsealed master key and the data keys it unwraps.
//!
//! Vault data keys and the gateway's credential key are random 256-bit keys, stored in the
//! metadata database only wrapped by the master key, with the vault id and version bound as
//! associated data so a wrapped key can't be moved to another vault or version. Unwrapped keys
//! are cached for the life of the process and wiped when it drops them.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use crate::crypto::{SecretKey, unwrap_key, wrap_key};
use crate::error::VaultError;
use crate::ids::VaultId;
use crate::keys::MasterKey;
use crate::meta::MetaStore;
use crate::meta::catalog;

/// The node-wide key that seals gateway credential secrets.
const GATEWAY_KEY: &str = "gateway";

/// The master key and every data key unwrapped so far.
pub struct Keyring {
    master: MasterKey,
    vaults: RwLock<HashMap<VaultId, VaultKeys>>,
    gateway: RwLock<Option<(u32, SecretKey)>>,
}

struct VaultKeys {
    current: u32,
    by_version: BTreeMap<u32, SecretKey>,
}

fn vault_key_context(vault: VaultId, version: u32) -> Vec<u8> {
    format!("vh vault key {vault} v{version}").into_bytes()
}

fn node_key_context(name: &str, version: u32) -> Vec<u8> {
    format!("vh node key {name} v{version}").into_bytes()
}

impl Keyring {
    /// A keyring over an unsealed master key.
    #[must_use]
    pub fn new(master: MasterKey) -> Self {
        Self {
            master,
            vaults: RwLock::new(HashMap::new()),
            gateway: RwLock::new(None),
        }
    }

    /// Makes the first data key of a new vault, wrapped for the caller's transaction.
    pub(crate) fn new_vault_key(&self, vault: VaultId) -> (u32, Vec<u8>) {
        let version = 1;
        let key = SecretKey::generate();
        (
            version,
            wrap_key(&self.master.key, &key, &vault_key_context(vault, version)),
        )
    }

    /// The current data key of `vault` and its version.
    ///
    /// # Errors
    /// Fails when the vault has no key or a wrapped key does not open under the master key.
    pub fn current_vault_key(
        &self,
        meta: &MetaStore,
        vault: VaultId,
    ) -> Result<(u32, SecretKey), VaultError> {
        self.with_vault_keys(meta, vault, |keys| {
            let key = keys
                .by_version
                .get(&keys.current)
                .expect("the current version is loaded");
            (keys.current, key.clone())
        })
    }

    /// The data key `version` of `vault`, if it exists.
    ///
    /// # Errors
    /// Fails when the wrapped keys cannot be read or opened.
    pub fn vault_key(
        &self,
        meta: &MetaStore,
        vault: VaultId,
        version: u32,
    ) -> Result<Option<SecretKey>, VaultError> {
        self.with_vault_keys(meta, vault, |keys| keys.by_version.get(&version).cloned())
    }

    fn with_vault_keys<T>(
        &self,
        meta: &MetaStore,
        vault: VaultId,
        f: impl FnOnce(&VaultKeys) -> T,
    ) -> Result<T, VaultError> {
        {
            let cache = self
                .vaults
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(keys) = cache.get(&vault) {
                return Ok(f(keys));
            }
        }
        let wrapped =
            meta.read(|conn| catalog::vault_keys(conn, vault).map_err(VaultError::from))?;
        let mut by_version = BTreeMap::new();
        for (version, bytes) in wrapped {
            let key = unwrap_key(&self.master.key, &bytes, &vault_key_context(vault, version))?;
            by_version.insert(version, key);
        }
        let Some(current) = by_version.keys().next_back().copied() else {
            return Err(VaultError::NoSuchVault(vault.to_string()));
        };
        let keys = VaultKeys {
            current,
            by_version,
        };
        let value = f(&keys);
        self.vaults
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(vault, keys);
        Ok(value)
    }

    /// Forgets the cached keys of a deleted vault.
    pub(crate) fn forget_vault(&self, vault: VaultId) {
        self.vaults
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&vault);
    }

    /// The gateway's credential key, created on first use.
    ///
    /// # Errors
    /// Fails when the wrapped key cannot be stored, read or opened.
    pub fn gateway_key(&self, meta: &MetaStore) -> Result<(u32, SecretKey), VaultError> {
        if let Some((version, key)) = &*self
            .gateway
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            return Ok((*version, key.clone()));
        }
        let (version, key) = meta.write(|tx| -> Result<_, VaultError> {
            if let Some((version, wrapped)) = catalog::node_key(tx, GATEWAY_KEY)? {
                let key = unwrap_key(
                    &self.master.key,
                    &wrapped,
                    &node_key_context(GATEWAY_KEY, version),
                )?;
                return Ok((version, key));
            }
            let version = 1;
            let key = SecretKey::generate();
            let wrapped = wrap_key(
                &self.master.key,
                &key,
                &node_key_context(GATEWAY_KEY, version),
            );
            catalog::insert_node_key(tx, GATEWAY_KEY, version, &wrapped)?;
            Ok((version, key))
        })?;
        *self
            .gateway
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((version, key.clone()));
        Ok((version, key))
    }

    /// Which provider sealed the master key.
    #[must_use]
    pub fn provider(&self) -> crate::keys::KeyProvider {
        self.master.provider
    }
}
