//! What the shop program says about the shift: its totals, or its list of operations.
//!
//! JSON (the API, `--operations file.json` on the CLI) and CSV (the CLI). Money in JSON is
//! integer kopecks; in CSV it is roubles as people type them (`1500,00`), read exactly.
//! Every refusal has a stable code and Russian and English text.

use kkm_core::{Money, Operation};
use serde::Deserialize;

/// The largest sum accepted anywhere in the input: 100 000 000 000,00 ₽.
const MAX_SUM: i64 = 10_000_000_000_000;
/// The most operations one reconciliation accepts.
pub const MAX_OPERATIONS: usize = 200_000;

/// The program's view of the shift. `cash` alone is enough; everything else is optional.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramInput {
    /// Net cash of the shift by the program, kopecks: cash taken for sales minus cash
    /// given back for returns, **without** cash-ins and cash-outs (give those below).
    /// May be omitted when `operations` is given.
    #[schema(value_type = Option<i64>, example = 2221250)]
    pub cash: Option<Money>,
    /// Net non-cash (card, SBP) of the shift by the program, kopecks.
    #[schema(value_type = Option<i64>)]
    pub card: Option<Money>,
    /// Sum of the program's sale returns (all payment types), kopecks.
    #[schema(value_type = Option<i64>)]
    pub returns: Option<Money>,
    /// Cash-ins the program knows of, kopecks (omitted: none).
    #[schema(value_type = Option<i64>)]
    pub cash_in: Option<Money>,
    /// Cash-outs the program knows of, kopecks (omitted: none).
    #[schema(value_type = Option<i64>)]
    pub cash_out: Option<Money>,
    /// The program's operations in the shift. When given, the match is by operation.
    pub operations: Option<Vec<ProgramOperation>>,
}

/// One operation as the program recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramOperation {
    /// The Idempotency-Key the program sent it with, if it went through the agent.
    #[serde(default)]
    pub reference: Option<String>,
    /// Local time, `YYYY-MM-DDTHH:MM[:SS]` (informational).
    #[serde(default)]
    pub time: Option<String>,
    pub kind: OperationKind,
    /// Kopecks by payment type.
    #[serde(default)]
    #[schema(value_type = i64)]
    pub cash: Money,
    #[serde(default)]
    #[schema(value_type = i64)]
    pub card: Money,
    #[serde(default)]
    #[schema(value_type = i64)]
    pub advance: Money,
    #[serde(default)]
    #[schema(value_type = i64)]
    pub credit: Money,
    #[serde(default)]
    #[schema(value_type = i64)]
    pub other: Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    Sale,
    SaleReturn,
    Purchase,
    PurchaseReturn,
    CashIn,
    CashOut,
}

impl OperationKind {
    pub fn receipt_operation(self) -> Option<Operation> {
        match self {
            OperationKind::Sale => Some(Operation::Sale),
            OperationKind::SaleReturn => Some(Operation::SaleReturn),
            OperationKind::Purchase => Some(Operation::Purchase),
            OperationKind::PurchaseReturn => Some(Operation::PurchaseReturn),
            OperationKind::CashIn | OperationKind::CashOut => None,
        }
    }
    /// +1 when the drawer gains, −1 when it pays out.
    pub fn sign(self) -> i64 {
        match self {
            OperationKind::Sale | OperationKind::PurchaseReturn | OperationKind::CashIn => 1,
            OperationKind::SaleReturn | OperationKind::Purchase | OperationKind::CashOut => -1,
        }
    }
    pub fn of(op: Operation) -> OperationKind {
        match op {
            Operation::Sale => OperationKind::Sale,
            Operation::SaleReturn => OperationKind::SaleReturn,
            Operation::Purchase => OperationKind::Purchase,
            Operation::PurchaseReturn => OperationKind::PurchaseReturn,
        }
    }
    pub fn name_ru(self) -> &'static str {
        match self {
            OperationKind::Sale => "чек прихода",
            OperationKind::SaleReturn => "чек возврата прихода",
            OperationKind::Purchase => "чек расхода",
            OperationKind::PurchaseReturn => "чек возврата расхода",
            OperationKind::CashIn => "внесение",
            OperationKind::CashOut => "выплата",
        }
    }
    fn parse(s: &str) -> Option<OperationKind> {
        Some(match s.trim().to_lowercase().as_str() {
            "sale" | "приход" | "продажа" => OperationKind::Sale,
            "sale_return" | "return" | "возврат" | "возврат прихода" => OperationKind::SaleReturn,
            "purchase" | "расход" => OperationKind::Purchase,
            "purchase_return" | "возврат расхода" => OperationKind::PurchaseReturn,
            "cash_in" | "cash-in" | "внесение" => OperationKind::CashIn,
            "cash_out" | "cash-out" | "выплата" | "изъятие" => OperationKind::CashOut,
            _ => return None,
        })
    }
}

/// One program operation, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramOp {
    pub reference: Option<String>,
    pub time: Option<String>,
    pub kind: OperationKind,
    /// Kopecks by [`kkm_core::PaymentType::ALL`] order: cash, card, advance, credit, other.
    pub pays: [i64; 5],
}

impl ProgramOp {
    pub fn total(&self) -> i64 {
        self.pays.iter().sum()
    }
    pub fn cash(&self) -> i64 {
        self.pays[0]
    }
    pub fn signed_cash(&self) -> i64 {
        self.kind.sign() * self.pays[0]
    }
}

/// The program's view, checked and normalised.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Program {
    /// Net cash from receipts (sales − returns …), kopecks, without cash moves.
    pub cash: i64,
    pub card: Option<i64>,
    pub returns: Option<i64>,
    pub cash_in: Option<i64>,
    pub cash_out: Option<i64>,
    /// Present in operations mode.
    pub operations: Option<Vec<ProgramOp>>,
}

impl Program {
    /// Net drawer movement by the program: receipts plus its cash moves.
    pub fn net_cash(&self) -> i64 {
        self.cash + self.cash_in.unwrap_or(0) - self.cash_out.unwrap_or(0)
    }
}

/// A refusal of the input, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub code: &'static str,
    pub ru: String,
    pub en: String,
}

fn err(code: &'static str, ru: impl Into<String>, en: impl Into<String>) -> InputError {
    InputError { code, ru: ru.into(), en: en.into() }
}

fn check_sum(m: Option<Money>, field: &str, signed: bool) -> Result<Option<i64>, InputError> {
    match m {
        None => Ok(None),
        Some(Money(v)) if v.unsigned_abs() >= MAX_SUM.unsigned_abs() => Err(err(
            "reconcile.sum_invalid",
            format!("Сумма {field} слишком велика"),
            format!("The sum {field} is too large"),
        )),
        Some(Money(v)) if v < 0 && !signed => Err(err(
            "reconcile.sum_invalid",
            format!("Сумма {field} не может быть отрицательной"),
            format!("The sum {field} cannot be negative"),
        )),
        Some(Money(v)) => Ok(Some(v)),
    }
}

impl ProgramInput {
    /// Checks the input and computes the program's figures.
    pub fn validate(&self) -> Result<Program, InputError> {
        let cash = check_sum(self.cash, "cash", true)?;
        let card = check_sum(self.card, "card", true)?;
        let returns = check_sum(self.returns, "returns", false)?;
        let cash_in = check_sum(self.cash_in, "cash_in", false)?;
        let cash_out = check_sum(self.cash_out, "cash_out", false)?;
        let Some(list) = &self.operations else {
            let cash = cash.ok_or_else(|| {
                err(
                    "reconcile.program_cash_missing",
                    "Укажите наличные по программе (program.cash, в копейках) или список операций (program.operations)",
                    "Give the program's cash (program.cash, kopecks) or its operations (program.operations)",
                )
            })?;
            return Ok(Program { cash, card, returns, cash_in, cash_out, operations: None });
        };
        if list.len() > MAX_OPERATIONS {
            return Err(err(
                "reconcile.too_many_operations",
                format!("Слишком много операций: {} (не больше {MAX_OPERATIONS})", list.len()),
                format!("Too many operations: {} (at most {MAX_OPERATIONS})", list.len()),
            ));
        }
        let mut ops = Vec::with_capacity(list.len());
        for (i, o) in list.iter().enumerate() {
            let n = i + 1;
            let pays = [o.cash.0, o.card.0, o.advance.0, o.credit.0, o.other.0];
            if pays.iter().any(|v| *v < 0 || *v >= MAX_SUM) {
                return Err(err(
                    "reconcile.operation_invalid",
                    format!("Операция №{n}: суммы должны быть от нуля до 100 млрд ₽"),
                    format!("Operation #{n}: sums must be between zero and 100 billion"),
                ));
            }
            if pays.iter().sum::<i64>() == 0 {
                return Err(err(
                    "reconcile.operation_invalid",
                    format!("Операция №{n}: нулевая сумма"),
                    format!("Operation #{n}: zero sum"),
                ));
            }
            if matches!(o.kind, OperationKind::CashIn | OperationKind::CashOut) && pays[1..].iter().any(|v| *v != 0) {
                return Err(err(
                    "reconcile.operation_invalid",
                    format!("Операция №{n}: внесение и выплата бывают только наличными"),
                    format!("Operation #{n}: cash-ins and cash-outs are cash only"),
                ));
            }
            let reference = o.reference.as_ref().map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
            if reference.as_ref().is_some_and(|r| r.len() > 128) {
                return Err(err(
                    "reconcile.operation_invalid",
                    format!("Операция №{n}: reference длиннее 128 символов"),
                    format!("Operation #{n}: reference over 128 characters"),
                ));
            }
            ops.push(ProgramOp { reference, time: o.time.clone(), kind: o.kind, pays });
        }
        let mut p = Program { cash: 0, card: None, returns: None, cash_in: None, cash_out: None, operations: None };
        let (mut c, mut k, mut r, mut ci, mut co) = (0i64, 0i64, 0i64, 0i64, 0i64);
        for o in &ops {
            match o.kind {
                OperationKind::CashIn => ci += o.cash(),
                OperationKind::CashOut => co += o.cash(),
                kind => {
                    c += kind.sign() * o.cash();
                    k += kind.sign() * (o.total() - o.cash());
                    if kind == OperationKind::SaleReturn {
                        r += o.total();
                    }
                }
            }
        }
        let mismatch = |what: &str, given: i64, list: i64| {
            err(
                "reconcile.program_inconsistent",
                format!(
                    "Итог программы {what} ({}) не равен сумме её операций ({})",
                    Money(given),
                    Money(list)
                ),
                format!("The program's {what} total ({given}) differs from the sum of its operations ({list})"),
            )
        };
        for (given, list, what) in [(cash, c, "cash"), (card, k, "card"), (returns, r, "returns"), (cash_in, ci, "cash_in"), (cash_out, co, "cash_out")] {
            if let Some(g) = given {
                if g != list {
                    return Err(mismatch(what, g, list));
                }
            }
        }
        p.cash = c;
        p.card = Some(k);
        p.returns = Some(r);
        p.cash_in = Some(ci);
        p.cash_out = Some(co);
        p.operations = Some(ops);
        Ok(p)
    }
}

/// Reads the program's operations from CSV: a header line naming the columns
/// (`reference`, `time`, `kind`, `cash`, `card`, `advance`, `credit`, `other`, any order;
/// only `kind` is required), separated by `;` or `,`. Sums are roubles (`1500,00`): with
/// `,` as the separator, write them with a point or in quotes.
pub fn operations_from_csv(text: &str) -> Result<Vec<ProgramOperation>, InputError> {
    let text = text.trim_start_matches('\u{feff}');
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| err("reconcile.csv_invalid", "Пустой CSV", "Empty CSV"))?;
    let sep = if header.contains(';') { ';' } else { ',' };
    let cols: Vec<String> = split_csv(header, sep).into_iter().map(|c| c.trim().to_lowercase()).collect();
    let col = |name: &str| cols.iter().position(|c| c == name);
    let kind_at = col("kind").ok_or_else(|| {
        err("reconcile.csv_invalid", "В заголовке CSV нет столбца kind", "The CSV header has no `kind` column")
    })?;
    let mut out = Vec::new();
    for (i, line) in lines {
        let n = i + 1;
        let cells = split_csv(line, sep);
        let cell = |c: Option<usize>| c.and_then(|c| cells.get(c)).map(|s| s.trim()).filter(|s| !s.is_empty());
        let kind_text = cell(Some(kind_at)).unwrap_or("");
        let kind = OperationKind::parse(kind_text).ok_or_else(|| {
            err(
                "reconcile.csv_invalid",
                format!("Строка {n}: неизвестный вид операции {kind_text:?}"),
                format!("Line {n}: unknown kind {kind_text:?}"),
            )
        })?;
        let money = |name: &str| -> Result<Money, InputError> {
            match cell(col(name)) {
                None => Ok(Money::ZERO),
                Some(t) => Money::parse_roubles(t).map_err(|e| {
                    err("reconcile.csv_invalid", format!("Строка {n}, столбец {name}: {e}"), format!("Line {n}, column {name}: {e}"))
                }),
            }
        };
        out.push(ProgramOperation {
            reference: cell(col("reference")).map(str::to_string),
            time: cell(col("time")).map(str::to_string),
            kind,
            cash: money("cash")?,
            card: money("card")?,
            advance: money("advance")?,
            credit: money("credit")?,
            other: money("other")?,
        });
        if out.len() > MAX_OPERATIONS {
            return Err(err(
                "reconcile.too_many_operations",
                format!("Слишком много операций (не больше {MAX_OPERATIONS})"),
                format!("Too many operations (at most {MAX_OPERATIONS})"),
            ));
        }
    }
    Ok(out)
}

/// Splits one CSV line, honouring double quotes.
fn split_csv(line: &str, sep: char) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                if let Some(s) = cells.last_mut() {
                    s.push('"');
                }
            }
            '"' => quoted = !quoted,
            c if c == sep && !quoted => cells.push(String::new()),
            c => {
                if let Some(s) = cells.last_mut() {
                    s.push(c);
                }
            }
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smallest_input_is_cash() {
        let p: ProgramInput = serde_json::from_str(r#"{"cash": 2221250}"#).unwrap();
        assert_eq!(p.validate().unwrap().net_cash(), 2_221_250);
        let none: ProgramInput = serde_json::from_str("{}").unwrap();
        assert_eq!(none.validate().unwrap_err().code, "reconcile.program_cash_missing");
        assert!(serde_json::from_str::<ProgramInput>(r#"{"cash": 22212.5}"#).is_err(), "kopecks are integers");
        assert!(serde_json::from_str::<ProgramInput>(r#"{"cash": 1, "bogus": 2}"#).is_err());
    }

    #[test]
    fn operations_give_the_totals_and_must_agree_with_them() {
        let p: ProgramInput = serde_json::from_value(serde_json::json!({
            "operations": [
                {"reference": "v1", "kind": "sale", "cash": 150000},
                {"kind": "sale", "cash": 1000, "card": 2000},
                {"kind": "sale_return", "cash": 500},
                {"kind": "cash_in", "cash": 20000}
            ]
        }))
        .unwrap();
        let v = p.validate().unwrap();
        assert_eq!(v.cash, 150_500);
        assert_eq!(v.card, Some(2000));
        assert_eq!(v.returns, Some(500));
        assert_eq!(v.net_cash(), 170_500);
        let mut bad = p.clone();
        bad.cash = Some(Money(1));
        assert_eq!(bad.validate().unwrap_err().code, "reconcile.program_inconsistent");
        let mut neg = p;
        neg.operations.as_mut().unwrap()[0].cash = Money(-1);
        assert_eq!(neg.validate().unwrap_err().code, "reconcile.operation_invalid");
    }

    #[test]
    fn csv_in_roubles_with_either_separator() {
        let ops = operations_from_csv("reference;time;kind;cash;card\nv1;2026-11-26T10:00;sale;1 500,00;0\n;;возврат;300;\n").unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].cash, Money(150_000));
        assert_eq!(ops[1].kind, OperationKind::SaleReturn);
        let ops = operations_from_csv("kind,cash,card\nsale,\"12,50\",1.00\n").unwrap();
        assert_eq!((ops[0].cash, ops[0].card), (Money(1250), Money(100)));
        assert_eq!(operations_from_csv("kind;cash\nsell;1\n").unwrap_err().code, "reconcile.csv_invalid");
        assert_eq!(operations_from_csv("cash\n1\n").unwrap_err().code, "reconcile.csv_invalid");
        assert_eq!(operations_from_csv("kind;cash\nsale;1,234\n").unwrap_err().code, "reconcile.csv_invalid");
    }
}
