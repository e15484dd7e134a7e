//! Builds the driver for a device: model → profile → protocol crate.
//!
//! The model's profile gives the default protocol family; config or the command line
//! may override it (`protocol = "atol"`), because we only assume what Neva-01-F speaks.

use kkm_core::error::{DriverError, DriverResult};
use kkm_core::port::PortSpec;
use kkm_core::{DriverBox, ModelProfile, ProtocolFamily};

/// The model profiles we ship.
pub fn profiles() -> Vec<&'static ModelProfile> {
    vec![&kkm_shtrih::AZUR_01F, &kkm_atol::NEVA_01_F]
}

pub fn profile(key: &str) -> Option<&'static ModelProfile> {
    profiles().into_iter().find(|p| p.key.eq_ignore_ascii_case(key))
}

/// A protocol choice from config or the command line: `shtrih`, `atol` (v3 link) or
/// `atol-v2` (the older STX/ETX link).
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
    open_driver_with_passwords(&dev.model, protocol, &port, dev.baud, dev.operator_password, dev.admin_password)
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
    if model.eq_ignore_ascii_case("auto") {
        return Ok(Box::new(AutoDriver::new(port.clone()).with_passwords(operator, admin)));
    }
    let profile = profile(model).ok_or_else(|| unknown_model(model))?;
    let atol_v2 = protocol.is_some_and(|p| p.atol_v2);
    match protocol.map_or(profile.family, |p| p.family) {
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
    inner: Option<DriverBox>,
    operator: Option<u32>,
    admin: Option<u32>,
}

impl AutoDriver {
    pub fn new(port: PortSpec) -> AutoDriver {
        AutoDriver { port, inner: None, operator: None, admin: None }
    }

    /// The configured passwords, handed to the driver once the model is detected.
    pub fn with_passwords(mut self, operator: Option<u32>, admin: Option<u32>) -> AutoDriver {
        self.operator = operator;
        self.admin = admin;
        self
    }

    async fn inner(&mut self) -> Result<&mut DriverBox, DriverError> {
        if self.inner.is_none() {
            let d = crate::diagnostics::detect::detect(&self.port, std::time::Duration::from_secs(30)).await?;
            let key = d.profile.ok_or(DriverError::Unsupported("detected a model kkm-agent has no profile for"))?;
            tracing::info!(port = %self.port, model = key, baud = ?d.baud, "detected {} ({})", d.model_name, d.link);
            let protocol = Protocol { family: d.protocol, atol_v2: d.link == "atol-v2" };
            self.inner = Some(open_driver_with_passwords(key, Some(protocol), &self.port, d.baud, self.operator, self.admin)?);
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
