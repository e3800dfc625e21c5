//! Runs a Python client scenario (`tests/clients/*_scenario.py`) against a node and turns the
//! checks it prints into [`Checks`].

use std::path::PathBuf;

use serde_json::Value;

use crate::clients::support::{Checks, Tool, Workspace};
use crate::common::TestNode;

/// Where the scenario scripts live.
fn script_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("clients")
        .join(name)
}

/// What a script needs to reach the node and find the files of `work`.
pub struct Target<'a> {
    /// The node.
    pub node: &'a TestNode,
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The credential.
    pub access_key: &'a str,
    /// Its secret.
    pub secret: &'a str,
    /// The bucket the scenario creates.
    pub bucket: &'a str,
    /// The CA bundle that verifies the node's certificate, over HTTPS.
    pub ca_bundle: Option<PathBuf>,
}

/// Runs `script` with `python3` and records its checks; a script that exits non-zero, or
/// prints no check list, fails with its output.
pub fn run_scenario(checks: &mut Checks, script: &str, target: &Target<'_>, work: &Workspace) {
    let home = target.node.root().join(format!("{script}.home"));
    let mut tool = Tool::new("python3", &home)
        .env("VH_ENDPOINT", &target.endpoint)
        .env("VH_HOST", &format!("127.0.0.1:{}", target.node.port()))
        .env("VH_ACCESS_KEY", target.access_key)
        .env("VH_SECRET_KEY", target.secret)
        .env("VH_BUCKET", target.bucket)
        .env(
            "VH_WORK_DIR",
            work.dir.to_str().expect("temporary paths are UTF-8"),
        )
        .env("VH_BIG_SHA256", &work.big_sha256);
    if let Some(ca) = &target.ca_bundle {
        tool = tool.env(
            "VH_CA_BUNDLE",
            ca.to_str().expect("temporary paths are UTF-8"),
        );
    }
    let path = script_path(script);
    let run = tool.run(&[path.to_str().expect("the source tree path is UTF-8")]);
    let last_line = run
        .stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty());
    let parsed: Option<Value> = last_line.and_then(|line| serde_json::from_str(line).ok());
    let Some(list) = parsed.as_ref().and_then(|v| v["checks"].as_array()) else {
        checks.fail(script, format!("printed no check list; {}", run.describe()));
        return;
    };
    if !run.success {
        checks.fail(script, run.describe());
    }
    for item in list {
        let what = item["what"].as_str().unwrap_or("(unnamed check)");
        let ok = item["ok"].as_bool().unwrap_or(false);
        checks.check(what, ok, || {
            item["detail"].as_str().unwrap_or_default().to_owned()
        });
    }
}
