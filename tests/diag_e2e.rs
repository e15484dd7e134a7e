//! `kkm-agent diag` end to end, as a separate process like an engineer runs it:
//! registers found on a TCP port from the config and on serial lines (PTYs) of both
//! protocol families; a port really held by another (unprivileged) process, named with
//! its PID; the running agent's parked queue, its port left alone; the support file
//! without the token or customers' contacts; and exit codes that follow the findings.
//!
//! The scans are pointed at ports with `--port`/`--no-scan`: the tests never probe the
//! PC's real serial ports or the USB-RNDIS address.

mod common;

use kkm_agent::emulate::{self, EmuProtocol, EmulatedModel, EmulatorOptions};
use kkm_emu::Listen;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kkm-agent");

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A config with no device and an agent address nobody listens on, unless given.
fn config(dir: &Path, devices: &str) -> PathBuf {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, format!("listen = \"{free}\"\ndata_dir = {:?}\n{devices}", dir.join("data"))).unwrap();
    path
}

/// Runs `kkm-agent diag ARGS --json`: the exit code and the parsed report.
fn diag(args: &[&str]) -> (i32, Value) {
    let out = Command::new(BIN).arg("diag").args(args).arg("--json").output().expect("run diag");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}\n{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), v)
}

fn findings(v: &Value) -> Vec<Value> {
    let mut all: Vec<Value> = v["summary"].as_array().cloned().unwrap_or_default();
    for p in v["ports"].as_array().into_iter().flatten() {
        all.extend(p["findings"].as_array().cloned().unwrap_or_default());
        all.extend(p["health"]["findings"].as_array().cloned().unwrap_or_default());
    }
    all.extend(v["agent"]["findings"].as_array().cloned().unwrap_or_default());
    all
}

/// The error level, whatever the severity enum calls it on the wire.
fn is_error(f: &Value) -> bool {
    matches!(f["severity"].as_str(), Some("error" | "critical"))
}

/// Exit 1 exactly when some finding is an error.
fn assert_exit_follows_findings(code: i32, v: &Value) {
    let errors = findings(v).iter().filter(|f| is_error(f)).count();
    assert_eq!(code, if errors > 0 { 1 } else { 0 }, "{errors} error findings, exit {code}");
}

fn port<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["ports"].as_array().unwrap().iter().find(|p| p["port"] == name).unwrap_or_else(|| panic!("{name} not in {v:#}"))
}

#[tokio::test]
async fn finds_the_configured_tcp_register_and_reports_its_identity() {
    let emu = emulate::start(EmulatorOptions::new(EmulatedModel::Azur01F, Listen::Tcp("127.0.0.1:0".parse().unwrap())))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &format!("[[devices]]\nid = \"salon\"\nmodel = \"azur-01f\"\nport = \"{}\"\n", emu.port));
    let (code, v) = tokio::task::spawn_blocking(move || diag(&["--config", cfg.to_str().unwrap(), "--no-scan"])).await.unwrap();
    let p = port(&v, &emu.port);
    assert_eq!((p["state"].as_str(), p["origin"].as_str(), p["device_id"].as_str()), (Some("found"), Some("config"), Some("salon")), "{p:#}");
    assert_eq!(p["detection"]["link"], "shtrih");
    let id = &p["health"]["facts"]["identity"];
    for key in ["serial", "inn", "rnm", "fn_serial", "model_name", "firmware"] {
        assert!(!id[key].as_str().unwrap_or("").is_empty(), "{key} missing: {id:#}");
    }
    assert!(findings(&v).iter().any(|f| f["code"] == "identity.rnm_ok"), "the health rules ran");
    // The registration, read over FF09 and FF0E: the emulator's default ФФД 1.2, УСН доход.
    assert_eq!((id["ffd_version"].as_str(), &id["tax_systems"]), (Some("1.2"), &serde_json::json!(["usn_income"])), "{id:#}");
    assert!(findings(&v).iter().any(|f| f["code"] == "registration.ffd" && f["severity"] == "info"));
    assert_eq!(v["agent"]["running"], false);
    assert_exit_follows_findings(code, &v);
    // A healthy register and an agent that is simply not running: nothing is an error.
    assert_eq!(code, 0, "{:?}", findings(&v));
}

async fn pty_emulator(model: EmulatedModel, baud: u32) -> emulate::RunningEmulator {
    let protocol = (model == EmulatedModel::Neva01F).then_some(EmuProtocol::Atol);
    emulate::start(EmulatorOptions { baud: Some(baud), protocol, ..EmulatorOptions::new(model, Listen::Pty) }).await.unwrap()
}

#[tokio::test]
async fn finds_shtrih_and_atol_on_serial_lines_at_their_speeds() {
    let azur = pty_emulator(EmulatedModel::Azur01F, 9600).await;
    let neva = pty_emulator(EmulatedModel::Neva01F, 57_600).await;
    let silent = kkm_core::platform::open_pty().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let args: Vec<String> = ["--config", cfg.to_str().unwrap(), "--port", &azur.port, "--port", &neva.port, "--port", &silent.slave_path]
        .map(String::from)
        .to_vec();
    let (code, v) = tokio::task::spawn_blocking(move || diag(&args.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap();
    let a = port(&v, &azur.port);
    assert_eq!((a["state"].as_str(), a["detection"]["protocol"].as_str(), a["detection"]["baud"].as_u64()), (Some("found"), Some("shtrih"), Some(9600)), "{a:#}");
    assert_eq!(a["health"]["facts"]["identity"]["model_name"], "АЗУР-01Ф");
    let n = port(&v, &neva.port);
    assert_eq!((n["state"].as_str(), n["detection"]["protocol"].as_str(), n["detection"]["baud"].as_u64()), (Some("found"), Some("atol"), Some(57_600)), "{n:#}");
    assert!(n["health"]["facts"]["identity"]["serial"].as_str().is_some());
    assert_eq!(port(&v, &silent.slave_path)["state"], "no_answer");
    assert_exit_follows_findings(code, &v);
    drop(silent);
}

#[tokio::test]
async fn no_register_anywhere_is_an_error_and_exit_1() {
    let silent = kkm_core::platform::open_pty().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let path = silent.slave_path.clone();
    let (code, v) = tokio::task::spawn_blocking(move || diag(&["--config", cfg.to_str().unwrap(), "--port", &path, "--port-budget", "3"]))
        .await
        .unwrap();
    assert_eq!(code, 1);
    assert!(findings(&v).iter().any(|f| f["code"] == "diag.no_register" && is_error(f)), "{v:#}");
}

/// A port another process has open, as a different user: diag names that process and
/// does not touch the port.
#[tokio::test]
async fn names_the_process_that_holds_a_port() {
    use std::os::unix::fs::PermissionsExt;
    let pty = kkm_core::platform::open_pty().unwrap();
    std::fs::set_permissions(&pty.slave_path, std::fs::Permissions::from_mode(0o666)).unwrap();
    // The holder opens the device itself; as root we drop to `nobody` first (root
    // ignores exclusive mode, so a root holder would prove less).
    let open_and_wait = format!("exec sleep 60 < {}", pty.slave_path);
    let mut cmd = if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0 {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", &open_and_wait]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &open_and_wait]);
        c
    };
    let holder = KillOnDrop(cmd.spawn().expect("spawn the holder"));
    let pid = holder.0.id();
    // Wait (bounded) until the holder has the device open.
    let target = std::fs::canonicalize(&pty.slave_path).unwrap();
    let opened = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::read_link(format!("/proc/{pid}/fd/0")).is_ok_and(|t| t == target)
    });
    assert!(opened, "the holder did not open {}", pty.slave_path);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let path = pty.slave_path.clone();
    let (_, v) = tokio::task::spawn_blocking(move || diag(&["--config", cfg.to_str().unwrap(), "--port", &path])).await.unwrap();
    let p = port(&v, &pty.slave_path);
    assert_eq!(p["state"], "busy", "{p:#}");
    assert_eq!(p["holders"][0]["pid"].as_u64(), Some(u64::from(pid)), "{p:#}");
    assert_eq!(p["holders"][0]["program"], "sleep");
    let f = &p["findings"][0];
    assert_eq!(f["code"], "port.busy");
    assert!(f["title_ru"].as_str().unwrap().contains(&format!("sleep (процесс {pid})")), "{f:#}");
    drop(holder);
}

/// The running agent holds its port: diag leaves it alone and reports the agent's parked
/// queue with the reason and the action.
#[tokio::test]
async fn reports_the_agents_parked_queue_without_touching_its_port() {
    let rig = common::Rig::start(true).await;
    rig.ctl("paper out");
    let (_, _job) = rig.post("/api/v1/receipts", Some("diag-paper-1"), Some(&common::receipt(150_000))).await;
    rig.wait_parked().await;
    let cfg = rig.config_path().to_path_buf();
    let url = rig.base.clone();
    let (code, v) =
        tokio::task::spawn_blocking(move || diag(&["--config", cfg.to_str().unwrap(), "--url", &url, "--no-scan"])).await.unwrap();
    assert_eq!(v["agent"]["running"], true, "{:#}", v["agent"]);
    let p = &v["ports"][0];
    assert_eq!((p["state"].as_str(), p["device_id"].as_str()), (Some("held_by_agent"), Some("k1")), "{p:#}");
    assert!(p["health"].is_null(), "the agent's port was probed");
    let parked = findings(&v).into_iter().find(|f| f["code"] == "agent.queue_parked").expect("the parked queue is reported");
    assert!(is_error(&parked));
    assert!(parked["title_ru"].as_str().unwrap().contains("k1"), "{parked:#}");
    assert!(parked["action_ru"].as_str().unwrap().contains("рулон"), "{parked:#}");
    assert_eq!(code, 1);
}

#[tokio::test]
async fn the_support_file_holds_the_last_hour_of_log_without_token_or_contacts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("logs")).unwrap();
    let token = "dGhpcyBpcyBhIHRlc3QgdG9rZW4gb2YgNDggY2hhcnM";
    std::fs::write(data.join("token"), token).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let stamp = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    let today = now.date();
    std::fs::write(
        data.join("logs").join(format!("kkm-agent.{today}.log")),
        format!(
            "{}  INFO kkm_agent: started long ago\n\
             {}  INFO kkm_agent: page http://127.0.0.1:8765/#token={token}\n\
             {}  WARN kkm_agent::queue: receipt for anna.smirnova@example.ru phone +7 916 555-12-34 refused: paper out\n",
            stamp(now - time::Duration::hours(3)),
            stamp(now - time::Duration::minutes(20)),
            stamp(now - time::Duration::minutes(5)),
        ),
    )
    .unwrap();
    let silent = kkm_core::platform::open_pty().unwrap();
    let report = dir.path().join("report.txt");
    let out = Command::new(BIN)
        .args(["diag", "--config", cfg.to_str().unwrap(), "--port", &silent.slave_path, "--port-budget", "2", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "no register: an error");
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains("ККТ не найдена"), "the diagnosis is in the file");
    assert!(text.contains("paper out"), "the recent log is in the file:\n{text}");
    assert!(!text.contains("started long ago"), "only the last hour");
    for secret in [token, "anna.smirnova", "555-12-34"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    assert!(text.contains("#token=[скрыто]"));
}

/// The same from the other side: diag runs as an ordinary user who may not look into the
/// holder's process, and the holder has the port locked (`flock`, as serial programs do).
/// The open fails, and diag says the port is busy instead of "not found" or "silent".
#[tokio::test]
async fn a_locked_port_is_busy_even_when_the_holder_cannot_be_named() {
    use std::os::unix::fs::PermissionsExt;
    if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) != 0 {
        eprintln!("skipped: needs root to run the holder and diag as two other users");
        return;
    }
    let pty = kkm_core::platform::open_pty().unwrap();
    std::fs::set_permissions(&pty.slave_path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let holder = KillOnDrop(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "flock", "--exclusive", &pty.slave_path, "sleep", "60"])
            .spawn()
            .expect("spawn the holder"),
    );
    let pid = holder.0.id();
    let target = std::fs::canonicalize(&pty.slave_path).unwrap();
    let locked = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::read_to_string("/proc/locks").is_ok_and(|l| l.lines().any(|x| x.contains(&format!(" {pid} "))))
            && std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|d| d.flatten().any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == target)))
    });
    assert!(locked, "the holder did not lock {}", pty.slave_path);
    let path = pty.slave_path.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("setpriv")
            .args(["--reuid=65533", "--regid=65533", "--clear-groups", BIN, "diag", "--no-scan", "--json", "--url", "http://127.0.0.1:9", "--port", &path])
            .env("HOME", "/nonexistent")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let p = port(&v, &pty.slave_path);
    assert_eq!(p["state"], "busy", "{p:#}");
    assert!(p["holders"].is_null(), "an ordinary user cannot see the holder: {p:#}");
    assert!(p["findings"][0]["title_ru"].as_str().unwrap().contains("занят"), "{p:#}");
    drop(holder);
}
