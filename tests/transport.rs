//! HTTP transport behaviour of the gateway on a raw socket: `Expect: 100-continue`, chunked
//! transfer without a `Content-Length`, keep-alive, and a body refused before it is sent.
//! The node runs with `require_sigv4: false` (allowed on loopback) so requests can be written
//! by hand.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::TestNode;

fn anonymous_node(extra: &[(&str, &str)]) -> TestNode {
    let node = TestNode::start_with(|config| {
        config
            .gateway_extra
            .push(("require_sigv4".into(), "false".into()));
        for (key, value) in extra {
            config.gateway_extra.push(((*key).into(), (*value).into()));
        }
    });
    node.create_bucket("wire");
    node
}

fn connect(node: &TestNode) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", node.port())).expect("connect to the gateway");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a timeout");
    stream
}

/// Reads one response: status, headers (lower-case names) and a body of `Content-Length` bytes.
fn read_response(reader: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read the status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).expect("read a header");
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').expect("a header line");
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap_or(0));
    let mut body = vec![0; len];
    reader.read_exact(&mut body).expect("read the body");
    (status, headers, body)
}

#[test]
fn expect_100_continue_gets_an_interim_answer_then_the_body_is_stored() {
    let node = anonymous_node(&[]);
    let mut stream = connect(&node);
    write!(stream, "PUT /wire/continued HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n").expect("send the head");
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let (status, _, _) = read_response(&mut reader);
    assert_eq!(
        status, 100,
        "an interim 100 Continue before the body is sent"
    );
    stream.write_all(b"hello").expect("send the body");
    let (status, headers, _) = read_response(&mut reader);
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "etag" && v == "\"5d41402abc4b2a76b9719d911017c592\""),
        "{headers:?}"
    );
}

#[test]
fn a_body_over_the_limit_is_refused_without_a_100_continue() {
    let node = anonymous_node(&[("max_body_size_mb", "1")]);
    let mut stream = connect(&node);
    write!(stream, "PUT /wire/huge HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n").expect("send the head");
    let mut reader = BufReader::new(stream);
    let (status, _, body) = read_response(&mut reader);
    assert_eq!(
        status, 400,
        "the final answer comes first, without asking for the body"
    );
    assert!(String::from_utf8_lossy(&body).contains("<Code>EntityTooLarge</Code>"));
}

#[test]
fn chunked_transfer_without_content_length_is_stored_and_keep_alive_reuses_the_connection() {
    let node = anonymous_node(&[]);
    let stream = connect(&node);
    let mut writer = stream.try_clone().expect("clone the stream");
    let mut reader = BufReader::new(stream);
    write!(writer, "PUT /wire/chunked HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").expect("send");
    let (status, _, _) = read_response(&mut reader);
    assert_eq!(status, 200);
    // The same connection serves the next requests.
    for _ in 0..3 {
        write!(
            writer,
            "GET /wire/chunked HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )
        .expect("send");
        let (status, headers, body) = read_response(&mut reader);
        assert_eq!((status, body.as_slice()), (200, &b"hello world"[..]));
        assert!(
            !headers
                .iter()
                .any(|(n, v)| n == "connection" && v == "close"),
            "{headers:?}"
        );
    }
}
