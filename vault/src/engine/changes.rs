//! Telling the mount what the gateway changed, so the kernel drops what it cached.
//!
//! Only changes made through the gateway are announced: the kernel already knows of the ones
//! it asked the mount for, and telling it about those from inside its own request could
//! deadlock on the directory it holds locked.

use std::sync::{Arc, PoisonError, RwLock};

use crate::ids::EntryId;

/// A change to the namespace or to an entry's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The content or attributes of an entry changed (for a directory: its listing).
    Entry(EntryId),
    /// `name` in directory `parent` was removed (or now names another entry).
    Name {
        /// The directory.
        parent: EntryId,
        /// The name.
        name: String,
        /// The entry the name pointed at.
        entry: EntryId,
    },
}

/// Receives changes; called after the change committed, on the thread that made it, so it
/// must not block.
pub trait ChangeListener: Send + Sync {
    /// `changes` committed.
    fn changed(&self, changes: &[Change]);
}

/// The registered listeners.
#[derive(Default)]
pub(crate) struct Listeners {
    listeners: RwLock<Vec<Arc<dyn ChangeListener>>>,
}

impl Listeners {
    pub(crate) fn announce(&self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        let listeners = self
            .listeners
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        for listener in listeners.iter() {
            listener.changed(changes);
        }
    }
}

impl super::Engine {
    /// Registers `listener` for the changes the gateway makes.
    pub fn add_change_listener(&self, listener: Arc<dyn ChangeListener>) {
        self.changes
            .listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(listener);
    }

    /// Unregisters `listener`.
    pub fn remove_change_listener(&self, listener: &Arc<dyn ChangeListener>) {
        self.changes
            .listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|known| !Arc::ptr_eq(known, listener));
    }
}
