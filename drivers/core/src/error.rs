//! Errors from drivers, each explained.
//!
//! Every error a driver returns carries a stable code (`device.paper_out`,
//! `link.port_busy`), a Russian title for the cashier, an English title for logs and
//! integrators, and the action to take, twice: `action_ru` for the engineer (it may
//! name a command or a setting) and `cashier_action_ru` in plain words for the cashier's
//! page (no commands, settings or Latin words; "call the engineer" where only one can help). The queue decides what to do from
//! [`DriverError::class`] and [`Condition`], never by matching texts or raw codes.
//!
//! Raw device codes differ per protocol (Shtrih 0x6B and ATOL 0x67 are both "no paper").
//! Each protocol crate keeps one table mapping its raw codes to a static [`ErrorInfo`]
//! with the shared [`Condition`], so the behaviour is defined once here.

use crate::device::ProtocolFamily;
use crate::receipt::ValidationError;
use serde::Serialize;

/// What the caller of a driver should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Try again later with backoff: no link, device busy, timeout.
    Transient,
    /// A person must act (paper, Z-report, ФН, ОФД): park the queue with the reason.
    NeedsAttention,
    /// The agent can fix it itself: open the shift, cancel a left-over receipt.
    Recoverable,
    /// The request is wrong: fail the job with the device's text; retrying will not help.
    Rejected,
}

/// The meaning of a device error, shared by all protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    PaperOut,
    /// Paper is back after it ran out mid-document; the device waits for the host to
    /// finish that print (Shtrih 0x58) and refuses everything else until then.
    AwaitingContinue,
    CoverOpen,
    PrinterFailure,
    ShiftClosed,
    ShiftExpired,
    ShiftAlreadyOpen,
    ReceiptOpen,
    ReceiptClosed,
    NotEnoughCash,
    OfdBlocked,
    FnFailure,
    FnExhausted,
    ClockProblem,
    DeviceBusy,
    WrongPassword,
    BadRequest,
    Unsupported,
    Other,
}

impl Condition {
    /// A condition of the whole device, not of one job: the queue parks until the
    /// device shows it is gone, and it never counts against a job's attempts.
    pub fn is_device_wide(self) -> bool {
        use Condition::*;
        matches!(
            self,
            PaperOut | CoverOpen | PrinterFailure | ShiftExpired | OfdBlocked | FnFailure | FnExhausted | ClockProblem
                | WrongPassword | AwaitingContinue | DeviceBusy
        )
    }

    pub fn class(self) -> ErrorClass {
        use Condition::*;
        match self {
            PaperOut | CoverOpen | PrinterFailure | ShiftExpired | OfdBlocked | FnFailure | FnExhausted
            | ClockProblem | WrongPassword | Other => ErrorClass::NeedsAttention,
            ShiftClosed | ReceiptOpen | ShiftAlreadyOpen | ReceiptClosed | AwaitingContinue => ErrorClass::Recoverable,
            DeviceBusy => ErrorClass::Transient,
            NotEnoughCash | BadRequest | Unsupported => ErrorClass::Rejected,
        }
    }
}

/// Builds a `'static` [`ErrorInfo`] for a protocol's error table:
/// `error_info!("device.paper_out", PaperOut, "Нет бумаги", "Out of paper", "Вставьте рулон.")`.
/// A sixth text is the cashier's action when the engineer's names a command or setting;
/// without it both read the same.
#[macro_export]
macro_rules! error_info {
    ($code:expr, $cond:ident, $ru:expr, $en:expr, $act:expr) => {
        $crate::error_info!($code, $cond, $ru, $en, $act, $act)
    };
    ($code:expr, $cond:ident, $ru:expr, $en:expr, $act:expr, $cashier:expr) => {
        $crate::error::ErrorInfo {
            code: $code,
            condition: $crate::error::Condition::$cond,
            title_ru: $ru,
            title_en: $en,
            action_ru: $act,
            cashier_action_ru: $cashier,
        }
    };
}

/// The cashier's action when only an engineer can help with the link or the setup.
pub const CALL_ENGINEER: &str = "Проверьте кабель и питание ККТ; если не помогло — позовите мастера.";

/// One explained device error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ErrorInfo {
    /// Stable machine-readable code, e.g. `device.paper_out`.
    pub code: &'static str,
    pub condition: Condition,
    pub title_ru: &'static str,
    pub title_en: &'static str,
    /// What to do, in Russian, for an engineer: may name a command or a setting.
    pub action_ru: &'static str,
    /// What to do, in plain Russian, for the cashier: no commands, settings or Latin words.
    pub cashier_action_ru: &'static str,
}

/// Why the link to the device failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkFailure {
    PortNotFound,
    PortBusy,
    PermissionDenied,
    /// The port opened but nothing answered in time.
    NoAnswer,
    /// The connection was closed or reset.
    Disconnected,
    /// The other side answered with bytes that are not this protocol.
    Garbled,
    Io,
}

impl LinkFailure {
    pub fn info(self) -> ErrorInfo {
        use LinkFailure::*;
        let (code, ru, en, action, cashier) = match self {
            PortNotFound => ("link.port_not_found", "Порт не найден", "Port not found",
                "Проверьте кабель и имя порта (COM-порт в диспетчере устройств, /dev/tty… в Linux).", CALL_ENGINEER),
            PortBusy => ("link.port_busy", "Порт занят другой программой", "Port is used by another program",
                "Закройте другую кассовую программу или драйвер (тест драйвера, ККМ-сервер), затем повторите.",
                "Закройте другую кассовую программу; если не помогло — позовите мастера."),
            PermissionDenied => ("link.permission_denied", "Нет доступа к порту", "Permission denied on the port",
                "Запустите агент от имени пользователя с доступом к порту (в Linux: группа dialout).",
                "Позовите мастера: агенту не хватает прав на порт ККТ."),
            NoAnswer => ("link.no_answer", "Нет связи с ККТ: устройство не отвечает", "No link: the device does not answer",
                "Проверьте, что ККТ включена, кабель подключён, скорость и протокол порта верны (kkm-agent device … detect).",
                CALL_ENGINEER),
            Disconnected => ("link.disconnected", "Связь с ККТ прервана", "The link to the device was lost",
                "Проверьте кабель или сеть; агент переподключится сам.",
                "Проверьте кабель и питание ККТ: агент переподключится сам. Если не помогло — позовите мастера."),
            Garbled => ("link.garbled", "ККТ отвечает непонятными данными", "The device answers with garbled data",
                "Вероятно, неверная скорость или протокол. Запустите определение: kkm-agent device … detect.",
                "Перезагрузите ККТ; если не помогло — позовите мастера."),
            Io => ("link.io", "Ошибка ввода-вывода порта", "Port I/O error",
                "Переподключите кабель; при повторении перезагрузите ККТ.",
                "Переподключите кабель ККТ; если не помогло — перезагрузите ККТ."),
        };
        ErrorInfo { code, condition: Condition::Other, title_ru: ru, title_en: en, action_ru: action, cashier_action_ru: cashier }
    }
}

/// A driver error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DriverError {
    #[error("{}: {detail}", failure.info().title_en)]
    Link { failure: LinkFailure, detail: String },
    /// The device answered with a well-formed error code.
    #[error("device error {} ({family}): {}", raw_text(*family, *raw), info.title_en)]
    Device { family: ProtocolFamily, raw: u16, info: ErrorInfo },
    /// The device's answer broke the protocol (wrong length, unexpected command echo).
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("not supported by this device: {0}")]
    Unsupported(&'static str),
    /// The operation may exist on the device, but no public source confirms how to ask
    /// for it in this protocol profile, so the driver refuses rather than guess.
    #[error("not supported by the {profile} device profile: {what}")]
    NotInProfile { profile: &'static str, what: &'static str },
}

impl DriverError {
    pub fn link(failure: LinkFailure, detail: impl Into<String>) -> Self {
        DriverError::Link { failure, detail: detail.into() }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            DriverError::Link { failure, .. } => match failure {
                LinkFailure::PortNotFound | LinkFailure::PermissionDenied => ErrorClass::Transient,
                _ => ErrorClass::Transient,
            },
            DriverError::Device { info, .. } => info.condition.class(),
            DriverError::Protocol(_) => ErrorClass::Transient,
            DriverError::Invalid(_) | DriverError::Unsupported(_) | DriverError::NotInProfile { .. } => ErrorClass::Rejected,
        }
    }

    pub fn condition(&self) -> Option<Condition> {
        match self {
            DriverError::Device { info, .. } => Some(info.condition),
            DriverError::NotInProfile { .. } => Some(Condition::Unsupported),
            _ => None,
        }
    }

    /// Link-level trouble: the command may or may not have run on the device.
    pub fn is_link(&self) -> bool {
        matches!(self, DriverError::Link { .. } | DriverError::Protocol(_))
    }

    pub fn code(&self) -> &'static str {
        match self {
            DriverError::Link { failure, .. } => failure.info().code,
            DriverError::Device { info, .. } => info.code,
            DriverError::Protocol(_) => "link.protocol",
            DriverError::Invalid(v) => v.code,
            DriverError::Unsupported(_) => "device.unsupported",
            DriverError::NotInProfile { .. } => "device.not_in_profile",
        }
    }

    pub fn title_ru(&self) -> String {
        match self {
            DriverError::Link { failure, .. } => failure.info().title_ru.to_string(),
            // The raw code stays in `title_en` and the logs: no raw codes in Russian
            // sentences, which the cashier's page shows.
            DriverError::Device { info, .. } => info.title_ru.to_string(),
            DriverError::Protocol(_) => "Нарушение протокола обмена с ККТ".into(),
            DriverError::Invalid(v) => v.ru.clone(),
            DriverError::Unsupported(what) => format!("ККТ не поддерживает: {what}"),
            DriverError::NotInProfile { profile, what } => {
                format!("Не поддерживается профилем {profile}: {what} (вызов не подтверждён открытыми источниками)")
            }
        }
    }

    pub fn title_en(&self) -> String {
        match self {
            DriverError::Invalid(v) => v.en.clone(),
            other => other.to_string(),
        }
    }

    pub fn action_ru(&self) -> &'static str {
        match self {
            DriverError::Link { failure, .. } => failure.info().action_ru,
            DriverError::Device { info, .. } => info.action_ru,
            DriverError::Protocol(_) => {
                "Проверьте скорость порта и протокол (kkm-agent device … detect); при повторении перезагрузите ККТ."
            }
            DriverError::Invalid(_) => "Исправьте данные чека в кассовой программе.",
            DriverError::Unsupported(_) => "Обновите прошивку ККТ или выберите другую операцию.",
            DriverError::NotInProfile { .. } => {
                "Выполните операцию в меню кассира на самой ККТ и отразите её в учёте вручную; агент не отправляет ККТ неподтверждённые команды."
            }
        }
    }

    /// [`Self::action_ru`] in the cashier's words: no commands, settings or Latin words.
    pub fn cashier_action_ru(&self) -> &'static str {
        match self {
            DriverError::Link { failure, .. } => failure.info().cashier_action_ru,
            DriverError::Device { info, .. } => info.cashier_action_ru,
            DriverError::Protocol(_) => "Перезагрузите ККТ; если не помогло — позовите мастера.",
            _ => self.action_ru(),
        }
    }

    /// Maps an OS error from opening or using a port.
    pub fn from_io(e: &std::io::Error, port: &str) -> Self {
        use std::io::ErrorKind::*;
        let failure = match e.kind() {
            NotFound => LinkFailure::PortNotFound,
            PermissionDenied => LinkFailure::PermissionDenied,
            ConnectionRefused | ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                LinkFailure::Disconnected
            }
            TimedOut | WouldBlock => LinkFailure::NoAnswer,
            _ if e.raw_os_error() == Some(16) => LinkFailure::PortBusy, // EBUSY (Unix)
            _ if e.raw_os_error() == Some(5) && cfg!(windows) => LinkFailure::PortBusy, // ERROR_ACCESS_DENIED
            _ => LinkFailure::Io,
        };
        DriverError::link(failure, format!("{port}: {e}"))
    }
}

/// A device's code as its protocol writes it: hex for the binary protocols, decimal for
/// the УМКА JSON API (`"result":106`).
fn raw_text(family: ProtocolFamily, raw: u16) -> String {
    match family {
        ProtocolFamily::Umka => raw.to_string(),
        _ => format!("{raw:#04x}"),
    }
}

/// A shorthand for driver results.
pub type DriverResult<T> = Result<T, DriverError>;

/// The rule every cashier text keeps: no Latin word (a command, a setting, an English
/// term) of two letters or more. Abbreviations such as ККТ, ФН, ОФД are Cyrillic.
pub fn is_plain_for_cashier(text: &str) -> bool {
    !text.split(|c: char| !c.is_ascii_alphabetic()).any(|w| w.len() >= 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_failures_give_the_cashier_plain_words_and_the_engineer_the_command() {
        use LinkFailure::*;
        for f in [PortNotFound, PortBusy, PermissionDenied, NoAnswer, Disconnected, Garbled, Io] {
            let i = f.info();
            assert!(is_plain_for_cashier(i.cashier_action_ru), "{}: {}", i.code, i.cashier_action_ru);
            assert!(!i.cashier_action_ru.is_empty() && !i.action_ru.is_empty(), "{}", i.code);
        }
        let e = DriverError::link(NoAnswer, "COM3: timed out");
        assert!(e.action_ru().contains("kkm-agent device … detect"), "{}", e.action_ru());
        assert_eq!(e.cashier_action_ru(), CALL_ENGINEER);
        assert!(is_plain_for_cashier(DriverError::Protocol("x".into()).cashier_action_ru()));
    }

    #[test]
    fn a_device_code_is_named_in_english_only() {
        let info = crate::error_info!("device.shift_closed", ShiftClosed, "Смена не открыта", "Shift not open", "Откройте смену.");
        let e = DriverError::Device { family: ProtocolFamily::Shtrih, raw: 0x3D, info };
        assert_eq!(e.title_ru(), "Смена не открыта");
        assert!(e.title_en().contains("0x3d"), "{}", e.title_en());
    }

    #[test]
    fn the_plain_text_rule() {
        assert!(is_plain_for_cashier("Проверьте ККТ и ФН; позовите мастера."));
        assert!(!is_plain_for_cashier("Запустите kkm-agent device … detect"));
        assert!(!is_plain_for_cashier("timezone = \"+05:00\""));
    }
}
