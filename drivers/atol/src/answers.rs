//! Parsers for the answer fields of ATOL commands: the bytes after `55 00` (after the
//! error byte alone for `A5`, after the `4D` echo for cash in drawer). Pure functions;
//! bad input gives a `link.protocol` error, never a panic. Each layout, with the
//! independent source it was read from, is in `protocol-specs/atol.md` §3.

use kkm_core::error::{DriverError, DriverResult};
use kkm_core::wire::Cursor;
use kkm_core::{DocumentKind, FiscalDocument, Money, OfdStatus, Operation, ShiftState};
use time::PrimitiveDateTime;

fn bad(what: &str) -> DriverError {
    DriverError::Protocol(format!("the {what} answer is malformed"))
}

/// `A5`: protocol, type, model, mode(2), version(5), name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceType {
    pub protocol: u8,
    pub kind: u8,
    pub model: u8,
    pub mode: [u8; 2],
    pub version: [u8; 5],
    pub name: String,
}

pub fn device_type(f: &[u8]) -> DriverResult<DeviceType> {
    if f.len() < 10 {
        return Err(bad("device type"));
    }
    Ok(DeviceType {
        protocol: f[0],
        kind: f[1],
        model: f[2],
        mode: [f[3], f[4]],
        version: [f[5], f[6], f[7], f[8], f[9]],
        name: crate::bcd::from_atol_text(&f[10..]),
    })
}

/// A binary `YY MM DD HH MM` (the ФН's own DATE_TIME).
pub fn binary_datetime(b: &[u8]) -> Option<PrimitiveDateTime> {
    let [y, mo, d, h, mi, ..] = b else { return None };
    let date = time::Date::from_calendar_date(2000 + i32::from(*y), time::Month::try_from(*mo).ok()?, *d).ok()?;
    Some(PrimitiveDateTime::new(date, time::Time::from_hms(*h, *mi, 0).ok()?))
}

/// `A4 30`, the ФН's status: phase, current document, document data, shift open,
/// warning flags, DATE_TIME(5), ФН number (16 ASCII), last ФД number (4, LE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnStatusAnswer {
    pub phase: u8,
    pub current_document: u8,
    pub document_data: bool,
    pub shift_open: bool,
    pub warnings: u8,
    pub at: Option<PrimitiveDateTime>,
    pub serial: String,
    pub last_document_number: u32,
}

pub fn fn_status(f: &[u8]) -> DriverResult<FnStatusAnswer> {
    let mut c = Cursor::new(f, "FN status");
    let phase = c.u8()?;
    let current_document = c.u8()?;
    let document_data = c.u8()? != 0;
    let shift_open = c.u8()? != 0;
    let warnings = c.u8()?;
    let at = binary_datetime(c.bytes(5)?);
    let serial = c.ascii(16)?;
    let last_document_number = c.u32()?;
    Ok(FnStatusAnswer { phase, current_document, document_data, shift_open, warnings, at, serial, last_document_number })
}

/// `A4 20`, ОФД exchange: state flags, reading flag, unsent count (2, LE), first unsent
/// ФД (4, LE), its DATE_TIME (binary).
pub fn ofd_status(f: &[u8]) -> DriverResult<OfdStatus> {
    let mut c = Cursor::new(f, "OFD status");
    c.u8()?;
    c.u8()?;
    let count = u32::from(c.u16()?);
    let first = c.u32()?;
    let at = binary_datetime(c.bytes(5)?);
    Ok(OfdStatus {
        unsent_count: count,
        first_unsent_number: (count > 0).then_some(first),
        first_unsent_at: if count > 0 { at } else { None },
    })
}

/// `A4 32`, ФН expiry: binary `YY MM DD`, then registrations left and done.
pub fn fn_expiry(f: &[u8]) -> DriverResult<Option<time::Date>> {
    let b = Cursor::new(f, "FN expiry").bytes(3)?.to_vec();
    Ok(time::Month::try_from(b[1]).ok().and_then(|m| time::Date::from_calendar_date(2000 + i32::from(b[0]), m, b[2]).ok()))
}

/// `A4 10`, shift state: state (0 closed; 1 open; 2 over 24 h, as libfptr10's
/// `LIBFPTR_SS_*` numbers them), shift number (2), receipt number (2).
pub fn shift_state(f: &[u8]) -> DriverResult<ShiftState> {
    Ok(match Cursor::new(f, "shift state").u8()? {
        0 => ShiftState::Closed,
        2 => ShiftState::Expired,
        _ => ShiftState::Open,
    })
}

/// `A4 45`: the document's type (2, LE) and the length of its TLV data (2, LE), as the
/// ФН's own "fiscal document in TLV form" answers.
pub fn document_header(f: &[u8]) -> DriverResult<(u16, u16)> {
    let mut c = Cursor::new(f, "document header");
    Ok((c.u16()?, c.u16()?))
}

/// One `tag(2, LE) len(2, LE) value` record.
pub fn tlv(f: &[u8]) -> DriverResult<(u16, &[u8])> {
    let mut c = Cursor::new(f, "TLV");
    let tag = c.u16()?;
    let len = usize::from(c.u16()?);
    Ok((tag, c.bytes(len)?))
}

fn le(v: &[u8]) -> u64 {
    v.iter().take(8).rev().fold(0u64, |a, b| (a << 8) | u64::from(*b))
}

pub use kkm_core::tlv::{document_kind, document_type};

/// Tag 1054 (признак расчёта) to an operation, and back.
pub fn operation_of_1054(v: u8) -> Option<Operation> {
    Some(match v {
        1 => Operation::Sale,
        2 => Operation::SaleReturn,
        3 => Operation::Purchase,
        4 => Operation::PurchaseReturn,
        _ => return None,
    })
}

pub fn code_1054(op: Operation) -> u8 {
    match op {
        Operation::Sale => 1,
        Operation::SaleReturn => 2,
        Operation::Purchase => 3,
        Operation::PurchaseReturn => 4,
    }
}

/// Builds a document from its TLV records (read with `A4 46`). Tags: 1040 ФД number,
/// 1012 date-time (UnixTime), 1077 ФПД (6 bytes; the ФП is the last 4, big-endian),
/// 1054 operation, 1020 total (VLN, kopecks), 1038 shift number.
///
/// `doc_type` is the type `A4 45` announced; without it, a document with tag 1054 is a
/// receipt and anything else is "other".
pub fn document_from_tlv(doc_type: Option<u16>, records: &[Vec<u8>]) -> DriverResult<FiscalDocument> {
    let has_1054 = records.iter().any(|r| matches!(tlv(r), Ok((1054, _))));
    let kind = match doc_type {
        Some(t) => document_kind(t),
        None if has_1054 => DocumentKind::Receipt,
        None => DocumentKind::Other,
    };
    let (mut number, mut datetime, mut sign) = (None, None, None);
    let (mut operation, mut total, mut shift_number) = (None, None, None);
    for r in records {
        let (tag, v) = tlv(r)?;
        match tag {
            1040 => number = Some(le(v) as u32),
            1012 => {
                let secs = le(v) as i64;
                datetime = time::OffsetDateTime::from_unix_timestamp(secs).ok().map(|t| PrimitiveDateTime::new(t.date(), t.time()));
            }
            1077 if v.len() >= 4 => {
                let s = &v[v.len() - 4..];
                sign = Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
            }
            1054 => operation = v.first().and_then(|b| operation_of_1054(*b)),
            1020 => total = Some(Money(le(v) as i64)),
            1038 => shift_number = Some(le(v) as u32),
            _ => {}
        }
    }
    Ok(FiscalDocument {
        number: number.ok_or_else(|| bad("document (no tag 1040)"))?,
        kind,
        datetime: datetime.ok_or_else(|| bad("document (no tag 1012)"))?,
        fiscal_sign: sign.ok_or_else(|| bad("document (no tag 1077)"))?,
        operation: if kind == DocumentKind::Receipt { operation } else { None },
        total: if kind == DocumentKind::Receipt { total } else { None },
        shift_number,
        ofd_acknowledged: false,
        reference: None,
    })
}

/// Encodes one TLV record (for the emulator and the requisites the driver writes).
pub fn encode_tlv(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut v = tag.to_le_bytes().to_vec();
    v.extend((value.len() as u16).to_le_bytes());
    v.extend_from_slice(value);
    v
}
