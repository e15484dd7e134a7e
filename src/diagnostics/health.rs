//! Device health: facts read through the driver trait, judged by pure rules.

use kkm_core::{
    checks, DeviceIdentity, DeviceStatus, DocumentKind, FiscalDriver, FnPhase, FnStatus, OfdStatus, ShiftState,
};
use serde::Serialize;
use time::{Duration, PrimitiveDateTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Ok,
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn mark(self) -> &'static str {
        match self {
            Severity::Ok => "OK  ",
            Severity::Info => "INFO",
            Severity::Warning => "WARN",
            Severity::Critical => "FAIL",
        }
    }
}

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
    /// Errors met while reading, as findings.
    #[serde(skip)]
    pub read_errors: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub facts: Facts,
    pub findings: Vec<Finding>,
}

/// How far back to look for the shift-open document when measuring the shift's age.
const SHIFT_SEARCH_DEPTH: u32 = 64;

/// Reads the facts from a device. Each read that fails becomes a finding; the rest go on.
pub async fn read_facts(driver: &mut dyn FiscalDriver, sticker_serial: Option<String>) -> Facts {
    let mut facts = Facts { sticker_serial, ..Facts::default() };
    let note = |code: &'static str, what: &str, e: kkm_core::DriverError| facts_error(code, what, &e);
    let mut errors = Vec::new();
    match driver.identity().await {
        Ok(v) => facts.identity = Some(v),
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

fn facts_error(code: &'static str, what: &str, e: &kkm_core::DriverError) -> Finding {
    Finding {
        code,
        severity: Severity::Critical,
        title_ru: format!("Не удалось прочитать {what}: {}", e.title_ru()),
        title_en: format!("Could not read {code}: {}", e.title_en()),
        action_ru: e.action_ru().to_string(),
    }
}

/// Judges the facts against the PC's clock `now`.
pub fn evaluate(f: &Facts, now: PrimitiveDateTime) -> Vec<Finding> {
    let mut out = f.read_errors.clone();
    if let Some(id) = &f.identity {
        identity_findings(id, f.sticker_serial.as_deref(), &mut out);
    }
    if let Some(fs) = &f.fn_status {
        fn_findings(fs, now, &mut out);
    }
    if let Some(ofd) = &f.ofd {
        ofd_findings(ofd, now, &mut out);
    }
    if let Some(st) = &f.status {
        status_findings(st, f.shift_opened_at, now, &mut out);
    }
    out.sort_by(|a, b| b.severity.cmp(&a.severity));
    out
}

fn identity_findings(id: &DeviceIdentity, sticker: Option<&str>, out: &mut Vec<Finding>) {
    let lost = checks::serial_is_lost(&id.serial);
    if lost {
        out.push(finding(
            "identity.serial_lost",
            Severity::Critical,
            "Слетел заводской номер ККТ (ЗН): устройство сообщает пустой или нулевой номер".into(),
            "The factory number is lost: the device reports an empty or all-zero serial".into(),
            "Сверьте ЗН с наклейкой на корпусе (kkm-agent device … check --serial <ЗН>). Записать ЗН \
             обратно может только сервисный центр с ПО производителя; до этого не перерегистрируйте ККТ.",
        ));
    }
    if !id.inn.trim().is_empty() && !checks::inn_is_valid(&id.inn) {
        out.push(finding(
            "identity.inn_invalid",
            Severity::Warning,
            format!("ИНН пользователя {} не проходит проверку контрольных цифр", id.inn.trim()),
            format!("The user's INN {} fails its check digits", id.inn.trim()),
            "Сверьте ИНН с карточкой регистрации ККТ; при ошибке нужна перерегистрация.",
        ));
    }
    let rnm = id.rnm.trim();
    if rnm.is_empty() || rnm.chars().all(|c| c == '0') {
        out.push(finding(
            "identity.not_registered",
            Severity::Warning,
            "ККТ не зарегистрирована: РНМ пуст".into(),
            "The device is not registered: the RNM is empty".into(),
            "Зарегистрируйте ККТ в ФНС и запишите РНМ в устройство.",
        ));
    } else if !lost {
        if checks::rnm_matches(rnm, &id.inn, &id.serial) {
            out.push(finding(
                "identity.rnm_ok",
                Severity::Ok,
                format!("РНМ {rnm} соответствует ЗН {} и ИНН {}", id.serial.trim(), id.inn.trim()),
                "The RNM's check digits match the serial and INN".into(),
                "",
            ));
        } else {
            out.push(finding(
                "identity.rnm_mismatch",
                Severity::Critical,
                format!(
                    "Контрольные цифры РНМ {rnm} не сходятся с ЗН {} и ИНН {}",
                    id.serial.trim(),
                    id.inn.trim()
                ),
                "The RNM's check digits do not match the serial and INN".into(),
                "Возможные причины: слетел или изменён ЗН, в ККТ записан неверный ИНН, или ККТ \
                 зарегистрирована с другим номером. Сверьте ЗН с наклейкой и карточку регистрации.",
            ));
        }
    }
    if let Some(sticker) = sticker {
        let ok = checks::rnm_matches(rnm, &id.inn, sticker);
        out.push(if ok {
            finding(
                "identity.sticker_confirmed",
                Severity::Ok,
                format!("ЗН с наклейки {sticker} подтверждён РНМ: это та самая ККТ"),
                "The sticker's serial is confirmed by the RNM".into(),
                if lost { "ЗН можно восстановить в сервисном центре по этому номеру." } else { "" },
            )
        } else {
            finding(
                "identity.sticker_mismatch",
                Severity::Critical,
                format!("ЗН с наклейки {sticker} не подходит к РНМ {rnm} и ИНН {}", id.inn.trim()),
                "The sticker's serial does not match the RNM and INN".into(),
                "Проверьте, что номер введён верно; иначе ККТ зарегистрирована на другой номер.",
            )
        });
    }
}

fn fn_findings(fs: &FnStatus, now: PrimitiveDateTime, out: &mut Vec<Finding>) {
    if fs.phase != FnPhase::Fiscal {
        out.push(finding(
            "fn.not_fiscal",
            Severity::Warning,
            format!("ФН не в фискальном режиме ({:?})", fs.phase),
            format!("The FN is not in fiscal mode ({:?})", fs.phase),
            "Чеки пробить нельзя. Проверьте регистрацию ККТ или замените ФН.",
        ));
    }
    if let Some(until) = fs.valid_until {
        let days = (until - now.date()).whole_days();
        let (code, sev, ru, action) = if days < 0 {
            ("fn.expired", Severity::Critical, format!("Срок действия ФН истёк {until}"),
             "Замените ФН и перерегистрируйте ККТ; до замены чеки не пробиваются.")
        } else if days <= 30 {
            ("fn.expires_soon", Severity::Warning, format!("ФН истекает через {days} дн. ({until})"),
             "Закажите новый ФН и запланируйте замену с перерегистрацией до этой даты.")
        } else {
            ("fn.valid", Severity::Ok, format!("ФН действителен до {until} (ещё {days} дн.)"), "")
        };
        out.push(finding(code, sev, ru, format!("FN valid until {until} ({days} days)"), action));
    }
}

/// The ФН blocks fiscal work 30 days after the oldest unsent document; warn from day 20.
fn ofd_findings(ofd: &OfdStatus, now: PrimitiveDateTime, out: &mut Vec<Finding>) {
    let (Some(first), true) = (ofd.first_unsent_at, ofd.unsent_count > 0) else {
        out.push(finding("ofd.ok", Severity::Ok, "Все документы переданы в ОФД".into(), "Nothing unsent to the OFD".into(), ""));
        return;
    };
    let age = now - first;
    let blocks_at = first + Duration::days(30);
    let days_left = (blocks_at - now).whole_days();
    let n = ofd.unsent_count;
    let num = ofd.first_unsent_number.map_or(String::new(), |x| format!(" (первый — ФД №{x})"));
    let causes = "Частые причины: нет интернета у ККТ; неверный адрес или порт ОФД в настройках ККТ; \
                  истёк договор с ОФД; неверные дата и время в ККТ. Проверьте их и дождитесь отправки.";
    let when = kkm_core::device::dt::format(&blocks_at).replace('T', " ");
    let (code, sev, ru) = if age >= Duration::days(30) {
        ("ofd.blocked", Severity::Critical, format!("{n} док. не переданы в ОФД более 30 дней{num}: ФН заблокирован с {when}"))
    } else if age >= Duration::days(20) {
        ("ofd.blocking_soon", Severity::Warning, format!("{n} док. не переданы в ОФД{num}; ФН заблокируется {when} (через {days_left} дн.)"))
    } else if age >= Duration::days(1) {
        ("ofd.unsent", Severity::Info, format!("{n} док. ждут отправки в ОФД {} дн.{num}; блокировка {when}", age.whole_days()))
    } else {
        ("ofd.sending", Severity::Ok, format!("{n} док. в очереди на отправку в ОФД{num}"))
    };
    out.push(finding(code, sev, ru, format!("{n} documents unsent to the OFD; blocks at {when}"), if sev >= Severity::Info { causes } else { "" }));
}

fn status_findings(st: &DeviceStatus, opened_at: Option<PrimitiveDateTime>, now: PrimitiveDateTime, out: &mut Vec<Finding>) {
    if !st.paper_present {
        out.push(finding("paper.out", Severity::Critical, "Нет бумаги".into(), "Out of paper".into(),
            "Вставьте новый рулон чековой ленты и закройте крышку."));
    }
    if st.cover_open {
        out.push(finding("printer.cover_open", Severity::Warning, "Открыта крышка принтера".into(), "Printer cover open".into(),
            "Закройте крышку принтера."));
    }
    if st.receipt_open {
        out.push(finding("receipt.open", Severity::Info, "В ККТ открыт незавершённый чек".into(), "A receipt is open".into(),
            "Агент отменит его перед следующим чеком; если чек пробивали вручную — завершите его на ККТ."));
    }
    let age = opened_at.map(|t| now - t);
    let age_text = age.map_or(String::new(), |a| format!(" {} ч {} мин", a.whole_hours(), a.whole_minutes() % 60));
    match st.shift {
        ShiftState::Expired => out.push(finding("shift.expired", Severity::Critical,
            format!("Смена №{} открыта больше 24 часов{age_text}", st.shift_number),
            "The shift is over 24 hours old".into(),
            "Снимите Z-отчёт (закройте смену) и откройте новую смену.")),
        ShiftState::Open if age.is_some_and(|a| a >= Duration::hours(20)) => out.push(finding("shift.expires_soon", Severity::Warning,
            format!("Смена №{} открыта{age_text}: через {} ч ККТ перестанет принимать чеки",
                st.shift_number, 24 - age.map_or(0, |a| a.whole_hours())),
            "The shift will pass 24 hours soon".into(),
            "Снимите Z-отчёт в конце рабочего дня.")),
        ShiftState::Open => out.push(finding("shift.open", Severity::Ok,
            format!("Смена №{} открыта{age_text}", st.shift_number), "The shift is open".into(), "")),
        ShiftState::Closed => out.push(finding("shift.closed", Severity::Info,
            "Смена закрыта".into(), "The shift is closed".into(),
            "Агент откроет смену сам перед первым чеком, если это разрешено в настройках.")),
    }
    let drift = st.clock - now;
    let mins = drift.whole_minutes().abs();
    if mins >= 5 {
        out.push(finding("clock.drift", if mins >= 60 { Severity::Critical } else { Severity::Warning },
            format!("Часы ККТ {} компьютера на {} мин", if drift.is_positive() { "спешат относительно" } else { "отстают от" }, mins),
            format!("The device clock is {mins} minutes off the PC's"),
            "Проверьте часы компьютера, затем установите дату и время ККТ при закрытой смене. \
             Неверное время ведёт к ошибкам ФН и ОФД."));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let f = evaluate(&facts, datetime!(2026-11-25 12:00));
        assert!(codes(&f).contains(&"identity.serial_lost"));
        assert!(codes(&f).contains(&"identity.sticker_confirmed"));
    }

    #[test]
    fn rnm_mismatch() {
        let facts = Facts { identity: Some(identity("18009999")), ..Facts::default() };
        assert!(codes(&evaluate(&facts, datetime!(2026-11-25 12:00))).contains(&"identity.rnm_mismatch"));
        let facts = Facts { identity: Some(identity("18001234")), ..Facts::default() };
        assert!(codes(&evaluate(&facts, datetime!(2026-11-25 12:00))).contains(&"identity.rnm_ok"));
    }

    #[test]
    fn ofd_warns_from_day_20_with_block_date() {
        let ofd = OfdStatus { unsent_count: 3, first_unsent_number: Some(10), first_unsent_at: Some(datetime!(2026-11-01 10:00)) };
        let facts = Facts { ofd: Some(ofd), ..Facts::default() };
        let f = evaluate(&facts, datetime!(2026-11-22 10:00));
        assert_eq!(f[0].code, "ofd.blocking_soon");
        assert!(f[0].title_ru.contains("2026-12-01 10:00"), "{}", f[0].title_ru);
        let f = evaluate(&facts, datetime!(2026-12-02 10:00));
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
        let f = evaluate(&facts, datetime!(2026-11-25 12:00));
        let c = codes(&f);
        assert!(c.contains(&"fn.expires_soon"));
        assert!(c.contains(&"clock.drift"));
        assert!(c.contains(&"shift.expires_soon"));
    }
}
