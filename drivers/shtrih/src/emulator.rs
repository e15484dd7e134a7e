//! The Shtrih-M front-end of the emulated register: an Azur-01F on the wire.
//!
//! It speaks the link layer exactly as a device does: NAK to ENQ when idle, ACK plus the
//! pending answer when one waits, ACK to a good frame and NAK to a bad one, and keeps
//! the last answer until the host ACKs it. All fiscal state lives in the shared
//! [`kkm_emu::FiscalCore`]; this module only translates bytes to core calls and core
//! results to the answers and error codes of the Shtrih protocol.

use crate::codec::{self, Reader, ShtrihFields, Writer, ACK, ENQ, NAK, STX};
use crate::commands::*;
use async_trait::async_trait;
use kkm_core::port::BoxStream;
use kkm_core::{Money, Operation, PaymentType, Quantity, ShiftState, VatRate};
use kkm_emu::listen::LinkOutcome;
use kkm_emu::{AnswerFault, CoreError, Emulator, FiscalCore, Op, ReceiptLine, RequestFault, WireDevice};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An emulated Shtrih-protocol register.
pub struct ShtrihEmulator {
    model_id: u8,
    name: &'static str,
    /// Table 6 as this unit has it: row n (1-based) is `vat_table[n-1]`.
    vat_table: [VatRate; 10],
}

impl ShtrihEmulator {
    pub fn azur_01f() -> ShtrihEmulator {
        ShtrihEmulator {
            model_id: 45,
            name: "АЗУР-01Ф",
            vat_table: [
                VatRate::Vat22,
                VatRate::Vat10,
                VatRate::Vat0,
                VatRate::NoVat,
                VatRate::Vat22_122,
                VatRate::Vat10_110,
                VatRate::Vat5,
                VatRate::Vat7,
                VatRate::Vat5_105,
                VatRate::Vat7_107,
            ],
        }
    }
}

/// Link state that survives a reconnect: the answer the host has not acknowledged.
#[derive(Default)]
pub struct Session {
    pending: Option<Vec<u8>>,
}

/// Which protocol-neutral operation a command is, for fault matching.
pub fn classify(cmd: u16) -> Op {
    match cmd {
        SHORT_STATUS | FULL_STATUS | DEVICE_TYPE => Op::Status,
        LONG_SERIAL | CASH_REGISTER | OPERATING_REGISTER | READ_TABLE | FN_STATUS | FN_SERIAL | FN_EXPIRY
        | FN_FIND_DOCUMENT | FN_OFD_STATUS | FN_SHIFT_PARAMS => Op::Query,
        OPEN_SHIFT => Op::OpenShift,
        Z_REPORT => Op::CloseShift,
        X_REPORT => Op::XReport,
        CASH_IN => Op::CashIn,
        CASH_OUT => Op::CashOut,
        OPERATION_V2 | FN_SEND_TLV => Op::ReceiptItem,
        CLOSE_RECEIPT_V2 => Op::ReceiptClose,
        CANCEL_RECEIPT => Op::ReceiptCancel,
        PRINT_STRING | CUT | OPEN_DRAWER | REPEAT_DOCUMENT | CONTINUE_PRINT => Op::Print,
        _ => Op::Other,
    }
}

/// The Shtrih error code for a refusal of the core.
pub fn core_error_code(e: CoreError) -> u8 {
    match e {
        CoreError::ShiftClosed => 0x3D,
        CoreError::ShiftExpired => 0x4E,
        CoreError::ShiftAlreadyOpen => 0x3C,
        CoreError::ReceiptOpen => 0x4A,
        CoreError::NoReceipt => 0x55,
        CoreError::PaperOut => 0x6B,
        CoreError::AwaitingContinue => 0x58,
        CoreError::NotEnoughCash => 0x46,
        CoreError::PaymentsShort => 0x45,
        CoreError::NonCashExceedsTotal => 0x4D,
        CoreError::ZeroTotal => 0x8E,
        CoreError::BadParameter => 0x33,
        CoreError::DocumentNotFound => 0x08,
        CoreError::OfdBlocked => 0x15,
        CoreError::FnExpired => 0x05,
        CoreError::Overflow => 0x48,
    }
}

type Outcome = Result<Vec<u8>, u8>;

fn bad<T>(_: T) -> u8 {
    0x33
}

fn password_ok(r: &mut Reader, admin: bool) -> Result<(), u8> {
    let pw = r.u32().map_err(bad)?;
    let ok = if admin { pw == 29 || pw == 30 } else { (1..=30).contains(&pw) };
    if ok {
        Ok(())
    } else {
        Err(0x4F)
    }
}

fn digits_value(s: &str) -> u64 {
    s.chars().filter(|c| c.is_ascii_digit()).fold(0u64, |a, c| a.saturating_mul(10).saturating_add(u64::from(c as u8 - b'0')))
}

impl ShtrihEmulator {
    fn mode(core: &FiscalCore) -> (u8, u8) {
        let mode = match core.receipt() {
            Some(r) => {
                let kind = match r.operation {
                    Operation::Sale => 0,
                    Operation::Purchase => 1,
                    Operation::SaleReturn => 2,
                    Operation::PurchaseReturn => 3,
                };
                0x08 | (kind << 4)
            }
            None => match core.shift_state() {
                ShiftState::Open => 2,
                ShiftState::Expired => 3,
                ShiftState::Closed => 4,
            },
        };
        let submode = match (core.paper_present(), core.print_interrupted()) {
            (false, true) => 2,
            (false, false) => 1,
            (true, true) => 3,
            (true, false) => 0,
        };
        (mode, submode)
    }

    fn flags(core: &FiscalCore) -> u16 {
        let paper = if core.paper_present() { 0x0002 | 0x0080 } else { 0 };
        paper | 0x0010 | 0x0200
    }

    /// Runs one command against the core; returns the answer fields or an error code.
    fn execute(&self, core: &mut FiscalCore, cmd: u16, params: &[u8]) -> Outcome {
        let mut r = Reader::new(params, "request");
        let now = core.now();
        match cmd {
            DEVICE_TYPE => Ok(Writer::new().u8(0).u8(0).u8(1).u8(16).u8(self.model_id).u8(0).text(self.name, 64).done()),
            SHORT_STATUS => {
                password_ok(&mut r, false)?;
                let (mode, submode) = Self::mode(core);
                let ops = core.receipt().map_or(0, |x| x.lines.len() as u16);
                Ok(Writer::new()
                    .u8(30)
                    .u16(Self::flags(core))
                    .u8(mode)
                    .u8(submode)
                    .u8(ops as u8)
                    .u8(0x9F)
                    .u8(0xE5)
                    .u8(0)
                    .u8(0)
                    .u8((ops >> 8) as u8)
                    .bytes(&[0, 0, 0])
                    .done())
            }
            FULL_STATUS => {
                password_ok(&mut r, false)?;
                let (mode, submode) = Self::mode(core);
                let id = core.identity();
                let serial = digits_value(&id.reported_serial());
                let inn = digits_value(&id.inn);
                let closed_shift = if core.shift().open { core.shift().number.saturating_sub(1) } else { core.shift().number };
                Ok(Writer::new()
                    .u8(30)
                    .bytes(b"A4")
                    .u16(2024)
                    .bytes(&[1, 6, 24])
                    .u8(1)
                    .u16(core.documents_printed() as u16)
                    .u16(Self::flags(core))
                    .u8(mode)
                    .u8(submode)
                    .u8(0)
                    .bytes(b"A4")
                    .u16(2024)
                    .bytes(&[1, 6, 24])
                    .bytes(&[now.day(), u8::from(now.month()), (now.year() % 100) as u8])
                    .bytes(&[now.hour(), now.minute(), now.second()])
                    .u8(0)
                    .uint(serial, 4)
                    .u16(closed_shift as u16)
                    .u16(2000)
                    .u8(1)
                    .u8(11)
                    .uint(inn, 6)
                    .done())
            }
            LONG_SERIAL => {
                password_ok(&mut r, false)?;
                let id = core.identity();
                Ok(Writer::new().uint(digits_value(&id.reported_serial()), 7).uint(digits_value(&id.rnm), 7).done())
            }
            READ_TABLE => {
                password_ok(&mut r, true)?;
                let (table, row, field) = (r.u8().map_err(bad)?, r.u16().map_err(bad)?, r.u8().map_err(bad)?);
                let rate = usize::from(row).checked_sub(1).and_then(|i| self.vat_table.get(i));
                match (table, rate, field) {
                    (VAT_TABLE, Some(rate), 1) => {
                        let hundredths = rate.fraction().map_or(0, |(n, d)| if d == 1 { 0 } else { n * 100 });
                        Ok(Writer::new().u16(hundredths as u16).done())
                    }
                    (VAT_TABLE, Some(rate), 2) => Ok(Writer::new().text_fixed(rate.label_ru(), 60).done()),
                    _ => Err(0x33),
                }
            }
            CASH_REGISTER => {
                password_ok(&mut r, false)?;
                let reg = r.u8().map_err(bad)?;
                let regs = core.registers();
                let value = match reg {
                    REG_CASH_IN_DRAWER => regs.cash_in_drawer,
                    REG_CASH_INS => regs.cash_ins,
                    REG_CASH_OUTS => regs.cash_outs,
                    n if (REG_SALES_BASE..REG_SALES_BASE + 20).contains(&n) => {
                        let k = n - REG_SALES_BASE;
                        let (pay, op) = (usize::from(k / 4), k % 4);
                        let op = [Operation::Sale, Operation::Purchase, Operation::SaleReturn, Operation::PurchaseReturn]
                            [usize::from(op)];
                        core.sum(op, PaymentType::ALL[pay])
                    }
                    _ => Money::ZERO,
                };
                Ok(Writer::new().u8(30).uint(value.0.max(0) as u64, 6).done())
            }
            OPERATING_REGISTER => {
                password_ok(&mut r, false)?;
                let reg = r.u8().map_err(bad)?;
                let regs = core.registers();
                let value = match reg {
                    OPREG_DOCUMENT_NUMBER => core.documents_printed(),
                    n if (OPREG_RECEIPTS_BASE..OPREG_RECEIPTS_BASE + 4).contains(&n) => {
                        // The core counts all receipts; attribute them to sales.
                        if n == OPREG_RECEIPTS_BASE { regs.receipt_count } else { 0 }
                    }
                    153 => regs.cash_in_count,
                    154 => regs.cash_out_count,
                    _ => 0,
                };
                Ok(Writer::new().u8(30).u16(value as u16).done())
            }
            OPEN_SHIFT => {
                password_ok(&mut r, false)?;
                core.open_shift().map(|_| Vec::new()).map_err(core_error_code)
            }
            Z_REPORT => {
                password_ok(&mut r, true)?;
                core.close_shift().map(|_| Vec::new()).map_err(core_error_code)
            }
            X_REPORT => {
                password_ok(&mut r, true)?;
                core.x_report().map(|_| Vec::new()).map_err(core_error_code)
            }
            CASH_IN | CASH_OUT => {
                password_ok(&mut r, false)?;
                let sum = r.money().map_err(bad)?;
                let n = if cmd == CASH_IN { core.cash_in(sum) } else { core.cash_out(sum) }.map_err(core_error_code)?;
                Ok(Writer::new().u8(30).u16(n as u16).done())
            }
            CANCEL_RECEIPT => {
                password_ok(&mut r, false)?;
                core.cancel_receipt().map(|_| Vec::new()).map_err(core_error_code)
            }
            CONTINUE_PRINT => {
                password_ok(&mut r, false)?;
                core.continue_print().map(|_| Vec::new()).map_err(core_error_code)
            }
            REPEAT_DOCUMENT => {
                password_ok(&mut r, false)?;
                core.print_copy().map(|_| Vec::new()).map_err(core_error_code)
            }
            PRINT_STRING => {
                password_ok(&mut r, false)?;
                r.u8().map_err(bad)?;
                let text = codec::from_cp1251(r.rest());
                core.print_text(vec![text]).map(|_| Vec::new()).map_err(core_error_code)
            }
            CUT | OPEN_DRAWER => {
                password_ok(&mut r, false)?;
                Ok(Vec::new())
            }
            FN_STATUS => {
                password_ok(&mut r, false)?;
                let id = core.identity();
                let dt = core.last_document().map_or(now, |d| d.datetime);
                Ok(Writer::new()
                    .u8(0x03)
                    .u8(u8::from(core.receipt().is_some()))
                    .u8(0)
                    .u8(u8::from(core.shift().open))
                    .u8(0)
                    .bytes(&codec::fn_datetime_bytes(&dt))
                    .text_fixed(&id.fn_serial, 16)
                    .u32(core.last_document_number())
                    .done())
            }
            FN_SERIAL => {
                password_ok(&mut r, false)?;
                Ok(Writer::new().text_fixed(&core.identity().fn_serial, 16).done())
            }
            FN_EXPIRY => {
                password_ok(&mut r, false)?;
                let d = core.identity().fn_valid_until;
                Ok(Writer::new().bytes(&[(d.year() % 100) as u8, u8::from(d.month()), d.day()]).u8(11).u8(1).done())
            }
            FN_FIND_DOCUMENT => {
                password_ok(&mut r, false)?;
                let n = r.u32().map_err(bad)?;
                let d = core.document(n).map_err(core_error_code)?;
                let mut w = Writer::new()
                    .u8(document_type(d.kind))
                    .u8(u8::from(d.ofd_acknowledged))
                    .bytes(&codec::fn_datetime_bytes(&d.datetime))
                    .u32(d.number)
                    .u32(d.fiscal_sign);
                match d.kind {
                    kkm_core::DocumentKind::Receipt => {
                        w = w.u8(d.operation.map_or(0, Operation::code)).money(d.total.unwrap_or(Money::ZERO))
                    }
                    kkm_core::DocumentKind::ShiftOpen | kkm_core::DocumentKind::ShiftClose => {
                        w = w.u16(d.shift_number.unwrap_or(0) as u16)
                    }
                    kkm_core::DocumentKind::Registration => {
                        let id = core.identity();
                        w = w.text_fixed(&id.inn, 12).text_fixed(&id.rnm, 20).u8(0x02).u8(0)
                    }
                    _ => {}
                }
                Ok(w.done())
            }
            FN_OFD_STATUS => {
                password_ok(&mut r, false)?;
                let (count, first) = core.ofd_unsent();
                let (n, dt) = first.map_or((0, now), |d| (d.number, d.datetime));
                Ok(Writer::new()
                    .u8(u8::from(count > 0))
                    .u8(0)
                    .u16(count as u16)
                    .u32(n)
                    .bytes(&codec::fn_datetime_bytes(&dt))
                    .done())
            }
            FN_SHIFT_PARAMS => {
                password_ok(&mut r, false)?;
                let s = core.shift();
                Ok(Writer::new().u8(u8::from(s.open)).u16(s.number as u16).u16(core.registers().receipt_count as u16).done())
            }
            OPERATION_V2 => {
                password_ok(&mut r, false)?;
                let op = Operation::from_code(r.u8().map_err(bad)?).ok_or(0x33)?;
                let quantity = r.quantity6().map_err(bad)?;
                let price = r.money().map_err(bad)?;
                let amount_raw = r.uint(5).map_err(bad)?;
                r.uint(5).map_err(bad)?;
                let tax = r.u8().map_err(bad)?;
                let department = r.u8().map_err(bad)?;
                let payment_method = r.u8().map_err(bad)?;
                let payment_object = r.u8().map_err(bad)?;
                let name = codec::from_cp1251(r.rest());
                let vat = *usize::from(tax).checked_sub(1).and_then(|i| self.vat_table.get(i)).ok_or(0x33)?;
                let amount = if amount_raw == 0xFF_FFFF_FFFF {
                    Quantity(quantity.0).times(price).ok_or(0x48)?
                } else {
                    Money(amount_raw as i64)
                };
                match core.receipt() {
                    None => core.open_receipt(op).map_err(core_error_code)?,
                    Some(open) if open.operation != op => return Err(0x49),
                    Some(_) => {}
                }
                let line = ReceiptLine { name, price, quantity, amount, vat, department, payment_method, payment_object };
                core.add_line(line).map(|_| Vec::new()).map_err(core_error_code)
            }
            FN_SEND_TLV => {
                password_ok(&mut r, false)?;
                let tag = r.u16().map_err(bad)?;
                let len = r.u16().map_err(bad)?;
                let value = r.bytes(usize::from(len)).map_err(bad)?;
                let text = encoding_rs::IBM866.decode(value).0.trim().to_string();
                match tag {
                    1021 => core.set_receipt_attribute(Some(text), None),
                    1008 => core.set_receipt_attribute(None, Some(text)),
                    _ => core.set_receipt_attribute(None, None),
                }
                .map(|_| Vec::new())
                .map_err(core_error_code)
            }
            CLOSE_RECEIPT_V2 => {
                password_ok(&mut r, false)?;
                let mut slots = [Money::ZERO; 16];
                for s in &mut slots {
                    *s = r.money().map_err(bad)?;
                }
                let mut payments = [Money::ZERO; 5];
                for (i, p) in PaymentType::ALL.into_iter().enumerate() {
                    payments[i] = slots[payment_slot(p)];
                }
                if core.receipt().is_none() {
                    return Err(0x55);
                }
                core.set_payments(payments).map_err(core_error_code)?;
                match core.close_receipt() {
                    Ok((doc, change)) => Ok(Writer::new()
                        .money(change)
                        .u32(doc.number)
                        .u32(doc.fiscal_sign)
                        .bytes(&codec::fn_datetime_bytes(&doc.datetime))
                        .done()),
                    Err(e) => {
                        let _ = core.set_payments([Money::ZERO; 5]);
                        Err(core_error_code(e))
                    }
                }
            }
            _ => Err(0x37),
        }
    }

    fn answer(&self, emu: &Emulator, cmd: u16, params: &[u8]) -> Vec<u8> {
        let mut core = emu.core();
        let (error, data) = match self.execute(&mut core, cmd, params) {
            Ok(d) => (0, d),
            Err(code) => (code, Vec::new()),
        };
        let payload = codec::Answer { cmd, error, data }.payload();
        codec::frame(&payload).unwrap_or_else(|_| {
            codec::frame(&codec::Answer { cmd, error: 0x7E, data: Vec::new() }.payload()).unwrap_or_default()
        })
    }
}

async fn write(stream: &mut BoxStream, bytes: &[u8]) -> bool {
    stream.write_all(bytes).await.is_ok() && stream.flush().await.is_ok()
}

async fn read_byte(stream: &mut BoxStream, wait: Option<Duration>) -> Option<Option<u8>> {
    let mut b = [0u8; 1];
    let read = stream.read(&mut b);
    let r = match wait {
        Some(w) => match tokio::time::timeout(w, read).await {
            Err(_) => return Some(None),
            Ok(r) => r,
        },
        None => read.await,
    };
    match r {
        Ok(1) => Some(Some(b[0])),
        _ => None, // EOF or error: the host is gone
    }
}

#[async_trait]
impl WireDevice for ShtrihEmulator {
    type Session = Session;

    async fn serve(&self, emu: &Arc<Emulator>, stream: &mut BoxStream, session: &mut Session) -> LinkOutcome {
        let byte_wait = Some(Duration::from_millis(500));
        loop {
            let Some(Some(b)) = read_byte(stream, None).await else { return LinkOutcome::Closed };
            match b {
                ENQ => {
                    let reply = match &session.pending {
                        Some(f) => [&[ACK][..], f].concat(),
                        None => vec![NAK],
                    };
                    if !write(stream, &reply).await {
                        return LinkOutcome::Closed;
                    }
                }
                ACK => session.pending = None,
                STX => {
                    let Some(Some(n)) = read_byte(stream, byte_wait).await else { continue };
                    let mut buf = vec![STX, n];
                    let mut torn = false;
                    for _ in 0..=usize::from(n) {
                        match read_byte(stream, byte_wait).await {
                            Some(Some(x)) => buf.push(x),
                            Some(None) => {
                                torn = true;
                                break;
                            }
                            None => return LinkOutcome::Closed,
                        }
                    }
                    let payload = match (torn, codec::unframe(&buf)) {
                        (false, Ok(p)) => p.to_vec(),
                        _ => {
                            if !write(stream, &[NAK]).await {
                                return LinkOutcome::Closed;
                            }
                            continue;
                        }
                    };
                    let Ok((cmd, params)) = codec::split_command(&payload) else { continue };
                    let op = classify(cmd);
                    let ack = match emu.on_request(op) {
                        RequestFault::Nak => {
                            if !write(stream, &[NAK]).await {
                                return LinkOutcome::Closed;
                            }
                            continue;
                        }
                        // Line noise turns the ACK into another byte; the unit has the
                        // frame and runs it all the same.
                        RequestFault::GarbleAck => 0x86,
                        RequestFault::None => ACK,
                    };
                    if !write(stream, &[ack]).await {
                        return LinkOutcome::Closed;
                    }
                    let frame = self.answer(emu, cmd, params);
                    session.pending = Some(frame.clone());
                    let delay = emu.answer_delay();
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    match emu.on_answer(op) {
                        AnswerFault::Send => {
                            if !write(stream, &frame).await {
                                return LinkOutcome::Closed;
                            }
                        }
                        AnswerFault::Corrupt => {
                            let mut bad = frame;
                            if let Some(last) = bad.last_mut() {
                                *last ^= 0x5A;
                            }
                            if !write(stream, &bad).await {
                                return LinkOutcome::Closed;
                            }
                        }
                        AnswerFault::Lose => {}
                        AnswerFault::DropLink(d) => return LinkOutcome::Down(d),
                        AnswerFault::PowerCut(d) => return LinkOutcome::PowerCut(d),
                    }
                }
                _ => {} // noise on the line
            }
        }
    }
}
