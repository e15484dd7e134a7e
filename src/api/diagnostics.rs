//! `GET /api/v1/diagnostics`: what the running daemon knows about its devices and
//! itself, for a field engineer, `kkm-agent device … check` and the cashier page.
//!
//! It never scans ports: the daemon holds them. Each device's `health` is the last
//! check its worker ran (after connecting, then every `health_check_every`);
//! `?refresh=true` asks every worker for a new one first, run between jobs like every
//! other read, and waits at most [`REFRESH_WAIT`] for it.

use super::problem::{internal, Problem};
use super::{AppState, DeviceEntry};
use crate::queue::worker::{DeviceRequest, Health, TimedError};
use crate::queue::JobError;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long `?refresh=true` waits for a device's new check (a job on the wire finishes
/// first) before answering with the last one.
pub const REFRESH_WAIT: Duration = Duration::from_secs(40);

/// One device as the daemon sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceDiagnostics {
    pub id: String,
    pub model: String,
    pub port: String,
    /// The device answered its last status request.
    pub online: bool,
    /// The port is closed after idle time (`release_port_after_idle`).
    pub port_released: bool,
    /// Why the queue waits for a person (paper, shift over 24 h, port busy…), if it does.
    pub parked: Option<JobError>,
    pub job_in_progress: Option<i64>,
    /// Jobs waiting to print.
    pub queued: u64,
    /// Jobs whose outcome a person must check.
    pub needs_attention: u64,
    pub last_error: Option<JobError>,
    /// The last few link errors with their time, oldest first.
    pub link_errors: Vec<TimedError>,
    /// Why `?refresh=true` could not check the device now (the port is held by another
    /// program, the device does not answer in time); `health` is then the last check.
    pub refresh_error: Option<JobError>,
    /// The last health check; `null` before the first one.
    pub health: Option<Health>,
}

/// The agent's own state and its devices'.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Diagnostics {
    /// When this answer was made: RFC 3339 with the PC's offset.
    pub generated_at: String,
    pub agent_version: String,
    /// Jobs that need a person, over all devices.
    pub needs_attention: u64,
    pub devices: Vec<DeviceDiagnostics>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct DiagnosticsQuery {
    /// Run a health check on every device now (between jobs) instead of answering with
    /// the last one. Waits at most 40 s per device.
    pub refresh: Option<bool>,
}

/// Asks the device's worker for a health check now.
async fn refresh(d: &DeviceEntry) -> Result<Health, JobError> {
    let ask = d.handle.request(|reply| DeviceRequest::Health { reply });
    match tokio::time::timeout(REFRESH_WAIT, ask).await {
        Ok(Ok(h)) => Ok(h),
        Ok(Err(e)) => {
            tracing::warn!(device = %d.id, "health refresh failed: {e}");
            Err((&e).into())
        }
        Err(_) => {
            tracing::warn!(device = %d.id, "health refresh timed out");
            Err(JobError::new(
                "diagnostics.refresh_timeout",
                "ККТ занята: проверка не успела выполниться",
                "The device was busy: the check did not finish in time",
                "Повторите проверку после печати чеков из очереди.",
            ))
        }
    }
}

/// The daemon's devices with their last health check, parked queues, jobs that need a
/// person and recent link errors. No port is scanned.
#[utoipa::path(get, path = "/api/v1/diagnostics", params(DiagnosticsQuery),
    responses((status = 200, body = Diagnostics),
    (status = 400, body = Problem, content_type = "application/problem+json", description = "Bad query"),
    (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn diagnostics(State(s): State<AppState>, Query(q): Query<DiagnosticsQuery>) -> Result<Json<Diagnostics>, Problem> {
    let fresh: Vec<Option<Result<Health, JobError>>> = if q.refresh.unwrap_or(false) {
        // Each device's worker runs its check at once; the answers are collected in order.
        let asks: Vec<_> = s.devices.iter().cloned().map(|d| tokio::spawn(async move { refresh(&d).await })).collect();
        let mut out = Vec::with_capacity(asks.len());
        for a in asks {
            out.push(a.await.ok());
        }
        out
    } else {
        vec![None; s.devices.len()]
    };
    let mut devices = Vec::with_capacity(s.devices.len());
    let mut needs_attention = 0;
    for (d, fresh) in s.devices.iter().zip(fresh) {
        let (fresh, refresh_error) = match fresh {
            Some(Ok(h)) => (Some(h), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        let id = d.id.clone();
        let counts = s.store.blocking(move |st| st.status_counts(&id)).await.map_err(internal)?;
        let count = |status: &str| counts.iter().find(|(k, _)| k == status).map_or(0, |(_, n)| *n);
        let st = d.handle.snapshot();
        needs_attention += count("needs_attention");
        devices.push(DeviceDiagnostics {
            id: d.id.clone(),
            model: d.model.clone(),
            port: d.port.clone(),
            online: st.online,
            port_released: st.port_released,
            parked: st.parked,
            job_in_progress: st.job_in_progress,
            queued: count("queued") + count("in_flight"),
            needs_attention: count("needs_attention"),
            last_error: st.last_error,
            link_errors: st.link_errors,
            refresh_error,
            health: fresh.or(st.health),
        });
    }
    Ok(Json(Diagnostics {
        generated_at: crate::diagnostics::pc_now_rfc3339(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        needs_attention,
        devices,
    }))
}
