//! Shtrih-M error codes, each explained in Russian with the action to take.
//!
//! On FN models codes 0x01–0x20 come from the fiscal storage. The [`Condition`] of each
//! entry decides what the queue does; the texts are what the cashier reads.

use kkm_core::error::{DriverError, ErrorInfo};
use kkm_core::ProtocolFamily;

use kkm_core::error_info as e;

const CALL_SERVICE: &str = "Перезагрузите ККТ; если ошибка повторяется — обратитесь в сервисный центр.";
const FIX_DATA: &str = "Проверьте данные чека в программе; при повторении сообщите разработчикам программы.";

/// Looks up a raw error code.
pub fn info(code: u8) -> ErrorInfo {
    match code {
        0x01 => e!("device.fn_bad_command", BadRequest, "ФН: неизвестная команда или неверный формат", "FN: unknown command or bad format", FIX_DATA),
        0x02 => e!("device.fn_wrong_state", FnFailure, "Неверное состояние ФН", "Wrong FN state", "Проверьте регистрацию ККТ и состояние ФН (kkm-agent device … check).", "Позовите мастера: нужно проверить ФН и регистрацию ККТ."),
        0x03 => e!("device.fn_failure", FnFailure, "Отказ ФН", "FN failure", "Обратитесь в сервисный центр: возможно, нужна замена ФН."),
        0x04 => e!("device.fn_crypto_failure", FnFailure, "Отказ криптопроцессора ФН", "FN crypto failure", "Обратитесь в сервисный центр: нужна замена ФН."),
        // [V117] table of errors and [FNS] 1.2.06: 05h is "parameters do not fit the ФН's
        // lifetime" (e.g. a date beyond the ФН's validity), not "ФН expired".
        0x05 => e!("device.fn_lifetime_params", FnExhausted, "Параметры команды не соответствуют сроку жизни ФН", "Command parameters do not fit the FN's lifetime", "Проверьте дату и время ККТ и срок действия ФН (kkm-agent device … fn); если срок ФН истёк — замените ФН и перерегистрируйте ККТ.", "Позовите мастера: нужно проверить дату и время ККТ и срок ФН."),
        0x06 => e!("device.fn_archive_full", FnExhausted, "Архив ФН переполнен", "FN archive is full", "Замените ФН и перерегистрируйте ККТ."),
        0x07 => e!("device.fn_bad_datetime", ClockProblem, "Неверные дата или время", "Wrong date or time", "Проверьте часы ККТ и компьютера; установите верное время при закрытой смене."),
        0x08 => e!("device.fn_no_data", BadRequest, "Нет запрошенных данных в ФН", "No such data in the FN", "Проверьте номер документа."),
        0x09 => e!("device.fn_bad_params", BadRequest, "Некорректные параметры команды ФН", "Bad FN command parameters", FIX_DATA),
        0x10 => e!("device.fn_tlv_too_large", BadRequest, "Превышен размер данных документа", "Document data (TLV) too large", "Сократите наименования или число позиций в чеке."),
        0x11 => e!("device.fn_no_transport", OfdBlocked, "Нет транспортного соединения с ОФД", "No transport connection to the OFD", "Проверьте интернет у ККТ и адрес ОФД в настройках."),
        0x12 => e!("device.fn_resource_exhausted", FnExhausted, "Исчерпан ресурс ФН", "FN resource exhausted", "Замените ФН и перерегистрируйте ККТ."),
        // [V117], [FNS] 1.2: 14h "ресурс ФН ограничен" is also how ФН 1.2 reports the
        // 30-day ОФД block.
        0x14 => e!("device.ofd_resource_limited", OfdBlocked, "Ограничение ресурса ФН: исчерпан ресурс хранения документов для ОФД (в т. ч. документы не передаются в ОФД больше 30 дней)", "FN resource limited: storage for OFD documents is exhausted (e.g. nothing sent to the OFD for 30 days)", "Восстановите связь с ОФД (интернет, адрес и порт ОФД, договор с ОФД) и дождитесь отправки документов."),
        // Not in [V117] nor [FNS] 1.2.06; earlier ФН answered it for the 30-day block
        // ([PYS] `excepts.py`). Kept for such units.
        0x15 => e!("device.ofd_overdue", OfdBlocked, "Исчерпан ресурс ожидания передачи сообщения в ОФД (ФН до версии 1.2)", "OFD message wait exhausted (FN before 1.2)", "Восстановите связь с ОФД (интернет, адрес и порт ОФД, договор с ОФД) и дождитесь отправки документов."),
        0x16 => e!("device.fn_shift_expired", ShiftExpired, "Смена в ФН длится больше 24 часов", "FN shift over 24 hours", "Снимите Z-отчёт (закройте смену) и откройте новую."),
        0x17 => e!("device.fn_bad_interval", ClockProblem, "Неверный интервал времени между документами", "Bad time interval between documents", "Проверьте часы ККТ: время не должно идти назад."),
        0x20 => e!("device.ofd_refused", OfdBlocked, "ОФД не принял сообщение", "The OFD refused the message", "Проверьте договор с ОФД и регистрацию ККТ."),
        0x2F => e!("device.fn_timeout", FnFailure, "Таймаут обмена с ФН", "FN exchange timeout", CALL_SERVICE),
        0x30 => e!("device.fn_not_responding", FnFailure, "ФН не отвечает", "FN not responding", CALL_SERVICE),
        0x33 => e!("device.bad_params", BadRequest, "Некорректные параметры команды", "Bad command parameters", FIX_DATA),
        0x34 => e!("device.no_data", BadRequest, "Нет данных", "No data", "Проверьте запрос."),
        0x35 => e!("device.bad_param_for_settings", BadRequest, "Параметр не подходит к настройкам ККТ", "Parameter does not fit the device settings", "Проверьте настройки ККТ (налоги, отделы) и данные чека."),
        0x36 => e!("device.bad_params_impl", BadRequest, "Параметры не поддерживаются этой ККТ", "Parameters not supported by this device", FIX_DATA),
        0x37 => e!("device.unsupported", Unsupported, "Команда не поддерживается этой ККТ", "Command not supported", "Обновите прошивку ККТ или проверьте модель в настройках агента."),
        0x3C => e!("device.shift_open", ShiftAlreadyOpen, "Смена открыта — операция невозможна", "Shift is open: operation impossible", "Закройте смену (Z-отчёт), если операция требует закрытой смены."),
        0x3D => e!("device.shift_closed", ShiftClosed, "Смена не открыта — операция невозможна", "Shift is not open", "Откройте смену (агент делает это сам, если разрешено настройкой)."),
        0x45 => e!("device.payments_short", BadRequest, "Сумма оплат меньше итога чека", "Payments are less than the receipt total", FIX_DATA),
        0x46 => e!("device.not_enough_cash", NotEnoughCash, "Не хватает наличности в кассе", "Not enough cash in the drawer", "Уменьшите сумму выплаты или возврата наличными."),
        0x48 => e!("device.receipt_overflow", BadRequest, "Переполнение итога чека", "Receipt total overflow", "Разбейте покупку на несколько чеков."),
        0x49 => e!("device.wrong_receipt_type", BadRequest, "Операция невозможна в чеке этого типа", "Operation impossible in this receipt type", FIX_DATA),
        0x4A => e!("device.receipt_open", ReceiptOpen, "Открыт чек — операция невозможна", "A receipt is open", "Агент отменит незавершённый чек сам; если чек пробивали вручную — завершите его на ККТ."),
        0x4B => e!("device.receipt_buffer_full", BadRequest, "Буфер чека переполнен", "Receipt buffer full", "Уменьшите число позиций в чеке."),
        0x4D => e!("device.non_cash_exceeds", BadRequest, "Безналичная оплата больше итога чека", "Non-cash payment exceeds the total", FIX_DATA),
        0x4E => e!("device.shift_expired", ShiftExpired, "Смена превысила 24 часа", "Shift is over 24 hours", "Снимите Z-отчёт (закройте смену) и откройте новую."),
        0x4F => e!("device.wrong_password", WrongPassword, "Неверный пароль", "Wrong password", "Проверьте пароль оператора и администратора в настройках агента."),
        0x50 => e!("device.busy_printing", DeviceBusy, "Идёт печать предыдущей команды", "Still printing the previous command", "Подождите окончания печати."),
        0x55 => e!("device.receipt_closed", ReceiptClosed, "Чек закрыт — операция невозможна", "Receipt is closed", "Повторите операцию."),
        0x56 => e!("device.nothing_to_repeat", BadRequest, "Нет документа для повтора", "No document to repeat", "Копию напечатать нельзя: документа нет."),
        0x58 => e!("device.awaiting_continue", AwaitingContinue, "Ожидание команды продолжения печати", "Waiting for continue-print", "Агент сам допечатает прерванный документ; если бумаги нет, вставьте новый рулон."),
        0x59 => e!("device.other_operator", ReceiptOpen, "Документ открыт другим оператором", "Document opened by another operator", "Завершите или отмените документ на ККТ."),
        0x5E => e!("device.wrong_operation", BadRequest, "Некорректная операция", "Wrong operation", FIX_DATA),
        0x5F => e!("device.negative_total", BadRequest, "Отрицательный итог чека", "Negative receipt total", FIX_DATA),
        0x61 => e!("device.price_range", BadRequest, "Цена вне допустимого диапазона", "Price out of range", FIX_DATA),
        0x62 => e!("device.quantity_range", BadRequest, "Количество вне допустимого диапазона", "Quantity out of range", FIX_DATA),
        0x63 => e!("device.department_range", BadRequest, "Отдел вне допустимого диапазона", "Department out of range", FIX_DATA),
        0x6B => e!("device.paper_out", PaperOut, "Нет чековой ленты", "Out of receipt paper", "Вставьте новый рулон чековой ленты и закройте крышку."),
        0x71 => e!("device.cutter_error", PrinterFailure, "Ошибка отрезчика", "Cutter error", "Откройте крышку, уберите замятую бумагу, закройте крышку."),
        0x72 => e!("device.not_in_submode", DeviceBusy, "Команда не поддерживается в этом подрежиме", "Command not supported in this submode", "Подождите окончания печати или вставьте бумагу."),
        0x73 => e!("device.not_in_mode", BadRequest, "Команда не поддерживается в этом режиме", "Command not supported in this mode", "Проверьте состояние ККТ (kkm-agent device … status).", "Перезагрузите ККТ; если ошибка повторяется — позовите мастера."),
        0x7E => e!("device.bad_length", BadRequest, "Неверная длина поля", "Bad field length", FIX_DATA),
        0x94 => e!("device.receipt_operations_limit", BadRequest, "Исчерпан лимит операций в чеке", "Operation limit per receipt reached", "Разбейте покупку на несколько чеков."),
        0xA0 => e!("device.marking_forbidden", BadRequest, "ФН: работа с маркированными товарами запрещена", "FN: marked goods are not enabled", "ФН активирован без признака работы с маркированными товарами: проверьте регистрацию ККТ или не продавайте маркированный товар на этой кассе."),
        0xA1 => e!("device.marking_sequence", BadRequest, "ФН: неверная последовательность команд проверки кодов маркировки", "FN: wrong sequence of marking-code commands", FIX_DATA),
        0xA2 => e!("device.marking_blocked", OfdBlocked, "ФН: работа с маркированными товарами временно заблокирована (переполнено хранилище уведомлений)", "FN: marked goods temporarily blocked (notification storage full)", "Восстановите связь с ОФД и дождитесь отправки уведомлений о реализации маркированных товаров."),
        0xA3 => e!("device.marking_table_full", BadRequest, "ФН: переполнена таблица проверки кодов маркировки (не больше 128 кодов в чеке)", "FN: marking-code check table is full (at most 128 codes per receipt)", "Разбейте покупку на несколько чеков."),
        0xA4 => e!("device.marking_tlv_missing", BadRequest, "ФН: в данных чека нет обязательных реквизитов", "FN: required requisites missing in the TLV block", FIX_DATA),
        0xA5 => e!("device.marking_not_checked", BadRequest, "ФН: код маркировки в реквизите 2007 не проверялся в ФН", "FN: the marking code in tag 2007 was not checked by the FN", FIX_DATA),
        0x8E => e!("device.zero_total", BadRequest, "Нулевой итог чека", "Zero receipt total", FIX_DATA),
        0xC0 => e!("device.confirm_datetime", ClockProblem, "Требуется подтвердить дату и время", "Date and time must be confirmed", "Подтвердите дату и время на ККТ или через сервисную программу."),
        0xC8 => e!("device.no_printer", PrinterFailure, "Нет связи с принтером ККТ", "No link to the printer", CALL_SERVICE),
        _ => e!("device.unknown_error", Other, "Неизвестная ошибка ККТ", "Unknown device error", CALL_SERVICE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fn_1_2_codes_from_the_vendor_table() {
        assert_eq!(info(0x05).code, "device.fn_lifetime_params");
        assert!(info(0x05).title_ru.contains("сроку жизни ФН"));
        assert_eq!(info(0x14).code, "device.ofd_resource_limited");
        for code in [0x94, 0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5] {
            let i = info(code);
            assert_ne!(i.code, "device.unknown_error", "{code:#04x}");
            assert!(!i.title_ru.is_empty() && !i.title_en.is_empty() && !i.action_ru.is_empty(), "{code:#04x}");
        }
    }

    #[test]
    fn every_cashier_action_is_plain_russian() {
        for code in 0..=u8::MAX {
            let i = info(code);
            assert!(kkm_core::error::is_plain_for_cashier(i.cashier_action_ru), "{code:#04x}: {}", i.cashier_action_ru);
            assert!(kkm_core::error::is_plain_for_cashier(i.title_ru), "{code:#04x}: {}", i.title_ru);
        }
        assert!(info(0x73).action_ru.contains("kkm-agent"), "the engineer keeps the command");
    }
}

/// The driver error for a non-zero error byte.
pub fn device_error(code: u8) -> DriverError {
    DriverError::Device { family: ProtocolFamily::Shtrih, raw: u16::from(code), info: info(code) }
}
