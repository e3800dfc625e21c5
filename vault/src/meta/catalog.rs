//! Rows that describe the node rather than a vault's tree: vaults, wrapped keys, gateway
//! credentials and bucket bindings.

use rusqlite::{Connection, OptionalExtension, params};

use super::{MetaError, entries, now_ms};
use crate::error::VaultError;
use crate::ids::{EntryId, VaultId};

/// A vault as listed by the node.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VaultRow {
    /// Its id.
    pub id: VaultId,
    /// Its unique name.
    pub name: String,
    /// Creation time, milliseconds since the epoch.
    pub created_ms: i64,
    /// Whether the FUSE mount shows it as a top-level directory.
    pub mounted: bool,
}

/// A bucket binding.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BucketRow {
    /// The bucket name.
    pub name: String,
    /// The vault serving it.
    pub vault: VaultId,
    /// `local`, `remote_cache` or `remote_proxy`.
    pub mode: String,
    /// Whether only the gateway may write into the vault.
    pub api_exclusive: bool,
    /// Whether the vault was created for the bucket (and goes away with it).
    pub owns_vault: bool,
    /// Creation time, milliseconds since the epoch.
    pub created_ms: i64,
}

/// A gateway credential, with its secret still sealed.
#[derive(Clone, Debug)]
pub struct CredentialRow {
    /// The public access key id.
    pub access_key: String,
    /// The name the operator gave it.
    pub name: String,
    /// The secret, sealed under the gateway key.
    pub secret_sealed: Vec<u8>,
    /// Which gateway key version sealed it.
    pub key_version: u32,
    /// Creation time, milliseconds since the epoch.
    pub created_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
    /// What the operator said it is for.
    pub description: Option<String>,
    /// When it stops working, if it does.
    pub expires_ms: Option<i64>,
    /// When a request last used it, as of the last flush of the engine's in-memory record.
    pub last_used_ms: Option<i64>,
}

impl CredentialRow {
    /// Whether it has expired at `now_ms`.
    #[must_use]
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_ms.is_some_and(|at| at <= now_ms)
    }

    /// Whether a request may use it at `now_ms`: neither revoked nor expired.
    #[must_use]
    pub fn is_usable(&self, now_ms: i64) -> bool {
        self.revoked_ms.is_none() && !self.is_expired(now_ms)
    }
}

/// Creates a vault and its root directory; it is mounted (the column's default).
pub(crate) fn insert_vault(
    conn: &Connection,
    name: &str,
) -> Result<(VaultRow, EntryId), VaultError> {
    if vault_by_name(conn, name)?.is_some() {
        return Err(VaultError::VaultExists(name.to_owned()));
    }
    let created_ms = now_ms();
    conn.execute(
        "INSERT INTO vaults (name, created_ms) VALUES (?1, ?2)",
        params![name, created_ms],
    )?;
    let id = VaultId(conn.last_insert_rowid());
    let root = entries::create_root(conn, id)?;
    Ok((
        VaultRow {
            id,
            name: name.to_owned(),
            created_ms,
            mounted: true,
        },
        root,
    ))
}

fn vault_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<VaultRow> {
    Ok(VaultRow {
        id: VaultId(row.get(0)?),
        name: row.get(1)?,
        created_ms: row.get(2)?,
        mounted: row.get(3)?,
    })
}

const VAULT_COLUMNS: &str = "id, name, created_ms, mounted";

/// The vault called `name`.
pub(crate) fn vault_by_name(conn: &Connection, name: &str) -> Result<Option<VaultRow>, MetaError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {VAULT_COLUMNS} FROM vaults WHERE name = ?1"
    ))?;
    Ok(stmt.query_row(params![name], vault_from_row).optional()?)
}

/// The vault with this id.
pub(crate) fn vault_by_id(conn: &Connection, id: VaultId) -> Result<Option<VaultRow>, MetaError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {VAULT_COLUMNS} FROM vaults WHERE id = ?1"))?;
    Ok(stmt.query_row(params![id.0], vault_from_row).optional()?)
}

/// Every vault, by id.
pub(crate) fn vaults(conn: &Connection) -> Result<Vec<VaultRow>, MetaError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {VAULT_COLUMNS} FROM vaults ORDER BY id"))?;
    let rows = stmt.query_map([], vault_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Shows or hides a vault in the FUSE mount.
pub(crate) fn set_vault_mounted(
    conn: &Connection,
    id: VaultId,
    mounted: bool,
) -> Result<(), VaultError> {
    let changed = conn.execute(
        "UPDATE vaults SET mounted = ?2 WHERE id = ?1",
        params![id.0, mounted],
    )?;
    if changed == 0 {
        return Err(VaultError::NoSuchVault(id.to_string()));
    }
    Ok(())
}

/// Gives a vault another name.
pub(crate) fn rename_vault(conn: &Connection, id: VaultId, name: &str) -> Result<(), VaultError> {
    if let Some(other) = vault_by_name(conn, name)? {
        if other.id == id {
            return Ok(());
        }
        return Err(VaultError::VaultExists(name.to_owned()));
    }
    let changed = conn.execute(
        "UPDATE vaults SET name = ?2 WHERE id = ?1",
        params![id.0, name],
    )?;
    if changed == 0 {
        return Err(VaultError::NoSuchVault(id.to_string()));
    }
    Ok(())
}

/// How many files a vault holds and their total size in bytes, in one indexed scan.
pub(crate) fn vault_usage(conn: &Connection, id: VaultId) -> Result<(u64, u64), MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries WHERE vault_id = ?1 AND kind = 1",
    )?;
    let (count, bytes): (i64, i64) =
        stmt.query_row(params![id.0], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok((
        u64::try_from(count).unwrap_or(0),
        u64::try_from(bytes).unwrap_or(0),
    ))
}

/// Removes a vault with all its entries and keys, queueing its blobs for collection.
pub(crate) fn delete_vault(conn: &Connection, id: VaultId) -> Result<(), MetaError> {
    conn.execute(
        "INSERT OR IGNORE INTO blob_gc (blob_id, queued_ms)
         SELECT blob_id, ?2 FROM entries WHERE vault_id = ?1 AND blob_id IS NOT NULL
         UNION ALL SELECT p.blob_id, ?2 FROM object_parts p JOIN entries e ON e.id = p.entry_id
           WHERE e.vault_id = ?1
         UNION ALL SELECT p.blob_id, ?2 FROM upload_parts p JOIN uploads u ON u.upload_id = p.upload_id
           WHERE u.vault_id = ?1",
        params![id.0, now_ms()],
    )?;
    conn.execute("DELETE FROM uploads WHERE vault_id = ?1", params![id.0])?;
    // Foreign keys are checked at the end of the statement, so one DELETE may remove parents
    // and children together.
    conn.execute("DELETE FROM entries WHERE vault_id = ?1", params![id.0])?;
    conn.execute("DELETE FROM vaults WHERE id = ?1", params![id.0])?;
    Ok(())
}

/// Stores a wrapped data key version of a vault.
pub(crate) fn insert_vault_key(
    conn: &Connection,
    vault: VaultId,
    version: u32,
    wrapped: &[u8],
) -> Result<(), MetaError> {
    conn.execute(
        "INSERT INTO vault_keys (vault_id, version, wrapped, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![vault.0, version, wrapped, now_ms()],
    )?;
    Ok(())
}

/// Every wrapped data key version of a vault, oldest first.
pub(crate) fn vault_keys(
    conn: &Connection,
    vault: VaultId,
) -> Result<Vec<(u32, Vec<u8>)>, MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, wrapped FROM vault_keys WHERE vault_id = ?1 ORDER BY version",
    )?;
    let rows = stmt.query_map(params![vault.0], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The newest wrapped version of a node-wide key such as the gateway key.
pub(crate) fn node_key(conn: &Connection, name: &str) -> Result<Option<(u32, Vec<u8>)>, MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, wrapped FROM node_keys WHERE name = ?1 ORDER BY version DESC LIMIT 1",
    )?;
    Ok(stmt
        .query_row(params![name], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?)
}

/// Stores a wrapped node-wide key version.
pub(crate) fn insert_node_key(
    conn: &Connection,
    name: &str,
    version: u32,
    wrapped: &[u8],
) -> Result<(), MetaError> {
    conn.execute(
        "INSERT INTO node_keys (name, version, wrapped, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![name, version, wrapped, now_ms()],
    )?;
    Ok(())
}

fn bucket_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<BucketRow> {
    Ok(BucketRow {
        name: row.get(0)?,
        vault: VaultId(row.get(1)?),
        mode: row.get(2)?,
        api_exclusive: row.get(3)?,
        owns_vault: row.get(4)?,
        created_ms: row.get(5)?,
    })
}

const BUCKET_COLUMNS: &str = "name, vault_id, mode, api_exclusive, owns_vault, created_ms";

/// Binds a bucket name to a vault.
pub(crate) fn insert_bucket(conn: &Connection, row: &BucketRow) -> Result<(), VaultError> {
    if bucket(conn, &row.name)?.is_some() {
        return Err(VaultError::BucketExists(row.name.clone()));
    }
    conn.execute(
        &format!("INSERT INTO buckets ({BUCKET_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            row.name,
            row.vault.0,
            row.mode,
            row.api_exclusive,
            row.owns_vault,
            row.created_ms
        ],
    )?;
    Ok(())
}

/// The bucket called `name`.
pub(crate) fn bucket(conn: &Connection, name: &str) -> Result<Option<BucketRow>, MetaError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {BUCKET_COLUMNS} FROM buckets WHERE name = ?1"
    ))?;
    Ok(stmt.query_row(params![name], bucket_from_row).optional()?)
}

/// Every bucket, by name.
pub(crate) fn buckets(conn: &Connection) -> Result<Vec<BucketRow>, MetaError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {BUCKET_COLUMNS} FROM buckets ORDER BY name"
    ))?;
    let rows = stmt.query_map([], bucket_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The buckets bound to a vault.
pub(crate) fn buckets_of_vault(
    conn: &Connection,
    vault: VaultId,
) -> Result<Vec<BucketRow>, MetaError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {BUCKET_COLUMNS} FROM buckets WHERE vault_id = ?1 ORDER BY name"
    ))?;
    let rows = stmt.query_map(params![vault.0], bucket_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sets whether only the gateway may write into the bucket's vault.
pub(crate) fn set_bucket_api_exclusive(
    conn: &Connection,
    name: &str,
    api_exclusive: bool,
) -> Result<(), VaultError> {
    let changed = conn.execute(
        "UPDATE buckets SET api_exclusive = ?2 WHERE name = ?1",
        params![name, api_exclusive],
    )?;
    if changed == 0 {
        return Err(VaultError::NoSuchBucket(name.to_owned()));
    }
    Ok(())
}

/// Removes a bucket binding.
pub(crate) fn delete_bucket(conn: &Connection, name: &str) -> Result<(), MetaError> {
    conn.execute("DELETE FROM buckets WHERE name = ?1", params![name])?;
    Ok(())
}

fn credential_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CredentialRow> {
    Ok(CredentialRow {
        access_key: row.get(0)?,
        name: row.get(1)?,
        secret_sealed: row.get(2)?,
        key_version: row.get(3)?,
        created_ms: row.get(4)?,
        revoked_ms: row.get(5)?,
        description: row.get(6)?,
        expires_ms: row.get(7)?,
        last_used_ms: row.get(8)?,
    })
}

const CREDENTIAL_COLUMNS: &str = "access_key, name, secret_sealed, key_version, created_ms, \
     revoked_ms, description, expires_ms, last_used_ms";

/// Stores a new credential.
pub(crate) fn insert_credential(conn: &Connection, row: &CredentialRow) -> Result<(), MetaError> {
    conn.execute(
        &format!(
            "INSERT INTO credentials ({CREDENTIAL_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ),
        params![
            row.access_key,
            row.name,
            row.secret_sealed,
            row.key_version,
            row.created_ms,
            row.revoked_ms,
            row.description,
            row.expires_ms,
            row.last_used_ms
        ],
    )?;
    Ok(())
}

/// The credential with this access key, revoked or not.
pub(crate) fn credential(
    conn: &Connection,
    access_key: &str,
) -> Result<Option<CredentialRow>, MetaError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE access_key = ?1"
    ))?;
    Ok(stmt
        .query_row(params![access_key], credential_from_row)
        .optional()?)
}

/// Every credential, oldest first.
pub(crate) fn credentials(conn: &Connection) -> Result<Vec<CredentialRow>, MetaError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CREDENTIAL_COLUMNS} FROM credentials ORDER BY created_ms, access_key"
    ))?;
    let rows = stmt.query_map([], credential_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks a credential revoked; returns whether it existed and was active.
pub(crate) fn revoke_credential(conn: &Connection, access_key: &str) -> Result<bool, MetaError> {
    let changed = conn.execute(
        "UPDATE credentials SET revoked_ms = ?2 WHERE access_key = ?1 AND revoked_ms IS NULL",
        params![access_key, now_ms()],
    )?;
    Ok(changed == 1)
}

/// Records when credentials were last used; an older time never replaces a newer one.
pub(crate) fn record_credential_use(
    conn: &Connection,
    uses: &[(String, i64)],
) -> Result<(), MetaError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE credentials SET last_used_ms = MAX(COALESCE(last_used_ms, 0), ?2)
         WHERE access_key = ?1",
    )?;
    for (access_key, at) in uses {
        stmt.execute(params![access_key, at])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::MetaStore;

    fn sample(access_key: &str) -> CredentialRow {
        CredentialRow {
            access_key: access_key.to_owned(),
            name: "laptop".to_owned(),
            secret_sealed: vec![1, 2, 3],
            key_version: 1,
            created_ms: 1_000,
            revoked_ms: None,
            description: Some("backups".to_owned()),
            expires_ms: Some(5_000),
            last_used_ms: None,
        }
    }

    fn schema_version(store: &MetaStore) -> i64 {
        store
            .read(|conn| {
                Ok::<_, MetaError>(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
            })
            .unwrap()
    }

    #[test]
    fn migration_3_gives_an_old_database_the_credential_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        let newest = schema_version(&MetaStore::open(&path).unwrap());
        // A version-2 database: the schema as it was before migration 3, with one credential.
        {
            let conn = Connection::open(dir.path().join("old.db")).unwrap();
            super::super::schema::migrate_to(&conn, 2);
            conn.execute_batch(
                "INSERT INTO credentials
                   (access_key, name, secret_sealed, key_version, created_ms, revoked_ms)
                   VALUES ('VHOLD', 'old', x'00', 1, 7, NULL);",
            )
            .unwrap();
        }
        let path = dir.path().join("old.db");

        let store = MetaStore::open(&path).unwrap();
        assert_eq!(schema_version(&store), newest);
        let old = store
            .read(|conn| credential(conn, "VHOLD"))
            .unwrap()
            .expect("the old credential survives the migration");
        assert_eq!((old.name.as_str(), old.created_ms), ("old", 7));
        assert_eq!(
            (old.description.as_deref(), old.expires_ms, old.last_used_ms),
            (None, None, None)
        );
        assert!(old.is_usable(i64::MAX));
    }

    #[test]
    fn migration_4_keeps_existing_vaults_in_the_mount() {
        let dir = tempfile::tempdir().unwrap();
        let newest = schema_version(&MetaStore::open(&dir.path().join("new.db")).unwrap());
        let path = dir.path().join("meta.db");
        {
            let conn = Connection::open(&path).unwrap();
            super::super::schema::migrate_to(&conn, 3);
            conn.execute(
                "INSERT INTO vaults (name, created_ms) VALUES ('old', 7)",
                [],
            )
            .unwrap();
        }

        let store = MetaStore::open(&path).unwrap();
        assert_eq!(schema_version(&store), newest);
        let old = store
            .read(|conn| vault_by_name(conn, "old"))
            .unwrap()
            .expect("the old vault survives the migration");
        assert_eq!((old.created_ms, old.mounted), (7, true));
    }

    #[test]
    fn mount_flags_and_api_exclusivity_are_stored_and_unknown_names_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(&dir.path().join("meta.db")).unwrap();
        let vault = store
            .write(|tx| {
                let (vault, _) = insert_vault(tx, "media")?;
                insert_bucket(
                    tx,
                    &BucketRow {
                        name: "media".to_owned(),
                        vault: vault.id,
                        mode: "local".to_owned(),
                        api_exclusive: false,
                        owns_vault: true,
                        created_ms: 1,
                    },
                )?;
                Ok::<_, VaultError>(vault)
            })
            .unwrap();
        assert!(vault.mounted, "a new vault is mounted");

        store
            .write(|tx| set_vault_mounted(tx, vault.id, false))
            .unwrap();
        let read = |id| store.read(|conn| vault_by_id(conn, id)).unwrap().unwrap();
        assert!(!read(vault.id).mounted);
        assert!(!store.read(vaults).unwrap()[0].mounted);
        store
            .write(|tx| set_vault_mounted(tx, vault.id, true))
            .unwrap();
        assert!(read(vault.id).mounted);
        assert!(matches!(
            store.write(|tx| set_vault_mounted(tx, VaultId(999), false)),
            Err(VaultError::NoSuchVault(_))
        ));

        store
            .write(|tx| set_bucket_api_exclusive(tx, "media", true))
            .unwrap();
        let bucket = store.read(|conn| bucket(conn, "media")).unwrap().unwrap();
        assert!(bucket.api_exclusive);
        assert!(matches!(
            store.write(|tx| set_bucket_api_exclusive(tx, "nope", true)),
            Err(VaultError::NoSuchBucket(_))
        ));
    }

    #[test]
    fn credentials_round_trip_and_last_use_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(&dir.path().join("meta.db")).unwrap();
        store
            .write(|tx| insert_credential(tx, &sample("VHA")))
            .unwrap();
        store
            .write(|tx| record_credential_use(tx, &[("VHA".to_owned(), 3_000)]))
            .unwrap();
        store
            .write(|tx| {
                record_credential_use(tx, &[("VHA".to_owned(), 2_000), ("VHGONE".to_owned(), 9)])
            })
            .unwrap();
        let row = store.read(|conn| credential(conn, "VHA")).unwrap().unwrap();
        assert_eq!(row.description.as_deref(), Some("backups"));
        assert_eq!(row.last_used_ms, Some(3_000));
        assert!(row.is_usable(4_999));
        assert!(!row.is_usable(5_000));
        assert!(row.is_expired(5_000));
    }

    #[test]
    fn vault_usage_counts_files_and_renames_refuse_taken_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(&dir.path().join("meta.db")).unwrap();
        let (a, b) = store
            .write(|tx| {
                let (a, _) = insert_vault(tx, "a")?;
                let (b, _) = insert_vault(tx, "b")?;
                Ok::<_, VaultError>((a.id, b.id))
            })
            .unwrap();
        let usage = store.read(|conn| vault_usage(conn, a)).unwrap();
        assert_eq!(usage, (0, 0), "a root directory is not an object");
        assert!(matches!(
            store.write(|tx| rename_vault(tx, a, "b")),
            Err(VaultError::VaultExists(_))
        ));
        store.write(|tx| rename_vault(tx, a, "c")).unwrap();
        store.write(|tx| rename_vault(tx, b, "b")).unwrap();
        let names: Vec<String> = store
            .read(vaults)
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, ["c", "b"]);
    }
}
