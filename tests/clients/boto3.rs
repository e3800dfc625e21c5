//! The client scenario with boto3 (`tests/clients/boto3_scenario.py`), once over plain HTTP and
//! once over HTTPS with a self-signed certificate for 127.0.0.1 that boto3 verifies.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::clients::python::{Target, run_scenario};
use crate::clients::support::{Checks, Workspace, node_with_credential};
use crate::common::TestNode;

const SCRIPT: &str = "boto3_scenario.py";

/// boto3 against `http://127.0.0.1:PORT`.
pub fn scenario_over_http() {
    let (node, access_key, secret) = node_with_credential("boto3-http");
    let work = Workspace::new(&node);
    let mut checks = Checks::new("boto3 over HTTP");
    let target = Target {
        node: &node,
        endpoint: node.endpoint(),
        access_key: &access_key,
        secret: &secret,
        bucket: "matrix-boto3-http",
        ca_bundle: None,
    };
    run_scenario(&mut checks, SCRIPT, &target, &work);
    checks.finish();
}

/// boto3 against `https://127.0.0.1:PORT`, the node serving a certificate made here.
pub fn scenario_over_https() {
    let pki = tempfile::Builder::new()
        .prefix("vh-tls-")
        .tempdir()
        .expect("create a directory for the certificate");
    let (cert, key) = self_signed_certificate(&pki);
    let node = TestNode::start_with(|config| {
        config.gateway_extra.push((
            "tls".to_owned(),
            format!(
                "{{cert: \"{}\", key: \"{}\"}}",
                cert.display(),
                key.display()
            ),
        ));
    });
    let (access_key, secret) = node.create_credential("boto3-https");
    let work = Workspace::new(&node);
    let mut checks = Checks::new("boto3 over HTTPS");
    let target = Target {
        node: &node,
        endpoint: format!("https://127.0.0.1:{}", node.port()),
        access_key: &access_key,
        secret: &secret,
        bucket: "matrix-boto3-https",
        ca_bundle: Some(cert),
    };
    run_scenario(&mut checks, SCRIPT, &target, &work);
    checks.finish();
}

/// A P-256 key and a self-signed certificate for `IP:127.0.0.1`, made with openssl; the key is
/// readable by its owner only, as the node requires. Returns `(certificate, key)`.
fn self_signed_certificate(dir: &TempDir) -> (PathBuf, PathBuf) {
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let output = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (.ci/run installs it)");
    assert!(
        output.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    restrict_to_owner(&key);
    (cert, key)
}

fn restrict_to_owner(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .expect("make the private key readable by its owner only");
}
