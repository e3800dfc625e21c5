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
}

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
        let mut conn = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(MetaError::from)?;
        let value = f(&tx)?;
        tx.commit().map_err(MetaError::from)?;
        Ok(value)
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
