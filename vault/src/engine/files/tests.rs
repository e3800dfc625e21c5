//! Files written through the mount, checked against a plain byte vector: random writes,
//! truncation, commits, the gateway's view and restarts.

use std::path::Path;

use md5::{Digest, Md5};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::engine::Engine;
use crate::ids::EntryId;
use crate::meta::{EntryKind, NewNode};
use crate::path::ObjectKey;

fn open_engine(dir: &Path) -> Engine {
    crate::engine::tests::open(dir)
}

/// A vault `v` with an empty file `f`; returns the file's entry.
fn new_file(engine: &Engine) -> EntryId {
    engine.create_vault("v").unwrap();
    let root = engine.mounted_vaults().unwrap().remove(0).root;
    let node = NewNode {
        kind: EntryKind::File,
        mode: 0o644,
        uid: 0,
        gid: 0,
        target: None,
    };
    engine.create_node(root.id, "f", &node).unwrap().id
}

fn gateway_read(engine: &Engine) -> (Vec<u8>, String) {
    let vault = engine.mounted_vaults().unwrap()[0].root.vault;
    let reader = engine
        .open_object(vault, &ObjectKey::parse("f").unwrap())
        .unwrap();
    let mut out = Vec::new();
    reader
        .read_range(0, reader.len(), &mut |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })
        .unwrap();
    let etag = engine
        .head_object(vault, &ObjectKey::parse("f").unwrap())
        .unwrap()
        .etag
        .unwrap();
    (out, etag)
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

#[derive(Clone, Debug)]
enum Op {
    Write { offset: u64, len: usize, seed: u8 },
    SetLen(u64),
    Sync,
    Reopen,
    Read { offset: u64, len: usize },
}

const LIMIT: u64 = 700_000;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..LIMIT, 1..200_000usize, any::<u8>())
            .prop_map(|(offset, len, seed)| Op::Write { offset, len, seed }),
        2 => (0..LIMIT).prop_map(Op::SetLen),
        2 => Just(Op::Sync),
        1 => Just(Op::Reopen),
        3 => (0..LIMIT, 1..300_000usize).prop_map(|(offset, len)| Op::Read { offset, len }),
    ]
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add(u8::try_from(i % 251).unwrap()))
        .collect()
}

fn apply_model(model: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write { offset, len, seed } => {
            let offset = usize::try_from(*offset).unwrap();
            let end = offset + len;
            if model.len() < end {
                model.resize(end, 0);
            }
            model[offset..end].copy_from_slice(&pattern(*len, *seed));
        }
        Op::SetLen(len) => model.resize(usize::try_from(*len).unwrap(), 0),
        Op::Sync | Op::Reopen | Op::Read { .. } => {}
    }
}

fn run_sequence(ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(dir.path());
    let id = new_file(&engine);
    let mut file = engine.open_file(id, false).unwrap();
    let mut model = Vec::new();
    let mut synced = Vec::new();
    for op in ops {
        match op {
            Op::Write { offset, len, seed } => {
                engine
                    .write_file(&file, *offset, &pattern(*len, *seed))
                    .unwrap();
            }
            Op::SetLen(len) => engine.set_file_len(&file, *len).unwrap(),
            Op::Sync => {
                engine.sync_file(&file).unwrap();
                synced.clone_from(&model);
                let (seen, _) = gateway_read(&engine);
                prop_assert!(seen == synced, "the gateway sees the synced content");
            }
            Op::Reopen => {
                engine.release_file(&file).unwrap();
                synced.clone_from(&model);
                let (seen, etag) = gateway_read(&engine);
                prop_assert!(seen == synced, "the gateway sees the closed content");
                prop_assert_eq!(etag, md5_hex(&synced), "the ETag is the content's MD5");
                file = engine.open_file(id, false).unwrap();
            }
            Op::Read { offset, len } => {
                let got = engine.read_file(&file, *offset, *len).unwrap();
                let start = usize::try_from(*offset).unwrap().min(model.len());
                let end = (start + len).min(model.len());
                prop_assert!(got == model[start..end], "read at {offset} len {len}");
            }
        }
        apply_model(&mut model, op);
        prop_assert_eq!(file.size_and_mtime().0, model.len() as u64);
    }
    engine.release_file(&file).unwrap();
    drop(file);
    drop(engine);

    let engine = open_engine(dir.path());
    let (seen, etag) = gateway_read(&engine);
    prop_assert!(
        seen == model,
        "after a restart the content is the last written"
    );
    prop_assert_eq!(etag, md5_hex(&model));
    Ok(())
}

#[test]
fn random_writes_truncations_and_commits_match_a_byte_vector() {
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| {
            run_sequence(&ops)
        })
        .unwrap();
}

#[test]
fn a_large_write_keeps_memory_bounded_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(dir.path());
    let id = new_file(&engine);
    let file = engine.open_file(id, false).unwrap();
    let chunk = pattern(128 * 1024, 3);
    for i in 0..160u64 {
        engine
            .write_file(&file, i * chunk.len() as u64, &chunk)
            .unwrap();
        assert!(
            file.lock().resident.len() <= super::MAX_RESIDENT_SEGMENTS + 2,
            "resident segments stay bounded"
        );
    }
    engine.release_file(&file).unwrap();
    let (seen, etag) = gateway_read(&engine);
    assert_eq!(seen.len(), 160 * chunk.len());
    assert!(seen.chunks(chunk.len()).all(|c| c == chunk.as_slice()));
    assert_eq!(etag, md5_hex(&seen), "a front-to-back write keeps its MD5");
}

#[test]
fn rewrites_in_place_then_a_restart_keeps_the_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = pattern(1_000_000, 9);
    {
        let engine = open_engine(dir.path());
        let id = new_file(&engine);
        let file = engine.open_file(id, false).unwrap();
        engine.write_file(&file, 0, &model).unwrap();
        engine.sync_file(&file).unwrap();
        // Rewrites spread over the file, more than memory holds, committed twice.
        for round in 0..2u8 {
            for i in 0..100u64 {
                let offset = (i * 9_973 + u64::from(round) * 77) % 990_000;
                let data = pattern(5_000, round.wrapping_mul(31).wrapping_add(1));
                engine.write_file(&file, offset, &data).unwrap();
                apply_model(
                    &mut model,
                    &Op::Write {
                        offset,
                        len: 5_000,
                        seed: round.wrapping_mul(31).wrapping_add(1),
                    },
                );
            }
            engine.sync_file(&file).unwrap();
        }
        // Changes after the last commit are never promised; the descriptor is dropped
        // without a release, as a crash would.
        engine.write_file(&file, 0, b"not committed").unwrap();
    }
    let engine = open_engine(dir.path());
    let (seen, _) = gateway_read(&engine);
    assert!(seen == model, "the restart shows exactly the last commit");
}

#[test]
fn a_file_removed_while_open_keeps_its_content_for_its_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(dir.path());
    let id = new_file(&engine);
    let file = engine.open_file(id, false).unwrap();
    engine.write_file(&file, 0, b"hello").unwrap();
    engine.sync_file(&file).unwrap();
    let root = engine.mounted_vaults().unwrap()[0].root.id;
    engine.remove_node(root, "f", false).unwrap();
    assert_eq!(engine.read_file(&file, 0, 100).unwrap(), b"hello");
    engine.write_file(&file, 5, b" world").unwrap();
    engine.sync_file(&file).unwrap();
    assert_eq!(engine.read_file(&file, 0, 100).unwrap(), b"hello world");
    engine.release_file(&file).unwrap();
    assert!(engine.lookup(root, "f").is_err(), "the name stays gone");
}
