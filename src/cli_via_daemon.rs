//! `device … check` (and `diag`) through the running agent.
//!
//! While `kkm-agent serve` holds a register's port, nothing else can talk to it: a
//! serial port is opened exclusively, and a `tcp:` register serves one client at a
//! time, so a direct check only times out («устройство не отвечает»). When the config
//! names the port, this module asks that daemon instead (`GET /api/v1/diagnostics
//! ?refresh=true`, with the token `kkm-agent token` reads): its worker runs the same
//! health rules between receipts, and the findings are printed saying where they came
//! from.

use crate::cli::CliError;
use kkm_core::port::PortSpec;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One finding as the daemon serialises it (`diagnostics::health::Finding`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct RemoteFinding {
    pub code: String,
    /// `ok`, `info`, `warning` or `error`.
    pub severity: String,
    pub title_ru: String,
    #[serde(default)]
    pub title_en: String,
    #[serde(default)]
    pub action_ru: String,
}

impl RemoteFinding {
    pub fn is_error(&self) -> bool {
        self.severity == "error"
    }

    /// The same marks `device … check` prints.
    pub fn mark(&self) -> &'static str {
        crate::diagnostics::health::Severity::from_api(&self.severity).mark()
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct RemoteHealth {
    pub checked_at: String,
    pub findings: Vec<RemoteFinding>,
    /// ФФД version and tax systems, passed through as the daemon gives them.
    #[serde(default)]
    pub registration: Option<serde_json::Value>,
}

/// A queue's reason to wait, or an error, as the daemon gives it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct RemoteReason {
    pub code: String,
    pub title_ru: String,
    #[serde(default)]
    pub action_ru: String,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct RemoteLinkError {
    pub at: String,
    pub error: RemoteReason,
}

/// One device of `GET /api/v1/diagnostics`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct RemoteDevice {
    pub id: String,
    pub model: String,
    pub port: String,
    pub online: bool,
    #[serde(default)]
    pub port_released: bool,
    pub parked: Option<RemoteReason>,
    #[serde(default)]
    pub queued: u64,
    #[serde(default)]
    pub needs_attention: u64,
    #[serde(default)]
    pub link_errors: Vec<RemoteLinkError>,
    #[serde(default)]
    pub refresh_error: Option<RemoteReason>,
    pub health: Option<RemoteHealth>,
}

/// `GET /api/v1/diagnostics`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct RemoteDiagnostics {
    pub generated_at: String,
    #[serde(default)]
    pub agent_version: String,
    #[serde(default)]
    pub needs_attention: u64,
    pub devices: Vec<RemoteDevice>,
}

/// How to reach the daemon a config belongs to.
#[derive(Debug, Clone)]
pub struct DaemonLink {
    pub url: String,
    token: String,
    pub config: crate::config::Config,
}

impl DaemonLink {
    /// The daemon of `config` (default: the usual config file, then the service's), if
    /// the config loads and its token is readable. `None` says nothing is known about a
    /// daemon; it may still not run.
    pub fn find(config: Option<&Path>) -> Option<DaemonLink> {
        match config {
            Some(p) => DaemonLink::load(p),
            None => candidate_configs().iter().find_map(|p| DaemonLink::load(p)),
        }
    }

    /// The daemon whose config names `port`, among `config` or the usual places.
    pub fn find_for(config: Option<&Path>, port: &PortSpec) -> Option<DaemonLink> {
        match config {
            Some(p) => DaemonLink::load(p).filter(|l| l.device_on(port).is_some()),
            None => candidate_configs().iter().filter_map(|p| DaemonLink::load(p)).find(|l| l.device_on(port).is_some()),
        }
    }

    fn load(path: &Path) -> Option<DaemonLink> {
        let config = crate::config::Config::load(path).ok()?;
        let data = data_dirs(&config).into_iter().find(|d| d.join("token").exists())?;
        let token = crate::api::security::read_token(&data).ok()?;
        // The address the daemon wrote when it started (its config may say port 0).
        let url = std::fs::read_to_string(data.join(crate::daemon::API_ADDRESS_FILE))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| s.starts_with("http://"))
            .unwrap_or_else(|| format!("http://{}", config.listen));
        Some(DaemonLink { url, token, config })
    }

    /// The config's device on `port`, if the daemon drives it.
    pub fn device_on(&self, port: &PortSpec) -> Option<&crate::config::DeviceConfig> {
        let want = port.to_string();
        self.config
            .devices
            .iter()
            .find(|d| PortSpec::parse(&d.port).is_ok_and(|p| p.to_string().eq_ignore_ascii_case(&want)))
    }

    /// `GET /api/v1/diagnostics`; `None` when the daemon does not answer.
    pub async fn diagnostics(&self, refresh: bool) -> Option<RemoteDiagnostics> {
        let path = if refresh { "/api/v1/diagnostics?refresh=true" } else { "/api/v1/diagnostics" };
        let (status, body) = get(&self.url, path, &self.token).await.ok()?;
        if status != 200 {
            tracing::debug!("the agent answered {status} to {path}");
            return None;
        }
        serde_json::from_str(&body).ok()
    }
}

/// Where a daemon's config usually is: this user's default, then the service's
/// (`service/kkm-agent.service`, `service/windows.md`).
fn candidate_configs() -> Vec<PathBuf> {
    let mut v = vec![crate::config::Config::default_path()];
    #[cfg(unix)]
    v.push(PathBuf::from("/etc/kkm-agent/config.toml"));
    #[cfg(windows)]
    v.push(crate::windows_service::program_data_dir().join("config.toml"));
    v.dedup();
    v
}

/// The config's data directory; with none set, also the service's (systemd's
/// StateDirectory, the Windows service's `%ProgramData%\kkm-agent\data`), which a shell
/// does not see as its default.
fn data_dirs(config: &crate::config::Config) -> Vec<PathBuf> {
    let mut v = vec![config.data_dir()];
    if config.data_dir.is_none() {
        #[cfg(unix)]
        v.push(PathBuf::from("/var/lib/kkm-agent"));
        #[cfg(windows)]
        v.push(crate::windows_service::program_data_dir().join("data"));
    }
    v
}

/// A GET to the local daemon. A refresh waits for a job on the wire to finish, then for
/// the reads: up to 90 s.
async fn get(url: &str, path: &str, token: &str) -> std::io::Result<(u16, String)> {
    let hostport = url.trim_end_matches('/').strip_prefix("http://").unwrap_or(url);
    let (status, body) = crate::agent_client::exchange(hostport, "GET", path, token, None, Duration::from_secs(90), 16 << 20).await?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// `device … check` through the daemon that holds `port`. `Ok(None)`: no daemon drives
/// this port (or it does not answer); check the device directly.
pub async fn check(port: &PortSpec, config: Option<&Path>, sticker: Option<&str>, json: bool) -> Result<Option<()>, CliError> {
    let Some(link) = DaemonLink::find_for(config, port) else { return Ok(None) };
    let Some(dev) = link.device_on(port) else { return Ok(None) };
    let id = dev.id.clone();
    let Some(diag) = link.diagnostics(true).await else { return Ok(None) };
    let Some(d) = diag.devices.into_iter().find(|d| d.id == id) else { return Ok(None) };
    let findings = d.health.as_ref().map_or(&[][..], |h| &h.findings[..]);
    let errors = findings.iter().filter(|f| f.is_error()).count();
    if json {
        let v = serde_json::json!({"via": "agent", "agent": link.url, "device": d});
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        print!("{}", report_text(&d, &link.url, sticker));
    }
    // The exit codes of a direct check: 2 when the register could not be checked, 1 when
    // a finding is an error; the report above is the whole output.
    use crate::diagnostics::health::{EXIT_ERROR_FINDING, EXIT_UNREACHABLE};
    if d.health.is_none() {
        return Err(CliError::exit_only(EXIT_UNREACHABLE));
    }
    if errors > 0 {
        return Err(CliError::exit_only(EXIT_ERROR_FINDING));
    }
    Ok(Some(()))
}

/// The report for people: where it came from, the agent's view, then the findings.
pub fn report_text(d: &RemoteDevice, url: &str, sticker: Option<&str>) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "Порт {} занят работающим агентом ({url}): проверка выполнена через него, между чеками.", d.port);
    let _ = writeln!(s, "ККТ «{}» ({}), {}", d.id, d.model, if d.online { "на связи" } else { "нет связи" });
    if d.port_released {
        let _ = writeln!(s, "Порт сейчас освобождён агентом (простой); он откроется для следующего чека.");
    }
    if let Some(p) = &d.parked {
        let _ = writeln!(s, "Очередь чеков стоит: {}", p.title_ru);
        if !p.action_ru.is_empty() {
            let _ = writeln!(s, "       → {}", p.action_ru);
        }
    }
    if d.queued > 0 {
        let _ = writeln!(s, "В очереди заданий: {}", d.queued);
    }
    if d.needs_attention > 0 {
        let _ = writeln!(s, "Заданий, которые должен проверить человек: {}", d.needs_attention);
    }
    if let Some(e) = d.link_errors.last() {
        let _ = writeln!(s, "Последняя ошибка связи ({}): {}", e.at.replace('T', " "), e.error.title_ru);
    }
    if sticker.is_some() {
        let _ = writeln!(s, "ЗН с наклейки сверяется только при прямом подключении: остановите агента и повторите проверку.");
    }
    if let Some(e) = &d.refresh_error {
        let _ = writeln!(s, "Проверить сейчас не удалось: {}", e.title_ru);
        if !e.action_ru.is_empty() {
            let _ = writeln!(s, "       → {}", e.action_ru);
        }
    }
    match &d.health {
        Some(h) => {
            let _ = writeln!(s, "Проверка от {}:", h.checked_at.replace('T', " "));
            for f in &h.findings {
                let _ = writeln!(s, "[{}] {}", f.mark(), f.title_ru);
                if !f.action_ru.is_empty() {
                    let _ = writeln!(s, "           → {}", f.action_ru);
                }
            }
        }
        None => {
            let _ = writeln!(s, "Агент ещё не проверял эту ККТ.");
        }
    }
    s
}
