//! The agent + emulator rig shared by the daemon tests: both as separate processes.
#![allow(dead_code)]

pub mod browser;
pub mod relay;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kkm-agent");

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a child and returns it with the values of the `prefix`ed lines it prints.
pub fn spawn_reading(cmd: &mut Command, prefixes: &[&str]) -> (Proc, Vec<String>) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted: Vec<String> = prefixes.iter().map(|s| s.to_string()).collect();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            for (i, p) in wanted.iter().enumerate() {
                if let Some(v) = line.strip_prefix(p.as_str()) {
                    let _ = tx.send((i, v.trim().to_string()));
                }
            }
        }
    });
    let mut values = vec![String::new(); prefixes.len()];
    let mut got = 0;
    while got < prefixes.len() {
        let (i, v) = rx.recv_timeout(Duration::from_secs(30)).expect("child prints what we wait for");
        if values[i].is_empty() {
            got += 1;
        }
        values[i] = v;
    }
    (Proc(child), values)
}

/// `kkm-agent emulate ARGS --ephemeral --quiet` and the values of the lines it prints
/// that start with `prefixes` (e.g. `"port: "`, `"control: "`).
pub fn emulate(args: &[&str], prefixes: &[&str]) -> (Proc, Vec<String>) {
    spawn_reading(Command::new(BIN).arg("emulate").args(args).args(["--ephemeral", "--quiet"]), prefixes)
}

pub struct Rig {
    emu: Option<Proc>,
    /// How the emulator was started, to start it again on the same port and ФН state.
    emu_args: Vec<String>,
    port: String,
    agent: Option<Proc>,
    pub control: String,
    pub base: String,
    pub token: String,
    pub dir: tempfile::TempDir,
    http: reqwest::Client,
    config: PathBuf,
}

impl Rig {
    pub async fn start(auto_open_shift: bool) -> Rig {
        Rig::start_model("azur-01f", auto_open_shift).await
    }

    pub async fn start_model(model: &str, auto_open_shift: bool) -> Rig {
        Rig::start_with(model, model, auto_open_shift).await
    }

    /// `config_model` may differ from the emulated one, e.g. `auto`. A model may name
    /// its protocol after `@`: `neva-01-f@atol` is Neva-01-F on ATOL; plain `neva-01-f`
    /// is its default, the УМКА HTTP API. The port is whatever the emulator prints.
    pub async fn start_with(model: &str, config_model: &str, auto_open_shift: bool) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("emu.json");
        let (model, protocol) = match model.split_once('@') {
            Some((m, p)) => (m, Some(p)),
            None => (model, None),
        };
        let config_model = config_model.split_once('@').map_or(config_model, |(m, _)| m);
        let mut cmd = Command::new(BIN);
        cmd.args(["emulate", "--model", model, "--listen", "tcp:127.0.0.1:0", "--quiet", "--control", "127.0.0.1:0", "--state"]).arg(&state);
        if let Some(p) = protocol {
            cmd.args(["--protocol", p]);
        }
        let emu_args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let (emu, v) = spawn_reading(&mut cmd, &["port: ", "control: "]);
        let config = dir.path().join("config.toml");
        let protocol_line = match protocol {
            Some(p) if config_model != "auto" => format!("protocol = \"{p}\"\n"),
            _ => String::new(),
        };
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[policy]\nauto_open_shift = {auto_open_shift}\n[[devices]]\nid = \"k1\"\nmodel = \"{config_model}\"\nport = \"{}\"\n{protocol_line}",
                dir.path().join("data"),
                v[0]
            ),
        )
        .unwrap();
        let mut rig = Rig {
            emu: Some(emu),
            emu_args,
            port: v[0].clone(),
            agent: None,
            control: v[1].clone(),
            base: String::new(),
            token: String::new(),
            dir,
            http: reqwest::Client::new(),
            config,
        };
        rig.start_agent();
        rig
    }

    pub fn start_agent(&mut self) {
        let (agent, v) = spawn_reading(Command::new(BIN).arg("serve").arg("--config").arg(&self.config), &["kkm-agent: "]);
        self.base = v[0].split_whitespace().next().unwrap().trim_end_matches('/').to_string();
        self.token = std::fs::read_to_string(self.dir.path().join("data/token")).unwrap();
        self.agent = Some(agent);
    }

    pub fn agent_pid(&self) -> Option<u32> {
        self.agent.as_ref().map(|p| p.0.id())
    }

    /// Waits (bounded) for the agent to exit by itself; returns its exit status.
    pub fn wait_agent_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        let agent = self.agent.as_mut()?;
        while started.elapsed() < within {
            if let Ok(Some(status)) = agent.0.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The register switched off: its emulator process is killed (its ФН state is on disk).
    pub fn kill_emulator(&mut self) {
        self.emu = None;
    }

    /// The register back on: the emulator again, on the same port, control port and state.
    pub fn restart_emulator(&mut self) {
        let mut args = self.emu_args.clone();
        for (flag, value) in [("--listen", self.port.clone()), ("--control", self.control.clone())] {
            if let Some(i) = args.iter().position(|a| a == flag) {
                args[i + 1] = value;
            }
        }
        let (emu, _) = spawn_reading(Command::new(BIN).args(&args), &["port: "]);
        self.emu = Some(emu);
    }

    pub fn kill_agent(&mut self) {
        self.agent = None; // Drop kills with SIGKILL
    }

    pub fn ctl(&self, line: &str) -> String {
        let mut s = TcpStream::connect(&self.control).unwrap();
        s.write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer).unwrap();
        assert!(!answer.starts_with("error"), "{line}: {answer}");
        answer
    }

    /// A control line whose refusal is fine (e.g. `keypad cancel` with nothing open).
    pub fn ctl_try(&self, line: &str) -> String {
        let mut s = TcpStream::connect(&self.control).unwrap();
        s.write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer).unwrap();
        answer
    }

    pub fn emu_state(&self) -> Value {
        serde_json::from_str(&self.ctl("state")).unwrap()
    }

    pub fn receipts_in_fn(&self) -> usize {
        self.emu_state()["documents"].as_array().unwrap().iter().filter(|d| d["kind"] == "receipt").count()
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        let mut r = self.http.post(format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(k) = key {
            r = r.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        let resp = r.send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.token).send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let resp = self.http.delete(format!("{}{path}", self.base)).bearer_auth(&self.token).send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }

    /// The agent's config file (to start a second agent on the same data directory).
    pub fn config_path(&self) -> &std::path::Path {
        &self.config
    }

    /// Waits (bounded) until the job has the status.
    pub async fn wait_status(&self, id: i64, status: &str) -> Value {
        let started = Instant::now();
        loop {
            let (_, job) = self.get(&format!("/api/v1/receipts/{id}")).await;
            if job["status"] == status {
                return job;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "job never became {status}: {job}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for a job to reach a final status.
    pub async fn wait_job(&self, id: i64) -> Value {
        let started = Instant::now();
        loop {
            let (code, job) = self.get(&format!("/api/v1/receipts/{id}?wait=5")).await;
            assert_eq!(code, 200);
            let status = job["status"].as_str().unwrap_or("");
            if ["done", "failed", "needs_attention", "cancelled"].contains(&status) || started.elapsed() > Duration::from_secs(60) {
                return job;
            }
        }
    }

    /// Waits until the device shows a parked reason.
    pub async fn wait_parked(&self) -> Value {
        let started = Instant::now();
        loop {
            let (_, d) = self.get("/api/v1/devices/k1").await;
            if !d["state"]["parked"].is_null() {
                return d["state"]["parked"].clone();
            }
            assert!(started.elapsed() < Duration::from_secs(30), "device never parked: {d}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Posts a receipt slowly and kills the agent while it is open on the device.
pub async fn kill_mid_receipt(rig: &mut Rig, key: &str, total: i64) -> i64 {
    rig.ctl("fault delay=300");
    let (_, job) = rig.post("/api/v1/receipts", Some(key), Some(&receipt(total))).await;
    let started = Instant::now();
    while rig.emu_state()["receipt_open"] != true {
        assert!(started.elapsed() < Duration::from_secs(90), "the receipt never opened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    rig.kill_agent();
    rig.ctl("faults clear");
    rig.ctl("fault delay=0");
    job["id"].as_i64().unwrap()
}

pub fn receipt(total_kopecks: i64) -> Value {
    json!({
        "operation": "sale",
        "items": [
            // 10 %, not 22 %: ATOL's 22 % code is unconfirmed and Neva-01-F refuses it.
            {"name": "Маникюр", "price": total_kopecks - 10_000, "vat": "vat10", "payment_object": "service"},
            {"name": "Крем для рук", "price": 10_000, "vat": "vat10", "payment_object": "commodity"}
        ],
        "payments": [{"type": "cash", "sum": total_kopecks - 10_000}, {"type": "electronic", "sum": 10_000}]
    })
}

