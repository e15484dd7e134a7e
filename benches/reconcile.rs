//! Reconciliation benchmark: a shift of 100 000 receipts, without device I/O. Prints
//! figures; asserts nothing but that the answer is right.
//!
//! The shift: 99 000 receipts printed by the agent (cash, card and mixed), 1 000 punched
//! on the keypad, a few hundred jobs that never printed, cash moves on both sides, and a
//! program that mixed up some payment types. Timed:
//!
//! 1. the match and explanation with the program's list of 100 000 operations;
//! 2. the same with the program's totals only;
//! 3. (1) plus reading the agent's 100 000 jobs from their stored JSON.
//!
//! Run: `cargo bench --bench reconcile`.

use kkm_agent::queue::{Job, JobStatus};
use kkm_agent::reconcile::explain::ShiftInput;
use kkm_agent::reconcile::matching::{entry_of, AgentEntry};
use kkm_agent::reconcile::{self, ProgramInput};
use kkm_core::{DocumentKind, FiscalDocument, FiscalResult, Money, Operation, OperationTotals, PaymentType, ShiftTotals};
use std::time::Instant;
use time::macros::datetime;

const RECEIPTS: u32 = 100_000;
const KEYPAD_EVERY: u32 = 100;

fn job(id: i64, key: &str, cash: i64, card: i64, doc: Option<u32>, status: JobStatus) -> Job {
    let mut payments = vec![];
    if cash > 0 {
        payments.push(serde_json::json!({"type": "cash", "sum": cash}));
    }
    if card > 0 {
        payments.push(serde_json::json!({"type": "electronic", "sum": card}));
    }
    let request = serde_json::json!({"kind": "receipt", "receipt": {
        "operation": "sale",
        "items": [{"name": "Стрижка", "price": cash + card, "vat": "none"}],
        "payments": payments
    }});
    let at = datetime!(2026-11-26 09:00);
    Job {
        id,
        device: "k1".into(),
        idempotency_key: key.into(),
        kind: "receipt".into(),
        status,
        request,
        result: doc.map(|n| FiscalResult { document_number: n, fiscal_sign: n, datetime: at, shift_number: Some(1) }),
        error: None,
        attempts: 0,
        fn_before: None,
        copy_pending: false,
        created_at: "2026-11-26T06:00:00Z".into(),
        updated_at: "2026-11-26T06:00:01Z".into(),
        fn_serial: None,
        close_sent: true,
        operation: Some(Operation::Sale),
        total: Some(Money(cash + card)),
        cash_before: None,
        acknowledged_at: None,
    }
}

struct Shift {
    jobs: Vec<Job>,
    input: ShiftInput,
    ops: serde_json::Value,
    program_cash: i64,
}

fn build() -> Shift {
    let at = datetime!(2026-11-26 09:00);
    let mut documents = vec![FiscalDocument {
        number: 2,
        kind: DocumentKind::ShiftOpen,
        datetime: at,
        fiscal_sign: 2,
        operation: None,
        total: None,
        shift_number: Some(1),
        ofd_acknowledged: true,
        reference: None,
    }];
    let mut jobs = Vec::new();
    let mut ops = Vec::new();
    let (mut cash, mut card, mut program_cash) = (0i64, 0i64, 0i64);
    for i in 0..RECEIPTS {
        let number = 3 + i;
        let total = 50_000 + i64::from(i % 977) * 100;
        let minute = (i / 60) % 60;
        documents.push(FiscalDocument {
            number,
            kind: DocumentKind::Receipt,
            datetime: at.replace_minute(minute as u8).unwrap_or(at),
            fiscal_sign: number.wrapping_mul(2_654_435_761),
            operation: Some(Operation::Sale),
            total: Some(Money(total)),
            shift_number: None,
            ofd_acknowledged: true,
            reference: None,
        });
        if i % KEYPAD_EVERY == 0 {
            // Punched on the keypad, cash; the program has half of them (no reference).
            cash += total;
            if i % (2 * KEYPAD_EVERY) == 0 {
                ops.push(serde_json::json!({"kind": "sale", "cash": total}));
                program_cash += total;
            }
            continue;
        }
        let key = format!("visit-{i}");
        let (c, k) = match i % 3 {
            0 => (total, 0),
            1 => (0, total),
            _ => (total / 2, total - total / 2),
        };
        cash += c;
        card += k;
        jobs.push(job(i64::from(i), &key, c, k, Some(number), JobStatus::Done));
        // Every 500th card receipt is cash in the program.
        let (pc, pk) = if i % 500 == 1 { (total, 0) } else { (c, k) };
        program_cash += pc;
        ops.push(serde_json::json!({"reference": key, "kind": "sale", "cash": pc, "card": pk}));
    }
    // Jobs that never printed; the program counted a third of them.
    for j in 0..300 {
        let key = format!("failed-{j}");
        jobs.push(job(1_000_000 + j, &key, 12_300, 0, None, if j % 2 == 0 { JobStatus::Failed } else { JobStatus::Queued }));
        if j % 3 == 0 {
            ops.push(serde_json::json!({"reference": key, "kind": "sale", "cash": 12_300}));
            program_cash += 12_300;
        }
    }
    let totals = ShiftTotals {
        shift_number: 1,
        cash_in_drawer: Money(cash + 20_000),
        cash_ins: Money(20_000),
        cash_outs: Money(0),
        by_operation: vec![
            OperationTotals { operation: Operation::Sale, payment: PaymentType::Cash, sum: Money(cash) },
            OperationTotals { operation: Operation::Sale, payment: PaymentType::Electronic, sum: Money(card) },
        ],
        receipt_count: RECEIPTS,
        ..Default::default()
    };
    let agent: Vec<AgentEntry> = jobs.iter().filter_map(entry_of).collect();
    let input = ShiftInput {
        device: "k1".into(),
        fn_serial: "9960440300012345".into(),
        totals,
        documents,
        payments: Default::default(),
        agent,
        stats: Default::default(),
    };
    Shift { jobs, input, ops: serde_json::Value::Array(ops), program_cash }
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut last = None;
    let mut all = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let r = f();
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        best = best.min(ms);
        all.push(ms);
        last = Some(r);
    }
    all.sort_by(|a, b| a.total_cmp(b));
    let median = all[all.len() / 2];
    let _ = best;
    (median, last.unwrap())
}

fn main() {
    let s = build();
    let program: ProgramInput = serde_json::from_value(serde_json::json!({"operations": s.ops})).unwrap();
    let program = program.validate().unwrap();
    assert_eq!(program.cash, s.program_cash);
    let (ms, r) = time(7, || reconcile::reconcile(&s.input, &program));
    assert_eq!(r.unexplained, Money(0), "{}", r.summary_ru);
    println!(
        "reconcile, {} receipts, program's list of {} operations: {ms:.1} ms (median of 7); {} causes, difference {} ₽, unexplained {} ₽",
        RECEIPTS,
        program.operations.as_ref().map_or(0, Vec::len),
        r.causes.len(),
        r.difference,
        r.unexplained
    );

    let totals: ProgramInput = serde_json::from_value(serde_json::json!({"cash": s.program_cash})).unwrap();
    let totals = totals.validate().unwrap();
    let (ms, r) = time(7, || reconcile::reconcile(&s.input, &totals));
    println!(
        "reconcile, {} receipts, program's totals only: {ms:.1} ms (median of 7); {} causes, {} notes, unexplained {} ₽",
        RECEIPTS,
        r.causes.len(),
        r.notes.len(),
        r.unexplained
    );

    let (ms, r) = time(5, || {
        let agent: Vec<AgentEntry> = s.jobs.iter().filter_map(entry_of).collect();
        let input = ShiftInput { agent, ..s.input.clone() };
        reconcile::reconcile(&input, &program)
    });
    assert_eq!(r.unexplained, Money(0));
    println!("reconcile with the agent's {} jobs read from their stored JSON: {ms:.1} ms (median of 5)", s.jobs.len());
}
