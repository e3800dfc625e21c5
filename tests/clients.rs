//! The real-client matrix: every mainstream S3 client runs one scenario against a real node of
//! its own, each in its own test so one client's failure leaves the others' results standing.
//!
//! The scenario: create a bucket; put a small and an empty object and a 100 MiB one (multipart,
//! the client's own way); read them back and compare hashes; ranged reads; list a tree of 2,500
//! keys with a delimiter and page through it without one; round-trip user metadata and a content
//! type; copy an object server side; presigned GET and PUT where the client makes them; delete
//! one object and several at once; delete the bucket. Assertions are on what each client itself
//! reports: return values, exit codes, listings, and the error codes it prints when a step is
//! meant to fail. The Rust SDK runs the same scenario in `tests/rust_sdk.rs`.
//!
//! The Python clients (boto3, the MinIO SDK) run scripts in `tests/clients/` that print their
//! checks as JSON; the other clients are driven from here.

mod common;

mod clients {
    pub mod aws_cli;
    pub mod boto3;
    pub mod minio;
    pub mod python;
    pub mod rclone;
    pub mod s3cmd;
    pub mod s3fs;
    pub mod support;
}

#[test]
fn aws_cli_runs_the_client_scenario() {
    clients::aws_cli::scenario();
}

#[test]
fn boto3_runs_the_client_scenario_over_http() {
    clients::boto3::scenario_over_http();
}

#[test]
fn boto3_runs_the_client_scenario_over_https() {
    clients::boto3::scenario_over_https();
}

#[test]
fn s3cmd_runs_the_client_scenario() {
    clients::s3cmd::scenario();
}

#[test]
fn rclone_runs_the_client_scenario() {
    clients::rclone::scenario();
}

#[test]
fn minio_sdk_runs_the_client_scenario() {
    clients::minio::scenario();
}

#[test]
fn s3fs_mount_writes_and_reads_through_the_gateway() {
    clients::s3fs::scenario();
}
