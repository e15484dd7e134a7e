//! Can this PC reach the ОФД server the register sends to?
//!
//! The register's ОФД host and port come from its own settings; a TCP connection from
//! the PC, bounded by [`PROBE_TIMEOUT`], tells «нет сети до ОФД» apart from an ОФД that
//! refuses the register. The register usually shares the shop's network with the PC,
//! so an unreachable host is an error when documents are waiting, a warning otherwise.

use super::{finding, Facts, Finding, Severity};
use kkm_core::{DriverError, OfdAddress};
use serde::Serialize;
use std::time::{Duration, Instant};

/// Name lookup and connection together.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the connection attempt found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OfdReach {
    pub reachable: bool,
    /// Why not, as the OS said it (English), or empty.
    pub detail: String,
    pub elapsed_ms: u64,
}

/// Opens (and at once closes) a TCP connection to the ОФД server.
pub async fn probe(addr: &OfdAddress, within: Duration) -> OfdReach {
    let started = Instant::now();
    let attempt = tokio::time::timeout(within, tokio::net::TcpStream::connect((addr.host.as_str(), addr.port))).await;
    let (reachable, detail) = match attempt {
        Ok(Ok(_)) => (true, String::new()),
        Ok(Err(e)) => (false, e.to_string()),
        Err(_) => (false, format!("no answer within {} s", within.as_secs())),
    };
    OfdReach { reachable, detail, elapsed_ms: started.elapsed().as_millis() as u64 }
}

/// A failed read of the address: unsupported by the protocol is only information.
pub(super) fn address_error(e: &DriverError) -> Finding {
    if matches!(e, DriverError::Unsupported(_) | DriverError::NotInProfile { .. }) {
        return finding(
            "ofd.address_unknown",
            Severity::Info,
            "Адрес сервера ОФД у этой модели агент не читает: доступность ОФД не проверена".into(),
            "The agent cannot read this model's OFD address: reachability not checked".into(),
            "Если документы не уходят в ОФД, сверьте адрес и порт ОФД в настройках ККТ с договором ОФД.",
        );
    }
    finding(
        "ofd.address_unreadable",
        Severity::Warning,
        format!("Не удалось прочитать адрес сервера ОФД из ККТ: {}", e.title_ru()),
        format!("Could not read the OFD address: {}", e.title_en()),
        "Проверьте адрес и порт ОФД в настройках ККТ (утилитой производителя).",
    )
}

pub(super) fn findings(f: &Facts, out: &mut Vec<Finding>) {
    let Some(addr) = &f.ofd_address else { return };
    let waiting = f.ofd.as_ref().is_some_and(|o| o.unsent_count > 0);
    if addr.host.trim().is_empty() || addr.port == 0 {
        out.push(finding(
            "ofd.address_missing",
            if waiting { Severity::Critical } else { Severity::Warning },
            "В настройках ККТ не задан адрес или порт сервера ОФД".into(),
            "The OFD server address or port is not set in the device".into(),
            "Впишите адрес и порт ОФД из договора с ОФД в настройки ККТ (утилитой производителя).",
        ));
        return;
    }
    let Some(reach) = &f.ofd_reach else { return };
    let target = format!("{}:{}", addr.host, addr.port);
    if reach.reachable {
        out.push(finding(
            "ofd.reachable",
            Severity::Ok,
            format!("Сервер ОФД {target} доступен с этого компьютера"),
            format!("The OFD server {target} is reachable from this PC"),
            "",
        ));
    } else {
        // The server's address is the engineer's: the title and the cashier's action,
        // shown on the cashier's page, stay in Russian words.
        let action = |address: &str| {
            format!(
                "Проверьте интернет в салоне (роутер, кабель, оплату провайдеру) и что адрес и порт ОФД в \
                 настройках ККТ{address} совпадают с договором ОФД. Если интернет есть, а сервер не отвечает — \
                 позвоните в поддержку ОФД."
            )
        };
        out.push(
            finding(
                "ofd.unreachable",
                if waiting { Severity::Critical } else { Severity::Warning },
                "Нет сети до ОФД: сервер ОФД не отвечает с этого компьютера".into(),
                format!("No network to the OFD: {target} does not answer from this PC ({})", reach.detail),
                &action(&format!(" ({target})")),
            )
            .for_cashier(&action("")),
        );
    }
}
