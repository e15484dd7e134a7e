//! A receipt's content as the ФН keeps it: ФФД tag-length-value records.
//!
//! The ФН stores each fiscal document as TLV records: tag (2 bytes, little-endian),
//! length (2 bytes, little-endian), value. Registers hand them out by document number
//! (Shtrih FF3A/FF3B, [V117] "Запросить фискальный документ в TLV формате"; ATOL
//! A4 45/A4 46). The exactly-once recovery reads them to prove that a receipt in the ФН
//! is the job's own: not just the operation and total, but the payment split and the
//! lines.
//!
//! Tags and value types (ФФД 1.2; the vendor's `TLVTags.java` in shtrih-m/javapos_shtrih
//! lists the same): 1054 operation (byte), 1020 total (VLN), 1031 cash, 1081 electronic,
//! 1215 prepayment, 1216 credit, 1217 counter-provision (VLN), 1059 item (STLV: 1030
//! name, 1079 price VLN, 1023 quantity FVLN, 1043 line sum VLN), 1021 cashier (text).
//! VLN is an unsigned little-endian integer of the record's length; FVLN is one byte
//! of decimal places, then such an integer. Text is CP866.

use crate::device::DocumentKind;
use crate::money::{Money, Quantity};
use crate::receipt::{Operation, PaymentType};
use serde::{Deserialize, Serialize};

/// What recovery compares between a job and a ФН receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptContent {
    pub operation: Option<Operation>,
    pub total: Option<Money>,
    /// Sums by payment type as the ФН records them (cash net of change).
    pub payments: Vec<(PaymentType, Money)>,
    pub items: Vec<ContentItem>,
    pub cashier: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentItem {
    pub name: String,
    pub price: Money,
    pub quantity: Quantity,
    pub amount: Money,
}

const PAYMENT_TAGS: [(u16, PaymentType); 5] = [
    (1031, PaymentType::Cash),
    (1081, PaymentType::Electronic),
    (1215, PaymentType::Prepayment),
    (1216, PaymentType::Credit),
    (1217, PaymentType::Other),
];

/// The document kind of a ФФД document type (1 registration, 2 shift open, 3 receipt,
/// 4 БСО, 5 shift close, 6 ФН close, 11 re-registration, 21 calculation report, 31/41
/// corrections), as the ФН reports it in a TLV read (Shtrih FF3A, ATOL A4 45) and УМКА
/// in `docType`.
pub fn document_kind(t: u16) -> DocumentKind {
    match t {
        1 | 11 => DocumentKind::Registration,
        2 => DocumentKind::ShiftOpen,
        3 | 4 => DocumentKind::Receipt,
        5 => DocumentKind::ShiftClose,
        6 => DocumentKind::FnClose,
        21 => DocumentKind::CalculationReport,
        31 | 41 => DocumentKind::Correction,
        _ => DocumentKind::Other,
    }
}

/// The ФФД document type of a kind (the inverse of [`document_kind`]).
pub fn document_type(k: DocumentKind) -> u16 {
    match k {
        DocumentKind::Registration => 1,
        DocumentKind::ShiftOpen => 2,
        DocumentKind::Receipt => 3,
        DocumentKind::ShiftClose => 5,
        DocumentKind::FnClose => 6,
        DocumentKind::CalculationReport => 21,
        DocumentKind::Correction => 31,
        DocumentKind::Other => 0,
    }
}

/// One record.
pub fn encode(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + value.len());
    out.extend(tag.to_le_bytes());
    out.extend((value.len().min(u16::MAX as usize) as u16).to_le_bytes());
    out.extend(value);
    out
}

/// The records of a TLV block, in order.
pub fn records(mut data: &[u8]) -> Result<Vec<(u16, &[u8])>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 4 {
            return Err(format!("a TLV record header is cut at {} bytes", data.len()));
        }
        let tag = u16::from_le_bytes([data[0], data[1]]);
        let len = usize::from(u16::from_le_bytes([data[2], data[3]]));
        let value = data.get(4..4 + len).ok_or_else(|| format!("TLV tag {tag}: {len} bytes announced, {} left", data.len() - 4))?;
        out.push((tag, value));
        data = &data[4 + len..];
    }
    Ok(out)
}

/// An unsigned little-endian integer of up to 8 bytes.
pub fn vln(v: &[u8]) -> Option<u64> {
    if v.len() > 8 {
        return None;
    }
    Some(v.iter().rev().fold(0u64, |a, b| (a << 8) | u64::from(*b)))
}

/// The shortest VLN for `n` (at least one byte).
pub fn vln_bytes(n: u64) -> Vec<u8> {
    let b = n.to_le_bytes();
    let len = 8 - (n.leading_zeros() as usize / 8);
    b[..len.max(1)].to_vec()
}

fn money(v: &[u8]) -> Result<Money, String> {
    vln(v).and_then(|n| i64::try_from(n).ok()).map(Money).ok_or_else(|| "a sum does not fit".to_string())
}

/// FVLN quantity as thousandths (the agent's quantity scale).
fn quantity(v: &[u8]) -> Result<Quantity, String> {
    let (&places, digits) = v.split_first().ok_or("empty quantity")?;
    let n = vln(digits).and_then(|n| i64::try_from(n).ok()).ok_or("quantity does not fit")?;
    let scaled = match places {
        0..=3 => n.checked_mul(10i64.pow(3 - u32::from(places))),
        p => Some(n / 10i64.pow(u32::from(p) - 3)),
    };
    scaled.map(Quantity).ok_or_else(|| "quantity does not fit".to_string())
}

fn text(v: &[u8]) -> String {
    let (s, _, _) = encoding_rs::IBM866.decode(v);
    s.trim_end_matches(['\0', ' ']).to_string()
}

/// Reads a receipt's content from its TLV records (unknown tags are skipped).
pub fn receipt_content(data: &[u8]) -> Result<ReceiptContent, String> {
    let mut c = ReceiptContent::default();
    for (tag, v) in records(data)? {
        match tag {
            1054 => c.operation = v.first().and_then(|b| Operation::from_code(*b)),
            1020 => c.total = Some(money(v)?),
            1021 => c.cashier = Some(text(v)),
            1059 => {
                let (mut name, mut price, mut qty, mut amount) = (String::new(), Money::ZERO, Quantity::ONE, Money::ZERO);
                for (t, x) in records(v)? {
                    match t {
                        1030 => name = text(x),
                        1079 => price = money(x)?,
                        1023 => qty = quantity(x)?,
                        1043 => amount = money(x)?,
                        _ => {}
                    }
                }
                c.items.push(ContentItem { name, price, quantity: qty, amount });
            }
            t => {
                if let Some((_, kind)) = PAYMENT_TAGS.iter().find(|(pt, _)| *pt == t) {
                    let sum = money(v)?;
                    if sum != Money::ZERO {
                        c.payments.push((*kind, sum));
                    }
                }
            }
        }
    }
    Ok(c)
}

/// The TLV records of a receipt's content (the emulators' ФН archive).
pub fn encode_receipt(c: &ReceiptContent) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(op) = c.operation {
        out.extend(encode(1054, &[op.code()]));
    }
    if let Some(cashier) = &c.cashier {
        let (b, _, _) = encoding_rs::IBM866.encode(cashier);
        out.extend(encode(1021, &b));
    }
    for it in &c.items {
        let (name, _, _) = encoding_rs::IBM866.encode(&it.name);
        let mut item = encode(1030, &name);
        item.extend(encode(1079, &vln_bytes(it.price.0.max(0) as u64)));
        let mut q = vec![3u8];
        q.extend(vln_bytes(it.quantity.0.max(0) as u64));
        item.extend(encode(1023, &q));
        item.extend(encode(1043, &vln_bytes(it.amount.0.max(0) as u64)));
        out.extend(encode(1059, &item));
    }
    if let Some(t) = c.total {
        out.extend(encode(1020, &vln_bytes(t.0.max(0) as u64)));
    }
    for (tag, kind) in PAYMENT_TAGS {
        let sum: i64 = c.payments.iter().filter(|(k, _)| *k == kind).map(|(_, m)| m.0).sum();
        if sum != 0 {
            out.extend(encode(tag, &vln_bytes(sum.max(0) as u64)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vln_and_fvln() {
        assert_eq!(vln(&[0x10, 0x27]), Some(10_000));
        assert_eq!(vln_bytes(10_000), vec![0x10, 0x27]);
        assert_eq!(vln_bytes(0), vec![0]);
        assert_eq!(quantity(&[3, 0xE8, 0x03]).unwrap(), Quantity(1000)); // 1.000
        assert_eq!(quantity(&[0, 2]).unwrap(), Quantity(2000)); // 2
        assert_eq!(quantity(&[6, 0x40, 0x42, 0x0F]).unwrap(), Quantity(1000)); // 1.000000
    }

    #[test]
    fn a_receipt_survives_the_round_trip() {
        let c = ReceiptContent {
            operation: Some(Operation::Sale),
            total: Some(Money(150_000)),
            payments: vec![(PaymentType::Cash, Money(140_000)), (PaymentType::Electronic, Money(10_000))],
            items: vec![
                ContentItem { name: "Маникюр".into(), price: Money(140_000), quantity: Quantity(1000), amount: Money(140_000) },
                ContentItem { name: "Крем".into(), price: Money(5_000), quantity: Quantity(2000), amount: Money(10_000) },
            ],
            cashier: Some("Анна".into()),
        };
        assert_eq!(receipt_content(&encode_receipt(&c)).unwrap(), c);
    }

    #[test]
    fn torn_records_are_errors_not_panics() {
        assert!(records(&[0x2C, 0x04, 0x05]).is_err());
        assert!(records(&[0x2C, 0x04, 0x05, 0x00, 1]).is_err());
        assert!(receipt_content(&encode(1020, &[1; 9])).is_err());
    }
}
