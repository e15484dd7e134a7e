//! The register side, joined: each receipt of the shift in the ФН with the agent's job
//! that printed it (by ФД number), and the payment split of the others.
//!
//! The ФН read-back gives a receipt's operation and total, not its split. For receipts
//! the agent printed, the split is the one it sent. For the others (the keypad, another
//! program) the counters give it in aggregate, exactly: the register's cash for an
//! operation minus the agent's cash for it is the others' cash. When that aggregate
//! splits one way only (all cash, all non-cash, or a single receipt), each receipt's
//! split is known; otherwise it is assigned in document order and marked unknown.

use super::input::OperationKind;
use crate::queue::{Job, JobRequest, JobStatus};
use kkm_core::{DocumentKind, FiscalDocument, Operation, PaymentType, ShiftTotals};
use std::collections::HashMap;

/// One of the agent's jobs that matters to the shift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentEntry {
    pub job_id: i64,
    pub key: String,
    pub status: JobStatus,
    pub kind: OperationKind,
    /// Receipt total, or the cash move's sum.
    pub total: i64,
    /// Kopecks by payment type, cash net of change.
    pub pays: [i64; 5],
    /// ФД number, for done receipts.
    pub document: Option<u32>,
    /// Why it did not print, in Russian, for jobs that did not.
    pub error_ru: Option<String>,
}

impl AgentEntry {
    pub fn cash(&self) -> i64 {
        self.pays[0]
    }
    pub fn signed_cash(&self) -> i64 {
        self.kind.sign() * self.pays[0]
    }
    pub fn done(&self) -> bool {
        self.status == JobStatus::Done
    }
}

fn pay_index(p: PaymentType) -> usize {
    PaymentType::ALL.iter().position(|x| *x == p).unwrap_or(4)
}

/// The agent's entry for a stored job, if it is a receipt or a cash move.
pub fn entry_of(job: &Job) -> Option<AgentEntry> {
    let req = <JobRequest as serde::Deserialize>::deserialize(&job.request).ok()?;
    let (kind, total, pays) = match req {
        JobRequest::Receipt { receipt } => {
            let total = receipt.items.iter().try_fold(0i64, |a, i| i.total().and_then(|t| a.checked_add(t.0)))?;
            let mut pays = [0i64; 5];
            for p in &receipt.payments {
                let i = pay_index(p.kind);
                pays[i] = pays[i].saturating_add(p.sum.0);
            }
            // Change comes out of the cash: the drawer keeps total − non-cash.
            let non_cash: i64 = pays[1..].iter().sum();
            pays[0] = (total - non_cash).clamp(0, pays[0]);
            (OperationKind::of(receipt.operation), total, pays)
        }
        JobRequest::CashIn { sum } => (OperationKind::CashIn, sum.0, [sum.0, 0, 0, 0, 0]),
        JobRequest::CashOut { sum } => (OperationKind::CashOut, sum.0, [sum.0, 0, 0, 0, 0]),
        _ => return None,
    };
    Some(AgentEntry {
        job_id: job.id,
        key: job.idempotency_key.clone(),
        status: job.status,
        kind,
        total,
        pays,
        document: if job.status == JobStatus::Done { job.result.as_ref().map(|r| r.document_number) } else { None },
        error_ru: job.error.as_ref().map(|e| e.title_ru.clone()),
    })
}

/// A receipt of the shift in the ФН.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterReceipt {
    pub doc: FiscalDocument,
    pub kind: OperationKind,
    pub total: i64,
    /// Index into the agent's entries, when the agent printed it.
    pub agent: Option<usize>,
    /// Kopecks by payment type (cash net of change).
    pub pays: [i64; 5],
    /// The split is the agent's or follows from the counters without doubt.
    pub split_known: bool,
}

impl RegisterReceipt {
    pub fn cash(&self) -> i64 {
        self.pays[0]
    }
    pub fn signed_cash(&self) -> i64 {
        self.kind.sign() * self.pays[0]
    }
}

/// The register's side of the shift, joined with the agent's journal.
#[derive(Debug, Clone, Default)]
pub struct RegisterSide {
    pub receipts: Vec<RegisterReceipt>,
    /// Register cash − the split assigned to receipts, per operation (Sale, SaleReturn,
    /// Purchase, PurchaseReturn): cash the documents cannot account for.
    pub residual_cash: [i64; 4],
    /// Cash moves on the register not made through the agent (keypad), net of the
    /// agent's: (cash-ins, cash-outs). Negative when the agent's journal shows more.
    pub other_cash_in: i64,
    pub other_cash_out: i64,
}

pub const OPERATIONS: [Operation; 4] = [Operation::Sale, Operation::SaleReturn, Operation::Purchase, Operation::PurchaseReturn];

/// Joins the shift's documents with the agent's entries (done receipts by ФД number,
/// done cash moves in the shift) and derives the split of the others.
pub fn join(totals: &ShiftTotals, documents: &[FiscalDocument], agent: &[AgentEntry], read: &HashMap<u32, [i64; 5]>) -> RegisterSide {
    let by_doc: HashMap<u32, usize> =
        agent.iter().enumerate().filter(|(_, a)| a.done()).filter_map(|(i, a)| a.document.map(|d| (d, i))).collect();
    let mut receipts = Vec::new();
    for d in documents {
        if d.kind != DocumentKind::Receipt {
            continue;
        }
        let (Some(op), Some(total)) = (d.operation, d.total) else { continue };
        let agent_ix = by_doc.get(&d.number).copied().filter(|i| agent[*i].kind == OperationKind::of(op));
        // The ФН's own split first, then the one the agent sent.
        let from_fn = read.get(&d.number).copied();
        let pays = from_fn.or(agent_ix.map(|i| agent[i].pays)).unwrap_or([0; 5]);
        receipts.push(RegisterReceipt {
            doc: d.clone(),
            kind: OperationKind::of(op),
            total: total.0,
            agent: agent_ix,
            pays,
            split_known: agent_ix.is_some() || from_fn.is_some(),
        });
    }
    // The others' split per operation and payment type, from the counters.
    let mut residual_cash = [0i64; 4];
    for (oi, op) in OPERATIONS.into_iter().enumerate() {
        let mut left = [0i64; 5];
        for (pi, pay) in PaymentType::ALL.into_iter().enumerate() {
            left[pi] = totals.sum(op, pay).0;
        }
        // Receipts whose split is known (the agent's, or read from the ФН).
        for r in receipts.iter().filter(|r| r.split_known && r.kind == OperationKind::of(op)) {
            for pi in 0..5 {
                left[pi] -= r.pays[pi];
            }
        }
        let others: Vec<usize> =
            receipts.iter().enumerate().filter(|(_, r)| !r.split_known && r.kind == OperationKind::of(op)).map(|(i, _)| i).collect();
        let others_total: i64 = others.iter().map(|i| receipts[*i].total).sum();
        // Exactly determined: the counters agree with the documents, and there is one
        // receipt or every kopeck is of one payment type.
        let exact = left.iter().sum::<i64>() == others_total && (others.len() == 1 || left.iter().filter(|v| **v != 0).count() <= 1);
        for i in others {
            let r = &mut receipts[i];
            let mut rest = r.total;
            for pi in 0..5 {
                let take = left[pi].clamp(0, rest);
                r.pays[pi] = take;
                rest -= take;
                left[pi] -= take;
            }
            r.split_known = exact && rest == 0;
        }
        residual_cash[oi] = left[0];
    }
    let agent_in: i64 = agent.iter().filter(|a| a.done() && a.kind == OperationKind::CashIn).map(|a| a.total).sum();
    let agent_out: i64 = agent.iter().filter(|a| a.done() && a.kind == OperationKind::CashOut).map(|a| a.total).sum();
    RegisterSide {
        receipts,
        residual_cash,
        other_cash_in: totals.cash_ins.0 - agent_in,
        other_cash_out: totals.cash_outs.0 - agent_out,
    }
}

/// Register net cash from the counters: sales − returns − purchases + purchase returns,
/// plus cash-ins, minus cash-outs. Returns (receipts only, with cash moves).
pub fn register_cash(t: &ShiftTotals) -> (i64, i64) {
    let c = |op| t.sum(op, PaymentType::Cash).0;
    let receipts = c(Operation::Sale) - c(Operation::SaleReturn) - c(Operation::Purchase) + c(Operation::PurchaseReturn);
    (receipts, receipts + t.cash_ins.0 - t.cash_outs.0)
}

/// Register net non-cash from the counters.
pub fn register_card(t: &ShiftTotals) -> i64 {
    let nc = |op| PaymentType::ALL[1..].iter().map(|p| t.sum(op, *p).0).sum::<i64>();
    nc(Operation::Sale) - nc(Operation::SaleReturn) - nc(Operation::Purchase) + nc(Operation::PurchaseReturn)
}

/// Register sale returns, all payment types.
pub fn register_returns(t: &ShiftTotals) -> i64 {
    PaymentType::ALL.iter().map(|p| t.sum(Operation::SaleReturn, *p).0).sum()
}
