//! Numbered schema migrations, applied in order at start inside one transaction each.
//!
//! A migration is never edited once released: a change to the schema is a new entry at the end
//! of [`MIGRATIONS`]. `PRAGMA user_version` records how many have been applied.

use std::path::Path;

use rusqlite::Connection;

use super::MetaError;

/// Every migration, in order; index + 1 is the schema version it brings the database to.
const MIGRATIONS: &[&str] = &[
    // 1: vaults, keys, entries, credentials, buckets, blob collection queue.
    "CREATE TABLE vaults (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        name        TEXT    NOT NULL UNIQUE,
        created_ms  INTEGER NOT NULL
    );
    CREATE TABLE vault_keys (
        vault_id    INTEGER NOT NULL REFERENCES vaults(id) ON DELETE CASCADE,
        version     INTEGER NOT NULL,
        wrapped     BLOB    NOT NULL,
        created_ms  INTEGER NOT NULL,
        PRIMARY KEY (vault_id, version)
    );
    CREATE TABLE node_keys (
        name        TEXT    NOT NULL,
        version     INTEGER NOT NULL,
        wrapped     BLOB    NOT NULL,
        created_ms  INTEGER NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE entries (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        vault_id    INTEGER NOT NULL REFERENCES vaults(id) ON DELETE CASCADE,
        parent_id   INTEGER REFERENCES entries(id),
        name        TEXT    NOT NULL,
        path        TEXT    NOT NULL,
        kind        INTEGER NOT NULL,
        explicit    INTEGER NOT NULL DEFAULT 0,
        size        INTEGER NOT NULL DEFAULT 0,
        mode        INTEGER NOT NULL,
        mtime_ms    INTEGER NOT NULL,
        blob_id     BLOB,
        key_version INTEGER,
        etag        TEXT,
        attrs       TEXT
    );
    CREATE UNIQUE INDEX entries_by_parent ON entries(parent_id, name);
    CREATE UNIQUE INDEX entries_by_path ON entries(vault_id, path);
    -- Inode 1 is the mount's root, above every vault; entry ids start at 2.
    INSERT INTO sqlite_sequence (name, seq) VALUES ('entries', 1);
    CREATE TABLE credentials (
        access_key     TEXT    PRIMARY KEY,
        name           TEXT    NOT NULL,
        secret_sealed  BLOB    NOT NULL,
        key_version    INTEGER NOT NULL,
        created_ms     INTEGER NOT NULL,
        revoked_ms     INTEGER
    );
    CREATE TABLE buckets (
        name           TEXT    PRIMARY KEY,
        vault_id       INTEGER NOT NULL REFERENCES vaults(id),
        mode           TEXT    NOT NULL,
        api_exclusive  INTEGER NOT NULL,
        owns_vault     INTEGER NOT NULL,
        created_ms     INTEGER NOT NULL
    );
    CREATE INDEX buckets_by_vault ON buckets(vault_id);
    CREATE TABLE blob_gc (
        blob_id     BLOB    PRIMARY KEY,
        queued_ms   INTEGER NOT NULL
    );",
    // 2: objects made of several parts, and multipart uploads in progress.
    "ALTER TABLE entries ADD COLUMN parts INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE object_parts (
        entry_id    INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        part_number INTEGER NOT NULL,
        offset      INTEGER NOT NULL,
        size        INTEGER NOT NULL,
        blob_id     BLOB    NOT NULL,
        key_version INTEGER NOT NULL,
        etag        TEXT    NOT NULL,
        checksum    TEXT,
        PRIMARY KEY (entry_id, part_number)
    );
    CREATE TABLE uploads (
        upload_id   TEXT    PRIMARY KEY,
        vault_id    INTEGER NOT NULL REFERENCES vaults(id) ON DELETE CASCADE,
        key         TEXT    NOT NULL,
        created_ms  INTEGER NOT NULL,
        attrs       TEXT    NOT NULL,
        checksum_algorithm TEXT
    );
    CREATE INDEX uploads_by_key ON uploads(vault_id, key, created_ms);
    CREATE TABLE upload_parts (
        upload_id   TEXT    NOT NULL REFERENCES uploads(upload_id) ON DELETE CASCADE,
        part_number INTEGER NOT NULL,
        size        INTEGER NOT NULL,
        blob_id     BLOB    NOT NULL,
        key_version INTEGER NOT NULL,
        etag        TEXT    NOT NULL,
        checksum    TEXT,
        modified_ms INTEGER NOT NULL,
        PRIMARY KEY (upload_id, part_number)
    );",
    // 3: what a credential is for, when it stops working, and when it was last used.
    "ALTER TABLE credentials ADD COLUMN description TEXT;
    ALTER TABLE credentials ADD COLUMN expires_ms INTEGER;
    ALTER TABLE credentials ADD COLUMN last_used_ms INTEGER;",
    // 4: the mount. Ownership, times and symlink targets of entries; extended attributes;
    // which vaults the mount shows; and the journal of segments rewritten in place.
    "ALTER TABLE vaults ADD COLUMN mounted INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE entries ADD COLUMN uid INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE entries ADD COLUMN gid INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE entries ADD COLUMN ctime_ms INTEGER;
    ALTER TABLE entries ADD COLUMN atime_ms INTEGER;
    ALTER TABLE entries ADD COLUMN target TEXT;
    CREATE INDEX entries_by_parent_id ON entries(parent_id, id);
    CREATE INDEX entries_by_blob ON entries(blob_id) WHERE blob_id IS NOT NULL;
    CREATE TABLE xattrs (
        entry_id    INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        name        TEXT    NOT NULL,
        sealed      BLOB    NOT NULL,
        PRIMARY KEY (entry_id, name)
    );
    CREATE TABLE segment_journal (
        blob_id     BLOB    NOT NULL,
        idx         INTEGER NOT NULL,
        sealed      BLOB    NOT NULL,
        committed   INTEGER NOT NULL,
        PRIMARY KEY (blob_id, idx)
    );",
    // 5: small objects sealed into the entry row itself, committed with no file to fsync.
    "ALTER TABLE entries ADD COLUMN inline BLOB;",
    // 6: files whose ETag a crash kept from being recorded, found at start without a scan.
    "CREATE INDEX entries_missing_etag ON entries(id) WHERE etag IS NULL AND kind = 1;",
];

/// Brings the database up to the newest schema.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), MetaError> {
    let known = i64::try_from(MIGRATIONS.len()).expect("a handful of migrations");
    let current: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current > known {
        return Err(MetaError::SchemaTooNew {
            path: path.to_owned(),
            found: current,
            known,
        });
    }
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let version = index + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))?;
        tx.commit()?;
        tracing::info!(version, "applied metadata migration");
    }
    Ok(())
}

/// Brings a new database only up to schema `version`, as an older release left it; for tests
/// of the migrations that follow.
#[cfg(test)]
pub(crate) fn migrate_to(conn: &Connection, version: usize) {
    for (index, sql) in MIGRATIONS.iter().enumerate().take(version) {
        conn.execute_batch(sql).expect("an old migration applies");
        conn.execute_batch(&format!("PRAGMA user_version = {}", index + 1))
            .expect("the version is recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_refuse_newer_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, &path).unwrap();
        migrate(&mut conn, &path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, i64::try_from(MIGRATIONS.len()).unwrap());

        conn.execute_batch("PRAGMA user_version = 999").unwrap();
        let err = migrate(&mut conn, &path).unwrap_err();
        assert!(
            matches!(err, MetaError::SchemaTooNew { found: 999, .. }),
            "{err}"
        );
    }
}
