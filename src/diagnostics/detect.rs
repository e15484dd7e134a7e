//! Protocol and speed detection.
//!
//! A field engineer often does not know what a unit speaks or at what speed: a Neva-01-F
//! we assume speaks ATOL may turn out to speak something else, and a port may be held
//! by another program. [`detect`] opens the port at each usual speed and asks, in turn:
//!
//! 1. Shtrih-M: ENQ, then "get device type" (0xFC);
//! 2. ATOL v3: an FE-framed buffer ABORT and a "device type" request;
//! 3. ATOL v2: the ENQ/ACK handshake and a status request.
//!
//! None of these can print or fiscalise. Each probe has a short deadline and the whole
//! detection a total budget, so a silent port or a port full of garbage ends with a
//! clear answer in bounded time. A port held by another program fails at once with
//! `link.port_busy`.

use kkm_core::error::{DriverError, LinkFailure};
use kkm_core::port::{self, PortSpec};
use kkm_core::ProtocolFamily;
use serde::Serialize;
use std::time::{Duration, Instant};

/// Speeds to try, most common first (the union of both families' lists).
pub const BAUDS: [u32; 7] = [115_200, 57_600, 38_400, 19_200, 9_600, 4_800, 2_400];

/// How long one probe may wait for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_millis(400);

#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    pub protocol: ProtocolFamily,
    /// `shtrih`, `atol-v3` or `atol-v2`.
    pub link: &'static str,
    /// `None` over TCP.
    pub baud: Option<u32>,
    pub model_id: u16,
    pub model_name: String,
    /// What the unit is: the model id alone can be shared (Shtrih 45), so the name counts.
    pub unit: String,
    /// Our profile for this unit, if we have one.
    pub profile: Option<&'static str>,
}

fn profile_for(family: ProtocolFamily, model_id: u16, name: &str) -> (String, Option<&'static str>) {
    if family == ProtocolFamily::Shtrih {
        if let Some(u) = kkm_shtrih::profile::identify(model_id, name) {
            return (u.name.to_string(), u.profile.map(|p| p.key));
        }
    }
    let p = crate::devices::profiles().into_iter().find(|p| p.family == family && p.model_ids.contains(&model_id));
    (p.map_or_else(|| name.to_string(), |p| p.name.to_string()), p.map(|p| p.key))
}

/// Finds what speaks on `port`, within `budget`.
pub async fn detect(spec: &PortSpec, budget: Duration) -> Result<Detection, DriverError> {
    let started = Instant::now();
    let bauds: Vec<Option<u32>> = if spec.is_tcp() { vec![None] } else { BAUDS.iter().copied().map(Some).collect() };
    let mut tried = Vec::new();
    for baud in bauds {
        for link in ["shtrih", "atol-v3", "atol-v2"] {
            if started.elapsed() >= budget {
                return Err(not_found(spec, &tried, "time budget spent"));
            }
            // A fresh connection per probe: a half-read answer of one protocol must not
            // confuse the next probe.
            let stream = port::open(spec, baud.unwrap_or(115_200), PROBE_TIMEOUT * 4).await?;
            let found = match link {
                "shtrih" => kkm_shtrih::probe::probe(stream, PROBE_TIMEOUT)
                    .await
                    .map(|a| (ProtocolFamily::Shtrih, a.model_id, a.model_name)),
                "atol-v3" => kkm_atol::probe::probe_v3(stream, PROBE_TIMEOUT)
                    .await
                    .map(|a| (ProtocolFamily::Atol, a.model_id, a.model_name)),
                _ => kkm_atol::probe::probe_v2(stream, PROBE_TIMEOUT)
                    .await
                    .map(|a| (ProtocolFamily::Atol, a.model_id, a.model_name)),
            };
            tried.push(format!("{link}@{}", baud.map_or("tcp".to_string(), |b| b.to_string())));
            if let Some((protocol, model_id, model_name)) = found {
                let (unit, profile) = profile_for(protocol, model_id, &model_name);
                return Ok(Detection { protocol, link, baud, model_id, model_name, unit, profile });
            }
        }
    }
    Err(not_found(spec, &tried, "no answer"))
}

fn not_found(spec: &PortSpec, tried: &[String], why: &str) -> DriverError {
    DriverError::link(LinkFailure::NoAnswer, format!("{spec}: {why}; tried {}", tried.join(", ")))
}
