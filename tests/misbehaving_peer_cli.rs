//! Issue 12's reproduction, as a user runs it: `kkm-agent device --port tcp:… status`
//! pointed at a TCP peer that floods the line and never reads, or that accepts and then
//! says nothing. For every protocol family the command must end, in time, with a `link.*`
//! error; before the fix the ATOL v3 link blocked forever in a write.

use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

const BIN: &str = env!("CARGO_BIN_EXE_kkm-agent");

#[derive(Clone, Copy)]
enum Peer {
    Flood(&'static [u8]),
    Silent,
}

/// A peer with a small receive buffer, so a host that answers noise with writes fills it.
async fn peer(kind: Peer) -> String {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(2048).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(8).unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = listener.accept().await {
            match kind {
                Peer::Flood(pattern) => {
                    tokio::spawn(async move {
                        let chunk: Vec<u8> = pattern.iter().copied().cycle().take(4096).collect();
                        while s.write_all(&chunk).await.is_ok() {}
                    });
                }
                Peer::Silent => held.push(s),
            }
        }
    });
    format!("tcp:127.0.0.1:{port}")
}

/// Runs `device … status`; returns (success, stderr, how long it took).
async fn status(port: &str, model: &str, extra: &[&str]) -> (bool, String, Duration) {
    let t0 = Instant::now();
    let child = tokio::process::Command::new(BIN)
        .args(["device", "--port", port, "--model", model])
        .args(extra)
        .arg("status")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(40), child).await.expect("`device … status` hung on a misbehaving peer").unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into(), t0.elapsed())
}

async fn check(kind: Peer, model: &str, extra: &[&str], budget: Duration) {
    let port = peer(kind).await;
    let (ok, err, took) = status(&port, model, extra).await;
    assert!(!ok, "a misbehaving peer gave a status");
    assert!(err.contains("link."), "a link.* error is expected: {err}");
    assert!(took < budget, "took {took:?}: {err}");
}

const V3_NOISE: &[u8] = &[0xFE, 0x01, 0x00, 0x00, 0x00, 0x00, 0x17];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neva_v3_flooding_peer() {
    check(Peer::Flood(V3_NOISE), "neva-01-f", &[], Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neva_v3_silent_peer() {
    check(Peer::Silent, "neva-01-f", &[], Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neva_v2_flooding_peer() {
    check(Peer::Flood(&[0x06]), "neva-01-f", &["--protocol", "atol-v2"], Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neva_v2_silent_peer() {
    check(Peer::Silent, "neva-01-f", &["--protocol", "atol-v2"], Duration::from_secs(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azur_flooding_peer() {
    check(Peer::Flood(&[0xFF]), "azur-01f", &[], Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azur_silent_peer() {
    check(Peer::Silent, "azur-01f", &[], Duration::from_secs(30)).await;
}

/// `detect` tries every family on the port; none of its probes may hang either.
async fn detect_against(kind: Peer) {
    let port = peer(kind).await;
    let t0 = Instant::now();
    let child = tokio::process::Command::new(BIN).args(["device", "--port", &port, "detect"]).kill_on_drop(true).output();
    let out = tokio::time::timeout(Duration::from_secs(40), child).await.expect("`detect` hung on a misbehaving peer").unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "nothing was detected");
    assert!(err.contains("link."), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(30), "took {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_against_a_flood_of_ff_bytes() {
    // 0xFF is the stray byte a Shtrih probe skips: before the fix it skipped forever.
    detect_against(Peer::Flood(&[0xFF])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_against_atol_noise_and_acks() {
    detect_against(Peer::Flood(&[0xFE, 0x01, 0x00, 0x00, 0x00, 0x06, 0x17])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_against_a_silent_peer() {
    detect_against(Peer::Silent).await;
}
