//! The УМКА API's error codes (`document.result`), explained in Russian with the action.
//!
//! Sources (see `protocol-specs/umka.md`):
//! * seen in public captures and clients: 10 «Неверное количество», 102 «Ошибка
//!   транспортного соединения ФН», 106 «Неверный тип чека», and 136, which a client
//!   handles as "shift over 24 hours";
//! * a third-party summary says the codes follow ATOL's protocol 3.1. Three of the four
//!   seen codes agree with ATOL's table read in decimal (0x0A, 0x6A, 0x88); 102 does not
//!   (ATOL 0x66 is "not in this mode"). So codes other than these four are explained by
//!   the ATOL table — **unconfirmed** for this API — and 102 by what the device said.
//!
//! HTTP 401 is not a device code: the cashier number or password in the config is wrong.

use kkm_core::error::{DriverError, ErrorInfo};
use kkm_core::error_info as e;
use kkm_core::ProtocolFamily;

const FIX_DATA: &str = "Проверьте данные чека в программе; при повторении сообщите разработчикам программы.";

/// HTTP 401 Unauthorized: a configuration error, never a link problem.
pub const WRONG_CREDENTIALS: ErrorInfo = e!(
    "config.device_credentials",
    WrongPassword,
    "ККТ отклонила номер или пароль кассира",
    "The device refused the cashier number or password (HTTP 401)",
    "Проверьте cashier и cashier_password у этой ККТ в настройках агента (по умолчанию кассиры 1–99 с паролем, равным номеру; 99 — администратор; пароль — только цифры, не длиннее 8).",
    "Позовите мастера: в настройках агента неверный номер или пароль кассира для этой ККТ."
);

/// The code a fiscalising answer gave, explained.
pub fn info(code: i64) -> ErrorInfo {
    match code {
        10 => e!("device.quantity_invalid", BadRequest, "Неверное количество", "Wrong quantity", FIX_DATA),
        102 => e!(
            "device.fn_transport",
            FnFailure,
            "Ошибка транспортного соединения ФН",
            "FN transport connection error",
            "Проверьте ФН и связь ККТ (kkm-agent device … check); перезагрузите ККТ. Если ошибка повторяется — обратитесь в сервисный центр.",
            "Перезагрузите ККТ; если ошибка повторяется — позовите мастера."
        ),
        106 => e!("device.wrong_receipt_type", BadRequest, "Неверный тип чека", "Wrong receipt type", FIX_DATA),
        136 => e!(
            "device.shift_expired",
            ShiftExpired,
            "Смена превысила 24 часа",
            "Shift is over 24 hours",
            "Снимите Z-отчёт (закройте смену) и откройте новую."
        ),
        1..=255 => kkm_atol::errors::info(code as u8),
        _ => kkm_atol::errors::info(0xFF),
    }
}

/// The device's error for `code`; `text` is what the device said (logged: our table's
/// text is the stable one).
pub fn device_error(code: i64, text: &str) -> DriverError {
    if !text.is_empty() {
        tracing::warn!(code, "УМКА refused: {text}");
    }
    DriverError::Device { family: ProtocolFamily::Umka, raw: u16::try_from(code).unwrap_or(u16::MAX), info: info(code) }
}

pub fn wrong_credentials() -> DriverError {
    DriverError::Device { family: ProtocolFamily::Umka, raw: 401, info: WRONG_CREDENTIALS }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kkm_core::{Condition, ErrorClass};

    #[test]
    fn seen_codes() {
        assert_eq!(info(10).code, "device.quantity_invalid");
        assert_eq!(info(102).condition, Condition::FnFailure);
        assert_eq!(info(106).code, "device.wrong_receipt_type");
        assert_eq!(info(136).condition, Condition::ShiftExpired);
        assert_eq!(info(103).condition, Condition::PaperOut, "ATOL 0x67, unconfirmed");
        assert_eq!(info(-5).code, "device.unknown_error");
        assert_eq!(info(70_000).code, "device.unknown_error");
        let e = wrong_credentials();
        assert_eq!(e.code(), "config.device_credentials");
        assert_eq!(e.class(), ErrorClass::NeedsAttention);
        assert!(!e.is_link(), "a wrong password is not 'no device'");
    }

    #[test]
    fn every_cashier_action_is_plain_russian() {
        use kkm_core::error::is_plain_for_cashier;
        for code in (-1..=300).chain([70_000]) {
            let i = info(code);
            assert!(is_plain_for_cashier(i.cashier_action_ru) && is_plain_for_cashier(i.title_ru), "{code}: {i:?}");
        }
        assert!(is_plain_for_cashier(WRONG_CREDENTIALS.cashier_action_ru) && is_plain_for_cashier(WRONG_CREDENTIALS.title_ru));
        assert!(WRONG_CREDENTIALS.action_ru.contains("cashier_password"), "the engineer keeps the setting's name");
    }
}
