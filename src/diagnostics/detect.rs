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
//! On a network unit it also asks the УМКА HTTP API (the working assumption for
//! Neva-01-F): `GET /cashboxstatus.json` with the configured cashier, then cashiers 1
//! and 99 (default passwords). An `http://` port is asked only that; a `tcp:` port on
//! 8088 is asked that first, any other `tcp:` port after the byte protocols (on its own
//! port and on 8088). A unit that refuses every login (HTTP 401) is reported as a wrong
//! password, never as "no device".
//!
//! None of these can print or fiscalise. Each probe has a short deadline and the whole
//! detection a total budget, so a silent port or a port full of garbage ends with a
//! clear answer in bounded time. A port held by another program fails at once with
//! `link.port_busy`.

use kkm_core::error::{DriverError, LinkFailure};
use kkm_core::port::{self, PortSpec, DEFAULT_HTTP_PORT};
use kkm_umka::client::Credentials;
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
    /// For an HTTP unit: the port to configure, `http://HOST:PORT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
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
    detect_with(spec, budget, None).await
}

/// Asks an HTTP unit for its status (see the module docs).
async fn probe_http(spec: &PortSpec, creds: Option<&Credentials>) -> Result<Option<Detection>, DriverError> {
    match kkm_umka::probe::probe(spec, &kkm_umka::probe::candidates(creds), PROBE_TIMEOUT * 2).await? {
        kkm_umka::probe::Probe::Nothing => Ok(None),
        kkm_umka::probe::Probe::Found { status, credentials } => {
            if credentials.cashier != creds.map_or(1, |c| c.cashier) {
                tracing::info!(port = %spec, "the unit answered cashier {} (default password)", credentials.cashier);
            }
            let profile = kkm_umka::profile::is_neva(&status.modelstr).then_some(kkm_umka::NEVA_01_F_UMKA.key);
            Ok(Some(Detection {
                protocol: ProtocolFamily::Umka,
                link: "umka-http",
                baud: None,
                model_id: u16::try_from(status.model).unwrap_or(0),
                model_name: status.modelstr.clone(),
                unit: status.modelstr.clone(),
                profile,
                url: spec.http_base(),
            }))
        }
    }
}

/// [`detect`] with the УМКА cashier to try first.
pub async fn detect_with(spec: &PortSpec, budget: Duration, creds: Option<&Credentials>) -> Result<Detection, DriverError> {
    let started = Instant::now();
    if spec.is_http() {
        return probe_http(spec, creds).await?.ok_or_else(|| not_found(spec, &["umka-http".into()], "no УМКА API answered"));
    }
    let http_ports: Vec<PortSpec> = match spec {
        PortSpec::Tcp { host, port } => {
            let mut v = vec![PortSpec::Http { host: host.clone(), port: *port }];
            if *port != DEFAULT_HTTP_PORT {
                v.push(PortSpec::Http { host: host.clone(), port: DEFAULT_HTTP_PORT });
            }
            v
        }
        _ => Vec::new(),
    };
    // On the УМКА port, HTTP first: bytes of the other protocols only earn 400s there.
    let http_first = matches!(spec, PortSpec::Tcp { port, .. } if *port == DEFAULT_HTTP_PORT);
    if http_first {
        if let Some(d) = probe_http(&http_ports[0], creds).await? {
            return Ok(d);
        }
    }
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
                return Ok(Detection { protocol, link, baud, model_id, model_name, unit, profile, url: None });
            }
        }
    }
    for http in http_ports.iter().skip(usize::from(http_first)) {
        if started.elapsed() >= budget {
            break;
        }
        tried.push(format!("umka-http@{http}"));
        if let Some(d) = probe_http(http, creds).await? {
            return Ok(d);
        }
    }
    Err(not_found(spec, &tried, "no answer"))
}

fn not_found(spec: &PortSpec, tried: &[String], why: &str) -> DriverError {
    DriverError::link(LinkFailure::NoAnswer, format!("{spec}: {why}; tried {}", tried.join(", ")))
}
