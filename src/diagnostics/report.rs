//! What `kkm-agent diag` found, as one value: printed for a person, as JSON for a
//! machine, and written into the support file.

use super::agent::AgentState;
use super::health::{Finding, Severity};
use super::scan::PortScan;
use serde::Serialize;
use std::fmt::Write;

#[derive(Debug, Clone, Serialize)]
pub struct DiagReport {
    pub version: &'static str,
    /// The PC's local time when the report was made.
    pub pc_time: String,
    pub os: &'static str,
    pub ports: Vec<PortScan>,
    pub agent: AgentState,
    /// Conclusions about the whole PC (e.g. no register anywhere).
    pub summary: Vec<Finding>,
    /// The worst finding: `ok`, `info`, `warning` or the error level.
    pub worst: Severity,
}

impl DiagReport {
    pub fn new(ports: Vec<PortScan>, agent: AgentState, mut summary_first: Vec<Finding>) -> DiagReport {
        let mut r = DiagReport {
            version: env!("CARGO_PKG_VERSION"),
            pc_time: super::pc_now()
                .replace_nanosecond(0)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_default()
                .replace('T', " "),
            os: std::env::consts::OS,
            ports,
            agent,
            summary: Vec::new(),
            worst: Severity::Ok,
        };
        summary_first.extend(summary(&r));
        r.summary = summary_first;
        r.worst = r.all_findings().map(|f| f.severity).max().unwrap_or(Severity::Ok);
        r
    }

    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        self.summary.iter().chain(self.ports.iter().flat_map(PortScan::all_findings)).chain(self.agent.findings.iter())
    }

    /// Findings at the error level (they make the command exit non-zero).
    pub fn errors(&self) -> usize {
        self.all_findings().filter(|f| f.severity == Severity::Critical).count()
    }
}

fn summary(r: &DiagReport) -> Vec<Finding> {
    let found = r.ports.iter().filter(|p| p.state == "found").count();
    let held = r.ports.iter().filter(|p| p.state == "held_by_agent").count();
    if found + held > 0 || r.agent.devices.iter().any(|d| d.online) {
        return Vec::new();
    }
    vec![Finding::new(
        "diag.no_register",
        Severity::Critical,
        format!("ККТ не найдена: проверено мест — {}, нигде не ответила", r.ports.len()),
        "No register answered anywhere".to_string(),
        "Проверьте, что ККТ включена и кабель USB или COM подключён к этому компьютеру (порт должен появиться \
                    в списке выше). Если ККТ подключена по сети, укажите её адрес: kkm-agent diag --port tcp:АДРЕС:ПОРТ.",
    )]
}

fn line(out: &mut String, f: &Finding) {
    let _ = writeln!(out, "  [{}] {}", f.severity.mark(), f.title_ru);
    if !f.action_ru.is_empty() {
        let _ = writeln!(out, "         → {}", f.action_ru);
    }
}

/// The report for a person, in Russian.
pub fn text(r: &DiagReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Диагностика kkm-agent {} — {} ({})", r.version, r.pc_time, r.os);
    let _ = writeln!(out);
    let _ = writeln!(out, "Порты:");
    if r.ports.is_empty() {
        let _ = writeln!(out, "  (нет ни одного)");
    }
    for p in &r.ports {
        let usb = p.usb.as_ref().map_or(String::new(), |u| {
            let names: Vec<&str> = [u.manufacturer.as_deref(), u.product.as_deref()].into_iter().flatten().collect();
            format!(" — USB {} {}", u.vid_pid, names.join(" ")).trim_end().to_string()
        });
        let id = p.device_id.as_ref().map_or(String::new(), |i| format!(" (касса «{i}» из настроек)"));
        let _ = writeln!(out, "{}{usb}{id}: {}", p.port, state_ru(p.state));
        for f in &p.findings {
            line(&mut out, f);
        }
        if let Some(h) = &p.health {
            if let Some(id) = &h.facts.identity {
                let _ = writeln!(out, "    Модель:    {} (код {}), прошивка {}", id.model_name, id.model_id, id.firmware);
                let _ = writeln!(out, "    ЗН:        {}", id.serial);
                let _ = writeln!(out, "    ИНН:       {}", id.inn);
                let _ = writeln!(out, "    РНМ:       {}", id.rnm);
                let _ = writeln!(out, "    ФН:        {}", id.fn_serial);
                let _ = writeln!(out, "    ФФД:       {}", ffd_ru(id));
                let _ = writeln!(out, "    СНО:       {}", tax_systems_ru(id));
            }
            for f in &h.findings {
                line(&mut out, f);
            }
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Агент ({}):", r.agent.url);
    for f in &r.agent.findings {
        line(&mut out, f);
    }
    if !r.summary.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Итог:");
        for f in &r.summary {
            line(&mut out, f);
        }
    }
    let _ = writeln!(out);
    let errors = r.errors();
    let _ = writeln!(out, "{}", if errors == 0 { "Ошибок нет.".to_string() } else { format!("Ошибок: {errors}.") });
    out
}

/// The registration's ФФД version, «неизвестно» when the driver cannot read it.
pub fn ffd_ru(id: &kkm_core::DeviceIdentity) -> String {
    id.ffd_version.map_or_else(|| "неизвестно".to_string(), |v| v.to_string())
}

/// The registered tax systems, «неизвестно» when the driver cannot read them.
pub fn tax_systems_ru(id: &kkm_core::DeviceIdentity) -> String {
    id.tax_systems.map_or_else(|| "неизвестно".to_string(), |t| t.names_ru())
}

fn state_ru(state: &str) -> &'static str {
    match state {
        "found" => "найдена ККТ",
        "no_answer" => "нет ответа",
        "busy" => "занят другой программой",
        "held_by_agent" => "занят агентом",
        _ => "ошибка",
    }
}
