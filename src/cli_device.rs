//! `kkm-agent device …`: one register, directly, for engineers and first tries.
//!
//! Output is for people by default (Russian labels, sums in roubles) and JSON with
//! `--json`. Everything goes through the same `FiscalDriver` the daemon uses.

use crate::cli::{parse_protocol, parse_sum, read_receipt, CliError, DeviceAction, DeviceArgs};
use crate::diagnostics::{self, detect, health};
use kkm_core::port::PortSpec;
use kkm_core::{DriverBox, FiscalResult};
use serde::Serialize;
use std::time::Duration;

fn print_json<T: Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("cannot render JSON: {e}"),
    }
}

fn fiscal_line(what: &str, r: &FiscalResult) -> String {
    format!(
        "{what}: ФД № {}, ФП {:010}, {}",
        r.document_number,
        r.fiscal_sign,
        kkm_core::device::dt::format(&r.datetime).replace('T', " ")
    )
}

pub async fn run(a: DeviceArgs) -> Result<(), CliError> {
    let spec = PortSpec::parse(&a.port).map_err(|e| {
        CliError::new("cli.port_invalid", format!("Неверное имя порта: {e}"), format!("Bad port: {e}"),
            "Укажите COM3, /dev/ttyACM0, tcp:HOST:PORT или http://HOST:8088.")
    })?;
    let access = crate::devices::Access {
        operator_password: a.operator_password,
        admin_password: a.admin_password,
        cashier: a.cashier,
        cashier_password: a.password.clone(),
    };
    if let DeviceAction::Detect = a.action {
        let creds = access.umka_credentials();
        let d = detect::detect_with(&spec, Duration::from_secs(30), Some(&creds)).await?;
        if a.json {
            print_json(&d);
        } else {
            println!("Протокол: {} ({})", d.protocol, d.link);
            println!("Скорость: {}", d.baud.map_or("TCP".to_string(), |b| b.to_string()));
            println!("Модель:   {} (id {})", d.model_name, d.model_id);
            println!("ККТ:      {}", d.unit);
            match d.profile {
                Some(p) => println!("Профиль:  --model {p}"),
                None => println!("Профиль:  нет профиля для этой модели; попробуйте --protocol {}", d.protocol),
            }
        }
        return Ok(());
    }
    // The running agent holds the port: ask it rather than time out on a busy port.
    if let DeviceAction::Check { serial, .. } = &a.action {
        if let Some(done) = crate::cli_via_daemon::check(&spec, a.config.as_deref(), serial.as_deref(), a.json).await? {
            return Ok(done);
        }
    }
    let protocol = parse_protocol(a.protocol.as_deref())?;
    let mut driver = crate::devices::open_driver_with(&a.model, protocol, &spec, a.baud, &access)?;
    let result = act(&mut driver, &a).await;
    driver.disconnect().await;
    result
}

async fn act(driver: &mut DriverBox, a: &DeviceArgs) -> Result<(), CliError> {
    let json = a.json;
    match &a.action {
        DeviceAction::Detect => unreachable_detect(),
        DeviceAction::Status => {
            let s = driver.status().await?;
            if json {
                print_json(&s);
            } else {
                // The protocol's raw mode numbers are in `--json`, not in Russian text.
                println!("Смена:       №{}, {}", s.shift_number, s.shift.name_ru());
                println!("Чек открыт:  {}", if s.receipt_open { "да" } else { "нет" });
                println!("Бумага:      {}", if s.paper_present { "есть" } else { "НЕТ" });
                if s.cover_open {
                    println!("Крышка:      ОТКРЫТА");
                }
                if s.awaiting_continue {
                    println!("Печать:      прервана, ждёт продолжения");
                }
                println!("Часы ККТ:    {}", kkm_core::device::dt::format(&s.clock).replace('T', " "));
            }
        }
        DeviceAction::Info => {
            let id = driver.identity().await?;
            let fs = driver.fn_status().await?;
            if json {
                print_json(&serde_json::json!({"identity": id, "fn": fs}));
            } else {
                println!("Модель:   {} (код модели {}), прошивка {}", id.model_name, id.model_id, id.firmware);
                println!("ЗН:       {}", id.serial);
                println!("РНМ:      {}", id.rnm);
                println!("ИНН:      {}", id.inn);
                println!("ФН:       {}", id.fn_serial);
                println!("ФФД:      {}", diagnostics::report::ffd_ru(&id));
                println!("СНО:      {}", diagnostics::report::tax_systems_ru(&id));
                println!("Последний ФД: {}", fs.last_document_number);
            }
        }
        DeviceAction::Check { serial, timezone } => {
            let zone = match timezone.as_deref().map(health::DeviceZone::parse).transpose() {
                Ok(z) => z.unwrap_or_default(),
                Err(e) => {
                    return Err(CliError::new("cli.timezone_invalid", format!("Неверный --timezone: {e}"), format!("Bad --timezone: {e}"),
                        "Укажите пояс ККТ, например --timezone +05:00, UTC+5, МСК+2 или Asia/Yekaterinburg."))
                }
            };
            let mut facts = health::read_facts(driver.as_mut(), serial.clone()).await;
            facts.timezone = zone;
            let findings = health::evaluate(&facts, diagnostics::pc_now());
            let report = health::HealthReport { facts, findings };
            if json {
                print_json(&report);
            } else {
                for f in &report.findings {
                    println!("[{}] {}", f.severity.mark(), f.title_ru);
                    if !f.action_ru.is_empty() {
                        println!("           → {}", f.action_ru);
                    }
                }
            }
            match report.exit_code() {
                health::EXIT_OK => {}
                code => return Err(CliError::exit_only(code)),
            }
        }
        DeviceAction::OpenShift { cashier, cashier_inn } => {
            let c = cashier_arg(cashier, cashier_inn)?;
            let r = driver.open_shift(c.as_ref()).await?;
            out(json, &r, fiscal_line("Смена открыта", &r));
        }
        DeviceAction::ZReport { cashier, cashier_inn } => {
            let c = cashier_arg(cashier, cashier_inn)?;
            let r = driver.close_shift(c.as_ref()).await?;
            out(json, &r, fiscal_line("Смена закрыта (Z-отчёт)", &r));
        }
        DeviceAction::XReport => {
            driver.x_report().await?;
            out(json, &serde_json::json!({"ok": true}), "X-отчёт напечатан".into());
        }
        DeviceAction::CashIn { sum } => {
            let m = parse_sum(sum)?;
            driver.cash_in(m).await?;
            out(json, &serde_json::json!({"ok": true, "sum": m}), format!("Внесено {m} ₽"));
        }
        DeviceAction::CashOut { sum } => {
            let m = parse_sum(sum)?;
            driver.cash_out(m).await?;
            out(json, &serde_json::json!({"ok": true, "sum": m}), format!("Выплачено {m} ₽"));
        }
        DeviceAction::Receipt { file } => {
            let receipt = read_receipt(file)?;
            let totals = receipt.validate(&driver.profile().limits).map_err(kkm_core::DriverError::from)?;
            ensure_shift_open(driver, receipt.cashier.as_ref()).await?;
            let r = driver.fiscalize(&receipt).await?;
            if json {
                print_json(&serde_json::json!({"result": r, "total": totals.total, "change": totals.change}));
            } else {
                println!("Чек напечатан: {} на сумму {} ₽", receipt.operation.name_ru(), totals.total);
                if totals.change.0 > 0 {
                    println!("Сдача: {} ₽", totals.change);
                }
                println!("{}", fiscal_line("Фискальный документ", &r));
            }
        }
        DeviceAction::Cancel => {
            driver.cancel_receipt().await?;
            out(json, &serde_json::json!({"ok": true}), "Открытый чек отменён (или его не было)".into());
        }
        DeviceAction::Totals { x_report } => {
            use crate::reconcile::source::{shift_documents, DeviceReader};
            let mut read = driver.shift(*x_report).await?;
            // The open time is the shift-open document's: read back from the ФН.
            let docs = shift_documents(driver, None, &read.fn_serial, read.last_document).await.map_err(|e| match e {
                crate::reconcile::source::SourceError::Driver(d) => CliError::from(d),
                e => CliError::new("agent.internal", e.to_string(), e.to_string(), ""),
            })?;
            read.totals.opened_at = docs.opened_at();
            crate::reconcile::source::fill_missing_sums(&mut read.totals, &docs);
            let v = crate::api::routes::totals_view(&a.port, &read);
            if json {
                print_json(&v);
            } else {
                print!("{}", totals_text(&v));
                if let Some(Err(e)) = &read.x_report {
                    println!("X-отчёт НЕ напечатан: {} — {}", e.title_ru, e.action_ru);
                } else if read.x_report.is_some() {
                    println!("X-отчёт напечатан.");
                }
            }
        }
        DeviceAction::Document { number } => {
            let d = driver.find_document(*number).await?;
            if json {
                print_json(&d);
            } else {
                println!("ФД № {}: {}, ФП {:010}, {}", d.number, d.kind.name_ru(), d.fiscal_sign,
                    kkm_core::device::dt::format(&d.datetime).replace('T', " "));
                if let (Some(op), Some(t)) = (d.operation, d.total) {
                    println!("  {} на сумму {} ₽", op.name_ru(), t);
                }
            }
        }
    }
    Ok(())
}

fn unreachable_detect() {}

fn out<T: Serialize>(json: bool, v: &T, text: String) {
    if json {
        print_json(v);
    } else {
        println!("{text}");
    }
}

/// A cashier from `--cashier` / `--cashier-inn`, checked like a receipt's cashier.
fn cashier_arg(name: &Option<String>, inn: &Option<String>) -> Result<Option<kkm_core::Cashier>, CliError> {
    let Some(name) = name else { return Ok(None) };
    let c = kkm_core::Cashier { name: name.clone(), inn: inn.clone() };
    if let Err(u) = kkm_core::text::printable(&c.name, kkm_core::text::Charset::Cp866) {
        return Err(kkm_core::DriverError::Invalid(u.to_validation("receipt.cashier_unprintable", "Имя кассира", "Cashier name")).into());
    }
    if c.inn.as_deref().is_some_and(|i| !kkm_core::checks::inn_is_valid(i)) {
        return Err(CliError::new("receipt.cashier_inn_invalid", "ИНН кассира неверен (не сходятся контрольные цифры)",
            "The cashier's INN is invalid (check digits do not match)", "Проверьте ИНН кассира."));
    }
    Ok(Some(c))
}

/// Opens the shift if it is closed, as the daemon does with `auto_open_shift`.
/// The receipt's cashier, if any, goes on the shift document too.
pub async fn ensure_shift_open(driver: &mut DriverBox, cashier: Option<&kkm_core::Cashier>) -> Result<(), CliError> {
    let s = driver.status().await?;
    if s.shift == kkm_core::ShiftState::Closed {
        let r = driver.open_shift(cashier).await?;
        eprintln!("{}", fiscal_line("Смена была закрыта и открыта автоматически", &r));
    }
    if s.receipt_open {
        driver.cancel_receipt().await?;
        eprintln!("В ККТ был открыт незавершённый чек; он отменён.");
    }
    Ok(())
}


/// The shift's counters in Russian, as an X-report lays them out.
pub fn totals_text(v: &crate::api::routes::ShiftTotalsView) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let state = match v.shift_state.as_str() {
        "open" => "открыта",
        "closed" => "закрыта",
        "expired" => "открыта больше 24 часов",
        _ => "состояние неизвестно",
    };
    let _ = writeln!(s, "Смена №{} ({state}), открыта: {}", v.shift_number,
        v.opened_at.as_deref().map_or("неизвестно".to_string(), |t| t.replace('T', " ")));
    let _ = writeln!(s, "{:<18} {:>14} {:>14} {:>12} {:>12} {:>12} {:>6}", "", "наличными", "безналичными", "аванс", "кредит", "иное", "чеков");
    for (name, p) in [("Приход", &v.sale), ("Возврат прихода", &v.sale_return), ("Расход", &v.purchase), ("Возврат расхода", &v.purchase_return)] {
        let _ = writeln!(s, "{name:<18} {:>14} {:>14} {:>12} {:>12} {:>12} {:>6}", p.cash.to_string(), p.card.to_string(),
            p.advance.to_string(), p.credit.to_string(), p.other.to_string(), p.receipts);
    }
    let _ = writeln!(s, "Внесения: {} ₽, выплаты: {} ₽", v.cash_in, v.cash_out);
    let _ = writeln!(s, "Наличных в кассе: {} ₽", v.cash_in_drawer);
    let _ = writeln!(s, "Чеков за смену: {}; ФН {}, последний ФД №{}", v.receipt_count, v.fn_serial, v.last_document);
    s
}
