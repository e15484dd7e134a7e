//! The paper tape: documents rendered as a 32-column receipt printer would print them.
//!
//! Only the emulators print through this; a real register renders its own documents.
//! It exists so that `kkm-agent demo` shows the cashier's view of what happened.

use crate::fiscal::{EmuIdentity, OpenReceipt, Registers};
use kkm_core::{device::dt, FiscalDocument, Money, Operation, PaymentType};
use time::PrimitiveDateTime;

const WIDTH: usize = 32;

fn pair(left: &str, right: &str) -> String {
    let used = left.chars().count() + right.chars().count();
    let gap = WIDTH.saturating_sub(used).max(1);
    format!("{left}{}{right}", " ".repeat(gap))
}

fn center(text: &str) -> String {
    let n = text.chars().count();
    format!("{}{text}", " ".repeat(WIDTH.saturating_sub(n) / 2))
}

fn header(id: &EmuIdentity) -> Vec<String> {
    vec![center(&id.org_name), pair("ИНН", &id.inn), pair("ЗН ККТ", &id.reported_serial())]
}

fn footer(id: &EmuIdentity, doc: &FiscalDocument) -> Vec<String> {
    vec![
        pair("РН ККТ", &id.rnm),
        pair("ФН", &id.fn_serial),
        pair("ФД", &doc.number.to_string()),
        pair("ФП", &format!("{:010}", doc.fiscal_sign)),
        pair("", &dt::format(&doc.datetime).replace('T', " ")),
        "-".repeat(WIDTH),
    ]
}

pub fn receipt(id: &EmuIdentity, r: &OpenReceipt, doc: &FiscalDocument, change: Money) -> Vec<String> {
    let mut out = header(id);
    out.push(center("КАССОВЫЙ ЧЕК"));
    out.push(center(&r.operation.name_ru().to_uppercase()));
    for l in &r.lines {
        out.push(l.name.chars().take(WIDTH).collect());
        let unit = l.measure_unit.and_then(kkm_core::MeasureUnit::from_code).map_or(String::new(), |u| format!(" {}", u.label_ru()));
        out.push(pair(&format!("  {}{unit} x {}", l.quantity, l.price), &format!("={}", l.amount)));
        out.push(pair("  ", l.vat.label_ru()));
    }
    out.push(pair("ИТОГ", &format!("={}", r.total())));
    for (i, p) in PaymentType::ALL.iter().enumerate() {
        if r.payments[i].0 > 0 {
            out.push(pair(&format!("  {}", p.name_ru().to_uppercase()), &format!("={}", r.payments[i])));
        }
    }
    if change.0 > 0 {
        out.push(pair("  СДАЧА", &format!("={change}")));
    }
    if let Some(c) = &r.cashier {
        out.push(pair("Кассир", c));
    }
    if let Some(c) = &r.contact {
        out.push(pair("Покупатель", c));
    }
    out.extend(footer(id, doc));
    out
}

/// Adds "Кассир" before the footer (its last six lines) of a shift document.
pub fn with_cashier(mut lines: Vec<String>, cashier: Option<String>) -> Vec<String> {
    if let Some(c) = cashier {
        let at = lines.len().saturating_sub(6);
        lines.insert(at, pair("Кассир", &c));
    }
    lines
}

pub fn shift_open(id: &EmuIdentity, doc: &FiscalDocument) -> Vec<String> {
    let mut out = header(id);
    out.push(center("ОТЧЁТ ОБ ОТКРЫТИИ СМЕНЫ"));
    out.push(pair("Смена", &doc.shift_number.unwrap_or(0).to_string()));
    out.extend(footer(id, doc));
    out
}

/// An X-report (no document) or a Z-report (with its document).
pub fn shift_report(
    id: &EmuIdentity,
    regs: &Registers,
    shift: u32,
    z: Option<&FiscalDocument>,
    now: PrimitiveDateTime,
) -> Vec<String> {
    let mut out = header(id);
    out.push(center(if z.is_some() { "ОТЧЁТ О ЗАКРЫТИИ СМЕНЫ" } else { "X-ОТЧЁТ" }));
    out.push(pair("Смена", &shift.to_string()));
    out.push(pair("Чеков за смену", &regs.receipt_count.to_string()));
    for op in [Operation::Sale, Operation::SaleReturn, Operation::Purchase, Operation::PurchaseReturn] {
        for (i, p) in PaymentType::ALL.iter().enumerate() {
            let v = regs.by_operation[usize::from(op.code() - 1)][i];
            if v.0 != 0 {
                out.push(pair(&format!("{} {}", op.name_ru(), p.name_ru()), &v.to_string()));
            }
        }
    }
    out.push(pair("Внесений", &regs.cash_ins.to_string()));
    out.push(pair("Выплат", &regs.cash_outs.to_string()));
    out.push(pair("Наличных в кассе", &regs.cash_in_drawer.to_string()));
    match z {
        Some(doc) => out.extend(footer(id, doc)),
        None => {
            out.push(pair("", &dt::format(&now).replace('T', " ")));
            out.push("-".repeat(WIDTH));
        }
    }
    out
}

pub fn cash_move(id: &EmuIdentity, sum: Money, inward: bool, now: PrimitiveDateTime) -> Vec<String> {
    let mut out = header(id);
    out.push(center(if inward { "ВНЕСЕНИЕ" } else { "ВЫПЛАТА" }));
    out.push(pair("Сумма", &sum.to_string()));
    out.push(pair("", &dt::format(&now).replace('T', " ")));
    out.push("-".repeat(WIDTH));
    out
}
