//! Diagnostics while the daemon runs (issue 8, items 3 and 5), end to end: the agent
//! and an emulator as separate processes over TCP, faults injected on the emulator's
//! control port.
//!
//! * The daemon's own health check shows a fault in `GET /api/v1/devices/{id}`.
//! * `GET /api/v1/diagnostics` has the documented shape.
//! * `kkm-agent device … check` goes through the running agent instead of timing out.
//! * `release_port_after_idle` lets another client use the register, and a receipt
//!   posted afterwards still prints exactly once, also while another client holds it.

mod common;

use common::{receipt, Rig};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kkm-agent");

/// Restarts the rig's agent with its config edited (`[policy]` and `[[devices]]` lines).
fn restart_with(rig: &mut Rig, policy: &str, device: &str) {
    rig.kill_agent();
    let path = rig.config_path().to_path_buf();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace("[policy]\n", &format!("[policy]\n{policy}\n"));
    std::fs::write(&path, format!("{text}{device}\n")).unwrap();
    rig.start_agent();
}

/// The emulator's port, as the rig wrote it in the agent's config.
fn emulator_port(rig: &Rig) -> String {
    let text = std::fs::read_to_string(rig.config_path()).unwrap();
    let line = text.lines().find(|l| l.starts_with("port = ")).unwrap();
    line.trim_start_matches("port = ").trim_matches('"').to_string()
}

fn codes(health: &Value) -> Vec<String> {
    health["findings"].as_array().map_or(vec![], |f| f.iter().map(|x| x["code"].as_str().unwrap_or("").to_string()).collect())
}

fn finding<'a>(health: &'a Value, code: &str) -> &'a Value {
    health["findings"].as_array().unwrap().iter().find(|f| f["code"] == code).unwrap_or_else(|| panic!("no {code}: {health}"))
}

/// Waits (bounded) until the device's `health` has a finding with `code`.
async fn wait_health(rig: &Rig, code: &str, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (status, d) = rig.get("/api/v1/devices/k1").await;
        assert_eq!(status, 200);
        if codes(&d["health"]).iter().any(|c| c == code) {
            return d["health"].clone();
        }
        assert!(started.elapsed() < within, "health never showed {code}: {}", d["health"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn is_rfc3339_with_offset(t: &str) -> bool {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok()
        && (t.ends_with('Z') || t[t.len() - 6..].starts_with(['+', '-']))
}

fn needs_a_person(severity: &Value) -> bool {
    matches!(severity.as_str(), Some("warning" | "error"))
}

#[tokio::test]
async fn the_periodic_health_check_shows_paper_out_in_the_device_view() {
    periodic_paper_out("azur-01f").await;
}

#[tokio::test]
async fn the_periodic_health_check_shows_paper_out_on_neva_over_umka() {
    periodic_paper_out("neva-01-f").await;
}

async fn periodic_paper_out(model: &str) {
    let mut rig = Rig::start_model(model, true).await;
    restart_with(&mut rig, "health_check_every = \"1s\"", "");
    // Right after connecting the daemon checks the device: a health object appears.
    let first = wait_health(&rig, "shift.closed", Duration::from_secs(20)).await;
    assert!(is_rfc3339_with_offset(first["checked_at"].as_str().unwrap()), "{first}");
    rig.ctl("paper out");
    let h = wait_health(&rig, "paper.out", Duration::from_secs(20)).await;
    let f = finding(&h, "paper.out");
    assert!(needs_a_person(&f["severity"]), "{f}");
    assert_eq!(f["severity"], "error", "{f}");
    assert_eq!(f["title_ru"], "Нет бумаги");
    assert!(f["action_ru"].as_str().unwrap().contains("рулон"), "{f}");
    assert!(f["title_en"].is_string());
    // The list of devices carries the same object.
    let (_, list) = rig.get("/api/v1/devices").await;
    assert!(codes(&list[0]["health"]).contains(&"paper.out".to_string()), "{list}");
    // And the next check sees the paper back.
    rig.ctl("paper in");
    let started = Instant::now();
    loop {
        let (_, d) = rig.get("/api/v1/devices/k1").await;
        if !codes(&d["health"]).contains(&"paper.out".to_string()) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "paper.out stayed: {}", d["health"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET /api/v1/diagnostics` carries the ФФД version and tax systems the register
/// reports (`health.registration`), re-read after the unit is re-registered; ATOL has no
/// confirmed read and says `null`, never a guess.
#[tokio::test]
async fn diagnostics_show_the_registration_azur() {
    diagnostics_registration("azur-01f").await;
}

#[tokio::test]
async fn diagnostics_show_the_registration_neva_umka() {
    diagnostics_registration("neva-01-f").await;
}

#[tokio::test]
async fn diagnostics_show_the_registration_neva_atol_as_unknown() {
    diagnostics_registration("neva-01-f@atol").await;
}

async fn diagnostics_registration(model: &str) {
    let rig = Rig::start_model(model, true).await;
    let (status, d) = rig.get("/api/v1/diagnostics?refresh=true").await;
    assert_eq!(status, 200, "{d}");
    let h = &d["devices"][0]["health"];
    let atol = model.ends_with("@atol");
    let want = |ffd: &str, tax: &str| {
        if atol {
            serde_json::json!({"ffd_version": null, "tax_systems": null})
        } else {
            serde_json::json!({"ffd_version": ffd, "tax_systems": [tax]})
        }
    };
    assert_eq!(h["registration"], want("1.2", "usn_income"), "{h}");
    assert_eq!(finding(h, "registration.ffd")["severity"], "info");
    rig.ctl("ffd 1.05");
    rig.ctl("tax-systems osn");
    let (_, d) = rig.get("/api/v1/diagnostics?refresh=true").await;
    let h = &d["devices"][0]["health"];
    assert_eq!(h["registration"], want("1.05", "osn"), "{h}");
    if atol {
        assert!(finding(h, "registration.tax_systems")["title_ru"].as_str().unwrap().contains("неизвестно"), "{h}");
    } else {
        let w = finding(h, "registration.default_tax_system_not_registered");
        assert_eq!(w["severity"], "warning", "{w}");
        assert!(w["title_ru"].as_str().unwrap().contains("«ОСН»"), "{w}");
    }
}

#[tokio::test]
async fn diagnostics_answers_with_the_documented_shape_and_a_fresh_check() {
    let rig = Rig::start(true).await;
    rig.ctl("ofd offline");
    let (code, job) = rig.post("/api/v1/receipts", Some("diag-1"), Some(&receipt(150_000))).await;
    assert_eq!(code, 202, "{job}");
    let job = rig.wait_job(job["id"].as_i64().unwrap()).await;
    assert_eq!(job["status"], "done", "{job}");
    // The receipt waits for the ОФД since 25 days: the ФН blocks in 5.
    rig.ctl("ofd unsent-for 25d");
    let (status, d) = rig.get("/api/v1/diagnostics?refresh=true").await;
    assert_eq!(status, 200, "{d}");
    assert!(is_rfc3339_with_offset(d["generated_at"].as_str().unwrap()), "{d}");
    assert!(d["agent_version"].is_string());
    assert_eq!(d["needs_attention"], 0);
    let dev = &d["devices"][0];
    assert_eq!(dev["id"], "k1");
    assert_eq!(dev["online"], true);
    assert_eq!(dev["port_released"], false);
    assert!(dev["parked"].is_null(), "{dev}");
    assert_eq!(dev["queued"], 0);
    assert_eq!(dev["needs_attention"], 0);
    assert!(dev["link_errors"].is_array());
    let h = &dev["health"];
    assert!(is_rfc3339_with_offset(h["checked_at"].as_str().unwrap()), "{h}");
    for f in h["findings"].as_array().unwrap() {
        for k in ["code", "severity", "title_ru", "title_en", "action_ru", "cashier_action_ru"] {
            assert!(f[k].is_string(), "{k} in {f}");
        }
        assert!(["ok", "info", "warning", "error"].contains(&f["severity"].as_str().unwrap()), "{f}");
    }
    let ofd = finding(h, "ofd.blocking_soon");
    assert_eq!(ofd["severity"], "warning", "{ofd}");
    assert!(ofd["title_ru"].as_str().unwrap().contains("заблокируется"), "{ofd}");
    // The refreshed check is what the device view shows from now on.
    let (_, view) = rig.get("/api/v1/devices/k1").await;
    assert_eq!(view["health"], *h);
    // Documented, and refused without the token like every route.
    let (_, doc) = rig.get("/api/v1/openapi.json").await;
    assert!(doc["paths"]["/api/v1/diagnostics"]["get"].is_object(), "no path in the OpenAPI document");
    for schema in ["Diagnostics", "DeviceDiagnostics", "Health", "HealthFinding", "HealthSeverity", "TimedError"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    assert!(doc["components"]["schemas"]["DeviceView"]["properties"]["health"].is_object());
    // The cashier's action beside the engineer's, documented where both appear.
    for schema in ["HealthFinding", "JobError"] {
        let s = &doc["components"]["schemas"][schema];
        assert!(s["properties"]["cashier_action_ru"]["type"] == "string", "{schema}: {s}");
        assert!(s["properties"]["action_ru"].is_object(), "{schema}: {s}");
    }
    let resp = reqwest::get(format!("{}/api/v1/diagnostics", rig.base)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/problem+json"));
    let (status, p) = rig.get("/api/v1/diagnostics?refresh=maybe").await;
    assert_eq!(status, 400, "{p}");
    assert_eq!(p["code"], "request.invalid");
}

#[tokio::test]
async fn device_check_goes_through_the_running_agent() {
    let mut rig = Rig::start(true).await;
    rig.ctl("paper out");
    let port = emulator_port(&rig);
    let out = Command::new(BIN)
        .args(["device", "--port", &port, "--config"])
        .arg(rig.config_path())
        .args(["check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("через него"), "says it went through the agent: {stdout}\n{stderr}");
    assert!(stdout.lines().any(|l| l.starts_with("[ОШИБКА") && l.ends_with("] Нет бумаги")), "{stdout}\n{stderr}");
    assert!(!stdout.contains("не отвечает") && !stderr.contains("не отвечает"), "{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(1), "an error finding fails the check, as a direct check does");
    // Machine-readable too.
    rig.ctl("paper in");
    let out = Command::new(BIN)
        .args(["device", "--port", &port, "--json", "--config"])
        .arg(rig.config_path())
        .args(["check"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["via"], "agent");
    assert_eq!(v["device"]["id"], "k1");
    assert!(!codes(&v["device"]["health"]).contains(&"paper.out".to_string()), "a fresh check: {v}");
    let errors = v["device"]["health"]["findings"].as_array().unwrap().iter().any(|f| matches!(f["severity"].as_str(), Some("error")));
    assert_eq!(out.status.code(), Some(if errors { 1 } else { 0 }), "exit code follows the findings: {v}");
    // With the agent stopped, the same command checks the register directly.
    rig.kill_agent();
    let out = Command::new(BIN)
        .args(["device", "--port", &port, "--model", "azur-01f", "--config"])
        .arg(rig.config_path())
        .args(["check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("через него"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with('[')), "a direct check: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
}

/// `device … status` straight to the emulator: answers only while no one else holds it.
fn direct_status(port: &str, model: &[&str]) -> std::process::Output {
    Command::new(BIN).args(["device", "--port", port]).args(model).args(["--json", "status"]).output().unwrap()
}

#[tokio::test]
async fn an_idle_agent_lets_the_port_go_and_a_receipt_still_prints_once() {
    idle_release("azur-01f", &["--model", "azur-01f"]).await;
}

#[tokio::test]
async fn an_idle_agent_lets_the_atol_port_go_too() {
    idle_release("neva-01-f@atol", &["--model", "neva-01-f", "--protocol", "atol"]).await;
}

async fn idle_release(model: &str, direct: &[&str]) {
    let mut rig = Rig::start_model(model, true).await;
    restart_with(&mut rig, "", "release_port_after_idle = \"2s\"");
    let port = emulator_port(&rig);
    // Online first, then released after 2 s without work.
    let started = Instant::now();
    loop {
        let (_, d) = rig.get("/api/v1/devices/k1").await;
        if d["state"]["port_released"] == true {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never released: {d}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A check asked for on a released, free port runs and lets the port go again.
    let (_, d) = rig.get("/api/v1/diagnostics?refresh=true").await;
    assert!(d["devices"][0]["refresh_error"].is_null(), "{d}");
    assert!(d["devices"][0]["health"]["findings"].is_array(), "{d}");
    let (_, v) = rig.get("/api/v1/devices/k1").await;
    assert_eq!(v["state"]["port_released"], true, "{v}");
    // Another program (here: the direct CLI) can use the register now.
    let out = direct_status(&port, direct);
    assert!(out.status.success(), "direct status after release: {}", String::from_utf8_lossy(&out.stderr));
    // The next receipt opens the port again and prints exactly once.
    let (code, job) = rig.post("/api/v1/receipts", Some("idle-1"), Some(&receipt(150_000))).await;
    assert_eq!(code, 202, "{job}");
    let job = rig.wait_job(job["id"].as_i64().unwrap()).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(rig.receipts_in_fn(), 1);

    // Released again; now another client holds the register while a receipt comes.
    let started = Instant::now();
    loop {
        let (_, d) = rig.get("/api/v1/devices/k1").await;
        if d["state"]["port_released"] == true {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never released again: {d}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let holder = std::net::TcpStream::connect(port.trim_start_matches("tcp:")).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, job) = rig.post("/api/v1/receipts", Some("idle-2"), Some(&receipt(120_000))).await;
    assert_eq!(code, 202, "{job}");
    let id = job["id"].as_i64().unwrap();
    // The agent gets no answer (the register serves the other client): the job waits,
    // and the diagnostics say why.
    let started = Instant::now();
    loop {
        let (_, d) = rig.get("/api/v1/diagnostics").await;
        if !d["devices"][0]["link_errors"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the wait is never explained: {d}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, j) = rig.get(&format!("/api/v1/receipts/{id}")).await;
    assert_eq!(j["status"], "queued", "waits while another client holds the register: {j}");
    drop(holder);
    let j = rig.wait_job(id).await;
    assert_eq!(j["status"], "done", "{j}");
    assert_eq!(rig.receipts_in_fn(), 2, "each receipt exactly once");
}

/// A PTY held the way another program holds a serial port: open, with `TIOCEXCL`.
#[cfg(target_os = "linux")]
mod busy_pty {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::fd::AsRawFd;
    use std::process::{Child, Stdio};

    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Starts `cmd` and returns the values of the `prefix`ed lines it prints.
    fn spawn_reading(cmd: &mut Command, prefixes: &[&str]) -> (Kill, Vec<String>) {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn");
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let wanted: Vec<String> = prefixes.iter().map(|s| s.to_string()).collect();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                for (i, p) in wanted.iter().enumerate() {
                    if let Some(v) = line.strip_prefix(p.as_str()) {
                        let _ = tx.send((i, v.trim().to_string()));
                    }
                }
            }
        });
        let mut values = vec![String::new(); prefixes.len()];
        while values.iter().any(String::is_empty) {
            let (i, v) = rx.recv_timeout(Duration::from_secs(30)).expect("the child prints what we wait for");
            values[i] = v;
        }
        (Kill(child), values)
    }

    /// Holds the port like another program: opened, with `TIOCEXCL`, so an ordinary
    /// user's open fails with EBUSY. Released (`TIOCNXCL`) on drop.
    struct Holder(std::fs::File);
    impl Holder {
        fn hold(path: &str) -> Holder {
            let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
            // SAFETY: a valid open fd and an argument-less ioctl.
            assert_eq!(unsafe { nix::libc::ioctl(f.as_raw_fd(), nix::libc::TIOCEXCL) }, 0);
            Holder(f)
        }
    }
    impl Drop for Holder {
        fn drop(&mut self) {
            // SAFETY: as above.
            unsafe { nix::libc::ioctl(self.0.as_raw_fd(), nix::libc::TIOCNXCL) };
        }
    }

    async fn get(http: &reqwest::Client, base: &str, token: &str, path: &str) -> Value {
        http.get(format!("{base}{path}")).bearer_auth(token).send().await.unwrap().json().await.unwrap()
    }

    /// Root ignores `TIOCEXCL`, so the agent runs as `nobody` (the test needs root to
    /// switch users; as an ordinary user it is skipped).
    #[tokio::test]
    async fn a_receipt_waits_on_a_port_another_program_holds_and_prints_once_when_freed() {
        if unsafe { nix::libc::geteuid() } != 0 || Command::new("setpriv").arg("--version").output().is_err() {
            eprintln!("skipped: needs root and setpriv to run the agent as an ordinary user");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let (_emu, v) = spawn_reading(
            Command::new(BIN).args(["emulate", "--model", "azur-01f", "--listen", "pty", "--quiet", "--ephemeral", "--control", "127.0.0.1:0"]),
            &["port: ", "control: "],
        );
        let (pty, control) = (v[0].clone(), v[1].clone());
        std::fs::set_permissions(&pty, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[[devices]]\nid = \"k1\"\nmodel = \"azur-01f\"\nport = \"{pty}\"\nrelease_port_after_idle = \"2s\"\n",
                dir.path().join("data")
            ),
        )
        .unwrap();
        let (_agent, v) = spawn_reading(
            Command::new("setpriv").args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN, "serve", "--config"]).arg(&config),
            &["kkm-agent: "],
        );
        let base = v[0].split_whitespace().next().unwrap().trim_end_matches('/').to_string();
        let token = std::fs::read_to_string(dir.path().join("data/token")).unwrap();
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let d = get(&http, &base, &token, "/api/v1/devices/k1").await;
            if d["state"]["port_released"] == true {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "never released: {d}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let holder = Holder::hold(&pty);
        // A check asked for now cannot open the held port: it says so, keeps the last
        // check, and the port stays released (no job waits, so nothing is parked).
        let d = get(&http, &base, &token, "/api/v1/diagnostics?refresh=true").await;
        let dev = &d["devices"][0];
        assert_eq!(dev["refresh_error"]["code"], "link.port_busy", "{dev}");
        assert_eq!(dev["port_released"], true, "{dev}");
        assert!(dev["parked"].is_null(), "{dev}");
        assert!(dev["health"]["findings"].is_array(), "the last check is kept: {dev}");
        let post = |key: &'static str| {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            async move {
                let job: Value = http
                    .post(format!("{base}/api/v1/receipts"))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", key)
                    .json(&receipt(150_000))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                job["id"].as_i64().unwrap()
            }
        };
        let wait_parked = || async {
            let started = Instant::now();
            loop {
                let d = get(&http, &base, &token, "/api/v1/devices/k1").await;
                if !d["state"]["parked"].is_null() {
                    return d["state"]["parked"].clone();
                }
                assert!(started.elapsed() < Duration::from_secs(20), "never parked: {d}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        // A receipt the shop then cancels: the wait ends, the port is let go again.
        let cancelled = post("busy-0").await;
        assert_eq!(wait_parked().await["code"], "link.port_busy");
        let c: Value = http.delete(format!("{base}/api/v1/jobs/{cancelled}")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert_eq!(c["status"], "cancelled", "{c}");
        let started = Instant::now();
        loop {
            let d = get(&http, &base, &token, "/api/v1/devices/k1").await;
            if d["state"]["parked"].is_null() && d["state"]["port_released"] == true {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "still waiting for a port no job needs: {d}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The receipt that stays: the queue waits and says why.
        let id = post("busy-1").await;
        let parked = wait_parked().await;
        assert_eq!(parked["code"], "link.port_busy", "{parked}");
        assert_eq!(parked["title_ru"], "Порт занят другой программой");
        let j = get(&http, &base, &token, &format!("/api/v1/receipts/{id}")).await;
        assert_eq!(j["status"], "queued", "{j}");
        drop(holder);
        let started = Instant::now();
        loop {
            let j = get(&http, &base, &token, &format!("/api/v1/receipts/{id}?wait=5")).await;
            if j["status"] == "done" {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "never printed: {j}");
        }
        let d = get(&http, &base, &token, "/api/v1/devices/k1").await;
        assert!(d["state"]["parked"].is_null(), "resumed: {d}");
        // Exactly once in the ФН.
        let mut s = std::net::TcpStream::connect(&control).unwrap();
        std::io::Write::write_all(&mut s, b"state\n").unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        let state: Value = serde_json::from_str(&line).unwrap();
        let receipts = state["documents"].as_array().unwrap().iter().filter(|d| d["kind"] == "receipt").count();
        assert_eq!(receipts, 1, "{state}");
    }
}

/// How many times the agent asked the Shtrih register for a fiscal document (FF0A)
/// in a sniffed log.
fn document_reads(log: &std::sync::Mutex<Vec<String>>) -> usize {
    let log = log.lock().unwrap();
    log.iter().filter(|l| l.starts_with("> 02 ") && l.split(' ').skip(3).take(2).eq(["FF", "0A"])).count()
}

/// The periodic check measures the shift's age from its opening document, which it
/// finds by reading back from the last document. It does so once a shift: before, every
/// check (every 10 minutes) read back through the whole shift again.
#[tokio::test]
async fn the_shift_opening_is_searched_once_a_shift() {
    let mut rig = Rig::start(true).await;
    let port = emulator_port(&rig);
    let (relay, log) = common::relay::sniffing_relay(&port);
    rig.kill_agent();
    let path = rig.config_path().to_path_buf();
    let text = std::fs::read_to_string(&path).unwrap().replace(&format!("\"{port}\""), &format!("\"{relay}\""));
    std::fs::write(&path, text).unwrap();
    rig.start_agent();
    for i in 0..3 {
        let (code, job) = rig.post("/api/v1/receipts", Some(&format!("age-{i}")), Some(&receipt(150_000 + i))).await;
        assert_eq!(code, 202, "{job}");
        assert_eq!(rig.wait_job(job["id"].as_i64().unwrap()).await["status"], "done");
    }
    let shift_title = |d: &Value| finding(&d["devices"][0]["health"], "shift.open")["title_ru"].as_str().unwrap().to_string();
    let (_, d) = rig.get("/api/v1/diagnostics?refresh=true").await;
    assert!(shift_title(&d).starts_with("Смена №1 открыта ") && shift_title(&d).contains("мин"), "{d}");
    assert!(document_reads(&log) >= 4, "the first check reads back to the opening: {}", document_reads(&log));
    log.lock().unwrap().clear();
    for _ in 0..3 {
        let (_, d) = rig.get("/api/v1/diagnostics?refresh=true").await;
        assert!(shift_title(&d).contains("мин"), "the age is still known: {d}");
    }
    assert_eq!(document_reads(&log), 0, "checks of the same shift read no documents");
    // A new shift is searched again.
    let (code, z) = rig.post("/api/v1/shift/close", Some("age-z"), None).await;
    assert_eq!(code, 202, "{z}");
    assert_eq!(rig.wait_job(z["id"].as_i64().unwrap()).await["status"], "done");
    let (_, job) = rig.post("/api/v1/receipts", Some("age-3"), Some(&receipt(150_003))).await;
    assert_eq!(rig.wait_job(job["id"].as_i64().unwrap()).await["status"], "done");
    log.lock().unwrap().clear();
    let (_, d) = rig.get("/api/v1/diagnostics?refresh=true").await;
    assert!(shift_title(&d).starts_with("Смена №2 открыта ") && shift_title(&d).contains("мин"), "{d}");
    assert!(document_reads(&log) >= 2, "{}", document_reads(&log));
}
