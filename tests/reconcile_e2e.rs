//! Reconciliation end to end (issue 10): the agent and an emulator as processes, the real
//! wire protocol, the test talking HTTP to the agent, running `kkm-agent reconcile`, and
//! punching receipts and cash moves "on the keypad" through the emulator's control port.
//! Each scenario runs against both models.

mod common;

use common::Rig;
use serde_json::{json, Value};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kkm-agent");

/// A one-line sale: `cash` and `card` kopecks.
fn sale(cash: i64, card: i64) -> Value {
    let mut payments = vec![];
    if cash > 0 {
        payments.push(json!({"type": "cash", "sum": cash}));
    }
    if card > 0 {
        payments.push(json!({"type": "electronic", "sum": card}));
    }
    json!({
        "operation": "sale",
        "items": [{"name": "Стрижка", "price": cash + card, "vat": "none", "payment_object": "service"}],
        "payments": payments
    })
}

async fn print(rig: &Rig, key: &str, body: &Value) -> Value {
    let (code, job) = rig.post("/api/v1/receipts", Some(key), Some(body)).await;
    assert_eq!(code, 202, "{job}");
    let done = rig.wait_job(job["id"].as_i64().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    done
}

async fn reconcile(rig: &Rig, program: Value) -> Value {
    let (code, r) = rig.post("/api/v1/reconciliations", None, Some(&json!({"device": "k1", "program": program}))).await;
    assert_eq!(code, 200, "{r}");
    r
}

/// `kkm-agent reconcile …` against the rig's agent; returns stdout.
fn cli(rig: &Rig, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("reconcile")
        .arg("--config")
        .arg(rig.config_path())
        .args(["--url", &rig.base, "--device", "k1"])
        .args(args)
        .output()
        .expect("run kkm-agent reconcile");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "reconcile failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn causes(r: &Value) -> Vec<Value> {
    r["causes"].as_array().cloned().unwrap_or_default()
}

fn categories(r: &Value) -> Vec<String> {
    causes(r).iter().map(|c| c["category"].as_str().unwrap_or("").to_string()).collect()
}

fn effects_sum(r: &Value) -> i64 {
    causes(r).iter().map(|c| c["effect"].as_i64().unwrap()).sum()
}

/// The seed case: the program says 22 212,50, the X-report says 22 412,50, and the
/// difference is a 200,00 cash-in made on the register's keypad.
async fn seed_case(model: &str) {
    let rig = Rig::start_model(model, true).await;
    print(&rig, "visit-1", &sale(2_000_000, 0)).await;
    print(&rig, "visit-2", &sale(221_250, 0)).await;
    rig.ctl("keypad cash-in 200,00");

    // The counters, without printing.
    let (code, t) = rig.get("/api/v1/devices/k1/shift/totals").await;
    assert_eq!(code, 200, "{t}");
    assert_eq!(t["sale"]["cash"], 2_221_250, "{t}");
    assert_eq!(t["sale"]["receipts"], 2, "{t}");
    assert_eq!(t["cash_in"], 20_000, "{t}");
    assert_eq!(t["cash_in_drawer"], 2_241_250, "{t}");
    assert_eq!(t["shift_state"], "open");
    assert!(t["opened_at"].as_str().is_some_and(|s| s.len() == 19), "{t}");

    let r = reconcile(&rig, json!({"cash": 2_221_250})).await;
    assert_eq!(r["register"]["cash"], 2_241_250, "{r}");
    assert_eq!(r["difference"], 20_000, "{r}");
    assert_eq!(r["unexplained"], 0, "{r}");
    assert_eq!(categories(&r), ["cash_move_not_in_program"], "{r}");
    let c = &causes(&r)[0];
    assert_eq!(c["effect"], 20_000);
    assert!(c["text_ru"].as_str().unwrap().contains("Внесение на 200,00 ₽"), "{c}");
    assert!(c["text_ru"].as_str().unwrap().contains("вручную"), "{c}");

    let text = cli(&rig, &["--program-cash", "22212,50"]);
    assert!(text.contains("По кассе 22 412,50 ₽ наличными, по программе 22 212,50 ₽: разница +200,00 ₽"), "{text}");
    assert!(text.contains("Внесение на 200,00 ₽"), "{text}");
    assert!(text.contains("Вся разница объяснена"), "{text}");
    assert!(text.contains("Что делать:"), "{text}");

    // CSV for the accountant.
    let csv = cli(&rig, &["--program-cash", "22212,50", "--csv", "-"]);
    assert!(csv.starts_with('\u{feff}'), "{csv}");
    assert!(csv.contains("cash_move_not_in_program;200,00;200,00;да"), "{csv}");
}

/// A card payment recorded as cash in the program: named by its receipt, with the list of
/// operations (API) and with the program's cash and card totals (CLI).
async fn card_recorded_as_cash(model: &str) {
    let rig = Rig::start_model(model, true).await;
    print(&rig, "visit-1", &sale(100_000, 0)).await;
    let v2 = print(&rig, "visit-2", &sale(0, 150_000)).await;
    let fd = v2["result"]["document_number"].as_u64().unwrap();

    let r = reconcile(
        &rig,
        json!({"operations": [
            {"reference": "visit-1", "kind": "sale", "cash": 100_000},
            {"reference": "visit-2", "kind": "sale", "cash": 150_000, "time": "2026-11-26T10:00"}
        ]}),
    )
    .await;
    assert_eq!(r["mode"], "operations");
    assert_eq!(r["difference"], -150_000, "{r}");
    assert_eq!(r["unexplained"], 0, "{r}");
    assert_eq!(categories(&r), ["payment_type_mix_up"], "{r}");
    let c = &causes(&r)[0];
    assert_eq!(c["references"], json!(["visit-2"]));
    assert_eq!(c["documents"][0]["number"].as_u64(), Some(fd));
    assert!(c["documents"][0]["fiscal_sign"].as_u64().is_some());

    let text = cli(&rig, &["--program-cash", "2500", "--program-card", "0"]);
    assert!(text.contains("Перепутан тип оплаты"), "{text}");
    assert!(text.contains(&format!("ФД №{fd}")), "{text}");
    assert!(text.contains("Вся разница объяснена"), "{text}");
}

/// The same sale punched twice on the keypad; the program has it once.
async fn keypad_receipt_twice(model: &str) {
    let rig = Rig::start_model(model, true).await;
    print(&rig, "visit-1", &sale(100_000, 0)).await;
    let first = rig.ctl("keypad receipt sale 500,00 cash");
    let second = rig.ctl("keypad receipt sale 500,00 cash");
    let n2: u64 = second.trim().trim_start_matches("ok ").parse().unwrap();
    let n1: u64 = first.trim().trim_start_matches("ok ").parse().unwrap();

    let r = reconcile(&rig, json!({"cash": 150_000})).await;
    assert_eq!(r["difference"], 50_000, "{r}");
    assert_eq!(r["unexplained"], 0, "{r}");
    assert_eq!(categories(&r), ["duplicate_receipt"], "{r}");
    let c = &causes(&r)[0];
    assert_eq!(c["documents"][0]["number"].as_u64(), Some(n2), "{c}");
    assert_eq!(c["documents"][1]["number"].as_u64(), Some(n1), "{c}");
    assert!(r["notes"].as_array().unwrap().iter().any(|n| n["documents"][0]["number"].as_u64() == Some(n1)), "{r}");

    // With the program's list, the keypad sale it recorded (no reference) is matched
    // by sum, and the repeat is certain.
    let r = reconcile(
        &rig,
        json!({"operations": [{"reference": "visit-1", "kind": "sale", "cash": 100_000}, {"kind": "sale", "cash": 50_000}]}),
    )
    .await;
    assert_eq!(categories(&r), ["duplicate_receipt"], "{r}");
    assert_eq!(causes(&r)[0]["certain"], true);

    let text = cli(&rig, &["--program-cash", "1500"]);
    assert!(text.contains("пробита на кассе дважды"), "{text}");
    assert!(text.contains(&format!("ФД №{n2}")), "{text}");
}

/// A job parked (no paper) that the program counted as paid; then one that failed.
async fn parked_job_counted_as_paid(model: &str) {
    let rig = Rig::start_model(model, true).await;
    print(&rig, "visit-1", &sale(100_000, 0)).await;
    rig.ctl("paper out");
    let (code, job) = rig.post("/api/v1/receipts", Some("visit-2"), Some(&sale(70_000, 0))).await;
    assert_eq!(code, 202);
    rig.wait_parked().await;

    let r = reconcile(&rig, json!({"cash": 170_000})).await;
    assert_eq!(r["difference"], -70_000, "{r}");
    assert_eq!(r["unexplained"], 0, "{r}");
    assert_eq!(categories(&r), ["not_printed"], "{r}");
    assert_eq!(causes(&r)[0]["jobs"], json!([job["id"]]));

    let ops = json!({"operations": [
        {"reference": "visit-1", "kind": "sale", "cash": 100_000},
        {"reference": "visit-2", "kind": "sale", "cash": 70_000}
    ]});
    let r = reconcile(&rig, ops.clone()).await;
    assert_eq!(categories(&r), ["not_printed"], "{r}");
    assert_eq!(causes(&r)[0]["certain"], true);
    assert!(causes(&r)[0]["text_ru"].as_str().unwrap().contains("в очереди"), "{r}");

    // Cancelled instead: still not on the register, and the report says so.
    let (code, _) = rig.delete(&format!("/api/v1/jobs/{}", job["id"])).await;
    assert_eq!(code, 200);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ops.json");
    std::fs::write(&file, ops["operations"].to_string()).unwrap();
    let text = cli(&rig, &["--operations", file.to_str().unwrap()]);
    assert!(text.contains("не пробит: задание"), "{text}");
    assert!(text.contains("отменено"), "{text}");
    rig.ctl("paper in");
}

/// A return punched on the register only.
async fn return_on_register_only(model: &str) {
    let rig = Rig::start_model(model, true).await;
    print(&rig, "visit-1", &sale(100_000, 0)).await;
    let ret = rig.ctl("keypad receipt sale_return 300,00 cash");
    let n: u64 = ret.trim().trim_start_matches("ok ").parse().unwrap();

    let r = reconcile(&rig, json!({"cash": 100_000})).await;
    assert_eq!(r["difference"], -30_000, "{r}");
    assert_eq!(r["unexplained"], 0, "{r}");
    assert_eq!(categories(&r), ["return_only_on_register"], "{r}");
    assert_eq!(causes(&r)[0]["documents"][0]["number"].as_u64(), Some(n));

    // CSV operations file, roubles.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ops.csv");
    std::fs::write(&file, "reference;time;kind;cash;card\nvisit-1;2026-11-26T10:00;sale;1000,00;0\n").unwrap();
    let text = cli(&rig, &["--operations", file.to_str().unwrap()]);
    assert!(text.contains("Возврат есть только на кассе"), "{text}");
    assert!(text.contains(&format!("ФД №{n}")), "{text}");
    assert!(text.contains("Вся разница объяснена"), "{text}");
}

/// A difference no cause explains is reported as unexplained, with its amount.
async fn unexplained_difference(model: &str) {
    let rig = Rig::start_model(model, true).await;
    print(&rig, "visit-1", &sale(100_000, 0)).await;
    let r = reconcile(&rig, json!({"cash": 86_299})).await;
    assert_eq!(r["difference"], 13_701, "{r}");
    assert_eq!(r["unexplained"], 13_701, "{r}");
    assert_eq!(categories(&r), ["unexplained"], "{r}");
    assert_eq!(effects_sum(&r), 13_701);
    assert_eq!(r["balanced"], false);
    let text = cli(&rig, &["--program-cash", "862,99"]);
    assert!(text.contains("не объяснено 137,01 ₽"), "{text}");
    assert!(text.contains("Не объяснено"), "{text}");

    // Nothing to explain: balanced.
    let r = reconcile(&rig, json!({"cash": 100_000})).await;
    assert_eq!(r["balanced"], true, "{r}");
    assert!(causes(&r).is_empty(), "{r}");
}

/// A second reconciliation reads only the documents made since the first.
async fn documents_are_cached(model: &str) {
    let rig = Rig::start_model(model, true).await;
    print(&rig, "visit-1", &sale(100_000, 0)).await;
    print(&rig, "visit-2", &sale(50_000, 0)).await;
    let first = reconcile(&rig, json!({"cash": 150_000})).await;
    assert_eq!(first["documents"]["in_shift"], 3, "{first}");
    assert_eq!(first["documents"]["receipts"], 2, "{first}");
    assert!(first["documents"]["read_from_device"].as_u64().unwrap() >= 3, "{first}");
    let again = reconcile(&rig, json!({"cash": 150_000})).await;
    assert_eq!(again["documents"]["read_from_device"], 0, "{again}");
    assert_eq!(again["documents"]["from_cache"], 3, "{again}");
    rig.ctl("keypad receipt sale 10,00 cash");
    let third = reconcile(&rig, json!({"cash": 150_000})).await;
    assert_eq!(third["documents"]["read_from_device"], 1, "{third}");
    assert_eq!(third["documents"]["in_shift"], 4, "{third}");
    assert_eq!(categories(&third), ["receipt_not_by_agent"], "{third}");
}

macro_rules! both_models {
    ($($name:ident),* $(,)?) => {
        mod azur {
            $( #[tokio::test] async fn $name() { super::$name("azur-01f").await } )*
        }
        /// Neva-01-F on its default protocol, the УМКА HTTP API.
        mod neva {
            $( #[tokio::test] async fn $name() { super::$name("neva-01-f").await } )*
        }
        /// Neva-01-F on ATOL.
        mod neva_atol {
            $( #[tokio::test] async fn $name() { super::$name("neva-01-f@atol").await } )*
        }
    };
}

both_models!(
    seed_case,
    card_recorded_as_cash,
    keypad_receipt_twice,
    parked_job_counted_as_paid,
    return_on_register_only,
    unexplained_difference,
    documents_are_cached,
);

#[tokio::test]
async fn bad_input_is_a_problem_with_a_stable_code() {
    let rig = Rig::start(true).await;
    let (code, p) = rig.post("/api/v1/reconciliations", None, Some(&json!({"device": "k1", "program": {}}))).await;
    assert_eq!(code, 422, "{p}");
    assert_eq!(p["code"], "reconcile.program_cash_missing");
    assert!(p["title_ru"].as_str().unwrap().contains("наличные"));
    assert!(!p["title_en"].as_str().unwrap().is_empty());
    let (code, p) = rig.post("/api/v1/reconciliations", None, Some(&json!({"device": "k1", "program": {"cash": 22212.5}}))).await;
    assert_eq!((code, p["code"].as_str()), (422, Some("request.body_invalid")), "{p}");
    // i64::MIN once panicked in `abs()` (debug) or passed the limit check (release).
    let (code, p) = rig.post("/api/v1/reconciliations", None, Some(&json!({"device": "k1", "program": {"cash": 1, "card": i64::MIN}}))).await;
    assert_eq!((code, p["code"].as_str()), (422, Some("reconcile.sum_invalid")), "{p}");
    let (code, p) = rig.post("/api/v1/reconciliations", None, Some(&json!({"device": "nope", "program": {"cash": 1}}))).await;
    assert_eq!((code, p["code"].as_str()), (404, Some("request.unknown_device")), "{p}");
    let (code, p) = rig
        .post("/api/v1/reconciliations", None, Some(&json!({"device": "k1", "program": {"operations": [{"kind": "sale", "cash": -5}]}})))
        .await;
    assert_eq!((code, p["code"].as_str()), (422, Some("reconcile.operation_invalid")), "{p}");
    let (code, p) = rig.get("/api/v1/devices/nope/shift/totals").await;
    assert_eq!((code, p["code"].as_str()), (404, Some("request.unknown_device")), "{p}");
    // The CLI refuses a bad sum before any I/O, with the code.
    let out = Command::new(BIN)
        .args(["reconcile", "--url", &rig.base, "--device", "k1", "--program-cash", "22 212,505"])
        .arg("--config")
        .arg(rig.config_path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cli.sum_invalid"));
    // The OpenAPI document has the new paths.
    let (_, doc) = rig.get("/api/v1/openapi.json").await;
    assert!(doc["paths"]["/api/v1/reconciliations"]["post"].is_object());
    assert!(doc["paths"]["/api/v1/devices/{id}/shift/totals"]["get"].is_object());
    assert!(doc["components"]["schemas"]["Reconciliation"].is_object());
}

/// `x_report=true` prints the X-report as well; the counters come back either way.
#[tokio::test]
async fn totals_can_print_the_x_report() {
    let rig = Rig::start_model("neva-01-f@atol", true).await;
    print(&rig, "visit-1", &sale(100_000, 50_000)).await;
    let (code, t) = rig.get("/api/v1/devices/k1/shift/totals?x_report=true").await;
    assert_eq!(code, 200, "{t}");
    assert_eq!(t["x_report"]["printed"], true, "{t}");
    assert_eq!(t["sale"]["cash"], 100_000);
    assert_eq!(t["sale"]["card"], 50_000);
}

/// Reads go through the device's worker between jobs: reconciling while a queue prints
/// never breaks a print, and once the queue is empty the figures balance.
#[tokio::test]
async fn reconciling_while_printing_never_interleaves() {
    let rig = Rig::start_model("azur-01f", true).await;
    let mut ids = vec![];
    for i in 0..12 {
        let (code, job) = rig.post("/api/v1/receipts", Some(&format!("busy-{i}")), Some(&sale(10_000 + i, 0))).await;
        assert_eq!(code, 202);
        ids.push(job["id"].as_i64().unwrap());
    }
    for _ in 0..4 {
        let (code, r) = rig.post("/api/v1/reconciliations", None, Some(&json!({"device": "k1", "program": {"cash": 0}}))).await;
        assert_eq!(code, 200, "{r}");
        assert_eq!(effects_sum(&r), r["difference"].as_i64().unwrap(), "{r}");
    }
    for id in &ids {
        assert_eq!(rig.wait_job(*id).await["status"], "done");
    }
    assert_eq!(rig.receipts_in_fn(), 12);
    let total: i64 = (0..12).map(|i| 10_000 + i).sum();
    let r = reconcile(&rig, json!({"cash": total})).await;
    assert_eq!(r["balanced"], true, "{r}");
    assert_eq!(r["documents"]["receipts"], 12, "{r}");
}

/// A shift's list of operations may be far larger than other API bodies.
#[tokio::test]
async fn a_long_list_of_operations_is_accepted() {
    let rig = Rig::start(true).await;
    print(&rig, "visit-0", &sale(100_000, 0)).await;
    let mut ops = vec![json!({"reference": "visit-0", "kind": "sale", "cash": 100_000})];
    for i in 0..4_000 {
        ops.push(json!({"reference": format!("elsewhere-{i}"), "kind": "sale", "cash": 100, "time": "2026-11-26T10:00:00"}));
    }
    let (code, r) = rig.post("/api/v1/reconciliations", None, Some(&json!({"device": "k1", "program": {"operations": ops}}))).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["difference"], -400_000);
    assert_eq!(r["unexplained"], 0);
    assert_eq!(causes(&r).len(), 4_000);
}

/// Where the protocol reads a receipt's content (Azur-01F, FF3A/FF3B), each keypad
/// receipt's payment split comes from the ФН itself; elsewhere the counters give it in
/// aggregate. A card receipt punched before a cash one must not take the cash.
#[tokio::test]
async fn keypad_split_read_from_the_fn() {
    let rig = Rig::start_model("azur-01f", true).await;
    print(&rig, "visit-1", &sale(100_000, 0)).await;
    let card = rig.ctl("keypad receipt sale 300,00 electronic");
    let cash = rig.ctl("keypad receipt sale 500,00 cash");
    let (n_card, n_cash): (u64, u64) =
        (card.trim().trim_start_matches("ok ").parse().unwrap(), cash.trim().trim_start_matches("ok ").parse().unwrap());
    let r = reconcile(&rig, json!({"cash": 100_000})).await;
    assert_eq!(r["difference"], 50_000, "{r}");
    assert_eq!(categories(&r), ["receipt_not_by_agent"], "{r}");
    let c = &causes(&r)[0];
    assert_eq!(c["documents"][0]["number"].as_u64(), Some(n_cash), "{c}");
    assert_eq!(c["effect"], 50_000);
    let note = &r["notes"][0];
    assert_eq!(note["documents"][0]["number"].as_u64(), Some(n_card), "{r}");
    assert!(note["text_ru"].as_str().unwrap().contains("Наличных в чеке нет"), "{note}");
}
