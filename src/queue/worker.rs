//! One worker per device: prints jobs in order, exactly once.
//!
//! The rule, in the order the worker applies it:
//!
//! 1. Look at the device first. No link: wait with backoff. A print that paper-out
//!    interrupted: finish it (Shtrih B0) before anything else. A receipt left open (a
//!    crash, the keypad): cancel it. Shift closed: open it (policy) or park. A
//!    device-wide problem (paper, shift over 24 h, ОФД block, ФН failure, clock, wrong
//!    password): park with the reason and the action, keep the jobs queued, and resume
//!    by itself when the device shows the cause is gone.
//! 2. Claim the job atomically (`queued` → `in_flight`), so a DELETE cannot cancel a
//!    job that is being sent. Before its first byte, commit the ФН's last document
//!    number and serial in the row; right before the command that makes a receipt
//!    fiscal, commit the `close_sent` marker.
//! 3. After *any* failure of a fiscal job (a lost link, a crash of this process, a
//!    device error) the job stays `in_flight`, and the next step asks the ФН (see
//!    [`super::recovery`]): another ФН → `needs_attention`; counter unchanged, or the
//!    receipt's close never sent → nothing of this job was fiscalised, retry; counter
//!    moved → the first document of the job's kind must be the job's own, else
//!    `needs_attention` with the document numbers. Never a guess, never a reprint.
//! 4. Only a definite refusal of the job by the device counts toward its attempts;
//!    lost links, crashes and device-wide problems do not.
//! 5. Paper that ran out after fiscalisation leaves the job done with a copy pending;
//!    nothing else prints until that copy (of that document) is printed.

use super::job::{Job, JobError, JobRequest, JobStatus};
use super::recovery::{content_matches, judge, Expect, Judgement, SCAN_LIMIT};
use super::store::Store;
use crate::config::Policy;
use kkm_core::{Condition, DeviceStatus, DriverBox, DriverError, ErrorClass, FiscalResult, ShiftState};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use kkm_core::{FiscalDocument, ShiftTotals};
use tokio::sync::{mpsc, oneshot, watch, Notify};

mod upkeep;
pub use upkeep::{Health, HealthFinding, HealthRegistration, HealthSeverity, TimedError, LINK_ERRORS_KEPT};

/// What the API shows about a device.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceState {
    pub online: bool,
    /// Why the queue waits for a person, with the action to take.
    pub parked: Option<JobError>,
    pub status: Option<DeviceStatus>,
    pub last_error: Option<JobError>,
    pub job_in_progress: Option<i64>,
    /// The port is closed after idle time (`release_port_after_idle`) so another
    /// program can use it; the next job opens it again.
    pub port_released: bool,
    /// The daemon's last health check of the device (shown beside the state).
    #[serde(skip)]
    pub health: Option<Health>,
    /// The last few errors that took the device offline (the link, the queue database),
    /// with their time, oldest first (for diagnostics).
    #[serde(skip)]
    pub link_errors: Vec<TimedError>,
}

#[derive(Clone)]
pub struct WorkerHandle {
    pub state: Arc<Mutex<DeviceState>>,
    pub notify: Arc<Notify>,
    /// Reads for the API (reconciliation): the worker owns the port, so they run
    /// between its steps and never interleave with a print.
    requests: mpsc::Sender<DeviceRequest>,
}

/// A read the API asks of the device, run by its worker between jobs.
pub enum DeviceRequest {
    /// The shift's counters, the ФН's serial and last document; optionally an X-report.
    Shift { x_report: bool, reply: oneshot::Sender<Result<ShiftRead, DriverError>> },
    /// Fiscal documents by number (at most [`MAX_DOCUMENTS_PER_REQUEST`]), receipts with
    /// their payment split where the protocol gives it.
    Documents { numbers: Vec<u32>, reply: oneshot::Sender<Result<Vec<ReadDocument>, DriverError>> },
    /// A health check now (the same reads and rules as the periodic one).
    Health { reply: oneshot::Sender<Result<Health, DriverError>> },
}

/// A document read back, and for a receipt its payments by [`kkm_core::PaymentType::ALL`]
/// order (cash net of change) when the protocol can read its content.
pub type ReadDocument = (FiscalDocument, Option<[i64; 5]>);

/// Reads a document and, for a receipt, its payment split (`None` when the protocol
/// cannot read a receipt's content).
pub async fn read_document(driver: &mut DriverBox, n: u32) -> Result<ReadDocument, DriverError> {
    let d = driver.find_document(n).await?;
    if d.kind != kkm_core::DocumentKind::Receipt {
        return Ok((d, None));
    }
    let split = match driver.receipt_content(n).await {
        Ok(c) => {
            let mut pays = [0i64; 5];
            for (t, m) in c.payments {
                if let Some(i) = kkm_core::PaymentType::ALL.iter().position(|x| *x == t) {
                    pays[i] = pays[i].saturating_add(m.0);
                }
            }
            // Only a split that adds up to the receipt's total is used.
            (Some(pays.iter().sum::<i64>()) == d.total.map(|t| t.0)).then_some(pays)
        }
        Err(e) if e.is_link() => return Err(e),
        Err(_) => None,
    };
    Ok((d, split))
}

/// Documents read in one worker step; larger reads are split so jobs are not held up.
pub const MAX_DOCUMENTS_PER_REQUEST: usize = 16;

/// What [`DeviceRequest::Shift`] answers.
#[derive(Debug, Clone)]
pub struct ShiftRead {
    pub totals: ShiftTotals,
    pub status: DeviceStatus,
    pub fn_serial: String,
    pub last_document: u32,
    /// With `x_report`: whether it printed.
    pub x_report: Option<Result<(), JobError>>,
}

impl WorkerHandle {
    pub fn snapshot(&self) -> DeviceState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sends a read to the worker and waits for its answer.
    pub async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, DriverError>>) -> DeviceRequest,
    ) -> Result<T, DriverError> {
        let (tx, rx) = oneshot::channel();
        let gone = || DriverError::Protocol("the device worker stopped".into());
        self.requests.send(make(tx)).await.map_err(|_| gone())?;
        self.notify.notify_one();
        rx.await.map_err(|_| gone())?
    }
}

enum Step {
    Idle,
    Progress,
    Offline,
    Parked,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ParkCause {
    Paper,
    ShiftExpired,
    ShiftClosed,
    /// A device-wide refusal the status cannot show (ОФД block, ФН failure, clock,
    /// password): probe again after a while by retrying the job, which costs nothing
    /// (a refusal changes nothing in the ФН and does not count as an attempt).
    Device,
    /// Another program holds the port: gone as soon as the device answers.
    PortBusy,
    Other,
}

pub struct Worker {
    device: String,
    driver: DriverBox,
    store: Store,
    policy: Policy,
    handle: WorkerHandle,
    requests: mpsc::Receiver<DeviceRequest>,
    parked: Option<(ParkCause, Instant)>,
    /// The error that left the in-flight job unresolved, if this process saw it.
    last_failure: Option<(i64, DriverError)>,
    /// Recovery steps of one job that could not read the ФН's answer (not a lost link):
    /// bounded, so a document the driver cannot decode does not block the queue forever.
    unreadable: (i64, u32),
    /// The health check and the idle release of the port.
    upkeep: upkeep::Upkeep,
}

/// What a worker does between jobs besides printing.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpkeepOptions {
    /// How often to run the health rules (`None`: never by itself).
    pub health_every: Option<Duration>,
    /// Close the port after this long without work (`None`: hold it).
    pub release_after: Option<Duration>,
    /// The register's time zone (its clock keeps local time).
    pub zone: crate::diagnostics::health::DeviceZone,
}

/// Sends of one job after which the worker stops retrying it.
const MAX_ATTEMPTS: u32 = 12;

fn reason(code: &str, ru: &str, en: &str, action: &str) -> JobError {
    JobError::new(code, ru, en, action)
}

fn cause_of(c: Option<Condition>) -> ParkCause {
    match c {
        Some(Condition::PaperOut | Condition::CoverOpen | Condition::AwaitingContinue) => ParkCause::Paper,
        Some(Condition::ShiftExpired) => ParkCause::ShiftExpired,
        Some(Condition::ShiftClosed) => ParkCause::ShiftClosed,
        Some(c) if c.is_device_wide() => ParkCause::Device,
        _ => ParkCause::Other,
    }
}

fn db(e: super::StoreError) -> DriverError {
    DriverError::Protocol(format!("queue database: {e}"))
}

/// Reads of one in-flight job's documents that may fail to decode before a person is
/// asked to look.
const MAX_UNREADABLE: u32 = 5;

/// What the job's document must look like, from the parsed body or, when the body no
/// longer parses (an upgrade), from the columns stored beside it.
fn expectation(job: &Job, req: Option<&JobRequest>) -> Option<Expect> {
    match req {
        Some(JobRequest::Receipt { receipt }) => {
            let total = receipt.items.iter().try_fold(kkm_core::Money::ZERO, |a, i| i.total().and_then(|t| a.checked_add(t)))?;
            Some(Expect::Receipt { operation: receipt.operation, total, reference: None })
        }
        Some(JobRequest::OpenShift) => Some(Expect::ShiftOpen),
        Some(JobRequest::CloseShift) => Some(Expect::ShiftClose),
        Some(_) => None,
        None => match (job.kind.as_str(), job.operation, job.total) {
            ("receipt", Some(operation), Some(total)) => Some(Expect::Receipt { operation, total, reference: None }),
            ("open_shift", ..) => Some(Expect::ShiftOpen),
            ("close_shift", ..) => Some(Expect::ShiftClose),
            _ => None,
        },
    }
}

impl Worker {
    pub fn spawn(
        device: String,
        driver: DriverBox,
        store: Store,
        policy: Policy,
        upkeep: UpkeepOptions,
        shutdown: watch::Receiver<bool>,
    ) -> (WorkerHandle, tokio::task::JoinHandle<()>) {
        let (tx, requests) = mpsc::channel(16);
        let handle = WorkerHandle { state: Arc::default(), notify: Arc::new(Notify::new()), requests: tx };
        let w = Worker {
            device,
            driver,
            store,
            policy,
            handle: handle.clone(),
            requests,
            parked: None,
            last_failure: None,
            unreadable: (0, 0),
            upkeep: upkeep::Upkeep::new(upkeep.health_every, upkeep.release_after, upkeep.zone),
        };
        let task = tokio::spawn(w.run(shutdown));
        (handle, task)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, DeviceState> {
        self.handle.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `wait` for new work, shutdown or an API request, and serves the
    /// request if one came.
    async fn pause(&mut self, wait: Duration, shutdown: &mut watch::Receiver<bool>) {
        let request = tokio::select! {
            _ = self.handle.notify.notified() => None,
            r = self.requests.recv() => r,
            _ = tokio::time::sleep(wait) => None,
            _ = shutdown.changed() => None,
        };
        if let Some(r) = request {
            self.serve(r).await;
        }
    }

    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(200);
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Reads for the API run between steps, never inside one.
            while let Ok(r) = self.requests.try_recv() {
                self.serve(r).await;
            }
            // A released port is left alone until there is work.
            if self.upkeep_released() && self.wait_released(&mut shutdown).await {
                continue;
            }
            // A step is never interrupted: a job in flight finishes (or stays in flight
            // for recovery) before shutdown is honoured.
            let was_online = self.state().online;
            let step = self.step().await;
            if !was_online && self.state().online {
                self.connected();
            }
            let wait = match step {
                Step::Progress => {
                    self.worked();
                    backoff = Duration::from_millis(200);
                    continue;
                }
                Step::Idle => {
                    self.between_steps(true).await;
                    Duration::from_secs(2)
                }
                Step::Parked => {
                    self.between_steps(false).await;
                    Duration::from_millis(700)
                }
                Step::Offline => {
                    self.after_offline().await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    backoff
                }
            };
            self.pause(wait, &mut shutdown).await;
        }
        self.driver.disconnect().await;
        tracing::info!(device = %self.device, "worker stopped");
    }

    /// Answers one read for the API. Reads do not print (except the X-report asked for)
    /// and change nothing in the ФН, so they are safe between any two steps.
    async fn serve(&mut self, r: DeviceRequest) {
        match r {
            DeviceRequest::Health { reply } => self.health_on_request(reply).await,
            DeviceRequest::Shift { x_report, reply } => {
                self.worked();
                let read = self.read_shift(x_report).await;
                let _ = reply.send(read);
            }
            DeviceRequest::Documents { numbers, reply } => {
                self.worked();
                let mut docs = Vec::with_capacity(numbers.len());
                let mut failed = None;
                for n in numbers.into_iter().take(MAX_DOCUMENTS_PER_REQUEST) {
                    match read_document(&mut self.driver, n).await {
                        Ok(d) => docs.push(d),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                let _ = reply.send(match failed {
                    Some(e) => Err(e),
                    None => Ok(docs),
                });
            }
        }
    }

    async fn read_shift(&mut self, x_report: bool) -> Result<ShiftRead, DriverError> {
        let status = self.driver.status().await?;
        let totals = self.driver.shift_totals().await?;
        let fs = self.driver.fn_status().await?;
        let printed = if x_report {
            Some(self.driver.x_report().await.map_err(|e| JobError::from(&e)))
        } else {
            None
        };
        Ok(ShiftRead { totals, status, fn_serial: fs.serial, last_document: fs.last_document_number, x_report: printed })
    }

    fn offline(&mut self, e: &DriverError) -> Step {
        let why: JobError = e.into();
        {
            let mut s = self.state();
            s.online = false;
            s.last_error = Some(why.clone());
        }
        self.note_link_error(why.clone());
        // Another program holds the port: the queue waits, and says why.
        if matches!(e, DriverError::Link { failure: kkm_core::error::LinkFailure::PortBusy, .. }) {
            if self.parked.is_none() {
                tracing::warn!(device = %self.device, "queue waits: the port is held by another program");
            }
            self.parked = Some((ParkCause::PortBusy, Instant::now()));
            self.state().parked = Some(why);
        }
        Step::Offline
    }

    fn park(&mut self, cause: ParkCause, why: JobError) -> Step {
        tracing::warn!(device = %self.device, code = %why.code, "queue parked: {}", why.title_ru);
        self.parked = Some((cause, Instant::now()));
        self.state().parked = Some(why);
        Step::Parked
    }

    fn unpark(&mut self) {
        if self.parked.take().is_some() {
            tracing::info!(device = %self.device, "queue resumed");
        }
        self.state().parked = None;
    }

    /// Is the parking cause gone, by the device's own status?
    fn park_resolved(&self, s: &DeviceStatus) -> bool {
        match self.parked {
            None => true,
            Some((ParkCause::Paper, _)) => s.paper_present,
            Some((ParkCause::ShiftExpired, _)) => s.shift != ShiftState::Expired,
            Some((ParkCause::ShiftClosed, _)) => s.shift == ShiftState::Open || self.policy.auto_open_shift,
            Some((ParkCause::Device, since)) => since.elapsed() > Duration::from_secs(10),
            Some((ParkCause::Other, since)) => since.elapsed() > Duration::from_secs(15),
            Some((ParkCause::PortBusy, _)) => true,
        }
    }

    async fn step(&mut self) -> Step {
        let status = match self.driver.status().await {
            Ok(s) => s,
            // The unit answered but refuses even its status (УМКА: a wrong password, HTTP
            // 401): a device-wide problem for a person, not a lost link.
            Err(e) if !e.is_link() && e.condition().is_some_and(Condition::is_device_wide) => {
                {
                    let mut st = self.state();
                    st.online = true;
                    st.last_error = Some((&e).into());
                }
                return self.park(cause_of(e.condition()), (&e).into());
            }
            Err(e) => return self.offline(&e),
        };
        {
            let mut st = self.state();
            st.online = true;
            st.status = Some(status.clone());
        }
        // A print that paper-out interrupted: the device refuses everything until it
        // is finished. That print is the pending copy, if one is owed.
        if status.awaiting_continue {
            tracing::info!(device = %self.device, "finishing a print interrupted by paper-out");
            return match self.driver.continue_print().await {
                Ok(()) => {
                    if let Err(e) = self.copies_printed_by_continue() {
                        return self.offline(&db(e));
                    }
                    Step::Progress
                }
                Err(e) if e.is_link() => self.offline(&e),
                Err(e) => self.park(cause_of(e.condition()), (&e).into()),
            };
        }
        if self.parked.is_some() && self.park_resolved(&status) {
            self.unpark();
        }
        // Copies owed after paper ran out mid-print: nothing else prints before them,
        // so the copy is of the customer's receipt, not of a later document.
        match self.store.copies_pending(&self.device) {
            Ok(jobs) if !jobs.is_empty() => {
                if !status.paper_present {
                    return self.park(ParkCause::Paper, paper_out_after_fiscal());
                }
                for j in jobs {
                    if let Err(step) = self.print_copy_of(&j).await {
                        return step;
                    }
                }
                return Step::Progress;
            }
            Ok(_) => {}
            Err(e) => return self.offline(&db(e)),
        }
        let job = match self.store.next_for(&self.device) {
            Ok(Some(j)) => j,
            Ok(None) => return Step::Idle,
            Err(e) => return self.offline(&db(e)),
        };
        self.state().job_in_progress = Some(job.id);
        let step = if job.status == JobStatus::InFlight {
            self.recover(job, &status).await
        } else if self.parked.is_some() {
            // Parked: only a shift job can get the queue moving again.
            match self.store.next_shift_job(&self.device) {
                Ok(Some(j)) => self.execute(j, &status).await,
                _ => Step::Parked,
            }
        } else {
            self.execute(job, &status).await
        };
        self.state().job_in_progress = None;
        step
    }

    /// Prints the copy owed for `job`, if the last document in the ФН is still its
    /// document; a copy of anything else would be a copy of someone else's receipt.
    async fn print_copy_of(&mut self, job: &Job) -> Result<(), Step> {
        let last = match self.driver.fn_status().await {
            Ok(f) => f.last_document_number,
            Err(e) if e.is_link() => return Err(self.offline(&e)),
            Err(e) => return Err(self.park(cause_of(e.condition()), (&e).into())),
        };
        let own = job.result.as_ref().map(|r| r.document_number) == Some(last);
        if own {
            match self.driver.print_last_copy().await {
                Ok(()) => {}
                Err(e) if e.is_link() => return Err(self.offline(&e)),
                Err(e) => return Err(self.park(cause_of(e.condition()), (&e).into())),
            }
        } else {
            tracing::warn!(device = %self.device, job = job.id, "the owed copy is no longer the last document; not printed");
        }
        self.store.clear_copy(job.id).map_err(|e| self.offline(&db(e)))
    }

    /// Continue-print finished the interrupted document; if that was the last
    /// fiscal document and a copy of it was owed, it is printed now.
    fn copies_printed_by_continue(&mut self) -> Result<(), super::StoreError> {
        for j in self.store.copies_pending(&self.device)? {
            self.store.clear_copy(j.id)?;
        }
        Ok(())
    }

    /// Gets the device ready for `req`. `Err` is the step to return instead.
    async fn prepare(&mut self, req: &JobRequest, status: &DeviceStatus) -> Result<(), Step> {
        if status.receipt_open {
            tracing::warn!(device = %self.device, "cancelling a receipt left open on the device");
            if let Err(e) = self.driver.cancel_receipt().await {
                return Err(if e.is_link() { self.offline(&e) } else { self.park(ParkCause::Other, (&e).into()) });
            }
        }
        let needs_shift = matches!(req, JobRequest::Receipt { .. } | JobRequest::CashIn { .. } | JobRequest::CashOut { .. });
        if !status.paper_present && !matches!(req, JobRequest::CloseShift) {
            return Err(self.park(
                ParkCause::Paper,
                reason("device.paper_out", "Нет чековой ленты", "Out of paper", "Вставьте новый рулон чековой ленты и закройте крышку."),
            ));
        }
        match (status.shift, needs_shift) {
            (ShiftState::Expired, true) | (ShiftState::Expired, false) if !matches!(req, JobRequest::CloseShift | JobRequest::XReport) => {
                Err(self.park(
                    ParkCause::ShiftExpired,
                    reason(
                        "device.shift_expired",
                        "Смена открыта больше 24 часов: ККТ не принимает чеки",
                        "The shift is over 24 hours old",
                        "Снимите Z-отчёт (закройте смену): кнопка «Закрыть смену (Z)» на странице кассы или в программе салона. Очередь продолжится сама.",
                    ),
                ))
            }
            (ShiftState::Closed, true) if self.policy.auto_open_shift => match self.driver.open_shift(None).await {
                Ok(r) => {
                    tracing::info!(device = %self.device, fd = r.document_number, "shift opened automatically");
                    Ok(())
                }
                Err(e) if e.is_link() => Err(self.offline(&e)),
                Err(e) => Err(self.park(cause_of(e.condition()), (&e).into())),
            },
            (ShiftState::Closed, true) => Err(self.park(
                ParkCause::ShiftClosed,
                reason(
                    "device.shift_closed",
                    "Смена закрыта, автооткрытие смены выключено",
                    "The shift is closed and auto-open is off",
                    "Откройте смену: кнопка «Открыть смену» на странице кассы или в программе салона.",
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The counter that tells whether `req` ran: the ФН's last document and serial for
    /// fiscal jobs; nothing for the others.
    async fn counter(&mut self, req: &JobRequest) -> Result<Option<(u32, String)>, DriverError> {
        Ok(match req {
            r if r.is_fiscal() => {
                let f = self.driver.fn_status().await?;
                Some((f.last_document_number, f.serial))
            }
            _ => None,
        })
    }

    async fn execute(&mut self, job: Job, status: &DeviceStatus) -> Step {
        // Only queued jobs get here, and a queued job was proven not fiscalised (recovery
        // requeues only when the ФН proves it), so giving up cannot lose a receipt.
        if job.attempts >= MAX_ATTEMPTS {
            let why = reason(
                "job.too_many_attempts",
                "ККТ много раз отказала в этом задании; ФН подтверждает, что чек не пробит",
                "The device refused the job many times; the FN confirms nothing was fiscalised",
                "Проверьте ККТ (kkm-agent device … check) и отправьте задание заново с новым ключом.",
            )
            .for_cashier("Позовите мастера: чек не пробит, его нужно отправить из программы заново.");
            let _ = self.store.finish(job.id, JobStatus::NeedsAttention, None, Some(&why), false);
            return Step::Progress;
        }
        let req: JobRequest = match serde_json::from_value(job.request.clone()) {
            Ok(r) => r,
            Err(e) => {
                // Queued, so never sent: nothing was printed.
                let why = reason(
                    "job.unreadable",
                    "Задание в очереди не читается этой версией агента; чек не пробит",
                    "This version of the agent cannot read the queued job; nothing was printed",
                    "Отправьте чек заново с новым ключом и сообщите разработчикам.",
                )
                .for_cashier("Пробейте чек заново из программы и позовите мастера.");
                tracing::error!("job {} unreadable: {e}", job.id);
                let _ = self.store.finish(job.id, JobStatus::NeedsAttention, None, Some(&why), false);
                return Step::Progress;
            }
        };
        if let JobRequest::Receipt { receipt } = &req {
            if let Err(v) = receipt.validate(&self.driver.profile().limits) {
                let e = DriverError::Invalid(v);
                let _ = self.store.finish(job.id, JobStatus::Failed, None, Some(&(&e).into()), false);
                return Step::Progress;
            }
        }
        // Claimed before any device I/O: from here a DELETE answers 409.
        match self.store.claim(job.id) {
            Ok(true) => {}
            Ok(false) => return Step::Progress, // cancelled meanwhile
            Err(e) => return self.offline(&db(e)),
        }
        if let Err(step) = self.prepare(&req, status).await {
            let _ = self.store.requeue(job.id);
            return step;
        }
        let before = match self.counter(&req).await {
            Ok(c) => c,
            Err(e) => {
                let _ = self.store.requeue(job.id);
                return if e.is_link() { self.offline(&e) } else { self.park(cause_of(e.condition()), (&e).into()) };
            }
        };
        let (fn_before, fn_serial) = match &before {
            Some((n, s)) => (Some(*n), Some(s.as_str())),
            None => (None, None),
        };
        if let Err(e) = self.store.record_before(job.id, fn_before, fn_serial) {
            return self.offline(&db(e));
        }
        // A cash move is no fiscal document: its counter is the shift's cash-in or
        // cash-out total, where the driver has it from confirmed registers.
        let mut cash_counted = false;
        if let JobRequest::CashIn { .. } | JobRequest::CashOut { .. } = &req {
            match self.driver.cash_moves().await {
                Ok((ins, outs)) => {
                    let before = if matches!(req, JobRequest::CashIn { .. }) { ins } else { outs };
                    if let Err(e) = self.store.record_cash_before(job.id, before) {
                        return self.offline(&db(e));
                    }
                    cash_counted = true;
                }
                Err(e) if e.is_link() => {
                    let _ = self.store.requeue(job.id);
                    return self.offline(&e);
                }
                Err(_) => {} // not offered: a lost answer will need a person
            }
        }
        let store = self.store.clone();
        let id = job.id;
        let mut mark_close = move || store.mark_close_sent(id).map_err(db);
        // A protocol with request ids (УМКА's sessionId) sends the same id on a retry of
        // this job; the key stays unique across a wiped data directory.
        self.driver.set_job_key(Some(&job_key(&job)));
        let outcome = match &req {
            JobRequest::Receipt { receipt } => self.driver.fiscalize_with(receipt, &mut mark_close).await.map(Some),
            JobRequest::OpenShift => self.driver.open_shift(None).await.map(Some),
            JobRequest::CloseShift => self.driver.close_shift(None).await.map(Some),
            JobRequest::XReport => self.driver.x_report().await.map(|_| None),
            JobRequest::CashIn { sum } => self.driver.cash_in(*sum).await.map(|_| None),
            JobRequest::CashOut { sum } => self.driver.cash_out(*sum).await.map(|_| None),
        };
        match outcome {
            Ok(result) => self.done(job.id, result.as_ref()).await,
            Err(e) if req.is_fiscal() => {
                // Whatever happened, the ФН decides on the next step.
                tracing::warn!(device = %self.device, job = job.id, "fiscal job interrupted: {e}");
                let link = e.is_link();
                self.last_failure = Some((job.id, e.clone()));
                if link {
                    self.offline(&e)
                } else {
                    Step::Progress
                }
            }
            Err(e) if e.is_link() && cash_counted => {
                // The cash registers decide, as the ФН does for receipts.
                tracing::warn!(device = %self.device, job = job.id, "cash move interrupted: {e}");
                self.last_failure = Some((job.id, e.clone()));
                self.offline(&e)
            }
            Err(e) if e.is_link() => {
                // A non-fiscal command with an unknown outcome: X-reports are harmless to
                // repeat; a cash move with no counter to check is not, so a person must.
                if matches!(req, JobRequest::XReport) {
                    let _ = self.store.requeue(job.id);
                } else {
                    let why = reason(
                        "recovery.cash_move_unknown",
                        "Связь прервалась во время внесения/выплаты: неизвестно, прошла ли операция",
                        "The link broke during a cash move: the outcome is unknown",
                        "Сверьте X-отчёт с программой; при необходимости повторите операцию с новым ключом.",
                    )
                    .for_cashier("Сверьте X-отчёт с программой; при необходимости повторите операцию в программе.");
                    let _ = self.store.finish(job.id, JobStatus::NeedsAttention, None, Some(&why), false);
                }
                self.offline(&e)
            }
            Err(e) => self.refused(job.id, &e, &req),
        }
    }

    /// A definite refusal (the ФН proves nothing was fiscalised): fail, retry after
    /// fixing, or park. A shift job refused for the shift's state (close a closed
    /// shift, open an open one) is simply refused. Device-wide conditions park the
    /// queue and never count against the job; only refusals of this job do.
    fn refused(&mut self, id: i64, e: &DriverError, req: &JobRequest) -> Step {
        let shift_job = matches!(req, JobRequest::OpenShift | JobRequest::CloseShift | JobRequest::XReport);
        let device_wide = e.condition().is_some_and(Condition::is_device_wide);
        match e.class() {
            _ if device_wide => {
                let _ = self.store.requeue(id);
                self.park(cause_of(e.condition()), e.into())
            }
            ErrorClass::Recoverable if shift_job => {
                let mut why: JobError = e.into();
                // A Z-report on a closed shift: the device's own advice (open the shift)
                // would make a cashier open one just to close it again.
                if matches!(req, JobRequest::CloseShift) && e.condition() == Some(Condition::ShiftClosed) {
                    why = JobError::new(&why.code, why.title_ru, why.title_en, "Смена уже закрыта: Z-отчёт не нужен.");
                }
                let _ = self.store.finish(id, JobStatus::Failed, None, Some(&why), false);
                Step::Progress
            }
            ErrorClass::Rejected => {
                let _ = self.store.finish(id, JobStatus::Failed, None, Some(&e.into()), false);
                Step::Progress
            }
            ErrorClass::Recoverable | ErrorClass::Transient => {
                let _ = self.store.requeue_refused(id);
                self.state().last_error = Some(e.into());
                Step::Offline // a short backoff, then the preflight fixes the cause
            }
            ErrorClass::NeedsAttention => {
                let _ = self.store.requeue_refused(id);
                self.park(ParkCause::Other, e.into())
            }
        }
    }

    async fn done(&mut self, id: i64, result: Option<&FiscalResult>) -> Step {
        // Paper may have run out while the fiscalised document printed.
        let copy = match self.driver.status().await {
            Ok(s) => !s.paper_present || s.awaiting_continue,
            Err(_) => false,
        };
        if let Err(e) = self.store.finish(id, JobStatus::Done, result, None, copy) {
            return self.offline(&db(e));
        }
        self.last_failure = None;
        if copy {
            return self.park(ParkCause::Paper, paper_out_after_fiscal());
        }
        Step::Progress
    }

    fn attention(&mut self, id: i64, why: JobError) -> Step {
        tracing::warn!(device = %self.device, job = id, code = %why.code, "needs attention: {}", why.title_en);
        let _ = self.store.finish(id, JobStatus::NeedsAttention, None, Some(&why), false);
        self.last_failure = None;
        Step::Progress
    }

    /// The counters prove the job did not run: the error this process saw (if any)
    /// decides; with no error, or only a lost link, it is sent again. A job this version
    /// cannot read needs a person even so.
    fn did_not_run(&mut self, id: i64, failure: Option<DriverError>, req: Option<&JobRequest>) -> Step {
        match (failure, req) {
            (Some(e), Some(r)) if !e.is_link() => self.refused(id, &e, r),
            (_, None) => self.attention(id, unreadable_not_printed()),
            _ => {
                let _ = self.store.requeue(id);
                Step::Progress
            }
        }
    }

    /// Settles a cash move left in flight by the shift's cash counters: unchanged → it
    /// did not run; moved by exactly the job's sum → it ran; anything else (another
    /// move on the keypad, a Z-report in between) → a person looks.
    async fn settle_cash_move(&mut self, job: &Job, req: Option<&JobRequest>, before: kkm_core::Money, failure: Option<DriverError>) -> Step {
        let (ins, outs) = match self.driver.cash_moves().await {
            Ok(v) => v,
            Err(e) if e.is_link() => return self.offline(&e),
            Err(e) => return self.park(cause_of(e.condition()), (&e).into()),
        };
        let now = if job.kind == "cash_in" { ins } else { outs };
        let moved = now.0 - before.0;
        if moved == 0 {
            tracing::info!(device = %self.device, job = job.id, "cash counters unchanged: the cash move did not run");
            return self.did_not_run(job.id, failure, req);
        }
        if Some(moved) == job.total.map(|t| t.0) {
            tracing::info!(device = %self.device, job = job.id, "recovered: the cash counters moved by the job's sum");
            return self.done(job.id, None).await;
        }
        let why = JobError::new(
            "recovery.cash_moved_otherwise",
            format!(
                "Счётчик {} за смену изменился на {}, а не на сумму задания: прошла ли операция, неизвестно",
                if job.kind == "cash_in" { "внесений" } else { "выплат" },
                kkm_core::Money(moved)
            ),
            format!("The shift's cash counter moved by {moved} kopecks, not by the job's sum"),
            "Сверьте X-отчёт с программой; при необходимости повторите операцию с новым ключом.",
        )
        .for_cashier("Сверьте X-отчёт с программой; при необходимости повторите операцию в программе.");
        self.attention(job.id, why)
    }

    /// Settles a job left in flight by asking the ФН what really happened.
    async fn recover(&mut self, job: Job, status: &DeviceStatus) -> Step {
        let req: Option<JobRequest> = serde_json::from_value(job.request.clone()).ok();
        if status.receipt_open {
            if let Err(e) = self.driver.cancel_receipt().await {
                return if e.is_link() { self.offline(&e) } else { self.park(cause_of(e.condition()), (&e).into()) };
            }
        }
        let failure = self.last_failure.take().filter(|(id, _)| *id == job.id).map(|(_, e)| e);
        let fiscal = req.as_ref().map_or(matches!(job.kind.as_str(), "receipt" | "open_shift" | "close_shift"), JobRequest::is_fiscal);
        if let Some(cash_before) = job.cash_before {
            return self.settle_cash_move(&job, req.as_ref(), cash_before, failure).await;
        }
        let Some(before) = job.fn_before else {
            // Crashed before the counter was committed: nothing was sent for fiscal jobs
            // or X-reports; cash moves must be checked by a person.
            if fiscal || job.kind == "x_report" {
                let _ = self.store.requeue(job.id);
                return Step::Progress;
            }
            let why = reason("recovery.cash_move_unknown", "Агент прервался во время внесения/выплаты: неизвестно, прошла ли операция", "Interrupted during a cash move", "Сверьте X-отчёт с программой.");
            return self.attention(job.id, why);
        };
        let fns = match self.driver.fn_status().await {
            Ok(f) => f,
            Err(e) if e.is_link() => return self.offline(&e),
            Err(e) => return self.park(cause_of(e.condition()), (&e).into()),
        };
        if let Some(serial) = job.fn_serial.as_deref().filter(|s| *s != fns.serial) {
            let why = JobError::new(
                "recovery.fn_replaced",
                format!("ФН заменён, пока задание было в работе (был {serial}, теперь {}): пробит ли чек, неизвестно", fns.serial),
                format!("The FN was replaced while the job was in flight ({serial} → {})", fns.serial),
                "Проверьте по старому ФН (или в ОФД), пробит ли чек; при необходимости пробейте его заново с новым ключом.",
            )
            .for_cashier("Проверьте по старому ФН (или в ОФД), пробит ли чек; при необходимости пробейте его заново из программы.");
            return self.attention(job.id, why);
        }
        let last = fns.last_document_number;
        if last == before {
            // Nothing fiscalised: the error (if we saw one) decides.
            tracing::info!(device = %self.device, job = job.id, "ФН unchanged at {before}: job not fiscalised");
            return self.did_not_run(job.id, failure, req.as_ref());
        }
        if last < before {
            let why = JobError::new(
                "recovery.fn_counter_back",
                format!("Номер последнего документа ФН уменьшился ({before} → {last}): похоже, это другой ФН или другая ККТ"),
                format!("The FN's last document number went back ({before} → {last})"),
                "Проверьте, та ли ККТ подключена к порту, и пробит ли чек; при необходимости пробейте его заново с новым ключом.",
            )
            .for_cashier("Проверьте, та ли ККТ подключена к порту, и пробит ли чек; при необходимости пробейте его заново из программы.");
            return self.attention(job.id, why);
        }
        let Some(mut expect) = expectation(&job, req.as_ref()) else {
            let why = JobError::new(
                "recovery.unreadable_job",
                format!("ФН изменился (документы №{}–{last}), а задание не читается этой версией агента", before + 1),
                format!("The FN moved ({}–{last}) and the job cannot be read by this version", before + 1),
                "Сверьте чеки на кассе с программой; повторно чек не пробивается.",
            );
            return self.attention(job.id, why);
        };
        if matches!(expect, Expect::Receipt { .. }) && !job.close_sent {
            // The receipt was never closed by us: the new documents are someone else's
            // (the keypad, another program), and ours was cancelled above.
            tracing::warn!(device = %self.device, job = job.id, "ФН moved {before}→{last} by documents that are not this job's (its close was never sent)");
            if req.is_none() {
                return self.attention(job.id, unreadable_not_printed());
            }
            let _ = self.store.requeue(job.id);
            return Step::Progress;
        }
        // A driver that stamps receipts (УМКА) names what this job's receipt carries.
        self.driver.set_job_key(Some(&job_key(&job)));
        if let Expect::Receipt { reference, .. } = &mut expect {
            *reference = self.driver.receipt_reference();
        }
        let end = last.min(before.saturating_add(SCAN_LIMIT));
        for n in before.saturating_add(1)..=end {
            let doc = match self.driver.find_document(n).await {
                Ok(d) => d,
                Err(e) if e.is_link() && !matches!(e, DriverError::Protocol(_)) => return self.offline(&e),
                Err(e) => {
                    // The device answered, but not in a way the driver can read.
                    let tries = if self.unreadable.0 == job.id { self.unreadable.1 + 1 } else { 1 };
                    self.unreadable = (job.id, tries);
                    if tries < MAX_UNREADABLE {
                        return self.offline(&e);
                    }
                    let why = JobError::new(
                        "recovery.document_unreadable",
                        format!("Не удаётся прочитать документ №{n} из ФН: пробит ли чек, неизвестно"),
                        format!("FN document {n} cannot be read: {e}"),
                        "Сверьте чеки на кассе с программой; повторно чек не пробивается.",
                    );
                    return self.attention(job.id, why);
                }
            };
            match judge(&expect, &doc) {
                Judgement::Skip => continue,
                Judgement::Own => {
                    // Operation and total match; where the register gives the receipt's
                    // content, its lines and payment split must match too (a keypad
                    // receipt of the same total is not the job's).
                    if let Some(JobRequest::Receipt { receipt }) = &req {
                        match self.driver.receipt_content(n).await {
                            Ok(content) => {
                                let same = receipt
                                    .validate(&self.driver.profile().limits)
                                    .is_ok_and(|t| content_matches(receipt, &t, &content));
                                if !same {
                                    return self.attention(job.id, foreign(n, before, last));
                                }
                            }
                            Err(e) if e.is_link() && !matches!(e, DriverError::Protocol(_)) => return self.offline(&e),
                            Err(e) => tracing::info!(device = %self.device, job = job.id, "receipt content not available ({e}); matched on operation and total"),
                        }
                    }
                    tracing::info!(device = %self.device, job = job.id, fd = n, "recovered: the ФН has the job's document");
                    let result = FiscalResult { document_number: doc.number, fiscal_sign: doc.fiscal_sign, datetime: doc.datetime, shift_number: doc.shift_number };
                    return self.done(job.id, Some(&result)).await;
                }
                Judgement::Foreign => return self.attention(job.id, foreign(n, before, last)),
            }
        }
        if last > end {
            let why = JobError::new(
                "recovery.too_many_documents",
                format!("После задания в ФН больше {SCAN_LIMIT} документов (№{}–{last}): пробит ли чек, неизвестно", before + 1),
                format!("Over {SCAN_LIMIT} FN documents after the job ({}–{last})", before + 1),
                "Сверьте чеки на кассе с программой; повторно чек не пробивается.",
            );
            return self.attention(job.id, why);
        }
        // Only documents that are not in the job's way (a shift opened by the unit):
        // the job's own document is provably not there.
        tracing::info!(device = %self.device, job = job.id, "ФН moved {before}→{last} without the job's document: not fiscalised");
        if req.is_none() {
            return self.attention(job.id, unreadable_not_printed());
        }
        let _ = self.store.requeue(job.id);
        Step::Progress
    }
}

/// The job's key for the driver: its id and a hash of when and under which idempotency
/// key it was created, at most 16 characters (it may be printed in tag 1192, which holds
/// 16).
fn job_key(job: &Job) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in job.created_at.bytes().chain(job.idempotency_key.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{}-{h:08x}", job.id).chars().take(16).collect()
}

fn foreign(n: u32, before: u32, last: u32) -> JobError {
    JobError::new(
        "recovery.foreign_document",
        format!(
            "После задания в ФН появился чужой документ №{n} (документы №{}–{last}): пробит ли чек этого задания, неизвестно. Повторно не пробивается",
            before + 1
        ),
        format!("FN document {n} (of {}–{last}) is not this job's; it will not be reprinted", before + 1),
        "Возможно, чек пробили вручную с клавиатуры ККТ или другой программой. Сверьте чеки на кассе с программой и при необходимости пробейте чек заново с новым ключом.",
    )
    .for_cashier("Возможно, чек пробили вручную с клавиатуры ККТ или другой программой. Сверьте чеки на кассе с программой и при необходимости пробейте чек заново из программы.")
}

fn paper_out_after_fiscal() -> JobError {
    reason(
        "device.paper_out_after_fiscal",
        "Чек пробит, но бумага кончилась при печати",
        "Fiscalised, but paper ran out while printing",
        "Вставьте бумагу: агент напечатает копию чека, повторно чек не пробивается.",
    )
}

fn unreadable_not_printed() -> JobError {
    reason(
        "job.unreadable",
        "Задание не читается этой версией агента; ФН подтверждает, что чек не пробит",
        "This version of the agent cannot read the job; the FN confirms nothing was printed",
        "Отправьте чек заново с новым ключом и сообщите разработчикам.",
    )
    .for_cashier("Пробейте чек заново из программы и позовите мастера.")
}
