//! The УМКА API's JSON documents, and the pure functions between them and our domain.
//!
//! Every answer is an envelope `{"protocol":1,"version":"1.0", …}` holding either a
//! `cashboxStatus` object or a `document`. Documents carry their fiscal data as a list of
//! FFD tags (`fiscprops`), each `{tag, value}` or, for a structure such as an item (1059),
//! `{tag, fiscprops:[…]}`. Answers add `caption` and `printable` for the paper.
//!
//! Answers come from outside. A field we rely on (the ФН's last document number, a
//! document's number and fiscal sign) must be present and well-typed or the answer is a
//! protocol error; fields we only show are read leniently (a serial may be a JSON number
//! on one firmware and a string on another, as the public captures show). Money is read
//! only from JSON integers: a fractional number near money is an error, never rounded.

use kkm_core::error::{DriverError, DriverResult};
use kkm_core::{
    DocumentKind, FiscalDocument, FiscalResult, Money, Operation, PaymentType, Quantity, Receipt, ReceiptTotals,
    TaxSystem, VatRate,
};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use time::{Date, PrimitiveDateTime};

// ----- lenient scalar readers -----

/// A string that some firmware sends as a JSON number (the factory number). Trimmed: the
/// captures pad some registration fields with spaces.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(other) => return Err(D::Error::custom(format!("expected text, got {other}"))),
    })
}

fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = text(d)?;
    Ok((!s.is_empty()).then_some(s))
}

/// An integer, also from a string of digits. Fractions are refused (they would be money).
fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(0),
        Some(v) => int_of(&v).ok_or_else(|| D::Error::custom(format!("expected an integer, got {v}"))),
    }
}

fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => int_of(&v).map(Some).ok_or_else(|| D::Error::custom(format!("expected an integer, got {v}"))),
    }
}

/// An optional integer that only diagnostics read: anything else is `None`, never an
/// error that would make the whole status unreadable.
fn lenient_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.as_ref().and_then(int_of))
}

// ----- the envelope -----

/// One request or answer. `protocol` 1 is JSON (3 would be XML); `version` is "1.0".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(rename = "cashboxStatus", default, skip_serializing_if = "Option::is_none")]
    pub cashbox_status: Option<CashboxStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Document>,
}

impl Frame {
    pub fn answer_status(status: CashboxStatus) -> Frame {
        Frame { protocol: Some(1), version: Some("1.0".into()), cashbox_status: Some(status), document: None }
    }
    pub fn answer_document(document: Document) -> Frame {
        Frame { protocol: Some(1), version: Some("1.0".into()), cashbox_status: None, document: Some(document) }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    #[serde(rename = "resultDescription", default, deserialize_with = "text")]
    pub result_description: String,
}

/// A fiscal document: what a shift or receipt request sends and what it gets back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// 0 = done; anything else is the device's error code (see [`crate::errors`]).
    #[serde(default, deserialize_with = "int")]
    pub result: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// The client's id of the request (any string in the captures).
    #[serde(rename = "sessionId", default, deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// 1 = print the document on paper.
    #[serde(default, deserialize_with = "opt_int", skip_serializing_if = "Option::is_none")]
    pub print: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DocData>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DocData {
    #[serde(rename = "docNumber", default, deserialize_with = "opt_int", skip_serializing_if = "Option::is_none")]
    pub doc_number: Option<i64>,
    /// The FFD document type: 1 registration, 2 shift open, 3 receipt, 5 shift close, …
    #[serde(rename = "docType", default, deserialize_with = "opt_int", skip_serializing_if = "Option::is_none")]
    pub doc_type: Option<i64>,
    #[serde(default, deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "docName", default, deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub doc_name: Option<String>,
    /// Request only: 1 sale, 2 sale return, 4 purchase, 5 purchase return.
    #[serde(rename = "type", default, deserialize_with = "opt_int", skip_serializing_if = "Option::is_none")]
    pub kind: Option<i64>,
    /// Request only: 1 cash, 2 electronic, 3 prepayment, 4 credit, 5 other.
    #[serde(rename = "moneyType", default, deserialize_with = "opt_int", skip_serializing_if = "Option::is_none")]
    pub money_type: Option<i64>,
    /// Request only: the sum tendered, in kopecks; 0 when there is no change.
    #[serde(default, deserialize_with = "opt_int", skip_serializing_if = "Option::is_none")]
    pub sum: Option<i64>,
    #[serde(default)]
    pub fiscprops: Vec<Prop>,
}

/// One FFD tag: a value, or nested tags (an STLV structure).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Prop {
    pub tag: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fiscprops: Vec<Prop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printable: Option<String>,
}

impl Prop {
    pub fn new(tag: u32, value: impl Into<Value>) -> Prop {
        Prop { tag, value: Some(value.into()), ..Prop::default() }
    }
    pub fn nested(tag: u32, fiscprops: Vec<Prop>) -> Prop {
        Prop { tag, fiscprops, ..Prop::default() }
    }
    pub fn int(&self) -> Option<i64> {
        self.value.as_ref().and_then(int_of)
    }
    pub fn text(&self) -> Option<String> {
        match self.value.as_ref()? {
            Value::String(s) => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// The first tag `tag` at the top level of `props`.
pub fn find(props: &[Prop], tag: u32) -> Option<&Prop> {
    props.iter().find(|p| p.tag == tag)
}

// ----- status -----

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LifeTime {
    #[serde(rename = "expirationDt", default, deserialize_with = "text")]
    pub expiration_dt: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transport {
    /// Documents the ОФД has not acknowledged yet (0 = all sent).
    #[serde(rename = "offlineDocsCount", default, deserialize_with = "int")]
    pub offline_docs_count: i64,
    #[serde(rename = "firstDocNumber", default, deserialize_with = "int")]
    pub first_doc_number: i64,
    #[serde(rename = "firstDocDt", default, deserialize_with = "opt_text")]
    pub first_doc_dt: Option<String>,
    #[serde(default, deserialize_with = "int")]
    pub state: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FsStatus {
    #[serde(rename = "cycleIsOpen", default, deserialize_with = "int")]
    pub cycle_is_open: i64,
    /// The number of the last fiscal document: the anchor of exactly-once recovery.
    #[serde(rename = "lastDocNumber", default, deserialize_with = "opt_int")]
    pub last_doc_number: Option<i64>,
    #[serde(rename = "lastDocDt", default, deserialize_with = "opt_text")]
    pub last_doc_dt: Option<String>,
    #[serde(rename = "fsNumber", default, deserialize_with = "text")]
    pub fs_number: String,
    #[serde(rename = "fsVersion", default, deserialize_with = "text")]
    pub fs_version: String,
    #[serde(default, deserialize_with = "int")]
    pub phase: i64,
    #[serde(rename = "lifeTime", default)]
    pub life_time: LifeTime,
    #[serde(default)]
    pub transport: Transport,
}

/// `cashboxStatus`: identity, ФН, shift, money and flags in one object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CashboxStatus {
    /// Заводской номер (a JSON number in some captures, a string in others).
    #[serde(default, deserialize_with = "text")]
    pub serial: String,
    #[serde(default, deserialize_with = "int")]
    pub model: i64,
    #[serde(default, deserialize_with = "text")]
    pub modelstr: String,
    #[serde(default, deserialize_with = "text")]
    pub ver: String,
    #[serde(default, deserialize_with = "text")]
    pub subver: String,
    #[serde(rename = "regNumber", default, deserialize_with = "text")]
    pub reg_number: String,
    #[serde(rename = "userInn", default, deserialize_with = "text")]
    pub user_inn: String,
    #[serde(rename = "userName", default, deserialize_with = "text")]
    pub user_name: String,
    #[serde(rename = "fsNumber", default, deserialize_with = "text")]
    pub fs_number: String,
    #[serde(rename = "fsStatus", default, skip_serializing_if = "Option::is_none")]
    pub fs_status: Option<FsStatus>,
    #[serde(rename = "cycleNumber", default, deserialize_with = "int")]
    pub cycle_number: i64,
    #[serde(rename = "cycleOpened", default, deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub cycle_opened: Option<String>,
    #[serde(rename = "cycleClosed", default, deserialize_with = "opt_text", skip_serializing_if = "Option::is_none")]
    pub cycle_closed: Option<String>,
    /// The device's clock, e.g. `08 Apr 2018 23:05:18 +0300`.
    #[serde(default, deserialize_with = "text")]
    pub dt: String,
    /// Status flags; read as ATOL's status flags (see [`CashboxStatus::paper_present`]).
    #[serde(default, deserialize_with = "int")]
    pub flags: i64,
    #[serde(default, deserialize_with = "int")]
    pub mode: i64,
    #[serde(rename = "subMode", default, deserialize_with = "int")]
    pub sub_mode: i64,
    /// Cash in the drawer, kopecks.
    #[serde(default, deserialize_with = "int")]
    pub cash: i64,
    #[serde(default, deserialize_with = "int")]
    pub introductions: i64,
    #[serde(rename = "introductionsSum", default, deserialize_with = "int")]
    pub introductions_sum: i64,
    #[serde(default, deserialize_with = "int")]
    pub payouts: i64,
    #[serde(rename = "payoutsSum", default, deserialize_with = "int")]
    pub payouts_sum: i64,
    #[serde(rename = "lastCheckNumber", default, deserialize_with = "int")]
    pub last_check_number: i64,
    /// FFD version of the ФН's registration (2 = 1.05, 4 = 1.2), spelled two ways.
    #[serde(rename = "fSfDfVersion", alias = "fSFDFVersion", default, deserialize_with = "int")]
    pub fs_ffd_version: i64,
    #[serde(rename = "fdfVersion", alias = "fDFVersion", default, deserialize_with = "int")]
    pub ffd_version: i64,
    /// The registered tax systems, the tag-1062 bit mask (63 = all six on Armax's stub,
    /// 4 = УСН доход минус расход on a real unit); absent means not reported.
    #[serde(default, deserialize_with = "lenient_int", skip_serializing_if = "Option::is_none")]
    pub taxes: Option<i64>,
}

/// The status flag bits, read as the ATOL 3.x status byte: the captured value 75
/// (0b0100_1011) of an open-shift УМКА-01-ФА decodes as "fiscalised, shift open, paper
/// present, ФН active", and Armax's own client tests bit 1 for "shift open".
pub mod flags {
    pub const FISCALISED: i64 = 0x01;
    pub const SHIFT_OPEN: i64 = 0x02;
    pub const PAPER_PRESENT: i64 = 0x08;
    pub const COVER_OPEN: i64 = 0x20;
    pub const FN_ACTIVE: i64 = 0x40;
}

impl CashboxStatus {
    pub fn shift_open(&self) -> bool {
        self.fs_status.as_ref().map_or(self.flags & flags::SHIFT_OPEN != 0, |f| f.cycle_is_open != 0)
    }
    /// Paper: bit 3 of `flags` (inferred, see [`flags`]).
    pub fn paper_present(&self) -> bool {
        self.flags & flags::PAPER_PRESENT != 0
    }
    pub fn cover_open(&self) -> bool {
        self.flags & flags::COVER_OPEN != 0
    }
    /// The registered ФФД version, `None` when neither field names one.
    pub fn ffd_version(&self) -> Option<kkm_core::FfdVersion> {
        kkm_core::FfdVersion::from_code(self.ffd())
    }
    /// The registered tax systems, `None` when `taxes` is absent or not a mask.
    pub fn tax_systems(&self) -> Option<kkm_core::TaxSystems> {
        self.taxes.and_then(|t| u8::try_from(t).ok()).filter(|t| t & 0xC0 == 0).map(kkm_core::TaxSystems)
    }
    /// The FFD version the unit works in (the ФН's, else the unit's).
    pub fn ffd(&self) -> i64 {
        if self.fs_ffd_version > 0 {
            self.fs_ffd_version
        } else {
            self.ffd_version
        }
    }
}

/// Open, over 24 hours (the clock `dt` minus `cycleOpened`), or closed.
pub fn shift_state(s: &CashboxStatus) -> kkm_core::ShiftState {
    use kkm_core::ShiftState;
    if !s.shift_open() {
        return ShiftState::Closed;
    }
    let now = parse_datetime(&s.dt);
    let opened = s.cycle_opened.as_deref().and_then(parse_datetime);
    match (now, opened) {
        (Some(now), Some(opened)) if now - opened >= time::Duration::hours(24) => ShiftState::Expired,
        _ => ShiftState::Open,
    }
}

// ----- dates -----

const DT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[day] [month repr:short] [year] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
);
const ISO: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

/// Reads the API's date-time (`25 Jan 2020 06:18:19 +0300`, the RFC 1123 form without a
/// weekday) or an ISO one (`2018-04-07T00:03:00`, as in `lastDocDt`). The device's own
/// wall-clock time is kept, as printed on the receipt.
pub fn parse_datetime(s: &str) -> Option<PrimitiveDateTime> {
    let s = s.trim();
    let s = s.split_once(", ").map_or(s, |(_, rest)| rest); // a leading weekday, if any
    if let Ok(t) = time::OffsetDateTime::parse(s, DT) {
        return Some(PrimitiveDateTime::new(t.date(), t.time()));
    }
    PrimitiveDateTime::parse(s, ISO).ok()
}

/// Writes a device date-time with the device's offset (Moscow, +03:00 by default).
pub fn format_datetime(t: PrimitiveDateTime, offset: time::UtcOffset) -> String {
    t.assume_offset(offset).format(DT).unwrap_or_default()
}

pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s.trim(), time::macros::format_description!("[year]-[month]-[day]")).ok()
}

// ----- quantities -----

/// Tag 1023 as requests send it: a string with three decimals, `"1.000"`.
pub fn quantity_text(q: Quantity) -> String {
    format!("{}.{:03}", q.0 / Quantity::SCALE, q.0 % Quantity::SCALE)
}

/// Tag 1023 as answers echo it (`"1,000"`, `"1 333,500"`) or as requests send it.
pub fn parse_quantity(v: &Value) -> Option<Quantity> {
    match v {
        Value::String(s) => {
            let t: String = s.chars().filter(|c| !c.is_whitespace() && *c != '\u{a0}').collect();
            Quantity::parse(&t.replace(',', ".")).ok()
        }
        Value::Number(n) => n.as_u64().and_then(|u| i64::try_from(u).ok()).and_then(|u| u.checked_mul(Quantity::SCALE)).map(Quantity),
        _ => None,
    }
}

// ----- codes -----

/// `data.type` of a receipt.
pub fn check_type(op: Operation) -> i64 {
    match op {
        Operation::Sale => 1,
        Operation::SaleReturn => 2,
        Operation::Purchase => 4,
        Operation::PurchaseReturn => 5,
    }
}

pub fn operation_of_check_type(t: i64) -> Option<Operation> {
    Some(match t {
        1 => Operation::Sale,
        2 => Operation::SaleReturn,
        4 => Operation::Purchase,
        5 => Operation::PurchaseReturn,
        _ => return None,
    })
}

/// `moneyType` and the FFD tag of each payment kind.
pub fn money_type(p: PaymentType) -> (i64, u32) {
    match p {
        PaymentType::Cash => (1, 1031),
        PaymentType::Electronic => (2, 1081),
        PaymentType::Prepayment => (3, 1215),
        PaymentType::Credit => (4, 1216),
        PaymentType::Other => (5, 1217),
    }
}

/// Tag 1199 (ставка НДС). Codes 1–6 are in every public client; 7–10 (5 %, 7 %, 5/105,
/// 7/107) in one (frws). Code 1 is the general rate and code 3 its calculated form:
/// 20 % and 20/120 until 2025, 22 % and 22/122 from 2026 by the FFD's own table; that a
/// unit's firmware prints 22 % for them is not confirmed.
pub fn vat_code(v: VatRate) -> i64 {
    match v {
        VatRate::Vat22 => 1,
        VatRate::Vat10 => 2,
        VatRate::Vat22_122 => 3,
        VatRate::Vat10_110 => 4,
        VatRate::Vat0 => 5,
        VatRate::NoVat => 6,
        VatRate::Vat5 => 7,
        VatRate::Vat7 => 8,
        VatRate::Vat5_105 => 9,
        VatRate::Vat7_107 => 10,
    }
}

pub fn vat_of_code(c: i64) -> Option<VatRate> {
    VatRate::ALL.into_iter().find(|v| vat_code(*v) == c)
}

/// Tag 1055 is the same bit mask as our [`TaxSystem::bit`].
pub fn tax_system_of_bit(b: i64) -> Option<TaxSystem> {
    [TaxSystem::Osn, TaxSystem::UsnIncome, TaxSystem::UsnIncomeOutcome, TaxSystem::Esn, TaxSystem::Patent]
        .into_iter()
        .find(|t| i64::from(t.bit()) == b)
}

/// FFD document types as `docType` gives them (see [`kkm_core::tlv::document_kind`]).
pub fn document_kind(doc_type: i64) -> DocumentKind {
    u16::try_from(doc_type).map_or(DocumentKind::Other, kkm_core::tlv::document_kind)
}

pub fn document_type_code(kind: DocumentKind) -> i64 {
    i64::from(kkm_core::tlv::document_type(kind))
}

// ----- building a receipt -----

/// Builds the `fiscalcheck.json` request for a validated receipt.
///
/// * Header: 1054 (operation), 1055 (tax system), 1021/1203 (cashier), 1008 (customer),
///   1192 (the agent's reference for the job, at most 16 characters, when given),
///   and one payment tag per kind (1031, 1081, 1215, 1216, 1217) with the sum applied to
///   the receipt: cash less the change, so that the payment tags add up to the total.
/// * Items (1059): 1214, 1212, 1030, 1079 (price, kopecks), 1023 (quantity, `"1.000"`),
///   1199 (VAT code), 1043 (line total, kopecks), and 2108 (measure: the item's, else 0,
///   pieces) only when `ffd` says the unit works in FFD 1.2 (code 4), where the tag is
///   mandatory; FFD 1.05 has no such tag.
/// * `data.sum` is the money tendered when there is change, else 0; `moneyType` is cash
///   if any cash is paid, else the first payment's kind.
pub fn fiscal_check(receipt: &Receipt, totals: &ReceiptTotals, session_id: &str, reference: Option<&str>, ffd: i64) -> Frame {
    let mut props = vec![Prop::new(1054, receipt.operation.code()), Prop::new(1055, receipt.tax_system.bit())];
    if let Some(r) = reference {
        props.push(Prop::new(1192, r.chars().take(16).collect::<String>()));
    }
    if let Some(c) = &receipt.cashier {
        props.push(Prop::new(1021, c.name.clone()));
        if let Some(inn) = &c.inn {
            props.push(Prop::new(1203, inn.clone()));
        }
    }
    if let Some(contact) = receipt.customer.as_ref().and_then(|c| c.contact()) {
        props.push(Prop::new(1008, contact.to_string()));
    }
    for kind in PaymentType::ALL {
        let mut sum = receipt.paid_by(kind).0;
        if kind == PaymentType::Cash {
            sum -= totals.change.0;
        }
        if sum > 0 {
            props.push(Prop::new(money_type(kind).1, sum));
        }
    }
    for (item, line) in receipt.items.iter().zip(&totals.lines) {
        let mut tags = vec![
            Prop::new(1214, item.payment_method.code()),
            Prop::new(1212, item.payment_object.code()),
            Prop::new(1030, item.name.clone()),
            Prop::new(1079, item.price.0),
            Prop::new(1023, quantity_text(item.quantity)),
            Prop::new(1199, vat_code(item.vat)),
            Prop::new(1043, line.0),
        ];
        if ffd >= 4 {
            tags.push(Prop::new(2108, item.measure_unit.map_or(0, |m| m.code())));
        }
        props.push(Prop::nested(1059, tags));
    }
    let money = if receipt.paid_by(PaymentType::Cash).0 > 0 {
        PaymentType::Cash
    } else {
        receipt.payments.first().map_or(PaymentType::Cash, |p| p.kind)
    };
    Frame {
        protocol: None,
        version: None,
        cashbox_status: None,
        document: Some(Document {
            result: 0,
            message: None,
            session_id: Some(session_id.to_string()),
            print: Some(1),
            data: Some(DocData {
                doc_name: Some("Кассовый чек".into()),
                kind: Some(check_type(receipt.operation)),
                money_type: Some(money_type(money).0),
                sum: Some(if totals.change.0 > 0 { totals.paid.0 } else { 0 }),
                fiscprops: props,
                ..DocData::default()
            }),
        }),
    }
}

// ----- reading answers -----

fn protocol(what: &str) -> DriverError {
    DriverError::Protocol(format!("УМКА: {what}"))
}

/// Parses an answer body as an envelope. Bodies are bounded by the client.
pub fn parse_frame(body: &[u8]) -> DriverResult<Frame> {
    serde_json::from_slice(body).map_err(|e| protocol(&format!("the answer is not the API's JSON: {e}")))
}

/// The status out of a `cashboxstatus.json` answer.
pub fn parse_status(body: &[u8]) -> DriverResult<CashboxStatus> {
    parse_frame(body)?.cashbox_status.ok_or_else(|| protocol("no cashboxStatus in the answer"))
}

/// The document out of a document answer; a non-zero `result` becomes the device's
/// explained error.
pub fn parse_document(body: &[u8]) -> DriverResult<DocData> {
    let doc = parse_frame(body)?.document.ok_or_else(|| protocol("no document in the answer"))?;
    if doc.result != 0 {
        let text = doc.message.map(|m| m.result_description).unwrap_or_default();
        return Err(crate::errors::device_error(doc.result, &text));
    }
    doc.data.ok_or_else(|| protocol("a document answer without data"))
}

/// Tag 1077 (ФПД): a JSON number in one capture, a string of digits in another.
fn fiscal_sign(props: &[Prop]) -> Option<u32> {
    find(props, 1077).and_then(|p| p.int()).and_then(|v| u32::try_from(v).ok())
}

fn money_tag(props: &[Prop], tag: u32) -> DriverResult<Option<Money>> {
    match find(props, tag) {
        None => Ok(None),
        Some(p) => match &p.value {
            Some(Value::Number(n)) => n.as_i64().filter(|v| *v >= 0).map(|v| Some(Money(v))).ok_or_else(|| {
                protocol(&format!("tag {tag} is not a whole number of kopecks: {n}"))
            }),
            other => Err(protocol(&format!("tag {tag} is not a number: {other:?}"))),
        },
    }
}

/// What a fiscalising answer proves: number (1040), sign (1077), time (1012), shift (1038).
pub fn fiscal_result(data: &DocData) -> DriverResult<FiscalResult> {
    let props = &data.fiscprops;
    let number = find(props, 1040)
        .and_then(|p| p.int())
        .or(data.doc_number)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| protocol("the document has no number (tag 1040)"))?;
    let sign = fiscal_sign(props).ok_or_else(|| protocol("the document has no fiscal sign (tag 1077)"))?;
    let datetime = find(props, 1012)
        .and_then(|p| p.text())
        .and_then(|t| parse_datetime(&t))
        .ok_or_else(|| protocol("the document has no readable date (tag 1012)"))?;
    let shift_number = find(props, 1038).and_then(|p| p.int()).and_then(|n| u32::try_from(n).ok());
    Ok(FiscalResult { document_number: number, fiscal_sign: sign, datetime, shift_number })
}

/// What a receipt document holds beyond its number: lines (1059: 1030, 1079, 1023, 1043),
/// payments (1031, 1081, 1215–1217, as the ФН records them, cash net of change), total
/// (1020), operation (1054) and cashier (1021).
pub fn receipt_content(data: &DocData) -> DriverResult<kkm_core::tlv::ReceiptContent> {
    let props = &data.fiscprops;
    let mut payments = Vec::new();
    for kind in PaymentType::ALL {
        if let Some(m) = money_tag(props, money_type(kind).1)? {
            if m.0 > 0 {
                payments.push((kind, m));
            }
        }
    }
    let mut items = Vec::new();
    for item in props.iter().filter(|p| p.tag == 1059) {
        let p = &item.fiscprops;
        let price = money_tag(p, 1079)?.ok_or_else(|| protocol("an item without a price (1079)"))?;
        let quantity = find(p, 1023)
            .and_then(|q| q.value.as_ref())
            .and_then(parse_quantity)
            .ok_or_else(|| protocol("an item without a readable quantity (1023)"))?;
        let amount = match money_tag(p, 1043)? {
            Some(a) => a,
            None => quantity.times(price).ok_or_else(|| protocol("an item's amount overflows"))?,
        };
        let name = find(p, 1030).and_then(|n| n.text()).unwrap_or_default();
        items.push(kkm_core::tlv::ContentItem { name, price, quantity, amount });
    }
    Ok(kkm_core::tlv::ReceiptContent {
        operation: find(props, 1054).and_then(|p| p.int()).and_then(|c| u8::try_from(c).ok()).and_then(Operation::from_code),
        total: money_tag(props, 1020)?,
        payments,
        items,
        cashier: find(props, 1021).and_then(|p| p.text()),
    })
}

/// A document read back by number (`fiscaldoc.json`).
pub fn fiscal_document(data: &DocData, ofd_acknowledged: bool) -> DriverResult<FiscalDocument> {
    let r = fiscal_result(data)?;
    let kind = document_kind(data.doc_type.unwrap_or(0));
    let props = &data.fiscprops;
    let (operation, total) = if kind == DocumentKind::Receipt {
        let op = find(props, 1054).and_then(|p| p.int()).and_then(|c| u8::try_from(c).ok()).and_then(Operation::from_code);
        (op, money_tag(props, 1020)?)
    } else {
        (None, None)
    };
    Ok(FiscalDocument {
        number: r.document_number,
        kind,
        datetime: r.datetime,
        fiscal_sign: r.fiscal_sign,
        operation,
        total,
        shift_number: r.shift_number,
        ofd_acknowledged,
        reference: if kind == DocumentKind::Receipt { find(props, 1192).and_then(|p| p.text()).filter(|t| !t.is_empty()) } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kkm_core::{Item, Payment, PaymentMethod, PaymentObject};

    #[test]
    fn dates_both_forms() {
        let t = parse_datetime("25 Jan 2020 06:18:19 +0300").unwrap();
        assert_eq!(kkm_core::device::dt::format(&t), "2020-01-25T06:18:19");
        assert!(parse_datetime("2018-04-07T00:03:00").is_some());
        assert!(parse_datetime("Sat, 25 Jan 2020 06:18:19 +0300").is_some());
        assert!(parse_datetime("yesterday").is_none());
        let back = format_datetime(t, time::UtcOffset::from_hms(3, 0, 0).unwrap());
        assert_eq!(back, "25 Jan 2020 06:18:19 +0300");
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity_text(Quantity(1000)), "1.000");
        assert_eq!(quantity_text(Quantity(250)), "0.250");
        assert_eq!(parse_quantity(&Value::from("1,000")), Some(Quantity(1000)));
        assert_eq!(parse_quantity(&Value::from("1 333,500")), Some(Quantity(1_333_500)));
        assert_eq!(parse_quantity(&Value::from("0.250")), Some(Quantity(250)));
        assert_eq!(parse_quantity(&Value::from(2)), Some(Quantity(2000)));
        assert_eq!(parse_quantity(&Value::from("1,2345")), None);
        assert_eq!(parse_quantity(&serde_json::json!(1.5)), None, "no floats");
    }

    #[test]
    fn money_is_never_a_fraction() {
        let data = DocData { fiscprops: vec![Prop::new(1020, serde_json::json!(10.5))], ..DocData::default() };
        assert!(money_tag(&data.fiscprops, 1020).is_err());
        let s: Result<CashboxStatus, _> = serde_json::from_str(r#"{"cash": 12.5}"#);
        assert!(s.is_err());
    }

    #[test]
    fn receipt_with_change_and_every_tag() {
        let r = Receipt {
            operation: Operation::Sale,
            items: vec![Item {
                name: "Стрижка".into(),
                price: Money(150_000),
                quantity: Quantity(1500),
                amount: None,
                vat: VatRate::Vat22,
                payment_method: PaymentMethod::FullPayment,
                payment_object: PaymentObject::Service,
                department: 1,
                measure_unit: Some(kkm_core::MeasureUnit::Kilogram),
            }],
            payments: vec![
                Payment { kind: PaymentType::Electronic, sum: Money(100_000) },
                Payment { kind: PaymentType::Cash, sum: Money(200_000) },
            ],
            tax_system: TaxSystem::UsnIncome,
            cashier: Some(kkm_core::Cashier { name: "Иванова".into(), inn: None }),
            customer: Some(kkm_core::Customer { phone: Some("+79001234567".into()), email: None }),
        };
        let t = r.validate(&kkm_core::Limits::default()).unwrap();
        let f = fiscal_check(&r, &t, "job-1", Some("17-1a2b3c4d"), 4);
        let doc = f.document.unwrap();
        assert_eq!(doc.session_id.as_deref(), Some("job-1"));
        let data = doc.data.unwrap();
        assert_eq!((data.kind, data.money_type, data.sum), (Some(1), Some(1), Some(300_000)));
        let p = &data.fiscprops;
        assert_eq!(find(p, 1054).unwrap().int(), Some(1));
        assert_eq!(find(p, 1192).unwrap().text().as_deref(), Some("17-1a2b3c4d"));
        assert_eq!(find(p, 1055).unwrap().int(), Some(2));
        assert_eq!(find(p, 1021).unwrap().text().as_deref(), Some("Иванова"));
        assert_eq!(find(p, 1008).unwrap().text().as_deref(), Some("+79001234567"));
        // 225 000 total: 100 000 by card, 125 000 of the 200 000 cash (75 000 change).
        assert_eq!(find(p, 1081).unwrap().int(), Some(100_000));
        assert_eq!(find(p, 1031).unwrap().int(), Some(125_000));
        let item = &find(p, 1059).unwrap().fiscprops;
        assert_eq!(find(item, 1023).unwrap().text().as_deref(), Some("1.500"));
        assert_eq!(find(item, 1043).unwrap().int(), Some(225_000));
        assert_eq!(find(item, 1199).unwrap().int(), Some(1));
        assert_eq!(find(item, 1214).unwrap().int(), Some(4));
        assert_eq!(find(item, 1212).unwrap().int(), Some(4));
        assert_eq!(find(item, 2108).unwrap().int(), Some(11), "the item's measure, kilograms");
        let f105 = fiscal_check(&r, &t, "job-1", None, 2);
        let item = f105.document.unwrap().data.unwrap().fiscprops.into_iter().find(|p| p.tag == 1059).unwrap();
        assert!(find(&item.fiscprops, 2108).is_none(), "no FFD 1.2 tag for an FFD 1.05 unit");
    }

    #[test]
    fn vat_codes_are_one_to_one() {
        for v in VatRate::ALL {
            assert_eq!(vat_of_code(vat_code(v)), Some(v));
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for body in [&b""[..], b"{", b"[]", b"null", b"{\"document\":{\"result\":\"x\"}}", &[0xff, 0xfe]] {
            assert!(parse_document(body).is_err());
            assert!(parse_status(body).is_err());
        }
    }
}
