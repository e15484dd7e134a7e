//! The one HTTP client the command line uses to talk to the running agent on loopback:
//! `reconcile`, `diag` and `device … check` through the daemon.
//!
//! Why hand-written: the agent is on 127.0.0.1, speaks plain HTTP/1.1 and the request is
//! one JSON body; a full client crate would pull TLS and a connection pool into every
//! command. What it must still do right: bound the whole exchange by a deadline, bound
//! the answer's size, and undo chunked transfer encoding (axum's JSON answers are sent
//! with a length, streamed ones chunked).

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One exchange with `Connection: close`. `hostport` is `127.0.0.1:8765`; `body`, when
/// given, is sent as JSON. The answer is cut at `max_answer` bytes; the whole exchange
/// ends within `deadline` (the connect within 3 s of it).
pub async fn exchange(
    hostport: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
    deadline: Duration,
    max_answer: u64,
) -> std::io::Result<(u16, Vec<u8>)> {
    let io = async {
        let connect = tokio::time::timeout(Duration::from_secs(3).min(deadline), tokio::net::TcpStream::connect(hostport));
        let mut sock = connect.await.map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n");
        if let Some(b) = body {
            req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
        }
        req.push_str("\r\n");
        req.push_str(body.unwrap_or(""));
        sock.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        sock.take(max_answer).read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(deadline, io)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the agent did not answer in time"))??;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("malformed answer"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("malformed status"))?;
    let payload = &raw[split + 4..];
    let payload = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(payload) } else { payload.to_vec() };
    Ok((status, payload))
}

/// The body of a chunked answer; stops at the last chunk or where the data runs out.
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or(&[]);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dechunk_reads_chunks_and_stops_at_the_last() {
        assert_eq!(super::dechunk(b"3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n"), b"abcde");
        assert_eq!(super::dechunk(b"ff\r\nshort"), b"");
    }
}
