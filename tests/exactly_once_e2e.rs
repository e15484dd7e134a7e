//! The exactly-once promise under the faults that real cash desks meet and that the
//! plain daemon tests do not: a corrupted ACK, a receipt punched on the keypad while
//! the agent was down (with the same total), a ФН swap, paper changed mid-document, a
//! DELETE racing the worker, a job body an upgrade cannot read, an ОФД block, a second
//! agent on the same data directory and a flapping link. The agent and the emulator run
//! as separate processes over TCP, as in `daemon_e2e.rs`.

mod common;

use common::{kill_mid_receipt, receipt, Rig};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kkm-agent");
/// Neva-01-F on its default protocol, the УМКА HTTP API.
const UMKA: &str = "neva-01-f";

fn id(job: &serde_json::Value) -> i64 {
    job["id"].as_i64().unwrap_or_else(|| panic!("no job id in {job}"))
}

/// Opens the shift through the agent, so the keypad can work while the agent is down.
async fn open_shift(rig: &Rig) {
    let (_, job) = rig.post("/api/v1/shift/open", Some("open-1"), None).await;
    assert_eq!(rig.wait_job(id(&job)).await["status"], "done");
}

/// Issue 13, defect 2: the cashier cancels the agent's open receipt on the keypad and
/// punches another client's receipt with the same total. Before the fix, recovery took
/// the first document with the same operation and total: job A became `done` with the
/// keypad receipt's ФД and ФП, and A's sale was never fiscalised.
async fn keypad_receipt_with_the_same_total_is_never_adopted(model: &str) {
    let mut rig = Rig::start_model(model, true).await;
    open_shift(&rig).await;
    let a = kill_mid_receipt(&mut rig, "a-1", 150_000).await;
    if model == UMKA {
        umka_keypad_after_a_lost_answer(rig, a).await;
        return;
    }
    rig.ctl("keypad cancel");
    let answer = rig.ctl("keypad receipt sale 1500,00 cash");
    let keypad_fd: u64 = answer.trim().trim_start_matches("ok ").parse().unwrap();
    rig.start_agent();
    let job = rig.wait_job(a).await;
    let adopted = job["status"] == "done" && job["result"]["document_number"] == keypad_fd;
    assert!(!adopted, "job A took the keypad receipt as its own: {job}");
    match job["status"].as_str() {
        // Printed once, as its own document.
        Some("done") => assert_eq!(rig.receipts_in_fn(), 2, "{job}"),
        Some("needs_attention") => assert_eq!(rig.receipts_in_fn(), 1, "{job}"),
        other => panic!("unexpected {other:?}: {job}"),
    }
}

/// Neva-01-F on the УМКА API: a receipt is one HTTP request, which the unit runs to the
/// end whether or not the agent is still there to read the answer; the keypad cannot
/// cancel it half-way. So the agent's receipt is fiscalised, and a keypad receipt with
/// the same total punched while the agent is down comes after it: recovery must take
/// the first one, its own, and leave the keypad's alone.
async fn umka_keypad_after_a_lost_answer(mut rig: Rig, a: i64) {
    let started = Instant::now();
    while rig.emu_state()["receipt_open"] != false {
        assert!(started.elapsed() < Duration::from_secs(30), "the receipt never closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = rig.ctl("keypad receipt sale 1500,00 cash");
    let keypad_fd: u64 = answer.trim().trim_start_matches("ok ").parse().unwrap();
    rig.start_agent();
    let job = rig.wait_job(a).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["result"]["document_number"].as_u64(), Some(keypad_fd - 1), "its own, the first: {job}");
    assert_eq!(rig.receipts_in_fn(), 2, "{job}");
}

/// Issue 13, defect 2: the ФН was replaced while the agent was down with a job in
/// flight. A document number from another ФН proves nothing.
async fn fn_swapped_while_offline_needs_attention(model: &str) {
    let mut rig = Rig::start_model(model, true).await;
    open_shift(&rig).await;
    let a = kill_mid_receipt(&mut rig, "swap-1", 150_000).await;
    rig.ctl("fn replace 9999078900001234");
    rig.start_agent();
    let job = rig.wait_job(a).await;
    assert_eq!(job["status"], "needs_attention", "{job}");
    assert_eq!(job["error"]["code"], "recovery.fn_replaced", "{job}");
    assert!(job["error"]["title_ru"].as_str().unwrap().contains("ФН заменён"), "{job}");
}

/// Issue 13, defect 3: paper runs out while the auto-opened shift report prints, then
/// mid-receipt. With paper back a Shtrih unit waits for "continue printing" (B0) and
/// refuses everything else with 0x58; before the fix the queue never sent B0 and every
/// job ended `needs_attention` after 12 refusals.
async fn paper_changed_mid_document_resumes_the_queue(model: &str) {
    let rig = Rig::start_model(model, true).await;
    rig.ctl("fault paper-out@open-shift");
    let (_, r1) = rig.post("/api/v1/receipts", Some("p-1"), Some(&receipt(120_000))).await;
    rig.wait_parked().await;
    rig.ctl("paper in");
    let done = rig.wait_job(id(&r1)).await;
    assert_eq!(done["status"], "done", "{done}");
    rig.ctl("fault paper-out@receipt-item");
    let (_, r2) = rig.post("/api/v1/receipts", Some("p-2"), Some(&receipt(130_000))).await;
    let (_, r3) = rig.post("/api/v1/receipts", Some("p-3"), Some(&receipt(140_000))).await;
    rig.wait_parked().await;
    rig.ctl("paper in");
    for r in [&r2, &r3] {
        let done = rig.wait_job(id(r)).await;
        assert_eq!(done["status"], "done", "{done}");
    }
    assert_eq!(rig.receipts_in_fn(), 3);
    assert_eq!(rig.emu_state()["print_interrupted"], false);
}

/// Issue 13, defect 6: an ОФД block (30 days unsent) is the device's problem, not the
/// job's. Before the fix each queued job was retried and counted until it ended
/// `needs_attention`; now the queue parks with the ОФД explanation, the job stays
/// queued with no attempts spent, and prints once the ОФД is back.
async fn ofd_block_parks_the_queue_and_resumes(model: &str) {
    let rig = Rig::start_model(model, true).await;
    let (_, r1) = rig.post("/api/v1/receipts", Some("o-1"), Some(&receipt(110_000))).await;
    assert_eq!(rig.wait_job(id(&r1)).await["status"], "done");
    rig.ctl("ofd offline");
    let (_, r2) = rig.post("/api/v1/receipts", Some("o-2"), Some(&receipt(120_000))).await;
    assert_eq!(rig.wait_job(id(&r2)).await["status"], "done");
    rig.ctl("ofd unsent-for 31d");
    let (_, r3) = rig.post("/api/v1/receipts", Some("o-3"), Some(&receipt(130_000))).await;
    let parked = rig.wait_parked().await;
    assert!(parked["code"].as_str().unwrap().contains("ofd"), "{parked}");
    tokio::time::sleep(Duration::from_secs(12)).await; // a probe or two
    // A probe claims the job for a moment; read it between probes.
    let mut j = serde_json::Value::Null;
    for _ in 0..100 {
        j = rig.get(&format!("/api/v1/receipts/{}", id(&r3))).await.1;
        if j["status"] == "queued" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(j["status"], "queued", "{j}");
    assert_eq!(j["attempts"], 0, "an ОФД block must not count against the job: {j}");
    rig.ctl("ofd online");
    let done = rig.wait_job(id(&r3)).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(rig.receipts_in_fn(), 3);
}

macro_rules! both_models {
    ($($name:ident),* $(,)?) => {
        mod azur {
            $( #[tokio::test] async fn $name() { super::$name("azur-01f").await } )*
        }
        mod neva_atol {
            $( #[tokio::test] async fn $name() { super::$name("neva-01-f@atol").await } )*
        }
        mod neva_umka {
            $( #[tokio::test] async fn $name() { super::$name(super::UMKA).await } )*
        }
    };
}

both_models!(
    keypad_receipt_with_the_same_total_is_never_adopted,
    fn_swapped_while_offline_needs_attention,
    paper_changed_mid_document_resumes_the_queue,
    ofd_block_parks_the_queue_and_resumes,
);

/// Issue 13, defect 1: noise turns the device's ACK to an item line or a cash-in into
/// another byte. Before the fix the link wrote the frame again and the device ran it
/// twice: a second item line (the receipt closed with the wrong total) or a doubled
/// cash-in. Shtrih only: its link acknowledges each frame with one byte.
#[tokio::test]
async fn garbled_ack_never_runs_a_command_twice() {
    let rig = Rig::start(true).await;
    rig.ctl("fault garble-ack@receipt-item");
    let (_, r) = rig.post("/api/v1/receipts", Some("g-1"), Some(&receipt(150_000))).await;
    let done = rig.wait_job(id(&r)).await;
    assert_eq!(done["status"], "done", "{done}");
    let state = rig.emu_state();
    let docs = state["documents"].as_array().unwrap();
    let last = docs.iter().rev().find(|d| d["kind"] == "receipt").unwrap();
    assert_eq!(last["total"], 150_000, "the ФН holds another total: {last}");
    rig.ctl("fault garble-ack@cash-in");
    let before = rig.emu_state()["registers"]["cash_ins"].as_i64().unwrap();
    let (_, c) = rig.post("/api/v1/cash-in", Some("g-2"), Some(&json!({"sum": 20_000}))).await;
    assert_eq!(rig.wait_job(id(&c)).await["status"], "done");
    let after = rig.emu_state()["registers"]["cash_ins"].as_i64().unwrap();
    assert_eq!(after - before, 20_000, "the cash-in ran more than once");
}

/// Issue 13, defect 4: a DELETE while the worker prepares the device. Before the fix
/// the DELETE answered "cancelled" and the receipt printed anyway.
#[tokio::test]
async fn cancel_never_races_the_worker() {
    let rig = Rig::start(true).await;
    rig.ctl("fault delay=800");
    let (_, r) = rig.post("/api/v1/receipts", Some("c-1"), Some(&receipt(150_000))).await;
    let started = Instant::now();
    loop {
        let (_, d) = rig.get("/api/v1/devices/k1").await;
        if d["state"]["job_in_progress"] == r["id"] {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the worker never took the job: {d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, _) = rig.delete(&format!("/api/v1/jobs/{}", id(&r))).await;
    rig.ctl("fault delay=0");
    let job = rig.wait_job(id(&r)).await;
    // Let the worker finish whatever it was doing with the job.
    let started = Instant::now();
    loop {
        let (_, d) = rig.get("/api/v1/devices/k1").await;
        if d["state"]["job_in_progress"].is_null() || started.elapsed() > Duration::from_secs(20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, job_later) = rig.get(&format!("/api/v1/receipts/{}", id(&r))).await;
    match code {
        200 => {
            assert_eq!(job["status"], "cancelled", "{job}");
            assert_eq!(job_later["status"], "cancelled", "a cancelled job changed: {job_later}");
            assert_eq!(rig.receipts_in_fn(), 0, "cancelled, and printed all the same");
        }
        409 => {
            assert_eq!(job["status"], "done", "{job}");
            assert_eq!(rig.receipts_in_fn(), 1);
        }
        other => panic!("DELETE answered {other}"),
    }
}

/// Issue 13, defect 5: after an upgrade the body of a job in flight no longer parses
/// (a new field). Before the fix it was marked `failed` without asking the ФН, so the
/// shop resent a receipt that had been printed. Recovery now uses the operation and
/// total stored beside the body.
#[tokio::test]
async fn an_unreadable_in_flight_body_is_settled_by_the_fn() {
    let mut rig = Rig::start(true).await;
    rig.ctl("fault drop-link@receipt-close=3");
    let (_, r) = rig.post("/api/v1/receipts", Some("u-1"), Some(&receipt(150_000))).await;
    let started = Instant::now();
    while rig.receipts_in_fn() == 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "never fiscalised");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rig.kill_agent();
    let db = rusqlite::Connection::open(rig.dir.path().join("data/queue.sqlite")).unwrap();
    let status: String = db.query_row("SELECT status FROM jobs WHERE id = ?1", [id(&r)], |row| row.get(0)).unwrap();
    assert_eq!(status, "in_flight");
    db.execute("UPDATE jobs SET body = json_set(body, '$.receipt.field_of_a_newer_version', 1) WHERE id = ?1", [id(&r)]).unwrap();
    drop(db);
    rig.start_agent();
    let job = rig.wait_job(id(&r)).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["result"]["document_number"], rig.emu_state()["last_document_number"]);
    assert_eq!(rig.receipts_in_fn(), 1);
}

/// Issue 13, defect 7: a second agent on the same data directory refuses to start and
/// names the first one.
#[tokio::test]
async fn a_second_agent_on_the_same_data_dir_refuses_to_start() {
    let rig = Rig::start(true).await;
    let mut second = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(rig.config_path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(15) {
            let _ = second.kill();
            panic!("a second agent started on the same data directory");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = second.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!status.success());
    assert!(text.contains("daemon.already_running"), "{text}");
    assert!(text.contains(&rig.agent_pid().unwrap().to_string()), "the holder is not named: {text}");
}

/// Issue 13, defect 9: a flapping link interrupts the same job more than 12 times.
/// Before the fix each interrupted send counted as an attempt and the job ended
/// `needs_attention` with `job.too_many_attempts` though nothing was printed.
#[tokio::test]
async fn interrupted_sends_do_not_burn_attempts() {
    let rig = Rig::start(true).await;
    open_shift(&rig).await;
    for _ in 0..13 {
        rig.ctl("fault drop-link@receipt-item=1");
    }
    let (_, r) = rig.post("/api/v1/receipts", Some("f-1"), Some(&receipt(150_000))).await;
    let started = Instant::now();
    let job = loop {
        let job = rig.wait_job(id(&r)).await;
        if job["status"] != "queued" && job["status"] != "in_flight" || started.elapsed() > Duration::from_secs(120) {
            break job;
        }
    };
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(rig.receipts_in_fn(), 1);
}

/// Issue 13, defect 8: a copy owed after paper-out is of that customer's receipt; a
/// Z-report queued meanwhile waits for it.
#[tokio::test]
async fn the_owed_copy_is_of_the_customers_receipt() {
    let rig = Rig::start(true).await;
    rig.ctl("fault paper-out@receipt-close");
    let (_, r) = rig.post("/api/v1/receipts", Some("cp-1"), Some(&receipt(150_000))).await;
    let done = rig.wait_job(id(&r)).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["copy_pending"], true, "{done}");
    let (_, z) = rig.post("/api/v1/shift/close", Some("z-1"), None).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, zj) = rig.get(&format!("/api/v1/receipts/{}", id(&z))).await;
    assert_eq!(zj["status"], "queued", "the Z-report ran before the owed copy: {zj}");
    rig.ctl("paper in");
    assert_eq!(rig.wait_job(id(&z)).await["status"], "done");
    assert_eq!(rig.emu_state()["last_copy_of"], done["result"]["document_number"]);
}

/// A cash-in whose answer is lost (the link drops right after the unit ran it) is
/// settled by the shift's cash-in counter, as receipts are by the ФН: it ran once and
/// the job is `done`. Before, every lost cash move ended `needs_attention`.
#[tokio::test]
async fn a_lost_cash_in_is_settled_by_the_cash_counters() {
    let rig = Rig::start(true).await;
    open_shift(&rig).await;
    rig.ctl("fault drop-link@cash-in=2");
    let (_, c) = rig.post("/api/v1/cash-in", Some("ci-1"), Some(&json!({"sum": 20_000}))).await;
    let job = rig.wait_job(id(&c)).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(rig.emu_state()["registers"]["cash_ins"], 20_000);
    // A cash-out the unit refused at the link level (a NAK storm) did not run: sent
    // again, it runs once.
    rig.ctl("fault nak=12");
    let (_, o) = rig.post("/api/v1/cash-out", Some("co-1"), Some(&json!({"sum": 5_000}))).await;
    let job = rig.wait_job(id(&o)).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(rig.emu_state()["registers"]["cash_outs"], 5_000);
}

/// Issue 13, defect 2, the hardest case: the close marker is committed and the close
/// frame sent, but the power goes off before the unit runs it. While the agent is down
/// the cashier cancels the receipt and punches one of the same total on the keypad.
/// Operation and total match; the receipt's content read from the ФН (FF3A/FF3B) does
/// not (one line paid in cash, not two lines paid cash + card), so the job is flagged,
/// never `done` with the keypad receipt.
#[tokio::test]
async fn same_total_keypad_receipt_after_a_sent_close_is_told_apart_by_content() {
    let mut rig = Rig::start(true).await;
    open_shift(&rig).await;
    rig.ctl("fault power-cut-before@receipt-close=4");
    let (_, a) = rig.post("/api/v1/receipts", Some("pc-1"), Some(&receipt(150_000))).await;
    let started = Instant::now();
    loop {
        let (_, d) = rig.get("/api/v1/devices/k1").await;
        if d["state"]["online"] == false {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the power cut never showed: {d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rig.kill_agent();
    rig.ctl("keypad cancel");
    let answer = rig.ctl("keypad receipt sale 1500,00 cash");
    let keypad_fd: u64 = answer.trim().trim_start_matches("ok ").parse().unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await; // power back
    rig.start_agent();
    let job = rig.wait_job(id(&a)).await;
    assert!(
        !(job["status"] == "done" && job["result"]["document_number"] == keypad_fd),
        "job A took the keypad receipt as its own: {job}"
    );
    assert_eq!(job["status"], "needs_attention", "{job}");
    assert_eq!(job["error"]["code"], "recovery.foreign_document", "{job}");
}
