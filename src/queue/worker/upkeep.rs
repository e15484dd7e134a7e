//! The worker's upkeep between jobs: its own health check of the device, and letting
//! the port go when there is no work.
//!
//! Why here: the worker owns the port, and everything it sends runs between its steps,
//! never inside one. So the health rules ([`crate::diagnostics::health`]) read the
//! device exactly where the API's reads do, and can never interleave with a receipt on
//! the wire. The reads are the cheap, non-printing ones `health::read_facts` makes.
//!
//! Releasing the port (`release_port_after_idle`): after that long with no job, no owed
//! copy and no request, the worker closes the port so the vendor's utility can open it,
//! and stops polling the device. A job (or a read the API asks for) opens it again; if
//! another program holds it, the queue waits with the reason «порт занят другой
//! программой» and prints once the port is free. The periodic health check then only
//! runs when the port can be opened, and closes it again at once.

use super::Worker;
use crate::diagnostics::health::{self, Finding};
use crate::queue::job::JobError;
use serde::Serialize;
use std::time::{Duration, Instant};
use kkm_core::DriverError;
use tokio::sync::{oneshot, watch};

/// The last health check of a device, as the API shows it (`"health"`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// When the check ran: RFC 3339 with the PC's offset, e.g. `2026-11-26T11:17:39+03:00`.
    pub checked_at: String,
    /// The findings, the most severe first.
    pub findings: Vec<HealthFinding>,
    /// What the register was registered with; `null` when its identity could not be read.
    pub registration: Option<HealthRegistration>,
}

/// The register's registration as it reports it; each part `null` when the driver
/// cannot read it (ATOL: no confirmed wire layout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HealthRegistration {
    /// Версия ФФД: `1.0`, `1.05`, `1.1` or `1.2`.
    #[schema(value_type = Option<String>, example = "1.05")]
    pub ffd_version: Option<kkm_core::FfdVersion>,
    /// Registered tax systems (tag 1062): `osn`, `usn_income`, `usn_income_outcome`,
    /// `envd`, `esn`, `patent`.
    #[schema(value_type = Option<Vec<String>>, example = json!(["usn_income"]))]
    pub tax_systems: Option<kkm_core::TaxSystems>,
}

impl From<&kkm_core::DeviceIdentity> for HealthRegistration {
    fn from(id: &kkm_core::DeviceIdentity) -> HealthRegistration {
        HealthRegistration { ffd_version: id.ffd_version, tax_systems: id.tax_systems }
    }
}

/// One finding of the health rules: what is wrong (or fine) and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HealthFinding {
    /// Stable code, e.g. `fn.expires_soon`, `ofd.blocking_soon`, `paper.out`.
    pub code: String,
    pub severity: HealthSeverity,
    /// For the cashier or engineer, in Russian.
    pub title_ru: String,
    pub title_en: String,
    /// What to do, in Russian, for the engineer: may name a command or a setting;
    /// empty when nothing needs doing.
    pub action_ru: String,
    /// What to do, in plain Russian, for the cashier's page: no commands, settings or
    /// Latin words; empty when nothing needs doing.
    pub cashier_action_ru: String,
}

/// `error` and `warning` need a person; `info` and `ok` do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthSeverity {
    Ok,
    Info,
    Warning,
    Error,
}

impl From<&Finding> for HealthFinding {
    fn from(f: &Finding) -> HealthFinding {
        // By the rules' own serialised name, so this API keeps its four values
        // whatever the rules call their most severe level.
        let severity = match serde_json::to_value(f.severity).ok().as_ref().and_then(|v| v.as_str()) {
            Some("ok") => HealthSeverity::Ok,
            Some("info") => HealthSeverity::Info,
            Some("warning") => HealthSeverity::Warning,
            _ => HealthSeverity::Error,
        };
        HealthFinding {
            code: f.code.to_string(),
            severity,
            title_ru: f.title_ru.clone(),
            title_en: f.title_en.clone(),
            action_ru: f.action_ru.clone(),
            cashier_action_ru: f.cashier_action_ru.clone(),
        }
    }
}

/// An error with the time the worker met it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimedError {
    /// RFC 3339 with the PC's offset.
    pub at: String,
    pub error: JobError,
}

/// Link errors kept per device for `GET /api/v1/diagnostics`.
pub const LINK_ERRORS_KEPT: usize = 5;

/// A link that comes back sooner than this after a check is not checked again at once.
const RECONNECT_CHECK_GAP: Duration = Duration::from_secs(60);

/// When a released port is not free, the health check is tried again after this.
const BUSY_RETRY: Duration = Duration::from_secs(60);

/// The worker's upkeep settings and timers.
pub struct Upkeep {
    health_every: Option<Duration>,
    /// The register's time zone, for the clock and shift-age rules.
    zone: health::DeviceZone,
    release_after: Option<Duration>,
    /// When the next health check is due; `None` = none planned.
    health_due: Option<Instant>,
    last_work: Instant,
    released: bool,
    last_check: Option<Instant>,
    /// The open shift's start as found last time: read again only for a new shift.
    shift_opening: Option<health::ShiftOpening>,
}

impl Upkeep {
    pub fn new(health_every: Option<Duration>, release_after: Option<Duration>, zone: health::DeviceZone) -> Upkeep {
        // The first check runs once the device is first seen online.
        Upkeep { health_every, zone, release_after, health_due: None, last_work: Instant::now(), released: false, last_check: None, shift_opening: None }
    }

    fn health_is_due(&self) -> bool {
        self.health_due.is_some_and(|t| Instant::now() >= t)
    }

    fn plan_next(&mut self, after: Option<Duration>) {
        self.health_due = after.map(|d| Instant::now() + d);
    }
}

impl Worker {
    pub(super) fn upkeep_released(&self) -> bool {
        self.upkeep.released
    }

    /// Something happened on the port for a job or a request: the idle time restarts.
    pub(super) fn worked(&mut self) {
        self.upkeep.last_work = Instant::now();
        if self.upkeep.released {
            self.upkeep.released = false;
            self.state().port_released = false;
        }
    }

    /// The device came online (first connect or after a lost link): check it now, or
    /// a minute after the last check if the link flaps.
    pub(super) fn connected(&mut self) {
        if self.upkeep.health_every.is_some() {
            let now = Instant::now();
            let soonest = self.upkeep.last_check.map_or(now, |t| (t + RECONNECT_CHECK_GAP).max(now));
            self.upkeep.health_due = Some(self.upkeep.health_due.map_or(soonest, |d| d.min(soonest)));
        }
    }

    /// After a step that left the device idle or parked: the health check if due, then
    /// the port's release if it has been idle long enough.
    pub(super) async fn between_steps(&mut self, idle: bool) {
        if self.upkeep.health_is_due() {
            self.check_health().await;
            self.upkeep.plan_next(self.upkeep.health_every);
        }
        let idle_long = self.upkeep.release_after.is_some_and(|d| self.upkeep.last_work.elapsed() >= d);
        if idle && idle_long && !self.upkeep.released {
            self.release().await;
        }
    }

    /// After a failed step: with release configured and nothing left to do (the job that
    /// reopened the port was cancelled), the port is let go again instead of being
    /// retried; a wait for a busy port no job needs is no longer shown.
    pub(super) async fn after_offline(&mut self) {
        let idle_long = self.upkeep.release_after.is_some_and(|d| self.upkeep.last_work.elapsed() >= d);
        if !idle_long || self.upkeep.released || self.has_work() {
            return;
        }
        if matches!(self.parked, Some((super::ParkCause::PortBusy, _))) {
            self.unpark();
        }
        self.release().await;
    }

    async fn release(&mut self) {
        self.driver.disconnect().await;
        self.upkeep.released = true;
        self.state().port_released = true;
        tracing::info!(device = %self.device, "port released after idle time; it is opened again for the next job");
    }

    /// Is there anything for the device to do: a job queued or in flight, or an owed copy?
    /// A database error counts as work, so the step reports it.
    fn has_work(&self) -> bool {
        let jobs = self.store.next_for(&self.device).map_or(true, |j| j.is_some());
        jobs || self.store.copies_pending(&self.device).map_or(true, |c| !c.is_empty())
    }

    /// With the port released: waits for work, a request, the next health check or
    /// shutdown, without touching the port. `false` when there is work (the port is
    /// to be opened again).
    pub(super) async fn wait_released(&mut self, shutdown: &mut watch::Receiver<bool>) -> bool {
        if self.has_work() {
            tracing::info!(device = %self.device, "work for a released port: opening it again");
            self.worked();
            return false;
        }
        if self.upkeep.health_is_due() {
            self.check_health_released().await;
            return true;
        }
        let until_health = self.upkeep.health_due.map(|t| t.saturating_duration_since(Instant::now()));
        let wait = until_health.map_or(Duration::from_secs(2), |d| d.min(Duration::from_secs(2)));
        self.pause(wait, shutdown).await;
        true
    }

    /// The periodic check on a released port: only if the port opens (another program
    /// may hold it), and the port is closed again right after.
    async fn check_health_released(&mut self) {
        match self.driver.status().await {
            Ok(_) => {
                self.check_health().await;
                self.upkeep.plan_next(self.upkeep.health_every);
            }
            Err(e) => {
                tracing::info!(device = %self.device, "health check skipped: the released port is not free ({e})");
                self.upkeep.plan_next(self.upkeep.health_every.map(|d| d.min(BUSY_RETRY)));
            }
        }
        self.driver.disconnect().await;
    }

    /// A health check the API asked for: only if the device answers its status (a
    /// released port may be held by another program, a device may be off), so a check
    /// that could only list read errors does not replace the last real one. A released
    /// port stays released.
    pub(super) async fn health_on_request(&mut self, reply: oneshot::Sender<Result<Health, DriverError>>) {
        match self.driver.status().await {
            Ok(_) => {
                let check = self.check_health().await;
                tokio::spawn(async move {
                    let h = check.await.map_err(|e| DriverError::Protocol(format!("the health check stopped: {e}")));
                    let _ = reply.send(h);
                });
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
        if self.upkeep.released {
            self.driver.disconnect().await;
        }
    }

    /// Runs the health rules on the device. Only the register's reads happen here, on
    /// the worker; the ОФД host's reachability (a network wait) and the judging run in
    /// their own task, so jobs do not wait for them. The result is kept for the API.
    pub(super) async fn check_health(&mut self) -> tokio::task::JoinHandle<Health> {
        let mut facts = health::read_device_facts_again(self.driver.as_mut(), &mut self.upkeep.shift_opening).await;
        facts.timezone = self.upkeep.zone;
        self.upkeep.last_check = Some(Instant::now());
        let (state, device) = (self.handle.state.clone(), self.device.clone());
        tokio::spawn(async move {
            health::probe_ofd(&mut facts).await;
            let findings = health::evaluate(&facts, crate::diagnostics::pc_now());
            let findings: Vec<HealthFinding> = findings.iter().map(HealthFinding::from).collect();
            let registration = facts.identity.as_ref().map(HealthRegistration::from);
            let h = Health { checked_at: crate::diagnostics::pc_now_rfc3339(), findings, registration };
            let worst = h.findings.first().map(|f| f.code.as_str());
            tracing::debug!(%device, findings = h.findings.len(), ?worst, "health checked");
            state.lock().unwrap_or_else(|p| p.into_inner()).health = Some(h.clone());
            h
        })
    }

    /// Keeps a link error, with its time, among the last few.
    pub(super) fn note_link_error(&mut self, e: JobError) {
        let mut s = self.state();
        let at = crate::diagnostics::pc_now_rfc3339();
        // The same error again (a backoff retry) only moves its time.
        if let Some(last) = s.link_errors.last_mut().filter(|l| l.error.code == e.code) {
            last.at = at;
            return;
        }
        if s.link_errors.len() >= LINK_ERRORS_KEPT {
            s.link_errors.remove(0);
        }
        s.link_errors.push(TimedError { at, error: e });
    }
}
