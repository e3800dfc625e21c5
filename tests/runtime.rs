//! The node as a set of supervised services: the watchdog, live config changes applied to just
//! the service they concern, `vh status` exit codes, and the admin listener.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{TestNode, wait_for};

const SETTLE: Duration = Duration::from_secs(20);

/// The services of `vh status --json`, whatever its exit code (it fails while one is down).
fn services(node: &TestNode) -> serde_json::Value {
    let output = node.vh(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("vh status printed no JSON ({e})\n{}", node.log_report()));
    status["services"].clone()
}

fn service(node: &TestNode, name: &str) -> serde_json::Value {
    services(node)
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no service {name} in vh status"))
}

/// `name -> started_at` of every service.
fn start_times(node: &TestNode) -> Vec<(String, serde_json::Value)> {
    services(node)
        .as_array()
        .expect("a list of services")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_owned(),
                s["started_at"].clone(),
            )
        })
        .collect()
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).expect("connect to the admin listener");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the answer");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}

fn admin_port(node: &TestNode) -> u16 {
    let listen = service(node, "AdminService")["listen"]
        .as_str()
        .expect("the admin listener listens")
        .to_owned();
    listen
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

fn gateway_serves(node: &TestNode) -> bool {
    TcpStream::connect_timeout(
        &(std::net::Ipv4Addr::LOCALHOST, node.port()).into(),
        Duration::from_millis(500),
    )
    .is_ok()
}

#[test]
fn the_watchdog_brings_back_a_service_whose_task_died() {
    let node = TestNode::start();
    assert_eq!(service(&node, "S3GatewayService")["restarts"], 0);
    node.vh_ok(&["debug", "kill-service", "S3GatewayService"]);
    let restarted = wait_for(
        SETTLE,
        "the watchdog to restart the gateway",
        || {
            let gateway = service(&node, "S3GatewayService");
            (gateway["restarts"] == 1 && gateway["state"] == "running").then_some(gateway)
        },
        || node.log_report(),
    );
    assert_eq!(restarted["error"], serde_json::Value::Null, "{restarted}");
    assert!(gateway_serves(&node));
    assert!(
        node.log()
            .contains("service died; the watchdog restarts it"),
        "{}",
        node.log_report()
    );
    // The other services were left alone.
    assert_eq!(service(&node, "JanitorService")["restarts"], 0);
}

#[test]
fn a_config_change_restarts_only_the_service_it_concerns() {
    let node = TestNode::start();
    let before = start_times(&node);
    // Start times have a resolution of one second.
    std::thread::sleep(Duration::from_millis(1100));
    let config = std::fs::read_to_string(node.config_path()).expect("read the config");
    let edited = config.replace("s3_gateway:\n", "s3_gateway:\n  max_connections: 77\n");
    assert_ne!(config, edited);
    std::fs::write(node.config_path(), edited).expect("edit the config");

    let after = wait_for(
        SETTLE,
        "the gateway to restart with the new config",
        || {
            let now = start_times(&node);
            (now != before).then_some(now)
        },
        || node.log_report(),
    );
    for ((name, was), (_, is)) in before.iter().zip(&after) {
        if name == "S3GatewayService" {
            assert_ne!(was, is, "the gateway restarted");
        } else {
            assert_eq!(was, is, "{name} kept running");
        }
    }
    assert!(gateway_serves(&node));
    assert_eq!(
        service(&node, "S3GatewayService")["restarts"],
        0,
        "a reconfiguration is not a crash"
    );
}

#[test]
fn an_invalid_config_change_is_refused_and_the_node_keeps_running() {
    let node = TestNode::start();
    let before = start_times(&node);
    let config = std::fs::read_to_string(node.config_path()).expect("read the config");
    std::fs::write(
        node.config_path(),
        config.replace("s3_gateway:\n", "s3_gateway:\n  max_conections: 5\n"),
    )
    .expect("edit the config");
    wait_for(
        SETTLE,
        "the refusal in the log",
        || node.log().contains("config change refused").then_some(()),
        || node.log_report(),
    );
    assert!(
        node.log().contains("max_conections"),
        "the log names the key\n{}",
        node.log_report()
    );
    assert_eq!(start_times(&node), before);
    assert!(gateway_serves(&node));
}

#[test]
fn enable_and_disable_keep_the_file_and_restart_only_the_gateway() {
    let node = TestNode::start();
    let config = std::fs::read_to_string(node.config_path()).expect("read the config");
    let commented = format!(
        "# operator notes: keep this\n{}",
        config.replace("  enabled: true\n", "  enabled: true   # on\n")
    );
    std::fs::write(node.config_path(), &commented).expect("add comments");
    std::thread::sleep(Duration::from_millis(1100));
    let before = start_times(&node);

    node.vh_ok(&["s3-gateway", "disable"]);
    let file = std::fs::read_to_string(node.config_path()).expect("read the config");
    assert_eq!(
        file,
        commented.replace("enabled: true   # on", "enabled: false   # on")
    );
    assert_eq!(service(&node, "S3GatewayService")["state"], "disabled");
    let status = node.vh(&["status"]);
    assert!(
        status.status.success(),
        "a disabled service is not a failure"
    );

    node.vh_ok(&["s3-gateway", "enable"]);
    assert_eq!(
        std::fs::read_to_string(node.config_path()).expect("read"),
        commented
    );
    let after = start_times(&node);
    for ((name, was), (_, is)) in before.iter().zip(&after) {
        if name != "S3GatewayService" {
            assert_eq!(was, is, "{name} kept running");
        }
    }
    assert_eq!(service(&node, "S3GatewayService")["state"], "running");
    assert!(gateway_serves(&node));
}

#[test]
fn status_fails_while_a_service_that_should_run_does_not() {
    let node = TestNode::start();
    assert!(node.vh(&["status"]).status.success());
    node.vh_ok(&["service", "stop", "JanitorService"]);
    let status = node.vh(&["status"]);
    assert!(
        !status.status.success(),
        "vh status must fail while the janitor is stopped"
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("JanitorService       stopped"));
    node.vh_ok(&["service", "start", "JanitorService"]);
    assert!(node.vh(&["status"]).status.success());
}

#[test]
fn the_admin_listener_serves_health_and_metrics() {
    let node = TestNode::start();
    let (ak, secret) = node.create_credential("metrics");
    node.create_bucket("metered");
    let aws = node.aws().with_credentials(&ak, &secret);
    aws.run_ok(&["s3api", "list-buckets"]);
    aws.run_err(&[
        "s3api",
        "head-object",
        "--bucket",
        "metered",
        "--key",
        "missing",
    ]);

    let port = admin_port(&node);
    assert_eq!(http_get(port, "/health"), (200, "ok\n".to_owned()));
    let (status, metrics) = http_get(port, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics
            .contains("vaulthalla_s3_requests_total{operation=\"ListBuckets\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vaulthalla_s3_requests_total{operation=\"HeadObject\",status=\"404\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vaulthalla_service_up{service=\"S3GatewayService\",state=\"running\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("vaulthalla_s3_request_duration_seconds_count{operation=\"ListBuckets\"} 1"),
        "{metrics}"
    );
    let gateway = service(&node, "S3GatewayService");
    assert_eq!(
        (gateway["requests"].as_u64(), gateway["errors"].as_u64()),
        (Some(2), Some(1))
    );

    node.vh_ok(&["service", "stop", "JanitorService"]);
    let (status, body) = http_get(port, "/health");
    assert_eq!(status, 503);
    assert!(body.contains("JanitorService"), "{body}");
}
