//! The ФН: its phase and expiry, and documents waiting for the ОФД.
//!
//! `now` here is the PC's instant as the register's local time (see [`super::zone`]),
//! because the ФН dates its documents and its expiry by the register's clock.

use super::span::span_ru;
use super::{finding, Finding, Severity};
use kkm_core::{FnPhase, FnStatus, OfdStatus};
use time::{Duration, PrimitiveDateTime};

fn phase_ru(p: FnPhase) -> &'static str {
    match p {
        FnPhase::Ready => "готов к регистрации, ККТ не зарегистрирована",
        FnPhase::Fiscal => "фискальный режим",
        FnPhase::PostFiscal => "архив закрыт, только передача в ОФД",
        FnPhase::Archive => "чтение архива",
        FnPhase::Unknown => "неизвестное состояние",
    }
}

pub(super) fn fn_findings(fs: &FnStatus, now: PrimitiveDateTime, out: &mut Vec<Finding>) {
    if fs.phase != FnPhase::Fiscal {
        out.push(finding(
            "fn.not_fiscal",
            Severity::Warning,
            format!("ФН не в фискальном режиме: {}", phase_ru(fs.phase)),
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

/// The usual reasons documents do not leave the register.
pub(super) const OFD_CAUSES: &str = "Частые причины: нет интернета у ККТ; неверный адрес или порт ОФД в \
    настройках ККТ; истёк договор с ОФД; неверные дата и время в ККТ. Проверьте их и дождитесь отправки.";

/// The ФН blocks fiscal work 30 days after the oldest unsent document; warn from day 20.
pub(super) fn ofd_findings(ofd: &OfdStatus, now: PrimitiveDateTime, out: &mut Vec<Finding>) {
    let (Some(first), true) = (ofd.first_unsent_at, ofd.unsent_count > 0) else {
        out.push(finding("ofd.ok", Severity::Ok, "Все документы переданы в ОФД".into(), "Nothing unsent to the OFD".into(), ""));
        return;
    };
    let age = now - first;
    let blocks_at = first + Duration::days(30);
    let left = blocks_at - now;
    let n = ofd.unsent_count;
    let num = ofd.first_unsent_number.map_or(String::new(), |x| format!(" (первый — ФД №{x})"));
    let when = kkm_core::device::dt::format(&blocks_at).replace('T', " ");
    let (code, sev, ru) = if age >= Duration::days(30) {
        ("ofd.blocked", Severity::Critical, format!("{n} док. не переданы в ОФД более 30 дней{num}: ФН заблокирован с {when}"))
    } else if age >= Duration::days(20) {
        ("ofd.blocking_soon", Severity::Warning, format!("{n} док. не переданы в ОФД {}{num}; ФН заблокируется {when} (через {})", span_ru(age), span_ru(left)))
    } else if age >= Duration::days(1) {
        ("ofd.unsent", Severity::Info, format!("{n} док. ждут отправки в ОФД {}{num}; блокировка {when}", span_ru(age)))
    } else {
        ("ofd.sending", Severity::Ok, format!("{n} док. в очереди на отправку в ОФД{num}"))
    };
    out.push(finding(code, sev, ru, format!("{n} documents unsent to the OFD; blocks at {when}"), if sev >= Severity::Info { OFD_CAUSES } else { "" }));
}
