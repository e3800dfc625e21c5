//! s3fs-fuse mounts a bucket of the node; files written, read and removed through the mount
//! must be what the AWS CLI sees, and the reverse. The mount is taken down when the test ends,
//! whatever happened.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::clients::support::{
    Checks, Run, node_with_credential, path_arg, sha256_file, sha256_hex,
};
use crate::common::{Aws, TestNode, random_bytes};

const BUCKET: &str = "matrix-s3fs";
/// How long s3fs may take to mount.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(30);
/// A file larger than s3fs's multipart size (10 MB by default), so it uploads in parts.
const LARGE_SIZE: usize = 24 << 20;

/// Runs the scenario; the test fails with every check that did not hold.
pub fn scenario() {
    let (node, access_key, secret) = node_with_credential("s3fs");
    let aws = node.aws();
    aws.configure(&access_key, &secret);
    let mut checks = Checks::new("s3fs-fuse");
    let made = aws.run(&["s3", "mb", &format!("s3://{BUCKET}")]);
    assert!(made.success(), "aws s3 mb failed: {}", made.stderr);

    let mount = Mount::start(&node, &access_key, &secret);
    let mnt = mount.dir.clone();
    let work = node.root().join("work");
    fs::create_dir_all(&work).expect("create the work directory");

    // Written through the mount, seen through the CLI.
    let small = b"written through s3fs\n".to_vec();
    let large = random_bytes(LARGE_SIZE);
    fs::write(work.join("small.txt"), &small).expect("write the small file");
    fs::write(work.join("large.bin"), &large).expect("write the large file");
    let cp = |from: &Path, to: &Path| Run::from_command(Command::new("cp").arg(from).arg(to));
    checks.ran(
        "cp of a small file into the mount",
        &cp(&work.join("small.txt"), &mnt.join("small.txt")),
    );
    checks.check(
        "mkdir in the mount",
        fs::create_dir(mnt.join("docs")).is_ok(),
        || "mkdir failed".to_owned(),
    );
    checks.ran(
        "cp of a 24 MiB file into the mount",
        &cp(&work.join("large.bin"), &mnt.join("docs/large.bin")),
    );

    let listed: Vec<String> = fs::read_dir(&mnt)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut listed = listed;
    listed.sort();
    checks.eq(
        "ls of the mount",
        listed,
        vec!["docs".to_owned(), "small.txt".to_owned()],
    );
    checks.eq(
        "cat of the small file through the mount",
        fs::read(mnt.join("small.txt")).ok(),
        Some(small.clone()),
    );
    checks.eq(
        "cmp of the 24 MiB file through the mount",
        sha256_file(&mnt.join("docs/large.bin")),
        Some(sha256_hex(&large)),
    );

    let keys = list_keys(&aws, &mut checks);
    checks.eq(
        "the CLI lists what was written through the mount",
        keys,
        vec![
            "docs/".to_owned(),
            "docs/large.bin".to_owned(),
            "small.txt".to_owned(),
        ],
    );
    for (key, data) in [("small.txt", &small), ("docs/large.bin", &large)] {
        let back = work.join("cli.back");
        let down = aws.run(&[
            "s3",
            "cp",
            "--no-progress",
            &format!("s3://{BUCKET}/{key}"),
            &path_arg(&back),
        ]);
        checks.check(&format!("aws s3 cp of {key}"), down.success(), || {
            down.stderr.clone()
        });
        checks.eq(
            &format!("{key} through the CLI"),
            sha256_file(&back),
            Some(sha256_hex(data)),
        );
    }

    // Written through the CLI, seen through the mount.
    let from_cli = work.join("from-cli.txt");
    fs::write(&from_cli, "written with the AWS CLI\n").expect("write a file");
    let up = aws.run(&[
        "s3",
        "cp",
        "--no-progress",
        &path_arg(&from_cli),
        &format!("s3://{BUCKET}/docs/from-cli.txt"),
    ]);
    checks.check("aws s3 cp into the bucket", up.success(), || {
        up.stderr.clone()
    });
    let seen = wait_until(Duration::from_secs(10), || {
        mnt.join("docs/from-cli.txt").exists()
    });
    checks.check("the CLI's object appears in the mount", seen, || {
        "docs/from-cli.txt never appeared".to_owned()
    });
    checks.eq(
        "cat of the CLI's object through the mount",
        fs::read_to_string(mnt.join("docs/from-cli.txt"))
            .ok()
            .as_deref(),
        Some("written with the AWS CLI\n"),
    );

    // Removed through the mount, gone for the CLI.
    checks.check(
        "rm in the mount",
        fs::remove_file(mnt.join("small.txt")).is_ok(),
        || "rm failed".to_owned(),
    );
    checks.check(
        "rm in the mount",
        fs::remove_file(mnt.join("docs/large.bin")).is_ok(),
        || "rm failed".to_owned(),
    );
    let head = aws.run(&[
        "s3api",
        "head-object",
        "--bucket",
        BUCKET,
        "--key",
        "small.txt",
    ]);
    checks.check(
        "head-object after rm through the mount",
        !head.success() && head.stderr.contains("(404)"),
        || format!("{head:?}"),
    );
    let keys = list_keys(&aws, &mut checks);
    checks.eq(
        "the CLI lists what is left after rm",
        keys,
        vec!["docs/".to_owned(), "docs/from-cli.txt".to_owned()],
    );

    // The mount goes down (in its Drop) after this, also when a check failed.
    checks.finish();
    drop(mount);
}

/// Every key of the bucket, through `aws s3api list-objects-v2`.
fn list_keys(aws: &Aws, checks: &mut Checks) -> Vec<String> {
    let listing = aws.run(&["s3api", "list-objects-v2", "--bucket", BUCKET]);
    if !checks.check("list-objects-v2", listing.success(), || {
        listing.stderr.clone()
    }) {
        return Vec::new();
    }
    let parsed: Value = serde_json::from_str(&listing.stdout).unwrap_or(Value::Null);
    parsed["Contents"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["Key"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    done()
}

/// An s3fs process in the foreground (`-f`) with the bucket mounted; unmounted and stopped
/// when dropped.
struct Mount {
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Mount {
    /// Mounts [`BUCKET`] at `NODE_DIR/mnt`, path style, SigV4, and waits for the mount.
    fn start(node: &TestNode, access_key: &str, secret: &str) -> Self {
        let dir = node.root().join("mnt");
        fs::create_dir_all(&dir).expect("create the mount point");
        let passwd = node.root().join("s3fs-passwd");
        fs::write(&passwd, format!("{access_key}:{secret}\n"))
            .expect("write the s3fs password file");
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&passwd, fs::Permissions::from_mode(0o600))
            .expect("restrict the password file");
        let log = node.root().join("s3fs.log");
        let log_file = File::create(&log).expect("create the s3fs log");
        let child = Command::new("s3fs")
            .arg(BUCKET)
            .arg(&dir)
            .arg("-f")
            .args(["-o", &format!("url={}", node.endpoint())])
            .args(["-o", "use_path_request_style"])
            .args(["-o", &format!("passwd_file={}", passwd.display())])
            .args(["-o", "endpoint=us-east-1", "-o", "sigv4"])
            .args(["-o", "retries=1", "-o", "dbglevel=info"])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWSACCESSKEYID")
            .env_remove("AWSSECRETACCESSKEY")
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                log_file.try_clone().expect("clone the log handle"),
            ))
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("start s3fs (.ci/run installs it)");
        let mut mount = Self {
            dir,
            log,
            child: Some(child),
        };
        let mounted = wait_until(MOUNT_TIMEOUT, || mount.is_mounted() || mount.exited());
        assert!(
            mounted && mount.is_mounted(),
            "s3fs did not mount {} within {MOUNT_TIMEOUT:?}\n----- s3fs log -----\n{}",
            mount.dir.display(),
            fs::read_to_string(&mount.log).unwrap_or_default()
        );
        mount
    }

    fn is_mounted(&self) -> bool {
        let target = path_arg(&self.dir);
        fs::read_to_string("/proc/mounts")
            .map(|mounts| {
                mounts
                    .lines()
                    .any(|line| line.split_whitespace().nth(1) == Some(target.as_str()))
            })
            .unwrap_or(false)
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.is_mounted() {
            let unmounted = Command::new("fusermount")
                .arg("-u")
                .arg(&self.dir)
                .status()
                .is_ok_and(|s| s.success());
            if !unmounted {
                // A busy mount: detach it lazily so no test leaves a mount behind.
                let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
            }
        }
        if let Some(mut child) = self.child.take() {
            if !wait_until(Duration::from_secs(10), || {
                matches!(child.try_wait(), Ok(Some(_)))
            }) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "----- s3fs log -----\n{}",
                fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}
