//! Raw HTTP/1.1 and WebSocket on TCP sockets bound to a chosen loopback
//! source address, for the attacks of [`crate::attack`]: a node limits RPC
//! per client IP, and every address of 127.0.0.0/8 reaches a node
//! listening on 127.0.0.1, so each attacker can look like its own host.
//! Only what the attacks need: a request is written whole or in part, an
//! answer is read by `Content-Length` or chunks, and a WebSocket is opened
//! and then never read.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Largest answer head or body read; bigger answers are an error.
const ANSWER_BYTES_MAX: usize = 64 << 20;

/// The `n`-th address of a block of loopback source addresses: `block`
/// picks 127.`block`.x.y, so attacks that run at once never share one.
pub fn source_ip(block: u8, n: usize) -> IpAddr {
    let n = n % 65_000;
    IpAddr::V4(Ipv4Addr::new(
        127,
        block,
        (n / 250) as u8,
        (n % 250 + 2) as u8,
    ))
}

/// A TCP connection from `source` to `to`. `recv_buffer`, if given, sets a
/// small kernel receive buffer before connecting (a reader that stops
/// reading then pushes back on the server sooner).
pub async fn connect_from(
    source: IpAddr,
    to: SocketAddr,
    recv_buffer: Option<u32>,
) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    if let Some(bytes) = recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    tokio::time::timeout(Duration::from_secs(5), socket.connect(to))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// The server said it closes the connection.
    pub close: bool,
}

/// The head of a `POST /` with a JSON body of `len` bytes.
pub fn post_head(len: usize) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: stele\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
}

/// Sends `body` as one JSON-RPC POST on `stream` and reads the answer.
pub async fn post(stream: &mut TcpStream, body: &[u8], timeout: Duration) -> io::Result<Answer> {
    let mut request = post_head(body.len()).into_bytes();
    request.extend_from_slice(body);
    tokio::time::timeout(timeout, async {
        stream.write_all(&request).await?;
        read_answer(stream).await
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer in time"))?
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Reads one HTTP/1.1 answer.
pub async fn read_answer(stream: &mut TcpStream) -> io::Result<Answer> {
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 << 10 {
            return Err(bad("answer head too long"));
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before an answer",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let close = header("connection:").is_some_and(|v| v == "close");
    let mut rest = buf[head_end..].to_vec();
    let body = if let Some(len) = header("content-length:") {
        let len: usize = len.parse().map_err(|_| bad("bad content-length"))?;
        if len > ANSWER_BYTES_MAX {
            return Err(bad("answer too large"));
        }
        while rest.len() < len {
            let mut chunk = vec![0u8; (len - rest.len()).min(64 << 10)];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short body"));
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        rest
    } else if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
        read_chunked(stream, rest).await?
    } else {
        // Neither: the body runs to the end of the connection.
        stream.read_to_end(&mut rest).await?;
        rest
    };
    Ok(Answer {
        status,
        body,
        close,
    })
}

async fn read_chunked(stream: &mut TcpStream, mut buf: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        // A chunk-size line.
        let line_end = loop {
            if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                break i;
            }
            fill(stream, &mut buf).await?;
        };
        let size_text = String::from_utf8_lossy(&buf[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("bad chunk size"))?;
        buf.drain(..line_end + 2);
        if body.len() + size > ANSWER_BYTES_MAX {
            return Err(bad("answer too large"));
        }
        while buf.len() < size + 2 {
            fill(stream, &mut buf).await?;
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
        if size == 0 {
            return Ok(body);
        }
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 16 << 10];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short chunk"));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// A JSON-RPC 2.0 call as bytes.
pub fn call(id: u64, method: &str, params: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// What the answers to a call or a batch were: results and error codes.
pub fn outcomes(body: &[u8]) -> Vec<Result<(), i64>> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return vec![Err(-1)];
    };
    let one = |v: &serde_json::Value| match v.get("error") {
        Some(e) => Err(e
            .get("code")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(-1)),
        None => Ok(()),
    };
    match &value {
        serde_json::Value::Array(items) => items.iter().map(one).collect(),
        v => vec![one(v)],
    }
}

/// Opens a WebSocket on `stream` (the node serves it on its RPC port) and
/// waits for the upgrade; the status of a refusal otherwise.
pub async fn websocket_upgrade(stream: &mut TcpStream) -> io::Result<Result<(), u16>> {
    let request = "GET / HTTP/1.1\r\nHost: stele\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    stream.write_all(request.as_bytes()).await?;
    // Read the head only: after a 101 the stream is the WebSocket's.
    let mut head = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        if stream.read(&mut byte).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the upgrade",
            ));
        }
        head.push(byte[0]);
        if head.ends_with(b"\r\n\r\n") || head.len() > 16 << 10 {
            break;
        }
    }
    let status: u16 = String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(if status == 101 { Ok(()) } else { Err(status) })
}

/// A masked client text frame carrying `payload`.
pub fn ws_text_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x5a, 0x17, 0xc3, 0x88];
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_stay_in_their_block_and_never_repeat_early() {
        let a: Vec<IpAddr> = (0..1000).map(|n| source_ip(9, n)).collect();
        let set: std::collections::BTreeSet<_> = a.iter().collect();
        assert_eq!(set.len(), 1000);
        for ip in a {
            let IpAddr::V4(v4) = ip else { panic!() };
            assert_eq!(v4.octets()[..2], [127, 9]);
            assert!(v4.octets()[3] >= 2);
        }
    }

    #[test]
    fn frames_are_masked_with_the_right_length_encoding() {
        let small = ws_text_frame(b"hi");
        assert_eq!(small[..2], [0x81, 0x82]);
        assert_eq!(small.len(), 2 + 4 + 2);
        let mid = ws_text_frame(&[0u8; 300]);
        assert_eq!(mid[1], 0x80 | 126);
        assert_eq!(u16::from_be_bytes([mid[2], mid[3]]), 300);
    }

    #[test]
    fn outcomes_read_single_answers_and_batches() {
        assert_eq!(
            outcomes(br#"{"jsonrpc":"2.0","id":1,"result":5}"#),
            vec![Ok(())]
        );
        assert_eq!(
            outcomes(br#"[{"id":1,"result":5},{"id":2,"error":{"code":2008,"message":"x"}}]"#),
            vec![Ok(()), Err(2008)]
        );
        assert_eq!(outcomes(b"not json"), vec![Err(-1)]);
    }
}
