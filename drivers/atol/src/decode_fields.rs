//! Names and fields of ATOL tasks and answers for `kkm-agent decode`.
//!
//! A task is `password (2, BCD) | command | params` (`protocol-specs/atol.md` §3); the
//! layouts are the ones of the spec's conformance table (§5), read with the driver's own
//! parsers ([`crate::answers`], [`crate::driver::answer_fields`], [`crate::bcd`]). A
//! command the table does not lay out is shown with its name and raw bytes; a field
//! that runs past the end becomes a note, never a panic.

use crate::commands::*;
use crate::{answers, bcd, errors};
use kkm_core::capture::{datetime, hex, DecodedFrame, Direction, FrameError, FrameKind};
use kkm_core::wire::{Cursor, Short};
use kkm_core::{DriverError, Money};

/// The command a task carried (and its `A4` sub-command), to name its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    pub cmd: u8,
    pub sub: Option<u8>,
}

const OPEN_DRAWER: u8 = 0x80;

/// The command's Russian and English name, if we know it.
pub fn command_name(cmd: u8) -> Option<(&'static str, &'static str)> {
    Some(match cmd {
        STATUS => ("запрос состояния", "status"),
        STATE_CODE => ("запрос кода состояния", "state code"),
        ENTER_MODE => ("вход в режим", "enter mode"),
        LEAVE_MODE => ("выход из режима", "leave mode"),
        OPEN_SHIFT => ("открыть смену", "open shift"),
        OPEN_RECEIPT => ("открыть чек", "open receipt"),
        BEGIN_POSITION => ("начать формирование позиции", "begin position"),
        POSITION => ("регистрация позиции", "position"),
        PAYMENT => ("оплата", "payment"),
        CLOSE_RECEIPT => ("закрыть чек", "close receipt"),
        CANCEL_RECEIPT => ("аннулировать чек", "cancel receipt"),
        CASH_IN => ("внесение", "cash in"),
        CASH_OUT => ("выплата", "cash out"),
        X_REPORT => ("отчёт без гашения", "X report"),
        Z_REPORT => ("закрытие смены (Z-отчёт)", "Z report"),
        CASH_IN_DRAWER => ("наличность в кассе", "cash in drawer"),
        READ_REGISTER => ("чтение регистра", "read register"),
        FN_REQUEST => ("запрос к ФН", "FN request"),
        DEVICE_TYPE => ("тип устройства", "device type"),
        PRINT_STRING => ("печать строки", "print string"),
        REPRINT_LAST => ("повтор последнего документа", "reprint last document"),
        WRITE_REQUISITE => ("запись реквизита", "write requisite"),
        OPEN_DRAWER => ("открыть денежный ящик", "open drawer"),
        _ => return None,
    })
}

fn sub_name(sub: u8) -> Option<(&'static str, &'static str)> {
    Some(match sub {
        FN_SHIFT_STATE => ("состояние смены", "shift state"),
        FN_OFD_STATUS => ("статус обмена с ОФД", "OFD exchange status"),
        FN_STATUS => ("статус ФН", "FN status"),
        FN_SERIAL => ("номер ФН", "FN number"),
        FN_EXPIRY => ("срок действия ФН", "FN expiry"),
        FN_REGISTRATION => ("данные регистрации", "registration data"),
        FN_DOCUMENT => ("начать чтение документа", "start reading a document"),
        FN_DOCUMENT_TLV => ("следующая запись TLV документа", "next TLV record"),
        _ => return None,
    })
}

fn name_of(t: Task) -> String {
    let base = match command_name(t.cmd) {
        Some((ru, en)) => format!("{:02X}h «{ru}» ({en})", t.cmd),
        None => format!("{:02X}h, команда неизвестна (unknown command)", t.cmd),
    };
    match t.sub {
        Some(sub) => match sub_name(sub) {
            Some((ru, en)) => format!("{base} {sub:02X}h «{ru}» ({en})"),
            None => format!("{base} {sub:02X}h"),
        },
        None => base,
    }
}

fn money(m: Money) -> String {
    format!("{m} руб. ({} коп.)", m.0)
}

fn bcd_money(c: &mut Cursor, n: usize) -> Result<String, Short> {
    let b = c.bytes(n)?;
    Ok(bcd::decode(b).map_or_else(|| format!("не BCD: {} (not BCD)", hex(b)), |v| money(Money(v as i64))))
}

/// A task (computer → register): returns the frame and the command it carries.
pub fn task(task: &[u8], raw: &[u8], what: &str) -> (DecodedFrame, Option<Task>) {
    let mut c = Cursor::new(task, "task");
    let (Ok(pw), Ok(cmd)) = (c.bytes(2), c.u8()) else {
        let mut f = DecodedFrame::new(Direction::ToDevice, 0, raw, FrameKind::Frame, format!("{what}: короче пароля и команды (shorter than password and command)"));
        f.field("данные", "data", hex(task));
        return (f, None);
    };
    let sub = (cmd == FN_REQUEST).then(|| task.get(3).copied()).flatten();
    let t = Task { cmd, sub };
    let mut f = DecodedFrame::new(Direction::ToDevice, 0, raw, FrameKind::Frame, format!("{what}: команда {}", name_of(t)));
    f.field("пароль", "password", hex(pw));
    if sub.is_some() {
        c.u8().ok();
    }
    if let Err(e) = task_fields(t, &mut c, &mut f) {
        f.note(format!("поля обрезаны: {e} (fields cut short)"));
    }
    if c.remaining() > 0 {
        f.field("прочие байты", "other bytes", hex(c.rest()));
    }
    (f, Some(t))
}

fn task_fields(t: Task, c: &mut Cursor, f: &mut DecodedFrame) -> Result<(), Short> {
    match (t.cmd, t.sub) {
        (ENTER_MODE, _) => {
            let mode = c.u8()?;
            let text = match mode {
                MODE_REGISTRATION => "регистрация (registration)",
                MODE_X => "отчёты без гашения (X reports)",
                MODE_Z => "отчёты с гашением (Z reports)",
                _ => "прочий (other)",
            };
            f.field("режим", "mode", format!("{mode} {text}"));
            f.field("пароль режима", "mode password", hex(c.bytes(4)?));
        }
        (OPEN_RECEIPT, _) => {
            f.field("флаги", "flags", format!("{:02X}", c.u8()?));
            let kind = c.u8()?;
            f.field("тип чека", "receipt type", format!("{kind} {:?}", operation_of(kind)));
        }
        (POSITION, _) => {
            f.field("флаги", "flags", format!("{:02X}", c.u8()?));
            f.field("цена", "price", bcd_money(c, 7)?);
            let q = c.bytes(5)?;
            f.field("количество", "quantity", bcd::decode(q).map_or(hex(q), |v| format!("{}.{:03}", v / 1000, v % 1000)));
            f.field("стоимость", "amount", bcd_money(c, 7)?);
            let tax = c.u8()?;
            f.field("налог", "tax type", format!("{tax} {}", tax_of(tax).map_or("не из таблицы (unknown)", |v| v.label_ru())));
            f.field("сумма налога", "tax sum", bcd_money(c, 7)?);
            f.field("секция", "section", c.u8()?.to_string());
            f.field("предмет расчёта (1212)", "payment object", c.u8()?.to_string());
            f.field("способ расчёта (1214)", "payment method", c.u8()?.to_string());
            c.u8()?;
            f.field("скидка", "discount", bcd_money(c, 7)?);
            c.bytes(2)?;
            f.field("наименование", "name", format!("«{}»", bcd::from_atol_text(c.rest())));
        }
        (PAYMENT | CLOSE_RECEIPT, _) => {
            f.field("флаги", "flags", format!("{:02X}", c.u8()?));
            f.field("вид оплаты", "payment type", c.u8()?.to_string());
            f.field("сумма", "sum", bcd_money(c, 5)?);
        }
        (OPEN_SHIFT, _) => f.field("флаги", "flags", format!("{:02X}", c.u8()?)),
        (CASH_IN | CASH_OUT, _) => {
            f.field("флаги", "flags", format!("{:02X}", c.u8()?));
            f.field("сумма", "sum", bcd_money(c, 5)?);
        }
        (PRINT_STRING, _) => f.field("текст", "text", format!("«{}»", bcd::from_atol_text(c.rest()))),
        (X_REPORT, _) => f.field("тип отчёта", "report type", c.u8()?.to_string()),
        (READ_REGISTER, _) => f.field("регистр, параметры", "register, params", hex(c.bytes(3)?)),
        (FN_REQUEST, Some(FN_DOCUMENT)) => f.field("номер ФД", "document number", c.u32()?.to_string()),
        (WRITE_REQUISITE, _) => {
            c.bytes(3)?;
            let tag = c.u16()?;
            let len = c.u16()?;
            let v = c.bytes(usize::from(len))?;
            f.field("тег", "tag", tag.to_string());
            let text = matches!(tag, TAG_CASHIER | TAG_CUSTOMER_CONTACT | TAG_CASHIER_INN);
            f.field("значение", "value", if text { format!("«{}»", bcd::from_atol_text(v)) } else { hex(v) });
        }
        _ => {}
    }
    Ok(())
}

/// An answer (register → computer) to `task`, if the decoder saw it.
pub fn answer(task: Option<Task>, answer: &[u8], raw: &[u8], what: &str) -> DecodedFrame {
    let title = match task {
        Some(t) => format!("{what}: ответ на {}", name_of(t)),
        None => format!("{what}: ответ на команду, которой нет в записи (answer to a command not in the capture)"),
    };
    let mut f = DecodedFrame::new(Direction::FromDevice, 0, raw, FrameKind::Frame, title);
    let fields = match task {
        Some(t) => crate::driver::answer_fields(t.cmd, answer),
        None => match answer {
            [ANSWER_U, 0, rest @ ..] | [ANSWER_D, rest @ ..] => Ok(rest.to_vec()),
            [ANSWER_U, code, ..] => Err(errors::device_error(*code)),
            _ => Err(DriverError::Protocol(String::new())),
        },
    };
    let fields = match fields {
        Ok(fields) => fields,
        Err(DriverError::Device { raw: code, info, .. }) => {
            f.field("код ошибки", "error code", format!("{code:02X}"));
            f.error = Some(FrameError { raw: code as u8, info });
            return f;
        }
        Err(_) => {
            f.field("данные", "data", hex(answer));
            f.note("ответ не похож на ответ этой команды (55 код ошибки …) (not the answer this command expects)");
            return f;
        }
    };
    // `3F` answers `44 ('D') fields` and `4D` echoes itself: neither carries an error byte.
    match answer.first() {
        Some(&ANSWER_D) => f.field("вид ответа", "answer form", "44 «D»: состояние (status)"),
        Some(&CASH_IN_DRAWER) => f.field("вид ответа", "answer form", "4D: эхо команды (command echo)"),
        _ => f.field("код ошибки", "error code", "00 — нет ошибки (no error)"),
    }
    if let Some(t) = task {
        if let Err(e) = answer_fields(t, &fields, &mut f) {
            f.note(format!("поля не прочитаны: {e} (fields not read)"));
            f.field("данные", "data", hex(&fields));
        }
    } else if !fields.is_empty() {
        f.field("данные", "data", hex(&fields));
    }
    f
}

fn answer_fields(t: Task, d: &[u8], f: &mut DecodedFrame) -> Result<(), DriverError> {
    match (t.cmd, t.sub) {
        (FN_REQUEST, Some(FN_STATUS)) => {
            let s = answers::fn_status(d)?;
            f.field("фаза ФН", "FN phase", format!("{:02X} {:?}", s.phase, kkm_core::FnPhase::from_code(s.phase)));
            f.field("смена открыта", "shift open", if s.shift_open { "да (yes)" } else { "нет (no)" });
            f.field("дата и время ФН", "FN date-time", s.at.map_or("—".into(), |d| datetime(&d)));
            f.field("номер ФН", "FN number", s.serial);
            f.field("последний ФД", "last document", s.last_document_number.to_string());
        }
        (FN_REQUEST, Some(FN_OFD_STATUS)) => {
            let s = answers::ofd_status(d)?;
            f.field("не отправлено в ОФД", "unsent to the OFD", s.unsent_count.to_string());
            if let Some(n) = s.first_unsent_number {
                f.field("первый неотправленный ФД", "first unsent document", n.to_string());
            }
            if let Some(at) = s.first_unsent_at {
                f.field("его дата и время", "its date-time", datetime(&at));
            }
        }
        (FN_REQUEST, Some(FN_EXPIRY)) => {
            f.field("ФН действует до", "FN valid until", answers::fn_expiry(d)?.map_or("—".into(), |d| d.to_string()))
        }
        (FN_REQUEST, Some(FN_SHIFT_STATE)) => {
            let state = match answers::shift_state(d)? {
                kkm_core::ShiftState::Closed => "закрыта (closed)",
                kkm_core::ShiftState::Expired => "открыта больше 24 часов (over 24 h)",
                kkm_core::ShiftState::Open => "открыта (open)",
            };
            f.field("смена", "shift", state);
        }
        (FN_REQUEST, Some(FN_REGISTRATION)) => {
            // Our layout, unconfirmed by any source (atol.md §5): РНМ (20), ИНН (12).
            let mut c = Cursor::new(d, "registration");
            f.field("РНМ", "RNM", c.ascii(20)?);
            f.field("ИНН", "INN", c.ascii(12)?);
            f.note("раскладка A4 40 — наша, не подтверждена источниками (our layout, unconfirmed)");
        }
        (FN_REQUEST, Some(FN_SERIAL)) => f.field("номер ФН", "FN number", Cursor::new(d, "FN number").ascii(16)?),
        (FN_REQUEST, Some(FN_DOCUMENT)) => {
            let (kind, len) = answers::document_header(d)?;
            f.field("тип документа", "document type", kind.to_string());
            f.field("длина TLV", "TLV length", len.to_string());
        }
        (FN_REQUEST, Some(FN_DOCUMENT_TLV)) => {
            let (tag, v) = answers::tlv(d)?;
            f.field("тег", "tag", tag.to_string());
            f.field("значение", "value", hex(v));
        }
        (STATUS, _) => {
            // The offsets the driver reads (`AtolDriver::status`; A4J `DeviceStateRequest`).
            let mut c = Cursor::new(d, "status");
            f.field("кассир", "cashier", hex(c.bytes(2)?));
            let t = c.bytes(6)?;
            let u = |i: usize| bcd::unbyte(t[i]);
            f.field("часы ККТ", "device clock", format!("20{:02}-{:02}-{:02} {:02}:{:02}:{:02}", u(0), u(1), u(2), u(3), u(4), u(5)));
            let flags = c.u8()?;
            f.field("флаги", "flags", format!(
                "{flags:02X}: бумага {} (paper {}), крышка {} (cover {})",
                if flags & 0x08 != 0 { "есть" } else { "нет" },
                if flags & 0x08 != 0 { "present" } else { "out" },
                if flags & 0x20 != 0 { "открыта" } else { "закрыта" },
                if flags & 0x20 != 0 { "open" } else { "closed" },
            ));
            c.bytes(7)?;
            let mode = c.u8()?;
            f.field("режим и подрежим", "mode and submode", format!("{} {}", mode & 0x0F, mode >> 4));
            c.bytes(2)?;
            let shift = c.bytes(2)?;
            f.field("номер смены", "shift number", bcd::decode(shift).map_or(hex(shift), |v| v.to_string()));
            f.field("чек открыт", "receipt open", if c.u8()? != 0 { "да (yes)" } else { "нет (no)" });
        }
        (DEVICE_TYPE, _) => {
            let t = answers::device_type(d)?;
            f.field("протокол", "protocol", t.protocol.to_string());
            f.field("тип и модель", "type and model", format!("{} {}", t.kind, t.model));
            f.field("название", "name", format!("«{}»", t.name));
        }
        (CASH_IN_DRAWER, _) => f.field("наличность", "cash", bcd_money(&mut Cursor::new(d, "cash"), d.len())?),
        (PAYMENT, _) => {
            let mut c = Cursor::new(d, "payment");
            f.field("остаток", "remainder", bcd_money(&mut c, 5)?);
            f.field("сдача", "change", bcd_money(&mut c, 5)?);
        }
        (READ_REGISTER, _) => f.field("значение", "value", bcd_money(&mut Cursor::new(d, "register"), d.len())?),
        _ if d.iter().any(|b| *b != 0) => f.field("данные", "data", hex(d)),
        _ => {}
    }
    Ok(())
}
