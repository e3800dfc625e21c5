//! Finishing, at start, the commits of mount writes that a crash interrupted.
//!
//! A commit of a file rewritten in place records its new segments and size in one transaction,
//! then copies the segments into the blob. A crash after the transaction leaves the blob with
//! some segments old: copying the committed rows again (the copy is idempotent) and cutting the
//! blob to the committed size finishes the job. Uncommitted rows were never promised to anyone
//! and are dropped. Entries whose ETag a crash kept from being recorded get it computed here.

use md5::{Digest, Md5};
use rusqlite::params;

use crate::blob::format::Layout;
use crate::engine::Engine;
use crate::error::VaultError;
use crate::meta::{Entry, journal};

impl Engine {
    /// Replays the segment journal into its blobs, then records missing ETags.
    pub(crate) fn recover_journal(&self) -> Result<(), VaultError> {
        let blobs = self
            .meta
            .read(|conn| Ok::<_, VaultError>(journal::blobs(conn)?))?;
        for blob in blobs {
            let entry: Option<Entry> = self.meta.read(|conn| {
                let sql = format!(
                    "SELECT {} FROM entries WHERE blob_id = ?1",
                    crate::meta::entries::ENTRY_COLUMNS
                );
                let mut stmt = conn.prepare(&sql)?;
                let mut rows = stmt.query(params![blob.as_bytes()])?;
                match rows.next()? {
                    Some(row) => Ok::<_, VaultError>(Some(Entry::from_row(row)??)),
                    None => Ok(None),
                }
            })?;
            if let Some(entry) = entry {
                // One file that cannot be finished must not keep the node from starting; its
                // rows stay for the next start and the file reports the damage when read.
                if let Err(err) = self.replay_blob(blob, &entry) {
                    tracing::error!(%blob, path = %entry.path, error = %err, "could not finish an interrupted commit of a file written through the mount");
                    continue;
                }
            }
            self.meta
                .write(|tx| Ok::<_, VaultError>(journal::clear(tx, blob)?))?;
        }
        self.record_missing_etags()
    }

    /// Copies the committed journal rows of `blob` into it and cuts it to `entry`'s size.
    fn replay_blob(&self, blob: crate::blob::BlobId, entry: &Entry) -> Result<(), VaultError> {
        let layout = Layout::for_plaintext_len(entry.size);
        let file = self.blobs.open_mutable(blob, false)?;
        let mut replayed = 0usize;
        self.meta.read(|conn| {
            journal::for_each_committed(conn, blob, layout.segment_count(), &mut |index, sealed| {
                replayed += 1;
                Ok(file.write_all_at(sealed, layout.segment_offset(index))?)
            })
        })?;
        file.set_len(layout.file_len())?;
        file.sync()?;
        tracing::info!(%blob, path = %entry.path, replayed, "finished an interrupted commit of a file written through the mount");
        Ok(())
    }

    /// Computes the ETag of every file whose writer could not keep it.
    fn record_missing_etags(&self) -> Result<(), VaultError> {
        let missing: Vec<Entry> = self.meta.read(|conn| {
            let sql = format!(
                // Literal, so the partial index `entries_missing_etag` serves it.
                "SELECT {} FROM entries WHERE etag IS NULL AND kind = 1",
                crate::meta::entries::ENTRY_COLUMNS
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map([], Entry::from_row)?;
            let mut entries = Vec::new();
            for row in rows {
                entries.push(row??);
            }
            Ok::<_, VaultError>(entries)
        })?;
        for entry in missing {
            let etag = match self.content_md5(&entry) {
                Ok(etag) => etag,
                Err(err) => {
                    // The gateway computes it on each request until it can be recorded.
                    tracing::warn!(path = %entry.path, error = %err, "could not compute an ETag at start");
                    continue;
                }
            };
            self.meta.write(|tx| {
                tx.execute(
                    "UPDATE entries SET etag = ?2 WHERE id = ?1 AND etag IS NULL",
                    params![entry.id.0, etag],
                )?;
                Ok::<_, VaultError>(())
            })?;
        }
        Ok(())
    }

    /// The hex MD5 of the committed content of `entry`.
    pub(crate) fn content_md5(&self, entry: &Entry) -> Result<String, VaultError> {
        let reader = self.open_object_by_entry(entry.clone())?;
        let mut md5 = Md5::new();
        reader.read_range(0, reader.len(), &mut |chunk| {
            md5.update(chunk);
            Ok(())
        })?;
        Ok(hex::encode(md5.finalize()))
    }
}
