//! The rules, without a device: facts in, findings out.
use super::*;
use kkm_core::{checks, FnPhase};
use time::macros::{date, datetime};

fn identity(serial: &str) -> DeviceIdentity {
    let inn = "7707083893";
    DeviceIdentity {
        serial: serial.into(),
        inn: inn.into(),
        rnm: checks::rnm_with_check("0000000001", inn, "18001234"),
        ..DeviceIdentity::default()
    }
}

#[test]
fn registration_info_and_default_tax_system() {
    let at = datetime!(2026-11-25 12:00 +3);
    let facts = Facts { identity: Some(identity("18001234")), ..Facts::default() };
    let f = evaluate(&facts, at);
    let ffd = f.iter().find(|f| f.code == "registration.ffd").unwrap();
    assert_eq!(ffd.severity, Severity::Info);
    assert!(ffd.title_ru.contains("неизвестно"), "{}", ffd.title_ru);
    assert!(f.iter().any(|f| f.code == "registration.tax_systems" && f.title_ru.contains("неизвестно")));
    assert!(!codes(&f).contains(&"registration.default_tax_system_not_registered"));

    let mut id = identity("18001234");
    id.ffd_version = Some(kkm_core::FfdVersion::V1_05);
    id.tax_systems = Some(kkm_core::TaxSystems(0x02));
    let f = evaluate(&Facts { identity: Some(id.clone()), ..Facts::default() }, at);
    assert!(f.iter().any(|f| f.code == "registration.ffd" && f.title_ru.ends_with("1.05")));
    assert!(f.iter().any(|f| f.code == "registration.tax_systems" && f.title_ru.ends_with("УСН доход")));
    assert!(!codes(&f).contains(&"registration.default_tax_system_not_registered"));

    // ОСН only: receipts without a tax system go as УСН доход and are refused.
    id.tax_systems = Some(kkm_core::TaxSystems(0x01));
    let f = evaluate(&Facts { identity: Some(id), ..Facts::default() }, at);
    let w = f.iter().find(|f| f.code == "registration.default_tax_system_not_registered").unwrap();
    assert_eq!(w.severity, Severity::Warning);
    assert!(w.title_ru.contains("«ОСН»") && w.title_ru.contains("«УСН доход»"), "{}", w.title_ru);
    assert!(w.action_ru.starts_with("Что делать"));
}

fn codes(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|f| f.code).collect()
}

#[test]
fn lost_serial_and_sticker() {
    let facts = Facts { identity: Some(identity("00000000")), sticker_serial: Some("18001234".into()), ..Facts::default() };
    let f = evaluate(&facts, datetime!(2026-11-25 12:00 +3));
    assert!(codes(&f).contains(&"identity.serial_lost"));
    assert!(codes(&f).contains(&"identity.sticker_confirmed"));
}

#[test]
fn rnm_mismatch() {
    let facts = Facts { identity: Some(identity("18009999")), ..Facts::default() };
    assert!(codes(&evaluate(&facts, datetime!(2026-11-25 12:00 +3))).contains(&"identity.rnm_mismatch"));
    let facts = Facts { identity: Some(identity("18001234")), ..Facts::default() };
    assert!(codes(&evaluate(&facts, datetime!(2026-11-25 12:00 +3))).contains(&"identity.rnm_ok"));
}

#[test]
fn ofd_warns_from_day_20_with_block_date() {
    let ofd = OfdStatus { unsent_count: 3, first_unsent_number: Some(10), first_unsent_at: Some(datetime!(2026-11-01 10:00)) };
    let facts = Facts { ofd: Some(ofd), ..Facts::default() };
    let f = evaluate(&facts, datetime!(2026-11-22 10:00 +3));
    assert_eq!(f[0].code, "ofd.blocking_soon");
    assert!(f[0].title_ru.contains("2026-12-01 10:00"), "{}", f[0].title_ru);
    let f = evaluate(&facts, datetime!(2026-12-02 10:00 +3));
    assert_eq!(f[0].code, "ofd.blocked");
}

#[test]
fn fn_expiry_and_clock_drift() {
    let fs = FnStatus {
        serial: "9960440300012345".into(),
        phase: FnPhase::Fiscal,
        last_document_number: 5,
        shift_open: true,
        document_open: false,
        warnings: 0,
        valid_until: Some(date!(2026-12-10)),
    };
    let st = DeviceStatus {
        shift: ShiftState::Open,
        shift_number: 3,
        receipt_open: false,
        paper_present: true,
        awaiting_continue: false,
        cover_open: false,
        clock: datetime!(2026-11-25 12:10),
        mode_raw: 2,
        submode_raw: 0,
    };
    let facts = Facts {
        fn_status: Some(fs),
        status: Some(st),
        shift_opened_at: Some(datetime!(2026-11-24 14:00)),
        ..Facts::default()
    };
    let f = evaluate(&facts, datetime!(2026-11-25 12:00 +3));
    let c = codes(&f);
    assert!(c.contains(&"fn.expires_soon"));
    assert!(c.contains(&"clock.drift"));
    assert!(c.contains(&"shift.expires_soon"));
}

fn status(clock: PrimitiveDateTime, shift: ShiftState) -> DeviceStatus {
    DeviceStatus {
        shift,
        shift_number: 7,
        receipt_open: false,
        paper_present: true,
        awaiting_continue: false,
        cover_open: false,
        clock,
        mode_raw: 2,
        submode_raw: 0,
    }
}

#[test]
fn clock_compares_instants_not_wall_clocks() {
    // A register on Moscow time, a PC in Yekaterinburg (UTC+5) or on UTC: same instant.
    let facts = Facts { status: Some(status(datetime!(2026-11-25 12:00), ShiftState::Closed)), ..Facts::default() };
    for now in [datetime!(2026-11-25 14:00 +5), datetime!(2026-11-25 09:00 UTC), datetime!(2026-11-25 12:01 +3)] {
        let f = evaluate(&facts, now);
        assert!(!codes(&f).contains(&"clock.drift"), "{now}: {f:?}");
        assert!(codes(&f).contains(&"clock.ok"));
    }
    // The same register in Yekaterinburg (its clock reads 14:00 there) is right too.
    let ekb = Facts {
        status: Some(status(datetime!(2026-11-25 14:00), ShiftState::Closed)),
        timezone: DeviceZone::parse("UTC+5").unwrap(),
        ..Facts::default()
    };
    assert!(!codes(&evaluate(&ekb, datetime!(2026-11-25 09:00 UTC))).contains(&"clock.drift"));
    // …but read as Moscow time it is two hours fast, and the action names the zone.
    let f = evaluate(&Facts { timezone: DeviceZone::MOSCOW, ..ekb }, datetime!(2026-11-25 09:00 UTC));
    let d = f.iter().find(|f| f.code == "clock.drift").unwrap();
    assert_eq!(d.severity, Severity::Critical);
    assert!(d.title_ru.starts_with("Часы ККТ спешат на 2 ч "), "{}", d.title_ru);
    assert!(d.action_ru.contains("timezone = \"+05:00\""), "{}", d.action_ru);
    // Ten minutes slow: a warning, in minutes.
    let slow = Facts { status: Some(status(datetime!(2026-11-25 11:50), ShiftState::Closed)), ..Facts::default() };
    let f = evaluate(&slow, datetime!(2026-11-25 09:00 UTC));
    let d = f.iter().find(|f| f.code == "clock.drift").unwrap();
    assert_eq!(d.severity, Severity::Warning);
    assert!(d.title_ru.starts_with("Часы ККТ отстают на 10 мин "), "{}", d.title_ru);
    // Days.
    let days = Facts { status: Some(status(datetime!(2026-11-27 12:00), ShiftState::Closed)), ..Facts::default() };
    let f = evaluate(&days, datetime!(2026-11-25 09:00 UTC));
    assert!(f.iter().any(|f| f.title_ru.starts_with("Часы ККТ спешат на 2 дня ")), "{f:?}");
}

#[test]
fn shift_age_is_the_registers_own_and_reads_right() {
    // The PC's clock is far off: the age comes from the register's clock alone.
    let facts = Facts {
        status: Some(status(datetime!(2026-11-26 16:14), ShiftState::Expired)),
        shift_opened_at: Some(datetime!(2026-11-25 14:00)),
        ..Facts::default()
    };
    let f = evaluate(&facts, datetime!(2030-01-01 00:00 UTC));
    let s = f.iter().find(|f| f.code == "shift.expired").unwrap();
    assert_eq!(s.title_ru, "Смена №7 открыта 26 ч 14 мин — больше 24 часов");
    // Open by the device's mode but past 24 h by its clock: the same finding.
    let open = Facts { status: Some(status(datetime!(2026-11-26 16:14), ShiftState::Open)), ..facts.clone() };
    assert!(codes(&evaluate(&open, datetime!(2026-11-26 13:14 UTC))).contains(&"shift.expired"));
    let young = Facts { status: Some(status(datetime!(2026-11-25 17:05), ShiftState::Open)), ..facts };
    let f = evaluate(&young, datetime!(2026-11-25 14:05 UTC));
    assert!(f.iter().any(|f| f.title_ru == "Смена №7 открыта 3 ч 5 мин"), "{f:?}");
}

#[test]
fn sticker_that_is_not_a_serial_says_so() {
    for typed in ["1800-1234", "18OO1234", "123456789012345678901"] {
        let facts = Facts { identity: Some(identity("18001234")), sticker_serial: Some(typed.into()), ..Facts::default() };
        let c = codes(&evaluate(&facts, datetime!(2026-11-25 12:00 +3)));
        assert!(c.contains(&"identity.sticker_invalid") && !c.contains(&"identity.sticker_mismatch"), "{typed}: {c:?}");
    }
    let facts = Facts { identity: Some(identity("18001234")), sticker_serial: Some("18001235".into()), ..Facts::default() };
    assert!(codes(&evaluate(&facts, datetime!(2026-11-25 12:00 +3))).contains(&"identity.sticker_mismatch"));
}

#[test]
fn severities_serialize_as_error_and_exit_codes_follow() {
    assert_eq!(serde_json::to_string(&Severity::Critical).unwrap(), "\"error\"");
    let facts = Facts { identity: Some(identity("18009999")), ..Facts::default() };
    let f = evaluate(&facts, datetime!(2026-11-25 12:00 +3));
    assert_eq!(exit_code(&facts, &f), EXIT_ERROR_FINDING);
    let fine = Facts { identity: Some(identity("18001234")), ..Facts::default() };
    assert_eq!(exit_code(&fine, &evaluate(&fine, datetime!(2026-11-25 12:00 +3))), EXIT_OK);
    let gone = Facts { unreachable: true, ..Facts::default() };
    assert_eq!(exit_code(&gone, &[]), EXIT_UNREACHABLE);
}

#[test]
fn ofd_reachability() {
    let addr = OfdAddress { host: "ofd.example.ru".into(), port: 7777 };
    let unsent = OfdStatus { unsent_count: 2, first_unsent_number: Some(4), first_unsent_at: Some(datetime!(2026-11-25 11:00)) };
    let down = OfdReach { reachable: false, detail: "refused".into(), elapsed_ms: 1 };
    let facts = Facts { ofd_address: Some(addr.clone()), ofd_reach: Some(down.clone()), ofd: Some(unsent), ..Facts::default() };
    let f = evaluate(&facts, datetime!(2026-11-25 12:00 +3));
    let u = f.iter().find(|f| f.code == "ofd.unreachable").unwrap();
    assert_eq!(u.severity, Severity::Critical);
    assert!(u.title_ru.starts_with("Нет сети до ОФД") && u.action_ru.contains("(ofd.example.ru:7777)"), "{u:?}");
    assert!(kkm_core::error::is_plain_for_cashier(&u.title_ru) && kkm_core::error::is_plain_for_cashier(&u.cashier_action_ru), "{u:?}");
    let idle = Facts { ofd: None, ..facts.clone() };
    assert_eq!(evaluate(&idle, datetime!(2026-11-25 12:00 +3))[0].severity, Severity::Warning);
    let up = Facts { ofd_reach: Some(OfdReach { reachable: true, ..down }), ..facts.clone() };
    assert!(codes(&evaluate(&up, datetime!(2026-11-25 12:00 +3))).contains(&"ofd.reachable"));
    let blank = Facts { ofd_address: Some(OfdAddress { host: String::new(), port: 0 }), ofd_reach: None, ..facts };
    assert!(codes(&evaluate(&blank, datetime!(2026-11-25 12:00 +3))).contains(&"ofd.address_missing"));
}

#[test]
fn the_cashier_reads_plain_actions_the_engineer_keeps_the_detail() {
    use kkm_core::error::{is_plain_for_cashier, LinkFailure};
    // A clock two hours fast on a Moscow register: the engineer is told the zone setting.
    let ekb = Facts {
        identity: Some(identity("00000000")),
        status: Some(DeviceStatus { paper_present: false, ..status(datetime!(2026-11-25 14:00), ShiftState::Expired) }),
        ..Facts::default()
    };
    let mut f = evaluate(&ekb, datetime!(2026-11-25 09:00 UTC));
    let no_answer = kkm_core::DriverError::link(LinkFailure::NoAnswer, "COM3: timed out");
    f.push(unreachable_finding(&no_answer));
    f.push(facts_error("read.fn_status", "состояние ФН", &no_answer));
    for x in &f {
        assert!(is_plain_for_cashier(&x.cashier_action_ru), "{}: {}", x.code, x.cashier_action_ru);
        assert!(is_plain_for_cashier(&x.title_ru), "{}: {}", x.code, x.title_ru);
        assert_eq!(x.cashier_action_ru.is_empty(), x.action_ru.is_empty(), "{}", x.code);
    }
    let by = |code: &str| f.iter().find(|x| x.code == code).unwrap_or_else(|| panic!("{code} in {f:?}"));
    assert!(by("clock.drift").action_ru.contains("timezone = \"+05:00\""));
    assert!(by("clock.drift").cashier_action_ru.contains("позовите мастера"));
    assert!(by("device.unreachable").action_ru.contains("kkm-agent device … detect"));
    assert_eq!(by("device.unreachable").cashier_action_ru, kkm_core::error::CALL_ENGINEER);
    assert_eq!(by("device.unreachable").title_ru, "ККТ не отвечает", "said once");
    assert!(by("identity.serial_lost").action_ru.contains("kkm-agent"));
    assert_eq!(by("paper.out").cashier_action_ru, by("paper.out").action_ru, "plain already: one text for both");
}
