//! X-report reconciliation: explain every rouble between the register and the program.
//!
//! A cashier sees "program: 22 212,50 cash, X-report: 22 412,50" and needs to know why.
//! The register only knows sums; the program only knows what it believes it sold. The
//! agent sits between them and remembers what it actually printed, so it can match the
//! three and name the causes:
//!
//! * a receipt printed on the register that the program does not have (a visit deleted
//!   after payment, or a receipt punched on the register's keypad);
//! * a receipt in the program that never printed (failed, still queued, parked);
//! * the same receipt with money in another payment type (cash in the program, card on
//!   the register: the classic mix-up);
//! * cash-ins and cash-outs on one side only.
//!
//! What the matched causes do not cover is reported as an unexplained remainder, never
//! hidden. All sums are kopecks.

use kkm_core::{Money, Operation, PaymentType, ShiftTotals};
use serde::{Deserialize, Serialize};

/// What the shop program recorded for one operation in the shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramEntry {
    /// The idempotency key the program used when it sent the receipt, if any.
    pub reference: String,
    pub kind: EntryKind,
    /// Cash part (for cash-ins and cash-outs, the sum).
    pub cash: Money,
    #[serde(default)]
    pub non_cash: Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Sale,
    SaleReturn,
    CashIn,
    CashOut,
}

impl EntryKind {
    /// The sign of this entry's effect on the drawer.
    fn cash_sign(self) -> i64 {
        match self {
            EntryKind::Sale | EntryKind::CashIn => 1,
            EntryKind::SaleReturn | EntryKind::CashOut => -1,
        }
    }
    fn name_ru(self) -> &'static str {
        match self {
            EntryKind::Sale => "чек прихода",
            EntryKind::SaleReturn => "чек возврата",
            EntryKind::CashIn => "внесение",
            EntryKind::CashOut => "выплата",
        }
    }
}

/// What the agent printed on the register in this shift (from its queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrintedEntry {
    pub reference: String,
    pub kind: EntryKind,
    pub cash: Money,
    pub non_cash: Money,
    /// Fiscal document number, for receipts.
    pub document_number: Option<u32>,
}

/// A fiscal receipt the ФН holds for this shift (read back by number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReceipt {
    pub document_number: u32,
    pub operation: Operation,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseKind {
    NotInProgram,
    NotPrinted,
    PaymentTypeMixUp,
    SumDiffers,
    KeypadReceipt,
    CashMoveNotInProgram,
    CashMoveNotPrinted,
}

/// One named cause and its effect on (register cash − program cash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    pub kind: CauseKind,
    pub reference: Option<String>,
    pub document_number: Option<u32>,
    /// Effect on the difference, kopecks: positive means the register shows more cash.
    pub effect: Money,
    pub text_ru: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// Net cash by the register's counters (sales − returns + cash-ins − cash-outs).
    pub register_cash: Money,
    /// Net cash by the program.
    pub program_cash: Money,
    pub difference: Money,
    pub causes: Vec<Cause>,
    /// What the causes do not explain. Zero when every rouble is accounted for.
    pub unexplained: Money,
}

/// The register's net cash from its counters.
pub fn register_cash(t: &ShiftTotals) -> Money {
    let c = |op| t.sum(op, PaymentType::Cash).0;
    Money(c(Operation::Sale) - c(Operation::SaleReturn) - c(Operation::Purchase) + c(Operation::PurchaseReturn)
        + t.cash_ins.0
        - t.cash_outs.0)
}

fn signed(kind: EntryKind, m: Money) -> i64 {
    kind.cash_sign() * m.0
}

/// Matches program, agent and register and names the causes of the cash difference.
pub fn reconcile(
    totals: &ShiftTotals,
    program: &[ProgramEntry],
    printed: &[PrintedEntry],
    device_receipts: &[DeviceReceipt],
) -> Reconciliation {
    let register = register_cash(totals);
    let program_cash = Money(program.iter().map(|e| signed(e.kind, e.cash)).sum());
    let difference = Money(register.0 - program_cash.0);
    let mut causes = Vec::new();
    let is_cash_move = |k: EntryKind| matches!(k, EntryKind::CashIn | EntryKind::CashOut);

    for p in printed {
        match program.iter().find(|e| e.reference == p.reference) {
            None => causes.push(Cause {
                kind: if is_cash_move(p.kind) { CauseKind::CashMoveNotInProgram } else { CauseKind::NotInProgram },
                reference: Some(p.reference.clone()),
                document_number: p.document_number,
                effect: Money(signed(p.kind, p.cash)),
                text_ru: format!(
                    "{} {}{} на {} ₽ наличными пробит на кассе, но его нет в программе",
                    capital(p.kind.name_ru()), p.reference, doc_suffix(p.document_number), p.cash
                ),
            }),
            Some(e) if e.cash != p.cash => {
                let effect = Money(signed(p.kind, p.cash) - signed(e.kind, e.cash));
                let mixed = e.cash.0 + e.non_cash.0 == p.cash.0 + p.non_cash.0;
                causes.push(Cause {
                    kind: if mixed { CauseKind::PaymentTypeMixUp } else { CauseKind::SumDiffers },
                    reference: Some(p.reference.clone()),
                    document_number: p.document_number,
                    effect,
                    text_ru: if mixed {
                        format!(
                            "{} {}{}: в программе наличными {} ₽, на кассе наличными {} ₽ (остальное безналичными) — перепутан тип оплаты",
                            capital(p.kind.name_ru()), p.reference, doc_suffix(p.document_number), e.cash, p.cash
                        )
                    } else {
                        format!(
                            "{} {}{}: наличными в программе {} ₽, на кассе {} ₽",
                            capital(p.kind.name_ru()), p.reference, doc_suffix(p.document_number), e.cash, p.cash
                        )
                    },
                });
            }
            Some(_) => {}
        }
    }
    for e in program {
        if !printed.iter().any(|p| p.reference == e.reference) && e.cash.0 != 0 {
            causes.push(Cause {
                kind: if is_cash_move(e.kind) { CauseKind::CashMoveNotPrinted } else { CauseKind::NotPrinted },
                reference: Some(e.reference.clone()),
                document_number: None,
                effect: Money(-signed(e.kind, e.cash)),
                text_ru: format!(
                    "{} {} на {} ₽ наличными есть в программе, но на кассе не пробит",
                    capital(e.kind.name_ru()), e.reference, e.cash
                ),
            });
        }
    }
    // Receipts in the ФН that the agent did not print: punched on the keypad.
    let explained: i64 = causes.iter().map(|c| c.effect.0).sum();
    let mut remainder = difference.0 - explained;
    for d in device_receipts {
        if printed.iter().any(|p| p.document_number == Some(d.document_number)) {
            continue;
        }
        let sign = if d.operation.is_income() { 1 } else { -1 };
        // The ФН keeps the total, not the split: if the remainder can be this receipt in
        // cash, say so; otherwise name it as a non-cash keypad receipt with no effect.
        let as_cash = sign * d.total.0;
        let cash_fits = remainder != 0 && remainder.signum() == as_cash.signum() && remainder.abs() >= as_cash.abs();
        let effect = if cash_fits { as_cash } else { 0 };
        remainder -= effect;
        causes.push(Cause {
            kind: CauseKind::KeypadReceipt,
            reference: None,
            document_number: Some(d.document_number),
            effect: Money(effect),
            text_ru: format!(
                "Чек ФД №{} ({}, {} ₽) пробит на кассе вручную, не через программу{}",
                d.document_number,
                d.operation.name_ru().to_lowercase(),
                d.total,
                if cash_fits { ", вероятно наличными" } else { "" }
            ),
        });
    }
    Reconciliation { register_cash: register, program_cash, difference, causes, unexplained: Money(remainder) }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

fn doc_suffix(n: Option<u32>) -> String {
    n.map_or(String::new(), |n| format!(" (ФД №{n})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kkm_core::OperationTotals;

    fn totals(cash_sales: i64, cash_ins: i64) -> ShiftTotals {
        ShiftTotals {
            shift_number: 1,
            cash_in_drawer: Money(0),
            cash_ins: Money(cash_ins),
            cash_outs: Money(0),
            by_operation: vec![OperationTotals { operation: Operation::Sale, payment: PaymentType::Cash, sum: Money(cash_sales) }],
            receipt_count: 0,
        }
    }

    fn entry(r: &str, kind: EntryKind, cash: i64, non_cash: i64) -> ProgramEntry {
        ProgramEntry { reference: r.into(), kind, cash: Money(cash), non_cash: Money(non_cash) }
    }

    fn printed(r: &str, kind: EntryKind, cash: i64, non_cash: i64, doc: u32) -> PrintedEntry {
        PrintedEntry { reference: r.into(), kind, cash: Money(cash), non_cash: Money(non_cash), document_number: Some(doc) }
    }

    /// The seed ticket: program 22 212,50, X-report 22 412,50.
    #[test]
    fn explains_the_200_roubles_of_the_ticket() {
        let program = vec![entry("v1", EntryKind::Sale, 2_000_000, 0), entry("v2", EntryKind::Sale, 221_250, 20_000)];
        let agent = vec![printed("v1", EntryKind::Sale, 2_000_000, 0, 10), printed("v2", EntryKind::Sale, 241_250, 0, 11)];
        let r = reconcile(&totals(2_241_250, 0), &program, &agent, &[]);
        assert_eq!(r.program_cash, Money(2_221_250));
        assert_eq!(r.register_cash, Money(2_241_250));
        assert_eq!(r.difference, Money(20_000));
        assert_eq!(r.unexplained, Money(0));
        assert_eq!(r.causes.len(), 1);
        assert_eq!(r.causes[0].kind, CauseKind::PaymentTypeMixUp);
        assert!(r.causes[0].text_ru.contains("ФД №11"));
    }

    #[test]
    fn cash_in_missing_from_program_and_keypad_receipt() {
        let program = vec![entry("v1", EntryKind::Sale, 100_000, 0)];
        let agent = vec![printed("v1", EntryKind::Sale, 100_000, 0, 5), printed("ci", EntryKind::CashIn, 50_000, 0, 0)];
        let device = vec![DeviceReceipt { document_number: 7, operation: Operation::Sale, total: Money(30_000) }];
        let r = reconcile(&totals(130_000, 50_000), &program, &agent, &device);
        assert_eq!(r.difference, Money(80_000));
        assert_eq!(r.unexplained, Money(0), "{:#?}", r.causes);
        let kinds: Vec<_> = r.causes.iter().map(|c| c.kind.clone()).collect();
        assert!(kinds.contains(&CauseKind::CashMoveNotInProgram));
        assert!(kinds.contains(&CauseKind::KeypadReceipt));
    }

    #[test]
    fn receipt_not_printed() {
        let program = vec![entry("v1", EntryKind::Sale, 100_000, 0), entry("v2", EntryKind::Sale, 5_000, 0)];
        let agent = vec![printed("v1", EntryKind::Sale, 100_000, 0, 5)];
        let r = reconcile(&totals(100_000, 0), &program, &agent, &[]);
        assert_eq!(r.difference, Money(-5_000));
        assert_eq!(r.causes[0].kind, CauseKind::NotPrinted);
        assert_eq!(r.unexplained, Money(0));
    }
}
