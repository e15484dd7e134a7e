//! Which document in the ФН, if any, is provably a job's own.
//!
//! After a failure the worker knows the ФН's last document number before the job was
//! sent (`fn_before`, with the ФН's serial) and whether the receipt's closing command
//! was about to be sent (`close_sent`). It reads the documents after `fn_before` one by
//! one and asks [`judge`] about each. The rules:
//!
//! * Another ФН (a different serial, or a counter below `fn_before`) proves nothing.
//! * A receipt job whose close was never sent cannot own any document: whatever moved
//!   the counter (a receipt punched on the keypad while the agent was down) is someone
//!   else's, so the job's receipt is provably not fiscalised.
//! * Otherwise the job's document, if it exists, is the **first** document of its kind
//!   after `fn_before`: nothing else can be fiscalised while the job's receipt is open.
//!   Shift-open documents before it are fine (some units open the shift by themselves).
//!   The first receipt must match operation and total; anything else is someone else's
//!   and the job needs a person, with the document numbers in the reason.
//! * Where the driver stamps receipts with the job's reference (УМКА, tag 1192), the
//!   receipt must carry it too. There the whole receipt is one request, so the close
//!   marker is set before the items reach the unit, and a keypad receipt of the same
//!   total could otherwise pass for the job's.
//!
//! The judgement is a pure function so that every case is unit-tested here; the worker
//! does the reading.

use kkm_core::tlv::ReceiptContent;
use kkm_core::{DocumentKind, FiscalDocument, Money, Operation, PaymentType, Receipt, ReceiptTotals};

/// What the job's document must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// `reference`: what the job's receipt carries, when the driver stamps one.
    Receipt { operation: Operation, total: Money, reference: Option<String> },
    ShiftOpen,
    ShiftClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// Not the job's and not in its way: read the next one.
    Skip,
    /// The job's own document.
    Own,
    /// The first document of the job's kind is not the job's: stop, a person decides.
    Foreign,
}

/// How many documents after `fn_before` the worker reads at most.
pub const SCAN_LIMIT: u32 = 64;

pub fn judge(expect: &Expect, doc: &FiscalDocument) -> Judgement {
    match (expect, doc.kind) {
        (Expect::Receipt { operation, total, reference }, DocumentKind::Receipt) => {
            let same_reference = reference.is_none() || doc.reference == *reference;
            if doc.operation == Some(*operation) && doc.total == Some(*total) && same_reference {
                Judgement::Own
            } else {
                Judgement::Foreign
            }
        }
        // A unit may open the shift by itself before the receipt.
        (Expect::Receipt { .. }, DocumentKind::ShiftOpen) => Judgement::Skip,
        (Expect::Receipt { .. }, _) => Judgement::Foreign,
        (Expect::ShiftOpen, DocumentKind::ShiftOpen) => Judgement::Own,
        (Expect::ShiftClose, DocumentKind::ShiftClose) => Judgement::Own,
        (Expect::ShiftOpen | Expect::ShiftClose, _) => Judgement::Foreign,
    }
}

/// Does the ФН's record of a receipt (read from its TLV) carry the job's lines and
/// payment split? Names are not compared (the register may have mapped characters);
/// line sums, quantities and the sums by payment type (cash net of change) are.
pub fn content_matches(receipt: &Receipt, totals: &ReceiptTotals, c: &ReceiptContent) -> bool {
    let lines_match = c.items.len() == receipt.items.len()
        && c.items.iter().zip(&receipt.items).zip(&totals.lines).all(|((got, want), line)| got.amount == *line && got.quantity == want.quantity);
    let want: Vec<(PaymentType, i64)> = PaymentType::ALL
        .iter()
        .map(|k| {
            let paid = receipt.paid_by(*k).0;
            (*k, if *k == PaymentType::Cash { paid - totals.change.0 } else { paid })
        })
        .filter(|(_, v)| *v != 0)
        .collect();
    let got: Vec<(PaymentType, i64)> = PaymentType::ALL
        .iter()
        .map(|k| (*k, c.payments.iter().filter(|(t, _)| t == k).map(|(_, m)| m.0).sum::<i64>()))
        .filter(|(_, v)| *v != 0)
        .collect();
    let op_total = c.operation.is_none_or(|o| o == receipt.operation) && c.total.is_none_or(|t| t == totals.total);
    lines_match && want == got && op_total
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn doc(number: u32, kind: DocumentKind, op: Option<Operation>, total: Option<i64>) -> FiscalDocument {
        FiscalDocument {
            number,
            kind,
            datetime: datetime!(2026-11-26 10:00),
            fiscal_sign: 1,
            operation: op,
            total: total.map(Money),
            shift_number: Some(1),
            ofd_acknowledged: false,
            reference: None,
        }
    }

    const A: Expect = Expect::Receipt { operation: Operation::Sale, total: Money(150_000), reference: None };

    #[test]
    fn the_first_receipt_after_before_is_the_only_candidate() {
        let ours = doc(11, DocumentKind::Receipt, Some(Operation::Sale), Some(150_000));
        assert_eq!(judge(&A, &ours), Judgement::Own);
        // A different receipt first: someone else's, even if ours could follow.
        let other = doc(11, DocumentKind::Receipt, Some(Operation::Sale), Some(9_900));
        assert_eq!(judge(&A, &other), Judgement::Foreign);
        let refund = doc(11, DocumentKind::Receipt, Some(Operation::SaleReturn), Some(150_000));
        assert_eq!(judge(&A, &refund), Judgement::Foreign);
    }

    #[test]
    fn a_stamped_receipt_must_carry_the_jobs_reference() {
        let a = Expect::Receipt { operation: Operation::Sale, total: Money(150_000), reference: Some("17-1a2b3c4d".into()) };
        let mut ours = doc(11, DocumentKind::Receipt, Some(Operation::Sale), Some(150_000));
        ours.reference = Some("17-1a2b3c4d".into());
        assert_eq!(judge(&a, &ours), Judgement::Own);
        // Same operation and total, punched on the keypad: no reference.
        let keypad = doc(11, DocumentKind::Receipt, Some(Operation::Sale), Some(150_000));
        assert_eq!(judge(&a, &keypad), Judgement::Foreign);
        let mut other_job = keypad.clone();
        other_job.reference = Some("16-99999999".into());
        assert_eq!(judge(&a, &other_job), Judgement::Foreign);
    }

    #[test]
    fn a_shift_opened_by_the_unit_is_skipped_a_shift_close_is_not() {
        assert_eq!(judge(&A, &doc(11, DocumentKind::ShiftOpen, None, None)), Judgement::Skip);
        assert_eq!(judge(&A, &doc(11, DocumentKind::ShiftClose, None, None)), Judgement::Foreign);
    }

    #[test]
    fn content_tells_the_jobs_receipt_from_a_keypad_one_with_the_same_total() {
        let receipt: Receipt = serde_json::from_value(serde_json::json!({
            "operation": "sale",
            "items": [{"name": "Маникюр", "price": 140000, "vat": "vat10"}, {"name": "Крем", "price": 10000, "vat": "vat10"}],
            "payments": [{"type": "cash", "sum": 150000}, {"type": "electronic", "sum": 10000}]
        }))
        .unwrap();
        let totals = receipt.validate(&kkm_core::Limits::default()).unwrap();
        let item = |amount| kkm_core::tlv::ContentItem { name: "x".into(), price: Money(amount), quantity: kkm_core::Quantity(1000), amount: Money(amount) };
        let ours = ReceiptContent {
            operation: Some(Operation::Sale),
            total: Some(Money(150_000)),
            payments: vec![(PaymentType::Cash, Money(140_000)), (PaymentType::Electronic, Money(10_000))],
            items: vec![item(140_000), item(10_000)],
            cashier: None,
        };
        assert!(content_matches(&receipt, &totals, &ours), "cash is recorded net of the 100,00 change");
        let keypad = ReceiptContent { payments: vec![(PaymentType::Cash, Money(150_000))], items: vec![item(150_000)], ..ours.clone() };
        assert!(!content_matches(&receipt, &totals, &keypad));
        let other_split = ReceiptContent { payments: vec![(PaymentType::Electronic, Money(150_000))], ..ours.clone() };
        assert!(!content_matches(&receipt, &totals, &other_split));
    }

    #[test]
    fn shift_jobs_own_only_their_kind() {
        assert_eq!(judge(&Expect::ShiftOpen, &doc(5, DocumentKind::ShiftOpen, None, None)), Judgement::Own);
        assert_eq!(judge(&Expect::ShiftClose, &doc(5, DocumentKind::ShiftOpen, None, None)), Judgement::Foreign);
        let r = doc(5, DocumentKind::Receipt, Some(Operation::Sale), Some(1));
        assert_eq!(judge(&Expect::ShiftClose, &r), Judgement::Foreign);
    }
}
