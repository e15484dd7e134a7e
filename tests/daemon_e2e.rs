//! The daemon end to end: `kkm-agent serve` and `kkm-agent emulate` as separate
//! processes, talking the real wire protocol over TCP, the test talking HTTP to the
//! agent and line commands to the emulator's control port. The scenarios that involve
//! the device run for Azur-01F (Shtrih-M) and for Neva-01-F on its default protocol,
//! the УМКА HTTP API.

mod common;

use common::{receipt, Rig};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn submit_prints_once_with_fd_and_fp_and_keys_are_idempotent(model: &str) {
    let rig = Rig::start_model(model, true).await;
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

async fn link_dropped_mid_receipt_completes_with_one_document(model: &str) {
    let rig = Rig::start_model(model, true).await;
    rig.ctl("fault drop-link@receipt-close=2");
    let (_, job) = rig.post("/api/v1/receipts", Some("drop-1"), Some(&receipt(150_000))).await;
    let done = rig.wait_job(job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(rig.receipts_in_fn(), 1);
    let fd = done["result"]["document_number"].as_u64().unwrap();
    assert_eq!(rig.emu_state()["last_document_number"].as_u64().unwrap(), fd);
}

async fn power_cut_mid_receipt_cancels_and_prints_once(model: &str) {
    let rig = Rig::start_model(model, true).await;
    rig.ctl("fault power-cut@receipt-item=2");
    let (_, job) = rig.post("/api/v1/receipts", Some("cut-1"), Some(&receipt(150_000))).await;
    let done = rig.wait_job(job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(rig.receipts_in_fn(), 1);
    assert_eq!(rig.emu_state()["receipt_open"], false);
}

async fn lost_answer_is_recovered_from_the_fn(model: &str) {
    let rig = Rig::start_model(model, true).await;
    rig.ctl("fault lose-answer@receipt-close");
    rig.ctl("fault drop-link@query=1");
    let (_, job) = rig.post("/api/v1/receipts", Some("lost-1"), Some(&receipt(150_000))).await;
    let done = rig.wait_job(job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(rig.receipts_in_fn(), 1);
}

async fn paper_out_parks_then_resumes(model: &str) {
    let rig = Rig::start_model(model, true).await;
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

async fn paper_out_after_fiscalisation_prints_a_copy_not_a_second_receipt(model: &str) {
    let rig = Rig::start_model(model, true).await;
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

async fn closed_shift_auto_opens_when_policy_allows(model: &str) {
    let rig = Rig::start_model(model, true).await;
    assert_eq!(rig.emu_state()["shift_state"], "closed");
    let (_, job) = rig.post("/api/v1/receipts", Some("s-1"), Some(&receipt(150_000))).await;
    assert_eq!(rig.wait_job(job["id"].as_i64().unwrap()).await["status"], "done");
    assert_eq!(rig.emu_state()["shift_state"], "open");
}

async fn closed_shift_parks_when_policy_forbids(model: &str) {
    let rig = Rig::start_model(model, false).await;
    let (_, job) = rig.post("/api/v1/receipts", Some("s-1"), Some(&receipt(150_000))).await;
    let parked = rig.wait_parked().await;
    assert_eq!(parked["code"], "device.shift_closed");
    let (code, _) = rig.post("/api/v1/shift/open", Some("open-1"), None).await;
    assert_eq!(code, 202);
    assert_eq!(rig.wait_job(job["id"].as_i64().unwrap()).await["status"], "done");
}

async fn shift_over_24_hours_parks_naming_the_z_report(model: &str) {
    let rig = Rig::start_model(model, true).await;
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

async fn agent_killed_mid_job_recovers_on_restart(model: &str) {
    let mut rig = Rig::start_model(model, true).await;
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
        (r#"{"operation":"sale","items":[],"payments":[],"extra":1}"#, "b2", 422, "request.body_invalid"),
        (r#"{"operation":"sale","items":[],"payments":[{"type":"cash","sum":1}]}"#, "b3", 422, "receipt.items_empty"),
        (r#"{"operation":"sale","items":[{"name":"A","price":-5}],"payments":[{"type":"cash","sum":1}]}"#, "b4", 422, "receipt.item_price_invalid"),
        (r#"{"operation":"sale","items":[{"name":"A","price":9223372036854775807}],"payments":[{"type":"cash","sum":1}]}"#, "b5", 422, "receipt.item_price_invalid"),
        (r#"{"operation":"sale","items":[{"name":"A","price":1000}],"payments":[{"type":"cash","sum":999}]}"#, "b6", 422, "receipt.payments_short"),
        (r#"{"operation":"sale","items":[{"name":"A","price":99999999999999999999}],"payments":[]}"#, "b7", 422, "request.body_invalid"),
        // i64::MIN as an amount once panicked in the handler (the connection closed unanswered).
        (r#"{"operation":"sale","items":[{"name":"A","price":1,"quantity":1,"amount":-9223372036854775808}],"payments":[{"type":"cash","sum":1}]}"#, "b8", 422, "receipt.item_amount_mismatch"),
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
    // Characters the register cannot print: 422 naming the character, before queueing.
    let (code, p) = rig
        .post("/api/v1/receipts", Some("b9"), Some(&json!({"operation":"sale","items":[{"name": "Стрижка 💅", "price": 100}],"payments":[{"type":"cash","sum":100}]})))
        .await;
    assert_eq!((code, p["code"].as_str()), (422, Some("receipt.item_name_unprintable")), "{p}");
    assert!(p.to_string().contains("U+1F485"), "{p}");
    let (code, p) = rig
        .post("/api/v1/receipts", Some("b10"), Some(&json!({"operation":"sale","items":[{"name": "Стрижка", "price": 100}],"payments":[{"type":"cash","sum":100}],"cashier":{"name":"Анна 🌸"}})))
        .await;
    assert_eq!((code, p["code"].as_str()), (422, Some("receipt.cashier_unprintable")), "{p}");
    // A cash-in wider than the register's field.
    let (code, p) = rig.post("/api/v1/cash-in", Some("b11"), Some(&json!({"sum": 10_000_000_000_000i64}))).await;
    assert_eq!((code, p["code"].as_str()), (422, Some("request.sum_too_large")), "{p}");
    let (code, p) = rig.post("/api/v1/receipts", None, Some(&receipt(100_000))).await;
    assert_eq!((code, p["code"].as_str()), (400, Some("request.idempotency_key_missing")));
    let huge = "x".repeat(300 * 1024);
    let r = client.post(&url).bearer_auth(&rig.token).header("Idempotency-Key", "big").body(huge).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "request.body_too_large");
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

#[tokio::test]
async fn model_auto_detects_a_neva_and_prints() {
    let rig = Rig::start_with("neva-01-f", "auto", true).await;
    let (code, job) = rig.post("/api/v1/receipts", Some("auto-1"), Some(&receipt(150_000))).await;
    assert_eq!(code, 202, "{job}");
    let done = rig.wait_job(job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(rig.receipts_in_fn(), 1);
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let mut rig = Rig::start(true).await;
    let (_, job) = rig.post("/api/v1/receipts", Some("t-1"), Some(&receipt(150_000))).await;
    assert_eq!(rig.wait_job(job["id"].as_i64().unwrap()).await["status"], "done");
    let pid = rig.agent_pid().unwrap();
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let status = rig.wait_agent_exit(Duration::from_secs(20)).expect("the agent exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}

async fn shift_jobs_refused_by_the_shift_state_fail_instead_of_retrying(model: &str) {
    let rig = Rig::start_model(model, true).await;
    // The emulator starts with the shift closed: closing it again is refused, once.
    let (_, z) = rig.post("/api/v1/shift/close", Some("z-closed"), None).await;
    let done = rig.wait_job(z["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error"]["code"], "device.shift_closed");
    let (_, o) = rig.post("/api/v1/shift/open", Some("open-1"), None).await;
    assert_eq!(rig.wait_job(o["id"].as_i64().unwrap()).await["status"], "done");
    let (_, o2) = rig.post("/api/v1/shift/open", Some("open-2"), None).await;
    let again = rig.wait_job(o2["id"].as_i64().unwrap()).await;
    assert_eq!(again["status"], "failed", "{again}");
    // The queue is not stuck: a receipt still prints.
    let (_, r) = rig.post("/api/v1/receipts", Some("after"), Some(&receipt(150_000))).await;
    assert_eq!(rig.wait_job(r["id"].as_i64().unwrap()).await["status"], "done");
}

macro_rules! models {
    ($($name:ident),* $(,)?) => {
        mod azur {
            $( #[tokio::test] async fn $name() { super::$name("azur-01f").await } )*
        }
        mod neva_umka {
            $( #[tokio::test] async fn $name() { super::$name("neva-01-f").await } )*
        }
    };
}

models!(
    submit_prints_once_with_fd_and_fp_and_keys_are_idempotent,
    link_dropped_mid_receipt_completes_with_one_document,
    power_cut_mid_receipt_cancels_and_prints_once,
    lost_answer_is_recovered_from_the_fn,
    paper_out_parks_then_resumes,
    paper_out_after_fiscalisation_prints_a_copy_not_a_second_receipt,
    closed_shift_auto_opens_when_policy_allows,
    closed_shift_parks_when_policy_forbids,
    shift_over_24_hours_parks_naming_the_z_report,
    agent_killed_mid_job_recovers_on_restart,
    shift_jobs_refused_by_the_shift_state_fail_instead_of_retrying,
);

/// Neva-01-F over the УМКА API with a wrong cashier password: the queue parks with the
/// configuration error (HTTP 401), not "no device", and prints once the config is fixed.
#[tokio::test]
async fn umka_wrong_password_parks_as_a_config_error() {
    let mut rig = Rig::start_model("neva-01-f", true).await;
    rig.kill_agent();
    let config = std::fs::read_to_string(rig.config_path()).unwrap();
    std::fs::write(rig.config_path(), format!("{config}cashier = 1\ncashier_password = \"7\"\n")).unwrap();
    rig.start_agent();
    let (_, job) = rig.post("/api/v1/receipts", Some("pw-1"), Some(&receipt(150_000))).await;
    let parked = rig.wait_parked().await;
    assert_eq!(parked["code"], "config.device_credentials", "{parked}");
    assert!(parked["action_ru"].as_str().unwrap().contains("cashier_password"), "{parked}");
    let (_, d) = rig.get("/api/v1/devices/k1").await;
    assert_eq!(d["state"]["online"], true, "the unit answers; only the login is wrong: {d}");
    rig.kill_agent();
    std::fs::write(rig.config_path(), config).unwrap();
    rig.start_agent();
    let done = rig.wait_job(job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(rig.receipts_in_fn(), 1);
}
