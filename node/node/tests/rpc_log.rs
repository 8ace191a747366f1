//! What a client can make the RPC server write to the node's log: requests
//! refused for their size (over HTTP, declared or streamed, and over
//! WebSocket) and bodies that break off cost no line each. The log here is
//! set up as `stele-node start` sets it up (a global subscriber, `log`
//! records bridged, the filter of a loaded config).
#![allow(clippy::unwrap_used)] // test set-up: a failure here is a test failure

mod rpc_support;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rpc_support::*;
use stele_node::config::LogSection;
use stele_node::rpc::RpcConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

const BODY_MAX: usize = 2 << 20;

async fn connect(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(addr).await.unwrap()
}

/// Reads until the server closes or `within` passes.
async fn read_some(s: &mut tokio::net::TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(within, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn post_head(length: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{length}\r\nconnection: close\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_broken_requests_cost_no_log_line_each() {
    let log = Log::default();
    let writer = log.clone();
    let filter = LogSection::default().quiet_client_triggered();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .unwrap();
    let node = TestNode::start(RpcConfig::default()).await;
    let addr = node.server.local_addr();

    // Declared over the limit.
    for _ in 0..20 {
        let mut s = connect(addr).await;
        let head = post_head(&format!("content-length: {}", BODY_MAX + 1));
        s.write_all(head.as_bytes()).await.unwrap();
        let answer = read_some(&mut s, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }
    // Streamed over the limit (chunked, no length).
    for _ in 0..3 {
        let mut s = connect(addr).await;
        s.write_all(post_head("transfer-encoding: chunked").as_bytes())
            .await
            .unwrap();
        let chunk = vec![b' '; 64 << 10];
        for _ in 0..(BODY_MAX / chunk.len() + 1) {
            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
            frame.extend_from_slice(&chunk);
            frame.extend_from_slice(b"\r\n");
            if s.write_all(&frame).await.is_err() {
                break;
            }
        }
        let answer = read_some(&mut s, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }
    // Bodies that break off.
    for _ in 0..20 {
        let mut s = connect(addr).await;
        let head = post_head("content-length: 1000");
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(br#"{"jsonrpc":"#).await.unwrap();
        drop(s);
    }
    // WebSocket messages over the limit: an error answer each, the
    // connection stays.
    let mut ws = connect(addr).await;
    ws.write_all(
        b"GET / HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 1024];
    let n = ws.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 101"));
    for _ in 0..5 {
        // A masked text frame (mask 0) declaring one byte over the limit,
        // then all of it.
        let len = (BODY_MAX + 1) as u64;
        let mut frame = vec![0x81, 0x80 | 127];
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.resize(frame.len() + BODY_MAX + 1, b' ');
        ws.write_all(&frame).await.unwrap();
        // Pings may come first: read until the error answer.
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            while !String::from_utf8_lossy(&answer).contains("-32007") {
                let mut buf = [0u8; 4096];
                let n = ws.read(&mut buf).await.unwrap();
                assert!(n > 0, "the WebSocket closed");
                answer.extend_from_slice(&buf[..n]);
            }
        })
        .await;
        assert!(read.is_ok(), "{}", String::from_utf8_lossy(&answer));
    }
    // Let the server finish every connection.
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(
        node.server
            .metrics()
            .oversized_requests
            .load(Ordering::Relaxed),
        23
    );
    let text = log.text();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("over body_bytes_max"), "{text}");
    assert!(!text.contains("reading request body"), "{text}");
    assert!(!text.contains("soketto"), "{text}");
}
