//! The daemon end to end: `kkm-agent serve` and `kkm-agent emulate` as separate
//! processes, talking the real wire protocol over TCP, the test talking HTTP to the
//! agent and line commands to the emulator's control port.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kkm-agent");

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a child and returns it with the values of the `prefix`ed lines it prints.
fn spawn_reading(cmd: &mut Command, prefixes: &[&str]) -> (Proc, Vec<String>) {
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

pub struct Rig {
    _emu: Proc,
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
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("emu.json");
        let (emu, v) = spawn_reading(
            Command::new(BIN).args(["emulate", "--model", "azur-01f", "--listen", "tcp:127.0.0.1:0", "--quiet", "--control", "127.0.0.1:0", "--state"]).arg(&state),
            &["port: ", "control: "],
        );
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[policy]\nauto_open_shift = {auto_open_shift}\n[[devices]]\nid = \"k1\"\nmodel = \"azur-01f\"\nport = \"{}\"\n",
                dir.path().join("data"),
                v[0]
            ),
        )
        .unwrap();
        let mut rig = Rig {
            _emu: emu,
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

pub fn receipt(total_kopecks: i64) -> Value {
    json!({
        "operation": "sale",
        "items": [
            {"name": "Маникюр", "price": total_kopecks - 10_000, "vat": "vat22", "payment_object": "service"},
            {"name": "Крем для рук", "price": 10_000, "vat": "vat10", "payment_object": "commodity"}
        ],
        "payments": [{"type": "cash", "sum": total_kopecks - 10_000}, {"type": "electronic", "sum": 10_000}]
    })
}

#[tokio::test]
async fn submit_prints_once_with_fd_and_fp_and_keys_are_idempotent() {
    let rig = Rig::start(true).await;
    let (code, job) = rig.post("/api/v1/receipts", Some("visit-1"), Some(&receipt(250_000))).await;
    assert_eq!(code, 202, "{job}");
    let done = rig.wait_job(job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    assert!(done["result"]["document_number"].as_u64().unwrap() >= 3);
    assert!(done["result"]["fiscal_sign"].as_u64().is_some());
    // Same key, same body: the same job, no second document.
    let (code, again) = rig.post("/api/v1/receipts", Some("visit-1"), Some(&receipt(250_000))).await;
    assert_eq!(code, 200);
    assert_eq!(again["id"], job["id"]);
    // Same key, another body: 409.
    let (code, p) = rig.post("/api/v1/receipts", Some("visit-1"), Some(&receipt(260_000))).await;
    assert_eq!(code, 409);
    assert_eq!(p["code"], "request.idempotency_conflict");
    assert_eq!(rig.receipts_in_fn(), 1);
}

#[tokio::test]
async fn link_dropped_mid_receipt_completes_with_one_document() {
    let rig = Rig::start(true).await;
    rig.ctl("fault drop-link@receipt-close=2");
    let (_, job) = rig.post("/api/v1/receipts", Some("drop-1"), Some(&receipt(150_000))).await;
    let done = rig.wait_job(job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(rig.receipts_in_fn(), 1);
    let fd = done["result"]["document_number"].as_u64().unwrap();
    assert_eq!(rig.emu_state()["last_document_number"].as_u64().unwrap(), fd);
}

#[tokio::test]
async fn power_cut_mid_receipt_cancels_and_prints_once() {
    let rig = Rig::start(true).await;
    rig.ctl("fault power-cut@receipt-item=2");
    let (_, job) = rig.post("/api/v1/receipts", Some("cut-1"), Some(&receipt(150_000))).await;
    let done = rig.wait_job(job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(rig.receipts_in_fn(), 1);
    assert_eq!(rig.emu_state()["receipt_open"], false);
}

#[tokio::test]
async fn lost_answer_is_recovered_from_the_fn() {
    let rig = Rig::start(true).await;
    rig.ctl("fault lose-answer@receipt-close");
    rig.ctl("fault drop-link@query=1");
    let (_, job) = rig.post("/api/v1/receipts", Some("lost-1"), Some(&receipt(150_000))).await;
    let done = rig.wait_job(job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(rig.receipts_in_fn(), 1);
}

#[tokio::test]
async fn paper_out_parks_then_resumes() {
    let rig = Rig::start(true).await;
    rig.ctl("paper out");
    let (_, job) = rig.post("/api/v1/receipts", Some("paper-1"), Some(&receipt(150_000))).await;
    let parked = rig.wait_parked().await;
    assert_eq!(parked["code"], "device.paper_out", "{parked}");
    assert!(parked["action_ru"].as_str().unwrap().contains("рулон"));
    let (_, j) = rig.get(&format!("/api/v1/receipts/{}", job["id"])).await;
    assert_eq!(j["status"], "queued");
    rig.ctl("paper in");
    let done = rig.wait_job(job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done");
    assert_eq!(rig.receipts_in_fn(), 1);
}

#[tokio::test]
async fn paper_out_after_fiscalisation_prints_a_copy_not_a_second_receipt() {
    let rig = Rig::start(true).await;
    rig.ctl("fault paper-out@receipt-close");
    let (_, job) = rig.post("/api/v1/receipts", Some("tear-1"), Some(&receipt(150_000))).await;
    let done = rig.wait_job(job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done");
    let parked = rig.wait_parked().await;
    assert_eq!(parked["code"], "device.paper_out_after_fiscal");
    rig.ctl("paper in");
    let started = Instant::now();
    loop {
        let (_, j) = rig.get(&format!("/api/v1/receipts/{}", job["id"])).await;
        if j["copy_pending"] == false {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "copy never printed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(rig.receipts_in_fn(), 1);
    assert_eq!(rig.emu_state()["print_interrupted"], false);
}

#[tokio::test]
async fn closed_shift_auto_opens_when_policy_allows() {
    let rig = Rig::start(true).await;
    assert_eq!(rig.emu_state()["shift_state"], "closed");
    let (_, job) = rig.post("/api/v1/receipts", Some("s-1"), Some(&receipt(150_000))).await;
    assert_eq!(rig.wait_job(job["id"].as_i64().unwrap()).await["status"], "done");
    assert_eq!(rig.emu_state()["shift_state"], "open");
}

#[tokio::test]
async fn closed_shift_parks_when_policy_forbids() {
    let rig = Rig::start(false).await;
    let (_, job) = rig.post("/api/v1/receipts", Some("s-1"), Some(&receipt(150_000))).await;
    let parked = rig.wait_parked().await;
    assert_eq!(parked["code"], "device.shift_closed");
    let (code, _) = rig.post("/api/v1/shift/open", Some("open-1"), None).await;
    assert_eq!(code, 202);
    assert_eq!(rig.wait_job(job["id"].as_i64().unwrap()).await["status"], "done");
}

#[tokio::test]
async fn shift_over_24_hours_parks_naming_the_z_report() {
    let rig = Rig::start(true).await;
    let (_, job) = rig.post("/api/v1/receipts", Some("d1"), Some(&receipt(150_000))).await;
    assert_eq!(rig.wait_job(job["id"].as_i64().unwrap()).await["status"], "done");
    rig.ctl("clock +25h");
    let (_, job) = rig.post("/api/v1/receipts", Some("d2"), Some(&receipt(150_000))).await;
    let parked = rig.wait_parked().await;
    assert_eq!(parked["code"], "device.shift_expired");
    assert!(parked["action_ru"].as_str().unwrap().contains("Z-отчёт"), "{parked}");
    let (code, z) = rig.post("/api/v1/shift/close", Some("z-1"), None).await;
    assert_eq!(code, 202);
    assert_eq!(rig.wait_job(z["id"].as_i64().unwrap()).await["status"], "done");
    assert_eq!(rig.wait_job(job["id"].as_i64().unwrap()).await["status"], "done");
    assert_eq!(rig.receipts_in_fn(), 2);
}

#[tokio::test]
async fn agent_killed_mid_job_recovers_on_restart() {
    let mut rig = Rig::start(true).await;
    rig.ctl("fault delay=1500");
    let (_, job) = rig.post("/api/v1/receipts", Some("k-1"), Some(&receipt(150_000))).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    rig.kill_agent();
    rig.ctl("fault delay=0");
    rig.start_agent();
    let done = rig.wait_job(job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(rig.receipts_in_fn(), 1);
}

#[tokio::test]
async fn bad_input_gets_4xx_problems() {
    let rig = Rig::start(true).await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/receipts", rig.base);
    let send = |body: &'static str, key: &'static str| {
        client.post(&url).bearer_auth(&rig.token).header("Idempotency-Key", key).header("Content-Type", "application/json").body(body).send()
    };
    let cases: &[(&str, &str, u16, &str)] = &[
        ("{not json", "b1", 400, "request.json_invalid"),
        (r#"{"operation":"sale","items":[],"payments":[],"extra":1}"#, "b2", 400, "request.json_invalid"),
        (r#"{"operation":"sale","items":[],"payments":[{"type":"cash","sum":1}]}"#, "b3", 422, "receipt.items_empty"),
        (r#"{"operation":"sale","items":[{"name":"A","price":-5}],"payments":[{"type":"cash","sum":1}]}"#, "b4", 422, "receipt.item_price_invalid"),
        (r#"{"operation":"sale","items":[{"name":"A","price":9223372036854775807}],"payments":[{"type":"cash","sum":1}]}"#, "b5", 422, "receipt.item_price_invalid"),
        (r#"{"operation":"sale","items":[{"name":"A","price":1000}],"payments":[{"type":"cash","sum":999}]}"#, "b6", 422, "receipt.payments_short"),
        (r#"{"operation":"sale","items":[{"name":"A","price":99999999999999999999}],"payments":[]}"#, "b7", 400, "request.json_invalid"),
    ];
    for (body, key, status, code) in cases {
        let r = send(body, key).await.unwrap();
        assert_eq!(r.status().as_u16(), *status, "{body}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["code"], *code, "{body}: {p}");
        assert!(p["title_ru"].as_str().is_some_and(|s| !s.is_empty()));
    }
    let long_name = "Я".repeat(200);
    let (code, p) = rig
        .post("/api/v1/receipts", Some("b8"), Some(&json!({"operation":"sale","items":[{"name": long_name, "price": 100}],"payments":[{"type":"cash","sum":100}]})))
        .await;
    assert_eq!((code, p["code"].as_str()), (422, Some("receipt.item_name_too_long")));
    let (code, p) = rig.post("/api/v1/receipts", None, Some(&receipt(100_000))).await;
    assert_eq!((code, p["code"].as_str()), (400, Some("request.idempotency_key_missing")));
    let huge = "x".repeat(300 * 1024);
    let r = client.post(&url).bearer_auth(&rig.token).header("Idempotency-Key", "big").body(huge).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    // Security.
    let r = client.get(format!("{}/api/v1/devices", rig.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = client.get(format!("{}/api/v1/devices", rig.base)).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = client.get(format!("{}/api/v1/devices", rig.base)).bearer_auth(&rig.token).header("Origin", "https://evil.example").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = client.get(format!("{}/api/v1/devices", rig.base)).bearer_auth(&rig.token).header("Host", "evil.example").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // Nothing above reached the device.
    assert_eq!(rig.receipts_in_fn(), 0);
    // The OpenAPI document is valid JSON with our paths.
    let r = client.get(format!("{}/api/v1/openapi.json", rig.base)).send().await.unwrap();
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/api/v1/receipts"]["post"].is_object());
}
