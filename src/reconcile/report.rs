//! The reconciliation for people (Russian text) and for the accountant (CSV).

use super::{Cause, Reconciliation};
use kkm_core::Money;
use std::fmt::Write;

fn signed(m: Money) -> String {
    if m.0 > 0 {
        format!("+{m}")
    } else {
        m.to_string()
    }
}

fn docs_line(c: &Cause) -> String {
    c.documents
        .iter()
        .map(|d| format!("ФД №{} ({}, ФП {:010})", d.number, d.time.replace('T', " "), d.fiscal_sign))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The report a cashier or a support engineer reads.
pub fn human(r: &Reconciliation) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Сверка смены №{} на ККТ {} (ФН {})", r.shift_number, r.device, r.fn_serial);
    if let Some(at) = &r.shift_opened_at {
        let _ = writeln!(s, "Смена открыта: {}", at.replace('T', " "));
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "                       Касса          Программа");
    let row = |s: &mut String, name: &str, a: Money, b: Option<Money>| {
        let _ = writeln!(s, "{name:<20} {:>14} {:>18}", a.to_string(), b.map_or("—".to_string(), |b| b.to_string()));
    };
    row(&mut s, "Наличные за смену", r.register.cash, Some(r.program.cash));
    row(&mut s, "  по чекам", r.register.receipts_cash, Some(r.program.receipts_cash));
    row(&mut s, "  внесения", r.register.cash_in, Some(r.program.cash_in));
    row(&mut s, "  выплаты", r.register.cash_out, Some(r.program.cash_out));
    row(&mut s, "Безналичные", r.register.card.unwrap_or_default(), r.program.card);
    row(&mut s, "Возвраты", r.register.returns.unwrap_or_default(), r.program.returns);
    let _ = writeln!(s);
    let _ = writeln!(s, "{}", r.summary_ru);
    if !r.causes.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "Причины:");
        for (i, c) in r.causes.iter().enumerate() {
            let _ = writeln!(
                s,
                "{}. {} {} ₽ — {}{}",
                i + 1,
                c.category.title_ru(),
                signed(c.effect),
                c.text_ru,
                if c.certain { "" } else { " [вероятно]" }
            );
            if !c.documents.is_empty() {
                let _ = writeln!(s, "   Документы: {}", docs_line(c));
            }
            if !c.action_ru.is_empty() {
                let _ = writeln!(s, "   Что делать: {}", c.action_ru);
            }
        }
    }
    if !r.notes.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "Замечено (на разницу не влияет):");
        for c in &r.notes {
            let _ = writeln!(s, "- {}", c.text_ru);
        }
    }
    let _ = writeln!(
        s,
        "\nДокументов смены в ФН: {} (чеков {}), прочитано с ККТ сейчас: {}, из кэша: {}.",
        r.documents.in_shift, r.documents.receipts, r.documents.read_from_device, r.documents.from_cache
    );
    s
}

fn csv_cell(text: &str) -> String {
    if text.contains([';', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// CSV for the accountant: `;`-separated (as Russian Excel expects), sums in roubles
/// with a comma, one line per cause, the totals first. UTF-8 with a BOM.
pub fn csv(r: &Reconciliation) -> String {
    let mut s = String::from("\u{feff}");
    s.push_str("строка;категория;код;влияние_руб;сумма_руб;точно;документы;ключи;задания;описание;что_делать\n");
    let money = |m: Money| m.to_string().replace(' ', "");
    let mut line = |kind: &str, cat: &str, code: &str, effect: Money, amount: Money, certain: &str, docs: String, keys: String, jobs: String, text: &str, action: &str| {
        let cells = [
            kind.to_string(),
            cat.to_string(),
            code.to_string(),
            money(effect),
            money(amount),
            certain.to_string(),
            docs,
            keys,
            jobs,
            text.to_string(),
            action.to_string(),
        ];
        s.push_str(&cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(";"));
        s.push('\n');
    };
    let none = String::new;
    line("итог", "Наличные по кассе", "register_cash", r.register.cash, r.register.cash, "да", none(), none(), none(), "", "");
    line("итог", "Наличные по программе", "program_cash", r.program.cash, r.program.cash, "да", none(), none(), none(), "", "");
    line("итог", "Разница", "difference", r.difference, r.difference, "да", none(), none(), none(), &r.summary_ru, "");
    for (kind, list) in [("причина", &r.causes), ("замечание", &r.notes)] {
        for c in list {
            line(
                kind,
                c.category.title_ru(),
                c.category.code(),
                c.effect,
                c.amount,
                if c.certain { "да" } else { "вероятно" },
                c.documents.iter().map(|d| format!("ФД {} ФП {:010} {}", d.number, d.fiscal_sign, d.time)).collect::<Vec<_>>().join(", "),
                c.references.join(", "),
                c.jobs.iter().map(|j| j.to_string()).collect::<Vec<_>>().join(", "),
                &c.text_ru,
                &c.action_ru,
            );
        }
    }
    s
}
