//! `kkm-agent diag` scan-time benchmark. Prints figures; asserts nothing.
//!
//! A PC with several serial ports and no register behind any of them is the slowest
//! case for the scan: every port is asked at every usual speed, by both protocol
//! families, and every question waits out its time-out. The ports here are
//! pseudo-terminals whose far end is:
//!
//! * silent (nothing connected),
//! * a loopback (every byte comes back, as with a null-modem plug or a looped cable),
//! * garbage (every request is answered with a burst of bytes that mean nothing).
//!
//! Each case runs the real binary (`diag --port … --no-scan --json`) and prints its
//! wall time. The README states the bound from these figures.
//!
//! Run: `cargo bench --bench diag_scan`.

use kkm_core::platform::{open_pty, Pty, PtyStream};
use std::process::Command;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_kkm-agent");

#[derive(Clone, Copy, Debug)]
enum FarEnd {
    Silent,
    Loopback,
    Garbage,
}

/// Serves the master side of `pty` the way `far` says; the slave path is returned.
fn port(far: FarEnd) -> (String, Option<Pty>) {
    let pty = open_pty().expect("pty");
    let path = pty.slave_path.clone();
    if let FarEnd::Silent = far {
        return (path, Some(pty));
    }
    let Pty { master, slave_keepalive, .. } = pty;
    tokio::spawn(async move {
        let _keep = slave_keepalive;
        let Ok(mut s) = PtyStream::new(master) else { return };
        let mut buf = [0u8; 256];
        let mut seed = 0x9E37_79B9u32;
        loop {
            let Ok(n) = s.read(&mut buf).await else { return };
            if n == 0 {
                return;
            }
            let out: Vec<u8> = match far {
                FarEnd::Loopback => buf[..n].to_vec(),
                _ => (0..n * 3)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        seed as u8
                    })
                    .collect(),
            };
            if s.write_all(&out).await.is_err() {
                return;
            }
        }
    });
    (path, None)
}

async fn case(label: &str, far: FarEnd, n: usize) {
    let ports: Vec<(String, Option<Pty>)> = (0..n).map(|_| port(far)).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, format!("listen = \"{free}\"\ndata_dir = {:?}\n", dir.path().join("data"))).expect("config");
    let mut cmd = Command::new(BIN);
    cmd.args(["diag", "--no-scan", "--json", "--config"]).arg(&cfg);
    for (p, _) in &ports {
        cmd.args(["--port", p]);
    }
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.expect("join").expect("run diag");
    let took = started.elapsed();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let silent = v["ports"].as_array().map_or(0, |a| a.iter().filter(|p| p["state"] == "no_answer").count());
    println!("{label:<34} {n:>2} ports: {:>6.2} s  ({silent}/{n} reported as no answer, exit {:?})", took.as_secs_f64(), out.status.code());
    drop(ports);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("kkm-agent diag: scan of ports with no register (all speeds, Shtrih-M and ATOL v3/v2)");
    case("silent", FarEnd::Silent, 1).await;
    case("silent", FarEnd::Silent, 8).await;
    case("silent", FarEnd::Silent, 16).await;
    case("loopback (echo)", FarEnd::Loopback, 8).await;
    case("garbage answers", FarEnd::Garbage, 8).await;
}
