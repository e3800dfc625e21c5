//! The MD5 of a file written front to back through the mount, kept as it is written.
//!
//! MD5 costs several times the encryption per byte, so a large write hashes on a thread of its
//! own, overlapping the sealing and the disk writes; a small file is hashed in line, where a
//! thread would cost more than it saves.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

use md5::{Digest, Md5};

/// Bytes hashed in line before the hashing moves to its own thread.
const INLINE_BYTES: u64 = 1024 * 1024;

/// Writes that may wait for the hashing thread: a bound on the memory a fast writer can queue.
const QUEUED_WRITES: usize = 16;

enum Message {
    Data(Vec<u8>),
    Digest(SyncSender<[u8; 16]>),
}

/// A running MD5 over the bytes written so far.
pub(super) struct RunningMd5 {
    hashed: u64,
    mode: Mode,
}

enum Mode {
    Inline(Md5),
    Threaded {
        queue: SyncSender<Message>,
        worker: Option<JoinHandle<()>>,
    },
}

fn hash_messages(mut md5: Md5, messages: &Receiver<Message>) {
    for message in messages {
        match message {
            Message::Data(data) => md5.update(&data),
            Message::Digest(reply) => {
                let _ = reply.send(md5.clone().finalize().into());
            }
        }
    }
}

impl RunningMd5 {
    /// The MD5 of nothing yet.
    pub(super) fn new() -> Self {
        Self {
            hashed: 0,
            mode: Mode::Inline(Md5::new()),
        }
    }

    /// Bytes hashed so far.
    pub(super) fn len(&self) -> u64 {
        self.hashed
    }

    /// Hashes `data`, the bytes that follow what was hashed so far.
    pub(super) fn update(&mut self, data: &[u8]) {
        self.hashed += data.len() as u64;
        match &mut self.mode {
            Mode::Inline(md5) => {
                md5.update(data);
                if self.hashed > INLINE_BYTES {
                    self.go_threaded();
                }
            }
            Mode::Threaded { queue, .. } => {
                if queue.send(Message::Data(data.to_vec())).is_err() {
                    tracing::warn!("the hashing thread of an open file stopped");
                }
            }
        }
    }

    fn go_threaded(&mut self) {
        let Mode::Inline(md5) = &self.mode else {
            return;
        };
        let md5 = md5.clone();
        let (queue, messages) = mpsc::sync_channel(QUEUED_WRITES);
        let spawned = thread::Builder::new()
            .name("vh-md5".to_owned())
            .spawn(move || hash_messages(md5, &messages));
        // Without a thread the hash simply stays in line.
        if let Ok(worker) = spawned {
            self.mode = Mode::Threaded {
                queue,
                worker: Some(worker),
            };
        }
    }

    /// The hex MD5 of everything hashed so far.
    pub(super) fn hex_digest(&self) -> Option<String> {
        match &self.mode {
            Mode::Inline(md5) => Some(hex::encode(md5.clone().finalize())),
            Mode::Threaded { queue, .. } => {
                let (reply, digest) = mpsc::sync_channel(1);
                queue.send(Message::Digest(reply)).ok()?;
                digest.recv().ok().map(hex::encode)
            }
        }
    }
}

impl Drop for RunningMd5 {
    fn drop(&mut self) {
        if let Mode::Threaded { queue, worker } = &mut self.mode {
            // Closing the queue ends the thread once it has drained it.
            let (closed, _) = mpsc::sync_channel(1);
            drop(std::mem::replace(queue, closed));
            if let Some(worker) = worker.take() {
                let _ = worker.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threaded_and_inline_hashing_agree() {
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut running = RunningMd5::new();
        for chunk in data.chunks(131_072) {
            running.update(chunk);
        }
        assert_eq!(running.len(), data.len() as u64);
        assert_eq!(
            running.hex_digest().unwrap(),
            hex::encode(Md5::digest(&data))
        );
        running.update(b"more");
        let mut whole = data.clone();
        whole.extend_from_slice(b"more");
        assert_eq!(
            running.hex_digest().unwrap(),
            hex::encode(Md5::digest(&whole))
        );
    }
}
