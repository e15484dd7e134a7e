//! The agent's configuration: a TOML file, with per-OS default locations.
//!
//! ```toml
//! listen = "127.0.0.1:8765"
//! # data_dir = "/var/lib/kkm-agent"
//!
//! [policy]
//! auto_open_shift = true
//!
//! [[devices]]
//! id = "kassa1"
//! model = "azur-01f"        # or "neva-01-f", or "auto" to detect
//! port = "COM3"              # or "/dev/ttyACM0", "tcp:192.168.137.111:7778", "http://192.168.1.50:8088"
//! # baud = 115200
//! # protocol = "shtrih"      # override the model's protocol: "shtrih" | "atol" | "atol-v2" | "umka"
//! # operator_password = 30
//! # admin_password = 30
//! # cashier = 1              # УМКА (Neva-01-F over HTTP): cashier number 1..99, 99 = administrator
//! # cashier_password = "1"   # digits only, at most 8; default: the cashier's number
//! # timezone = "+05:00"      # the register's local time zone (default Moscow, +03:00);
//! #                          # also "UTC+5", "МСК+2", "Asia/Yekaterinburg"
//! ```
//!
//! Unknown keys are errors: a typo must not silently fall back to a default.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub policy: Policy,
    #[serde(default)]
    pub devices: Vec<DeviceConfig>,
    /// Web apps (origins such as `https://salon.example.com`) that may call the API
    /// from a browser, with the token. Nothing else gets CORS.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Open the shift before a receipt when it is closed.
    #[serde(default = "yes")]
    pub auto_open_shift: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { auto_open_shift: true }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    pub id: String,
    pub model: String,
    pub port: String,
    #[serde(default)]
    pub baud: Option<u32>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub operator_password: Option<u32>,
    #[serde(default)]
    pub admin_password: Option<u32>,
    #[serde(default)]
    pub cashier: Option<u32>,
    #[serde(default)]
    pub cashier_password: Option<String>,
    /// The register's time zone: its clock keeps the shop's local time. `None` is Moscow
    /// time (see [`crate::diagnostics::health::zone`]).
    #[serde(default)]
    pub timezone: Option<String>,
}

impl DeviceConfig {
    /// The register's zone for health checks (validated when the config is loaded).
    pub fn zone(&self) -> crate::diagnostics::health::DeviceZone {
        self.timezone
            .as_deref()
            .and_then(|t| crate::diagnostics::health::DeviceZone::parse(t).ok())
            .unwrap_or_default()
    }
}

/// `http(s)://host[:port]`, as a browser sends it in `Origin`.
fn valid_origin(o: &str) -> bool {
    let rest = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://"));
    rest.is_some_and(|r| {
        !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    })
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8765))
}

fn yes() -> bool {
    true
}

/// A config problem, explained.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {en}")]
pub struct ConfigError {
    pub code: &'static str,
    pub ru: String,
    pub en: String,
}

impl Config {
    /// `config.toml` in the OS's config directory.
    pub fn default_path() -> PathBuf {
        // Under systemd with ConfigurationDirectory=, the unit says where it is.
        if let Some(dir) = crate::cli::systemd_dir("CONFIGURATION_DIRECTORY") {
            return dir.join("config.toml");
        }
        #[cfg(windows)]
        if let Some(path) = crate::windows_service::service_config_path() {
            return path;
        }
        directories::ProjectDirs::from("ru", "kkm", "kkm-agent")
            .map(|d| d.config_dir().join("config.toml"))
            .unwrap_or_else(|| PathBuf::from("config.toml"))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(crate::cli::default_data_dir)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            code: "config.unreadable",
            ru: format!("Не удалось прочитать файл настроек {}: {e}", path.display()),
            en: format!("Cannot read config {}: {e}", path.display()),
        })?;
        Config::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError {
            code: "config.invalid",
            ru: format!("Ошибка в файле настроек: {e}"),
            en: format!("Config error: {e}"),
        })?;
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |code, ru: String, en: String| Err(ConfigError { code, ru, en });
        for o in &self.allowed_origins {
            if !valid_origin(o) {
                return bad(
                    "config.origin_invalid",
                    format!("allowed_origins: {o:?} — нужен адрес вида https://salon.example.com (схема, имя, порт; без пути и без *)"),
                    format!("allowed_origins: {o:?} must be scheme://host[:port] with no path and no wildcard"),
                );
            }
        }
        if self.devices.is_empty() {
            return bad("config.no_devices", "В настройках нет ни одной ККТ ([[devices]])".into(), "No devices configured".into());
        }
        for (i, d) in self.devices.iter().enumerate() {
            if d.id.is_empty() || d.id.len() > 64 || !d.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return bad("config.device_id_invalid", format!("Неверный id ККТ {:?}: латиница, цифры, - и _", d.id), format!("Bad device id {:?}", d.id));
            }
            if self.devices[..i].iter().any(|o| o.id == d.id) {
                return bad("config.device_id_duplicate", format!("id ККТ {:?} повторяется", d.id), format!("Duplicate device id {:?}", d.id));
            }
            if d.model != "auto" && crate::devices::profile(&d.model).is_none() {
                return bad("config.unknown_model", format!("Неизвестная модель {:?} у ККТ {:?}", d.model, d.id), format!("Unknown model {:?}", d.model));
            }
            if let Err(e) = kkm_core::port::PortSpec::parse(&d.port) {
                return bad("config.port_invalid", format!("Неверный порт у ККТ {:?}: {e}", d.id), format!("Bad port for {:?}: {e}", d.id));
            }
            if let Some(p) = &d.protocol {
                if crate::devices::Protocol::parse(p).is_none() {
                    return bad("config.protocol_invalid", format!("protocol должен быть shtrih, atol, atol-v2 или umka, а не {p:?}"), format!("protocol must be shtrih, atol, atol-v2 or umka, not {p:?}"));
                }
            }
            if d.model != "auto" {
                let proto = d.protocol.as_deref().and_then(crate::devices::Protocol::parse);
                if let Ok(port) = kkm_core::port::PortSpec::parse(&d.port) {
                    if let Err(e) = crate::devices::family_for(&d.model, proto, &port) {
                        return bad(e.code(), format!("ККТ {:?}: {}", d.id, e.title_ru()), format!("Device {:?}: {}", d.id, e.title_en()));
                    }
                }
            }
            if let Some(c) = d.cashier {
                if !(1..=99).contains(&c) {
                    return bad("config.cashier_invalid", format!("cashier у ККТ {:?} должен быть от 1 до 99", d.id), format!("cashier of {:?} must be 1..99", d.id));
                }
            }
            if let Some(p) = &d.cashier_password {
                if p.is_empty() || p.len() > 8 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return bad("config.cashier_password_invalid", format!("cashier_password у ККТ {:?}: только цифры, от 1 до 8", d.id), format!("cashier_password of {:?}: 1 to 8 digits", d.id));
                }
            }
            if let Some(Err(e)) = d.timezone.as_deref().map(crate::diagnostics::health::DeviceZone::parse) {
                return bad("config.timezone_invalid", format!("Неверный часовой пояс у ККТ {:?}: {e}", d.id), format!("Bad timezone for {:?}: {e}", d.id));
            }
            if let Some(b) = d.baud {
                if !(1200..=921_600).contains(&b) {
                    return bad("config.baud_invalid", format!("Недопустимая скорость {b}"), format!("Bad baud rate {b}"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let c = Config::parse("[[devices]]\nid='k1'\nmodel='azur-01f'\nport='COM3'\n").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8765");
        assert!(c.policy.auto_open_shift);
        assert_eq!(Config::parse("").unwrap_err().code, "config.no_devices");
        assert_eq!(Config::parse("[[devices]]\nid='k1'\nmodel='x'\nport='COM3'\n").unwrap_err().code, "config.unknown_model");
        assert_eq!(Config::parse("lisen='1'\n").unwrap_err().code, "config.invalid");
        let dev = "[[devices]]\nid='k1'\nmodel='azur-01f'\nport='COM3'\n";
        assert!(Config::parse(&format!("allowed_origins=['https://salon.example.com', 'http://localhost:3000']\n{dev}")).is_ok());
        for bad in ["*", "https://salon.example.com/", "salon.example.com", "https://*.example.com"] {
            assert_eq!(Config::parse(&format!("allowed_origins=['{bad}']\n{dev}")).unwrap_err().code, "config.origin_invalid", "{bad}");
        }
        assert_eq!(
            Config::parse("[[devices]]\nid='k1'\nmodel='azur-01f'\nport='tcp:x'\n").unwrap_err().code,
            "config.port_invalid"
        );
        // Neva-01-F: HTTP is УМКА, a byte port is ATOL; a mismatch is refused up front.
        assert!(Config::parse("[[devices]]\nid='k1'\nmodel='neva-01-f'\nport='http://10.0.0.5:8088'\ncashier=99\n").is_ok());
        assert!(Config::parse("[[devices]]\nid='k1'\nmodel='neva-01-f'\nport='COM3'\n").is_ok());
        assert_eq!(
            Config::parse("[[devices]]\nid='k1'\nmodel='neva-01-f'\nport='COM3'\nprotocol='umka'\n").unwrap_err().code,
            "config.port_needs_http"
        );
        assert_eq!(
            Config::parse("[[devices]]\nid='k1'\nmodel='azur-01f'\nport='http://h'\n").unwrap_err().code,
            "config.port_not_http"
        );
        assert_eq!(
            Config::parse("[[devices]]\nid='k1'\nmodel='neva-01-f'\nport='http://h'\ncashier_password='abc'\n").unwrap_err().code,
            "config.cashier_password_invalid"
        );
    }

    #[test]
    fn device_timezone() {
        let c = Config::parse("[[devices]]\nid='k1'\nmodel='azur-01f'\nport='COM3'\ntimezone='Asia/Yekaterinburg'\n").unwrap();
        assert_eq!(c.devices[0].zone().0.whole_hours(), 5);
        let c = Config::parse("[[devices]]\nid='k1'\nmodel='azur-01f'\nport='COM3'\n").unwrap();
        assert_eq!(c.devices[0].zone(), crate::diagnostics::health::DeviceZone::MOSCOW);
        assert_eq!(
            Config::parse("[[devices]]\nid='k1'\nmodel='azur-01f'\nport='COM3'\ntimezone='Mars/Olympus'\n").unwrap_err().code,
            "config.timezone_invalid"
        );
    }
}

#[cfg(test)]
mod example {
    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../service/config.example.toml");
        let c = super::Config::parse(text).expect("service/config.example.toml is valid");
        assert_eq!(c.devices[0].id, "kassa1");
    }
}
