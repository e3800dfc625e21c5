//! The metadata store: one SQLite database in WAL mode holding every vault's entries, the
//! gateway's credentials and bucket bindings, and the wrapped keys.
//!
//! Writes go through one connection, each as a single `BEGIN IMMEDIATE` transaction, so every
//! multi-row change is atomic; reads borrow one of a small pool of read connections and never
//! wait for a writer (WAL). `synchronous = FULL` makes a committed transaction durable before
//! the commit returns, which is what lets the gateway acknowledge a PUT right after it.

pub(crate) mod blobs;
pub(crate) mod catalog;
pub(crate) mod entries;
pub(crate) mod journal;
pub mod parts;
mod schema;
pub mod tree;
pub mod uploads;
pub(crate) mod xattrs;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

pub use catalog::{BucketRow, CredentialRow, VaultRow};
pub use entries::{
    Entry, EntryKind, ListItem, ListQuery, NewFile, ObjectAttrs, PutOutcome, WriteCondition,
};
pub use tree::{AttrChange, NewNode, RenameMode, Renamed};

/// How many read connections stay open for reuse.
const READER_POOL_SIZE: usize = 8;

/// A failure of the metadata database itself.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// SQLite refused or failed a statement.
    #[error("metadata database error")]
    Sqlite(#[from] rusqlite::Error),
    /// The database file could not be opened or set up.
    #[error("cannot open the metadata database at {path}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer node.
    #[error(
        "the metadata database at {path} has schema version {found}, newer than the {known} this \
         node understands; run the newer node or restore a backup"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The version recorded in the file.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A row holds a value no version of the node writes.
    #[error("corrupt metadata: {what}")]
    Corrupt {
        /// What was wrong.
        what: String,
    },
}

/// The SQLite metadata database.
pub struct MetaStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Writes waiting to be committed together (see [`MetaStore::write_grouped`]).
    grouped: Mutex<Vec<GroupedJob>>,
}

/// Hands a grouped write its outcome once the shared commit is decided: `None` when it
/// committed, the commit's error otherwise.
type Deliver = Box<dyn FnOnce(Option<&str>) + Send>;

/// A grouped write: runs in the shared transaction and returns how to deliver its outcome.
type GroupedJob = Box<dyn FnOnce(&Transaction<'_>) -> Deliver + Send>;

impl MetaStore {
    /// Opens (or creates) the database at `path` and applies any pending migrations.
    ///
    /// # Errors
    /// Fails when the file cannot be opened, a migration fails, or the schema is newer than
    /// this build.
    pub fn open(path: &Path) -> Result<Self, MetaError> {
        let mut writer = open_connection(path)?;
        schema::migrate(&mut writer, path)?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            grouped: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` inside one write transaction and commits it when `f` succeeds.
    ///
    /// # Errors
    /// Returns `f`'s error (the transaction is rolled back) or the commit's.
    pub fn write<T, E>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<MetaError>,
    {
        let mut conn = self.lock_writer();
        run_transaction(&mut conn, f)
    }

    /// Runs `f` in one write transaction like [`MetaStore::write`], without waiting for it to
    /// reach the disk: it becomes durable with the next durable commit (any
    /// [`MetaStore::write`] or [`MetaStore::sync`]), as a file created without `fsync` does on
    /// a local filesystem. Never for a change whose loss would leave data pointing at deleted
    /// blobs.
    ///
    /// # Errors
    /// Returns `f`'s error (the transaction is rolled back) or the commit's.
    pub fn write_relaxed<T, E>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<MetaError>,
    {
        let mut conn = self.lock_writer();
        conn.execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(MetaError::from)?;
        let result = run_transaction(&mut conn, f);
        conn.execute_batch("PRAGMA synchronous = FULL")
            .map_err(MetaError::from)?;
        result
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes every commit so far durable, relaxed ones included.
    ///
    /// # Errors
    /// A database failure.
    pub fn sync(&self) -> Result<(), MetaError> {
        let conn = self.lock_writer();
        // A checkpoint syncs the log before it copies it and the database after.
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Runs `job` in a write transaction shared with the other grouped writes waiting at the
    /// same moment, and returns once that transaction is durable: many concurrent small writes
    /// pay for one commit (one fsync) instead of one each. `job` runs in a savepoint, so its
    /// failure undoes only its own changes.
    ///
    /// # Errors
    /// `job`'s error, or the failure of the shared commit.
    pub fn write_grouped<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Transaction<'_>) -> Result<T, crate::VaultError> + Send + 'static,
    ) -> Result<T, crate::VaultError> {
        let (outcome_tx, outcome) = std::sync::mpsc::sync_channel(1);
        let grouped: GroupedJob = Box::new(move |tx| {
            let result = in_savepoint(tx, job);
            Box::new(move |commit_error: Option<&str>| {
                let result = match commit_error {
                    None => result,
                    Some(error) => Err(crate::VaultError::Internal(format!(
                        "the metadata commit failed: {error}"
                    ))),
                };
                // The caller waits on the other end; it only goes away if it panicked.
                let _ = outcome_tx.send(result);
            })
        });
        self.grouped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(grouped);

        let mut conn = self.lock_writer();
        // A leader that held the writer before us may have committed our job already; it
        // delivers outcomes before it lets go of the writer.
        if let Ok(result) = outcome.try_recv() {
            return result;
        }
        let jobs: Vec<GroupedJob> = std::mem::take(
            &mut *self
                .grouped
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => {
                let deliveries: Vec<Deliver> = jobs.into_iter().map(|job| job(&tx)).collect();
                let committed = tx.commit().map_err(|err| err.to_string());
                for deliver in deliveries {
                    deliver(committed.as_ref().err().map(String::as_str));
                }
            }
            Err(err) => {
                // The jobs never ran; dropping them tells their callers the write failed.
                tracing::warn!(error = %err, "could not start a grouped metadata write");
                drop(jobs);
            }
        }
        drop(conn);
        outcome.recv().unwrap_or_else(|_| {
            Err(crate::VaultError::Internal(
                "the metadata transaction could not start; see the node's log".to_owned(),
            ))
        })
    }

    /// Runs `f` on a read connection, which sees the last committed state.
    ///
    /// # Errors
    /// Returns `f`'s error, or the failure to open a read connection.
    pub fn read<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<MetaError>,
    {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_connection(&self.path)?,
        };
        let result = f(&conn);
        let mut readers = self
            .readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if readers.len() < READER_POOL_SIZE {
            readers.push(conn);
        }
        result
    }
}

/// Runs `f` in one `BEGIN IMMEDIATE` transaction on `conn`, committing when it succeeds.
fn run_transaction<T, E>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<MetaError>,
{
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(MetaError::from)?;
    let value = f(&tx)?;
    tx.commit().map_err(MetaError::from)?;
    Ok(value)
}

/// Runs `job` inside a savepoint of `tx`, undoing its changes if it fails.
fn in_savepoint<T>(
    tx: &Transaction<'_>,
    job: impl FnOnce(&Transaction<'_>) -> Result<T, crate::VaultError>,
) -> Result<T, crate::VaultError> {
    tx.execute_batch("SAVEPOINT grouped_job")?;
    let result = job(tx);
    let end = if result.is_ok() {
        "RELEASE grouped_job"
    } else {
        "ROLLBACK TO grouped_job; RELEASE grouped_job"
    };
    tx.execute_batch(end)?;
    result
}

fn open_connection(path: &Path) -> Result<Connection, MetaError> {
    let open_error = |source| MetaError::Open {
        path: path.to_owned(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(open_error)?;
    // FULL: in WAL mode NORMAL may lose the last commits on power loss, and a commit here is
    // what the gateway acknowledges.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(open_error)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Milliseconds since the Unix epoch, the time unit of every timestamp column.
#[must_use]
pub fn now_ms() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod grouped_tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn grouped_writes_commit_together_and_a_failure_undoes_only_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(MetaStore::open(&dir.path().join("meta.db")).unwrap());
        meta.write(|tx| {
            tx.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY)")
                .map_err(MetaError::from)
        })
        .unwrap();
        let threads: Vec<_> = (0..32)
            .map(|k| {
                let meta = Arc::clone(&meta);
                std::thread::spawn(move || {
                    meta.write_grouped(move |tx| {
                        tx.execute("INSERT INTO t (k) VALUES (?1)", [k])?;
                        if k % 5 == 0 {
                            return Err(crate::VaultError::Internal("refused".into()));
                        }
                        Ok(k)
                    })
                })
            })
            .collect();
        let mut committed = Vec::new();
        for thread in threads {
            if let Ok(k) = thread.join().unwrap() {
                committed.push(k);
            }
        }
        let stored: Vec<i64> = meta
            .read(|conn| {
                let mut stmt = conn.prepare("SELECT k FROM t ORDER BY k")?;
                let rows = stmt.query_map([], |row| row.get(0))?;
                rows.collect::<Result<Vec<i64>, _>>()
                    .map_err(MetaError::from)
            })
            .unwrap();
        committed.sort_unstable();
        assert_eq!(stored, committed);
        assert_eq!(
            stored.len(),
            32 - 7,
            "every fifth job failed and left nothing"
        );
    }
}
