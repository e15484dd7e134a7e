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
use std::sync::Mutex;
use kkm_emu::listen::LinkOutcome;
use kkm_emu::{AnswerFault, CoreError, Emulator, FiscalCore, Op, ReceiptLine, RequestFault, WireDevice};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An emulated Shtrih-protocol register.
///
/// Written from `protocol-specs/shtrih-m.md` (its conformance table names the source
/// of every layout and behaviour here), not from the driver.
pub struct ShtrihEmulator {
    model_id: u8,
    name: &'static str,
    /// Table 6 as this unit has it: row n (1-based) is `vat_table[n-1]`. Only the
    /// classic commands (tax groups 1…4) and table reads use it; FF46 takes a code.
    vat_table: [VatRate; 10],
    /// A shift document started by FF41/FF42 that E0/41h will make.
    shift_doc: Mutex<ShiftDoc>,
}

#[derive(Default)]
struct ShiftDoc {
    started: bool,
    cashier: Option<String>,
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
            shift_doc: Mutex::new(ShiftDoc::default()),
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
        | FN_FIND_DOCUMENT | FN_REQUEST_DOCUMENT_TLV | FN_READ_DOCUMENT_TLV | FN_OFD_STATUS | FN_SHIFT_PARAMS => Op::Query,
        OPEN_SHIFT => Op::OpenShift,
        Z_REPORT => Op::CloseShift,
        X_REPORT => Op::XReport,
        CASH_IN => Op::CashIn,
        CASH_OUT => Op::CashOut,
        FN_REGISTRATION_TOTALS | FN_REGISTRATION_TAG | FN_UNCONFIRMED_COUNT | SUBTOTAL | BEEP => Op::Query,
        OPEN_RECEIPT => Op::ReceiptItem,
        FEED => Op::Print,
        FN_START_SHIFT_OPEN => Op::OpenShift,
        FN_START_SHIFT_CLOSE => Op::CloseShift,
        OPERATION_V2 | FN_SEND_TLV | FN_SEND_OPERATION_TLV | SALE | SALE_RETURN | PURCHASE | PURCHASE_RETURN => {
            Op::ReceiptItem
        }
        CLOSE_RECEIPT_V2 | CLOSE_RECEIPT => Op::ReceiptClose,
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
        CoreError::OfdBlocked => 0x14, // ФН 1.2 ([V117], [FNS])
        CoreError::FnExpired => 0x05, // «параметры не соответствуют сроку жизни ФН»
        CoreError::Overflow => 0x48,
    }
}

type Outcome = Result<Vec<u8>, u8>;

fn bad<T>(_: T) -> u8 {
    0x33
}

/// Who a command wants ([V117]: each command names its password).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// "Пароль оператора": any of the 30 operators.
    Operator,
    /// "Пароль администратора или системного администратора": 29 or 30 (X, Z).
    Admin,
    /// "Пароль системного администратора": 30 (ФН commands, FF45, tables).
    SysAdmin,
}

/// The factory passwords ([V117] conventions; [PYS] `Device` defaults: cashier 1,
/// administrator 30): operator n (1…28) has password n, the administrator 29, the
/// system administrator 30. Returns the operator's number for the answer.
fn password_ok(r: &mut Reader, role: Role) -> Result<u8, u8> {
    let pw = r.u32().map_err(bad)?;
    let ok = match role {
        Role::Operator => (1..=30).contains(&pw),
        Role::Admin => pw == 29 || pw == 30,
        Role::SysAdmin => pw == 30,
    };
    if ok {
        Ok(pw as u8)
    } else {
        Err(0x4F)
    }
}

/// A 5-byte sum within the documented range ([V117] 50h/80h/85h: 0…9 999 999 999);
/// beyond it the request is refused (error code unconfirmed: 0x33).
fn sum_field(r: &mut Reader) -> Result<Money, u8> {
    let v = r.uint(5).map_err(bad)?;
    if v > MAX_WIRE_SUM as u64 {
        return Err(0x33);
    }
    Ok(Money(v as i64))
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
        let vat_set = VatCodeSet::for_model(self.model_id);
        match cmd {
            DEVICE_TYPE => Ok(Writer::new().u8(0).u8(0).u8(1).u8(16).u8(self.model_id).u8(0).text(self.name, 64).done()),
            SHORT_STATUS => {
                let op = password_ok(&mut r, Role::Operator)?;
                let (mode, submode) = Self::mode(core);
                let ops = core.receipt().map_or(0, |x| x.lines.len() as u16);
                Ok(Writer::new()
                    .u8(op)
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
                let op = password_ok(&mut r, Role::Operator)?;
                let (mode, submode) = Self::mode(core);
                let id = core.identity();
                let serial = digits_value(&id.reported_serial());
                let inn = digits_value(&id.inn);
                let closed_shift = if core.shift().open { core.shift().number.saturating_sub(1) } else { core.shift().number };
                Ok(Writer::new()
                    .u8(op)
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
                    .uint(serial & 0xFFFF_FFFF, 4)
                    .u16(closed_shift as u16)
                    .u16(2000)
                    .u8(1)
                    .u8(11)
                    .uint(inn, 6)
                    .u16((serial >> 32) as u16)
                    .done())
            }
            READ_TABLE => {
                password_ok(&mut r, Role::SysAdmin)?;
                let (table, row, field) = (r.u8().map_err(bad)?, r.u16().map_err(bad)?, r.u8().map_err(bad)?);
                let rate = usize::from(row).checked_sub(1).and_then(|i| self.vat_table.get(i));
                match (table, rate, field) {
                    (VAT_TABLE, Some(rate), 1) => {
                        let hundredths = rate.fraction().map_or(0, |(n, d)| if d == 1 { 0 } else { n * 100 });
                        Ok(Writer::new().u16(hundredths as u16).done())
                    }
                    (VAT_TABLE, Some(rate), 2) => Ok(Writer::new().text_fixed(rate.label_ru(), 60).done()),
                    (OFD_TABLE, _, OFD_FIELD_SERVER) if row == 1 => {
                        Ok(Writer::new().text_fixed(core.ofd_address().0, OFD_SERVER_WIDTH).done())
                    }
                    (OFD_TABLE, _, OFD_FIELD_PORT) if row == 1 => Ok(Writer::new().u16(core.ofd_address().1).done()),
                    _ => Err(0x33),
                }
            }
            CASH_REGISTER => {
                let op = password_ok(&mut r, Role::Operator)?;
                // One byte, or two for the K-registers above 255 ([V117] 1Ah).
                let reg = match r.remaining() {
                    1 => u16::from(r.u8().map_err(bad)?),
                    2 => r.u16().map_err(bad)?,
                    _ => return Err(0x33),
                };
                let regs = core.registers();
                let value = match reg {
                    REG_CASH_IN_DRAWER => regs.cash_in_drawer,
                    REG_CASH_INS => regs.cash_ins,
                    REG_CASH_OUTS => regs.cash_outs,
                    n => match register_payment(n) {
                        Some((ptype, oi)) => {
                            let op = [Operation::Sale, Operation::Purchase, Operation::SaleReturn, Operation::PurchaseReturn]
                                [usize::from(oi)];
                            PaymentType::ALL
                                .into_iter()
                                .find(|p| payment_type_number(*p) == ptype)
                                .map_or(Money::ZERO, |p| core.sum(op, p))
                        }
                        None => Money::ZERO,
                    },
                };
                Ok(Writer::new().u8(op).uint(value.0.max(0) as u64, 6).done())
            }
            OPERATING_REGISTER => {
                let op = password_ok(&mut r, Role::Operator)?;
                let reg = r.u8().map_err(bad)?;
                let regs = core.registers();
                let value = match reg {
                    OPREG_DOCUMENT_NUMBER => core.documents_printed(),
                    n if (OPREG_RECEIPTS_BASE..OPREG_RECEIPTS_BASE + 4).contains(&n) => {
                        use kkm_core::Operation::*;
                        let op = [Sale, Purchase, SaleReturn, PurchaseReturn]
                            .into_iter()
                            .find(|o| operation_index(*o) == n - OPREG_RECEIPTS_BASE)
                            .unwrap_or(Sale);
                        core.receipts_of(op)
                    }
                    153 => regs.cash_in_count,
                    154 => regs.cash_out_count,
                    _ => 0,
                };
                Ok(Writer::new().u8(op).u16(value as u16).done())
            }
            FN_START_SHIFT_OPEN | FN_START_SHIFT_CLOSE => {
                password_ok(&mut r, Role::SysAdmin)?;
                if core.receipt().is_some() {
                    return Err(0x4A);
                }
                let open = core.shift().open;
                match (cmd, open) {
                    (FN_START_SHIFT_OPEN, true) => return Err(0x3C),
                    (FN_START_SHIFT_CLOSE, false) => return Err(0x3D),
                    _ => {}
                }
                let mut doc = self.shift_doc.lock().unwrap_or_else(|e| e.into_inner());
                *doc = ShiftDoc { started: true, cashier: None };
                Ok(Vec::new())
            }
            OPEN_SHIFT => {
                password_ok(&mut r, Role::Operator)?;
                let cashier = self.take_shift_doc();
                core.set_shift_cashier(cashier);
                let made = core.open_shift().map(|_| Vec::new()).map_err(core_error_code);
                if made.is_err() {
                    core.set_shift_cashier(None);
                }
                made
            }
            Z_REPORT => {
                let op = password_ok(&mut r, Role::Admin)?;
                let cashier = self.take_shift_doc();
                core.set_shift_cashier(cashier);
                let made = core.close_shift().map(|_| vec![op]).map_err(core_error_code);
                if made.is_err() {
                    core.set_shift_cashier(None);
                }
                made
            }
            X_REPORT => {
                let op = password_ok(&mut r, Role::Admin)?;
                core.x_report().map(|_| vec![op]).map_err(core_error_code)
            }
            CASH_IN | CASH_OUT => {
                let op = password_ok(&mut r, Role::Operator)?;
                let sum = sum_field(&mut r)?;
                let n = if cmd == CASH_IN { core.cash_in(sum) } else { core.cash_out(sum) }.map_err(core_error_code)?;
                Ok(Writer::new().u8(op).u16(n as u16).done())
            }
            CANCEL_RECEIPT => {
                let op = password_ok(&mut r, Role::Operator)?;
                core.cancel_receipt().map(|_| vec![op]).map_err(core_error_code)
            }
            CONTINUE_PRINT => {
                let op = password_ok(&mut r, Role::Operator)?;
                core.continue_print().map(|_| vec![op]).map_err(core_error_code)
            }
            REPEAT_DOCUMENT => {
                let op = password_ok(&mut r, Role::Operator)?;
                core.print_copy().map(|_| vec![op]).map_err(core_error_code)
            }
            PRINT_STRING => {
                let op = password_ok(&mut r, Role::Operator)?;
                r.u8().map_err(bad)?;
                let text = codec::from_cp1251(r.rest());
                core.print_text(vec![text]).map(|_| vec![op]).map_err(core_error_code)
            }
            CUT | OPEN_DRAWER => {
                let op = password_ok(&mut r, Role::Operator)?;
                Ok(vec![op])
            }
            FN_STATUS => {
                password_ok(&mut r, Role::SysAdmin)?;
                let id = core.identity();
                let dt = core.last_document().map_or(now, |d| d.datetime);
                let current = if core.receipt().is_some() {
                    0x04
                } else if self.shift_doc.lock().map(|d| d.started).unwrap_or(false) {
                    if core.shift().open { 0x08 } else { 0x02 }
                } else {
                    0x00
                };
                Ok(Writer::new()
                    .u8(0x03)
                    .u8(current)
                    .u8(0)
                    .u8(u8::from(core.shift().open))
                    .u8(0)
                    .bytes(&codec::fn_datetime_bytes(&dt))
                    .text_fixed(&id.fn_serial, 16)
                    .u32(core.last_document_number())
                    .done())
            }
            FN_SERIAL => {
                password_ok(&mut r, Role::SysAdmin)?;
                Ok(Writer::new().text_fixed(&core.identity().fn_serial, 16).done())
            }
            FN_EXPIRY => {
                password_ok(&mut r, Role::SysAdmin)?;
                let d = core.identity().fn_valid_until;
                Ok(Writer::new().bytes(&[(d.year() % 100) as u8, u8::from(d.month()), d.day()]).u8(11).u8(1).done())
            }
            FN_REGISTRATION_TAG => {
                password_ok(&mut r, Role::SysAdmin)?;
                let report = r.u8().map_err(bad)?;
                let tag = r.u16().map_err(bad)?;
                let id = core.identity();
                crate::registration::ff0e_answer(report, tag, id.ffd_code, id.tax_systems)
            }
            FN_REGISTRATION_TOTALS => {
                password_ok(&mut r, Role::SysAdmin)?;
                let reg = core.document(1).map_err(core_error_code)?;
                let id = core.identity();
                Ok(Writer::new()
                    .bytes(&codec::fn_datetime_bytes(&reg.datetime))
                    .text_fixed(&id.inn, 12)
                    .text_fixed(&id.rnm, 20)
                    .u8(id.tax_systems)
                    .u8(0)
                    .u32(reg.number)
                    .u32(reg.fiscal_sign)
                    .done())
            }
            FN_REQUEST_DOCUMENT_TLV => {
                password_ok(&mut r, Role::SysAdmin)?;
                let n = r.u32().map_err(bad)?;
                let (doc_type, len) = core.start_tlv_read(n).map_err(core_error_code)?;
                Ok(Writer::new().u16(doc_type).u16(len).done())
            }
            FN_READ_DOCUMENT_TLV => {
                password_ok(&mut r, Role::SysAdmin)?;
                // Blocks of at most 200 bytes fit one frame; 08 when all is read.
                core.next_tlv_block(200).map_err(core_error_code)
            }
            FN_FIND_DOCUMENT => {
                password_ok(&mut r, Role::SysAdmin)?;
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
                password_ok(&mut r, Role::SysAdmin)?;
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
                password_ok(&mut r, Role::SysAdmin)?;
                let s = core.shift();
                Ok(Writer::new().u8(u8::from(s.open)).u16(s.number as u16).u16(core.registers().receipt_count as u16).done())
            }
            OPERATION_V2 => {
                password_ok(&mut r, Role::Operator)?;
                let op = Operation::from_code(r.u8().map_err(bad)?).ok_or(0x33)?;
                let quantity = r.quantity6().map_err(bad)?;
                let price = sum_field(&mut r)?;
                let amount_raw = r.uint(5).map_err(bad)?;
                r.uint(5).map_err(bad)?;
                let tax = r.u8().map_err(bad)?;
                let department = r.u8().map_err(bad)?;
                let payment_method = r.u8().map_err(bad)?;
                let payment_object = r.u8().map_err(bad)?;
                let name = codec::from_cp1251(r.rest());
                // The tax byte is a code ([JPOS] getVatCodeShtrih); anything else is refused.
                let vat = vat_from_code(tax, vat_set).ok_or(0x33)?;
                let computed = Quantity(quantity.0).times(price).ok_or(0x48)?;
                let amount = if amount_raw == 0xFF_FFFF_FFFF {
                    computed
                } else if amount_raw > MAX_WIRE_SUM as u64 || (amount_raw as i64 - computed.0).abs() > 1 {
                    // [V117] FF46 note 1: a given sum may differ from price × quantity
                    // by at most one kopeck.
                    return Err(0x33);
                } else {
                    Money(amount_raw as i64)
                };
                self.add_line(core, op, ReceiptLine {
                    name,
                    price,
                    quantity,
                    amount,
                    vat,
                    department,
                    payment_method,
                    payment_object,
                    measure_unit: None,
                })
                .map(|_| Vec::new())
            }
            SALE | SALE_RETURN | PURCHASE | PURCHASE_RETURN => {
                let opn = password_ok(&mut r, Role::Operator)?;
                // [V117] 80h–83h: quantity(5, thousandths), price(5), department, 4 tax
                // groups, text (cp1251).
                let quantity = Quantity(r.uint(5).map_err(bad)? as i64);
                let price = sum_field(&mut r)?;
                let department = r.u8().map_err(bad)?;
                let taxes = r.bytes(4).map_err(bad)?.to_vec();
                let name = codec::from_cp1251(r.rest());
                if quantity.0 <= 0 || quantity.0 > 9_999_999_999 {
                    return Err(0x33);
                }
                // The first non-zero group names the rate (table 6 row 1…4); no group:
                // без НДС (unconfirmed).
                let vat = match taxes.iter().find(|t| **t != 0) {
                    None => VatRate::NoVat,
                    Some(g @ 1..=4) => self.vat_table[usize::from(*g) - 1],
                    Some(_) => return Err(0x33),
                };
                let op = match cmd {
                    SALE => Operation::Sale,
                    SALE_RETURN => Operation::SaleReturn,
                    PURCHASE => Operation::Purchase,
                    _ => Operation::PurchaseReturn,
                };
                let amount = quantity.times(price).filter(|a| a.0 <= MAX_WIRE_SUM).ok_or(0x48)?;
                // Payment method and subject: full payment (4), commodity (1)
                // (unconfirmed: a unit takes them from its tables).
                let line = ReceiptLine {
                    name,
                    price,
                    quantity,
                    amount,
                    vat,
                    department,
                    payment_method: 4,
                    payment_object: 1,
                    measure_unit: None,
                };
                self.add_line(core, op, line).map(|_| vec![opn])
            }
            FN_SEND_TLV | FN_SEND_OPERATION_TLV => {
                password_ok(&mut r, Role::SysAdmin)?;
                let tag = r.u16().map_err(bad)?;
                let len = r.u16().map_err(bad)?;
                let value = r.bytes(usize::from(len)).map_err(bad)?;
                if cmd == FN_SEND_OPERATION_TLV {
                    return match (tag, value) {
                        (2108, [unit]) if kkm_core::MeasureUnit::from_code(*unit).is_some() => {
                            core.set_last_line_measure_unit(*unit).map(|_| Vec::new()).map_err(core_error_code)
                        }
                        (2108, _) => Err(0x33),
                        _ => core.receipt().map(|_| Vec::new()).ok_or(0x55),
                    };
                }
                let text = encoding_rs::IBM866.decode(value).0.trim().to_string();
                if core.receipt().is_none() {
                    // Outside a receipt a TLV belongs to a started shift document.
                    let mut doc = self.shift_doc.lock().unwrap_or_else(|e| e.into_inner());
                    if !doc.started {
                        return Err(0x02);
                    }
                    if tag == 1021 {
                        doc.cashier = Some(text);
                    }
                    return Ok(Vec::new());
                }
                match tag {
                    1021 => core.set_receipt_attribute(Some(text), None),
                    1008 => core.set_receipt_attribute(None, Some(text)),
                    _ => core.set_receipt_attribute(None, None),
                }
                .map(|_| Vec::new())
                .map_err(core_error_code)
            }
            CLOSE_RECEIPT_V2 => {
                password_ok(&mut r, Role::SysAdmin)?;
                let mut slots = [Money::ZERO; 16];
                for s in &mut slots {
                    *s = sum_field(&mut r)?;
                }
                let mut payments = [Money::ZERO; 5];
                for (i, p) in PaymentType::ALL.into_iter().enumerate() {
                    payments[i] = slots[payment_slot(p)];
                }
                // Slots 3–13 reach the ФН as electronic payment ([V117] FF45 note).
                let others: i64 = slots[2..13].iter().map(|m| m.0).sum();
                payments[1] = Money(payments[1].0 + others);
                self.close(core, payments).map(|(change, doc)| {
                    Writer::new()
                        .money(change)
                        .u32(doc.number)
                        .u32(doc.fiscal_sign)
                        .bytes(&codec::fn_datetime_bytes(&doc.datetime))
                        .done()
                })
            }
            CLOSE_RECEIPT => {
                let op = password_ok(&mut r, Role::Operator)?;
                // [V117] 85h: cash, payment types 2–4 (5 bytes each), discount (2,
                // signed, hundredths of a percent), 4 tax groups, text.
                let cash = sum_field(&mut r)?;
                let mut others = 0i64;
                for _ in 0..3 {
                    others += sum_field(&mut r)?.0;
                }
                let discount = r.u16().map_err(bad)?;
                r.bytes(4).map_err(bad)?;
                if discount != 0 {
                    // The emulator does not model receipt discounts.
                    return Err(0x33);
                }
                let payments = [cash, Money(others), Money::ZERO, Money::ZERO, Money::ZERO];
                self.close(core, payments).map(|(change, _)| Writer::new().u8(op).money(change).done())
            }
            BEEP => Ok(vec![password_ok(&mut r, Role::Operator)?]),
            FEED => {
                let op = password_ok(&mut r, Role::Operator)?;
                let (_flags, lines) = (r.u8().map_err(bad)?, r.u8().map_err(bad)?);
                if lines == 0 {
                    return Err(0x33);
                }
                if !core.paper_present() {
                    return Err(0x6B);
                }
                Ok(vec![op])
            }
            SUBTOTAL => {
                let op = password_ok(&mut r, Role::Operator)?;
                let total = core.receipt().map(|x| x.total()).ok_or(0x55)?;
                Ok(Writer::new().u8(op).money(total).done())
            }
            OPEN_RECEIPT => {
                let opn = password_ok(&mut r, Role::Operator)?;
                // [V117] 8Dh: 0 sale, 1 purchase, 2 sale return, 3 purchase return.
                let op = match r.u8().map_err(bad)? {
                    0 => Operation::Sale,
                    1 => Operation::Purchase,
                    2 => Operation::SaleReturn,
                    3 => Operation::PurchaseReturn,
                    _ => return Err(0x33),
                };
                core.open_receipt(op).map(|_| vec![opn]).map_err(core_error_code)
            }
            FN_UNCONFIRMED_COUNT => {
                password_ok(&mut r, Role::SysAdmin)?;
                Ok(Writer::new().u16(core.ofd_unsent().0 as u16).done())
            }
            _ => Err(0x37),
        }
    }

    fn take_shift_doc(&self) -> Option<String> {
        let mut doc = self.shift_doc.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *doc).cashier
    }

    /// Adds a line, opening the receipt with the first one.
    fn add_line(&self, core: &mut FiscalCore, op: Operation, line: ReceiptLine) -> Result<(), u8> {
        match core.receipt() {
            None => core.open_receipt(op).map_err(core_error_code)?,
            Some(open) if open.operation != op => return Err(0x49),
            Some(_) => {}
        }
        core.add_line(line).map_err(core_error_code)
    }

    /// Closes the open receipt with these payments (in the order of `PaymentType::ALL`).
    fn close(&self, core: &mut FiscalCore, payments: [Money; 5]) -> Result<(Money, kkm_core::FiscalDocument), u8> {
        if core.receipt().is_none() {
            return Err(0x55);
        }
        core.set_payments(payments).map_err(core_error_code)?;
        match core.close_receipt() {
            Ok((doc, change)) => Ok((change, doc)),
            Err(e) => {
                let _ = core.set_payments([Money::ZERO; 5]);
                Err(core_error_code(e))
            }
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
                        // The power goes off as the frame arrives: it never runs.
                        RequestFault::PowerCutBefore(d) => return LinkOutcome::PowerCut(d),
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
