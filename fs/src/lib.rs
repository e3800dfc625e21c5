//! The FUSE frontend of the node. Mounting vaults as directories is not built yet; this crate
//! holds the place the kernel adapter and its kernel-free filesystem core will take, so the
//! workspace keeps the layout the rest of the node is wired against.
