//! Builds the driver for a device: model → profile → protocol crate.
//!
//! The model's profile gives the default protocol family; config or the command line
//! may override it (`protocol = "atol"`), because we only assume what Neva-01-F speaks.

use kkm_core::error::DriverError;
use kkm_core::port::PortSpec;
use kkm_core::{DriverBox, ModelProfile, ProtocolFamily};

/// The model profiles we ship.
pub fn profiles() -> Vec<&'static ModelProfile> {
    vec![&kkm_shtrih::AZUR_01F, &kkm_atol::NEVA_01_F]
}

pub fn profile(key: &str) -> Option<&'static ModelProfile> {
    profiles().into_iter().find(|p| p.key.eq_ignore_ascii_case(key))
}

fn unknown_model(key: &str) -> DriverError {
    DriverError::Invalid(kkm_core::ValidationError {
        code: "config.unknown_model",
        ru: format!("Неизвестная модель ККТ {key:?}; поддерживаются: azur-01f, neva-01-f"),
        en: format!("Unknown model {key:?}; supported: azur-01f, neva-01-f"),
    })
}

/// Opens (lazily: no I/O happens here) a driver for `model` on `port`.
pub fn open_driver(
    model: &str,
    protocol: Option<ProtocolFamily>,
    port: &PortSpec,
    baud: Option<u32>,
) -> Result<DriverBox, DriverError> {
    open_driver_with_passwords(model, protocol, port, baud, None, None)
}

/// As [`open_driver`], with the operator and administrator passwords from config.
pub fn open_driver_with_passwords(
    model: &str,
    protocol: Option<ProtocolFamily>,
    port: &PortSpec,
    baud: Option<u32>,
    operator: Option<u32>,
    admin: Option<u32>,
) -> Result<DriverBox, DriverError> {
    let profile = profile(model).ok_or_else(|| unknown_model(model))?;
    match protocol.unwrap_or(profile.family) {
        ProtocolFamily::Shtrih => Ok(Box::new(
            kkm_shtrih::ShtrihDriver::new(port.clone(), baud, profile)
                .with_passwords(operator.unwrap_or(30), admin.unwrap_or(30)),
        )),
        ProtocolFamily::Atol => Ok(Box::new(
            kkm_atol::AtolDriver::new(port.clone(), baud, profile).with_password(admin.or(operator).unwrap_or(30)),
        )),
    }
}
