//! End-to-end tests of the FUSE mount: a real node mounts its vaults under its own temporary
//! directory (`TestNode::start_with_mount`), and each test drives the mount the way people and
//! programs do, next to the S3 gateway serving the same vaults.
//!
//! - `tools`: cp, mv, rm -r, tar, rsync, git, sqlite3 and dd on the mount.
//! - `random`: a seeded random walk of file operations, compared step by step with a local
//!   directory.
//! - `cross_frontend`: what one frontend writes, the other sees at once; read-only vaults.
//! - `crash`: SIGKILL of the node while programs write and fsync; nothing acknowledged is
//!   lost and no file is torn.
//! - `posix`: attributes, truncation, O_APPEND, renameat2 flags, symlinks, xattrs, statfs,
//!   readdir under change, refused hard links and special files, inode numbers.
//!
//! Every test needs `/dev/fuse` and skips, saying so, on a machine without it.

mod common;

mod mount {
    pub mod crash;
    pub mod cross_frontend;
    pub mod posix;
    pub mod random;
    pub mod support;
    pub mod tools;
}
