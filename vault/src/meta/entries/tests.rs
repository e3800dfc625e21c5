//! Entry table tests: the tree invariants, and listings checked against a sorted-map model.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::meta::{MetaStore, catalog};

fn store() -> (tempfile::TempDir, MetaStore, VaultId) {
    let dir = tempfile::tempdir().unwrap();
    let meta = MetaStore::open(&dir.path().join("meta.db")).unwrap();
    let vault = meta
        .write(|tx| catalog::insert_vault(tx, "v").map(|(row, _)| row.id))
        .unwrap();
    (dir, meta, vault)
}

fn file(size: u64) -> NewFile {
    NewFile {
        blob: Some(BlobId::generate()),
        key_version: 1,
        size,
        etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
        attrs: ObjectAttrs::default(),
        parts: Vec::new(),
        inline: None,
    }
}

fn put(meta: &MetaStore, vault: VaultId, key: &str) -> Result<Entry, VaultError> {
    let key = ObjectKey::parse(key).unwrap();
    meta.write(|tx| {
        if key.is_directory() {
            put_directory(tx, vault, &key, &WriteCondition::None)
        } else {
            put_file(tx, vault, &key, &file(1), &WriteCondition::None).map(|o| o.entry)
        }
    })
}

fn delete(meta: &MetaStore, vault: VaultId, key: &str) {
    let key = ObjectKey::parse(key).unwrap();
    meta.write(|tx| delete_object(tx, vault, &key, &mut Vec::new()))
        .unwrap();
}

fn list_all(
    meta: &MetaStore,
    vault: VaultId,
    prefix: &str,
    delimiter: &str,
    page: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut start_after = String::new();
    let mut after_prefix = false;
    loop {
        let query = ListQuery {
            prefix: prefix.into(),
            delimiter: delimiter.into(),
            start_after: start_after.clone(),
            after_prefix,
            max_keys: page,
        };
        let (items, truncated) = meta.read(|c| list(c, vault, &query)).unwrap();
        assert!(items.len() <= page);
        for item in &items {
            match item {
                ListItem::Object(entry) => out.push(entry.path.clone()),
                ListItem::Prefix(p) => out.push(format!("P:{p}")),
            }
        }
        if !truncated {
            return out;
        }
        match items.last().expect("a truncated page is not empty") {
            ListItem::Object(entry) => (start_after, after_prefix) = (entry.path.clone(), false),
            ListItem::Prefix(p) => (start_after, after_prefix) = (p.clone(), true),
        }
    }
}

/// What S3 answers for a set of keys: sorted, filtered by prefix, rolled up at the delimiter.
fn model(keys: &BTreeSet<String>, prefix: &str, delimiter: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in keys.iter().filter(|k| k.starts_with(prefix)) {
        let rest = &key[prefix.len()..];
        match (!delimiter.is_empty())
            .then(|| rest.find(delimiter))
            .flatten()
        {
            Some(at) => {
                let common = format!("P:{prefix}{}", &rest[..at + delimiter.len()]);
                if out.last() != Some(&common) {
                    out.push(common);
                }
            }
            None => out.push(key.clone()),
        }
    }
    out
}

#[test]
fn a_file_and_a_directory_cannot_share_a_name() {
    let (_dir, meta, vault) = store();
    put(&meta, vault, "a").unwrap();
    assert!(matches!(
        put(&meta, vault, "a/b"),
        Err(VaultError::KeyConflict {
            existing: "file",
            ..
        })
    ));
    put(&meta, vault, "d/e").unwrap();
    assert!(matches!(
        put(&meta, vault, "d"),
        Err(VaultError::KeyConflict {
            existing: "directory",
            ..
        })
    ));
    assert!(matches!(
        put(&meta, vault, "a/"),
        Err(VaultError::KeyConflict { .. })
    ));
}

#[test]
fn overwrite_keeps_the_entry_id_and_queues_the_old_blob() {
    let (_dir, meta, vault) = store();
    let key = ObjectKey::parse("x/y").unwrap();
    let first = meta
        .write(|tx| put_file(tx, vault, &key, &file(1), &WriteCondition::None))
        .unwrap();
    let second = meta
        .write(|tx| put_file(tx, vault, &key, &file(2), &WriteCondition::None))
        .unwrap();
    assert_eq!(first.entry.id, second.entry.id);
    assert!(second.replaced_content);
    let queued = meta
        .read(|c| crate::meta::blobs::queued_blobs(c, 10))
        .unwrap();
    assert_eq!(queued, vec![first.entry.blob.unwrap()]);
}

#[test]
fn conditional_writes_check_the_current_object() {
    let (_dir, meta, vault) = store();
    let key = ObjectKey::parse("k").unwrap();
    let put_if = |condition: WriteCondition| {
        meta.write(|tx| put_file(tx, vault, &key, &file(1), &condition))
    };
    put_if(WriteCondition::IfAbsent).unwrap();
    assert!(matches!(
        put_if(WriteCondition::IfAbsent),
        Err(VaultError::PreconditionFailed(_))
    ));
    assert!(matches!(
        put_if(WriteCondition::IfMatch("nope".into())),
        Err(VaultError::PreconditionFailed(_))
    ));
    put_if(WriteCondition::IfMatch(
        "d41d8cd98f00b204e9800998ecf8427e".into(),
    ))
    .unwrap();
}

#[test]
fn deleting_the_last_child_prunes_implicit_directories_only() {
    let (_dir, meta, vault) = store();
    put(&meta, vault, "a/b/c").unwrap();
    put(&meta, vault, "keep/").unwrap();
    put(&meta, vault, "keep/x").unwrap();
    delete(&meta, vault, "a/b/c");
    assert!(meta.read(|c| by_path(c, vault, "a/")).unwrap().is_none());
    assert!(!meta.read(|c| is_empty(c, vault)).unwrap());
    delete(&meta, vault, "keep/x");
    assert!(
        meta.read(|c| by_path(c, vault, "keep/")).unwrap().is_some(),
        "explicit dir stays"
    );
    assert_eq!(list_all(&meta, vault, "", "", 10), vec!["keep/".to_owned()]);
    delete(&meta, vault, "keep/");
    assert!(meta.read(|c| is_empty(c, vault)).unwrap());
}

#[test]
fn a_marker_with_children_is_hidden_not_removed() {
    let (_dir, meta, vault) = store();
    put(&meta, vault, "m/").unwrap();
    put(&meta, vault, "m/f").unwrap();
    delete(&meta, vault, "m/");
    assert_eq!(list_all(&meta, vault, "", "", 10), vec!["m/f".to_owned()]);
    delete(&meta, vault, "m/f");
    assert!(meta.read(|c| is_empty(c, vault)).unwrap());
}

#[test]
fn listing_orders_keys_bytewise_across_directories() {
    let (_dir, meta, vault) = store();
    for key in ["a/x", "a-b", "a.txt", "a0", "b", "a/y/z"] {
        put(&meta, vault, key).unwrap();
    }
    assert_eq!(
        list_all(&meta, vault, "", "", 2),
        vec!["a-b", "a.txt", "a/x", "a/y/z", "a0", "b"]
    );
    assert_eq!(
        list_all(&meta, vault, "", "/", 1),
        vec!["a-b", "a.txt", "P:a/", "a0", "b"]
    );
    assert_eq!(list_all(&meta, vault, "a/", "/", 1), vec!["a/x", "P:a/y/"]);
}

fn key_strategy() -> impl Strategy<Value = String> {
    // Few distinct characters so that prefixes, delimiters and name collisions happen often.
    let segment = "[ab.-]{1,3}";
    prop::collection::vec(segment, 1..4).prop_map(|segments| segments.join("/"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn listings_match_the_model(
        keys in prop::collection::vec(key_strategy(), 1..40),
        prefix in "[ab/]{0,2}",
        delimiter in prop::sample::select(vec!["", "/", "a", "b/"]),
        page in 1usize..6,
    ) {
        let (_dir, meta, vault) = store();
        let mut stored = BTreeSet::new();
        for key in &keys {
            let parsed = ObjectKey::parse(key);
            prop_assume!(parsed.is_ok());
            if put(&meta, vault, key).is_ok() {
                stored.insert(key.clone());
            }
        }
        let expected = model(&stored, &prefix, delimiter);
        prop_assert_eq!(list_all(&meta, vault, &prefix, delimiter, page), expected);
    }
}
