//! The УМКА emulator's HTTP front-end against bad requests: an HTTP answer with a status,
//! never a panic, and the next request is served.

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start() -> String {
    let core = kkm_emu::FiscalCore::open(None, kkm_emu::EmuIdentity::new("НЕВА-01-Ф", "18001234", "9960440300054321")).unwrap();
    let emu = kkm_emu::Emulator::new(core);
    let front = Arc::new(kkm_umka::emulator::UmkaEmulator::neva_01_f());
    let ep = kkm_emu::listen::start(&kkm_emu::Listen::Tcp("127.0.0.1:0".parse().unwrap()), None, emu, front).await.unwrap();
    std::mem::forget(ep.task);
    ep.port.trim_start_matches("tcp:").to_string()
}

async fn raw(addr: &str, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test]
async fn bad_requests_get_a_status() {
    let addr = start().await;
    let auth = "Authorization: Basic MTox\r\n"; // 1:1
    assert!(raw(&addr, b"GET /cashboxstatus.json HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 401"));
    assert!(raw(&addr, b"GET /cashboxstatus.json HTTP/1.1\r\nAuthorization: Basic !!!\r\n\r\n").await.starts_with("HTTP/1.1 401"));
    let r = raw(&addr, format!("GET /nope.json HTTP/1.1\r\n{auth}\r\n").as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    let r = raw(&addr, format!("POST /fiscalcheck.json HTTP/1.1\r\n{auth}Transfer-Encoding: chunked\r\n\r\n").as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 411"), "{r}");
    let r = raw(&addr, format!("POST /fiscalcheck.json HTTP/1.1\r\n{auth}Content-Length: 99999999\r\n\r\n").as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 40_000));
    assert!(raw(&addr, &huge).await.starts_with("HTTP/1.1 400"));
    // A receipt that is not JSON, and one with a bad quantity: the API's own refusals.
    let body = "not json";
    let r = raw(&addr, format!("POST /fiscalcheck.json HTTP/1.1\r\n{auth}Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 200") && r.contains("\"result\":19"), "{r}");
    let body = r#"{"document":{"sessionId":"x","data":{"type":1,"moneyType":1,"sum":0,"fiscprops":[{"tag":1054,"value":1},{"tag":1059,"fiscprops":[{"tag":1030,"value":"A"},{"tag":1079,"value":100},{"tag":1023,"value":"много"},{"tag":1199,"value":6},{"tag":1212,"value":4},{"tag":1214,"value":4}]}]}}}"#;
    let r = raw(&addr, format!("POST /fiscalcheck.json HTTP/1.1\r\n{auth}Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes()).await;
    assert!(r.contains("\"result\":"), "{r}");
    // Still serving.
    let r = raw(&addr, format!("GET /cashboxstatus.json HTTP/1.1\r\n{auth}\r\n").as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 200") && r.contains("cashboxStatus"), "{r}");
}
