//! Device health: facts read through the driver trait, judged by pure rules.
//!
//! [`read_facts`] asks the register (and, for the ОФД address, the network); [`evaluate`]
//! turns the facts into findings without any I/O, so each rule is tested without a
//! device. The rules live by concern in the submodules.
//!
//! Exit codes of `kkm-agent device … check` (see [`exit_code`]): 0 no error finding,
//! 1 at least one error finding, 2 the register could not be reached.

mod fiscal;
mod identity;
pub mod ofd_net;
pub mod span;
mod status;
pub mod zone;

pub use ofd_net::OfdReach;
pub use zone::DeviceZone;

use kkm_core::{DeviceIdentity, DeviceStatus, DocumentKind, FiscalDriver, FnStatus, OfdAddress, OfdStatus, ShiftState};
use serde::Serialize;
use time::{OffsetDateTime, PrimitiveDateTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Ok,
    Info,
    Warning,
    /// An error: something stops receipts or breaks the law. Serialized as `"error"`.
    #[serde(rename = "error")]
    Critical,
}

impl Severity {
    /// The text-output mark, in Russian.
    pub fn mark(self) -> &'static str {
        match self {
            Severity::Ok => "норма   ",
            Severity::Info => "сведения",
            Severity::Warning => "внимание",
            Severity::Critical => "ОШИБКА  ",
        }
    }
}

/// `device … check` exit code: no error finding.
pub const EXIT_OK: u8 = 0;
/// At least one finding is an error.
pub const EXIT_ERROR_FINDING: u8 = 1;
/// The register did not answer at all (nothing on the port, wrong protocol).
pub const EXIT_UNREACHABLE: u8 = 2;

/// One thing an engineer should know, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable code, e.g. `fn.expires_soon`.
    pub code: &'static str,
    pub severity: Severity,
    pub title_ru: String,
    pub title_en: String,
    pub action_ru: String,
}

fn finding(code: &'static str, severity: Severity, ru: String, en: String, action: &str) -> Finding {
    Finding { code, severity, title_ru: ru, title_en: en, action_ru: action.to_string() }
}

/// Everything the rules look at. Parts the device could not report are `None`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    pub identity: Option<DeviceIdentity>,
    pub status: Option<DeviceStatus>,
    pub fn_status: Option<FnStatus>,
    pub ofd: Option<OfdStatus>,
    #[serde(with = "kkm_core::device::opt_dt")]
    pub shift_opened_at: Option<PrimitiveDateTime>,
    /// The factory number from the sticker on the case, typed by the engineer.
    pub sticker_serial: Option<String>,
    /// The register's time zone: its clock and documents are local time there. Default
    /// Moscow; the caller sets it from the device's `timezone` setting.
    pub timezone: DeviceZone,
    /// The ОФД server from the register's settings, where the driver can read it.
    pub ofd_address: Option<OfdAddress>,
    /// Whether this PC reached that server.
    pub ofd_reach: Option<OfdReach>,
    /// Nothing answered on the port: the other facts are all missing.
    pub unreachable: bool,
    /// Errors met while reading, as findings.
    #[serde(skip)]
    pub read_errors: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub facts: Facts,
    pub findings: Vec<Finding>,
}

impl HealthReport {
    /// See [`exit_code`].
    pub fn exit_code(&self) -> u8 {
        exit_code(&self.facts, &self.findings)
    }
}

/// 2 when the register could not be reached, 1 when any finding is an error, else 0.
pub fn exit_code(facts: &Facts, findings: &[Finding]) -> u8 {
    if facts.unreachable {
        EXIT_UNREACHABLE
    } else if findings.iter().any(|f| f.severity == Severity::Critical) {
        EXIT_ERROR_FINDING
    } else {
        EXIT_OK
    }
}

/// How far back to look for the shift-open document when measuring the shift's age.
const SHIFT_SEARCH_DEPTH: u32 = 64;

/// Reads the facts from a device, then checks from this PC that the ОФД server the
/// register names answers (at most [`ofd_net::PROBE_TIMEOUT`]): [`read_device_facts`]
/// then [`probe_ofd`]. `timezone` is left at Moscow: set `facts.timezone` before
/// [`evaluate`].
pub async fn read_facts(driver: &mut dyn FiscalDriver, sticker_serial: Option<String>) -> Facts {
    let mut facts = read_device_facts(driver, sticker_serial).await;
    probe_ofd(&mut facts).await;
    facts
}

/// Checks that the ОФД server in `facts.ofd_address` answers from this PC, if one is
/// set. No device I/O: a caller that holds the port (the daemon's worker) can release
/// it before this network wait.
pub async fn probe_ofd(facts: &mut Facts) {
    if let Some(a) = facts.ofd_address.as_ref().filter(|a| !a.host.trim().is_empty() && a.port != 0) {
        facts.ofd_reach = Some(ofd_net::probe(a, ofd_net::PROBE_TIMEOUT).await);
    }
}

/// The register's part of [`read_facts`]. Each read that fails becomes a finding and the
/// rest go on, except when the first read finds nothing on the port: then the facts say
/// `unreachable` and nothing else is tried.
pub async fn read_device_facts(driver: &mut dyn FiscalDriver, sticker_serial: Option<String>) -> Facts {
    let mut facts = Facts { sticker_serial, ..Facts::default() };
    let note = |code: &'static str, what: &str, e: kkm_core::DriverError| facts_error(code, what, &e);
    let mut errors = Vec::new();
    match driver.identity().await {
        Ok(v) => facts.identity = Some(v),
        Err(e @ kkm_core::DriverError::Link { .. }) => {
            facts.unreachable = true;
            facts.read_errors = vec![unreachable_finding(&e)];
            return facts;
        }
        Err(e) => errors.push(note("read.identity", "идентификацию ККТ", e)),
    }
    match driver.status().await {
        Ok(v) => facts.status = Some(v),
        Err(e) => errors.push(note("read.status", "состояние ККТ", e)),
    }
    match driver.fn_status().await {
        Ok(v) => facts.fn_status = Some(v),
        Err(e) => errors.push(note("read.fn_status", "состояние ФН", e)),
    }
    match driver.ofd_status().await {
        Ok(v) => facts.ofd = Some(v),
        Err(e) => errors.push(note("read.ofd_status", "состояние обмена с ОФД", e)),
    }
    match driver.ofd_address().await {
        Ok(a) => facts.ofd_address = Some(a),
        Err(e) => errors.push(ofd_net::address_error(&e)),
    }
    let shift_open = facts.status.as_ref().is_some_and(|s| s.shift != ShiftState::Closed);
    if let (true, Some(fs)) = (shift_open, &facts.fn_status) {
        let last = fs.last_document_number;
        for n in (last.saturating_sub(SHIFT_SEARCH_DEPTH)..=last).rev().take_while(|n| *n > 0) {
            match driver.find_document(n).await {
                Ok(doc) if doc.kind == DocumentKind::ShiftOpen => {
                    facts.shift_opened_at = Some(doc.datetime);
                    break;
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
    }
    facts.read_errors = errors;
    facts
}

fn unreachable_finding(e: &kkm_core::DriverError) -> Finding {
    Finding {
        code: "device.unreachable",
        severity: Severity::Critical,
        title_ru: format!("ККТ не отвечает: {}", e.title_ru()),
        title_en: format!("The register does not answer: {}", e.title_en()),
        action_ru: {
            let a = e.action_ru();
            if a.is_empty() {
                "Проверьте кабель и питание ККТ, номер порта и модель; запустите kkm-agent device --port … detect.".to_string()
            } else {
                a.to_string()
            }
        },
    }
}

fn facts_error(code: &'static str, what: &str, e: &kkm_core::DriverError) -> Finding {
    Finding {
        code,
        severity: Severity::Critical,
        title_ru: format!("Не удалось прочитать {what}: {}", e.title_ru()),
        title_en: format!("Could not read {code}: {}", e.title_en()),
        action_ru: e.action_ru().to_string(),
    }
}

/// Judges the facts against the PC's clock `now` (an instant; its offset does not
/// matter: the register's times are read at `f.timezone`).
pub fn evaluate(f: &Facts, now: OffsetDateTime) -> Vec<Finding> {
    let mut out = f.read_errors.clone();
    let local = now.to_offset(f.timezone.0);
    let local = PrimitiveDateTime::new(local.date(), local.time());
    if let Some(id) = &f.identity {
        identity::findings(id, f.sticker_serial.as_deref(), &mut out);
    }
    if let Some(fs) = &f.fn_status {
        fiscal::fn_findings(fs, local, &mut out);
    }
    if let Some(ofd) = &f.ofd {
        fiscal::ofd_findings(ofd, local, &mut out);
    }
    ofd_net::findings(f, &mut out);
    if let Some(st) = &f.status {
        status::printer_findings(st, &mut out);
        status::shift_findings(st, f.shift_opened_at, &mut out);
        status::clock_findings(st, f.timezone, now, &mut out);
    }
    out.sort_by(|a, b| b.severity.cmp(&a.severity));
    out
}

#[cfg(test)]
mod tests {
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
        assert!(f.iter().any(|f| f.title_ru.starts_with("Часы ККТ спешат на 2 дн ")), "{f:?}");
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
        assert!(u.title_ru.starts_with("Нет сети до ОФД") && u.title_ru.contains("ofd.example.ru:7777"));
        let idle = Facts { ofd: None, ..facts.clone() };
        assert_eq!(evaluate(&idle, datetime!(2026-11-25 12:00 +3))[0].severity, Severity::Warning);
        let up = Facts { ofd_reach: Some(OfdReach { reachable: true, ..down }), ..facts.clone() };
        assert!(codes(&evaluate(&up, datetime!(2026-11-25 12:00 +3))).contains(&"ofd.reachable"));
        let blank = Facts { ofd_address: Some(OfdAddress { host: String::new(), port: 0 }), ofd_reach: None, ..facts };
        assert!(codes(&evaluate(&blank, datetime!(2026-11-25 12:00 +3))).contains(&"ofd.address_missing"));
    }
}
