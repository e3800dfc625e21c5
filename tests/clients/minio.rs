//! The client scenario with the MinIO Python SDK (`tests/clients/minio_scenario.py`).

use crate::clients::python::{Target, run_scenario};
use crate::clients::support::{Checks, Workspace, node_with_credential};

/// The MinIO SDK against `127.0.0.1:PORT`, `secure=False`.
pub fn scenario() {
    let (node, access_key, secret) = node_with_credential("minio");
    let work = Workspace::new(&node);
    let mut checks = Checks::new("MinIO Python SDK");
    let target = Target {
        node: &node,
        endpoint: node.endpoint(),
        access_key: &access_key,
        secret: &secret,
        bucket: "matrix-minio",
        ca_bundle: None,
    };
    run_scenario(&mut checks, "minio_scenario.py", &target, &work);
    checks.finish();
}
