//! Builds the driver for a device: model → profile → protocol crate.
//!
//! The model's profile gives the default protocol family; config or the command line
//! may override it (`protocol = "atol"`), because we only assume what Neva-01-F speaks.
//!
//! Neva-01-F: on an `http://HOST:8088` port it is driven over the УМКА HTTP API (the
//! working assumption); on a serial or `tcp:` port, where HTTP cannot be, over ATOL, as
//! before. `protocol = "umka"` or `"atol"` makes the choice explicit.

use kkm_core::error::{DriverError, DriverResult};
use kkm_core::port::PortSpec;
use kkm_core::{DriverBox, ModelProfile, ProtocolFamily};

/// The model profiles we ship.
/// The first profile of a key is the model's default protocol.
pub fn profiles() -> Vec<&'static ModelProfile> {
    vec![&kkm_shtrih::AZUR_01F, &kkm_umka::NEVA_01_F_UMKA, &kkm_atol::NEVA_01_F]
}

/// The model's default profile.
pub fn profile(key: &str) -> Option<&'static ModelProfile> {
    profiles().into_iter().find(|p| p.key.eq_ignore_ascii_case(key))
}

/// The model's profile on one protocol family.
pub fn profile_in(key: &str, family: ProtocolFamily) -> Option<&'static ModelProfile> {
    profiles().into_iter().find(|p| p.key.eq_ignore_ascii_case(key) && p.family == family)
}

/// Credentials for units that log a cashier in (УМКА: HTTP Basic auth).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub operator_password: Option<u32>,
    pub admin_password: Option<u32>,
    /// УМКА cashier number (1–99; 99 is the administrator). Default 1.
    pub cashier: Option<u32>,
    /// УМКА cashier password. Default: the cashier's number.
    pub cashier_password: Option<String>,
}

impl Access {
    pub fn umka_credentials(&self) -> kkm_umka::client::Credentials {
        kkm_umka::client::Credentials::new(self.cashier.unwrap_or(1), self.cashier_password.as_deref())
    }
}

/// A protocol choice from config or the command line: `shtrih`, `atol` (v3 link),
/// `atol-v2` (the older STX/ETX link) or `umka` (the УМКА HTTP API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol {
    pub family: ProtocolFamily,
    pub atol_v2: bool,
}

impl Protocol {
    pub fn parse(text: &str) -> Option<Protocol> {
        Some(match text {
            "shtrih" => Protocol { family: ProtocolFamily::Shtrih, atol_v2: false },
            "atol" | "atol-v3" => Protocol { family: ProtocolFamily::Atol, atol_v2: false },
            "atol-v2" => Protocol { family: ProtocolFamily::Atol, atol_v2: true },
            "umka" => Protocol { family: ProtocolFamily::Umka, atol_v2: false },
            _ => return None,
        })
    }
}

fn unknown_model(key: &str) -> DriverError {
    DriverError::Invalid(kkm_core::ValidationError {
        code: "config.unknown_model",
        ru: format!("Неизвестная модель ККТ {key:?}; поддерживаются: azur-01f, neva-01-f"),
        en: format!("Unknown model {key:?}; supported: azur-01f, neva-01-f"),
    })
}

/// Builds the driver for one configured device (`[[devices]]` in the config): the seam
/// the daemon and the CLI share. No I/O happens here; the worker opens the port.
pub fn build_driver(dev: &crate::config::DeviceConfig) -> Result<DriverBox, DriverError> {
    let port = PortSpec::parse(&dev.port).map_err(|e| {
        DriverError::Invalid(kkm_core::ValidationError {
            code: "config.port_invalid",
            ru: format!("Неверный порт {:?} у ККТ {:?}: {e}", dev.port, dev.id),
            en: format!("Bad port {:?} for device {:?}: {e}", dev.port, dev.id),
        })
    })?;
    let protocol = dev.protocol.as_deref().and_then(Protocol::parse);
    let access = Access {
        operator_password: dev.operator_password,
        admin_password: dev.admin_password,
        cashier: dev.cashier,
        cashier_password: dev.cashier_password.clone(),
    };
    open_driver_with(&dev.model, protocol, &port, dev.baud, &access)
}

/// Opens (lazily: no I/O happens here) a driver for `model` on `port`.
pub fn open_driver(
    model: &str,
    protocol: Option<Protocol>,
    port: &PortSpec,
    baud: Option<u32>,
) -> Result<DriverBox, DriverError> {
    open_driver_with_passwords(model, protocol, port, baud, None, None)
}

/// As [`open_driver`], with the operator and administrator passwords from config.
pub fn open_driver_with_passwords(
    model: &str,
    protocol: Option<Protocol>,
    port: &PortSpec,
    baud: Option<u32>,
    operator: Option<u32>,
    admin: Option<u32>,
) -> Result<DriverBox, DriverError> {
    let access = Access { operator_password: operator, admin_password: admin, ..Access::default() };
    open_driver_with(model, protocol, port, baud, &access)
}

fn config_error(code: &'static str, ru: String, en: String) -> DriverError {
    DriverError::Invalid(kkm_core::ValidationError { code, ru, en })
}

/// The protocol a device is driven over: the explicit choice, else what the port
/// implies (HTTP is УМКА; a byte port cannot carry it), else the model's default.
pub fn family_for(model: &str, protocol: Option<Protocol>, port: &PortSpec) -> Result<ProtocolFamily, DriverError> {
    let default = profile(model).ok_or_else(|| unknown_model(model))?;
    let family = match protocol {
        Some(p) => p.family,
        None if port.is_http() && profile_in(model, ProtocolFamily::Umka).is_some() => ProtocolFamily::Umka,
        None if default.family == ProtocolFamily::Umka && profile_in(model, ProtocolFamily::Atol).is_some() => {
            ProtocolFamily::Atol
        }
        None => default.family,
    };
    if family == ProtocolFamily::Umka && !port.is_http() {
        return Err(config_error(
            "config.port_needs_http",
            format!("Протокол umka работает по HTTP: укажите порт вида http://АДРЕС:8088, а не {port}"),
            format!("The umka protocol is HTTP: use a port like http://HOST:8088, not {port}"),
        ));
    }
    if family != ProtocolFamily::Umka && port.is_http() {
        return Err(config_error(
            "config.port_not_http",
            format!("Порт {port} — это HTTP, а протокол {family} работает по COM-порту или tcp:АДРЕС:ПОРТ"),
            format!("{port} is HTTP, but the {family} protocol needs a serial or tcp: port"),
        ));
    }
    if profile_in(model, family).is_none() {
        return Err(config_error(
            "config.protocol_unsupported",
            format!("Для модели {model} нет профиля с протоколом {family}"),
            format!("Model {model} has no profile for the {family} protocol"),
        ));
    }
    Ok(family)
}

/// Opens (lazily: no I/O happens here) a driver for `model` on `port` with credentials.
pub fn open_driver_with(
    model: &str,
    protocol: Option<Protocol>,
    port: &PortSpec,
    baud: Option<u32>,
    access: &Access,
) -> Result<DriverBox, DriverError> {
    if model.eq_ignore_ascii_case("auto") {
        return Ok(Box::new(AutoDriver::new(port.clone(), access.clone())));
    }
    let family = family_for(model, protocol, port)?;
    let profile = profile_in(model, family).ok_or_else(|| unknown_model(model))?;
    let atol_v2 = protocol.is_some_and(|p| p.atol_v2);
    let (operator, admin) = (access.operator_password, access.admin_password);
    match family {
        ProtocolFamily::Umka => Ok(Box::new(
            kkm_umka::UmkaDriver::new(port.clone(), profile).with_credentials(access.umka_credentials()),
        )),
        ProtocolFamily::Shtrih => Ok(Box::new(
            kkm_shtrih::ShtrihDriver::new(port.clone(), baud, profile)
                .with_passwords(operator.unwrap_or(30), admin.unwrap_or(30)),
        )),
        ProtocolFamily::Atol => Ok(Box::new(
            kkm_atol::AtolDriver::new(port.clone(), baud, profile)
                .with_password(admin.or(operator).unwrap_or(30))
                .with_link(if atol_v2 { kkm_atol::driver::LinkVersion::V2 } else { kkm_atol::driver::LinkVersion::V3 }),
        )),
    }
}

/// `model = "auto"`: finds the protocol, speed and model on first use (and again after
/// the link is lost, until it has succeeded once), then behaves as that model's driver.
pub struct AutoDriver {
    port: PortSpec,
    access: Access,
    inner: Option<DriverBox>,
    job_key: Option<String>,
}

impl AutoDriver {
    pub fn new(port: PortSpec, access: Access) -> AutoDriver {
        AutoDriver { port, access, inner: None, job_key: None }
    }

    async fn inner(&mut self) -> Result<&mut DriverBox, DriverError> {
        if self.inner.is_none() {
            let creds = self.access.umka_credentials();
            let d = crate::diagnostics::detect::detect_with(&self.port, std::time::Duration::from_secs(30), Some(&creds)).await?;
            let key = d.profile.ok_or(DriverError::Unsupported("detected a model kkm-agent has no profile for"))?;
            tracing::info!(port = %self.port, model = key, baud = ?d.baud, "detected {} ({})", d.model_name, d.link);
            let protocol = Protocol { family: d.protocol, atol_v2: d.link == "atol-v2" };
            let port = match &d.url {
                Some(u) => PortSpec::parse(u).map_err(|e| DriverError::Protocol(e))?,
                None => self.port.clone(),
            };
            let mut driver = open_driver_with(key, Some(protocol), &port, d.baud, &self.access)?;
            driver.set_job_key(self.job_key.as_deref());
            self.inner = Some(driver);
        }
        self.inner.as_mut().ok_or(DriverError::Unsupported("no driver"))
    }
}

#[async_trait::async_trait]
impl kkm_core::FiscalDriver for AutoDriver {
    fn profile(&self) -> &ModelProfile {
        // Before detection, the narrower limits of the families we know (they agree).
        self.inner.as_ref().map_or(&kkm_shtrih::AZUR_01F, |d| d.profile())
    }

    fn set_job_key(&mut self, key: Option<&str>) {
        self.job_key = key.map(str::to_string);
        if let Some(d) = self.inner.as_mut() {
            d.set_job_key(key);
        }
    }

    async fn identity(&mut self) -> DriverResult<kkm_core::DeviceIdentity> {
        self.inner().await?.identity().await
    }
    async fn status(&mut self) -> DriverResult<kkm_core::DeviceStatus> {
        self.inner().await?.status().await
    }
    async fn fn_status(&mut self) -> DriverResult<kkm_core::FnStatus> {
        self.inner().await?.fn_status().await
    }
    async fn ofd_status(&mut self) -> DriverResult<kkm_core::OfdStatus> {
        self.inner().await?.ofd_status().await
    }
    async fn find_document(&mut self, number: u32) -> DriverResult<kkm_core::FiscalDocument> {
        self.inner().await?.find_document(number).await
    }
    async fn shift_totals(&mut self) -> DriverResult<kkm_core::ShiftTotals> {
        self.inner().await?.shift_totals().await
    }
    async fn open_shift(&mut self, cashier: Option<&kkm_core::Cashier>) -> DriverResult<kkm_core::FiscalResult> {
        self.inner().await?.open_shift(cashier).await
    }
    async fn close_shift(&mut self, cashier: Option<&kkm_core::Cashier>) -> DriverResult<kkm_core::FiscalResult> {
        self.inner().await?.close_shift(cashier).await
    }
    async fn x_report(&mut self) -> DriverResult<()> {
        self.inner().await?.x_report().await
    }
    async fn cash_in(&mut self, sum: kkm_core::Money) -> DriverResult<()> {
        self.inner().await?.cash_in(sum).await
    }
    async fn cash_out(&mut self, sum: kkm_core::Money) -> DriverResult<()> {
        self.inner().await?.cash_out(sum).await
    }
    async fn fiscalize_with(
        &mut self,
        receipt: &kkm_core::Receipt,
        before_close: kkm_core::BeforeClose<'_>,
    ) -> DriverResult<kkm_core::FiscalResult> {
        self.inner().await?.fiscalize_with(receipt, before_close).await
    }
    async fn continue_print(&mut self) -> DriverResult<()> {
        self.inner().await?.continue_print().await
    }
    async fn cash_moves(&mut self) -> DriverResult<(kkm_core::Money, kkm_core::Money)> {
        self.inner().await?.cash_moves().await
    }
    async fn receipt_content(&mut self, number: u32) -> DriverResult<kkm_core::tlv::ReceiptContent> {
        self.inner().await?.receipt_content(number).await
    }
    async fn cancel_receipt(&mut self) -> DriverResult<()> {
        self.inner().await?.cancel_receipt().await
    }
    async fn print_last_copy(&mut self) -> DriverResult<()> {
        self.inner().await?.print_last_copy().await
    }
    async fn print_text(&mut self, lines: &[String]) -> DriverResult<()> {
        self.inner().await?.print_text(lines).await
    }
    async fn open_drawer(&mut self) -> DriverResult<()> {
        self.inner().await?.open_drawer().await
    }

    async fn disconnect(&mut self) {
        if let Some(d) = self.inner.as_mut() {
            d.disconnect().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(p: &str) -> PortSpec {
        PortSpec::parse(p).unwrap()
    }

    #[test]
    fn the_port_picks_neva_01_fs_protocol_unless_told() {
        assert_eq!(family_for("neva-01-f", None, &port("http://10.0.0.5:8088")).unwrap(), ProtocolFamily::Umka);
        assert_eq!(family_for("neva-01-f", None, &port("COM3")).unwrap(), ProtocolFamily::Atol);
        assert_eq!(family_for("neva-01-f", None, &port("tcp:10.0.0.5:5555")).unwrap(), ProtocolFamily::Atol);
        assert_eq!(family_for("neva-01-f", Protocol::parse("atol-v2"), &port("COM3")).unwrap(), ProtocolFamily::Atol);
        assert_eq!(family_for("azur-01f", None, &port("COM3")).unwrap(), ProtocolFamily::Shtrih);
        assert_eq!(family_for("neva-01-f", Protocol::parse("umka"), &port("COM3")).unwrap_err().code(), "config.port_needs_http");
        assert_eq!(family_for("neva-01-f", Protocol::parse("atol"), &port("http://h")).unwrap_err().code(), "config.port_not_http");
        assert_eq!(family_for("azur-01f", Protocol::parse("umka"), &port("http://h")).unwrap_err().code(), "config.protocol_unsupported");
        assert_eq!(profile("neva-01-f").unwrap().family, ProtocolFamily::Umka, "УМКА is Neva-01-F's default");
        assert_eq!(profile_in("neva-01-f", ProtocolFamily::Atol).unwrap().family, ProtocolFamily::Atol);
    }
}
