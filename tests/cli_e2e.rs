//! The command line as a user runs it: `kkm-agent emulate` in one process,
//! `kkm-agent device` in another, talking over a real pseudo-terminal or TCP.

use std::process::Command;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_kkm-agent");

struct Emulator {
    _child: common::Proc,
    port: String,
}

fn emulator(model: &str, listen: &str) -> Emulator {
    emulator_with(model, listen, &[])
}

fn emulator_with(model: &str, listen: &str, extra: &[&str]) -> Emulator {
    let mut args = vec!["--model", model, "--listen", listen];
    args.extend_from_slice(extra);
    let (child, v) = common::emulate(&args, &["port: "]);
    Emulator { _child: child, port: v[0].clone() }
}

fn device(port: &str, model: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(["device", "--port", port, "--model", model])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("device command runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn receipt_through_two_processes_over_a_pty() {
    let emu = emulator("azur-01f", "pty");
    let (ok, out, err) = device(&emu.port, "azur-01f", &["receipt", "tests/fixtures/receipt-sale.json"]);
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("ФД № 3"), "{out}");
    assert!(out.contains("ФП "), "{out}");

    let (ok, out, _) = device(&emu.port, "azur-01f", &["--json", "document", "3"]);
    assert!(ok);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["operation"], "sale");
    assert_eq!(doc["total"], 490_100);

    for action in [&["x-report"][..], &["cash-in", "1000,50"], &["cash-out", "500"], &["totals"], &["z-report"]] {
        let (ok, out, err) = device(&emu.port, "azur-01f", action);
        assert!(ok, "{action:?}: {out} {err}");
    }
    let (ok, out, _) = device(&emu.port, "azur-01f", &["receipt", "tests/fixtures/receipt-return.json"]);
    assert!(ok, "{out}");
}

#[test]
fn status_info_and_check_over_tcp() {
    let emu = emulator("azur-01f", "tcp:127.0.0.1:0");
    let (ok, out, err) = device(&emu.port, "azur-01f", &["--json", "info"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["identity"]["serial"], "0000000045001234");
    assert_eq!(v["identity"]["model_id"], 45);
    let (ok, out, _) = device(&emu.port, "azur-01f", &["check"]);
    assert!(ok);
    assert!(out.contains("РНМ") && out.contains("ФН"), "{out}");
    let (ok, out, _) = device(&emu.port, "auto", &["detect"]);
    assert!(ok, "{out}");
    assert!(out.contains("shtrih") && out.contains("azur-01f"), "{out}");
}

#[test]
fn bad_input_is_explained_not_a_backtrace() {
    // A port that does not exist.
    let (ok, _, err) = device("/dev/ttyNOPE77", "azur-01f", &["status"]);
    assert!(!ok);
    assert!(err.contains("link.port_not_found"), "{err}");
    assert!(!err.contains("panicked"));
    // An unknown model.
    let (ok, _, err) = device("/dev/ttyNOPE77", "kassa-9000", &["status"]);
    assert!(!ok);
    assert!(err.contains("config.unknown_model"), "{err}");
    // Nothing listens on this TCP port.
    let (ok, _, err) = device("tcp:127.0.0.1:9", "azur-01f", &["status"]);
    assert!(!ok);
    assert!(err.contains("link."), "{err}");
    // A malformed port name and a bad sum.
    let (ok, _, err) = device("tcp:nowhere", "azur-01f", &["status"]);
    assert!(!ok && err.contains("cli.port_invalid"), "{err}");
    let emu = emulator("azur-01f", "tcp:127.0.0.1:0");
    let (ok, _, err) = device(&emu.port, "azur-01f", &["cash-in", "-5"]);
    assert!(!ok && err.contains("cli.sum_invalid"), "{err}");
    // Passwords: cashier 1 for operator commands and 30 for the ФН commands work; the
    // cashier's password on ФН commands is refused by the unit (issue 7).
    let (ok, out, err) = device(&emu.port, "azur-01f", &["--operator-password", "1", "--admin-password", "30", "info"]);
    assert!(ok, "{out}{err}");
    let (ok, _, err) = device(&emu.port, "azur-01f", &["--operator-password", "1", "--admin-password", "1", "info"]);
    assert!(!ok && err.contains("device.wrong_password"), "{err}");
    // A sum wider than the register's 5-byte field: refused, never wrapped (issue 7).
    let (ok, out, err) = device(&emu.port, "azur-01f", &["cash-in", "100000000000"]);
    assert!(!ok && err.contains("request.sum_too_large") && !out.contains("Внесено"), "{out}{err}");
    // A character the register cannot print: refused naming it, before anything is sent.
    let file = std::env::temp_dir().join(format!("kkm-emoji-{}.json", std::process::id()));
    std::fs::write(&file, r#"{"operation":"sale","items":[{"name":"Стрижка 💅","price":1000}],"payments":[{"type":"cash","sum":1000}]}"#).unwrap();
    let (ok, _, err) = device(&emu.port, "azur-01f", &["receipt", file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
    assert!(!ok && err.contains("receipt.item_name_unprintable") && err.contains("U+1F485"), "{err}");
    // Shift documents with a cashier (tags 1021, 1203); an unprintable name is refused.
    let (ok, _, err) = device(&emu.port, "azur-01f", &["open-shift", "--cashier", "Анна 🌸"]);
    assert!(!ok && err.contains("receipt.cashier_unprintable"), "{err}");
    let (ok, out, err) = device(&emu.port, "azur-01f", &["open-shift", "--cashier", "Иванова А.", "--cashier-inn", "500100732259"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = device(&emu.port, "azur-01f", &["z-report", "--cashier", "Иванова А."]);
    assert!(ok, "{out}{err}");
    // A receipt file that is not a receipt.
    let (ok, _, err) = device(&emu.port, "azur-01f", &["receipt", "Cargo.toml"]);
    assert!(!ok && err.contains("receipt.json_invalid"), "{err}");
}

#[test]
fn demo_once_prints_a_fiscal_receipt_through_the_daemon() {
    let out = Command::new(BIN).args(["demo", "--once"]).output().expect("demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Чек напечатан: ФД № 3, ФП "), "{stdout}");
    assert!(stdout.contains("#token="), "the page link carries the token: {stdout}");
    assert!(stdout.contains("curl -s -H 'Authorization: Bearer "), "{stdout}");
}

/// `device … totals` reports every counter the X-report has, read without printing, on
/// both models; `--x-report` prints the X-report as well.
#[test]
fn totals_report_every_counter_on_both_models() {
    // 10 % VAT: a rate both protocols have a confirmed code for.
    let dir = tempfile::tempdir().unwrap();
    let sale = dir.path().join("sale.json");
    let ret = dir.path().join("return.json");
    std::fs::write(&sale, r#"{"operation": "sale", "items": [{"name": "Стрижка", "price": 490100, "vat": "vat10"}],
        "payments": [{"type": "electronic", "sum": 300000}, {"type": "cash", "sum": 200000}]}"#).unwrap();
    std::fs::write(&ret, r#"{"operation": "sale_return", "items": [{"name": "Крем", "price": 45050, "vat": "vat10"}],
        "payments": [{"type": "cash", "sum": 45050}]}"#).unwrap();
    let (sale, ret) = (sale.to_str().unwrap(), ret.to_str().unwrap());
    // Neva-01-F on ATOL: its УМКА profile leaves cash moves and the X-report to the keypad.
    for (model, extra) in [("azur-01f", &[][..]), ("neva-01-f", &["--protocol", "atol"][..])] {
        let emu = emulator_with(model, "tcp:127.0.0.1:0", extra);
        for action in [&["receipt", sale][..], &["cash-in", "1000,50"], &["cash-out", "500"], &["receipt", ret]] {
            let (ok, out, err) = device(&emu.port, model, action);
            assert!(ok, "{model} {action:?}: {out} {err}");
        }
        let (ok, out, err) = device(&emu.port, model, &["--json", "totals"]);
        assert!(ok, "{model}: {err}");
        let t: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(t["shift_number"], 1, "{model}: {t}");
        assert_eq!(t["shift_state"], "open", "{model}: {t}");
        assert!(t["opened_at"].as_str().is_some_and(|s| s.len() == 19), "{model}: {t}");
        assert_eq!(t["sale"]["cash"], 190_100, "{model}: {t}");
        assert_eq!(t["sale"]["card"], 300_000, "{model}: {t}");
        assert_eq!(t["sale"]["receipts"], 1, "{model}: {t}");
        assert_eq!(t["sale_return"]["cash"], 45_050, "{model}: {t}");
        assert_eq!(t["sale_return"]["receipts"], 1, "{model}: {t}");
        assert_eq!(t["purchase"]["receipts"], 0, "{model}: {t}");
        assert_eq!(t["cash_in"], 100_050, "{model}: {t}");
        assert_eq!(t["cash_out"], 50_000, "{model}: {t}");
        assert_eq!(t["cash_in_drawer"], 195_100, "{model}: {t}");
        assert_eq!(t["receipt_count"], 2, "{model}: {t}");
        assert!(t["x_report"].is_null());
        let (ok, out, err) = device(&emu.port, model, &["totals", "--x-report"]);
        assert!(ok, "{model}: {err}");
        assert!(out.contains("Возврат прихода") && out.contains("Внесения: 1 000,50 ₽"), "{model}: {out}");
        assert!(out.contains("X-отчёт напечатан."), "{model}: {out}");
    }
}

/// Neva-01-F on its default protocol: the emulator prints an `http://` port, and the
/// same `device` commands work over the УМКА HTTP API; what the profile lacks is refused
/// with an explanation, and `detect` names the protocol and model.
#[test]
fn neva_over_the_umka_http_api() {
    let emu = emulator("neva-01-f", "tcp:127.0.0.1:0");
    assert!(emu.port.starts_with("http://127.0.0.1:"), "{}", emu.port);
    let (ok, out, err) = device(&emu.port, "neva-01-f", &["detect"]);
    assert!(ok, "{err}");
    assert!(out.contains("umka") && out.contains("НЕВА-01-Ф") && out.contains("neva-01-f"), "{out}");
    let (ok, out, err) = device(&emu.port, "neva-01-f", &["receipt", "tests/fixtures/receipt-sale.json"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("ФД"), "{out}");
    let (ok, out, _) = device(&emu.port, "neva-01-f", &["--json", "document", "3"]);
    assert!(ok && out.contains("\"receipt\""), "{out}");
    let (ok, _, err) = device(&emu.port, "neva-01-f", &["x-report"]);
    assert!(!ok);
    assert!(err.contains("device.not_in_profile") && err.contains("Что делать"), "{err}");
    let (ok, _, err) = device(&emu.port, "neva-01-f", &["--cashier", "1", "--password", "7", "status"]);
    assert!(!ok);
    assert!(err.contains("config.device_credentials"), "{err}");
    let (ok, _, err) = device(&emu.port, "azur-01f", &["status"]);
    assert!(!ok && err.contains("config.port_not_http"), "{err}");
}
