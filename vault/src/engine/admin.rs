//! Vaults, bucket bindings and gateway credentials: the things an operator manages.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

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

/// Unsealed secrets of active credentials, so a request does not pay a database read and an
/// unseal. Revocation goes through the engine, which drops the entry in the same step.
#[derive(Default)]
pub(crate) struct CredentialCache(RwLock<HashMap<String, Secret>>);

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
    /// Creates a vault with a fresh data key.
    ///
    /// # Errors
    /// `InvalidName`, `VaultExists`, or a storage failure.
    pub fn create_vault(&self, name: &str) -> Result<VaultRow, VaultError> {
        check_plain_name(name)?;
        self.meta.write(|tx| {
            let (vault, _root) = catalog::insert_vault(tx, name)?;
            let (version, wrapped) = self.keyring.new_vault_key(vault.id);
            catalog::insert_vault_key(tx, vault.id, version, &wrapped)?;
            Ok(vault)
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
        self.meta.write(|tx| {
            if catalog::vault_by_id(tx, id)?.is_none() {
                return Err(VaultError::NoSuchVault(id.to_string()));
            }
            if let Some(bucket) = catalog::buckets_of_vault(tx, id)?.into_iter().next() {
                return Err(VaultError::VaultInUse {
                    vault: id,
                    bucket: bucket.name,
                });
            }
            catalog::delete_vault(tx, id)?;
            Ok(())
        })?;
        self.keyring.forget_vault(id);
        self.collect_garbage()
    }

    /// Creates a bucket on a new vault of the same name.
    ///
    /// # Errors
    /// `InvalidBucketName`, `BucketExists`, `VaultExists`.
    pub fn create_local_bucket(
        &self,
        name: &str,
        api_exclusive: bool,
    ) -> Result<BucketRow, VaultError> {
        check_bucket_name(name)?;
        self.meta.write(|tx| {
            if catalog::bucket(tx, name)?.is_some() {
                return Err(VaultError::BucketExists(name.to_owned()));
            }
            let (vault, _root) = catalog::insert_vault(tx, name)?;
            let (version, wrapped) = self.keyring.new_vault_key(vault.id);
            catalog::insert_vault_key(tx, vault.id, version, &wrapped)?;
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

    /// Creates a gateway credential; its secret is returned here and never again.
    ///
    /// # Errors
    /// `InvalidName`, or a storage failure.
    pub fn create_credential(&self, name: &str) -> Result<NewCredential, VaultError> {
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
        };
        self.meta
            .write(|tx| Ok::<_, VaultError>(catalog::insert_credential(tx, &row)?))?;
        Ok(NewCredential {
            access_key,
            secret: Secret(Arc::new(secret)),
            name: name.to_owned(),
        })
    }

    /// Every credential, revoked ones included, without secrets.
    ///
    /// # Errors
    /// A metadata failure.
    pub fn list_credentials(&self) -> Result<Vec<CredentialRow>, VaultError> {
        self.meta.read(|conn| Ok(catalog::credentials(conn)?))
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
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(access_key);
        if revoked {
            Ok(())
        } else {
            Err(VaultError::NoSuchCredential(access_key.to_owned()))
        }
    }

    /// The secret of an active credential, for verifying a request's signature.
    ///
    /// # Errors
    /// `NoSuchCredential` for an unknown or revoked key; a failure to open the sealed secret.
    pub fn credential_secret(&self, access_key: &str) -> Result<Secret, VaultError> {
        if let Some(secret) = self
            .credentials
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(access_key)
        {
            return Ok(secret.clone());
        }
        let row = self
            .meta
            .read(|conn| Ok::<_, VaultError>(catalog::credential(conn, access_key)?))?
            .filter(|row| row.revoked_ms.is_none())
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
        let mut cache = self
            .credentials
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let still_active = self
            .meta
            .read(|conn| Ok::<_, VaultError>(catalog::credential(conn, access_key)?))?
            .is_some_and(|row| row.revoked_ms.is_none());
        if !still_active {
            return Err(VaultError::NoSuchCredential(access_key.to_owned()));
        }
        cache.insert(access_key.to_owned(), secret.clone());
        Ok(secret)
    }
}
