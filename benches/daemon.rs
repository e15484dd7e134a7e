//! Daemon benchmark. Prints figures; asserts nothing.
//!
//! 1. Durable enqueues through HTTP (each answer means the row is committed with
//!    `synchronous = FULL`) at 1, 16 and 128 concurrent clients, with p50/p99 latency.
//!    The device is unreachable, so the worker does not compete for the database.
//! 2. Queue drain rate against the Azur-01F emulator at full speed, and the same for
//!    Neva-01-F.
//! 3. Idle RSS of a `kkm-agent serve` process.
//! 4. 1 000 long-polls (`GET /api/v1/receipts/{id}?wait=60`) on a job that does not
//!    change: the `serve` process's CPU over 5 s and its RSS (waiters sleep until their
//!    job changes; nothing polls the database).
//!
//! Run: `cargo bench --bench daemon`.

use kkm_agent::config::{Config, DeviceConfig, Policy};
use kkm_agent::emulate::{self, EmulatedModel, EmulatorOptions};
use kkm_agent::queue::JobRequest;
use std::time::{Duration, Instant};

fn config(dir: &std::path::Path, model: &str, port: &str) -> Config {
    Config {
        listen: ([127, 0, 0, 1], 0).into(),
        data_dir: Some(dir.to_path_buf()),
        policy: Policy::default(),
        allowed_origins: Vec::new(),
        devices: vec![DeviceConfig {
            id: "k1".into(),
            model: model.into(),
            port: port.into(),
            baud: None,
            protocol: None,
            operator_password: None,
            admin_password: None,
            cashier: None,
            cashier_password: None,
            release_port_after_idle: Default::default(),
            timezone: None,
        }],
    }
}

fn receipt(i: usize) -> serde_json::Value {
    serde_json::json!({
        "operation": "sale",
        "items": [{"name": "Стрижка", "price": 150_000 + i as i64, "vat": "vat22"}],
        "payments": [{"type": "cash", "sum": 150_000 + i as i64}]
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn enqueue(clients: usize, per_client: usize) {
    let dir = tempfile::tempdir().unwrap();
    let running = kkm_agent::daemon::start(&config(dir.path(), "azur-01f", "tcp:127.0.0.1:9")).await.unwrap();
    let url = format!("http://{}/api/v1/receipts", running.addr);
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients).build().unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, url, token) = (http.clone(), url.clone(), running.token.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let body = receipt(c * per_client + i);
                let t = Instant::now();
                let r = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("Idempotency-Key", format!("b-{c}-{i}"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 202);
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    println!(
        "enqueue  clients {clients:>3}: {:>7.0} durable enqueues/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} requests)",
        all.len() as f64 / secs,
        percentile(&all, 0.50).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3,
        all.len()
    );
    running.stop().await;
}

async fn drain(model: EmulatedModel, n: usize) {
    let listen = kkm_emu::Listen::Tcp("127.0.0.1:0".parse().unwrap());
    let emu = emulate::start(EmulatorOptions::new(model, listen)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let running = kkm_agent::daemon::start(&config(dir.path(), model.key(), &emu.port)).await.unwrap();
    let store = running.store.clone();
    let mut last = 0;
    for i in 0..n {
        let r: kkm_core::Receipt = serde_json::from_value(receipt(i)).unwrap();
        last = store.submit("k1", &format!("d-{i}"), &JobRequest::Receipt { receipt: r }).unwrap().0.id;
    }
    let started = Instant::now();
    // Wait until every job is final (bounded), then count only those that ended done:
    // a failed or parked job is not throughput.
    let first = last + 1 - n as i64;
    let deadline = Instant::now() + Duration::from_secs(300);
    let jobs = loop {
        let jobs: Vec<_> = (first..=last).map(|id| store.get(id).unwrap()).collect();
        if jobs.iter().all(|j| j.status.is_final()) || Instant::now() > deadline {
            break jobs;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let secs = started.elapsed().as_secs_f64();
    let done = jobs.iter().filter(|j| j.status == kkm_agent::queue::JobStatus::Done).count();
    let other = jobs.len() - done;
    println!(
        "drain    {:<10} {done} of {n} receipts done in {secs:.2} s: {:>6.1} receipts/s (not done: {other})",
        model.key(),
        done as f64 / secs
    );
    running.stop().await;
}

/// A `serve` config in a fresh directory, its device unreachable (nothing competes for
/// the queue).
fn serve_config() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!("listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[[devices]]\nid = \"k1\"\nmodel = \"azur-01f\"\nport = \"tcp:127.0.0.1:9\"\n", dir.path()),
    )
    .unwrap();
    (dir, cfg)
}

fn idle_rss() {
    let (_dir, cfg) = serve_config(); // the directory lives until the end
    let bin = env!("CARGO_BIN_EXE_kkm-agent");
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    println!("idle     kkm-agent serve after 3 s: {}", rss(child.id()));
    let _ = child.kill();
    let _ = child.wait();
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0 // utime, stime in clock ticks (USER_HZ = 100)
}

fn rss(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS")).unwrap_or("VmRSS: ?");
    line.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
}

/// Anonymous and file-backed parts of the RSS: the code mapped from the binary is not
/// memory the connections cost.
fn rss_split(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| status.lines().find(|l| l.starts_with(k)).and_then(|l| l.split_whitespace().nth(1)).unwrap_or("?").to_string();
    format!("anonymous {} kB, file {} kB", field("RssAnon"), field("RssFile"))
}

async fn waiters(n: usize) {
    let (dir, cfg) = serve_config();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kkm-agent"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let l = lines.next_line().await.unwrap().unwrap();
        if let Some(rest) = l.strip_prefix("kkm-agent: ") {
            break rest.split_whitespace().next().unwrap().trim_end_matches('/').to_string();
        }
    };
    let pid = child.id().unwrap();
    let token = std::fs::read_to_string(dir.path().join("token")).unwrap();
    let http = reqwest::Client::builder().pool_max_idle_per_host(n).build().unwrap();
    let job: serde_json::Value = http
        .post(format!("{base}/api/v1/receipts"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "w-1")
        .json(&receipt(0))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{base}/api/v1/receipts/{}?wait=60", job["id"]);
    let rss_before = format!("{} = {}", rss(pid), rss_split(pid));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move { http.get(url).bearer_auth(token).send().await.map(|r| r.status().as_u16()) }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // all connected and waiting
    let (cpu0, t0) = (cpu_secs(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cpu = (cpu_secs(pid) - cpu0) / t0.elapsed().as_secs_f64() * 100.0;
    let (rss_waiting, split) = (rss(pid), rss_split(pid));
    // Only waiters that were really waiting count: cancel the job, and every one of them
    // must come back with it.
    let _ = http.delete(format!("{base}/api/v1/jobs/{}", job["id"])).bearer_auth(&token).send().await;
    let mut answered = 0;
    for t in tasks {
        if let Ok(Ok(200)) = t.await {
            answered += 1;
        }
    }
    println!(
        "waiters  {n} long-polls on an unchanged job: serve CPU {cpu:.1} % of a core over 5 s, RSS {rss_waiting} ({split}; idle before: {rss_before}); {answered} of {n} answered when the job changed"
    );
    let _ = child.kill().await;
}

fn main() {
    // `cargo bench --bench daemon -- waiters` runs one part; no argument runs all.
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let run = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        if run("enqueue") {
            enqueue(1, 500).await;
            enqueue(16, 125).await;
            enqueue(128, 16).await;
        }
        if run("drain") {
            drain(EmulatedModel::Azur01F, 200).await;
            drain(EmulatedModel::Neva01F, 200).await;
        }
        if run("waiters") {
            waiters(1000).await;
        }
    });
    if run("idle") {
        idle_rss();
    }
}
