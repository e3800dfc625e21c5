//! The vault engine of the node.
//!
//! A vault is an encrypted tree of files and directories. Its metadata (entries, gateway object
//! attributes, credentials, bucket bindings, wrapped keys) lives in one SQLite database; its
//! content lives in blobs sealed segment by segment with AES-256-GCM-SIV under per-vault data
//! keys, which are themselves wrapped by a master key that a TPM (or a software key file) seals.
//!
//! The frontends (the FUSE mount and the S3 gateway) only ever talk to [`Engine`]; nothing in
//! this crate knows about HTTP or the kernel.
#![warn(missing_docs)]

pub mod blob;
pub mod crypto;
pub mod engine;
pub mod error;
pub mod ids;
pub mod keyring;
pub mod keys;
pub mod meta;
pub mod names;
pub mod path;

pub use engine::{
    CompletePart, Engine, EngineConfig, MAX_PART_NUMBER, NewCredential, ObjectReader, ObjectWriter,
    OpenFile, PartsPage, Secret,
};
pub use error::VaultError;
pub use ids::{EntryId, VaultId};
pub use keys::{KeyProvider, KeyProviderChoice};
pub use meta::{BucketRow, CredentialRow, VaultRow};
pub use path::{InvalidKey, ObjectKey};
