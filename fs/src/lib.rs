//! The FUSE frontend of the node: every mounted vault as a top-level directory of one
//! filesystem, read-write through the same [`vault::Engine`] the S3 gateway uses.
//!
//! [`core`] is the filesystem itself, with plain types and errno results, so tests drive it
//! without a kernel. [`adapter`] is the thin layer that answers the kernel through fuser, and
//! [`mount`] starts and stops a mounted session and forwards the engine's change notices to the
//! kernel's caches.
#![warn(missing_docs)]

pub mod adapter;
pub mod core;
pub mod mount;

pub use mount::{Mount, MountError, MountOptions};
