//! `kkm-agent reconcile`: asks the running daemon (which owns the register) to reconcile
//! the program's figures with the shift, and prints the Russian report, JSON or CSV.

use crate::cli::CliError;
use crate::reconcile::input::{operations_from_csv, ProgramInput, ProgramOperation};
use kkm_core::Money;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ReconcileArgs {
    /// Device id from the config (may be omitted with one device).
    #[arg(long)]
    pub device: Option<String>,
    /// The program's net cash for the shift, roubles (`22212,50`), without cash-ins/outs.
    #[arg(long, allow_hyphen_values = true)]
    pub program_cash: Option<String>,
    /// The program's non-cash (card) total, roubles.
    #[arg(long, allow_hyphen_values = true)]
    pub program_card: Option<String>,
    /// The program's sale returns, roubles.
    #[arg(long)]
    pub program_returns: Option<String>,
    /// The program's cash-ins, roubles.
    #[arg(long)]
    pub program_cash_in: Option<String>,
    /// The program's cash-outs, roubles.
    #[arg(long)]
    pub program_cash_out: Option<String>,
    /// The program's operations: a JSON file (a list of operations, money in kopecks) or
    /// a CSV file (`reference;time;kind;cash;card;…`, money in roubles).
    #[arg(long)]
    pub operations: Option<PathBuf>,
    /// Print the JSON answer instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Also write the CSV for the accountant to this file (`-` for stdout, instead of the report).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// The daemon's config (for its address and token).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The daemon's URL, e.g. `http://127.0.0.1:8765` (default: from the config).
    #[arg(long, env = "KKM_AGENT_URL")]
    pub url: Option<String>,
}

fn bad(code: &str, ru: String, en: String) -> CliError {
    CliError::new(code, ru, en, "Укажите сумму в рублях, например 22212,50.")
}

/// A sum in roubles; `-` allowed for net figures.
fn roubles(text: &str, what: &str, signed: bool) -> Result<Money, CliError> {
    let (neg, t) = match text.trim().strip_prefix('-') {
        Some(rest) if signed => (true, rest),
        _ => (false, text),
    };
    let m = Money::parse_roubles(t).map_err(|e| bad("cli.sum_invalid", format!("--{what}: неверная сумма: {e}"), format!("--{what}: bad sum: {e}")))?;
    Ok(if neg { Money(-m.0) } else { m })
}

fn read_operations(path: &std::path::Path) -> Result<Vec<ProgramOperation>, CliError> {
    let text = std::fs::read(path).map_err(|e| {
        CliError::new("cli.file_unreadable", format!("Не удалось прочитать {}: {e}", path.display()), format!("Cannot read {}: {e}", path.display()), "")
    })?;
    if text.len() > 64 << 20 {
        return Err(CliError::new("cli.file_too_large", "Файл операций больше 64 МБ", "The operations file is over 64 MiB", ""));
    }
    let text = String::from_utf8_lossy(&text);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Ops {
            List(Vec<ProgramOperation>),
            Wrapped { operations: Vec<ProgramOperation> },
        }
        let ops: Ops = serde_json::from_str(trimmed).map_err(|e| {
            CliError::new("reconcile.json_invalid", format!("Неверный JSON операций: {e}"), format!("Invalid operations JSON: {e}"),
                "Нужен список [{\"reference\": \"…\", \"kind\": \"sale\", \"cash\": 150000}], суммы в копейках.")
        })?;
        Ok(match ops {
            Ops::List(l) | Ops::Wrapped { operations: l } => l,
        })
    } else {
        operations_from_csv(trimmed).map_err(|e| CliError::new(e.code, e.ru, e.en, "Первая строка — заголовок: reference;time;kind;cash;card"))
    }
}

/// The request body for the daemon.
pub fn program_input(a: &ReconcileArgs) -> Result<ProgramInput, CliError> {
    let opt = |v: &Option<String>, what: &str, signed: bool| v.as_deref().map(|t| roubles(t, what, signed)).transpose();
    let p = ProgramInput {
        cash: opt(&a.program_cash, "program-cash", true)?,
        card: opt(&a.program_card, "program-card", true)?,
        returns: opt(&a.program_returns, "program-returns", false)?,
        cash_in: opt(&a.program_cash_in, "program-cash-in", false)?,
        cash_out: opt(&a.program_cash_out, "program-cash-out", false)?,
        operations: a.operations.as_deref().map(read_operations).transpose()?,
    };
    // The daemon checks it too; checking here names the mistake before any I/O.
    p.validate().map_err(|e| CliError::new(e.code, e.ru, e.en, "Проверьте суммы программы."))?;
    Ok(p)
}

fn body_json(a: &ReconcileArgs, p: &ProgramInput) -> serde_json::Value {
    let m = |v: Option<Money>| v.map(|m| serde_json::json!(m.0));
    let mut program = serde_json::Map::new();
    for (k, v) in [("cash", m(p.cash)), ("card", m(p.card)), ("returns", m(p.returns)), ("cash_in", m(p.cash_in)), ("cash_out", m(p.cash_out))] {
        if let Some(v) = v {
            program.insert(k.into(), v);
        }
    }
    if let Some(ops) = &p.operations {
        let list: Vec<serde_json::Value> = ops
            .iter()
            .map(|o| {
                serde_json::json!({"reference": o.reference, "time": o.time, "kind": o.kind, "cash": o.cash.0, "card": o.card.0,
                    "advance": o.advance.0, "credit": o.credit.0, "other": o.other.0})
            })
            .collect();
        program.insert("operations".into(), serde_json::Value::Array(list));
    }
    serde_json::json!({"device": a.device, "program": program})
}

pub async fn run(a: ReconcileArgs) -> Result<(), CliError> {
    let program = program_input(&a)?;
    let config_path = a.config.clone().unwrap_or_else(crate::config::Config::default_path);
    let config = crate::config::Config::load(&config_path).map_err(|e| {
        CliError::new(e.code, e.ru, e.en, format!("Укажите настройки агента: --config (путь: {})", config_path.display()))
    })?;
    let token = crate::api::security::load_or_create_token(&config.data_dir()).map_err(|e| {
        CliError::new("daemon.token", format!("Не удалось прочитать токен: {e}"), format!("Cannot read the token: {e}"), "")
    })?;
    let url = a.url.clone().unwrap_or_else(|| format!("http://{}", config.listen));
    let body = body_json(&a, &program).to_string();
    let format = if a.json { "json" } else { "text" };
    let (status, text) = post(&url, &format!("/api/v1/reconciliations?format={format}"), &token, &body).await?;
    if status >= 400 {
        return Err(problem_error(status, &text));
    }
    let to_stdout_csv = a.csv.as_deref() == Some(std::path::Path::new("-"));
    if !to_stdout_csv {
        println!("{text}");
    }
    if let Some(path) = &a.csv {
        let (status, csv) = post(&url, "/api/v1/reconciliations?format=csv", &token, &body).await?;
        if status >= 400 {
            return Err(problem_error(status, &csv));
        }
        if to_stdout_csv {
            print!("{csv}");
        } else {
            std::fs::write(path, csv).map_err(|e| {
                CliError::new("cli.file_unwritable", format!("Не удалось записать {}: {e}", path.display()), format!("Cannot write {}: {e}", path.display()), "")
            })?;
            eprintln!("CSV: {}", path.display());
        }
    }
    Ok(())
}

fn problem_error(status: u16, text: &str) -> CliError {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    if s("code").is_empty() {
        return CliError::new("daemon.http", format!("Агент ответил {status}"), format!("The agent answered {status}"), text.chars().take(300).collect::<String>());
    }
    CliError::new(&s("code"), s("title_ru"), s("title_en"), s("detail"))
}

fn unreachable(url: &str, e: impl std::fmt::Display) -> CliError {
    CliError::new(
        "daemon.unreachable",
        format!("Агент не отвечает по адресу {url}: {e}"),
        format!("The agent does not answer at {url}: {e}"),
        "Запустите агента (kkm-agent serve) или укажите его адрес: --url http://127.0.0.1:8765",
    )
}

/// A POST to the local daemon (a reconciliation may read a whole shift: up to 240 s).
async fn post(url: &str, path: &str, token: &str, body: &str) -> Result<(u16, String), CliError> {
    let hostport = url.trim_end_matches('/').strip_prefix("http://").ok_or_else(|| {
        CliError::new("cli.url_invalid", "Адрес агента должен начинаться с http://", "The agent URL must start with http://", "")
    })?;
    let (status, payload) = crate::agent_client::exchange(hostport, "POST", path, token, Some(body), std::time::Duration::from_secs(240), 64 << 20)
        .await
        .map_err(|e| unreachable(url, e))?;
    Ok((status, String::from_utf8_lossy(&payload).into_owned()))
}
