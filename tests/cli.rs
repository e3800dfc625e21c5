//! `vh` end to end: every command through the real binary against a real node, in its human and
//! `--json` forms, plus what happens without a node and to callers outside the node's group.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Payload, TestNode, vh_bin};
use serde_json::Value;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `vh`, asserting failure; returns stderr.
fn vh_err(node: &TestNode, args: &[&str]) -> String {
    let output = node.vh(args);
    assert!(
        !output.status.success(),
        "vh {args:?} should have failed but printed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    stderr(&output)
}

/// `vh` without a node to talk to.
fn vh_alone(args: &[&str]) -> Output {
    Command::new(vh_bin())
        .args(args)
        .env_remove("VH_CONFIG")
        .env_remove("VH_SOCKET")
        .stdin(Stdio::null())
        .output()
        .expect("run vh")
}

fn stdout_of(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed with {}: {}",
        output.status,
        stderr(output)
    );
    String::from_utf8(output.stdout.clone()).expect("vh prints UTF-8")
}

fn find<'a>(list: &'a Value, field: &str, value: &str) -> Option<&'a Value> {
    list.as_array()
        .expect("a JSON list")
        .iter()
        .find(|item| item[field] == value)
}

fn put_object(node: &TestNode, creds: (&str, &str), path: &str, body: &[u8]) {
    node.raw_request("PUT", path, &[], body, Some(creds), Payload::Signed)
        .assert_ok(&format!("PUT {path}"));
}

#[test]
fn vaults_are_created_listed_shown_renamed_and_deleted() {
    let node = TestNode::start();
    let (ak, sk) = node.create_credential("vaults");

    let created = node.vh_json(&["vault", "create", "photos"]);
    assert_eq!(created["name"], "photos", "{created}");
    let id = created["id"].as_i64().expect("an id");
    let text = node.vh_ok(&["vault", "create", "scratch"]);
    assert!(text.starts_with("vault scratch (id "), "{text}");

    let listed = node.vh_json(&["vault", "list"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    let photos = find(&listed, "name", "photos").expect("photos is listed");
    assert_eq!(photos["id"], id);
    assert!(
        photos["created_at"]
            .as_u64()
            .is_some_and(|at| at <= now_secs())
    );
    let text = node.vh_ok(&["vault", "list"]);
    assert!(text.starts_with("ID "), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("{id} ")) && l.contains("photos"))
    );

    node.vh_json(&["s3-gateway", "bucket", "bind", "pics", "--vault", "photos"]);
    put_object(&node, (&ak, &sk), "/pics/a.jpg", &[7; 1000]);
    put_object(&node, (&ak, &sk), "/pics/dir/b.jpg", &[8; 24]);

    let shown = node.vh_json(&["vault", "show", &id.to_string()]);
    assert_eq!(shown["name"], "photos", "{shown}");
    assert_eq!(shown["buckets"], serde_json::json!(["pics"]), "{shown}");
    assert_eq!(
        (shown["objects"].as_u64(), shown["bytes"].as_u64()),
        (Some(2), Some(1024))
    );
    let text = node.vh_ok(&["vault", "show", "photos"]);
    for line in [
        format!("id:        {id}"),
        "name:      photos".to_owned(),
        "buckets:   pics".to_owned(),
        "objects:   2".to_owned(),
        "size:      1.0 KiB (1024 bytes)".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }

    // Renaming keeps the id and the bucket serving it.
    let text = node.vh_ok(&["vault", "rename", "photos", "pictures"]);
    assert_eq!(
        text.trim(),
        format!("renamed vault photos (id {id}) to pictures")
    );
    assert_eq!(node.vh_json(&["vault", "show", "pictures"])["id"], id);
    let missing = vh_err(&node, &["vault", "show", "photos"]);
    assert!(
        missing.contains("no vault named photos") && missing.contains("vh vault list"),
        "{missing}"
    );
    let taken = vh_err(&node, &["vault", "rename", "pictures", "scratch"]);
    assert!(taken.contains("scratch exists already"), "{taken}");
    node.raw_request(
        "GET",
        "/pics/a.jpg",
        &[],
        b"",
        Some((&ak, &sk)),
        Payload::Signed,
    )
    .assert_ok("GET after the rename");

    // A bound vault is refused without --force, and stays.
    let refused = vh_err(&node, &["vault", "delete", "pictures"]);
    assert!(
        refused.contains("bound to bucket(s) pics") && refused.contains("--force"),
        "{refused}"
    );
    assert_eq!(node.vh_json(&["vault", "show", "pictures"])["objects"], 2);

    let text = node.vh_ok(&["vault", "delete", "pictures", "--force"]);
    assert!(text.contains("unbound bucket(s) pics"), "{text}");
    assert!(
        text.contains(&format!(
            "deleted vault pictures (id {id}) with 2 object(s), 1024 bytes"
        )),
        "{text}"
    );
    assert!(
        find(
            &node.vh_json(&["s3-gateway", "bucket", "list"]),
            "name",
            "pics"
        )
        .is_none()
    );
    assert!(find(&node.vh_json(&["vault", "list"]), "name", "pictures").is_none());
    node.raw_request(
        "GET",
        "/pics/a.jpg",
        &[],
        b"",
        Some((&ak, &sk)),
        Payload::Signed,
    )
    .assert_error(404, "NoSuchBucket", "GET after the vault was deleted");

    // An unbound vault needs no --force.
    let text = node.vh_ok(&["vault", "delete", "scratch"]);
    assert!(text.starts_with("deleted vault scratch"), "{text}");
    assert_eq!(node.vh_json(&["vault", "list"]), serde_json::json!([]));
}

#[test]
fn buckets_are_created_bound_listed_shown_and_unbound() {
    let node = TestNode::start();
    let created = node.vh_json(&["s3-gateway", "bucket", "create-local", "archive"]);
    assert_eq!(
        (created["name"].as_str(), created["mode"].as_str()),
        (Some("archive"), Some("local"))
    );
    assert_eq!(created["vault_name"], "archive");
    let text = node.vh_ok(&[
        "s3-gateway",
        "bucket",
        "create-local",
        "notes",
        "--no-api-exclusive",
    ]);
    assert!(text.starts_with("bucket notes on vault notes ("), "{text}");
    let bound = node.vh_json(&[
        "s3-gateway",
        "bucket",
        "bind",
        "mirror",
        "--vault",
        "archive",
        "--api-exclusive",
    ]);
    assert_eq!(
        (
            bound["vault_name"].as_str(),
            bound["api_exclusive"].as_bool()
        ),
        (Some("archive"), Some(true))
    );

    let listed = node.vh_json(&["s3-gateway", "bucket", "list"]);
    let names: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(names, ["archive", "mirror", "notes"]);
    assert_eq!(
        find(&listed, "name", "notes").expect("notes")["api_exclusive"],
        false
    );
    let text = node.vh_ok(&["s3-gateway", "bucket", "list"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("mirror ") && l.contains("archive") && l.ends_with("true")),
        "{text}"
    );

    let (ak, sk) = node.create_credential("buckets");
    put_object(&node, (&ak, &sk), "/mirror/x.bin", &[1; 3000]);
    let shown = node.vh_json(&["s3-gateway", "bucket", "show", "archive"]);
    assert_eq!(shown["name"], "archive", "{shown}");
    assert_eq!(
        (shown["objects"].as_u64(), shown["bytes"].as_u64()),
        (Some(1), Some(3000)),
        "{shown}"
    );
    let text = node.vh_ok(&["s3-gateway", "bucket", "show", "mirror"]);
    for line in [
        "bucket:         mirror",
        "mode:           local",
        "api-exclusive:  true",
        "objects:        1",
        "size:           2.9 KiB (3000 bytes)",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    assert!(text.contains("vault:          archive (id "), "{text}");

    let text = node.vh_ok(&["s3-gateway", "bucket", "unbind", "mirror"]);
    assert!(text.contains("unbound bucket mirror"), "{text}");
    let missing = vh_err(&node, &["s3-gateway", "bucket", "show", "mirror"]);
    assert!(
        missing.contains("no bucket named mirror") && missing.contains("bucket list"),
        "{missing}"
    );
    assert_eq!(
        node.vh_json(&["vault", "show", "archive"])["objects"],
        1,
        "the data stays"
    );
}

#[test]
fn credentials_are_created_listed_shown_and_revoked() {
    let node = TestNode::start();
    let before = now_secs();
    let created = node.vh_json(&[
        "s3-gateway",
        "creds",
        "create",
        "laptop",
        "--expires",
        "30d",
        "--description",
        "Ana's laptop",
    ]);
    let key = created["access_key_id"]
        .as_str()
        .expect("an access key")
        .to_owned();
    assert_eq!(
        created["secret_access_key"].as_str().map(str::len),
        Some(40)
    );
    assert_eq!(created["description"], "Ana's laptop");
    let expires = created["expires_at"].as_u64().expect("an expiry");
    assert!(
        (before + 30 * 86_400..=now_secs() + 30 * 86_400).contains(&expires),
        "{created}"
    );

    let text = node.vh_ok(&["s3-gateway", "creds", "create", "desktop"]);
    assert!(
        text.contains("secret_access_key: ") && text.contains("expires:           never"),
        "{text}"
    );
    assert!(text.contains("shown only now"), "{text}");

    let listed = node.vh_json(&["s3-gateway", "creds", "list"]);
    let laptop = find(&listed, "access_key_id", &key).expect("the credential is listed");
    assert_eq!(laptop["state"], "active", "{laptop}");
    assert_eq!(laptop["description"], "Ana's laptop");
    assert_eq!(laptop["expires_at"], expires);
    assert_eq!(laptop["last_used_at"], Value::Null);
    assert!(
        listed.to_string().find("secret").is_none(),
        "no secrets in a listing: {listed}"
    );
    let desktop = find(&listed, "name", "desktop").expect("desktop is listed");
    assert_eq!(desktop["expires_at"], Value::Null);
    let text = node.vh_ok(&["s3-gateway", "creds", "list"]);
    let line = text
        .lines()
        .find(|l| l.starts_with(&key))
        .expect("a line for the key");
    assert!(
        line.contains("laptop") && line.contains("active") && line.ends_with("never"),
        "{line}"
    );

    let shown = node.vh_json(&["s3-gateway", "creds", "show", &key]);
    assert_eq!(
        (shown["name"].as_str(), shown["state"].as_str()),
        (Some("laptop"), Some("active"))
    );
    let text = node.vh_ok(&["s3-gateway", "creds", "show", &key]);
    assert!(
        text.lines().any(|l| l == "description:    Ana's laptop"),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "last used:      never"), "{text}");

    let text = node.vh_ok(&["s3-gateway", "creds", "revoke", &key]);
    assert_eq!(text.trim(), format!("revoked {key}"));
    let shown = node.vh_json(&["s3-gateway", "creds", "show", &key]);
    assert_eq!(shown["state"], "revoked", "{shown}");
    assert!(shown["revoked_at"].as_u64().is_some_and(|at| at >= before));
    let missing = vh_err(&node, &["s3-gateway", "creds", "show", "VHNOSUCHKEY"]);
    assert!(missing.contains("creds list"), "{missing}");

    let refused = vh_err(
        &node,
        &[
            "s3-gateway",
            "creds",
            "create",
            "old",
            "--expires",
            "2020-01-01T00:00:00Z",
        ],
    );
    assert!(
        refused.contains("in the past") && refused.contains("--expires"),
        "{refused}"
    );
    let refused = vh_err(
        &node,
        &["s3-gateway", "creds", "create", "odd", "--expires", "soon"],
    );
    assert!(refused.contains("30d"), "{refused}");
}

#[test]
fn expired_credentials_are_refused_by_the_gateway() {
    let node = TestNode::start();
    node.create_bucket("archive");

    // Used once before it expires, so its secret is cached: expiry must still apply.
    let cached = node.vh_json(&["s3-gateway", "creds", "create", "cached", "--expires", "5s"]);
    let (cached_key, cached_secret) = (
        cached["access_key_id"].as_str().expect("a key").to_owned(),
        cached["secret_access_key"]
            .as_str()
            .expect("a secret")
            .to_owned(),
    );
    node.raw_request(
        "GET",
        "/",
        &[],
        b"",
        Some((&cached_key, &cached_secret)),
        Payload::Signed,
    )
    .assert_ok("ListBuckets before the expiry");
    let brief = node.vh_json(&["s3-gateway", "creds", "create", "brief", "--expires", "1s"]);
    let (brief_key, brief_secret) = (
        brief["access_key_id"].as_str().expect("a key").to_owned(),
        brief["secret_access_key"]
            .as_str()
            .expect("a secret")
            .to_owned(),
    );
    let (lasting_key, lasting_secret) = node.create_credential("lasting");

    thread::sleep(Duration::from_millis(5_300));
    let aws = node.aws();
    for (key, secret) in [(&cached_key, &cached_secret), (&brief_key, &brief_secret)] {
        let stderr = aws
            .with_credentials(key, secret)
            .run_err(&["s3api", "list-buckets"]);
        assert!(stderr.contains("InvalidAccessKeyId"), "{key}: {stderr}");
    }
    let listing = aws
        .with_credentials(&lasting_key, &lasting_secret)
        .json(&["s3api", "list-buckets"]);
    assert_eq!(listing["Buckets"][0]["Name"], "archive", "{listing}");

    let listed = node.vh_json(&["s3-gateway", "creds", "list"]);
    for key in [&cached_key, &brief_key] {
        assert_eq!(
            find(&listed, "access_key_id", key).expect("listed")["state"],
            "expired"
        );
    }
    let text = node.vh_ok(&["s3-gateway", "creds", "list"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with(brief_key.as_str()) && l.contains(" expired ")),
        "{text}"
    );
}

#[test]
fn last_use_appears_in_the_credential_list_after_a_request() {
    let node = TestNode::start();
    node.create_bucket("archive");
    let (key, secret) = node.create_credential("laptop");
    let (idle_key, _) = node.create_credential("idle");
    let before = now_secs();

    let listing = node
        .aws()
        .with_credentials(&key, &secret)
        .json(&["s3api", "list-buckets"]);
    assert_eq!(listing["Buckets"][0]["Name"], "archive");

    let listed = node.vh_json(&["s3-gateway", "creds", "list"]);
    let used = find(&listed, "access_key_id", &key).expect("listed")["last_used_at"]
        .as_u64()
        .expect("a last-use time after a request");
    assert!((before..=now_secs()).contains(&used), "{listed}");
    assert_eq!(
        find(&listed, "access_key_id", &idle_key).expect("listed")["last_used_at"],
        Value::Null
    );
    let text = node.vh_ok(&["s3-gateway", "creds", "list"]);
    let line = text
        .lines()
        .find(|l| l.starts_with(&key))
        .expect("a line for the key");
    assert!(!line.ends_with("never"), "{line}");
    let text = node.vh_ok(&["s3-gateway", "creds", "show", &key]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("last used:") && l.ends_with(" UTC")),
        "{text}"
    );
}

#[test]
fn services_status_and_version_answer_in_both_forms() {
    let node = TestNode::start();
    let status = node.vh_json(&["status"]);
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    let text = node.vh_ok(&["status"]);
    assert!(
        text.starts_with(&format!("vaulthalla {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );

    let gateway = node.vh_json(&["s3-gateway", "status"]);
    assert_eq!(
        (gateway["name"].as_str(), gateway["state"].as_str()),
        (Some("S3GatewayService"), Some("running"))
    );
    let text = node.vh_ok(&["s3-gateway", "status"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("S3GatewayService") && l.contains("running")),
        "{text}"
    );

    let restarted = node.vh_json(&["service", "restart", "JanitorService"]);
    assert_eq!(restarted["name"], "JanitorService");
    let stopped = node.vh_json(&["service", "stop", "JanitorService"]);
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    let text = node.vh_ok(&["service", "start", "JanitorService"]);
    assert!(
        text.lines().any(|l| l.starts_with("JanitorService")),
        "{text}"
    );

    let text = node.vh_ok(&["s3-gateway", "disable"]);
    assert!(text.contains("S3 gateway disabled"), "{text}");
    assert_eq!(node.vh_json(&["s3-gateway", "status"])["enabled"], false);
    let text = node.vh_ok(&["s3-gateway", "enable"]);
    assert!(text.contains("S3 gateway enabled"), "{text}");

    let version = env!("CARGO_PKG_VERSION");
    let text = node.vh_ok(&["version"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with(&format!("vh {version} (control protocol ")),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!("node {version} (control protocol ")),
        "{text}"
    );
    let json = node.vh_json(&["version"]);
    assert_eq!(
        (
            json["vh"]["version"].as_str(),
            json["node"]["version"].as_str()
        ),
        (Some(version), Some(version))
    );
    assert_eq!(json["vh"]["protocol"], json["node"]["protocol"]);
    assert_eq!(json["node_error"], Value::Null);
}

#[test]
fn without_a_node_vh_fails_and_names_the_fix() {
    let mut node = TestNode::start();
    let socket = node.socket();
    let socket = socket.to_str().expect("a UTF-8 path");
    node.stop();
    for args in [
        vec!["--socket", socket, "status"],
        vec!["--socket", socket, "vault", "list", "--json"],
        vec!["--socket", socket, "s3-gateway", "creds", "create", "x"],
    ] {
        let output = vh_alone(&args);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(output.stdout.is_empty(), "{args:?} printed to stdout");
        let err = stderr(&output);
        assert!(
            err.contains("cannot reach the node's control socket"),
            "{err}"
        );
        assert!(
            err.contains("is the node running? Start it with `vaulthalla`"),
            "{err}"
        );
    }

    // `vh version` still answers for itself.
    let text = stdout_of(&vh_alone(&["--socket", socket, "version"]), "vh version");
    assert!(
        text.starts_with(&format!("vh {} ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("node: unknown (cannot reach"), "{text}");
    let json: Value = serde_json::from_str(&stdout_of(
        &vh_alone(&["--socket", socket, "version", "--json"]),
        "vh version --json",
    ))
    .expect("JSON");
    assert_eq!(json["node"], Value::Null);
    assert!(
        json["node_error"]
            .as_str()
            .is_some_and(|e| e.contains("is the node running")),
        "{json}"
    );

    // A node killed without cleaning up leaves a socket nobody listens on.
    node.start_again();
    node.kill9();
    let err = stderr(&vh_alone(&["--socket", socket, "status"]));
    assert!(err.contains("is the node running?"), "{err}");
}

#[test]
fn completions_and_the_manual_page_come_from_the_command_tree() {
    let bash = stdout_of(&vh_alone(&["completions", "bash"]), "vh completions bash");
    for word in [
        "_vh()",
        "s3-gateway",
        "creds",
        "create-local",
        "rename",
        "--expires",
        "--force",
    ] {
        assert!(bash.contains(word), "no {word} in the bash completions");
    }
    let zsh = stdout_of(&vh_alone(&["completions", "zsh"]), "vh completions zsh");
    assert!(
        zsh.starts_with("#compdef vh"),
        "{}",
        &zsh[..zsh.len().min(200)]
    );
    let fish = stdout_of(&vh_alone(&["completions", "fish"]), "vh completions fish");
    assert!(
        fish.contains("complete -c vh"),
        "{}",
        &fish[..fish.len().min(200)]
    );
    let err = stderr(&vh_alone(&["completions", "tcsh"]));
    assert!(
        err.contains("possible values") && err.contains("bash"),
        "{err}"
    );

    let page = stdout_of(&vh_alone(&["man"]), "vh man");
    assert!(
        page.starts_with('.'),
        "not roff: {}",
        &page[..page.len().min(200)]
    );
    assert!(
        page.lines().any(|l| l.starts_with(".TH vh 1")),
        "no .TH header"
    );
    assert!(
        page.contains(".SH SYNOPSIS") && page.contains("s3\\-gateway"),
        "{page}"
    );

    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join("man1");
    stdout_of(
        &vh_alone(&["man", "--out-dir", out.to_str().expect("UTF-8")]),
        "vh man --out-dir",
    );
    for page in [
        "vh.1",
        "vh-vault.1",
        "vh-vault-delete.1",
        "vh-s3-gateway-creds-create.1",
    ] {
        let text =
            std::fs::read_to_string(out.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.lines().any(|l| l.starts_with(".TH ")),
            "{page} has no .TH header"
        );
    }
}

/// A command running `vh` as `uid`/`gid` (dropping root's supplementary groups), through a copy of
/// the binary that any user may execute.
fn vh_as(node: &TestNode, vh: &std::path::Path, uid: u32, gid: u32, args: &[&str]) -> Output {
    Command::new(vh)
        .arg("--socket")
        .arg(node.socket())
        .args(args)
        .uid(uid)
        .gid(gid)
        .env_remove("VH_CONFIG")
        .env_remove("VH_SOCKET")
        .stdin(Stdio::null())
        .output()
        .expect("run vh as another user")
}

#[test]
fn the_control_socket_admits_only_root_the_node_user_and_its_group() {
    const NOBODY: u32 = 65_534;
    let node = TestNode::start();
    let socket = std::fs::metadata(node.socket()).expect("the socket exists");
    assert_eq!(
        socket.mode() & 0o777,
        0o660,
        "socket mode {:o}",
        socket.mode()
    );
    let node_gid = std::fs::metadata("/proc/self").expect("/proc").gid();
    assert_eq!(
        socket.gid(),
        node_gid,
        "the socket belongs to the node's group"
    );
    if std::fs::metadata("/proc/self").expect("/proc").uid() != 0 {
        eprintln!("skipping the other-user half: it needs root to switch users");
        return;
    }

    // Let another user reach the socket at all, so the node's own check is what decides.
    let vh = node.root().join("vh");
    std::fs::copy(vh_bin(), &vh).expect("copy vh");
    std::fs::set_permissions(&vh, std::fs::Permissions::from_mode(0o755)).expect("chmod vh");
    std::fs::set_permissions(node.root(), std::fs::Permissions::from_mode(0o711))
        .expect("chmod the node directory");
    std::fs::set_permissions(node.socket(), std::fs::Permissions::from_mode(0o666))
        .expect("chmod the socket");

    let refused = vh_as(&node, &vh, NOBODY, NOBODY, &["vault", "list"]);
    assert!(!refused.status.success(), "uid {NOBODY} was let in");
    let err = stderr(&refused);
    assert!(
        err.contains(&format!("uid {NOBODY} may not administer this node")),
        "{err}"
    );
    assert!(err.contains("run vh with sudo"), "{err}");
    assert!(
        err.contains("join the node's group") && err.contains(&format!("gid {node_gid})")),
        "{err}"
    );

    let member = vh_as(&node, &vh, NOBODY, node_gid, &["vault", "list", "--json"]);
    assert_eq!(
        stdout_of(&member, "vh as a member of the node's group").trim(),
        "[]"
    );

    // A supplementary group counts too (setpriv sets one; std cannot without unsafe code).
    let setpriv = Command::new("setpriv")
        .args([
            "--reuid",
            &NOBODY.to_string(),
            "--regid",
            &NOBODY.to_string(),
        ])
        .arg(format!("--groups={node_gid}"))
        .arg(&vh)
        .arg("--socket")
        .arg(node.socket())
        .args(["vault", "list", "--json"])
        .stdin(Stdio::null())
        .output();
    match setpriv {
        Ok(output) => assert_eq!(
            stdout_of(&output, "vh with a supplementary group").trim(),
            "[]"
        ),
        Err(err) => eprintln!("skipping the supplementary-group case: setpriv: {err}"),
    }

    // With the socket's own mode the kernel refuses another user before the node does; vh still
    // names the fix.
    std::fs::set_permissions(node.socket(), std::fs::Permissions::from_mode(0o660))
        .expect("chmod the socket back");
    let denied = vh_as(&node, &vh, NOBODY, NOBODY, &["status"]);
    let err = stderr(&denied);
    assert!(
        err.contains("Permission denied") && err.contains("sudo"),
        "{err}"
    );
}

/// The state `vh status --json` gives a service.
fn service_state(node: &TestNode, name: &str) -> String {
    let status = node.vh_json(&["status"]);
    let service =
        find(&status["services"], "name", name).unwrap_or_else(|| panic!("no {name} in {status}"));
    service["state"].as_str().expect("a state").to_owned()
}

#[test]
fn vault_mount_flags_round_trip_and_are_saved_while_the_mount_is_off() {
    // The test nodes run without the mount unless asked, so the flag is all that changes here.
    let node = TestNode::start();
    assert_eq!(service_state(&node, "FuseService"), "disabled");
    let text = node.vh_ok(&["status"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("FuseService ") && l.contains("disabled")),
        "{text}"
    );
    let off = format!(
        "the flag is saved, but the FUSE mount is off; set fuse.enabled: true in {} to turn it on",
        node.config_path().display()
    );

    let created = node.vh_json(&["vault", "create", "photos"]);
    assert_eq!(created["mounted"], true, "{created}");
    let id = created["id"].as_i64().expect("an id");
    let subject = format!("vault photos (id {id})");

    let text = node.vh_ok(&["vault", "unmount", "photos"]);
    assert_eq!(text.trim(), format!("{subject} is unmounted: {off}"));
    let listed = node.vh_json(&["vault", "list"]);
    assert_eq!(
        find(&listed, "name", "photos").expect("photos")["mounted"],
        false
    );
    assert_eq!(node.vh_json(&["vault", "show", "photos"])["mounted"], false);
    let text = node.vh_ok(&["vault", "show", "photos"]);
    assert!(text.lines().any(|l| l == "mounted:   false"), "{text}");
    let text = node.vh_ok(&["vault", "list"]);
    assert!(
        text.lines().next().is_some_and(|h| h.contains(" MOUNTED ")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("{id} ")) && l.contains(" false ")),
        "{text}"
    );
    let text = node.vh_ok(&["vault", "unmount", &id.to_string()]);
    assert!(
        text.starts_with(&format!("{subject} was unmounted already: ")),
        "{text}"
    );

    let text = node.vh_ok(&["vault", "mount", &id.to_string()]);
    assert_eq!(text.trim(), format!("{subject} is mounted: {off}"));
    assert_eq!(node.vh_json(&["vault", "show", "photos"])["mounted"], true);
    let text = node.vh_ok(&["vault", "mount", "photos"]);
    assert!(
        text.starts_with(&format!("{subject} was mounted already: ")),
        "{text}"
    );

    let missing = vh_err(&node, &["vault", "mount", "nosuch"]);
    assert!(
        missing.contains("no vault named nosuch") && missing.contains("vh vault list"),
        "{missing}"
    );
}

#[test]
fn new_vaults_follow_mount_new_vaults() {
    let node = TestNode::start_with(|config| config.fuse.mount_new_vaults = Some(false));
    // A config without the mount may leave the key out; the node then reads it from a change.
    let config = std::fs::read_to_string(node.config_path()).expect("read the config");
    if !config.contains("mount_new_vaults") {
        let edited = config.replacen("fuse:\n", "fuse:\n  mount_new_vaults: false\n", 1);
        assert_ne!(config, edited, "the config has a fuse section");
        std::fs::write(node.config_path(), edited).expect("edit the config");
        common::wait_for(
            Duration::from_secs(20),
            "the node to read the edited config",
            || node.log().contains("config reloaded").then_some(()),
            || node.log_report(),
        );
    }
    let created = node.vh_json(&["vault", "create", "hidden"]);
    assert_eq!(created["mounted"], false, "{created}");
    let text = node.vh_ok(&["vault", "create", "quiet"]);
    assert!(
        text.starts_with("vault quiet (id ")
            && text.contains("hidden from the mount")
            && text.contains("`vh vault mount quiet`"),
        "{text}"
    );
    node.vh_json(&["s3-gateway", "bucket", "create-local", "shelf"]);
    assert_eq!(node.vh_json(&["vault", "show", "shelf"])["mounted"], false);

    node.vh_ok(&["vault", "mount", "hidden"]);
    let listed = node.vh_json(&["vault", "list"]);
    let flags: Vec<(&str, bool)> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| {
            (
                v["name"].as_str().expect("a name"),
                v["mounted"].as_bool().expect("a flag"),
            )
        })
        .collect();
    assert_eq!(
        flags,
        [("hidden", true), ("quiet", false), ("shelf", false)]
    );
}

#[test]
fn bucket_api_exclusivity_is_toggled_in_place_and_bind_defaults_to_shared() {
    let node = TestNode::start();
    let created = node.vh_json(&["s3-gateway", "bucket", "create-local", "archive"]);
    assert_eq!(created["api_exclusive"], true, "the config's default");
    let bound = node.vh_json(&[
        "s3-gateway",
        "bucket",
        "bind",
        "shared",
        "--vault",
        "archive",
    ]);
    assert_eq!(
        bound["api_exclusive"], false,
        "bind shares the vault unless asked"
    );

    let text = node.vh_ok(&["s3-gateway", "bucket", "api-exclusive", "archive", "off"]);
    assert!(
        text.starts_with(
            "bucket archive is not api-exclusive: the mount may write into vault archive (id "
        ),
        "{text}"
    );
    let text = node.vh_ok(&["s3-gateway", "bucket", "show", "archive"]);
    assert!(text.lines().any(|l| l == "api-exclusive:  false"), "{text}");
    assert_eq!(
        node.vh_json(&["s3-gateway", "bucket", "show", "archive"])["api_exclusive"],
        false
    );

    let text = node.vh_ok(&["s3-gateway", "bucket", "api-exclusive", "shared", "on"]);
    assert!(
        text.starts_with("bucket shared is api-exclusive: only the S3 gateway may write"),
        "{text}"
    );
    let text = node.vh_ok(&["s3-gateway", "bucket", "show", "shared"]);
    assert!(text.lines().any(|l| l == "api-exclusive:  true"), "{text}");
    let listed = node.vh_json(&["s3-gateway", "bucket", "list"]);
    assert_eq!(
        find(&listed, "name", "shared").expect("shared")["api_exclusive"],
        true
    );
    assert_eq!(
        find(&listed, "name", "archive").expect("archive")["api_exclusive"],
        false
    );

    // true and false are accepted too; anything else is refused by vh itself.
    node.vh_ok(&["s3-gateway", "bucket", "api-exclusive", "archive", "true"]);
    assert_eq!(
        node.vh_json(&["s3-gateway", "bucket", "show", "archive"])["api_exclusive"],
        true
    );
    let refused = vh_err(
        &node,
        &["s3-gateway", "bucket", "api-exclusive", "archive", "maybe"],
    );
    assert!(refused.contains("possible values: on, off"), "{refused}");
    let missing = vh_err(
        &node,
        &["s3-gateway", "bucket", "api-exclusive", "nosuch", "on"],
    );
    assert!(
        missing.contains("no bucket named nosuch") && missing.contains("bucket list"),
        "{missing}"
    );
}
