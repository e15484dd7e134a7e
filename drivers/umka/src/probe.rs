//! Harmless identification for `detect`: `GET /cashboxstatus.json`, nothing that prints.

use crate::client::{Client, Credentials, Timeouts};
use crate::codec::{self, CashboxStatus};
use kkm_core::error::{DriverError, DriverResult};
use kkm_core::port::PortSpec;
use std::time::Duration;

/// What answered on an HTTP port.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// Nothing listens, or it is not the УМКА API.
    Nothing,
    /// The unit answered its status with these credentials.
    Found { status: Box<CashboxStatus>, credentials: Credentials },
}

/// The credentials to try, in order: the configured ones, then the platform's defaults
/// (cashier 1 and administrator 99, each with its number as the password).
pub fn candidates(configured: Option<&Credentials>) -> Vec<Credentials> {
    let mut v: Vec<Credentials> = configured.cloned().into_iter().collect();
    for c in [Credentials::default(), Credentials::administrator()] {
        if !v.contains(&c) {
            v.push(c);
        }
    }
    v
}

/// Asks `spec` for its status with each of `credentials`. All refused with 401 is an
/// error ("wrong password"), not "nothing there".
pub async fn probe(spec: &PortSpec, credentials: &[Credentials], timeout: Duration) -> DriverResult<Probe> {
    let timeouts = Timeouts { connect: timeout, read: timeout * 2, print: timeout * 2 };
    let mut refused = 0;
    for c in credentials {
        let client = Client::new(spec, c.clone(), timeouts)?;
        match client.get("/cashboxstatus.json", timeouts.read).await {
            Ok(body) => {
                return Ok(match codec::parse_status(&body) {
                    Ok(status) => Probe::Found { status: Box::new(status), credentials: c.clone() },
                    Err(_) => Probe::Nothing,
                });
            }
            Err(DriverError::Device { raw: 401, .. }) => refused += 1,
            Err(e) if e.is_link() => return Ok(Probe::Nothing),
            Err(e) => return Err(e),
        }
    }
    if refused > 0 {
        let tried: Vec<String> = credentials.iter().map(|c| c.cashier.to_string()).collect();
        tracing::warn!(port = %spec, "УМКА answered 401 to cashiers {}", tried.join(", "));
        return Err(crate::errors::wrong_credentials());
    }
    Ok(Probe::Nothing)
}
