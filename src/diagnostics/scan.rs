//! The port scan behind `kkm-agent diag`: every place a register may be, asked at once.
//!
//! A target is a serial port of this PC, the USB-RNDIS address a register shows when
//! plugged in as a network card, or a device from the config. Each is asked in turn by
//! [`detect`](super::detect) (requests that cannot print), all targets at the same time,
//! so a PC with eight silent ports takes as long as one. A port another program holds
//! is named and left alone; a port the running agent holds is never touched. Where a
//! register answers, its health is read and judged by [`health`](super::health).

use super::detect::{self, Detection};
use super::health::{self, Finding, HealthReport, Severity};
use super::ports::{Holder, PortInfo, UsbIds};
use crate::devices::{Access, Protocol};
use kkm_core::error::{DriverError, LinkFailure};
use kkm_core::port::PortSpec;
use serde::Serialize;
use std::time::Duration;

/// Where a register shows when plugged in by USB as a network card (RNDIS).
pub const USB_RNDIS_DEFAULT: &str = "tcp:192.168.137.111:7778";

/// How long a network target may take to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long detection may take on one port (all speeds, all protocols).
pub const PORT_BUDGET: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Found on this PC.
    Serial,
    /// The USB-RNDIS default address.
    UsbRndis,
    /// A device from the config.
    Config,
    /// Named on the command line.
    Given,
}

/// A place to look for a register.
#[derive(Debug, Clone)]
pub struct Target {
    pub info: PortInfo,
    pub origin: Origin,
    /// The config's device id, if the config names this port.
    pub device_id: Option<String>,
    pub access: Access,
    /// The running agent's device on this port: not to be touched.
    pub held_by_agent: Option<String>,
    /// The factory number from the case's sticker (`--serial`), checked against the РНМ.
    pub sticker: Option<String>,
    /// The register's time zone (its clock keeps the shop's local time).
    pub zone: health::DeviceZone,
}

/// What was found at one target.
#[derive(Debug, Clone, Serialize)]
pub struct PortScan {
    pub port: String,
    pub origin: Origin,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usb: Option<UsbIds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// `found`, `no_answer`, `busy`, `held_by_agent` or `failed`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<Holder>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detection: Option<Detection>,
    /// The register's facts and the health rules' findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthReport>,
    /// About the port itself (found, busy, silent).
    pub findings: Vec<Finding>,
}

impl PortScan {
    fn new(t: &Target, state: &'static str) -> PortScan {
        PortScan {
            port: t.info.port.clone(),
            origin: t.origin,
            kind: t.info.kind,
            usb: t.info.usb.clone(),
            device_id: t.device_id.clone(),
            state,
            holders: Vec::new(),
            detection: None,
            health: None,
            findings: Vec::new(),
        }
    }

    /// The port's findings followed by its register's.
    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().chain(self.health.iter().flat_map(|h| h.findings.iter()))
    }
}

fn finding(code: &'static str, severity: Severity, ru: String, en: String, action: &str) -> Finding {
    Finding::new(code, severity, ru, en, action)
}

/// The link in words for the engineer.
pub fn link_ru(link: &str) -> &'static str {
    match link {
        "shtrih" => "протокол Штрих-М",
        "atol-v3" => "протокол АТОЛ (версия 3)",
        "atol-v2" => "протокол АТОЛ (версия 2)",
        "umka-http" => "программный интерфейс УМКА по сети",
        _ => "неизвестный протокол",
    }
}

/// Scans every target at once; `tick` is called as each one finishes.
pub async fn scan_all(targets: Vec<Target>, budget: Duration, tick: impl Fn(&PortScan)) -> Vec<PortScan> {
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in targets.into_iter().enumerate() {
        set.spawn(async move { (i, scan_one(t, budget).await) });
    }
    let mut done = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok((i, s)) = r {
            tick(&s);
            done.push((i, s));
        }
    }
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, s)| s).collect()
}

/// Looks at one target: who holds it, what answers, and the register's health.
pub async fn scan_one(t: Target, budget: Duration) -> PortScan {
    let port = t.info.port.clone();
    if let Some(id) = &t.held_by_agent {
        let mut s = PortScan::new(&t, "held_by_agent");
        s.findings.push(finding(
            "port.held_by_agent",
            Severity::Ok,
            format!("Порт {port} занят самим агентом (касса «{id}»); его не опрашивали, состояние кассы — в разделе агента"),
            format!("{port} is held by kkm-agent itself (device {id}); not scanned"),
            "",
        ));
        return s;
    }
    let spec = match PortSpec::parse(&port) {
        Ok(s) => s,
        Err(e) => {
            let mut s = PortScan::new(&t, "failed");
            s.findings.push(finding("port.name_invalid", Severity::Warning, format!("Неверное имя порта {port}"),
                format!("Bad port name: {e}"), "Исправьте имя порта: COM3, /dev/ttyACM0, tcp:АДРЕС:ПОРТ или http://АДРЕС:8088."));
            return s;
        }
    };
    if let PortSpec::Serial { path } = &spec {
        let holders = super::ports::holders(path);
        if !holders.is_empty() {
            let mut s = PortScan::new(&t, "busy");
            s.findings.push(busy_finding(&port, &holders));
            s.holders = holders;
            return s;
        }
    }
    if let Some(answer) = unreachable(&spec).await {
        return silent(&t, answer, true);
    }
    let creds = t.access.umka_credentials();
    match detect::detect_with(&spec, budget, Some(&creds)).await {
        Ok(d) => found(&t, &spec, d).await,
        Err(e) => match &e {
            DriverError::Link { failure: LinkFailure::PortBusy, .. } => {
                let mut s = PortScan::new(&t, "busy");
                s.findings.push(busy_finding(&port, &[]));
                s
            }
            DriverError::Link { failure: LinkFailure::NoAnswer | LinkFailure::Garbled | LinkFailure::Disconnected, .. } => {
                silent(&t, format!("{e}"), false)
            }
            _ => {
                let mut s = PortScan::new(&t, "failed");
                let sev = if t.origin == Origin::Config { Severity::Critical } else { Severity::Warning };
                s.findings.push(Finding::new(
                    "port.failed",
                    sev,
                    format!("Порт {port}: {}", e.title_ru()),
                    format!("{port}: {}", e.title_en()),
                    e.action_ru().to_string(),
                ));
                s
            }
        },
    }
}

/// For a network target, a connection refused or not accepted within
/// [`CONNECT_TIMEOUT`]: the reason, in English for the log. `None` when it connects (or
/// is not a network target).
async fn unreachable(spec: &PortSpec) -> Option<String> {
    let (PortSpec::Tcp { host, port } | PortSpec::Http { host, port }) = spec else { return None };
    let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!("{addr}: {e}")),
        Err(_) => Some(format!("{addr}: no connection within {} ms", CONNECT_TIMEOUT.as_millis())),
    }
}

fn busy_finding(port: &str, holders: &[Holder]) -> Finding {
    let who = if holders.is_empty() {
        "другая программа (какая — система не сообщает)".to_string()
    } else {
        holders.iter().map(|h| format!("программа {} (процесс {})", h.program, h.pid)).collect::<Vec<_>>().join(", ")
    };
    finding(
        "port.busy",
        Severity::Warning,
        format!("Порт {port} занят: его держит {who}"),
        format!("{port} is held by another program: {}", Holder::text(holders)),
        "Закройте эту программу (тест драйвера, утилиту производителя, другую кассовую программу) и повторите проверку: \
         с портом может работать только одна программа.",
    )
}

/// Nothing answered; `refused` when a network address did not even take a connection.
fn silent(t: &Target, detail: String, refused: bool) -> PortScan {
    let port = &t.info.port;
    let mut s = PortScan::new(t, "no_answer");
    let f = match t.origin {
        Origin::Config => finding(
            "port.config_device_silent",
            Severity::Critical,
            format!("Касса «{}» из настроек не отвечает на {port}", t.device_id.as_deref().unwrap_or("?")),
            format!("Configured device does not answer on {port}: {detail}"),
            "Проверьте, что ККТ включена, кабель или сеть подключены, и адрес порта в настройках верный.",
        ),
        Origin::UsbRndis => finding(
            "port.usb_network_silent",
            Severity::Info,
            format!("По адресу USB-сети ККТ ({port}) никто не ответил"),
            format!("Nothing answers at the USB-RNDIS default {port}: {detail}"),
            "Это нормально, если ККТ подключена как COM-порт. Если она подключена по USB как сетевая карта, \
             проверьте, что сетевое подключение ККТ появилось в системе и получило адрес.",
        ),
        Origin::Serial | Origin::Given if refused => finding(
            "port.network_unreachable",
            Severity::Info,
            format!("По адресу {port} никто не принимает соединение"),
            format!("No connection to {port}: {detail}"),
            "Проверьте адрес и порт, что ККТ включена и подключена к той же сети, что и компьютер.",
        ),
        Origin::Serial | Origin::Given => finding(
            "port.silent",
            Severity::Info,
            format!("На порту {port} ККТ не ответила: ни по протоколу Штрих-М, ни по протоколу АТОЛ, ни на одной скорости"),
            format!("Nothing answered on {port}: {detail}"),
            "Если ККТ подключена к этому порту — проверьте питание, кабель и канал связи в настройках ККТ.",
        ),
    };
    s.findings.push(f);
    s
}

/// A register answered: name it and read its health.
async fn found(t: &Target, spec: &PortSpec, d: Detection) -> PortScan {
    let mut s = PortScan::new(t, "found");
    let speed = d.baud.map_or("по сети".to_string(), |b| format!("скорость {b}"));
    s.findings.push(finding(
        "port.register_found",
        Severity::Ok,
        format!("На {} найдена ККТ {}: {}, {speed}", t.info.port, d.unit, link_ru(d.link)),
        format!("{} found on {}: {} {:?}", d.unit, t.info.port, d.link, d.baud),
        "",
    ));
    let Some(key) = d.profile else {
        s.findings.push(finding(
            "port.no_profile",
            Severity::Warning,
            format!("Модель {} агенту не знакома: состояние кассы не проверено", d.model_name),
            format!("No profile for {} (id {}): health not read", d.model_name, d.model_id),
            "Сообщите модель в поддержку; пока укажите в настройках похожую модель и протокол вручную.",
        ));
        s.detection = Some(d);
        return s;
    };
    let protocol = Protocol { family: d.protocol, atol_v2: d.link == "atol-v2" };
    let port = d.url.as_deref().and_then(|u| PortSpec::parse(u).ok()).unwrap_or_else(|| spec.clone());
    match crate::devices::open_driver_with(key, Some(protocol), &port, d.baud, &t.access) {
        Ok(mut driver) => {
            let mut facts = health::read_facts(driver.as_mut(), t.sticker.clone()).await;
            driver.disconnect().await;
            facts.timezone = t.zone;
            let findings = health::evaluate(&facts, super::pc_now());
            s.health = Some(HealthReport { facts, findings });
        }
        Err(e) => s.findings.push(Finding::new(
            "port.driver_failed",
            Severity::Warning,
            format!("Не удалось подключиться к ККТ: {}", e.title_ru()),
            e.title_en(),
            e.action_ru().to_string(),
        )),
    }
    s.detection = Some(d);
    s
}
