//! The engine's error type.
//!
//! Every public operation of [`crate::Engine`] returns [`VaultError`]. Variants say what
//! happened in terms a frontend can map (to an S3 code or an errno) without looking inside the
//! cause; lower-level failures keep their cause as a source instead of a string.

use crate::blob::BlobError;
use crate::crypto::CryptoError;
use crate::ids::VaultId;
use crate::keys::KeyError;
use crate::meta::MetaError;
use crate::path::InvalidKey;

/// What can go wrong in the vault engine.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No vault has this id or name.
    #[error("no vault named {0}")]
    NoSuchVault(String),
    /// A vault of this name exists already.
    #[error("a vault named {0} exists already")]
    VaultExists(String),
    /// The vault still backs a bucket and may not go away.
    #[error("vault {vault} is bound to bucket {bucket}; unbind or delete the bucket first")]
    VaultInUse {
        /// The vault.
        vault: VaultId,
        /// The bucket bound to it.
        bucket: String,
    },
    /// No bucket has this name.
    #[error("no bucket named {0}")]
    NoSuchBucket(String),
    /// A bucket of this name exists already.
    #[error("a bucket named {0} exists already")]
    BucketExists(String),
    /// The bucket still holds objects.
    #[error("bucket {0} is not empty")]
    BucketNotEmpty(String),
    /// The bucket name breaks S3's naming rules.
    #[error("invalid bucket name {name:?}: {reason}")]
    InvalidBucketName {
        /// The refused name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A vault or credential name is not acceptable.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The refused name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// No object has this key.
    #[error("no object with key {0:?}")]
    NoSuchKey(String),
    /// The key cannot be a path inside a vault.
    #[error("invalid object key: {0}")]
    InvalidKey(#[from] InvalidKey),
    /// The key needs a file where a directory is, or the reverse.
    #[error("key {key:?} conflicts with an existing {existing} at {at:?}")]
    KeyConflict {
        /// The key being written.
        key: String,
        /// What is in the way: "file" or "directory".
        existing: &'static str,
        /// The path of the entry in the way.
        at: String,
    },
    /// A conditional write found the object in another state than required.
    #[error("precondition failed for key {0:?}")]
    PreconditionFailed(String),
    /// A directory marker was written with content.
    #[error("key {0:?} ends in '/' and names a directory, which cannot hold content")]
    DirectoryWithContent(String),
    /// No multipart upload has this id (it was completed, aborted or never existed).
    #[error("no multipart upload with id {0}")]
    NoSuchUpload(String),
    /// A part listed in a completion was never uploaded, or its ETag differs.
    #[error("part {part_number} was not uploaded or its ETag does not match")]
    InvalidPart {
        /// The part number.
        part_number: u32,
    },
    /// A completion lists its parts out of ascending order.
    #[error("the parts of a completion must be listed in ascending order")]
    InvalidPartOrder,
    /// A part other than the last is smaller than the minimum part size.
    #[error(
        "part {part_number} is {size} bytes; every part but the last must be at least {min} bytes"
    )]
    EntityTooSmall {
        /// The part number.
        part_number: u32,
        /// Its size.
        size: u64,
        /// The minimum.
        min: u64,
    },
    /// No credential has this access key.
    #[error("no credential with access key {0}")]
    NoSuchCredential(String),
    /// The stored data did not authenticate or is malformed.
    #[error("stored data failed its integrity check")]
    Integrity(#[source] BlobError),
    /// The blob store failed.
    #[error("blob storage failed")]
    Blob(#[source] BlobError),
    /// The metadata database failed.
    #[error(transparent)]
    Metadata(#[from] MetaError),
    /// The master key or a wrapped key could not be used.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// A wrapped key or sealed secret did not open.
    #[error("a sealed key or secret did not open")]
    Crypto(#[from] CryptoError),
    /// Another node has the data directory open.
    #[error("another node is using the data directory {}; stop it first, or give this node its own data_dir", .0.display())]
    DataDirInUse(std::path::PathBuf),
    /// A namespace operation of the mount cannot be done.
    #[error("{path}: {kind}")]
    Tree {
        /// Why.
        kind: TreeError,
        /// The path concerned.
        path: String,
    },
    /// A blocking task was cancelled or panicked.
    #[error("an internal task failed: {0}")]
    Internal(String),
}

/// Why a namespace operation of the mount failed; each maps to one errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// No such entry (`ENOENT`).
    #[error("no such file or directory")]
    NotFound,
    /// The name is taken (`EEXIST`).
    #[error("exists already")]
    Exists,
    /// The directory is not empty (`ENOTEMPTY`).
    #[error("directory not empty")]
    NotEmpty,
    /// A directory was needed (`ENOTDIR`).
    #[error("not a directory")]
    NotADirectory,
    /// A directory is in the way (`EISDIR`).
    #[error("is a directory")]
    IsADirectory,
    /// The entries are in different vaults (`EXDEV`).
    #[error("cannot move between vaults")]
    CrossVault,
    /// The name cannot be a path of a vault (`EINVAL`).
    #[error("invalid name")]
    InvalidName,
    /// The path is longer than a key may be (`ENAMETOOLONG`).
    #[error("name or path too long")]
    NameTooLong,
    /// The operation makes no sense for these entries (`EINVAL`).
    #[error("invalid argument")]
    InvalidArgument,
}

impl From<BlobError> for VaultError {
    fn from(err: BlobError) -> Self {
        match err {
            BlobError::IntegrityCheckFailed { .. } | BlobError::Malformed { .. } => {
                Self::Integrity(err)
            }
            _ => Self::Blob(err),
        }
    }
}

impl From<rusqlite::Error> for VaultError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Metadata(MetaError::Sqlite(err))
    }
}
