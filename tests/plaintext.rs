//! Nothing written through the gateway reaches the disk in the clear: after single-part and
//! multipart uploads, an overwrite, a delete and a server-side copy through the AWS CLI, no file
//! under the data directory (metadata database and its WAL, blobs, parts, keys, anything else)
//! contains any 32-byte window of what was written, and blob file names do not carry object key
//! names.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::TestNode;

/// The length of the windows looked for.
const WINDOW: usize = 32;
/// The base of the rolling hash (odd, so multiplication is invertible modulo 2^64).
const BASE: u64 = 0x0100_0000_01b3;

/// `len` bytes of 64-byte records, each with its index twice, so that every 32-byte window
/// holds at least 15 hex digits of a counter and occurs once in the whole text.
fn marked_plaintext(tag: &str, len: usize) -> Vec<u8> {
    let mut text = Vec::with_capacity(len + 64);
    let mut index = 0u64;
    while text.len() < len {
        let record = format!(
            "{tag}|{index:016x}|plaintext-mark|{:016x}|end",
            index ^ 0x5a5a_5a5a_5a5a_5a5a
        );
        let record = format!("{record:-<63}\n");
        assert_eq!(record.len(), 64, "{record}");
        text.extend_from_slice(record.as_bytes());
        index += 1;
    }
    text.truncate(len);
    text
}

/// The polynomial hash of one window: `sum(b[i] * BASE^(WINDOW-1-i))`, wrapping.
fn window_hash(window: &[u8]) -> u64 {
    window.iter().fold(0u64, |hash, &b| {
        hash.wrapping_mul(BASE).wrapping_add(u64::from(b))
    })
}

/// [`window_hash`] of every `WINDOW`-byte window of `data`, computed rolling.
fn window_hashes(data: &[u8]) -> Vec<u64> {
    let top = BASE.wrapping_pow(u32::try_from(WINDOW - 1).expect("small"));
    let mut hashes = Vec::with_capacity(data.len());
    let mut hash = 0u64;
    for (i, &byte) in data.iter().enumerate() {
        if i >= WINDOW {
            hash = hash.wrapping_sub(u64::from(data[i - WINDOW]).wrapping_mul(top));
        }
        hash = hash.wrapping_mul(BASE).wrapping_add(u64::from(byte));
        if i + 1 >= WINDOW {
            hashes.push(hash);
        }
    }
    hashes
}

/// Every 32-byte window of a set of plaintexts.
///
/// A window of a plaintext consists of bytes the plaintexts use, so a file is only looked up
/// where it has 32 such bytes in a row; ciphertext almost never does (the texts use a few dozen
/// byte values). There the window's hash is searched in the sorted hashes of all plaintext
/// windows, and a hit is confirmed byte for byte. This keeps the scan of megabytes fast in an
/// unoptimised test build.
struct Windows<'a> {
    texts: Vec<&'a [u8]>,
    alphabet: [bool; 256],
    hashes: Vec<u64>,
}

impl<'a> Windows<'a> {
    fn new(texts: Vec<&'a [u8]>) -> Self {
        let mut alphabet = [false; 256];
        let mut hashes = Vec::new();
        for text in &texts {
            for &b in *text {
                alphabet[usize::from(b)] = true;
            }
            hashes.extend(window_hashes(text));
        }
        hashes.sort_unstable();
        hashes.dedup();
        Self {
            texts,
            alphabet,
            hashes,
        }
    }

    fn contains(&self, window: &[u8]) -> bool {
        self.texts
            .iter()
            .any(|text| text.windows(WINDOW).any(|w| w == window))
    }

    /// The offset of the first plaintext window found in `data`, if any.
    fn find_in(&self, data: &[u8]) -> Option<usize> {
        let mut run = 0;
        for (i, &b) in data.iter().enumerate() {
            if !self.alphabet[usize::from(b)] {
                run = 0;
                continue;
            }
            run += 1;
            if run < WINDOW {
                continue;
            }
            let start = i + 1 - WINDOW;
            let window = &data[start..=i];
            if self.hashes.binary_search(&window_hash(window)).is_ok() && self.contains(window) {
                return Some(start);
            }
        }
        None
    }
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("read a data directory") {
            let entry = entry.expect("read a directory entry");
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    files
}

/// Scans every file under `data_dir`; returns the files scanned and their total size.
fn assert_no_plaintext(data_dir: &Path, windows: &Windows<'_>, when: &str) -> (Vec<PathBuf>, u64) {
    let files = all_files(data_dir);
    let mut total = 0;
    for file in &files {
        // A file can vanish between listing and reading (SQLite's journal, a blob being
        // collected); what is gone holds nothing.
        let Ok(data) = fs::read(file) else {
            continue;
        };
        total += data.len() as u64;
        if let Some(offset) = windows.find_in(&data) {
            panic!(
                "{when}: {} holds plaintext at byte {offset}: {:?}",
                file.display(),
                String::from_utf8_lossy(&data[offset..offset + WINDOW])
            );
        }
    }
    (files, total)
}

#[test]
fn plaintext_never_reaches_the_data_directory() {
    let mut node = TestNode::start();
    node.create_bucket("secrets");
    let (access_key, secret) = node.create_credential("plaintext");
    let aws = node.aws();
    aws.configure(&access_key, &secret);
    // Parts of 5 MiB (the least S3 allows), so the big object goes up in two parts.
    aws.configure_set("default.s3.multipart_threshold", "5MB");
    aws.configure_set("default.s3.multipart_chunksize", "5MB");

    let big = marked_plaintext("BIG", (5 << 20) + (256 << 10));
    let single = marked_plaintext("ONE", 900 * 1024);
    let small_v1 =
        b"small v1: the eagle lands at midnight behind the old mill, bring the maps".to_vec();
    let small_v2 =
        b"small v2: change of plan, the eagle lands at dawn by the northern bridge!".to_vec();
    let doomed = marked_plaintext("DEL", 200 * 1024);
    let windows = Windows::new(vec![&big, &single, &small_v1, &small_v2, &doomed]);

    let work = node.root().join("work");
    fs::create_dir_all(&work).expect("create the work directory");
    let upload = |name: &str, data: &[u8], key: &str| {
        let file = work.join(name);
        fs::write(&file, data).expect("write an upload");
        let file = file.to_str().expect("UTF-8 path").to_owned();
        aws.run_ok(&["s3", "cp", &file, &format!("s3://secrets/{key}")]);
    };
    upload("big.bin", &big, "confidential-plans/blueprint-2027.bin");
    upload("single.bin", &single, "confidential-plans/single-part.bin");
    upload(
        "small1.txt",
        &small_v1,
        "confidential-plans/meeting-point.txt",
    );
    upload(
        "small2.txt",
        &small_v2,
        "confidential-plans/meeting-point.txt",
    );
    upload(
        "doomed.bin",
        &doomed,
        "confidential-plans/shredded-notes.bin",
    );
    aws.run_ok(&[
        "s3",
        "rm",
        "s3://secrets/confidential-plans/shredded-notes.bin",
    ]);
    aws.run_ok(&[
        "s3",
        "cp",
        "s3://secrets/confidential-plans/blueprint-2027.bin",
        "s3://secrets/confidential-plans/blueprint-copy.bin",
    ]);

    // The objects are there and readable, so the scan below looks at data that exists.
    let head = aws.json(&[
        "s3api",
        "head-object",
        "--bucket",
        "secrets",
        "--key",
        "confidential-plans/blueprint-2027.bin",
    ]);
    let etag = head["ETag"].as_str().expect("an ETag");
    assert!(etag.ends_with("-2\""), "not a two-part upload: {head}");
    let back = aws.run_ok(&[
        "s3",
        "cp",
        "s3://secrets/confidential-plans/meeting-point.txt",
        "-",
    ]);
    assert_eq!(back.as_bytes(), small_v2.as_slice());
    let copy = work.join("copy.back");
    let copy_path = copy.to_str().expect("UTF-8 path");
    aws.run_ok(&[
        "s3",
        "cp",
        "s3://secrets/confidential-plans/blueprint-copy.bin",
        copy_path,
    ]);
    assert!(
        fs::read(&copy).expect("read the copy") == big,
        "the copy differs"
    );
    let listing = aws.json(&["s3api", "list-objects-v2", "--bucket", "secrets"]);
    let keys: Vec<&str> = listing["Contents"]
        .as_array()
        .expect("the bucket lists objects")
        .iter()
        .filter_map(|item| item["Key"].as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "confidential-plans/blueprint-2027.bin",
            "confidential-plans/blueprint-copy.bin",
            "confidential-plans/meeting-point.txt",
            "confidential-plans/single-part.bin",
        ],
        "{listing}"
    );

    let data_dir = node.data_dir();
    let (files, total) = assert_no_plaintext(&data_dir, &windows, "while the node runs");
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(&data_dir)
                .expect("under the data dir")
                .display()
                .to_string()
        })
        .collect();
    assert!(
        names.iter().any(|n| n == "meta.db"),
        "no meta.db among {names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("keys/")),
        "no key files among {names:?}"
    );
    let blobs: Vec<&String> = names.iter().filter(|n| n.starts_with("blobs/")).collect();
    assert!(!blobs.is_empty(), "no blob files among {names:?}");
    let stored = 2 * big.len() + single.len();
    assert!(
        total >= stored as u64,
        "only {total} bytes under the data directory for {stored} bytes of objects: {names:?}"
    );
    for name in &names {
        for word in [
            "confidential",
            "blueprint",
            "meeting",
            "shredded",
            "plans",
            "secrets",
        ] {
            assert!(
                !name.contains(word),
                "blob file {name} names the object ({word})"
            );
        }
    }

    // A clean stop checkpoints the WAL into meta.db; scan what is left on disk then too.
    node.stop();
    assert_no_plaintext(&data_dir, &windows, "after a clean stop");
}

#[test]
fn the_window_scanner_finds_plaintext() {
    let text = marked_plaintext("T", 4096);
    let windows = Windows::new(vec![&text]);
    let mut file = vec![0u8; 10_000];
    assert_eq!(windows.find_in(&file), None);
    file[777..777 + WINDOW].copy_from_slice(&text[1234..1234 + WINDOW]);
    assert_eq!(windows.find_in(&file), Some(777));
    let mut near = text[100..100 + WINDOW].to_vec();
    near[31] ^= 1;
    assert_eq!(windows.find_in(&near), None);
}
