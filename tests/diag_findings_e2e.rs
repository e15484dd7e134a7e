//! `kkm-agent device … check` as an engineer runs it, against `kkm-agent emulate`
//! processes with each fault the field meets: the finding's code, its Russian action,
//! and the exit code (0 no error finding, 1 an error finding, 2 nothing answered).
//!
//! Every model runs every fault: Azur-01F (Shtrih), Neva-01-F on ATOL and on the УМКА
//! HTTP API. The ОФД address is read only over Shtrih (table 19); the others say so
//! with an information finding.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_kkm-agent");

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Azur,
    NevaAtol,
    NevaUmka,
}

struct Emu {
    _child: common::Proc,
    port: String,
    control: String,
    kind: Kind,
}

fn model_args(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Azur => &["--model", "azur-01f"],
        Kind::NevaAtol => &["--model", "neva-01-f", "--protocol", "atol"],
        Kind::NevaUmka => &["--model", "neva-01-f"],
    }
}

fn emulator(kind: Kind) -> Emu {
    let mut args = vec!["--listen", "tcp:127.0.0.1:0", "--control", "127.0.0.1:0"];
    args.extend_from_slice(model_args(kind));
    let (child, v) = common::emulate(&args, &["port: ", "control: "]);
    Emu { _child: child, port: v[0].clone(), control: v[1].clone(), kind }
}

impl Emu {
    fn ctl(&self, line: &str) {
        let mut s = TcpStream::connect(&self.control).unwrap();
        s.write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer).unwrap();
        assert!(answer.starts_with("ok"), "{line}: {answer}");
    }

    /// `kkm-agent device … ARGS` with the PC's zone set to `tz`.
    fn device(&self, tz: &str, args: &[&str]) -> (i32, String, String) {
        device_at(self.kind, &self.port, tz, args)
    }

    fn check(&self, extra: &[&str]) -> Check {
        run_check(self.kind, &self.port, "Asia/Yekaterinburg", extra)
    }

    fn must(&self, args: &[&str]) {
        let (code, out, err) = self.device("UTC", args);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
    }
}

fn device_at(kind: Kind, port: &str, tz: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .env("TZ", tz)
        .args(["device", "--port", port])
        .args(model_args(kind))
        .args(args)
        .output()
        .expect("device command runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

struct Check {
    code: i32,
    findings: Vec<Value>,
    raw: String,
}

impl Check {
    fn codes(&self) -> Vec<&str> {
        self.findings.iter().map(|f| f["code"].as_str().unwrap()).collect()
    }

    /// The finding with this code, asserting it has the severity and a Russian action.
    fn expect(&self, code: &str, severity: &str) -> &Value {
        let f = self.findings.iter().find(|f| f["code"] == code).unwrap_or_else(|| panic!("no {code} in {}", self.raw));
        assert_eq!(f["severity"], severity, "{f}");
        let action = f["action_ru"].as_str().unwrap();
        assert!(action.chars().any(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap())), "{code}: action {action:?}");
        f
    }
}

fn run_check(kind: Kind, port: &str, tz: &str, extra: &[&str]) -> Check {
    let mut args = vec!["--json", "check"];
    args.extend_from_slice(extra);
    let (code, out, err) = device_at(kind, port, tz, &args);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let findings = v["findings"].as_array().cloned().unwrap_or_default();
    for f in &findings {
        assert!(["ok", "info", "warning", "error"].contains(&f["severity"].as_str().unwrap()), "{f}");
    }
    Check { code, findings, raw: out }
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn fresh_unit_is_clean_in_any_pc_zone(kind: Kind) {
    let emu = emulator(kind);
    for tz in ["Asia/Yekaterinburg", "UTC", "Europe/Moscow", "America/New_York"] {
        let c = run_check(kind, &emu.port, tz, &[]);
        assert!(!c.codes().contains(&"clock.drift"), "TZ={tz}: {}", c.raw);
        assert!(c.codes().contains(&"clock.ok"), "TZ={tz}: {}", c.raw);
        assert_eq!(c.code, 0, "TZ={tz}: {}", c.raw);
    }
    let c = emu.check(&[]);
    if kind == Kind::Azur {
        c.findings.iter().find(|f| f["code"] == "ofd.reachable").expect("the stand-in ОФД answers");
    } else {
        c.expect("ofd.address_unknown", "info");
    }
    // Text output: the Russian marks, and the same exit code.
    let (code, out, _) = emu.device("UTC", &["check"]);
    assert_eq!(code, 0);
    assert!(out.contains("[норма   ] Часы ККТ идут верно"), "{out}");
}

fn clock_ten_minutes_off(kind: Kind) {
    let emu = emulator(kind);
    emu.ctl("clock +10m");
    let c = emu.check(&[]);
    let f = c.expect("clock.drift", "warning");
    assert!(f["title_ru"].as_str().unwrap().starts_with("Часы ККТ спешат на 10 мин"), "{f}");
    assert_eq!(c.code, 0, "a warning alone does not fail the check");
    // The register really is in Yekaterinburg: told so, its clock is 2 h 10 min slow.
    let c = emu.check(&["--timezone", "UTC+5"]);
    let f = c.expect("clock.drift", "error");
    assert!(f["title_ru"].as_str().unwrap().starts_with("Часы ККТ отстают на 1 ч 50 мин"), "{f}");
    assert_eq!(c.code, 1);
    let (code, _, err) = emu.device("UTC", &["check", "--timezone", "Mars/Olympus"]);
    assert!(code == 1 && err.contains("cli.timezone_invalid"), "{err}");
}

fn lost_serial(kind: Kind) {
    let emu = emulator(kind);
    let sticker = if kind == Kind::Azur { "0000000045001234" } else { "18001234" };
    emu.ctl("serial lost");
    let c = emu.check(&["--serial", sticker]);
    c.expect("identity.serial_lost", "error");
    c.findings.iter().find(|f| f["code"] == "identity.sticker_confirmed").expect(&c.raw);
    assert_eq!(c.code, 1);
    // A typo on the sticker is a typo, not "another register".
    let c = emu.check(&["--serial", "18OO1234"]);
    c.expect("identity.sticker_invalid", "warning");
    assert!(!c.codes().contains(&"identity.sticker_mismatch"), "{}", c.raw);
}

fn rnm_does_not_match(kind: Kind) {
    let emu = emulator(kind);
    emu.ctl("rnm 0000000001999999");
    let c = emu.check(&[]);
    c.expect("identity.rnm_mismatch", "error");
    assert_eq!(c.code, 1);
}

fn documents_unsent_for_25_days(kind: Kind) {
    let emu = emulator(kind);
    emu.ctl("ofd offline");
    emu.must(&["open-shift"]);
    emu.must(&["z-report"]);
    emu.ctl("ofd unsent-for 25d");
    let c = emu.check(&[]);
    let f = c.expect("ofd.blocking_soon", "warning");
    let t = f["title_ru"].as_str().unwrap();
    assert!(t.contains("ФН заблокируется") && t.contains("через 5 дней"), "{t}");
}

fn expired_fn(kind: Kind) {
    let emu = emulator(kind);
    emu.ctl("fn expire");
    let c = emu.check(&[]);
    c.expect("fn.expired", "error");
    assert_eq!(c.code, 1);
}

fn shift_over_24_hours(kind: Kind) {
    let emu = emulator(kind);
    emu.must(&["open-shift"]);
    emu.ctl("clock +25h");
    let c = emu.check(&[]);
    let f = c.expect("shift.expired", "error");
    let t = f["title_ru"].as_str().unwrap();
    assert!(t.contains("открыта 25 ч") && t.ends_with("больше 24 часов"), "{t}");
    assert_eq!(c.code, 1);
}

fn no_paper(kind: Kind) {
    let emu = emulator(kind);
    emu.ctl("paper out");
    let c = emu.check(&[]);
    c.expect("paper.out", "error");
    assert_eq!(c.code, 1);
}

fn nothing_on_the_port(kind: Kind) {
    let port = closed_port();
    let port = if kind == Kind::NevaUmka { format!("http://127.0.0.1:{port}") } else { format!("tcp:127.0.0.1:{port}") };
    let started = std::time::Instant::now();
    let c = run_check(kind, &port, "UTC", &[]);
    c.expect("device.unreachable", "error");
    assert_eq!(c.code, 2, "{}", c.raw);
    assert!(started.elapsed() < Duration::from_secs(30));
    let (code, out, _) = device_at(kind, &port, "UTC", &["check"]);
    assert_eq!(code, 2);
    assert!(out.contains("[ОШИБКА  ] ККТ не отвечает"), "{out}");
}

fn ofd_host_unreachable(kind: Kind) {
    let emu = emulator(kind);
    emu.ctl(&format!("ofd address 127.0.0.1:{}", closed_port()));
    emu.ctl("ofd offline");
    emu.must(&["open-shift"]);
    let c = emu.check(&[]);
    if kind == Kind::Azur {
        let f = c.expect("ofd.unreachable", "error");
        assert!(f["title_ru"].as_str().unwrap().starts_with("Нет сети до ОФД"), "{f}");
        assert_eq!(c.code, 1);
    } else {
        // No source names where ATOL or УМКА keep the ОФД address: said, not guessed.
        c.expect("ofd.address_unknown", "info");
    }
}

/// The ФФД version and tax systems the register was registered with: read from the
/// emulator over its real protocol (Shtrih FF09 + FF0E, УМКА `cashboxStatus`), shown
/// in `check --json` (facts and info findings) and in the text; ATOL has no confirmed
/// read and says «неизвестно». Re-registered (control lines) with ОСН only, the unit
/// refuses receipts sent without a tax system (the API's default is УСН доход): a warning.
fn registration_ffd_and_tax_systems(kind: Kind) {
    let emu = emulator(kind);
    let c = run_check(kind, &emu.port, "UTC", &[]);
    let v: Value = serde_json::from_str(&c.raw).unwrap();
    let id = &v["facts"]["identity"];
    let title = |c: &Check, code: &str| -> String {
        let f = c.findings.iter().find(|f| f["code"] == code).unwrap_or_else(|| panic!("no {code} in {}", c.raw));
        assert_eq!(f["severity"], "info", "{f}");
        f["title_ru"].as_str().unwrap().to_string()
    };
    if kind == Kind::NevaAtol {
        assert!(id["ffd_version"].is_null() && id["tax_systems"].is_null(), "{id}");
        assert!(title(&c, "registration.ffd").contains("неизвестно"));
        assert!(title(&c, "registration.tax_systems").contains("неизвестно"));
    } else {
        assert_eq!((id["ffd_version"].as_str(), &id["tax_systems"]), (Some("1.2"), &serde_json::json!(["usn_income"])), "{id}");
        assert!(title(&c, "registration.ffd").ends_with(": 1.2"));
        assert!(title(&c, "registration.tax_systems").ends_with(": УСН доход"));
    }
    assert!(!c.codes().contains(&"registration.default_tax_system_not_registered"), "{}", c.raw);
    assert_eq!(c.code, 0, "{}", c.raw);

    emu.ctl("ffd 1.05");
    emu.ctl("tax-systems osn");
    let c = run_check(kind, &emu.port, "UTC", &[]);
    let v: Value = serde_json::from_str(&c.raw).unwrap();
    let id = &v["facts"]["identity"];
    let (code, text, _) = emu.device("UTC", &["check"]);
    if kind == Kind::NevaAtol {
        assert!(id["ffd_version"].is_null(), "not read, so not guessed: {id}");
        assert!(!c.codes().contains(&"registration.default_tax_system_not_registered"));
        assert!(text.contains("Версия ФФД: неизвестно"), "{text}");
    } else {
        assert_eq!((id["ffd_version"].as_str(), &id["tax_systems"]), (Some("1.05"), &serde_json::json!(["osn"])), "{id}");
        let w = c.expect("registration.default_tax_system_not_registered", "warning");
        let t = w["title_ru"].as_str().unwrap();
        assert!(t.contains("«ОСН»") && t.contains("«УСН доход»") && t.contains("отклонит"), "{t}");
        assert!(w["action_ru"].as_str().unwrap().starts_with("Что делать"), "{w}");
        assert!(text.contains("[сведения] Версия ФФД, с которой зарегистрирована касса: 1.05"), "{text}");
        assert!(text.contains("[сведения] Системы налогообложения при регистрации: ОСН"), "{text}");
        assert!(text.contains("[внимание] Касса зарегистрирована с СНО «ОСН»"), "{text}");
    }
    assert_eq!((c.code, code), (0, 0), "a warning does not fail the check: {}", c.raw);
    // `device … info` prints them too.
    let (_, info, _) = emu.device("UTC", &["info"]);
    let want = if kind == Kind::NevaAtol { "ФФД:      неизвестно" } else { "ФФД:      1.05" };
    assert!(info.contains(want), "{info}");
}

macro_rules! per_model {
    ($($name:ident),* $(,)?) => {
        mod azur { use super::*; $( #[test] fn $name() { super::$name(Kind::Azur) } )* }
        mod neva_atol { use super::*; $( #[test] fn $name() { super::$name(Kind::NevaAtol) } )* }
        mod neva_umka { use super::*; $( #[test] fn $name() { super::$name(Kind::NevaUmka) } )* }
    };
}

per_model!(
    fresh_unit_is_clean_in_any_pc_zone,
    clock_ten_minutes_off,
    lost_serial,
    rnm_does_not_match,
    documents_unsent_for_25_days,
    expired_fn,
    shift_over_24_hours,
    no_paper,
    nothing_on_the_port,
    ofd_host_unreachable,
    registration_ffd_and_tax_systems,
);
