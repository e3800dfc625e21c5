//! Engine tests over a real data directory with the software key provider.

use super::*;
use crate::engine::CompletePart;
use crate::meta::{ObjectAttrs, WriteCondition};
use crate::path::ObjectKey;

/// The engine over `dir`, as the node opens it.
pub(crate) fn open(dir: &Path) -> Engine {
    let config = EngineConfig {
        data_dir: dir.to_owned(),
        key_provider: KeyProviderChoice::Software,
        tpm_tcti: None,
        part_dir: None,
    };
    // A test elsewhere in this process that forks (swtpm) holds a copy of every open
    // descriptor, the data directory's lock among them, until its child execs: a reopen right
    // after a drop may find the lock held for a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Engine::open(&config) {
            Err(VaultError::DataDirInUse(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => {
                return result
                    .unwrap_or_else(|err| panic!("open the engine in {}: {err:?}", dir.display()));
            }
        }
    }
}

fn put(
    engine: &Engine,
    vault: crate::VaultId,
    key: &str,
    data: &[u8],
) -> Result<crate::meta::Entry, VaultError> {
    let mut writer = engine.begin_write(vault)?;
    for chunk in data.chunks(10_000) {
        writer.write(chunk)?;
    }
    engine.commit_write(
        writer,
        &ObjectKey::parse(key).unwrap(),
        ObjectAttrs::default(),
        &WriteCondition::None,
    )
}

fn get(engine: &Engine, vault: crate::VaultId, key: &str, start: u64, end: u64) -> Vec<u8> {
    let reader = engine
        .open_object(vault, &ObjectKey::parse(key).unwrap())
        .unwrap();
    let mut out = Vec::new();
    reader
        .read_range(start, end, &mut |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })
        .unwrap();
    out
}

fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from(i * 7 % 251).unwrap())
        .collect()
}

#[test]
fn objects_round_trip_across_a_restart_with_md5_etags() {
    let dir = tempfile::tempdir().unwrap();
    let body = data(200_000);
    let vault = {
        let engine = open(dir.path());
        let bucket = engine.create_local_bucket("bkt1", true).unwrap();
        let entry = put(&engine, bucket.vault, "d/file", &body).unwrap();
        assert_eq!(
            entry.etag.as_deref(),
            Some(hex::encode(<md5::Md5 as md5::Digest>::digest(&body)).as_str())
        );
        bucket.vault
    };
    let engine = open(dir.path());
    assert_eq!(get(&engine, vault, "d/file", 0, 200_000), body);
    assert_eq!(
        get(&engine, vault, "d/file", 65_530, 65_545),
        body[65_530..65_545]
    );
    assert_eq!(
        get(&engine, vault, "d/file", 199_990, 300_000),
        body[199_990..]
    );
}

#[test]
fn small_objects_live_in_their_row_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let vault = engine.create_local_bucket("bkt1", true).unwrap().vault;
    let small = data(super::objects::INLINE_MAX);
    let entry = put(&engine, vault, "small", &small).unwrap();
    assert!(entry.inline);
    assert!(engine.blob_store().list().unwrap().is_empty());
    assert_eq!(get(&engine, vault, "small", 0, 100_000), small);
    assert_eq!(get(&engine, vault, "small", 10, 20), small[10..20]);
    let big = data(super::objects::INLINE_MAX + 1);
    assert!(!put(&engine, vault, "big", &big).unwrap().inline);
    assert_eq!(engine.blob_store().list().unwrap().len(), 1);
    // Overwriting a blob-file object with a small one collects the file.
    put(&engine, vault, "big", b"now small").unwrap();
    assert!(engine.blob_store().list().unwrap().is_empty());
    drop(engine);
    let engine = open(dir.path());
    assert_eq!(get(&engine, vault, "small", 0, 100_000), small);
    assert_eq!(get(&engine, vault, "big", 0, 100), b"now small");
}

#[test]
fn overwrites_and_deletes_remove_old_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let vault = engine.create_local_bucket("bkt1", true).unwrap().vault;
    // Bigger than an inline object, so each version is a blob file.
    let (one, two) = (data(40_000), data(50_000));
    put(&engine, vault, "k", &one).unwrap();
    put(&engine, vault, "k", &two).unwrap();
    assert_eq!(engine.blob_store().list().unwrap().len(), 1);
    assert_eq!(get(&engine, vault, "k", 0, 60_000), two);
    engine
        .delete_object(vault, &ObjectKey::parse("k").unwrap())
        .unwrap();
    assert!(engine.blob_store().list().unwrap().is_empty());
    assert!(matches!(
        engine.open_object(vault, &ObjectKey::parse("k").unwrap()),
        Err(VaultError::NoSuchKey(_))
    ));
}

#[test]
fn a_refused_commit_changes_nothing_and_leaves_no_blob() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let vault = engine.create_local_bucket("bkt1", true).unwrap().vault;
    let file = data(40_000);
    put(&engine, vault, "a", &file).unwrap();
    assert!(matches!(
        put(&engine, vault, "a/b", &data(40_001)),
        Err(VaultError::KeyConflict { .. })
    ));
    let mut writer = engine.begin_write(vault).unwrap();
    writer.write(&data(40_002)).unwrap();
    let refused = engine.commit_write(
        writer,
        &ObjectKey::parse("a").unwrap(),
        ObjectAttrs::default(),
        &WriteCondition::IfAbsent,
    );
    assert!(matches!(refused, Err(VaultError::PreconditionFailed(_))));
    assert_eq!(engine.blob_store().list().unwrap().len(), 1);
    assert_eq!(get(&engine, vault, "a", 0, 50_000), file);
}

#[test]
fn orphaned_blobs_of_interrupted_writes_are_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path());
        let vault = engine.create_local_bucket("bkt1", true).unwrap().vault;
        put(&engine, vault, "kept", &data(40_000)).unwrap();
        // A blob sealed and committed to the store whose metadata never committed.
        let key = engine
            .keyring
            .current_vault_key(&engine.meta, vault)
            .unwrap();
        let mut orphan = crate::blob::BlobWriter::new(
            engine.blobs.as_ref(),
            crate::blob::BlobId::generate(),
            &key.1,
            key.0,
        )
        .unwrap();
        orphan.write(b"lost").unwrap();
        orphan.finish().unwrap();
        assert_eq!(engine.blob_store().list().unwrap().len(), 2);
    }
    let engine = open(dir.path());
    assert_eq!(engine.blob_store().list().unwrap().len(), 1);
}

#[test]
fn revoked_credentials_stop_resolving_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let created = engine.create_credential("laptop").unwrap();
    assert!(created.access_key.starts_with("VH") && created.access_key.len() == 26);
    assert_eq!(created.secret.expose_secret().len(), 40);
    assert_eq!(
        engine.credential_secret(&created.access_key).unwrap(),
        created.secret
    );
    engine.revoke_credential(&created.access_key).unwrap();
    assert!(matches!(
        engine.credential_secret(&created.access_key),
        Err(VaultError::NoSuchCredential(_))
    ));
    assert!(matches!(
        engine.revoke_credential(&created.access_key),
        Err(VaultError::NoSuchCredential(_))
    ));
    drop(engine);
    let reopened = open(dir.path());
    assert!(reopened.credential_secret(&created.access_key).is_err());
}

#[test]
fn buckets_delete_only_when_empty_and_take_their_own_vault() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let vault = engine.create_local_bucket("bkt1", true).unwrap().vault;
    put(&engine, vault, "x", b"1").unwrap();
    assert!(matches!(
        engine.delete_bucket("bkt1"),
        Err(VaultError::BucketNotEmpty(_))
    ));
    engine
        .delete_object(vault, &ObjectKey::parse("x").unwrap())
        .unwrap();
    engine.delete_bucket("bkt1").unwrap();
    assert!(engine.list_vaults().unwrap().is_empty());

    let own = engine.create_vault("shared").unwrap();
    engine.bind_bucket("bkt2", own.id, "local", false).unwrap();
    assert!(matches!(
        engine.delete_vault(own.id),
        Err(VaultError::VaultInUse { .. })
    ));
    engine.delete_bucket("bkt2").unwrap();
    assert_eq!(
        engine.list_vaults().unwrap().len(),
        1,
        "a bound vault outlives its bucket"
    );
}

#[test]
fn multipart_objects_read_across_parts_and_collect_unused_parts() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let vault = engine.create_local_bucket("bkt1", true).unwrap().vault;
    let key = ObjectKey::parse("big/object").unwrap();
    let upload = engine
        .create_upload(vault, &key, ObjectAttrs::default(), None)
        .unwrap();
    let bodies = [data(70_000), data(70_001), data(5)];
    let mut etags = Vec::new();
    for (index, body) in bodies.iter().enumerate() {
        let mut writer = engine.begin_part(vault).unwrap();
        writer.write(body).unwrap();
        let part = engine
            .commit_part(&upload, u32::try_from(index).unwrap() + 1, writer, None)
            .unwrap();
        etags.push(part.etag);
    }
    // Part 2 uploaded again replaces the first upload of it.
    let mut writer = engine.begin_write(vault).unwrap();
    writer.write(&bodies[1]).unwrap();
    engine.commit_part(&upload, 2, writer, None).unwrap();
    assert_eq!(engine.blob_store().list().unwrap().len(), 3);

    let parts = |numbers: &[u32]| -> Vec<CompletePart> {
        numbers
            .iter()
            .map(|&n| CompletePart {
                part_number: n,
                etag: format!("\"{}\"", etags[n as usize - 1]),
            })
            .collect()
    };
    let none = |_: &[crate::meta::parts::StoredPart]| None;
    let out_of_order =
        engine.complete_upload(&upload, &parts(&[2, 1]), 1, &WriteCondition::None, &none);
    assert!(matches!(out_of_order, Err(VaultError::InvalidPartOrder)));
    let too_small =
        engine.complete_upload(&upload, &parts(&[1, 3, 2]), 1, &WriteCondition::None, &none);
    assert!(matches!(too_small, Err(VaultError::InvalidPartOrder)));
    let small = engine.complete_upload(
        &upload,
        &parts(&[1, 2]),
        70_001,
        &WriteCondition::None,
        &none,
    );
    assert!(matches!(
        small,
        Err(VaultError::EntityTooSmall { part_number: 1, .. })
    ));

    let entry = engine
        .complete_upload(&upload, &parts(&[1, 3]), 5, &WriteCondition::None, &none)
        .unwrap();
    assert!(entry.etag.as_deref().unwrap().ends_with("-2"));
    assert_eq!(entry.size, 70_005);
    assert_eq!(
        engine.blob_store().list().unwrap().len(),
        2,
        "part 2 was collected"
    );
    let mut expected = bodies[0].clone();
    expected.extend_from_slice(&bodies[2]);
    assert_eq!(get(&engine, vault, "big/object", 0, 70_005), expected);
    assert_eq!(
        get(&engine, vault, "big/object", 69_998, 70_003),
        expected[69_998..70_003]
    );
    assert!(matches!(
        engine.upload(vault, &upload.upload_id),
        Err(VaultError::NoSuchUpload(_))
    ));

    engine.delete_object(vault, &key).unwrap();
    assert!(engine.blob_store().list().unwrap().is_empty());
}

#[test]
fn parts_go_to_the_part_dir_and_stay_readable_after_completion() {
    let dir = tempfile::tempdir().unwrap();
    let part_dir = dir.path().join("parts");
    let engine = Engine::open(&EngineConfig {
        data_dir: dir.path().join("data"),
        key_provider: KeyProviderChoice::Software,
        tpm_tcti: None,
        part_dir: Some(part_dir.clone()),
    })
    .unwrap();
    let vault = engine.create_local_bucket("bkt1", true).unwrap().vault;
    let key = ObjectKey::parse("k").unwrap();
    let upload = engine
        .create_upload(vault, &key, ObjectAttrs::default(), None)
        .unwrap();
    let mut writer = engine.begin_part(vault).unwrap();
    writer.write(&data(1000)).unwrap();
    let part = engine.commit_part(&upload, 1, writer, None).unwrap();
    let in_part_dir = |id: crate::blob::BlobId| {
        let hex = id.to_hex();
        part_dir.join(&hex[..2]).join(&hex).exists()
    };
    assert!(in_part_dir(part.blob));
    let wanted = [CompletePart {
        part_number: 1,
        etag: part.etag.clone(),
    }];
    engine
        .complete_upload(&upload, &wanted, 0, &WriteCondition::None, &|_| None)
        .unwrap();
    assert_eq!(get(&engine, vault, "k", 0, 1000), data(1000));
    engine.delete_object(vault, &key).unwrap();
    assert!(!in_part_dir(part.blob));
}
