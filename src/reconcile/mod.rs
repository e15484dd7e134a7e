//! X-report reconciliation: explain every rouble between the register and the program.
//!
//! A cashier sees "program: 22 212,50 cash, X-report: 22 412,50" and needs to know why.
//! The register knows its counters and, in the ФН, every receipt with its number, time
//! and fiscal sign; the program knows what it believes it sold; the agent knows what it
//! was asked to print and what came of it. Reconciliation reads all three and puts every
//! kopeck of the difference into a category with the documents behind it and what to do.
//!
//! * [`input`]: the program's totals or list of operations (JSON, CSV), checked.
//! * [`source`]: the device side: counters and the shift's documents, read through the
//!   device's worker and cached in SQLite, and the agent's journal for the shift.
//! * [`matching`]: joins the ФН documents with the agent's jobs and derives the payment
//!   split of receipts the agent did not print from the counters.
//! * [`explain`]: the categories and the match of program against register.
//! * [`report`]: the Russian report for people and the CSV for the accountant.
//!
//! Sums are integer kopecks throughout. What no cause explains is reported as
//! unexplained, with its amount: never hidden, never forced into a category.

pub mod explain;
pub mod input;
pub mod matching;
pub mod report;
pub mod source;

pub use explain::reconcile;
pub use input::{ProgramInput, ProgramOperation};

use kkm_core::Money;
use serde::Serialize;

/// Why part of the difference exists. Stable codes for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A cash-in or cash-out on the register the program does not know.
    CashMoveNotInProgram,
    /// A cash-in or cash-out in the program that the register does not have.
    CashMoveNotOnRegister,
    /// A receipt in the ФН the agent did not print (the keypad, another program) and the
    /// program does not have.
    ReceiptNotByAgent,
    /// The same sale twice on the register.
    DuplicateReceipt,
    /// A return on the register only.
    ReturnOnlyOnRegister,
    /// A return in the program only.
    ReturnOnlyInProgram,
    /// A payment in the program that never reached the register (failed, parked,
    /// cancelled, needs attention, still queued).
    NotPrinted,
    /// Cash in the program, another payment type on the register, same receipt.
    PaymentTypeMixUp,
    /// The same receipt with another sum or operation.
    SumDiffers,
    /// A receipt the agent printed that the program's list does not have.
    NotInProgram,
    /// What no cause explains.
    Unexplained,
}

impl Category {
    pub fn code(self) -> &'static str {
        match self {
            Category::CashMoveNotInProgram => "cash_move_not_in_program",
            Category::CashMoveNotOnRegister => "cash_move_not_on_register",
            Category::ReceiptNotByAgent => "receipt_not_by_agent",
            Category::DuplicateReceipt => "duplicate_receipt",
            Category::ReturnOnlyOnRegister => "return_only_on_register",
            Category::ReturnOnlyInProgram => "return_only_in_program",
            Category::NotPrinted => "not_printed",
            Category::PaymentTypeMixUp => "payment_type_mix_up",
            Category::SumDiffers => "sum_differs",
            Category::NotInProgram => "not_in_program",
            Category::Unexplained => "unexplained",
        }
    }
    pub fn title_ru(self) -> &'static str {
        match self {
            Category::CashMoveNotInProgram => "Внесение или выплата на кассе, которых нет в программе",
            Category::CashMoveNotOnRegister => "Внесение или выплата в программе, которых нет на кассе",
            Category::ReceiptNotByAgent => "Чек пробит на кассе не через программу",
            Category::DuplicateReceipt => "Один и тот же чек пробит дважды",
            Category::ReturnOnlyOnRegister => "Возврат есть только на кассе",
            Category::ReturnOnlyInProgram => "Возврат есть только в программе",
            Category::NotPrinted => "Оплата в программе, но чек на кассе не пробит",
            Category::PaymentTypeMixUp => "Перепутан тип оплаты",
            Category::SumDiffers => "Сумма чека в программе и на кассе разная",
            Category::NotInProgram => "Чек пробит через агента, но его нет в программе",
            Category::Unexplained => "Не объяснено",
        }
    }
}

/// A fiscal document behind a cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DocumentRef {
    /// ФД number.
    pub number: u32,
    /// Device time, `YYYY-MM-DDTHH:MM:SS`.
    pub time: String,
    /// ФП (fiscal sign).
    pub fiscal_sign: u32,
    pub operation: Option<String>,
    #[schema(value_type = Option<i64>)]
    pub total: Option<Money>,
}

/// One named cause and its share of the difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Cause {
    pub category: Category,
    /// Effect on (register cash − program cash), kopecks. Zero for notes.
    #[schema(value_type = i64)]
    pub effect: Money,
    /// The sum of the operation(s) behind the cause, kopecks.
    #[schema(value_type = i64)]
    pub amount: Money,
    /// `false` when the cause is the only one that fits the sums but the program's
    /// totals alone cannot prove it (give the list of operations to be sure).
    pub certain: bool,
    pub documents: Vec<DocumentRef>,
    /// The program's references (Idempotency-Keys).
    pub references: Vec<String>,
    /// The agent's job ids.
    pub jobs: Vec<i64>,
    pub text_ru: String,
    pub action_ru: String,
}

/// Money figures of one side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Figures {
    /// Net cash of the shift: receipts plus cash-ins minus cash-outs.
    #[schema(value_type = i64)]
    pub cash: Money,
    /// Net cash from receipts alone.
    #[schema(value_type = i64)]
    pub receipts_cash: Money,
    #[schema(value_type = Option<i64>)]
    pub card: Option<Money>,
    #[schema(value_type = Option<i64>)]
    pub returns: Option<Money>,
    #[schema(value_type = i64)]
    pub cash_in: Money,
    #[schema(value_type = i64)]
    pub cash_out: Money,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DocumentStats {
    /// Fiscal documents of the shift (shift open to the last).
    pub in_shift: usize,
    pub receipts: usize,
    /// Read from the ФН this time.
    pub read_from_device: usize,
    /// Taken from the agent's cache of earlier reads.
    pub from_cache: usize,
}

/// The answer: both sides' figures, the difference and its causes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reconciliation {
    pub device: String,
    pub shift_number: u32,
    /// When the shift was opened, by the device's clock.
    pub shift_opened_at: Option<String>,
    pub fn_serial: String,
    /// `totals` or `operations`: what the program gave.
    pub mode: String,
    pub register: Figures,
    pub program: Figures,
    /// Register cash − program cash, kopecks.
    #[schema(value_type = i64)]
    pub difference: Money,
    /// Register card − program card, when the program gave its card figure.
    #[schema(value_type = Option<i64>)]
    pub card_difference: Option<Money>,
    /// Every kopeck of `difference`, by cause; the sum of `effect`s equals it.
    pub causes: Vec<Cause>,
    /// Operations noticed that do not change the difference (e.g. a keypad receipt the
    /// program probably has).
    pub notes: Vec<Cause>,
    /// What no cause explains, kopecks (also the last cause, when not zero).
    #[schema(value_type = i64)]
    pub unexplained: Money,
    /// The program and the register agree on cash.
    pub balanced: bool,
    pub summary_ru: String,
    pub documents: DocumentStats,
}
