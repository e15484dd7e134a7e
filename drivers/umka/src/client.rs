//! The HTTP transport: Basic auth, one deadline per operation, bounded bodies.
//!
//! Requests go to the unit on the local network over plain HTTP/1.1 (no proxy, even if
//! the environment names one). Each request opens its own connection: a pooled
//! connection that the unit closed while idle would turn a `fiscalcheck` into an
//! "unknown outcome" for nothing.
//!
//! Failures map onto the link errors every driver shares: nothing listening or no
//! answer in time → `link.no_answer`; a connection cut mid-answer → `link.disconnected`;
//! an answer that is not the API's → `link.protocol`. HTTP 401 is a configuration error
//! ([`crate::errors::WRONG_CREDENTIALS`]), never "no device".

use crate::errors;
use kkm_core::error::{DriverError, DriverResult, LinkFailure};
use kkm_core::port::PortSpec;
use std::time::Duration;

/// The largest answer accepted. A receipt with 100 items and captions is well under it.
pub const MAX_ANSWER: usize = 1 << 20;
/// The largest request we send.
pub const MAX_REQUEST: usize = 512 * 1024;

/// The cashier the unit knows (HTTP Basic auth). On УМКА units cashiers are 1–99 with
/// the password equal to the number by default; 99 is the administrator; passwords are
/// digits only, at most 8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub cashier: u32,
    pub password: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials { cashier: 1, password: "1".into() }
    }
}

impl Credentials {
    pub fn new(cashier: u32, password: Option<&str>) -> Credentials {
        Credentials { cashier, password: password.map_or_else(|| cashier.to_string(), str::to_string) }
    }
    pub fn administrator() -> Credentials {
        Credentials::new(99, None)
    }
}

/// Deadlines per kind of request: the whole exchange, connect to last byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// `cashboxstatus.json`, `fiscaldoc.json` without printing.
    pub read: Duration,
    /// Requests that print: receipts, shift documents, copies.
    pub print: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect: Duration::from_secs(3), read: Duration::from_secs(8), print: Duration::from_secs(30) }
    }
}

pub struct Client {
    base: String,
    http: reqwest::Client,
    credentials: Credentials,
}

fn link(failure: LinkFailure, detail: String) -> DriverError {
    DriverError::link(failure, detail)
}

impl Client {
    pub fn new(spec: &PortSpec, credentials: Credentials, timeouts: Timeouts) -> DriverResult<Client> {
        let base = spec.http_base().ok_or(DriverError::Unsupported("the УМКА protocol needs an http://HOST:PORT port"))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .connect_timeout(timeouts.connect)
            .user_agent(concat!("kkm-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DriverError::Protocol(format!("HTTP client: {e}")))?;
        Ok(Client { base, http, credentials })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path` (with its query), within `deadline`.
    pub async fn get(&self, path: &str, deadline: Duration) -> DriverResult<Vec<u8>> {
        self.exchange(self.http.get(format!("{}{path}", self.base)), path, deadline).await
    }

    /// `POST path` with a JSON body, within `deadline`.
    pub async fn post(&self, path: &str, body: Vec<u8>, deadline: Duration) -> DriverResult<Vec<u8>> {
        if body.len() > MAX_REQUEST {
            return Err(DriverError::Protocol(format!("request of {} bytes is over the {MAX_REQUEST}-byte bound", body.len())));
        }
        let req = self.http.post(format!("{}{path}", self.base)).header("Content-Type", "application/json; charset=utf-8").body(body);
        self.exchange(req, path, deadline).await
    }

    async fn exchange(&self, req: reqwest::RequestBuilder, path: &str, deadline: Duration) -> DriverResult<Vec<u8>> {
        let what = format!("{}{path}", self.base);
        let req = req
            .basic_auth(self.credentials.cashier, Some(&self.credentials.password))
            .header("Accept", "application/json");
        match tokio::time::timeout(deadline, async {
            let mut resp = req.send().await.map_err(|e| map_error(&e, &what))?;
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED {
                return Err(errors::wrong_credentials());
            }
            if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
                return Err(DriverError::Protocol(format!("{what}: answer over {MAX_ANSWER} bytes")));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| map_error(&e, &what))? {
                if body.len() + chunk.len() > MAX_ANSWER {
                    return Err(DriverError::Protocol(format!("{what}: answer over {MAX_ANSWER} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
            if !status.is_success() {
                return Err(DriverError::Protocol(format!("{what}: HTTP {status}")));
            }
            Ok(body)
        })
        .await
        {
            Ok(r) => r,
            Err(_) => Err(link(LinkFailure::NoAnswer, format!("{what}: no answer within {} ms", deadline.as_millis()))),
        }
    }
}

fn map_error(e: &reqwest::Error, what: &str) -> DriverError {
    let mut detail = format!("{what}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(&format!(": {s}"));
        source = s.source();
    }
    if e.is_timeout() {
        link(LinkFailure::NoAnswer, detail)
    } else if e.is_connect() {
        // Nothing listening, host unreachable: the request was never sent.
        link(LinkFailure::NoAnswer, detail)
    } else {
        link(LinkFailure::Disconnected, detail)
    }
}
