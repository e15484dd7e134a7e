//! The УМКА front-end of the shared emulated fiscal core: a small HTTP/1.1 server that
//! answers the same resources, with the same JSON shapes, as the public captures.
//!
//! It is a [`WireDevice`], so `kkm_emu::listen` serves it on TCP and the shared fault
//! plan drives it like the byte-protocol emulators:
//!
//! | fault | here |
//! |---|---|
//! | `nak=N` | the next N requests are answered `503` without running |
//! | `corrupt=N` | the next N answers are cut off mid-JSON |
//! | `lose-answer@OP` | OP runs; the connection is closed without an answer |
//! | `drop-link@OP=S` | OP runs; the connection closes and no connection is accepted for S s |
//! | `power-cut@OP=S` | the same, and link state is lost |
//! | `paper-out@OP` | as in the core |
//! | `delay=MS` | every answer waits MS ms |
//! | `garble-ack` | no effect: HTTP has no link-level acknowledgement |
//!
//! Requests map to operations: `cashboxstatus` → status, `fiscaldoc` → query (print when
//! `print=1`), `cycleopen`/`cycleclose` → open/close shift, and `fiscalcheck` → the
//! receipt steps in order (open, each item, payment, close), so `power-cut@receipt-item`
//! cuts a receipt before the ФН sees it, as on the byte protocols. A cut request leaves
//! nothing open: one request is one receipt.
//!
//! Choices made where no source says (listed in `protocol-specs/umka.md`): error codes
//! other than the four seen follow ATOL's table; a closed shift is refused with code
//! 9001, which is ours and not the unit's; a repeated `sessionId` of a receipt that was
//! fiscalised gets that receipt's answer again instead of a second receipt.

use crate::codec::{self, CashboxStatus, DocData, Document, Frame, FsStatus, LifeTime, Message, Prop, Transport};
use async_trait::async_trait;
use kkm_core::port::BoxStream;
use kkm_core::{DocumentKind, FiscalDocument, Money, PaymentType};
use kkm_emu::listen::{LinkOutcome, WireDevice};
use kkm_emu::{AnswerFault, CoreError, Emulator, FiscalCore, Op, ReceiptLine, RequestFault};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1 << 20;
const IDLE: Duration = Duration::from_secs(10);
/// Ours, not the unit's: no source gives УМКА's code for "shift closed".
pub const EMU_SHIFT_CLOSED: i64 = 9001;

pub struct UmkaEmulator {
    /// `(cashier, password)` pairs; a cashier not listed uses its number as password.
    passwords: Mutex<Vec<(u32, String)>>,
    /// Answers to fiscalised receipts by `sessionId`, newest last.
    replay: Mutex<VecDeque<(String, Vec<u8>)>>,
    offset: time::UtcOffset,
}

impl Default for UmkaEmulator {
    fn default() -> Self {
        UmkaEmulator::neva_01_f()
    }
}

impl UmkaEmulator {
    pub fn neva_01_f() -> UmkaEmulator {
        UmkaEmulator {
            passwords: Mutex::new(Vec::new()),
            replay: Mutex::new(VecDeque::new()),
            offset: time::UtcOffset::from_hms(3, 0, 0).unwrap_or(time::UtcOffset::UTC),
        }
    }

    /// Changes a cashier's password (as an administrator would on the unit).
    pub fn set_password(&self, cashier: u32, password: &str) {
        let mut p = self.passwords.lock().unwrap_or_else(|e| e.into_inner());
        p.retain(|(c, _)| *c != cashier);
        p.push((cashier, password.to_string()));
    }

    fn authorised(&self, header: Option<&str>) -> bool {
        let Some(creds) = header.and_then(|h| h.strip_prefix("Basic ")).and_then(|b| base64_decode(b.trim())) else {
            return false;
        };
        let Ok(creds) = String::from_utf8(creds) else { return false };
        let Some((user, pass)) = creds.split_once(':') else { return false };
        let Ok(cashier) = user.parse::<u32>() else { return false };
        if !(1..=99).contains(&cashier) {
            return false;
        }
        let p = self.passwords.lock().unwrap_or_else(|e| e.into_inner());
        let expected = p.iter().find(|(c, _)| *c == cashier).map_or_else(|| cashier.to_string(), |(_, p)| p.clone());
        pass == expected
    }

    fn fmt(&self, t: time::PrimitiveDateTime) -> String {
        codec::format_datetime(t, self.offset)
    }

    fn status(&self, core: &FiscalCore) -> CashboxStatus {
        let id = core.identity();
        let shift = core.shift();
        let regs = core.registers();
        let (unsent, first) = core.ofd_unsent();
        let last = core.last_document();
        let closed_at = core.documents().iter().rev().find(|d| d.kind == DocumentKind::ShiftClose).map(|d| d.datetime);
        let mut flags = codec::flags::FISCALISED | codec::flags::FN_ACTIVE;
        if shift.open {
            flags |= codec::flags::SHIFT_OPEN;
        }
        if core.paper_present() {
            flags |= codec::flags::PAPER_PRESENT;
        }
        CashboxStatus {
            serial: id.reported_serial(),
            model: 0,
            modelstr: id.model_name.clone(),
            ver: "1".into(),
            subver: "0".into(),
            reg_number: id.rnm.clone(),
            user_inn: id.inn.clone(),
            user_name: id.org_name.clone(),
            fs_number: id.fn_serial.clone(),
            fs_status: Some(FsStatus {
                cycle_is_open: i64::from(shift.open),
                last_doc_number: Some(i64::from(core.last_document_number())),
                last_doc_dt: last.map(|d| kkm_core::device::dt::format(&d.datetime)),
                fs_number: id.fn_serial.clone(),
                fs_version: "emulated".into(),
                phase: 3,
                life_time: LifeTime { expiration_dt: id.fn_valid_until.to_string() },
                transport: Transport {
                    offline_docs_count: i64::from(unsent),
                    first_doc_number: first.map_or(0, |d| i64::from(d.number)),
                    first_doc_dt: first.map(|d| self.fmt(d.datetime)),
                    state: i64::from(unsent > 0),
                },
            }),
            cycle_number: i64::from(shift.number),
            cycle_opened: if shift.open { shift.opened_at.map(|t| self.fmt(t)) } else { None },
            cycle_closed: if shift.open { None } else { closed_at.map(|t| self.fmt(t)) },
            dt: self.fmt(core.now()),
            flags,
            mode: 1,
            sub_mode: 0,
            cash: regs.cash_in_drawer.0,
            introductions: i64::from(regs.cash_in_count),
            introductions_sum: regs.cash_ins.0,
            payouts: i64::from(regs.cash_out_count),
            payouts_sum: regs.cash_outs.0,
            last_check_number: i64::from(regs.receipt_count),
            fs_ffd_version: i64::from(id.ffd_code),
            ffd_version: i64::from(id.ffd_code),
            taxes: Some(i64::from(id.tax_systems)),
        }
    }

    fn document_data(&self, core: &FiscalCore, d: &FiscalDocument) -> DocData {
        let id = core.identity();
        let cap = |tag: u32, caption: &str, value: serde_json::Value, printable: String| Prop {
            tag,
            value: Some(value),
            fiscprops: Vec::new(),
            caption: Some(caption.into()),
            printable: Some(format!("{caption}\t{printable}")),
        };
        let mut props = vec![
            Prop { printable: Some(id.org_name.clone()), ..Prop::new(1048, id.org_name.clone()) },
            cap(1018, "ИНН", id.inn.clone().into(), id.inn.clone()),
            Prop {
                printable: Some(kkm_core::device::dt::format(&d.datetime).replace('T', " ")),
                ..Prop::new(1012, self.fmt(d.datetime))
            },
        ];
        if let Some(s) = d.shift_number {
            props.push(cap(1038, "СМЕНА", s.into(), s.to_string()));
        }
        if let (Some(op), Some(total)) = (d.operation, d.total) {
            props.push(Prop { printable: Some(op.name_ru().to_uppercase()), ..Prop::new(1054, op.code()) });
            props.push(cap(1020, "ИТОГ", total.0.into(), total.to_string()));
        }
        if let Some(r) = &d.reference {
            props.push(Prop { printable: Some(r.clone()), ..Prop::new(1192, r.clone()) });
        }
        if let Some(c) = core.receipt_content(d.number) {
            if let Some(name) = &c.cashier {
                props.push(cap(1021, "КАССИР", name.clone().into(), name.clone()));
            }
            for it in &c.items {
                // Quantities are echoed with a decimal comma, as the captures show.
                let q = codec::quantity_text(it.quantity).replace('.', ",");
                props.push(Prop::nested(
                    1059,
                    vec![
                        Prop { printable: Some(it.name.clone()), ..Prop::new(1030, it.name.clone()) },
                        Prop { printable: Some(it.price.to_string()), ..Prop::new(1079, it.price.0) },
                        Prop { printable: Some(q.clone()), ..Prop::new(1023, q) },
                        Prop { printable: Some(it.amount.to_string()), ..Prop::new(1043, it.amount.0) },
                    ],
                ));
            }
            for (kind, m) in &c.payments {
                props.push(cap(codec::money_type(*kind).1, kind.name_ru(), m.0.into(), m.to_string()));
            }
        }
        props.push(cap(1037, "РН ККТ", id.rnm.clone().into(), id.rnm.clone()));
        props.push(cap(1040, "ФД", d.number.into(), d.number.to_string()));
        props.push(cap(1041, "ФН", id.fn_serial.clone().into(), id.fn_serial.clone()));
        props.push(cap(1077, "ФП", d.fiscal_sign.into(), d.fiscal_sign.to_string()));
        props.push(cap(1013, "ЗН ККТ", id.reported_serial().into(), id.reported_serial()));
        let name = match d.kind {
            DocumentKind::Receipt => "Кассовый чек",
            DocumentKind::ShiftOpen => "Отчет об открытии смены",
            DocumentKind::ShiftClose => "Отчет о закрытии смены",
            DocumentKind::Registration => "Отчет о регистрации",
            _ => "Документ",
        };
        DocData {
            doc_number: Some(i64::from(d.number)),
            doc_type: Some(codec::document_type_code(d.kind)),
            name: Some(name.into()),
            fiscprops: props,
            ..DocData::default()
        }
    }

    fn answer(&self, session: Option<String>, data: DocData) -> Vec<u8> {
        let doc = Document { result: 0, message: None, session_id: session, print: None, data: Some(data) };
        serde_json::to_vec(&Frame::answer_document(doc)).unwrap_or_default()
    }

    fn refusal(&self, session: Option<String>, code: i64, text: &str) -> Vec<u8> {
        let doc = Document {
            result: code,
            message: Some(Message { result_description: text.into() }),
            session_id: session,
            print: None,
            data: None,
        };
        serde_json::to_vec(&Frame::answer_document(doc)).unwrap_or_default()
    }

    fn core_refusal(&self, session: Option<String>, e: CoreError) -> Vec<u8> {
        let (code, text) = core_code(e);
        self.refusal(session, code, text)
    }

    /// Runs a `fiscalcheck` step by step. `Err` is a fault that ends the exchange. The
    /// answer delay (`delay=MS`) passes while the receipt is open, before it is closed:
    /// a unit printing a long receipt.
    async fn fiscal_check(&self, emu: &Emulator, body: &[u8]) -> Result<Vec<u8>, AnswerFault> {
        let frame: Frame = match serde_json::from_slice(body) {
            Ok(f) => f,
            Err(_) => return Ok(self.refusal(None, 19, "Неверный формат запроса")),
        };
        let Some(doc) = frame.document else { return Ok(self.refusal(None, 19, "Нет документа в запросе")) };
        let session = doc.session_id.clone();
        if let Some(s) = &session {
            let replay = self.replay.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, answer)) = replay.iter().find(|(k, _)| k == s) {
                return Ok(answer.clone());
            }
        }
        let Some(data) = doc.data else { return Ok(self.refusal(session, 19, "Нет данных документа")) };
        let Some(op) = data.kind.and_then(codec::operation_of_check_type) else {
            return Ok(self.refusal(session, 106, "Неверный тип чека"));
        };
        if codec::find(&data.fiscprops, 1054).and_then(|p| p.int()) != Some(i64::from(op.code())) {
            return Ok(self.refusal(session, 106, "Неверный тип чека"));
        }
        let fail = |e: CoreError| {
            let _ = emu.core().cancel_receipt();
            Ok(self.core_refusal(session.clone(), e))
        };
        let step = |op: Op| -> Result<(), AnswerFault> {
            match emu.on_step(op) {
                AnswerFault::Send | AnswerFault::Corrupt => Ok(()),
                f => {
                    let _ = emu.core().cancel_receipt();
                    Err(f)
                }
            }
        };
        emu.on_step_request(Op::ReceiptOpen);
        let r = emu.core().open_receipt(op);
        if let Err(e) = r {
            return fail(e);
        }
        step(Op::ReceiptOpen)?;
        for item in data.fiscprops.iter().filter(|p| p.tag == 1059) {
            emu.on_step_request(Op::ReceiptItem);
            let line = match item_line(&item.fiscprops) {
                Ok(l) => l,
                Err((code, text)) => {
                    let _ = emu.core().cancel_receipt();
                    return Ok(self.refusal(session, code, text));
                }
            };
            let r = emu.core().add_line(line);
            if let Err(e) = r {
                return fail(e);
            }
            step(Op::ReceiptItem)?;
        }
        let cashier = codec::find(&data.fiscprops, 1021).and_then(|p| p.text());
        let contact = codec::find(&data.fiscprops, 1008).and_then(|p| p.text());
        let reference = codec::find(&data.fiscprops, 1192).and_then(|p| p.text());
        if reference.as_ref().is_some_and(|r| r.chars().count() > 16) {
            return fail(CoreError::BadParameter);
        }
        let r = emu.core().set_receipt_attribute(cashier, contact);
        if let Err(e) = r {
            return fail(e);
        }
        let r = emu.core().set_receipt_reference(reference);
        if let Err(e) = r {
            return fail(e);
        }
        emu.on_step_request(Op::ReceiptPayment);
        let mut payments = [Money::ZERO; 5];
        for (i, kind) in PaymentType::ALL.iter().enumerate() {
            match codec::find(&data.fiscprops, codec::money_type(*kind).1).map(|p| p.int()) {
                None => {}
                Some(Some(v)) if v >= 0 => payments[i] = Money(v),
                Some(_) => return fail(CoreError::BadParameter),
            }
        }
        // `sum` is what was tendered when there is change. Without payment tags (Armax's
        // sample sends them only for mixed payments) the whole total is paid by
        // `moneyType`; with them, cash tendered beyond the tags is change.
        let tagged: i64 = payments.iter().map(|m| m.0).sum();
        let tendered = data.sum.unwrap_or(0);
        if tendered < 0 {
            return fail(CoreError::BadParameter);
        }
        if tagged == 0 {
            let kind = data.money_type.and_then(|m| usize::try_from(m - 1).ok()).filter(|i| *i < 5);
            let Some(i) = kind else { return fail(CoreError::BadParameter) };
            let total = emu.core().receipt().map_or(0, |r| r.total().0);
            payments[i] = Money(total.max(tendered));
        } else if tendered > tagged {
            payments[0] = Money(payments[0].0 + (tendered - tagged));
        }
        let r = emu.core().set_payments(payments);
        if let Err(e) = r {
            return fail(e);
        }
        step(Op::ReceiptPayment)?;
        let delay = emu.answer_delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        emu.on_step_request(Op::ReceiptClose);
        // (Each `emu.core()` guard ends with its statement: `fail` locks again.)
        let closed = emu.core().close_receipt();
        let answer = match closed {
            Ok((d, _)) => {
                let data = self.document_data(&emu.core(), &d);
                self.answer(session.clone(), data)
            }
            Err(e) => return fail(e),
        };
        if let Some(s) = session {
            let mut replay = self.replay.lock().unwrap_or_else(|e| e.into_inner());
            replay.push_back((s, answer.clone()));
            while replay.len() > 256 {
                replay.pop_front();
            }
        }
        Ok(answer)
    }

    /// Runs one request; returns the HTTP status, the body, and the answer fault.
    async fn handle(&self, emu: &Emulator, method: &str, target: &str, body: &[u8]) -> (u16, Vec<u8>, AnswerFault) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let param = |name: &str| query.split('&').find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')));
        let print = param("print") == Some("1");
        let op = match (method, path) {
            ("GET", "/cashboxstatus.json") => Op::Status,
            ("GET", "/fiscaldoc.json") if print => Op::Print,
            ("GET", "/fiscaldoc.json") => Op::Query,
            ("GET", "/cycleopen.json") => Op::OpenShift,
            ("GET", "/cycleclose.json") => Op::CloseShift,
            ("POST", "/fiscalcheck.json") => Op::ReceiptOpen,
            _ => return (404, b"{\"error\":\"not found\"}".to_vec(), AnswerFault::Send),
        };
        if emu.on_request(op) == RequestFault::Nak {
            return (503, b"{\"error\":\"busy\"}".to_vec(), AnswerFault::Send);
        }
        let body = match op {
            Op::Status => serde_json::to_vec(&Frame::answer_status(self.status(&emu.core()))).unwrap_or_default(),
            Op::Query | Op::Print => {
                let number = param("number").and_then(|n| n.parse::<u32>().ok());
                let mut core = emu.core();
                match number.map(|n| core.document(n).cloned()) {
                    None => self.refusal(None, 19, "Неверный номер документа"),
                    Some(Err(e)) => self.core_refusal(None, e),
                    Some(Ok(d)) => {
                        if op == Op::Print && core.last_document_number() == d.number {
                            if let Err(e) = core.print_copy() {
                                return (200, self.core_refusal(None, e), emu.on_answer(op));
                            }
                        } else if op == Op::Print && !core.paper_present() {
                            return (200, self.core_refusal(None, CoreError::PaperOut), emu.on_answer(op));
                        }
                        let data = self.document_data(&core, &d);
                        self.answer(None, data)
                    }
                }
            }
            Op::OpenShift | Op::CloseShift => {
                let mut core = emu.core();
                let r = if op == Op::OpenShift { core.open_shift() } else { core.close_shift() };
                match r {
                    Ok(d) => {
                        let data = self.document_data(&core, &d);
                        self.answer(None, data)
                    }
                    Err(e) => self.core_refusal(None, e),
                }
            }
            _ => match self.fiscal_check(emu, body).await {
                Ok(b) => b,
                Err(fault) => return (200, Vec::new(), fault),
            },
        };
        let fault = if op == Op::ReceiptOpen { emu.on_answer(Op::ReceiptClose) } else { emu.on_answer(op) };
        (200, body, fault)
    }
}

/// One item (tag 1059) as the core's line. Errors are (code, text) for the answer.
fn item_line(props: &[Prop]) -> Result<ReceiptLine, (i64, &'static str)> {
    let int = |tag| codec::find(props, tag).and_then(|p| p.int());
    let name = codec::find(props, 1030).and_then(|p| p.text()).filter(|n| !n.is_empty()).ok_or((19, "Нет наименования"))?;
    let price = int(1079).filter(|v| *v >= 0).ok_or((19, "Неверная цена"))?;
    let quantity = codec::find(props, 1023)
        .and_then(|p| p.value.as_ref())
        .and_then(codec::parse_quantity)
        .filter(|q| q.0 > 0)
        .ok_or((10, "Неверное количество"))?;
    let amount = match int(1043) {
        Some(a) if a >= 0 => Money(a),
        Some(_) => return Err((19, "Неверная стоимость")),
        None => quantity.times(Money(price)).ok_or((19, "Неверная стоимость"))?,
    };
    let vat = int(1199).and_then(codec::vat_of_code).ok_or((19, "Неверная ставка НДС"))?;
    let small = |tag, lo, hi| int(tag).filter(|v| (lo..=hi).contains(v)).and_then(|v| u8::try_from(v).ok());
    Ok(ReceiptLine {
        name,
        price: Money(price),
        quantity,
        amount,
        vat,
        department: 1,
        payment_method: small(1214, 1, 7).ok_or((19, "Неверный признак способа расчёта"))?,
        payment_object: small(1212, 1, 33).ok_or((19, "Неверный признак предмета расчёта"))?,
        measure_unit: small(2108, 0, 255),
    })
}

/// The core's refusals as the unit's codes: the seen ones where they exist, ATOL's
/// table (in decimal) otherwise, and ours for a closed shift.
fn core_code(e: CoreError) -> (i64, &'static str) {
    match e {
        CoreError::ShiftClosed => (EMU_SHIFT_CLOSED, "Смена не открыта (эмулятор)"),
        CoreError::ShiftExpired => (136, "Смена превысила 24 часа"),
        CoreError::ShiftAlreadyOpen => (0x9C, "Смена открыта - операция невозможна"),
        CoreError::ReceiptOpen => (0x9B, "Чек открыт - операция невозможна"),
        CoreError::NoReceipt => (0x9A, "Чек закрыт - операция невозможна"),
        CoreError::PaperOut | CoreError::AwaitingContinue => (0x67, "Нет бумаги"),
        CoreError::NotEnoughCash => (0x98, "В ККТ нет денег для выплаты"),
        CoreError::PaymentsShort => (0x72, "Сумма оплат меньше суммы чека"),
        CoreError::NonCashExceedsTotal => (0x71, "Сумма безналичных оплат больше суммы чека"),
        CoreError::ZeroTotal | CoreError::BadParameter => (0x13, "Неверный формат команды"),
        CoreError::DocumentNotFound => (0xDA, "В ФН нет запрошенных данных"),
        CoreError::OfdBlocked => (0xEF, "Превышено время ожидания ответа ОФД"),
        CoreError::FnExpired => (0xD7, "Закончен срок эксплуатации ФН"),
        CoreError::Overflow => (0x81, "Переполнение"),
    }
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() > 1024 || s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= val(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        411 => "Length Required",
        413 => "Payload Too Large",
        _ => "Service Unavailable",
    }
}

async fn respond(stream: &mut BoxStream, code: u16, body: &[u8], extra: &str) {
    let head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        reason(code),
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.flush().await;
}

#[async_trait]
impl WireDevice for UmkaEmulator {
    type Session = ();

    async fn serve(&self, emu: &Arc<Emulator>, stream: &mut BoxStream, _session: &mut ()) -> LinkOutcome {
        // One request per connection (`Connection: close`).
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(end) = find_head_end(&buf) {
                break end;
            }
            if buf.len() > MAX_HEAD {
                respond(stream, 400, b"{\"error\":\"header too large\"}", "").await;
                return LinkOutcome::Closed;
            }
            match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return LinkOutcome::Closed,
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split_whitespace();
        let (method, target) = (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
        let mut length = 0usize;
        let mut auth = None;
        for l in lines {
            let Some((k, v)) = l.split_once(':') else { continue };
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => match v.parse::<usize>() {
                    Ok(n) if n <= MAX_BODY => length = n,
                    _ => {
                        respond(stream, 413, b"{\"error\":\"body too large\"}", "").await;
                        return LinkOutcome::Closed;
                    }
                },
                "transfer-encoding" => {
                    respond(stream, 411, b"{\"error\":\"length required\"}", "").await;
                    return LinkOutcome::Closed;
                }
                "authorization" => auth = Some(v.to_string()),
                _ => {}
            }
        }
        let mut body = buf[head_end..].to_vec();
        while body.len() < length {
            match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => body.extend_from_slice(&chunk[..n]),
                _ => return LinkOutcome::Closed,
            }
        }
        body.truncate(length);
        if !self.authorised(auth.as_deref()) {
            respond(stream, 401, b"{\"error\":\"unauthorized\"}", "WWW-Authenticate: Basic realm=\"kkm\"\r\n").await;
            return LinkOutcome::Closed;
        }
        let receipt = method == "POST";
        let (code, answer, fault) = self.handle(emu, &method, &target, &body).await;
        let delay = emu.answer_delay();
        if !delay.is_zero() && !receipt {
            tokio::time::sleep(delay).await;
        }
        match fault {
            AnswerFault::Send => respond(stream, code, &answer, "").await,
            AnswerFault::Corrupt => {
                let cut = &answer[..answer.len() / 2];
                respond(stream, code, cut, "").await;
            }
            AnswerFault::Lose => {}
            AnswerFault::DropLink(d) => return LinkOutcome::Down(d),
            AnswerFault::PowerCut(d) => return LinkOutcome::PowerCut(d),
        }
        LinkOutcome::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The emulator's refusals must mean, through the driver's table, what the core
    /// meant: a change to the ATOL table the driver borrows shows up here.
    #[test]
    fn refusal_codes_keep_their_meaning_through_the_driver() {
        use kkm_core::Condition::*;
        let cases = [
            (CoreError::ShiftExpired, Some(ShiftExpired)),
            (CoreError::ShiftAlreadyOpen, Some(ShiftAlreadyOpen)),
            (CoreError::ReceiptOpen, Some(ReceiptOpen)),
            (CoreError::PaperOut, Some(PaperOut)),
            (CoreError::NotEnoughCash, Some(NotEnoughCash)),
            (CoreError::PaymentsShort, Some(BadRequest)),
            (CoreError::NonCashExceedsTotal, Some(BadRequest)),
            (CoreError::BadParameter, Some(BadRequest)),
            (CoreError::DocumentNotFound, Some(BadRequest)),
            (CoreError::OfdBlocked, Some(OfdBlocked)),
            (CoreError::FnExpired, Some(FnExhausted)),
            (CoreError::ShiftClosed, None), // 9001: unknown to the driver, explained from the status
        ];
        for (e, want) in cases {
            let info = crate::errors::info(core_code(e).0);
            match want {
                Some(c) => assert_eq!(info.condition, c, "{e:?} → {}", info.code),
                None => assert_eq!(info.code, "device.unknown_error", "{e:?}"),
            }
        }
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("NzA6NzA=").unwrap(), b"70:70");
        assert_eq!(base64_decode("MTox").unwrap(), b"1:1");
        assert!(base64_decode("!!!").is_none());
    }

    #[test]
    fn auth_defaults_and_changes() {
        let e = UmkaEmulator::neva_01_f();
        assert!(e.authorised(Some("Basic MTox"))); // 1:1
        assert!(e.authorised(Some("Basic NzA6NzA="))); // 70:70, as in a public capture
        assert!(!e.authorised(Some("Basic MToy"))); // 1:2
        assert!(!e.authorised(None));
        e.set_password(1, "2");
        assert!(e.authorised(Some("Basic MToy")));
    }

    #[test]
    fn items_are_checked() {
        let ok = vec![
            Prop::new(1214, 4),
            Prop::new(1212, 4),
            Prop::new(1030, "Стрижка"),
            Prop::new(1079, 1000),
            Prop::new(1023, "2.000"),
            Prop::new(1199, 1),
        ];
        assert_eq!(item_line(&ok).unwrap().amount, Money(2000));
        let mut bad = ok.clone();
        bad[4] = Prop::new(1023, "два");
        assert_eq!(item_line(&bad).unwrap_err().0, 10);
    }
}
