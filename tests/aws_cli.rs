//! The documented user flow with the real AWS CLI against a real node: configure the CLI with a
//! credential from `vh`, then list, copy, read ranges, list with prefixes, delimiters and pages,
//! delete; and what a user meets next: revoked keys, wrong secrets, restarts, bucket creation
//! and deletion, object metadata. Assertions are on what the CLI itself reports.

mod common;

use std::fs;
use std::path::Path;

use serde_json::Value;

use common::{Aws, TestNode, assert_same_bytes, random_bytes};

/// The bucket of the user flow.
const BUCKET: &str = "archive";

/// A node with the `archive` bucket and an AWS CLI configured the documented way.
fn configured_node() -> (TestNode, Aws) {
    let node = TestNode::start();
    node.create_bucket(BUCKET);
    let (access_key, secret) = node.create_credential("laptop");
    let aws = node.aws();
    aws.configure(&access_key, &secret);
    (node, aws)
}

fn keys_of(listing: &Value) -> Vec<String> {
    listing["Contents"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| item["Key"].as_str().expect("Key is a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn prefixes_of(listing: &Value) -> Vec<String> {
    listing["CommonPrefixes"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    item["Prefix"]
                        .as_str()
                        .expect("Prefix is a string")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn bucket_names(aws: &Aws) -> Vec<String> {
    let listing = aws.json(&["s3api", "list-buckets"]);
    listing["Buckets"]
        .as_array()
        .expect("Buckets is a list")
        .iter()
        .map(|b| b["Name"].as_str().expect("Name is a string").to_owned())
        .collect()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// `s3 cp` up and down for one file, comparing bytes.
fn copy_round_trip(aws: &Aws, work: &Path, name: &str, data: &[u8]) {
    let upload = work.join(name);
    let download = work.join(format!("{name}.back"));
    fs::write(&upload, data).expect("write the upload");
    let url = format!("s3://{BUCKET}/files/{name}");
    let out = aws.run_ok(&["s3", "cp", path_str(&upload), &url]);
    assert!(out.contains("upload: "), "{out}");
    aws.run_ok(&["s3", "cp", &url, path_str(&download)]);
    let back = fs::read(&download).expect("read the download");
    assert_same_bytes(&back, data, &format!("s3 cp round trip of {name}"));
}

#[test]
fn documented_user_flow_works_with_the_aws_cli() {
    let (node, aws) = configured_node();
    let config = fs::read_to_string(aws.config_file()).expect("aws configure wrote its config");
    assert!(config.contains("region = us-east-1"), "{config}");
    assert_eq!(bucket_names(&aws), [BUCKET]);

    let work = node.root().join("work");
    fs::create_dir_all(&work).expect("create the work directory");
    let seven_mib = random_bytes(7 << 20);
    copy_round_trip(&aws, &work, "empty.bin", b"");
    copy_round_trip(&aws, &work, "one.bin", b"x");
    copy_round_trip(&aws, &work, "one-mib.bin", &random_bytes(1 << 20));
    copy_round_trip(&aws, &work, "seven-mib.bin", &seven_mib);

    // Ranged reads of the 7 MiB object, including one across a 64 KiB boundary and the tail.
    let ranged = work.join("ranged.bin");
    for (first, last) in [
        (0u64, 0u64),
        (65_530, 65_545),
        (1_000_000, 3_000_000),
        (7_340_000, 7_340_031),
    ] {
        let range = format!("bytes={first}-{last}");
        let reply = aws.json(&[
            "s3api",
            "get-object",
            "--bucket",
            BUCKET,
            "--key",
            "files/seven-mib.bin",
            "--range",
            &range,
            path_str(&ranged),
        ]);
        let expected = &seven_mib[first as usize..=last as usize];
        assert_eq!(reply["ContentLength"], expected.len(), "{range}: {reply}");
        assert_eq!(
            reply["ContentRange"],
            format!("bytes {first}-{last}/{}", seven_mib.len()),
            "{range}: {reply}"
        );
        let back = fs::read(&ranged).expect("read the ranged download");
        assert_same_bytes(&back, expected, &range);
    }

    // A tree to list: two "directories", a nested one and a top-level file.
    let tree = work.join("tree");
    for (path, body) in [
        ("dir/a.txt", "a"),
        ("dir/b.txt", "b"),
        ("dir/sub/c.txt", "c"),
        ("logs/2026/x.log", "x"),
        ("top.txt", "top"),
    ] {
        let file = tree.join(path);
        fs::create_dir_all(file.parent().expect("has a parent")).expect("create tree dirs");
        fs::write(&file, body).expect("write a tree file");
    }
    aws.run_ok(&["s3", "cp", "--recursive", path_str(&tree), "s3://archive/"]);

    let ls = aws.run_ok(&["s3", "ls", "s3://archive/"]);
    let pre: Vec<&str> = ls
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("PRE "))
        .collect();
    assert_eq!(pre, ["PRE dir/", "PRE files/", "PRE logs/"], "s3 ls:\n{ls}");
    let files: Vec<&str> = ls
        .lines()
        .filter(|line| !line.trim().starts_with("PRE "))
        .filter_map(|line| line.split_whitespace().last())
        .collect();
    assert_eq!(files, ["top.txt"], "s3 ls:\n{ls}");
    let ls_dir = aws.run_ok(&["s3", "ls", "s3://archive/dir/"]);
    assert!(ls_dir.lines().any(|l| l.trim() == "PRE sub/"), "{ls_dir}");
    assert!(
        ls_dir.contains(" a.txt") && ls_dir.contains(" b.txt"),
        "{ls_dir}"
    );

    let listing = aws.json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        BUCKET,
        "--prefix",
        "dir/",
        "--delimiter",
        "/",
    ]);
    assert_eq!(keys_of(&listing), ["dir/a.txt", "dir/b.txt"], "{listing}");
    assert_eq!(prefixes_of(&listing), ["dir/sub/"], "{listing}");
    let listing = aws.json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        BUCKET,
        "--delimiter",
        "/",
    ]);
    assert_eq!(keys_of(&listing), ["top.txt"], "{listing}");
    assert_eq!(
        prefixes_of(&listing),
        ["dir/", "files/", "logs/"],
        "{listing}"
    );
    let listing = aws.json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        BUCKET,
        "--prefix",
        "d",
    ]);
    assert_eq!(
        keys_of(&listing),
        ["dir/a.txt", "dir/b.txt", "dir/sub/c.txt"],
        "{listing}"
    );

    // Pagination over 25 keys.
    let many = work.join("many");
    fs::create_dir_all(&many).expect("create the many directory");
    let mut expected: Vec<String> = (0..25).map(|i| format!("many/key-{i:02}")).collect();
    for key in &expected {
        let name = key.trim_start_matches("many/");
        fs::write(many.join(name), key).expect("write a small file");
    }
    aws.run_ok(&[
        "s3",
        "cp",
        "--recursive",
        path_str(&many),
        "s3://archive/many/",
    ]);
    expected.sort();

    let paged = aws.json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        BUCKET,
        "--prefix",
        "many/",
        "--page-size",
        "7",
    ]);
    assert_eq!(keys_of(&paged), expected, "--page-size 7");

    let one_page = aws.json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        BUCKET,
        "--prefix",
        "many/",
        "--max-keys",
        "7",
        "--no-paginate",
    ]);
    assert_eq!(
        keys_of(&one_page),
        expected[..7],
        "--max-keys 7: {one_page}"
    );
    assert_eq!(one_page["IsTruncated"], true, "{one_page}");
    assert_eq!(one_page["KeyCount"], 7, "{one_page}");

    let mut gathered = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let mut args = vec![
            "s3api",
            "list-objects-v2",
            "--bucket",
            BUCKET,
            "--prefix",
            "many/",
            "--page-size",
            "7",
            "--max-items",
            "10",
        ];
        if let Some(token) = &token {
            args.extend(["--starting-token", token.as_str()]);
        }
        let page = aws.json(&args);
        let keys = keys_of(&page);
        assert!(keys.len() <= 10, "--max-items 10 returned {}", keys.len());
        gathered.extend(keys);
        token = page["NextToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(gathered, expected, "--max-items 10 with --starting-token");

    // Delete, and the listing no longer shows it.
    let out = aws.run_ok(&["s3", "rm", "s3://archive/dir/a.txt"]);
    assert!(out.contains("delete: s3://archive/dir/a.txt"), "{out}");
    let listing = aws.json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        BUCKET,
        "--prefix",
        "dir/",
    ]);
    assert_eq!(
        keys_of(&listing),
        ["dir/b.txt", "dir/sub/c.txt"],
        "{listing}"
    );
    let ls_dir = aws.run_ok(&["s3", "ls", "s3://archive/dir/"]);
    assert!(!ls_dir.contains("a.txt"), "{ls_dir}");
    let stderr = aws.run_err(&[
        "s3api",
        "head-object",
        "--bucket",
        BUCKET,
        "--key",
        "dir/a.txt",
    ]);
    assert!(stderr.contains("404"), "{stderr}");
}

#[test]
fn revoked_credential_is_refused_with_invalid_access_key_id() {
    let (node, aws) = configured_node();
    let (access_key, secret) = node.create_credential("old-laptop");
    let old = aws.with_credentials(&access_key, &secret);
    assert_eq!(bucket_names(&old), [BUCKET]);

    node.vh_ok(&["s3-gateway", "creds", "revoke", &access_key]);
    let stderr = old.run_err(&["s3api", "list-buckets"]);
    assert!(stderr.contains("InvalidAccessKeyId"), "{stderr}");
    let stderr = old.run_err(&["s3", "cp", "-", "s3://archive/after-revoke.txt"]);
    assert!(stderr.contains("InvalidAccessKeyId"), "{stderr}");

    let listed = node.vh_json(&["s3-gateway", "creds", "list"]);
    let revoked = listed
        .as_array()
        .expect("a list")
        .iter()
        .find(|c| c["access_key_id"] == access_key.as_str())
        .expect("the revoked credential is still listed");
    assert!(revoked["revoked_at"].is_u64(), "{revoked}");

    // The other credential is untouched.
    assert_eq!(bucket_names(&aws), [BUCKET]);
    let listing = aws.json(&["s3api", "list-objects-v2", "--bucket", BUCKET]);
    assert!(keys_of(&listing).is_empty(), "{listing}");
}

#[test]
fn wrong_secret_is_refused_with_signature_does_not_match() {
    let (node, aws) = configured_node();
    let (access_key, _) = node.create_credential("desktop");
    let wrong = aws.with_credentials(&access_key, "0123456789abcdefghijklmnopqrstuvwxyzABCD");
    let stderr = wrong.run_err(&["s3api", "list-buckets"]);
    assert!(stderr.contains("SignatureDoesNotMatch"), "{stderr}");

    let file = node.root().join("w.txt");
    fs::write(&file, "w").expect("write a file");
    let stderr = wrong.run_err(&["s3", "cp", path_str(&file), "s3://archive/w.txt"]);
    assert!(stderr.contains("SignatureDoesNotMatch"), "{stderr}");
    let listing = aws.json(&["s3api", "list-objects-v2", "--bucket", BUCKET]);
    assert!(keys_of(&listing).is_empty(), "{listing}");
}

#[test]
fn data_survives_a_restart() {
    let (mut node, aws) = configured_node();
    let work = node.root().join("work");
    fs::create_dir_all(&work).expect("create the work directory");
    let big = random_bytes(3 << 20);
    fs::write(work.join("big.bin"), &big).expect("write big.bin");
    fs::write(work.join("small.txt"), "small and durable").expect("write small.txt");
    aws.run_ok(&[
        "s3",
        "cp",
        path_str(&work.join("big.bin")),
        "s3://archive/keep/big.bin",
    ]);
    aws.run_ok(&[
        "s3",
        "cp",
        path_str(&work.join("small.txt")),
        "s3://archive/small.txt",
    ]);
    let pid_before = node.pid();

    node.restart();
    assert_ne!(node.pid(), pid_before, "restart started a new process");
    assert!(
        node.log().contains("SIGTERM received"),
        "{}",
        node.log_report()
    );

    aws.run_ok(&[
        "s3",
        "cp",
        "s3://archive/keep/big.bin",
        path_str(&work.join("big.back")),
    ]);
    let back = fs::read(work.join("big.back")).expect("read big.back");
    assert_same_bytes(&back, &big, "3 MiB object after restart");
    let small = aws.run_ok(&["s3", "cp", "s3://archive/small.txt", "-"]);
    assert_eq!(small, "small and durable");
    let listing = aws.json(&["s3api", "list-objects-v2", "--bucket", BUCKET]);
    assert_eq!(
        keys_of(&listing),
        ["keep/big.bin", "small.txt"],
        "{listing}"
    );
    assert_eq!(bucket_names(&aws), [BUCKET]);
}

#[test]
fn buckets_are_created_and_deleted_with_mb_and_rb() {
    let (node, aws) = configured_node();
    let out = aws.run_ok(&["s3", "mb", "s3://photos"]);
    assert!(out.contains("make_bucket: photos"), "{out}");
    assert_eq!(bucket_names(&aws), ["archive", "photos"]);
    let buckets = node.vh_json(&["s3-gateway", "bucket", "list"]);
    let names: Vec<&str> = buckets
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(names, ["archive", "photos"], "{buckets}");

    let stderr = aws.run_err(&["s3", "mb", "s3://photos"]);
    assert!(stderr.contains("BucketAlreadyOwnedByYou"), "{stderr}");

    let file = node.root().join("p.jpg");
    fs::write(&file, "not really a jpeg").expect("write a file");
    aws.run_ok(&["s3", "cp", path_str(&file), "s3://photos/2026/p.jpg"]);
    let stderr = aws.run_err(&["s3", "rb", "s3://photos"]);
    assert!(stderr.contains("BucketNotEmpty"), "{stderr}");
    assert_eq!(bucket_names(&aws), ["archive", "photos"]);
    let kept = aws.run_ok(&["s3", "cp", "s3://photos/2026/p.jpg", "-"]);
    assert_eq!(kept, "not really a jpeg");

    aws.run_ok(&["s3", "rm", "s3://photos/2026/p.jpg"]);
    let out = aws.run_ok(&["s3", "rb", "s3://photos"]);
    assert!(out.contains("remove_bucket: photos"), "{out}");
    assert_eq!(bucket_names(&aws), ["archive"]);
    let stderr = aws.run_err(&["s3", "ls", "s3://photos/"]);
    assert!(stderr.contains("NoSuchBucket"), "{stderr}");
}

#[test]
fn head_object_returns_the_metadata_put_with_it() {
    let (node, aws) = configured_node();
    let file = node.root().join("note.txt");
    fs::write(&file, "hello metadata").expect("write a file");
    let put = aws.json(&[
        "s3api",
        "put-object",
        "--bucket",
        BUCKET,
        "--key",
        "notes/note.txt",
        "--body",
        path_str(&file),
        "--metadata",
        "color=blue,owner=ops-team",
        "--content-type",
        "text/plain",
    ]);
    let etag = put["ETag"]
        .as_str()
        .expect("put-object returns an ETag")
        .to_owned();

    let head = aws.json(&[
        "s3api",
        "head-object",
        "--bucket",
        BUCKET,
        "--key",
        "notes/note.txt",
    ]);
    assert_eq!(head["ContentType"], "text/plain", "{head}");
    assert_eq!(head["ContentLength"], 14, "{head}");
    assert_eq!(head["ETag"], etag.as_str(), "{head}");
    assert_eq!(
        head["Metadata"],
        serde_json::json!({"color": "blue", "owner": "ops-team"}),
        "{head}"
    );
    let md5 = format!(
        "\"{}\"",
        hex::encode(<md5::Md5 as md5::Digest>::digest(b"hello metadata"))
    );
    assert_eq!(etag, md5, "the ETag of a single PUT is the body's MD5");

    // An overwrite without metadata drops the old metadata, as in S3.
    aws.run_ok(&[
        "s3api",
        "put-object",
        "--bucket",
        BUCKET,
        "--key",
        "notes/note.txt",
        "--body",
        path_str(&file),
    ]);
    let head = aws.json(&[
        "s3api",
        "head-object",
        "--bucket",
        BUCKET,
        "--key",
        "notes/note.txt",
    ]);
    assert!(
        head["Metadata"]
            .as_object()
            .is_none_or(serde_json::Map::is_empty),
        "{head}"
    );
    assert_ne!(head["ContentType"], "text/plain", "{head}");
}
