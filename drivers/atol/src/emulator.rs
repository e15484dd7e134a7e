//! The ATOL front-end of the emulated register: a Neva-01-F on the wire (v3 link).
//!
//! It keeps the device's task buffer (results stay until the host ACKs them, so a lost
//! reply is served again on `REQ`), the current mode, and translates tasks to the shared
//! [`kkm_emu::FiscalCore`]. All fiscal state lives in the core.

use crate::commands::*;
use crate::{bcd, v3};
use async_trait::async_trait;
use kkm_core::port::BoxStream;
use kkm_core::wire::Cursor;
use kkm_core::{Money, PaymentType, Quantity, ShiftState};
use kkm_emu::listen::LinkOutcome;
use kkm_emu::{AnswerFault, CoreError, Emulator, FiscalCore, Op, ReceiptLine, RequestFault, WireDevice};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct AtolEmulator {
    model_id: u8,
    name: &'static str,
    link: crate::driver::LinkVersion,
    requisites: RequisiteLog,
}

/// Every requisite the host wrote with `E8`, in order: (tag, value).
pub type RequisiteLog = Arc<std::sync::Mutex<Vec<(u16, Vec<u8>)>>>;

impl AtolEmulator {
    pub fn neva_01_f() -> AtolEmulator {
        AtolEmulator { model_id: 200, name: "НЕВА-01-Ф", link: crate::driver::LinkVersion::V3, requisites: RequisiteLog::default() }
    }

    /// The requisites written so far (for tests and the control port).
    pub fn requisite_log(&self) -> RequisiteLog {
        self.requisites.clone()
    }

    /// The same unit speaking the older v2 link layer.
    pub fn with_link(mut self, link: crate::driver::LinkVersion) -> AtolEmulator {
        self.link = link;
        self
    }
}

/// Link state: finished tasks not yet acknowledged, and the mode the host selected.
#[derive(Default)]
pub struct Session {
    buffer: HashMap<u8, Vec<u8>>,
    mode: u8,
    /// The TLV records of the document `A4 45` selected, and how many `A4 46` has read.
    tlv: Option<(Vec<Vec<u8>>, usize)>,
    /// A cashier (1021) written before the receipt was opened.
    pending_cashier: Option<String>,
}

pub fn classify(cmd: u8) -> Op {
    match cmd {
        STATUS | STATE_CODE | DEVICE_TYPE => Op::Status,
        FN_REQUEST | READ_REGISTER | CASH_IN_DRAWER => Op::Query,
        OPEN_SHIFT => Op::OpenShift,
        Z_REPORT => Op::CloseShift,
        X_REPORT => Op::XReport,
        CASH_IN => Op::CashIn,
        CASH_OUT => Op::CashOut,
        OPEN_RECEIPT => Op::ReceiptOpen,
        BEGIN_POSITION | POSITION => Op::ReceiptItem,
        PAYMENT => Op::ReceiptPayment,
        CLOSE_RECEIPT => Op::ReceiptClose,
        CANCEL_RECEIPT => Op::ReceiptCancel,
        PRINT_STRING | REPRINT_LAST | 0x80 => Op::Print,
        _ => Op::Other,
    }
}

pub fn core_error_code(e: CoreError) -> u8 {
    match e {
        CoreError::ShiftClosed => 0x66,
        CoreError::ShiftExpired => 0x88,
        CoreError::ShiftAlreadyOpen => 0x9C,
        CoreError::ReceiptOpen => 0x9B,
        CoreError::NoReceipt => 0x9A,
        CoreError::PaperOut | CoreError::AwaitingContinue => 0x67,
        CoreError::NotEnoughCash => 0x98,
        CoreError::PaymentsShort => 0x72,
        CoreError::NonCashExceedsTotal => 0x71,
        CoreError::ZeroTotal | CoreError::BadParameter => 0x13,
        CoreError::DocumentNotFound => 0xDA,
        CoreError::OfdBlocked => 0xEF,
        CoreError::FnExpired => 0xD7,
        CoreError::Overflow => 0x81,
    }
}

/// `55 00 fields…`; a command without fields answers `55 00 00` (error code and its
/// extension byte, atol4j `Result`).
fn ok(data: Vec<u8>) -> Vec<u8> {
    let mut v = vec![ANSWER_U, 0];
    if data.is_empty() {
        v.push(0);
    }
    v.extend(data);
    v
}

/// `55 code 00`: an error and its (empty) extension byte.
fn fail(code: u8) -> Vec<u8> {
    vec![ANSWER_U, code, 0]
}

fn binary_datetime(dt: &time::PrimitiveDateTime) -> [u8; 5] {
    [(dt.year() % 100) as u8, u8::from(dt.month()), dt.day(), dt.hour(), dt.minute()]
}

/// A document as the ФН gives it in TLV form: its records (see `answers`).
fn document_records(d: &kkm_core::FiscalDocument) -> Vec<Vec<u8>> {
    use crate::answers::{code_1054, encode_tlv};
    let unix = d.datetime.assume_utc().unix_timestamp().max(0) as u32;
    let mut fpd = vec![0u8, 0u8];
    fpd.extend(d.fiscal_sign.to_be_bytes());
    let mut r = vec![encode_tlv(1012, &unix.to_le_bytes()), encode_tlv(1040, &d.number.to_le_bytes()), encode_tlv(1077, &fpd)];
    if let Some(op) = d.operation {
        r.push(encode_tlv(1054, &[code_1054(op)]));
    }
    if let Some(total) = d.total {
        let b = (total.0.max(0) as u64).to_le_bytes();
        let n = b.iter().rposition(|x| *x != 0).map_or(1, |i| i + 1);
        r.push(encode_tlv(1020, &b[..n]));
    }
    if let Some(shift) = d.shift_number {
        r.push(encode_tlv(1038, &shift.to_le_bytes()));
    }
    r
}

fn bad<T>(_: T) -> u8 {
    0x13
}

fn bcd_in(c: &mut Cursor, n: usize) -> Result<u64, u8> {
    bcd::decode(c.bytes(n).map_err(bad)?).ok_or(0x13)
}

fn digits(s: &str) -> u64 {
    s.chars().filter(char::is_ascii_digit).fold(0u64, |a, c| a.saturating_mul(10).saturating_add(u64::from(c as u8 - b'0')))
}

fn fixed_ascii(s: &str, n: usize) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    b.resize(n, b' ');
    b
}

const PAYMENTS: [PaymentType; 5] =
    [PaymentType::Cash, PaymentType::Electronic, PaymentType::Prepayment, PaymentType::Credit, PaymentType::Other];

impl AtolEmulator {
    fn execute(&self, core: &mut FiscalCore, session: &mut Session, cmd: u8, params: &[u8]) -> Result<Vec<u8>, u8> {
        let mut c = Cursor::new(params, "request");
        let now = core.now();
        let need = |m: u8, s: &Session| if s.mode == m { Ok(()) } else { Err(0x66) };
        match cmd {
            STATUS => {
                let flags = 0x01
                    | if core.shift().open { 0x02 } else { 0 }
                    | if core.paper_present() { 0x08 } else { 0 }
                    | 0x40;
                let receipt = core.receipt();
                let state = receipt.map_or(0, |r| receipt_type(r.operation));
                let sum = receipt.map_or(Money::ZERO, |r| r.total());
                let mut v = vec![ANSWER_D, 1, 1];
                v.extend([bcd::byte((now.year() % 100) as u8), bcd::byte(u8::from(now.month())), bcd::byte(now.day())]);
                v.extend([bcd::byte(now.hour()), bcd::byte(now.minute()), bcd::byte(now.second())]);
                v.push(flags);
                v.extend(bcd::encode(digits(&core.identity().reported_serial()), 4));
                v.push(self.model_id);
                v.extend([3, 0]);
                v.push(session.mode);
                v.extend(bcd::encode(u64::from(core.registers().receipt_count), 2));
                v.extend(bcd::encode(u64::from(core.shift().number), 2));
                v.push(state);
                v.extend(bcd::money(sum, 5));
                Ok(v)
            }
            DEVICE_TYPE => {
                // No `55`: error, protocol, type (1 ККТ), model, mode(2), version(5:
                // version, revision, code page, build BCD2), name.
                let mut v = vec![0, 1, 1, self.model_id, session.mode, 0, 0x03, 0x00, 0x00, 0x01, 0x00];
                v.extend(bcd::atol_text(self.name));
                Ok(v)
            }
            ENTER_MODE => {
                let m = c.u8().map_err(bad)?;
                let pw = bcd_in(&mut c, 4)?;
                if pw != 30 && pw != 29 {
                    return Err(0xA4);
                }
                session.mode = m;
                Ok(ok(vec![]))
            }
            LEAVE_MODE => {
                session.mode = 0;
                Ok(ok(vec![]))
            }
            OPEN_SHIFT => {
                need(MODE_REGISTRATION, session)?;
                core.open_shift().map(|_| ok(vec![])).map_err(core_error_code)
            }
            Z_REPORT => {
                need(MODE_Z, session)?;
                core.close_shift().map(|_| ok(vec![])).map_err(core_error_code)
            }
            X_REPORT => {
                need(MODE_X, session)?;
                core.x_report().map(|_| ok(vec![])).map_err(core_error_code)
            }
            CASH_IN | CASH_OUT => {
                need(MODE_REGISTRATION, session)?;
                c.u8().map_err(bad)?;
                let sum = Money(bcd_in(&mut c, 5)? as i64);
                let r = if cmd == CASH_IN { core.cash_in(sum) } else { core.cash_out(sum) };
                r.map(|_| ok(vec![])).map_err(core_error_code)
            }
            OPEN_RECEIPT => {
                need(MODE_REGISTRATION, session)?;
                c.u8().map_err(bad)?;
                let op = operation_of(c.u8().map_err(bad)?).ok_or(0x6A)?;
                core.open_receipt(op).map_err(core_error_code)?;
                if let Some(cashier) = session.pending_cashier.take() {
                    core.set_receipt_attribute(Some(cashier), None).map_err(core_error_code)?;
                }
                Ok(ok(vec![]))
            }
            WRITE_REQUISITE => {
                need(MODE_REGISTRATION, session)?;
                c.bytes(3).map_err(bad)?; // flags, blocks, block number
                let (tag, value) = crate::answers::tlv(c.rest()).map_err(bad)?;
                self.requisites.lock().unwrap_or_else(|e| e.into_inner()).push((tag, value.to_vec()));
                match tag {
                    TAG_CASHIER => {
                        let name = bcd::from_atol_text(value);
                        if core.receipt().is_some() {
                            core.set_receipt_attribute(Some(name), None).map_err(core_error_code)?;
                        } else {
                            session.pending_cashier = Some(name);
                        }
                    }
                    TAG_CUSTOMER_CONTACT => {
                        core.set_receipt_attribute(None, Some(bcd::from_atol_text(value))).map_err(core_error_code)?
                    }
                    _ => {}
                }
                Ok(ok(vec![]))
            }
            BEGIN_POSITION => {
                need(MODE_REGISTRATION, session)?;
                if core.receipt().is_none() {
                    return Err(0x9A);
                }
                Ok(ok(vec![]))
            }
            POSITION => {
                need(MODE_REGISTRATION, session)?;
                c.u8().map_err(bad)?;
                let price = Money(bcd_in(&mut c, 7)? as i64);
                let quantity = Quantity(bcd_in(&mut c, 5)? as i64);
                let amount = Money(bcd_in(&mut c, 7)? as i64);
                let vat = tax_of(c.u8().map_err(bad)?).ok_or(0x13)?;
                bcd_in(&mut c, 7)?;
                let department = c.u8().map_err(bad)?;
                let payment_object = c.u8().map_err(bad)?;
                let payment_method = c.u8().map_err(bad)?;
                c.u8().map_err(bad)?;
                bcd_in(&mut c, 7)?;
                c.bytes(2).map_err(bad)?;
                let name = bcd::from_atol_text(c.rest());
                let line = ReceiptLine { name, price, quantity, amount, vat, department, payment_method, payment_object, measure_unit: None };
                core.add_line(line).map(|_| ok(vec![])).map_err(core_error_code)
            }
            PAYMENT => {
                need(MODE_REGISTRATION, session)?;
                c.u8().map_err(bad)?;
                let kind = *PAYMENTS.get(usize::from(c.u8().map_err(bad)?).wrapping_sub(1)).ok_or(0x7E)?;
                let sum = Money(bcd_in(&mut c, 5)? as i64);
                core.add_payment(kind, sum).map_err(core_error_code)?;
                let r = core.receipt().ok_or(0x9A)?;
                let paid: i64 = r.payments.iter().map(|m| m.0).sum();
                let total = r.total().0;
                let mut v = bcd::money(Money((total - paid).max(0)), 5);
                v.extend(bcd::money(Money((paid - total).max(0)), 5));
                Ok(ok(v))
            }
            CLOSE_RECEIPT => {
                // flags, payment type 1..5, sum; a plain answer (atol4j `CloseBillCommand`).
                need(MODE_REGISTRATION, session)?;
                c.u8().map_err(bad)?;
                let kind = *PAYMENTS.get(usize::from(c.u8().map_err(bad)?).wrapping_sub(1)).ok_or(0x7E)?;
                let sum = Money(bcd_in(&mut c, 5)? as i64);
                if sum.0 > 0 {
                    core.add_payment(kind, sum).map_err(core_error_code)?;
                }
                core.close_receipt().map_err(core_error_code)?;
                Ok(ok(vec![]))
            }
            CANCEL_RECEIPT => {
                session.pending_cashier = None;
                core.cancel_receipt().map(|_| ok(vec![])).map_err(core_error_code)
            }
            CASH_IN_DRAWER => {
                // The command echoed, then the sum (atol4j `CashRequest`).
                let mut v = vec![CASH_IN_DRAWER];
                v.extend(bcd::money(core.registers().cash_in_drawer, 7));
                Ok(v)
            }
            READ_REGISTER => {
                let (reg, p1, p2) = (c.u8().map_err(bad)?, c.u8().map_err(bad)?, c.u8().map_err(bad)?);
                let regs = core.registers();
                let v = match reg {
                    REG_SUM => {
                        let op = operation_of(p1).ok_or(0x13)?;
                        let pay = *PAYMENTS.get(usize::from(p2).wrapping_sub(1)).ok_or(0x13)?;
                        bcd::money(core.sum(op, pay), 7)
                    }
                    REG_RECEIPTS => bcd::encode(if p1 == 1 { u64::from(regs.receipt_count) } else { 0 }, 5),
                    REG_CASH_INS => bcd::money(regs.cash_ins, 7),
                    REG_CASH_OUTS => bcd::money(regs.cash_outs, 7),
                    _ => return Err(0x6C),
                };
                Ok(ok(v))
            }
            FN_REQUEST => self.fn_request(core, session, &mut c),
            PRINT_STRING => core.print_text(vec![bcd::from_atol_text(c.rest())]).map(|_| ok(vec![])).map_err(core_error_code),
            REPRINT_LAST => core.print_copy().map(|_| ok(vec![])).map_err(core_error_code),
            0x80 => Ok(ok(vec![])),
            _ => Err(0x7A),
        }
    }

    fn fn_request(&self, core: &mut FiscalCore, session: &mut Session, c: &mut Cursor) -> Result<Vec<u8>, u8> {
        let now = core.now();
        match c.u8().map_err(bad)? {
            FN_SHIFT_STATE => {
                // state (0 closed, 1 open, 2 over 24 h), shift number and receipt number,
                // two BCD bytes each, low byte first (as atol4j `ShiftStateRequest` reads).
                let s = core.shift();
                let state = match core.shift_state() {
                    ShiftState::Closed => 0,
                    ShiftState::Expired => 2,
                    ShiftState::Open => 1,
                };
                let mut v = vec![state];
                for n in [u64::from(s.number), u64::from(core.registers().receipt_count)] {
                    let b = bcd::encode(n, 2);
                    v.extend([b[1], b[0]]);
                }
                Ok(ok(v))
            }
            FN_OFD_STATUS => {
                // state flags (bit 1: documents to send), reading flag, count (2 LE),
                // first unsent (4 LE), its date-time (binary): atol4j, Unact.
                let (count, first) = core.ofd_unsent();
                let (n, dt) = first.map_or((0, now), |d| (d.number, d.datetime));
                let mut v = vec![if count > 0 { 0x02 } else { 0 }, 0];
                v.extend((count as u16).to_le_bytes());
                v.extend(n.to_le_bytes());
                v.extend(binary_datetime(&dt));
                Ok(ok(v))
            }
            FN_STATUS => {
                // The ФН's status: phase, current document, document data, shift open,
                // warnings, DATE_TIME, ФН number (16), last ФД (4 LE): Unact `fn_status`
                // and the ФН protocol.
                let open = core.receipt().is_some();
                let mut v = vec![0x03, if open { 0x04 } else { 0 }, u8::from(open), u8::from(core.shift().open), 0];
                v.extend(binary_datetime(&now));
                v.extend(fixed_ascii(&core.identity().fn_serial, 16));
                v.extend(core.last_document_number().to_le_bytes());
                Ok(ok(v))
            }
            FN_SERIAL => Ok(ok(fixed_ascii(&core.identity().fn_serial, 16))),
            FN_EXPIRY => {
                // Binary YY MM DD, re-registrations left, done (atol4j).
                let d = core.identity().fn_valid_until;
                Ok(ok(vec![(d.year() % 100) as u8, u8::from(d.month()), d.day(), 11, 1]))
            }
            FN_REGISTRATION => {
                let id = core.identity();
                let mut v = fixed_ascii(&id.rnm, 20);
                v.extend(fixed_ascii(&id.inn, 12));
                Ok(ok(v))
            }
            FN_DOCUMENT => {
                // Starts a TLV read: document type (2 LE), data length (2 LE).
                let n = c.u32().map_err(bad)?;
                let d = core.document(n).map_err(core_error_code)?;
                let records = document_records(d);
                let len: usize = records.iter().map(Vec::len).sum();
                let mut v = crate::answers::document_type(d.kind).to_le_bytes().to_vec();
                v.extend((len as u16).to_le_bytes());
                session.tlv = Some((records, 0));
                Ok(ok(v))
            }
            FN_DOCUMENT_TLV => {
                // The next record; "no data" (DA) after the last (Unact `cheque_data`).
                let (records, next) = session.tlv.as_mut().ok_or(0xDA)?;
                let r = records.get(*next).cloned().ok_or(0xDA)?;
                *next += 1;
                Ok(ok(r))
            }
            _ => Err(0x7A),
        }
    }

    /// Handles one host packet; returns the reply data and the fault to apply.
    fn handle(&self, emu: &Emulator, session: &mut Session, data: &[u8]) -> Option<(Vec<u8>, AnswerFault)> {
        match data {
            [v3::ADD, _flags, tid, task @ ..] => {
                if session.buffer.contains_key(tid) {
                    return Some((vec![v3::TID_EXISTS, *tid], AnswerFault::Send));
                }
                let (cmd, params) = match task {
                    [_, _, cmd, params @ ..] => (*cmd, params),
                    _ => return Some((vec![v3::ILLEGAL], AnswerFault::Send)),
                };
                let op = classify(cmd);
                if emu.on_request(op) == RequestFault::Nak {
                    return None; // lost on the way in: the device never saw it
                }
                let answer = {
                    let mut core = emu.core();
                    match self.execute(&mut core, session, cmd, params) {
                        Ok(a) => a,
                        Err(code) => fail(code),
                    }
                };
                session.buffer.insert(*tid, answer.clone());
                // A synchronous reply names no task: `A3 answer` (spec §1: atol4j,
                // KaznachejFA and multimag read it so). REQ and ACK replies likewise.
                let mut reply = vec![v3::RESULT];
                reply.extend(answer);
                Some((reply, emu.on_answer(op)))
            }
            [v3::REQ, tid] => Some(match session.buffer.get(tid) {
                Some(a) => {
                    let mut reply = vec![v3::RESULT];
                    reply.extend(a);
                    (reply, AnswerFault::Send)
                }
                None => (vec![v3::NOT_FOUND], AnswerFault::Send),
            }),
            [v3::ACK, tid] => {
                session.buffer.remove(tid);
                Some((vec![v3::STOPPED], AnswerFault::Send))
            }
            [v3::ABORT, ..] => {
                session.buffer.clear();
                Some((vec![v3::STOPPED], AnswerFault::Send))
            }
            _ => Some((vec![v3::ILLEGAL], AnswerFault::Send)),
        }
    }
}

#[async_trait]
impl WireDevice for AtolEmulator {
    type Session = Session;

    async fn serve(&self, emu: &Arc<Emulator>, stream: &mut BoxStream, session: &mut Session) -> LinkOutcome {
        if self.link == crate::driver::LinkVersion::V2 {
            return self.serve_v2(emu, stream, session).await;
        }
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 512];
        loop {
            // Drain complete packets first.
            loop {
                match buf.iter().position(|b| *b == v3::START) {
                    Some(p) => {
                        buf.drain(..p);
                    }
                    None => buf.clear(),
                }
                match v3::decode(&buf) {
                    Ok(None) => break,
                    Err(_) => {
                        buf.drain(..1.min(buf.len())); // a broken packet is dropped
                        continue;
                    }
                    Ok(Some((packet, used))) => {
                        buf.drain(..used);
                        let Some((reply, fault)) = self.handle(emu, session, &packet.data) else { continue };
                        let delay = emu.answer_delay();
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        let Ok(mut frame) = v3::encode(packet.id, &reply) else { continue };
                        match fault {
                            AnswerFault::Send => {}
                            AnswerFault::Corrupt => {
                                if let Some(last) = frame.last_mut() {
                                    *last = last.wrapping_add(1) & 0x7F; // wrong CRC, still no FE/FD
                                }
                            }
                            AnswerFault::Lose => continue,
                            AnswerFault::DropLink(d) => return LinkOutcome::Down(d),
                            AnswerFault::PowerCut(d) => return LinkOutcome::PowerCut(d),
                        }
                        if stream.write_all(&frame).await.is_err() || stream.flush().await.is_err() {
                            return LinkOutcome::Closed;
                        }
                    }
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return LinkOutcome::Closed,
                Ok(n) => {
                    if buf.len() > 64 * 1024 {
                        buf.clear();
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }
}

async fn byte(stream: &mut BoxStream, wait: Option<std::time::Duration>) -> Option<Option<u8>> {
    let mut b = [0u8; 1];
    let r = match wait {
        Some(w) => match tokio::time::timeout(w, stream.read(&mut b)).await {
            Err(_) => return Some(None),
            Ok(r) => r,
        },
        None => stream.read(&mut b).await,
    };
    match r {
        Ok(1) => Some(Some(b[0])),
        _ => None,
    }
}

async fn put(stream: &mut BoxStream, b: &[u8]) -> bool {
    stream.write_all(b).await.is_ok() && stream.flush().await.is_ok()
}

impl AtolEmulator {
    /// The v2 device side: ENQ/ACK to take the line, ACK/NAK per frame, EOT to give it
    /// back; then the device takes the line to answer. No buffer: a lost answer is lost.
    async fn serve_v2(&self, emu: &Arc<Emulator>, stream: &mut BoxStream, session: &mut Session) -> LinkOutcome {
        use crate::v2::{self as v2c, ACK as A, ENQ as E, EOT as T, NAK as N};
        let short = Some(std::time::Duration::from_millis(500));
        loop {
            let Some(Some(b)) = byte(stream, None).await else { return LinkOutcome::Closed };
            if b != E {
                continue;
            }
            if !put(stream, &[A]).await {
                return LinkOutcome::Closed;
            }
            // Read the host's frame; after a NAK the host sends it again on the same line.
            let mut accepted = None;
            for _ in 0..8 {
                let mut buf = Vec::new();
                let data = loop {
                    match byte(stream, short).await {
                        None => return LinkOutcome::Closed,
                        Some(None) => break None,
                        Some(Some(x)) => buf.push(x),
                    }
                    match v2c::decode(&buf) {
                        Ok((d, _)) => break Some(Ok(d)),
                        Err(v2c::V2Error::Incomplete) if buf.len() < 4096 => {}
                        Err(v2c::V2Error::NotAFrame) if buf.len() == 1 => {
                            // The host started over: grant the line again.
                            if buf[0] == E && !put(stream, &[A]).await {
                                return LinkOutcome::Closed;
                            }
                            buf.clear();
                        }
                        Err(_) => break Some(Err(())),
                    }
                };
                let task = match data {
                    None => break,
                    Some(Err(())) => {
                        if !put(stream, &[N]).await {
                            return LinkOutcome::Closed;
                        }
                        continue;
                    }
                    Some(Ok(task)) => task,
                };
                let (cmd, params) = match task.as_slice() {
                    [_, _, cmd, params @ ..] => (*cmd, params.to_vec()),
                    _ => break,
                };
                let op = classify(cmd);
                if emu.on_request(op) == RequestFault::Nak {
                    if !put(stream, &[N]).await {
                        return LinkOutcome::Closed;
                    }
                    continue;
                }
                accepted = Some((cmd, params, op));
                break;
            }
            let Some((cmd, params, op)) = accepted else { continue };
            if !put(stream, &[A]).await {
                return LinkOutcome::Closed;
            }
            let _ = byte(stream, short).await; // EOT
            let answer = {
                let mut core = emu.core();
                self.execute(&mut core, session, cmd, &params).unwrap_or_else(fail)
            };
            let delay = emu.answer_delay();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let fault = emu.on_answer(op);
            match fault {
                AnswerFault::Lose => continue,
                AnswerFault::DropLink(d) => return LinkOutcome::Down(d),
                AnswerFault::PowerCut(d) => return LinkOutcome::PowerCut(d),
                AnswerFault::Send | AnswerFault::Corrupt => {}
            }
            // Take the line and answer.
            if !put(stream, &[E]).await {
                return LinkOutcome::Closed;
            }
            if byte(stream, Some(std::time::Duration::from_secs(2))).await != Some(Some(A)) {
                continue;
            }
            let good = v2c::encode(&answer);
            let mut first = good.clone();
            if fault == AnswerFault::Corrupt {
                if let Some(last) = first.last_mut() {
                    *last ^= 0x55;
                }
            }
            let mut frame = first;
            for _ in 0..3 {
                if !put(stream, &frame).await {
                    return LinkOutcome::Closed;
                }
                match byte(stream, short).await {
                    Some(Some(A)) => break,
                    None => return LinkOutcome::Closed,
                    _ => frame = good.clone(),
                }
            }
            if !put(stream, &[T]).await {
                return LinkOutcome::Closed;
            }
        }
    }
}
