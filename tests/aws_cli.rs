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

    // Delete one, and the listing no longer shows it.
    let out = aws.run_ok(&["s3", "rm", "s3://archive/files/one.bin"]);
    assert!(out.contains("delete: s3://archive/files/one.bin"), "{out}");
    let listing = aws.json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        BUCKET,
        "--prefix",
        "files/",
    ]);
    assert_eq!(
        keys_of(&listing),
        [
            "files/empty.bin",
            "files/one-mib.bin",
            "files/seven-mib.bin"
        ],
        "{listing}"
    );
    let ls = aws.run_ok(&["s3", "ls", "s3://archive/files/"]);
    assert!(!ls.contains(" one.bin"), "{ls}");
    let stderr = aws.run_err(&[
        "s3api",
        "head-object",
        "--bucket",
        BUCKET,
        "--key",
        "files/one.bin",
    ]);
    assert!(stderr.contains("404"), "{stderr}");
}

#[test]
fn listings_show_prefixes_delimiters_and_pages_with_the_aws_cli() {
    let (node, aws) = configured_node();
    let work = node.root().join("work");

    // A tree to list: "directories", a nested one and a top-level file.
    let tree = work.join("tree");
    for (path, body) in [
        ("files/f.bin", "f"),
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

    // ListObjects (v1) pages with markers; pages with a delimiter end on common prefixes too.
    let paged_v1 = aws.json(&[
        "s3api",
        "list-objects",
        "--bucket",
        BUCKET,
        "--prefix",
        "many/",
        "--page-size",
        "7",
    ]);
    assert_eq!(keys_of(&paged_v1), expected, "list-objects --page-size 7");
    for command in ["list-objects", "list-objects-v2"] {
        let listing = aws.json(&[
            "s3api",
            command,
            "--bucket",
            BUCKET,
            "--delimiter",
            "/",
            "--page-size",
            "2",
        ]);
        assert_eq!(keys_of(&listing), ["top.txt"], "{command}: {listing}");
        assert_eq!(
            prefixes_of(&listing),
            ["dir/", "files/", "logs/", "many/"],
            "{command} --delimiter / --page-size 2: {listing}"
        );
    }

    // Delete, and the listings no longer show it.
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

#[test]
fn keys_with_special_characters_round_trip() {
    let (node, aws) = configured_node();
    let names = [
        "report 2026 (final).txt",
        "a+b=c&d;e,f.txt",
        "ünïcødé-名前.txt",
        "tilde~percent%25-dollar$-at@-hash#.txt",
        "quote'-star*-bang!.txt",
    ];
    let dir = node.root().join("special");
    fs::create_dir_all(&dir).expect("create the special directory");
    for name in names {
        let on_disk = name.replace("%25", "%");
        fs::write(dir.join(&on_disk), &on_disk).expect("write a file");
    }
    aws.run_ok(&[
        "s3",
        "cp",
        "--recursive",
        path_str(&dir),
        "s3://archive/special/",
    ]);

    let mut expected: Vec<String> = names
        .iter()
        .map(|n| format!("special/{}", n.replace("%25", "%")))
        .collect();
    expected.sort();
    let listing = aws.json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        BUCKET,
        "--prefix",
        "special/",
    ]);
    assert_eq!(keys_of(&listing), expected, "{listing}");
    let listing = aws.json(&[
        "s3api",
        "list-objects",
        "--bucket",
        BUCKET,
        "--prefix",
        "special/",
    ]);
    assert_eq!(keys_of(&listing), expected, "v1: {listing}");

    for key in &expected {
        let body = aws.run_ok(&["s3", "cp", &format!("s3://archive/{key}"), "-"]);
        assert_eq!(body, key.trim_start_matches("special/"), "content of {key}");
        let head = aws.json(&["s3api", "head-object", "--bucket", BUCKET, "--key", key]);
        assert_eq!(head["ContentLength"], body.len(), "{key}: {head}");
    }
}

#[test]
fn listings_follow_the_tree_as_objects_come_and_go() {
    let (node, aws) = configured_node();
    let file = node.root().join("f.txt");
    fs::write(&file, "f").expect("write a file");
    let put = |key: &str| {
        aws.run_ok(&[
            "s3api",
            "put-object",
            "--bucket",
            BUCKET,
            "--key",
            key,
            "--body",
            path_str(&file),
        ]);
    };
    let root_listing = || {
        let listing = aws.json(&[
            "s3api",
            "list-objects-v2",
            "--bucket",
            BUCKET,
            "--delimiter",
            "/",
        ]);
        (keys_of(&listing), prefixes_of(&listing))
    };

    // Directories made on the way to a key are prefixes, never keys.
    put("deep/er/file.txt");
    let all = aws.json(&["s3api", "list-objects-v2", "--bucket", BUCKET]);
    assert_eq!(keys_of(&all), ["deep/er/file.txt"], "{all}");
    assert_eq!(root_listing(), (vec![], vec!["deep/".to_owned()]));
    let stderr = aws.run_err(&["s3api", "head-object", "--bucket", BUCKET, "--key", "deep/"]);
    assert!(stderr.contains("404"), "{stderr}");

    // They go away with their last object.
    aws.run_ok(&["s3", "rm", "s3://archive/deep/er/file.txt"]);
    assert_eq!(root_listing(), (vec![], vec![]));
    let all = aws.json(&["s3api", "list-objects-v2", "--bucket", BUCKET]);
    assert!(keys_of(&all).is_empty(), "{all}");

    // A folder marker lists as a key; deleting it while objects remain hides only the marker.
    let empty = node.root().join("empty");
    fs::write(&empty, "").expect("write an empty file");
    aws.run_ok(&[
        "s3api",
        "put-object",
        "--bucket",
        BUCKET,
        "--key",
        "folder/",
        "--body",
        path_str(&empty),
    ]);
    put("folder/inner.txt");
    let all = aws.json(&["s3api", "list-objects-v2", "--bucket", BUCKET]);
    assert_eq!(keys_of(&all), ["folder/", "folder/inner.txt"], "{all}");
    aws.run_ok(&[
        "s3api",
        "delete-object",
        "--bucket",
        BUCKET,
        "--key",
        "folder/",
    ]);
    let all = aws.json(&["s3api", "list-objects-v2", "--bucket", BUCKET]);
    assert_eq!(keys_of(&all), ["folder/inner.txt"], "{all}");
    assert_eq!(root_listing(), (vec![], vec!["folder/".to_owned()]));
    let body = aws.run_ok(&["s3", "cp", "s3://archive/folder/inner.txt", "-"]);
    assert_eq!(body, "f");
}

#[test]
fn acknowledged_upload_survives_a_crash() {
    let (mut node, aws) = configured_node();
    let data = random_bytes(2 << 20);
    let file = node.root().join("crash.bin");
    fs::write(&file, &data).expect("write a file");
    aws.run_ok(&["s3", "cp", path_str(&file), "s3://archive/crash.bin"]);
    aws.run_ok(&["s3", "rm", "s3://archive/crash.bin"]);
    aws.run_ok(&["s3", "cp", path_str(&file), "s3://archive/crash.bin"]);

    node.kill9();
    node.start_again();

    let back = node.root().join("crash.back");
    aws.run_ok(&["s3", "cp", "s3://archive/crash.bin", path_str(&back)]);
    assert_same_bytes(
        &fs::read(&back).expect("read the download"),
        &data,
        "after SIGKILL",
    );
    let listing = aws.json(&["s3api", "list-objects-v2", "--bucket", BUCKET]);
    assert_eq!(keys_of(&listing), ["crash.bin"], "{listing}");
}

#[test]
fn presigned_url_from_the_cli_serves_the_object() {
    let (node, aws) = configured_node();
    let file = node.root().join("shared.txt");
    fs::write(&file, "shared through a link").expect("write a file");
    aws.run_ok(&["s3", "cp", path_str(&file), "s3://archive/links/shared.txt"]);
    let presign = || {
        let url = aws.run_ok(&[
            "s3",
            "presign",
            "s3://archive/links/shared.txt",
            "--expires-in",
            "300",
        ]);
        let url = url.trim().to_owned();
        url.strip_prefix(&node.endpoint())
            .unwrap_or_else(|| panic!("presigned URL {url} is not on {}", node.endpoint()))
            .to_owned()
    };
    let get = |path_and_query: &str| {
        node.request("GET", path_and_query)
            .payload(common::Payload::Omitted)
            .send()
    };

    // The CLI presigns with SigV2 unless told otherwise.
    let sigv2 = presign();
    assert!(sigv2.contains("AWSAccessKeyId="), "{sigv2}");
    let response = get(&sigv2);
    response.assert_ok("GET with the SigV2 presigned URL");
    assert_eq!(response.text(), "shared through a link");
    get(&sigv2.replace("shared.txt", "other.txt")).assert_error(
        403,
        "SignatureDoesNotMatch",
        "SigV2 presigned URL moved to another key",
    );

    aws.configure_set("default.s3.signature_version", "s3v4");
    let sigv4 = presign();
    assert!(sigv4.contains("X-Amz-Signature="), "{sigv4}");
    let response = get(&sigv4);
    response.assert_ok("GET with the SigV4 presigned URL");
    assert_eq!(response.text(), "shared through a link");

    get(&sigv4.replace("shared.txt", "other.txt")).assert_error(
        403,
        "SignatureDoesNotMatch",
        "presigned URL moved to another key",
    );
}

#[test]
fn large_upload_goes_multipart_and_round_trips() {
    let (node, aws) = configured_node();
    let data = random_bytes(20 << 20);
    let file = node.root().join("large.bin");
    fs::write(&file, &data).expect("write a file");
    aws.run_ok(&["s3", "cp", path_str(&file), "s3://archive/large/data.bin"]);

    // `aws s3 cp` splits at 8 MiB: 8 + 8 + 4 MiB.
    let head = aws.json(&[
        "s3api",
        "head-object",
        "--bucket",
        BUCKET,
        "--key",
        "large/data.bin",
    ]);
    assert_eq!(head["ContentLength"], data.len(), "{head}");
    let etag = head["ETag"].as_str().expect("an ETag");
    assert!(etag.ends_with("-3\""), "not a three-part upload: {head}");

    let back = node.root().join("large.back");
    aws.run_ok(&["s3", "cp", "s3://archive/large/data.bin", path_str(&back)]);
    assert_same_bytes(
        &fs::read(&back).expect("read the download"),
        &data,
        "20 MiB multipart",
    );

    let ranged = node.root().join("ranged.bin");
    let (first, last) = ((8 << 20) - 100, (8 << 20) + 100);
    let range = format!("bytes={first}-{last}");
    aws.json(&[
        "s3api",
        "get-object",
        "--bucket",
        BUCKET,
        "--key",
        "large/data.bin",
        "--range",
        &range,
        path_str(&ranged),
    ]);
    assert_same_bytes(
        &fs::read(&ranged).expect("read the ranged download"),
        &data[first..=last],
        "range across the first part boundary",
    );

    aws.run_ok(&[
        "s3",
        "cp",
        "s3://archive/large/data.bin",
        "s3://archive/large/copy.bin",
    ]);
    let copy = node.root().join("copy.back");
    aws.run_ok(&["s3", "cp", "s3://archive/large/copy.bin", path_str(&copy)]);
    assert_same_bytes(
        &fs::read(&copy).expect("read the copy"),
        &data,
        "server-side copy",
    );
    let uploads = aws.json(&["s3api", "list-multipart-uploads", "--bucket", BUCKET]);
    assert!(
        uploads["Uploads"].as_array().is_none_or(Vec::is_empty),
        "{uploads}"
    );
}

#[test]
fn a_second_node_on_the_same_data_directory_refuses_to_start_and_deletes_nothing() {
    let node = common::TestNode::start();
    let (ak, secret) = node.create_credential("locked");
    node.create_bucket("locked");
    let aws = node.aws().with_credentials(&ak, &secret);
    let file = node.root().join("kept.bin");
    std::fs::write(&file, vec![7u8; 300_000]).expect("write a file");
    aws.run_ok(&[
        "s3",
        "cp",
        file.to_str().expect("utf-8 path"),
        "s3://locked/kept.bin",
    ]);
    let blobs_before = std::fs::read_dir(node.data_dir().join("blobs"))
        .expect("blobs")
        .count();

    let second = std::process::Command::new(common::vaulthalla_bin())
        .arg("--config")
        .arg(node.config_path())
        .env("NO_COLOR", "1")
        .output()
        .expect("run a second vaulthalla");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another node is using the data directory"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(node.data_dir().join("blobs"))
            .expect("blobs")
            .count(),
        blobs_before
    );
    let back = node.root().join("back.bin");
    aws.run_ok(&[
        "s3",
        "cp",
        "s3://locked/kept.bin",
        back.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(std::fs::read(&back).expect("read back"), vec![7u8; 300_000]);
}
