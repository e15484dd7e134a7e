//! The HTTP transport against servers that misbehave: every request ends within its
//! deadline with an explained link error, never a hang or a panic.

use kkm_core::port::PortSpec;
use kkm_core::FiscalDriver;
use kkm_umka::client::Timeouts;
use kkm_umka::{UmkaDriver, NEVA_01_F_UMKA};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server that reads a request and then does `answer` with the socket.
async fn server(answer: &'static [u8], silent: bool) -> PortSpec {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                if silent {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                let _ = sock.write_all(answer).await;
                if answer.starts_with(b"HTTP/1.1 200 OK\r\nContent-Length: 3000000") {
                    let chunk = vec![b' '; 64 * 1024];
                    for _ in 0..50 {
                        if sock.write_all(&chunk).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    PortSpec::Http { host: "127.0.0.1".into(), port }
}

fn driver(spec: PortSpec) -> UmkaDriver {
    UmkaDriver::new(spec, &NEVA_01_F_UMKA).with_timeouts(Timeouts {
        connect: Duration::from_millis(300),
        read: Duration::from_millis(400),
        print: Duration::from_millis(400),
    })
}

async fn fails_with(spec: PortSpec, code: &str) {
    let started = Instant::now();
    let mut d = driver(spec);
    let e = d.status().await.expect_err("must fail");
    assert_eq!(e.code(), code, "{e}");
    assert!(e.is_link(), "{e}");
    assert!(!e.title_ru().is_empty() && !e.action_ru().is_empty());
    assert!(started.elapsed() < Duration::from_secs(5), "bounded: {:?}", started.elapsed());
}

#[tokio::test]
async fn silent_server_is_no_answer_within_the_deadline() {
    fails_with(server(b"", true).await, "link.no_answer").await;
}

#[tokio::test]
async fn nothing_listening_is_no_answer() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    fails_with(PortSpec::Http { host: "127.0.0.1".into(), port }, "link.no_answer").await;
}

#[tokio::test]
async fn oversized_answer_is_refused() {
    fails_with(server(b"HTTP/1.1 200 OK\r\nContent-Length: 3000000\r\n\r\n", false).await, "link.protocol").await;
}

#[tokio::test]
async fn oversized_chunked_answer_is_refused() {
    static BODY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let body = BODY.get_or_init(|| {
        let mut v = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..20 {
            v.extend_from_slice(b"10000\r\n");
            v.extend(std::iter::repeat_n(b' ', 0x10000));
            v.extend_from_slice(b"\r\n");
        }
        v
    });
    fails_with(server(body, false).await, "link.protocol").await;
}

#[tokio::test]
async fn server_errors_and_strangers_are_protocol_errors() {
    fails_with(server(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", false).await, "link.protocol").await;
    fails_with(server(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n<html>hi</html>", false).await, "link.protocol").await;
    fails_with(server(b"SSH-2.0-OpenSSH_9.6\r\n", false).await, "link.disconnected").await;
}

#[tokio::test]
async fn unauthorized_is_a_configuration_error_not_a_link_error() {
    let spec = server(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", false).await;
    let e = driver(spec).status().await.unwrap_err();
    assert_eq!(e.code(), "config.device_credentials");
    assert!(!e.is_link());
}
