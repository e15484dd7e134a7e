//! `kkm-agent diag`: the command a field engineer runs first.
//!
//! It needs no arguments: it lists the PC's serial ports (with their USB identity),
//! names programs that hold one, looks for a register on every free port at every usual
//! speed, on the USB-RNDIS address and at the config's devices, reads each register's
//! health, and asks the running agent about its queues. Every finding comes with what to
//! do. `--json` prints the same for machines; `--report FILE` writes it with the last
//! hour of the agent's log for support, without the token or customers' contacts.
//!
//! Exit status: 0 when no finding is an error (warnings allowed), 1 when at least one
//! is (or the command could not run), 2 for a bad command line.

use crate::cli::CliError;
use crate::diagnostics::ports::{self, PortInfo};
use crate::diagnostics::scan::{self, Origin, Target};
use crate::diagnostics::{agent, health, report, support_file};
use kkm_core::port::PortSpec;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
#[command(after_help = "Коды выхода / exit status: 0 — ошибок нет (предупреждения возможны); \
1 — найдена хотя бы одна ошибка, или проверка не выполнена; 2 — неверные параметры.\n\
0 — no error findings (warnings allowed); 1 — at least one error finding, or diag could not run; 2 — bad arguments.")]
pub struct DiagArgs {
    /// The agent's config (listen address, token location, devices to try).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Look only at these ports (repeatable), instead of every serial port of this PC and
    /// the USB-RNDIS address: `COM3`, `/dev/ttyUSB0`, `tcp:HOST:PORT`, `http://HOST:8088`.
    #[arg(long = "port")]
    pub ports: Vec<String>,
    /// Do not look for registers on this PC's ports or the USB-RNDIS address: only the
    /// config's devices and `--port`s.
    #[arg(long)]
    pub no_scan: bool,
    /// The factory number (ЗН) from the sticker on the case, to check against the РНМ.
    #[arg(long)]
    pub serial: Option<String>,
    /// The register's time zone for the clock check, e.g. `+05:00`, `МСК+2` or
    /// `Asia/Yekaterinburg` (default Moscow; a config device's own `timezone` wins).
    #[arg(long)]
    pub timezone: Option<String>,
    /// How long detection may take on one port, in seconds.
    #[arg(long, default_value_t = scan::PORT_BUDGET.as_secs())]
    pub port_budget: u64,
    /// The running agent's URL, e.g. `http://127.0.0.1:8765` (default: from the config).
    #[arg(long, env = "KKM_AGENT_URL")]
    pub url: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Write the report and the last hour of the agent's log to this file, for support.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

pub async fn run(a: DiagArgs) -> Result<(), CliError> {
    let (config, config_findings) = load_config(a.config.clone());
    let zone = match a.timezone.as_deref().map(health::DeviceZone::parse).transpose() {
        Ok(z) => z.unwrap_or_default(),
        Err(e) => {
            return Err(CliError::new("cli.timezone_invalid", format!("Неверный --timezone: {e}"), format!("Bad --timezone: {e}"),
                "Укажите пояс ККТ, например --timezone +05:00, UTC+5, МСК+2 или Asia/Yekaterinburg."))
        }
    };
    let data_dir = config.as_ref().map_or_else(crate::cli::default_data_dir, |c| c.data_dir());
    let token = crate::api::security::read_token(&data_dir).ok();
    let listen = match &a.url {
        Some(u) => u.trim_end_matches('/').trim_start_matches("http://").to_string(),
        None => config.as_ref().map_or_else(|| "127.0.0.1:8765".to_string(), |c| {
            // An agent listening on every address (0.0.0.0) is reached on loopback.
            let mut addr = c.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(if addr.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
            }
            addr.to_string()
        }),
    };
    let agent = agent::read(&listen, token.as_deref()).await;

    let targets = targets(&a, config.as_ref(), &agent, zone);
    let bar = progress(targets.len(), a.json);
    let scans = scan::scan_all(targets, Duration::from_secs(a.port_budget.max(1)), |s| {
        bar.set_message(s.port.clone());
        bar.inc(1);
    })
    .await;
    bar.finish_and_clear();

    let r = report::DiagReport::new(scans, agent, config_findings);
    let json = serde_json::to_string_pretty(&r).unwrap_or_else(|e| format!("{{\"error\": \"cannot render JSON: {e}\"}}"));
    if a.json {
        println!("{json}");
    } else {
        print!("{}", report::text(&r));
    }
    if let Some(path) = &a.report {
        let secrets: Vec<&str> = token.as_deref().into_iter().collect();
        let file = support_file::compose(&report::text(&r), &json, &data_dir.join("logs"), &secrets);
        std::fs::write(path, file).map_err(|e| {
            CliError::new("cli.file_unwritable", format!("Не удалось записать отчёт {}: {e}", path.display()),
                format!("Cannot write the report {}: {e}", path.display()), "Укажите другой путь, например на рабочем столе.")
        })?;
        eprintln!("Отчёт для поддержки: {}", path.display());
    }
    match r.errors() {
        0 => Ok(()),
        n => Err(CliError::new("diag.errors_found", format!("Найдено ошибок: {n}; что делать — написано у каждой"),
            format!("{n} error finding(s)"), "")),
    }
}

/// The agent's config, if there is one. A config the daemon would refuse is a finding,
/// not a reason to stop: what can be read of it (address, data dir, devices) is used.
fn load_config(path: Option<PathBuf>) -> (Option<crate::config::Config>, Vec<health::Finding>) {
    let explicit = path.is_some();
    let path = path.unwrap_or_else(crate::config::Config::default_path);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        // No config at the default place is normal on a PC where the agent is not set up.
        Err(_) if !explicit && !path.exists() => return (None, Vec::new()),
        Err(e) => {
            return (None, vec![health::Finding::new(
                "config.unreadable",
                health::Severity::Critical,
                format!("Не удалось прочитать файл настроек {}", path.display()),
                format!("Cannot read config {}: {e}", path.display()),
                "Проверьте путь к файлу настроек и права на него.",
            )])
        }
    };
    match crate::config::Config::parse(&text) {
        Ok(c) => (Some(c), Vec::new()),
        Err(e) => (toml::from_str(&text).ok(), vec![health::Finding::new(
            e.code,
            health::Severity::Critical,
            e.ru,
            e.en,
            format!("Исправьте файл настроек {} (пример: service/config.example.toml); агент с ним не запустится.", path.display()),
        )]),
    }
}

/// Every place to look, once each: the PC's serial ports (or `--port`s), the USB-RNDIS
/// address, the config's devices; a port the running agent holds is marked, not probed.
fn targets(a: &DiagArgs, config: Option<&crate::config::Config>, agent: &agent::AgentState, zone: health::DeviceZone) -> Vec<Target> {
    let norm = |p: &str| port_name(p);
    let target = |info: PortInfo, origin| Target {
        info,
        origin,
        device_id: None,
        access: Default::default(),
        held_by_agent: None,
        sticker: a.serial.clone(),
        zone,
    };
    let mut out: Vec<Target> = Vec::new();
    if !a.ports.is_empty() {
        out.extend(a.ports.iter().map(|p| target(PortInfo::named(&norm(p)), Origin::Given)));
    } else if !a.no_scan {
        out.extend(ports::list().into_iter().map(|p| target(p, Origin::Serial)));
        out.push(target(PortInfo::named(scan::USB_RNDIS_DEFAULT), Origin::UsbRndis));
    }
    for d in config.map_or(&[][..], |c| &c.devices[..]) {
        let port = norm(&d.port);
        let access = crate::devices::Access {
            operator_password: d.operator_password,
            admin_password: d.admin_password,
            cashier: d.cashier,
            cashier_password: d.cashier_password.clone(),
        };
        match out.iter_mut().find(|t| t.info.port == port) {
            Some(t) => {
                t.device_id = Some(d.id.clone());
                t.access = access;
                t.origin = Origin::Config;
                t.zone = d.zone();
            }
            None => {
                let mut t = target(PortInfo::named(&port), Origin::Config);
                t.device_id = Some(d.id.clone());
                t.access = access;
                t.zone = d.zone();
                out.push(t);
            }
        }
    }
    for d in &agent.devices {
        let port = norm(&d.port);
        if let Some(t) = out.iter_mut().find(|t| t.info.port == port) {
            t.held_by_agent = Some(d.id.clone());
        }
    }
    out
}

/// One spelling per port, so the config's `COM3` or `com3` meets the listed `COM3`
/// (and `/dev/ttyS2` on Linux): the OS's path without the `\\.\` Windows prefix.
fn port_name(p: &str) -> String {
    match PortSpec::parse(p) {
        Ok(PortSpec::Serial { path }) => {
            let bare = path.strip_prefix(r"\\.\").unwrap_or(&path);
            if cfg!(windows) { bare.to_ascii_uppercase() } else { bare.to_string() }
        }
        Ok(spec) => spec.to_string(),
        Err(_) => p.to_string(),
    }
}

/// A progress bar on a terminal; nothing when the output is piped or JSON.
fn progress(len: usize, json: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if json || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("Поиск ККТ {bar:30} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
