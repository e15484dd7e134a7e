//! The API as a salon app meets it (issue 9, items 7, 8 and 10): every error is
//! problem+json, times are instants, and a web app on an allowed origin can call the
//! agent from a browser (CORS with Private Network Access) while every other origin
//! stays locked out. The daemon runs as a process; its device is unreachable, which is
//! fine for these requests.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_kkm-agent");
const WEB_APP: &str = "https://salon.example.com";

struct Agent {
    child: Child,
    base: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nallowed_origins = [\"{WEB_APP}\"]\n[[devices]]\nid = \"k1\"\nmodel = \"azur-01f\"\nport = \"tcp:127.0.0.1:9\"\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN).arg("serve").arg("--config").arg(&cfg).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(rest) = l.strip_prefix("kkm-agent: ") {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").trim_end_matches('/').to_string());
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let token = std::fs::read_to_string(dir.path().join("data/token")).unwrap();
    Agent { child, base, token, _dir: dir }
}

fn is_problem(r: &reqwest::Response) -> bool {
    r.headers().get("content-type").is_some_and(|v| v.to_str().unwrap_or("").starts_with("application/problem+json"))
}

#[tokio::test]
async fn an_allowed_web_app_gets_cors_and_private_network_access() {
    let a = agent();
    let http = reqwest::Client::new();
    let pre = http
        .request(reqwest::Method::OPTIONS, format!("{}/api/v1/receipts", a.base))
        .header("Origin", WEB_APP)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization, content-type, idempotency-key")
        .header("Access-Control-Request-Private-Network", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status().as_u16(), 204);
    let h = pre.headers();
    assert_eq!(h["access-control-allow-origin"], WEB_APP);
    assert_eq!(h["access-control-allow-private-network"], "true");
    assert!(h["access-control-allow-headers"].to_str().unwrap().contains("idempotency-key"));
    // The real request: with the token it works and says so to the browser.
    let r = http.get(format!("{}/api/v1/devices", a.base)).header("Origin", WEB_APP).bearer_auth(&a.token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], WEB_APP);
    // The token is still required.
    let r = http.get(format!("{}/api/v1/devices", a.base)).header("Origin", WEB_APP).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Any other origin stays out, preflight or not.
    for origin in ["https://evil.example", "https://salon.example.com.evil.example", "null"] {
        let r = http.get(format!("{}/api/v1/devices", a.base)).header("Origin", origin).bearer_auth(&a.token).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403, "{origin}");
        assert!(r.headers().get("access-control-allow-origin").is_none());
        let pre = http
            .request(reqwest::Method::OPTIONS, format!("{}/api/v1/receipts", a.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Private-Network", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(pre.status().as_u16(), 403, "{origin}");
        assert!(pre.headers().get("access-control-allow-private-network").is_none());
    }
}

#[tokio::test]
async fn framework_errors_are_problems_too() {
    let a = agent();
    let http = reqwest::Client::new();
    let cases: [(reqwest::Method, &str, u16, &str); 7] = [
        (reqwest::Method::GET, "/api/v1/nope", 404, "request.not_found"),
        (reqwest::Method::PUT, "/api/v1/receipts", 405, "request.method_not_allowed"),
        (reqwest::Method::GET, "/api/v1/jobs/abc", 400, "request.invalid"),
        (reqwest::Method::GET, "/api/v1/receipts/1?wait=soon", 400, "request.invalid"),
        (reqwest::Method::GET, "/api/v1/jobs?limit=-1", 400, "request.invalid"),
        (reqwest::Method::GET, "/api/v1/jobs/1?wait=61", 400, "request.wait_too_long"),
        (reqwest::Method::GET, "/api/v1/jobs?limit=1001", 400, "request.limit_invalid"),
    ];
    for (method, path, status, code) in cases {
        let r = http.request(method.clone(), format!("{}{path}", a.base)).bearer_auth(&a.token).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        assert!(is_problem(&r), "{method} {path}: not problem+json");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["code"], code, "{method} {path}: {p}");
        assert!(p["title_ru"].as_str().is_some_and(|t| !t.is_empty()));
    }
}

#[tokio::test]
async fn since_and_until_are_instants() {
    let a = agent();
    let http = reqwest::Client::new();
    let r: Value = http
        .post(format!("{}/api/v1/x-report", a.base))
        .bearer_auth(&a.token)
        .header("Idempotency-Key", "x-1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let created = r["created_at"].as_str().unwrap().to_string();
    let t = time::OffsetDateTime::parse(&created, &time::format_description::well_known::Rfc3339).unwrap();
    let moscow = t.to_offset(time::UtcOffset::from_hms(3, 0, 0).unwrap()).format(&time::format_description::well_known::Rfc3339).unwrap();
    let list = |q: String| {
        let http = http.clone();
        let (base, token) = (a.base.clone(), a.token.clone());
        async move {
            let r = http.get(format!("{base}/api/v1/jobs")).query(&[("since", q)]).bearer_auth(token).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (code, z) = list(created.clone()).await;
    assert_eq!(code, 200);
    let (code, plus3) = list(moscow.clone()).await;
    assert_eq!(code, 200);
    assert_eq!(z.as_array().unwrap().len(), 1, "{z}");
    assert_eq!(plus3, z, "the same instant at +03:00 ({moscow}) finds other jobs than at Z ({created})");
    let later = (t + time::Duration::seconds(1)).format(&time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(list(later).await.1, json!([]));
    let (code, p) = list("yesterday".into()).await;
    assert_eq!(code, 400);
    assert_eq!(p["code"], "request.time_invalid");
}

/// Issue 9, item 12: a client that never finishes its request head (slowloris), or a
/// connection left idle, is closed by the server within the header-read time-out.
#[tokio::test]
async fn slow_and_idle_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = agent();
    let addr = a.base.trim_start_matches("http://").to_string();
    let closed_within = |partial: &'static [u8]| {
        let addr = addr.clone();
        async move {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            s.write_all(partial).await.unwrap();
            let started = std::time::Instant::now();
            let mut buf = [0u8; 1024];
            loop {
                match tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                    Ok(Ok(_)) => continue, // e.g. a 408 before the close
                    Err(_) => return None,
                }
            }
        }
    };
    let (slow, idle, kept_alive) = tokio::join!(
        closed_within(b"GET /api/v1/devices HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        closed_within(b""),
        // A whole request, answered; then the keep-alive connection sits idle.
        closed_within(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    );
    assert!(kept_alive.is_some_and(|d| d < Duration::from_secs(15)), "an idle keep-alive connection stayed open: {kept_alive:?}");
    assert!(slow.is_some_and(|d| d < Duration::from_secs(15)), "a half-sent request head kept its connection: {slow:?}");
    assert!(idle.is_some_and(|d| d < Duration::from_secs(15)), "an idle connection stayed open: {idle:?}");
}
