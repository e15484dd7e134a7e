//! The printer, the shift and the clock.
//!
//! The shift's age is measured on the register's clock alone (its clock now minus the
//! time on its shift-open document), so a wrong PC zone or a drifting clock cannot
//! make it up. The clock itself is compared with the PC's as instants: the register's
//! local time at its zone against the PC's UTC clock.

use super::span::{hours_ru, span_en, span_ru};
use super::zone::DeviceZone;
use super::{finding, Finding, Severity};
use kkm_core::{DeviceStatus, ShiftState};
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

/// A shift may last 24 hours (54-ФЗ); warn from hour 20.
const SHIFT_LIMIT: Duration = Duration::hours(24);
const SHIFT_WARN: Duration = Duration::hours(20);
/// Clock drift: a warning from 5 minutes, an error from an hour.
const DRIFT_WARN: Duration = Duration::minutes(5);
const DRIFT_ERROR: Duration = Duration::hours(1);

pub(super) fn printer_findings(st: &DeviceStatus, out: &mut Vec<Finding>) {
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
}

pub(super) fn shift_findings(st: &DeviceStatus, opened_at: Option<PrimitiveDateTime>, out: &mut Vec<Finding>) {
    // Both times are the register's: no zone is involved.
    let age = opened_at.map(|t| st.clock - t).filter(|a| !a.is_negative());
    let n = st.shift_number;
    let over = st.shift == ShiftState::Expired || (st.shift == ShiftState::Open && age.is_some_and(|a| a >= SHIFT_LIMIT));
    if over {
        let ru = match age {
            Some(a) => format!("Смена №{n} открыта {} — больше 24 часов", hours_ru(a)),
            None => format!("Смена №{n} открыта больше 24 часов"),
        };
        out.push(finding("shift.expired", Severity::Critical, ru, "The shift is over 24 hours old".into(),
            "Снимите Z-отчёт (закройте смену) и откройте новую смену: до этого ККТ не принимает чеки."));
        return;
    }
    match (st.shift, age) {
        (ShiftState::Open, Some(a)) if a >= SHIFT_WARN => out.push(finding("shift.expires_soon", Severity::Warning,
            format!("Смена №{n} открыта {}: через {} ККТ перестанет принимать чеки", hours_ru(a), hours_ru(SHIFT_LIMIT - a)),
            format!("The shift will pass 24 hours in {}", span_en(SHIFT_LIMIT - a)),
            "Снимите Z-отчёт в конце рабочего дня.")),
        (ShiftState::Open, Some(a)) => out.push(finding("shift.open", Severity::Ok,
            format!("Смена №{n} открыта {}", hours_ru(a)), "The shift is open".into(), "")),
        (ShiftState::Open, None) => out.push(finding("shift.open", Severity::Ok,
            format!("Смена №{n} открыта"), "The shift is open".into(), "")),
        _ => out.push(finding("shift.closed", Severity::Info,
            "Смена закрыта".into(), "The shift is closed".into(),
            "Агент откроет смену сам перед первым чеком, если это разрешено в настройках.")),
    }
}

pub(super) fn clock_findings(st: &DeviceStatus, zone: DeviceZone, now: OffsetDateTime, out: &mut Vec<Finding>) {
    let drift = st.clock.assume_offset(zone.0) - now;
    if drift.abs() < DRIFT_WARN {
        out.push(finding("clock.ok", Severity::Ok,
            format!("Часы ККТ идут верно (часовой пояс ККТ {})", zone.offset_text()),
            "The device clock agrees with the PC's".into(), ""));
        return;
    }
    let way = if drift.is_positive() { "спешат на" } else { "отстают на" };
    let mut action = String::from(
        "Проверьте часы компьютера, затем установите дату и время ККТ при закрытой смене. \
         Неверное время ведёт к ошибкам ФН и ОФД.",
    );
    // A drift of whole hours is more often a wrong zone than a wrong clock: name the
    // zone that would make the register's clock right.
    let rem = drift.whole_minutes().rem_euclid(60);
    // Russia's zones span UTC+2…UTC+12: a larger gap is no zone mix-up.
    if drift.abs() >= Duration::minutes(59) && drift.abs() <= Duration::hours(10) + Duration::minutes(1) && (rem <= 1 || rem >= 59) {
        let hours = (drift.whole_minutes() + 30).div_euclid(60) as i32;
        let other = DeviceZone::parse(&format!("UTC{:+}", i32::from(zone.0.whole_hours()) + hours)).ok();
        match other.filter(|_| zone.0.minutes_past_hour() == 0) {
            Some(z) => action.push_str(&format!(
                " Расхождение почти ровно на {}: если ККТ работает по местному времени {}, а не {}, укажите \
                 её часовой пояс (timezone = \"{}\" в настройках ККТ или --timezone {}).",
                span_ru(Duration::hours(hours.into())),
                z.label(),
                zone.label(),
                z.offset_text(),
                z.label()
            )),
            None => action.push_str(" Расхождение почти ровно в часах: проверьте часовой пояс ККТ (timezone в настройках ККТ)."),
        }
    }
    out.push(Finding::new(
        "clock.drift",
        if drift.abs() >= DRIFT_ERROR { Severity::Critical } else { Severity::Warning },
        format!("Часы ККТ {way} {} относительно компьютера (часовой пояс ККТ {})", span_ru(drift), zone.offset_text()),
        format!("The device clock is {} {} the PC's", span_en(drift), if drift.is_positive() { "ahead of" } else { "behind" }),
        action,
    )
    .for_cashier(CLOCK_CASHIER));
}

/// The clock, for the cashier: the zone and the settings are the engineer's part.
const CLOCK_CASHIER: &str = "Проверьте время на компьютере; если оно верное — позовите мастера: часы ККТ \
    выставляют при закрытой смене. Неверное время ведёт к ошибкам ФН и ОФД.";
