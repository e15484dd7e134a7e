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
mod registration;
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
    /// As the API writes it (`ok`, `info`, `warning`, `error`), for the CLI reading a
    /// running agent's answer. Any other word counts as an error, so a word this version
    /// does not know never hides a problem.
    pub fn from_api(s: &str) -> Severity {
        match s {
            "ok" => Severity::Ok,
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            _ => Severity::Critical,
        }
    }

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
    /// The action in the cashier's words: no commands, settings or Latin words. The
    /// daemon's health check shows it on the cashier's page; the CLI prints `action_ru`.
    #[serde(skip)]
    pub cashier_action_ru: String,
}

impl Finding {
    /// A finding whose action suits both the engineer and the cashier.
    pub fn new(code: &'static str, severity: Severity, ru: String, en: String, action: impl Into<String>) -> Finding {
        let action = action.into();
        Finding { code, severity, title_ru: ru, title_en: en, cashier_action_ru: action.clone(), action_ru: action }
    }

    /// The cashier's words where the engineer's action names a command or a setting.
    pub fn for_cashier(mut self, action: &str) -> Finding {
        self.cashier_action_ru = action.into();
        self
    }
}

fn finding(code: &'static str, severity: Severity, ru: String, en: String, action: &str) -> Finding {
    Finding::new(code, severity, ru, en, action)
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
    let mut facts = read_device_facts_but_shift_age(driver, sticker_serial).await;
    if let Some(at) = find_shift_opening(driver, &facts).await {
        facts.shift_opened_at = at;
    }
    facts
}

/// Every read of [`read_device_facts`] but the search for the shift's opening.
async fn read_device_facts_but_shift_age(driver: &mut dyn FiscalDriver, sticker_serial: Option<String>) -> Facts {
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
    facts.read_errors = errors;
    facts
}

/// [`read_device_facts`] for a caller that checks the same register again and again
/// (the daemon): the shift-open time found last time is reused while the ФН and the
/// shift are the same, so only a new shift costs the search back through its documents.
pub async fn read_device_facts_again(driver: &mut dyn FiscalDriver, known: &mut Option<ShiftOpening>) -> Facts {
    let mut facts = read_device_facts_but_shift_age(driver, None).await;
    let now = ShiftOpening::key(&facts);
    match (known.as_ref(), now) {
        (Some(k), Some((fn_serial, shift))) if k.fn_serial == fn_serial && k.shift_number == shift => facts.shift_opened_at = k.at,
        (_, Some((fn_serial, shift_number))) => {
            if let Some(at) = find_shift_opening(driver, &facts).await {
                facts.shift_opened_at = at;
                *known = Some(ShiftOpening { fn_serial, shift_number, at });
            }
        }
        (_, None) => {}
    }
    facts
}

/// When the open shift began, as the last search found it (`at: None`: not among the
/// last [`SHIFT_SEARCH_DEPTH`] documents, which the next search would not change).
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftOpening {
    pub fn_serial: String,
    pub shift_number: u32,
    pub at: Option<PrimitiveDateTime>,
}

impl ShiftOpening {
    /// Which shift the facts are about: the ФН and the shift number, for an open shift.
    fn key(facts: &Facts) -> Option<(String, u32)> {
        let st = facts.status.as_ref().filter(|s| s.shift != ShiftState::Closed)?;
        let fn_serial = facts.identity.as_ref().map(|i| i.fn_serial.clone()).filter(|s| !s.is_empty())?;
        Some((fn_serial, st.shift_number))
    }
}

/// Looks back from the last document for the open shift's opening. `None` when a read
/// failed (try again next time); `Some(None)` when the search ended without it.
async fn find_shift_opening(driver: &mut dyn FiscalDriver, facts: &Facts) -> Option<Option<PrimitiveDateTime>> {
    let shift_open = facts.status.as_ref().is_some_and(|s| s.shift != ShiftState::Closed);
    let last = facts.fn_status.as_ref().filter(|_| shift_open)?.last_document_number;
    for n in (last.saturating_sub(SHIFT_SEARCH_DEPTH)..=last).rev().take_while(|n| *n > 0) {
        match driver.find_document(n).await {
            Ok(doc) if doc.kind == DocumentKind::ShiftOpen => return Some(Some(doc.datetime)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    Some(None)
}

fn unreachable_finding(e: &kkm_core::DriverError) -> Finding {
    Finding::new(
        "device.unreachable",
        Severity::Critical,
        // «No answer» is what the title says already; another failure adds its cause.
        match e {
            kkm_core::DriverError::Link { failure: kkm_core::error::LinkFailure::NoAnswer, .. } => "ККТ не отвечает".to_string(),
            _ => format!("ККТ не отвечает: {}", e.title_ru()),
        },
        format!("The register does not answer: {}", e.title_en()),
        {
            let a = e.action_ru();
            if a.is_empty() {
                "Проверьте кабель и питание ККТ, номер порта и модель; запустите kkm-agent device --port … detect.".to_string()
            } else {
                a.to_string()
            }
        },
    )
    .for_cashier(e.cashier_action_ru())
}

fn facts_error(code: &'static str, what: &str, e: &kkm_core::DriverError) -> Finding {
    Finding::new(
        code,
        Severity::Critical,
        format!("Не удалось прочитать {what}: {}", e.title_ru()),
        format!("Could not read {code}: {}", e.title_en()),
        e.action_ru(),
    )
    .for_cashier(e.cashier_action_ru())
}

/// Judges the facts against the PC's clock `now` (an instant; its offset does not
/// matter: the register's times are read at `f.timezone`).
pub fn evaluate(f: &Facts, now: OffsetDateTime) -> Vec<Finding> {
    let mut out = f.read_errors.clone();
    let local = now.to_offset(f.timezone.0);
    let local = PrimitiveDateTime::new(local.date(), local.time());
    if let Some(id) = &f.identity {
        identity::findings(id, f.sticker_serial.as_deref(), &mut out);
        registration::findings(id, &mut out);
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
mod tests;
