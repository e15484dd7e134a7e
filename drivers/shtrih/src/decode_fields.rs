//! Names and fields of Shtrih-M commands for `kkm-agent decode`.
//!
//! Command names follow `protocol-specs/shtrih-m.md` §3 (each with its [V117] section);
//! the fields are read with the driver's own readers ([`crate::codec::Reader`],
//! [`crate::driver::FullStatus`]) in the layouts of that table. A command the table
//! does not lay out is shown with its name and raw bytes. A field that runs past the
//! end of the frame becomes a note, never a panic.

use crate::codec::{from_cp1251, read_fn_datetime, Reader, ShtrihFields, Short};
use crate::commands::*;
use crate::errors;
use kkm_core::capture::{datetime, hex, DecodedFrame, Direction, FrameError, FrameKind};
use kkm_core::Money;

/// The command's Russian and English name, if we know it.
pub fn command_name(cmd: u16) -> Option<(&'static str, &'static str)> {
    Some(match cmd {
        SHORT_STATUS => ("короткий запрос состояния", "short status"),
        FULL_STATUS => ("запрос состояния", "full status"),
        LONG_SERIAL => ("длинный заводской номер и РНМ", "long serial and RNM"),
        BEEP => ("гудок", "beep"),
        PRINT_STRING => ("печать строки", "print string"),
        CASH_REGISTER => ("запрос денежного регистра", "read cash register"),
        OPERATING_REGISTER => ("запрос операционного регистра", "read operating register"),
        READ_TABLE => ("чтение таблицы", "read table"),
        CUT => ("отрезка чека", "cut"),
        OPEN_DRAWER => ("открыть денежный ящик", "open drawer"),
        FEED => ("протяжка", "feed"),
        X_REPORT => ("X-отчёт", "X report"),
        Z_REPORT => ("Z-отчёт (закрытие смены)", "Z report (close shift)"),
        CASH_IN => ("внесение", "cash in"),
        CASH_OUT => ("выплата", "cash out"),
        SALE => ("продажа", "sale"),
        PURCHASE => ("покупка", "purchase"),
        SALE_RETURN => ("возврат продажи", "sale return"),
        PURCHASE_RETURN => ("возврат покупки", "purchase return"),
        CLOSE_RECEIPT => ("закрытие чека", "close receipt"),
        CANCEL_RECEIPT => ("аннулирование чека", "cancel receipt"),
        SUBTOTAL => ("подытог чека", "receipt subtotal"),
        REPEAT_DOCUMENT => ("повтор документа", "repeat document"),
        OPEN_RECEIPT => ("открыть чек", "open receipt"),
        CONTINUE_PRINT => ("продолжение печати", "continue printing"),
        OPEN_SHIFT => ("открытие смены", "open shift"),
        DEVICE_TYPE => ("получить тип устройства", "get device type"),
        FN_STATUS => ("запрос статуса ФН", "FN status"),
        FN_SERIAL => ("запрос номера ФН", "FN number"),
        FN_EXPIRY => ("запрос срока действия ФН", "FN expiry"),
        FN_REGISTRATION_TOTALS => ("итоги последней регистрации", "last registration totals"),
        FN_FIND_DOCUMENT => ("найти фискальный документ по номеру", "find fiscal document"),
        FN_REGISTRATION_TAG => ("запрос параметра регистрации", "registration report tag"),
        FN_SEND_TLV => ("передать TLV-структуру", "send TLV"),
        FN_OFD_STATUS => ("статус информационного обмена с ОФД", "OFD exchange status"),
        FN_REQUEST_DOCUMENT_TLV => ("запросить документ в TLV", "request document TLV"),
        FN_READ_DOCUMENT_TLV => ("чтение TLV документа", "read document TLV"),
        FN_UNCONFIRMED_COUNT => ("документы без квитанции ОФД", "documents without OFD receipt"),
        FN_SHIFT_PARAMS => ("параметры текущей смены", "current shift parameters"),
        FN_START_SHIFT_OPEN => ("начать открытие смены", "begin opening a shift"),
        FN_START_SHIFT_CLOSE => ("начать закрытие смены", "begin closing a shift"),
        CLOSE_RECEIPT_V2 => ("закрытие чека расширенное (вариант 2)", "close receipt v2"),
        OPERATION_V2 => ("операция в чеке (вариант 2)", "operation v2"),
        FN_SEND_OPERATION_TLV => ("передать TLV, привязанный к операции", "send operation TLV"),
        _ => return None,
    })
}

fn code_text(cmd: u16) -> String {
    if cmd > 0xFF {
        format!("{cmd:04X}h")
    } else {
        format!("{cmd:02X}h")
    }
}

fn title(kind_ru: &str, kind_en: &str, cmd: u16) -> String {
    match command_name(cmd) {
        Some((ru, en)) => format!("{kind_ru} {} «{ru}» ({kind_en} {}: {en})", code_text(cmd), code_text(cmd)),
        None => format!("{kind_ru} {}, команда неизвестна ({kind_en} {}, unknown command)", code_text(cmd), code_text(cmd)),
    }
}

fn money(m: Money) -> String {
    format!("{m} руб. ({} коп.)", m.0)
}

/// A request frame (computer → register).
pub fn request(cmd: u16, params: &[u8], raw: &[u8]) -> DecodedFrame {
    let mut f = DecodedFrame::new(Direction::ToDevice, 0, raw, FrameKind::Frame, title("запрос", "request", cmd));
    let mut r = Reader::new(params, "request");
    if let Err(e) = request_fields(cmd, &mut r, &mut f) {
        f.note(format!("поля обрезаны: {e} (fields cut short)"));
    }
    if r.remaining() > 0 {
        f.field("прочие байты", "other bytes", hex(r.rest()));
    }
    f
}

fn request_fields(cmd: u16, r: &mut Reader, f: &mut DecodedFrame) -> Result<(), Short> {
    if cmd == DEVICE_TYPE {
        return Ok(());
    }
    f.field("пароль", "password", r.u32()?.to_string());
    match cmd {
        CASH_IN | CASH_OUT => f.field("сумма", "sum", money(r.money()?)),
        CASH_REGISTER => {
            let reg = if r.remaining() >= 2 { r.u16()? } else { u16::from(r.u8()?) };
            f.field("регистр", "register", reg.to_string());
        }
        OPERATING_REGISTER => f.field("регистр", "register", r.u8()?.to_string()),
        FN_FIND_DOCUMENT | FN_REQUEST_DOCUMENT_TLV => f.field("номер ФД", "document number", r.u32()?.to_string()),
        FN_REGISTRATION_TAG => {
            f.field("номер отчёта о регистрации", "registration report", r.u8()?.to_string());
            f.field("тег", "tag", r.u16()?.to_string());
        }
        PRINT_STRING => {
            f.field("флаги", "flags", format!("{:02X}", r.u8()?));
            f.field("текст", "text", format!("«{}»", from_cp1251(r.rest())));
        }
        OPERATION_V2 => {
            let op = r.u8()?;
            let op_text = match op {
                1 => "приход (sale)",
                2 => "возврат прихода (sale return)",
                3 => "расход (purchase)",
                4 => "возврат расхода (purchase return)",
                _ => "неизвестно (unknown)",
            };
            f.field("тип операции (1054)", "operation", format!("{op} {op_text}"));
            let q = r.uint(6)?;
            f.field("количество", "quantity", format!("{}.{:06}", q / 1_000_000, q % 1_000_000));
            f.field("цена", "price", money(r.money()?));
            let sum = r.bytes(5)?;
            f.field("сумма", "sum", if sum == [0xFF; 5] { "считает ККТ (computed by the unit)".into() } else { money(Reader::new(sum, "sum").money()?) });
            let tax = r.bytes(5)?;
            f.field("сумма налога", "tax sum", if tax == [0xFF; 5] { "не передана (not given)".into() } else { money(Reader::new(tax, "tax").money()?) });
            let vat = r.u8()?;
            let rate = vat_from_code(vat, VatCodeSet::Shtrih)
                .map(|v| v.label_ru().to_string())
                .or_else(|| vat_from_code(vat, VatCodeSet::Nano).map(|v| format!("{} (коды ШТРИХ-NANO)", v.label_ru())))
                .unwrap_or_else(|| "код не из таблицы (unknown code)".into());
            f.field("налог", "VAT code", format!("{vat:02X} {rate}"));
            f.field("отдел", "department", r.u8()?.to_string());
            f.field("способ расчёта (1214)", "payment method", r.u8()?.to_string());
            f.field("предмет расчёта (1212)", "payment object", r.u8()?.to_string());
            f.field("наименование", "name", format!("«{}»", from_cp1251(r.rest())));
        }
        CLOSE_RECEIPT_V2 => {
            for slot in 1..=16u8 {
                let m = r.money()?;
                if m.0 != 0 {
                    let kind = match slot {
                        1 => "наличные (cash)",
                        2..=13 => "электронно (electronic)",
                        14 => "предоплата (prepayment)",
                        15 => "постоплата (credit)",
                        _ => "встречное предоставление (other)",
                    };
                    f.field("оплата", "payment", format!("вид {slot}, {kind}: {}", money(m)));
                }
            }
            f.field("округление", "rounding", format!("{} коп.", r.u8()?));
            for _ in 0..6 {
                r.money()?;
            }
            f.field("система налогообложения", "tax system bits", format!("{:02X}", r.u8()?));
            let text = from_cp1251(r.rest());
            if !text.is_empty() {
                f.field("текст", "text", format!("«{text}»"));
            }
        }
        FN_SEND_TLV | FN_SEND_OPERATION_TLV => {
            let tag = r.u16()?;
            let len = r.u16()?;
            f.field("тег", "tag", tag.to_string());
            f.field("длина", "length", len.to_string());
            let v = r.bytes(usize::from(len))?;
            // Text tags (1008 contact, 1021 cashier, 1203 cashier's ИНН) are CP866 on
            // this wire ([JPOS] `TLVWriter`; shtrih-m.md §2).
            let value = if matches!(tag, 1008 | 1021 | 1203) {
                format!("«{}» ({})", encoding_rs::IBM866.decode_without_bom_handling(v).0, hex(v))
            } else {
                hex(v)
            };
            f.field("значение", "value", value);
        }
        _ => {}
    }
    Ok(())
}

/// An answer frame (register → computer): the echo, the error byte, the fields.
pub fn answer(cmd: u16, rest: &[u8], raw: &[u8]) -> DecodedFrame {
    let mut f = DecodedFrame::new(Direction::FromDevice, 0, raw, FrameKind::Frame, title("ответ на", "answer to", cmd));
    let Some((&error, data)) = rest.split_first() else {
        f.note("нет байта ошибки: ответ короче положенного (no error byte: the answer is too short)");
        return f;
    };
    if error != 0 {
        f.field("код ошибки", "error code", format!("{error:02X}"));
        f.error = Some(FrameError { raw: error, info: errors::info(error) });
        if !data.is_empty() {
            f.field("прочие байты", "other bytes", hex(data));
        }
        return f;
    }
    f.field("код ошибки", "error code", "00 — нет ошибки (no error)");
    let mut r = Reader::new(data, "answer");
    if let Err(e) = answer_fields(cmd, data, &mut r, &mut f) {
        f.note(format!("поля обрезаны: {e} (fields cut short)"));
    }
    if r.remaining() > 0 {
        f.field("прочие байты", "other bytes", hex(r.rest()));
    }
    f
}

fn yes_no(v: bool) -> String {
    if v { "да (yes)" } else { "нет (no)" }.into()
}

fn mode_text(mode: u8) -> String {
    let m = match mode & 0x0F {
        2 => "смена открыта, меньше 24 часов (shift open < 24 h)",
        3 => "смена открыта больше 24 часов (shift over 24 h)",
        4 => "смена закрыта (shift closed)",
        5 => "блокировка (blocked)",
        6 => "ждёт подтверждения даты (waiting for date confirmation)",
        8 => match mode >> 4 {
            0 => "открыт чек продажи (sale receipt open)",
            1 => "открыт чек покупки (purchase receipt open)",
            2 => "открыт чек возврата продажи (sale return open)",
            3 => "открыт чек возврата покупки (purchase return open)",
            _ => "открыт документ (document open)",
        },
        _ => "прочий (other)",
    };
    format!("{mode:02X} {m}")
}

fn submode_text(sub: u8) -> String {
    let s = match sub {
        0 => "бумага есть (paper present)",
        1 => "нет бумаги (out of paper)",
        2 => "бумага кончилась при печати (ran out while printing)",
        3 => "ждёт продолжения печати B0h (waiting for continue-print)",
        4 | 5 => "идёт печать (printing)",
        _ => "прочий (other)",
    };
    format!("{sub} {s}")
}

fn answer_fields(cmd: u16, data: &[u8], r: &mut Reader, f: &mut DecodedFrame) -> Result<(), Short> {
    match cmd {
        SHORT_STATUS => {
            f.field("оператор", "operator", r.u8()?.to_string());
            f.field("флаги", "flags", format!("{:04X}", r.u16()?));
            f.field("режим", "mode", mode_text(r.u8()?));
            f.field("подрежим", "submode", submode_text(r.u8()?));
            r.rest();
        }
        FULL_STATUS => {
            let s = crate::driver::FullStatus::parse(data)?;
            // Mode and submode at offsets 13 and 14 ([V117] 11h; shtrih-m.md §3).
            let (mode, sub) = (data.get(13).copied().unwrap_or(0), data.get(14).copied().unwrap_or(0));
            f.field("прошивка", "firmware", s.firmware);
            f.field("режим", "mode", mode_text(mode));
            f.field("подрежим", "submode", submode_text(sub));
            f.field("часы ККТ", "device clock", datetime(&s.clock));
            f.field("заводской номер", "serial", s.serial.map_or("не введён (not entered)".into(), |n| n.to_string()));
            f.field("ИНН", "INN", if s.inn.is_empty() { "не введён (not entered)".into() } else { s.inn });
            r.rest();
        }
        FN_STATUS => {
            let phase = r.u8()?;
            f.field("фаза ФН", "FN phase", format!("{phase:02X} {:?}", kkm_core::FnPhase::from_code(phase)));
            f.field("текущий документ", "current document", format!("{:02X}", r.u8()?));
            f.field("данные документа", "document data", r.u8()?.to_string());
            f.field("смена открыта", "shift open", yes_no(r.u8()? != 0));
            f.field("предупреждения", "warnings", format!("{:02X}", r.u8()?));
            f.field("дата и время ФН", "FN date-time", datetime(&read_fn_datetime(r)?));
            f.field("номер ФН", "FN number", r.ascii(16)?);
            f.field("последний ФД", "last document", r.u32()?.to_string());
        }
        FN_SERIAL => f.field("номер ФН", "FN number", r.ascii(16)?),
        FN_EXPIRY => {
            let b = r.bytes(3)?;
            f.field("ФН действует до", "FN valid until", format!("20{:02}-{:02}-{:02}", b[0], b[1], b[2]));
            if r.remaining() >= 2 {
                f.field("осталось перерегистраций", "re-registrations left", r.u8()?.to_string());
                f.field("сделано перерегистраций", "re-registrations done", r.u8()?.to_string());
            }
        }
        FN_REGISTRATION_TAG => {
            f.field("тег", "tag", r.u16()?.to_string());
            let len = r.u16()?;
            f.field("значение", "value", hex(r.bytes(usize::from(len))?));
        }
        FN_REGISTRATION_TOTALS => {
            f.field("дата и время", "date-time", datetime(&read_fn_datetime(r)?));
            f.field("ИНН", "INN", r.ascii(12)?);
            f.field("РНМ", "RNM", r.ascii(20)?);
            f.field("системы налогообложения", "tax systems", format!("{:02X}", r.u8()?));
            f.field("режим работы", "work mode", format!("{:02X}", r.u8()?));
            f.field("номер ФД", "document number", r.u32()?.to_string());
            f.field("ФП", "fiscal sign", r.u32()?.to_string());
        }
        FN_OFD_STATUS => {
            f.field("статус обмена", "exchange status", format!("{:02X}", r.u8()?));
            f.field("чтение сообщения", "reading", r.u8()?.to_string());
            f.field("не отправлено в ОФД", "unsent to the OFD", r.u16()?.to_string());
            f.field("первый неотправленный ФД", "first unsent document", r.u32()?.to_string());
            f.field("его дата и время", "its date-time", datetime(&read_fn_datetime(r)?));
        }
        FN_SHIFT_PARAMS => {
            f.field("смена открыта", "shift open", yes_no(r.u8()? != 0));
            f.field("номер смены", "shift number", r.u16()?.to_string());
            f.field("номер чека", "receipt number", r.u16()?.to_string());
        }
        CLOSE_RECEIPT_V2 => {
            f.field("сдача", "change", money(r.money()?));
            f.field("номер ФД", "document number", r.u32()?.to_string());
            f.field("ФП", "fiscal sign", r.u32()?.to_string());
            if r.remaining() >= 5 {
                f.field("дата и время", "date-time", datetime(&read_fn_datetime(r)?));
            }
        }
        CASH_IN | CASH_OUT => {
            f.field("оператор", "operator", r.u8()?.to_string());
            f.field("номер документа", "document number", r.u16()?.to_string());
        }
        CASH_REGISTER => {
            f.field("оператор", "operator", r.u8()?.to_string());
            f.field("значение", "value", money(Money(r.uint(6)? as i64)));
        }
        OPERATING_REGISTER => {
            f.field("оператор", "operator", r.u8()?.to_string());
            f.field("значение", "value", r.u16()?.to_string());
        }
        DEVICE_TYPE => {
            let b = r.bytes(6)?;
            f.field("тип и подтип", "type and subtype", format!("{} {}", b[0], b[1]));
            f.field("версия протокола", "protocol version", format!("{}.{}", b[2], b[3]));
            f.field("модель", "model id", b[4].to_string());
            f.field("название", "name", format!("«{}»", from_cp1251(r.rest())));
        }
        FN_FIND_DOCUMENT => {
            // [V117] FF0A; [JPOS] FSDocument*: type, ОФД ack, DATE_TIME, number, ФП, then
            // by type: receipt operation and total, or the shift number.
            let kind = r.u8()?;
            f.field("тип документа", "document type", kind.to_string());
            f.field("квитанция ОФД получена", "OFD acknowledged", yes_no(r.u8()? != 0));
            f.field("дата и время", "date-time", datetime(&read_fn_datetime(r)?));
            f.field("номер ФД", "document number", r.u32()?.to_string());
            f.field("ФП", "fiscal sign", r.u32()?.to_string());
            match kind {
                3 | 4 => {
                    f.field("тип операции (1054)", "operation", r.u8()?.to_string());
                    f.field("итог", "total", money(r.money()?));
                }
                2 | 5 => f.field("номер смены", "shift number", r.u16()?.to_string()),
                _ => {}
            }
        }
        FN_UNCONFIRMED_COUNT => f.field("документов без квитанции", "documents without receipt", r.u16()?.to_string()),
        FN_REQUEST_DOCUMENT_TLV => {
            f.field("тип документа", "document type", r.u16()?.to_string());
            f.field("длина TLV", "TLV length", r.u16()?.to_string());
        }
        _ => {
            // Most other commands answer the operator number alone; anything more is
            // shown as bytes by the caller.
            if let Some(op) = data.first().filter(|_| data.len() == 1) {
                f.field("оператор", "operator", op.to_string());
                r.rest();
            }
        }
    }
    Ok(())
}
