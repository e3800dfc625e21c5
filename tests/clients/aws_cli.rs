//! The client scenario with the AWS CLI, through both its `s3` and `s3api` commands, plus what
//! only the CLI has: `s3 sync` both ways, `s3 rm --recursive` and `s3 presign`.

use std::process::Command;

use serde_json::Value;

use crate::clients::support::{
    BIG_KEY, BIG_RANGES, BIG_SIZE, COPY_KEY, Checks, EMPTY_KEY, META_BODY, META_CONTENT_TYPE,
    META_KEY, META_PAIRS, Run, SMALL_BODY, SMALL_KEY, TREE_LISTED_DIR, TREE_PREFIX, Workspace,
    fetch_presigned, listed_dir_keys, node_with_credential, path_arg, sha256_file, sha256_hex,
    small_text, tree_dirs, tree_keys,
};
use crate::common::{Aws, TestNode};

const BUCKET: &str = "matrix-awscli";

/// The CLI's multipart chunk size (`s3.multipart_chunksize` default): 100 MiB is 13 parts.
const PARTS_OF_BIG: usize = BIG_SIZE.div_ceil(8 << 20);

/// Runs the whole scenario; the test fails with every check that did not hold.
pub fn scenario() {
    let (node, access_key, secret) = node_with_credential("awscli");
    let aws = node.aws();
    aws.configure(&access_key, &secret);
    let work = Workspace::new(&node);
    let cli = Cli { aws: &aws };
    let mut checks = Checks::new("AWS CLI");

    let made = cli.run(&["s3", "mb", &format!("s3://{BUCKET}")]);
    if checks.ran("s3 mb", &made).is_none() {
        checks.finish();
        return;
    }
    checks.eq(
        "s3 mb output",
        made.stdout.trim(),
        format!("make_bucket: {BUCKET}").as_str(),
    );
    let buckets = cli.json(&mut checks, "list-buckets", &["s3api", "list-buckets"]);
    checks.eq(
        "list-buckets after mb",
        bucket_names(&buckets),
        vec![BUCKET.to_owned()],
    );

    small_objects(&cli, &work, &mut checks);
    big_object(&cli, &work, &mut checks);
    tree_sync_and_listing(&cli, &work, &mut checks);
    metadata_and_copy(&cli, &work, &mut checks);
    presign(&cli, &node, &aws, &mut checks);
    deletes(&cli, &mut checks);
    checks.finish();
}

/// The AWS CLI, its output turned into a [`Run`].
struct Cli<'a> {
    aws: &'a Aws,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> Run {
        let output = self.aws.run(args);
        Run {
            command: format!("aws {}", args.join(" ")),
            success: output.success(),
            code: output.status.code(),
            stdout_bytes: output.stdout.clone().into_bytes(),
            stdout: output.stdout,
            stderr: output.stderr,
        }
    }

    /// Runs an `s3api` command and parses its JSON output (`Null` on failure or no output).
    fn json(&self, checks: &mut Checks, what: &str, args: &[&str]) -> Value {
        let run = self.run(args);
        let Some(stdout) = checks.ran(what, &run) else {
            return Value::Null;
        };
        if stdout.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&stdout).unwrap_or_else(|e| {
            checks.fail(what, format!("printed invalid JSON ({e}): {stdout}"));
            Value::Null
        })
    }

    fn head(&self, checks: &mut Checks, key: &str) -> Value {
        self.json(
            checks,
            &format!("head-object {key}"),
            &["s3api", "head-object", "--bucket", BUCKET, "--key", key],
        )
    }
}

fn url(key: &str) -> String {
    format!("s3://{BUCKET}/{key}")
}

/// How many of the CLI's result lines start with `start` (every one, for an empty `start`);
/// progress lines (`Completed ...`, ended by a carriage return) are left out.
fn result_lines(stdout: &str, start: &str) -> usize {
    stdout
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("Completed "))
        .filter(|line| line.starts_with(start))
        .count()
}

fn bucket_names(listing: &Value) -> Vec<String> {
    listing["Buckets"]
        .as_array()
        .map(|buckets| {
            buckets
                .iter()
                .filter_map(|b| b["Name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn strings(listing: &Value, list: &str, field: &str) -> Vec<String> {
    listing[list]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item[field].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn small_objects(cli: &Cli<'_>, work: &Workspace, checks: &mut Checks) {
    for (name, key, body) in [
        ("hello.txt", SMALL_KEY, SMALL_BODY),
        ("empty.bin", EMPTY_KEY, &b""[..]),
    ] {
        let up = cli.run(&["s3", "cp", &work.arg(name), &url(key)]);
        if let Some(stdout) = checks.ran(&format!("s3 cp up {key}"), &up) {
            checks.check(
                &format!("s3 cp up {key} reports the upload"),
                stdout.contains("upload: "),
                || stdout.clone(),
            );
        }
        let back = work.path(&format!("{name}.back"));
        let down = cli.run(&["s3", "cp", &url(key), &path_arg(&back)]);
        checks.ran(&format!("s3 cp down {key}"), &down);
        checks.eq(
            &format!("{key} read back with s3 cp"),
            sha256_file(&back),
            Some(sha256_hex(body)),
        );
        let head = cli.head(checks, key);
        checks.eq(
            &format!("head-object {key} ContentLength"),
            head["ContentLength"].as_u64(),
            Some(body.len() as u64),
        );
    }

    // An object that is not there: the CLI reports the S3 code.
    let missing = cli.run(&[
        "s3api",
        "get-object",
        "--bucket",
        BUCKET,
        "--key",
        "small/none.txt",
        &work.arg("none.back"),
    ]);
    checks.refused("get-object of a missing key", &missing, "NoSuchKey");
}

fn big_object(cli: &Cli<'_>, work: &Workspace, checks: &mut Checks) {
    let up = cli.run(&["s3", "cp", &path_arg(&work.big), &url(BIG_KEY)]);
    checks.ran("s3 cp up of 100 MiB (multipart)", &up);
    let head = cli.head(checks, BIG_KEY);
    checks.eq(
        "100 MiB ContentLength",
        head["ContentLength"].as_u64(),
        Some(BIG_SIZE as u64),
    );
    let etag = head["ETag"].as_str().unwrap_or_default().to_owned();
    checks.check(
        "100 MiB ETag is a multipart ETag of 13 parts",
        etag.trim_matches('"')
            .ends_with(&format!("-{PARTS_OF_BIG}")),
        || format!("ETag {etag:?}"),
    );
    let back = work.path("big.back");
    let down = cli.run(&["s3", "cp", &url(BIG_KEY), &path_arg(&back)]);
    checks.ran("s3 cp down of 100 MiB", &down);
    checks.eq(
        "100 MiB read back with s3 cp",
        sha256_file(&back),
        Some(work.big_sha256.clone()),
    );

    let ranged = work.path("ranged.back");
    for (index, &(first, last)) in BIG_RANGES.iter().enumerate() {
        let range = format!("bytes={first}-{last}");
        let reply = cli.json(
            checks,
            &format!("get-object --range {range}"),
            &[
                "s3api",
                "get-object",
                "--bucket",
                BUCKET,
                "--key",
                BIG_KEY,
                "--range",
                &range,
                &path_arg(&ranged),
            ],
        );
        checks.eq(
            &format!("{range} ContentRange"),
            reply["ContentRange"].as_str().map(str::to_owned),
            Some(format!("bytes {first}-{last}/{BIG_SIZE}")),
        );
        checks.eq(
            &format!("{range} bytes"),
            sha256_file(&ranged),
            Some(sha256_hex(work.big_range(index))),
        );
    }

    // A server-side copy of 100 MiB: the CLI copies it in parts (UploadPartCopy).
    let copy_key = "big/copy.bin";
    let copied = cli.run(&["s3", "cp", &url(BIG_KEY), &url(copy_key)]);
    checks.ran(
        "s3 cp of 100 MiB bucket to bucket (multipart copy)",
        &copied,
    );
    let head = cli.head(checks, copy_key);
    checks.eq(
        "100 MiB copy ContentLength",
        head["ContentLength"].as_u64(),
        Some(BIG_SIZE as u64),
    );
    // Ranged reads stand in for a second 100 MiB download: they cover every part boundary
    // of interest and the tail.
    for (index, &(first, last)) in BIG_RANGES.iter().enumerate() {
        let range = format!("bytes={first}-{last}");
        cli.json(
            checks,
            &format!("get-object of the copy --range {range}"),
            &[
                "s3api",
                "get-object",
                "--bucket",
                BUCKET,
                "--key",
                copy_key,
                "--range",
                &range,
                &path_arg(&ranged),
            ],
        );
        checks.eq(
            &format!("copy {range} bytes"),
            sha256_file(&ranged),
            Some(sha256_hex(work.big_range(index))),
        );
    }
}

fn tree_sync_and_listing(cli: &Cli<'_>, work: &Workspace, checks: &mut Checks) {
    let tree = work.tree("tree");
    let remote = url(TREE_PREFIX);
    let up = cli.run(&["s3", "sync", &path_arg(&tree), &remote]);
    if let Some(stdout) = checks.ran("s3 sync up of 2,500 files", &up) {
        let uploads = result_lines(&stdout, "upload: ");
        checks.eq(
            "s3 sync up reports 2,500 uploads",
            uploads,
            tree_keys().len(),
        );
    }
    let again = cli.run(&["s3", "sync", &path_arg(&tree), &remote]);
    if let Some(stdout) = checks.ran("s3 sync up again", &again) {
        checks.eq(
            "s3 sync up again transfers nothing",
            result_lines(&stdout, ""),
            0,
        );
    }
    let copy = work.path("tree-back");
    let down = cli.run(&["s3", "sync", &remote, &path_arg(&copy)]);
    if let Some(stdout) = checks.ran("s3 sync down of 2,500 objects", &down) {
        let downloads = result_lines(&stdout, "download: ");
        checks.eq(
            "s3 sync down reports 2,500 downloads",
            downloads,
            tree_keys().len(),
        );
    }
    let diff = Command::new("diff")
        .arg("-r")
        .arg(&tree)
        .arg(&copy)
        .output()
        .expect("run diff");
    checks.check("diff -r of the synced trees", diff.status.success(), || {
        String::from_utf8_lossy(&diff.stdout).into_owned()
    });

    let top = cli.json(
        checks,
        "list-objects-v2 with a delimiter",
        &[
            "s3api",
            "list-objects-v2",
            "--bucket",
            BUCKET,
            "--prefix",
            TREE_PREFIX,
            "--delimiter",
            "/",
        ],
    );
    checks.eq(
        "common prefixes at the top of the tree",
        strings(&top, "CommonPrefixes", "Prefix"),
        tree_dirs(),
    );
    checks.eq(
        "keys at the top of the tree",
        strings(&top, "Contents", "Key"),
        Vec::new(),
    );
    let dir = cli.json(
        checks,
        "list-objects-v2 of one directory",
        &[
            "s3api",
            "list-objects-v2",
            "--bucket",
            BUCKET,
            "--prefix",
            TREE_LISTED_DIR,
            "--delimiter",
            "/",
        ],
    );
    checks.eq(
        "keys of one directory",
        strings(&dir, "Contents", "Key"),
        listed_dir_keys(),
    );
    checks.eq(
        "prefixes of one directory",
        strings(&dir, "CommonPrefixes", "Prefix"),
        Vec::new(),
    );

    // Paging without a delimiter: pages of 700 keys, 1,000 keys per CLI call, resumed with the
    // token the CLI prints, until it prints none.
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    for call in 0..10 {
        let mut args = vec![
            "s3api",
            "list-objects-v2",
            "--bucket",
            BUCKET,
            "--prefix",
            TREE_PREFIX,
            "--page-size",
            "700",
            "--max-items",
            "1000",
        ];
        if let Some(token) = &token {
            args.extend(["--starting-token", token.as_str()]);
        }
        let page = cli.json(checks, &format!("list-objects-v2 call {call}"), &args);
        keys.extend(strings(&page, "Contents", "Key"));
        token = page["NextToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    checks.eq("paged listing: every key once, in order", keys, tree_keys());

    let ls = cli.run(&["s3", "ls", &remote]);
    if let Some(stdout) = checks.ran("s3 ls of the tree", &ls) {
        let pre: Vec<String> = stdout
            .lines()
            .filter_map(|l| l.trim().strip_prefix("PRE "))
            .map(|p| format!("{TREE_PREFIX}{p}"))
            .collect();
        checks.eq("s3 ls shows the directories", pre, tree_dirs());
    }
    let ls = cli.run(&["s3", "ls", "--recursive", &remote]);
    if let Some(stdout) = checks.ran("s3 ls --recursive of the tree", &ls) {
        let listed: Vec<String> = stdout
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .map(str::to_owned)
            .collect();
        checks.eq(
            "s3 ls --recursive lists every key once, in order",
            listed,
            tree_keys(),
        );
    }
}

fn metadata_and_copy(cli: &Cli<'_>, work: &Workspace, checks: &mut Checks) {
    let metadata: Vec<String> = META_PAIRS.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let up = cli.run(&[
        "s3",
        "cp",
        &work.arg("doc.md"),
        &url(META_KEY),
        "--content-type",
        META_CONTENT_TYPE,
        "--metadata",
        &metadata.join(","),
    ]);
    checks.ran("s3 cp with --content-type and --metadata", &up);
    let expected_meta: Value = META_PAIRS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    for key in [META_KEY, COPY_KEY] {
        if key == COPY_KEY {
            let copied = cli.run(&["s3", "cp", &url(META_KEY), &url(COPY_KEY)]);
            checks.ran("s3 cp bucket to bucket (CopyObject)", &copied);
        }
        let head = cli.head(checks, key);
        checks.eq(
            &format!("{key} ContentType"),
            head["ContentType"].as_str(),
            Some(META_CONTENT_TYPE),
        );
        checks.eq(
            &format!("{key} Metadata"),
            &head["Metadata"],
            &expected_meta,
        );
        checks.eq(
            &format!("{key} ContentLength"),
            head["ContentLength"].as_u64(),
            Some(META_BODY.len() as u64),
        );
    }

    let replaced = cli.json(
        checks,
        "copy-object with REPLACE",
        &[
            "s3api",
            "copy-object",
            "--bucket",
            BUCKET,
            "--key",
            "copy/replaced.md",
            "--copy-source",
            &format!("{BUCKET}/{META_KEY}"),
            "--metadata-directive",
            "REPLACE",
            "--metadata",
            "color=red",
            "--content-type",
            "text/plain",
        ],
    );
    checks.check(
        "copy-object reports an ETag",
        replaced["CopyObjectResult"]["ETag"].is_string(),
        || replaced.to_string(),
    );
    let head = cli.head(checks, "copy/replaced.md");
    checks.eq(
        "replaced copy ContentType",
        head["ContentType"].as_str(),
        Some("text/plain"),
    );
    checks.eq(
        "replaced copy Metadata",
        head["Metadata"].to_string(),
        r#"{"color":"red"}"#.to_owned(),
    );
    let back = work.path("replaced.back");
    let down = cli.run(&["s3", "cp", &url("copy/replaced.md"), &path_arg(&back)]);
    checks.ran("s3 cp down of the replaced copy", &down);
    checks.eq(
        "replaced copy content",
        sha256_file(&back),
        Some(sha256_hex(META_BODY)),
    );
}

fn presign(cli: &Cli<'_>, node: &TestNode, aws: &Aws, checks: &mut Checks) {
    // CLI v1 presigns with SigV2 unless `s3.signature_version` says `s3v4`; both must work.
    for signature_version in [None, Some("s3v4")] {
        if let Some(version) = signature_version {
            aws.configure_set("default.s3.signature_version", version);
        }
        let presigned = cli.run(&["s3", "presign", &url(SMALL_KEY), "--expires-in", "300"]);
        let Some(url) = checks.ran("s3 presign", &presigned) else {
            continue;
        };
        let kind = if url.contains("X-Amz-Signature=") {
            "SigV4"
        } else {
            "SigV2"
        };
        match fetch_presigned(node, &url) {
            Ok((status, body)) => {
                checks.eq(
                    &format!("GET of the {kind} presigned URL: status"),
                    status,
                    200,
                );
                checks.eq(
                    &format!("GET of the {kind} presigned URL: body"),
                    body,
                    small_text(),
                );
            }
            Err(problem) => checks.fail("s3 presign", problem),
        }
    }
}

fn deletes(cli: &Cli<'_>, checks: &mut Checks) {
    let rm = cli.run(&["s3", "rm", &url(SMALL_KEY)]);
    if let Some(stdout) = checks.ran("s3 rm of one object", &rm) {
        checks.eq(
            "s3 rm reports the deletion",
            result_lines(&stdout, &format!("delete: {}", url(SMALL_KEY))),
            1,
        );
    }
    let head = cli.run(&[
        "s3api",
        "head-object",
        "--bucket",
        BUCKET,
        "--key",
        SMALL_KEY,
    ]);
    checks.refused("head-object after s3 rm", &head, "(404)");

    let delete = serde_json::json!({
        "Objects": [{"Key": EMPTY_KEY}, {"Key": COPY_KEY}],
        "Quiet": false,
    });
    let deleted = cli.json(
        checks,
        "delete-objects",
        &[
            "s3api",
            "delete-objects",
            "--bucket",
            BUCKET,
            "--delete",
            &delete.to_string(),
        ],
    );
    let mut keys = strings(&deleted, "Deleted", "Key");
    keys.sort();
    checks.eq(
        "delete-objects reports both keys deleted",
        keys,
        vec![COPY_KEY.to_owned(), EMPTY_KEY.to_owned()],
    );
    checks.eq(
        "delete-objects reports no errors",
        deleted["Errors"].as_array().map_or(0, Vec::len),
        0,
    );

    let not_empty = cli.run(&["s3", "rb", &format!("s3://{BUCKET}")]);
    checks.refused(
        "s3 rb of a bucket with objects",
        &not_empty,
        "BucketNotEmpty",
    );

    let rm = cli.run(&["s3", "rm", "--recursive", &format!("s3://{BUCKET}/")]);
    if let Some(stdout) = checks.ran("s3 rm --recursive", &rm) {
        // The tree, the two large objects, the metadata object and the REPLACE copy.
        let deleted = result_lines(&stdout, "delete: ");
        checks.eq(
            "s3 rm --recursive deletes every remaining object",
            deleted,
            tree_keys().len() + 4,
        );
    }
    let rest = cli.json(
        checks,
        "list-objects-v2 after rm",
        &["s3api", "list-objects-v2", "--bucket", BUCKET],
    );
    checks.eq(
        "bucket is empty after rm --recursive",
        strings(&rest, "Contents", "Key"),
        Vec::new(),
    );
    let rb = cli.run(&["s3", "rb", &format!("s3://{BUCKET}")]);
    if let Some(stdout) = checks.ran("s3 rb", &rb) {
        checks.eq(
            "s3 rb output",
            stdout.trim(),
            format!("remove_bucket: {BUCKET}").as_str(),
        );
    }
    let buckets = cli.json(checks, "list-buckets after rb", &["s3api", "list-buckets"]);
    checks.eq("list-buckets after rb", bucket_names(&buckets), Vec::new());
}
