//! ATOL error codes, each explained in Russian with the action to take.
//!
//! Codes are from public ATOL client libraries' error tables (decimal there, hex here).
//! ATOL units have no "shift closed" error: they open the shift on the first receipt.
//! Our Neva-01-F profile refuses instead (mode error 0x66), and the driver reports it as
//! [`SHIFT_CLOSED`] after checking the status, so the queue can apply its policy.

use kkm_core::error::{DriverError, ErrorInfo};
use kkm_core::ProtocolFamily;

use kkm_core::error_info as e;

const FIX_DATA: &str = "Проверьте данные чека в программе; при повторении сообщите разработчикам программы.";
const CALL_SERVICE: &str = "Перезагрузите ККТ; если ошибка повторяется — обратитесь в сервисный центр.";

pub const SHIFT_CLOSED: ErrorInfo = e!("device.shift_closed", ShiftClosed, "Смена не открыта", "The shift is not open", "Откройте смену (агент делает это сам, если разрешено настройкой).");

pub fn info(code: u8) -> ErrorInfo {
    match code {
        0x08 => e!("device.price_invalid", BadRequest, "Неверная цена", "Wrong price", FIX_DATA),
        0x0A => e!("device.quantity_invalid", BadRequest, "Неверное количество", "Wrong quantity", FIX_DATA),
        0x13 => e!("device.bad_format", BadRequest, "Неверный формат команды", "Bad command format", FIX_DATA),
        0x14 => e!("device.bad_length", BadRequest, "Неверная длина данных", "Bad data length", FIX_DATA),
        0x3D => e!("device.item_not_found", BadRequest, "Товар не найден", "Item not found", FIX_DATA),
        0x66 => e!("device.not_in_mode", Other, "Команда не выполняется в текущем режиме ККТ", "Command not allowed in this mode", "Проверьте состояние ККТ (kkm-agent device … status); при повторении перезагрузите ККТ.", "Перезагрузите ККТ; если ошибка повторяется — позовите мастера."),
        0x67 => e!("device.paper_out", PaperOut, "Нет бумаги", "Out of paper", "Вставьте новый рулон чековой ленты и закройте крышку."),
        0x68 => e!("device.no_printer", PrinterFailure, "Нет связи с принтером чеков", "No link to the receipt printer", CALL_SERVICE),
        0x69 => e!("device.printer_mechanical", PrinterFailure, "Механическая ошибка принтера", "Printer mechanical error", "Откройте крышку, проверьте бумагу и отрезчик, закройте крышку."),
        0x6A => e!("device.wrong_receipt_type", BadRequest, "Неверный тип чека", "Wrong receipt type", FIX_DATA),
        0x71 => e!("device.non_cash_exceeds", BadRequest, "Безналичная оплата больше суммы чека", "Non-cash payments exceed the total", FIX_DATA),
        0x72 => e!("device.payments_short", BadRequest, "Сумма оплат меньше суммы чека", "Payments are less than the total", FIX_DATA),
        0x7A => e!("device.unsupported", Unsupported, "Эта модель ККТ не выполняет команду", "This model cannot execute the command", "Проверьте модель и протокол в настройках (kkm-agent device … detect).", "Позовите мастера: эта модель ККТ не выполняет операцию."),
        0x7D => e!("device.department_invalid", BadRequest, "Неверная секция", "Wrong section", FIX_DATA),
        0x7E => e!("device.payment_type_invalid", BadRequest, "Неверный вид оплаты", "Wrong payment type", "Проверьте настройку видов оплаты в ККТ и данные чека."),
        0x81 => e!("device.receipt_overflow", BadRequest, "Переполнение итога чека", "Receipt total overflow", "Разбейте покупку на несколько чеков."),
        0x86 => e!("device.tendered_short", BadRequest, "Внесённая сумма меньше суммы чека", "Tendered less than the total", FIX_DATA),
        0x88 => e!("device.shift_expired", ShiftExpired, "Смена превысила 24 часа", "Shift is over 24 hours", "Снимите Z-отчёт (закройте смену) и откройте новую."),
        0x8C | 0xA4 => e!("device.wrong_password", WrongPassword, "Неверный пароль", "Wrong password", "Проверьте пароль в настройках агента."),
        0x98 => e!("device.not_enough_cash", NotEnoughCash, "В ККТ нет денег для выплаты", "Not enough cash for the payout", "Уменьшите сумму выплаты или возврата наличными."),
        0x9A => e!("device.receipt_closed", ReceiptClosed, "Чек закрыт — операция невозможна", "Receipt is closed", "Повторите операцию."),
        0x9B => e!("device.receipt_open", ReceiptOpen, "Чек открыт — операция невозможна", "A receipt is open", "Агент отменит незавершённый чек сам."),
        0x9C => e!("device.shift_open", ShiftAlreadyOpen, "Смена открыта — операция невозможна", "Shift is open", "Закройте смену (Z-отчёт), если операция требует закрытой смены."),
        0xA8 => e!("device.not_fiscalised", FnFailure, "ККТ не фискализирована", "The device is not fiscalised", "Зарегистрируйте ККТ."),
        0xD4 => e!("device.fn_wrong_state", FnFailure, "Неверное состояние ФН", "Wrong FN state", "Проверьте ФН (kkm-agent device … check).", "Позовите мастера: нужно проверить ФН."),
        0xD5 => e!("device.fn_fatal", FnFailure, "Неисправимая ошибка ФН", "Fatal FN error", "Обратитесь в сервисный центр: нужна замена ФН."),
        0xD7 => e!("device.fn_expired", FnExhausted, "Закончен срок эксплуатации ФН", "FN lifetime is over", "Замените ФН и перерегистрируйте ККТ."),
        0xD8 => e!("device.fn_archive_full", FnExhausted, "Архив ФН переполнен", "FN archive full", "Замените ФН и перерегистрируйте ККТ."),
        0xD9 => e!("device.fn_bad_datetime", ClockProblem, "В ФН переданы неверные дата или время", "Wrong date or time for the FN", "Проверьте часы ККТ и компьютера."),
        0xDA => e!("device.fn_no_data", BadRequest, "В ФН нет запрошенных данных", "No such data in the FN", "Проверьте номер документа."),
        0xE7 => e!("device.fn_bad_params", BadRequest, "Некорректные параметры команды ФН", "Bad FN command parameters", FIX_DATA),
        0xE8 => e!("device.fn_tlv_too_large", BadRequest, "Превышен размер данных чека", "TLV data too large", "Сократите наименования или число позиций."),
        0xE9 => e!("device.fn_no_transport", OfdBlocked, "Нет транспортного соединения ФН", "No FN transport connection", "Проверьте интернет у ККТ и адрес ОФД."),
        0xEA => e!("device.fn_crypto_exhausted", FnExhausted, "Исчерпан ресурс криптопроцессора ФН", "FN crypto resource exhausted", "Замените ФН."),
        0xEB => e!("device.fn_ofd_storage", OfdBlocked, "Исчерпан ресурс хранения документов для ОФД", "FN storage for the OFD exhausted", "Восстановите связь с ОФД и дождитесь отправки документов."),
        0xED => e!("device.fn_unsent_documents", Other, "В ФН есть неотправленные в ОФД документы: операция невозможна", "The FN holds documents not yet sent to the OFD", "Дождитесь отправки документов в ОФД (проверьте интернет у ККТ), затем повторите операцию."),
        0xEF => e!("device.ofd_overdue", OfdBlocked, "Документы не передаются в ОФД больше 30 дней: исчерпан ресурс ожидания, ФН заблокирован", "OFD exchange overdue by 30 days: FN blocked", "Восстановите связь с ОФД (интернет, адрес и порт ОФД, договор) и дождитесь отправки."),
        0xF0 => e!("device.fn_shift_expired", ShiftExpired, "Смена в ФН длится больше 24 часов", "FN shift over 24 hours", "Снимите Z-отчёт (закройте смену)."),
        0xF1 => e!("device.fn_bad_interval", ClockProblem, "Неверный интервал времени между операциями ФН", "Bad time interval between FN operations", "Проверьте часы ККТ."),
        _ => e!("device.unknown_error", Other, "Неизвестная ошибка ККТ", "Unknown device error", CALL_SERVICE),
    }
}

pub fn device_error(code: u8) -> DriverError {
    DriverError::Device { family: ProtocolFamily::Atol, raw: u16::from(code), info: info(code) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_cashier_action_is_plain_russian() {
        for code in 0..=u8::MAX {
            let i = super::info(code);
            assert!(kkm_core::error::is_plain_for_cashier(i.cashier_action_ru), "{code:#04x}: {}", i.cashier_action_ru);
            assert!(kkm_core::error::is_plain_for_cashier(i.title_ru), "{code:#04x}: {}", i.title_ru);
        }
        assert!(super::info(0x7A).action_ru.contains("kkm-agent"), "the engineer keeps the command");
    }
}
