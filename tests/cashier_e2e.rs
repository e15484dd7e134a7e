//! What a cashier meets outside the page (issue 9, items 2–4): one Z-report per intent
//! at the API, «проверено» on a job that needed a person, and Russian words (no English
//! enum names, no raw mode numbers) in the CLI's status, document and totals output.

mod common;

use common::{receipt, Rig};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kkm-agent");

fn id(v: &serde_json::Value) -> i64 {
    v["id"].as_i64().unwrap()
}

/// The report: a receipt parked (shift over 24 h), the cashier presses «Закрыть
/// смену» twice. Before the rule the second Z-report was queued too: it closed the shift
/// the parked receipt had opened. Now the second intent is refused while the first waits.
#[tokio::test]
async fn a_second_z_report_is_refused_while_one_is_queued() {
    let mut rig = Rig::start(true).await;
    let (_, first) = rig.post("/api/v1/receipts", Some("r-1"), Some(&receipt(150_000))).await;
    assert_eq!(rig.wait_job(id(&first)).await["status"], "done");
    rig.ctl("clock +25h");
    rig.kill_emulator(); // the Z-reports stay queued for as long as this test needs
    let (_, parked) = rig.post("/api/v1/receipts", Some("r-2"), Some(&receipt(120_000))).await;
    let (code, z1) = rig.post("/api/v1/shift/close", Some("z-click-1"), None).await;
    assert_eq!(code, 202, "{z1}");
    let (code, z2) = rig.post("/api/v1/shift/close", Some("z-click-2"), None).await;
    assert_eq!(code, 409, "{z2}");
    assert_eq!(z2["code"], "shift.close_already_queued");
    assert!(z2["title_ru"].as_str().unwrap().contains("уже в очереди"), "{z2}");
    assert!(z2["title_en"].as_str().unwrap().contains("already queued"), "{z2}");
    // A retry of the first intent is the same job.
    let (code, again) = rig.post("/api/v1/shift/close", Some("z-click-1"), None).await;
    assert_eq!((code, id(&again)), (200, id(&z1)));

    rig.restart_emulator();
    assert_eq!(rig.wait_job(id(&z1)).await["status"], "done");
    assert_eq!(rig.wait_job(id(&parked)).await["status"], "done");
    let docs = rig.emu_state()["documents"].as_array().unwrap().clone();
    let closes = docs.iter().filter(|d| d["kind"] == "shift_close").count();
    assert_eq!(closes, 1, "one Z-report: {docs:?}");
    let (_, jobs) = rig.get("/api/v1/jobs?limit=100").await;
    let z_jobs = jobs.as_array().unwrap().iter().filter(|j| j["kind"] == "close_shift").count();
    assert_eq!(z_jobs, 1, "{jobs}");
    // After it, the next shift may be closed again.
    let (code, _) = rig.post("/api/v1/shift/close", Some("z-click-3"), None).await;
    assert_eq!(code, 202);
}

/// Many Z-reports at once under different keys (several tabs, a program retrying with
/// fresh keys): the rule holds inside the commit, so exactly one is accepted.
#[tokio::test]
async fn concurrent_z_reports_make_one_job() {
    let mut rig = Rig::start(true).await;
    rig.kill_emulator();
    let http = reqwest::Client::new();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let req = http
                .post(format!("{}/api/v1/shift/close", rig.base))
                .bearer_auth(rig.token.trim())
                .header("Idempotency-Key", format!("tab-{i}"));
            tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    codes.sort();
    assert_eq!(codes.iter().filter(|c| **c == 202).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 202 || *c == 409), "{codes:?}");
    let (_, jobs) = rig.get("/api/v1/jobs?limit=100").await;
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
}

/// «Проверено» records the check; the job stays `needs_attention` in the journal.
#[tokio::test]
async fn a_job_that_needed_a_person_is_marked_checked_not_deleted() {
    let mut rig = Rig::start(true).await;
    let (_, done) = rig.post("/api/v1/receipts", Some("ok-1"), Some(&receipt(100_000))).await;
    assert_eq!(rig.wait_job(id(&done)).await["status"], "done");
    let a = common::kill_mid_receipt(&mut rig, "swap-1", 150_000).await;
    rig.ctl("fn replace 9999078900001234");
    rig.start_agent();
    let job = rig.wait_job(a).await;
    assert_eq!(job["status"], "needs_attention", "{job}");
    assert!(job["acknowledged_at"].is_null(), "{job}");

    let (code, p) = rig.post(&format!("/api/v1/jobs/{}/acknowledge", id(&done)), None, None).await;
    assert_eq!((code, p["code"].as_str()), (409, Some("request.job_not_needing_attention")), "{p}");
    let (code, p) = rig.post("/api/v1/jobs/999999/acknowledge", None, None).await;
    assert_eq!((code, p["code"].as_str()), (404, Some("request.job_not_found")), "{p}");

    let (code, marked) = rig.post(&format!("/api/v1/jobs/{a}/acknowledge"), None, None).await;
    assert_eq!(code, 200, "{marked}");
    assert_eq!(marked["status"], "needs_attention");
    let at = marked["acknowledged_at"].as_str().expect("the time of the check").to_string();
    let (_, again) = rig.post(&format!("/api/v1/jobs/{a}/acknowledge"), None, None).await;
    assert_eq!(again["acknowledged_at"], at.as_str(), "the first check's time stays");
    let (_, listed) = rig.get(&format!("/api/v1/jobs/{a}")).await;
    assert_eq!((listed["status"].as_str(), listed["acknowledged_at"].as_str()), (Some("needs_attention"), Some(at.as_str())));
    // The route is documented.
    let (_, doc) = rig.get("/api/v1/openapi.json").await;
    assert!(doc["paths"]["/api/v1/jobs/{id}/acknowledge"]["post"]["responses"]["409"].is_object(), "{}", doc["paths"]);
}

fn emulator() -> (common::Proc, String) {
    let (child, v) = common::emulate(&["--model", "azur-01f", "--listen", "tcp:127.0.0.1:0"], &["port: "]);
    (child, v[0].clone())
}

fn device(port: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["device", "--port", port, "--model", "azur-01f"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("device command runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// Latin words left in a Russian text once the allowed names are taken out.
fn english_words(text: &str, allowed: &[&str]) -> Vec<String> {
    let mut t = text.to_string();
    for a in allowed {
        t = t.replace(a, " ");
    }
    t.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| w.len() >= 2).map(str::to_string).collect()
}

#[test]
fn cli_speaks_russian_to_people() {
    let (_emu, port) = emulator();
    let status = device(&port, &["status"]);
    assert!(status.contains("Смена:       №0, закрыта"), "{status}");
    assert!(!status.contains("Режим"), "raw mode numbers are for --json: {status}");
    device(&port, &["receipt", "tests/fixtures/receipt-sale.json"]);
    let status = device(&port, &["status"]);
    assert!(status.contains("Смена:       №1, открыта"), "{status}");
    let doc = device(&port, &["document", "3"]);
    assert!(doc.starts_with("ФД № 3: кассовый чек, ФП "), "{doc}");
    let open = device(&port, &["document", "2"]);
    assert!(open.starts_with("ФД № 2: отчёт об открытии смены"), "{open}");
    let totals = device(&port, &["totals"]);
    assert!(totals.contains("Смена №1 (открыта)"), "{totals}");
    for (what, text) in [("status", &status), ("document", &doc), ("totals", &totals)] {
        assert_eq!(english_words(text, &[]), Vec::<String>::new(), "{what}: {text}");
    }
    let info = device(&port, &["info"]);
    assert!(info.contains("(код модели 45)") && !info.contains("(id "), "{info}");
    let raw: serde_json::Value = serde_json::from_str(&device(&port, &["--json", "status"])).unwrap();
    assert!(raw["mode_raw"].is_u64(), "the raw mode stays in JSON: {raw}");
}

#[test]
fn demo_says_the_status_in_russian() {
    let out = Command::new(BIN).args(["demo", "--once"]).output().expect("demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let line = stdout.lines().find(|l| l.starts_with("Чек напечатан")).unwrap_or_default();
    assert!(line.contains("(задание 1)"), "{stdout}");
    assert_eq!(english_words(line, &[]), Vec::<String>::new(), "{line}");
}
