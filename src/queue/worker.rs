//! One worker per device: prints jobs in order, exactly once.
//!
//! The rule, in the order the worker applies it:
//!
//! 1. Look at the device first. No link: wait with backoff. A receipt left open (a
//!    crash, the keypad): cancel it. Shift closed: open it (policy) or park. Shift over
//!    24 h, no paper: park with the reason and the action, and resume by itself when the
//!    status shows the cause is gone.
//! 2. Before sending a fiscal job, read the ФН's last document number and commit it in
//!    the job's row together with `in_flight`.
//! 3. After *any* failure of a fiscal job (a lost link, a crash of this process, a
//!    device error) the job stays `in_flight`, and the next step asks the ФН: counter
//!    unchanged → nothing was fiscalised, retry or fail by the error; counter moved →
//!    read the new documents and match operation and total; a match is the job's
//!    result; no match → `needs_attention`, never a guess, never a reprint.
//! 4. Paper that ran out after fiscalisation leaves the job done with a copy pending;
//!    the copy prints when paper is back.

use super::job::{Job, JobError, JobRequest, JobStatus};
use super::store::Store;
use crate::config::Policy;
use kkm_core::{
    Condition, DeviceStatus, DocumentKind, DriverBox, DriverError, ErrorClass, FiscalResult, ShiftState,
};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// What the API shows about a device.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceState {
    pub online: bool,
    /// Why the queue waits for a person, with the action to take.
    pub parked: Option<JobError>,
    pub status: Option<DeviceStatus>,
    pub last_error: Option<JobError>,
    pub job_in_progress: Option<i64>,
}

#[derive(Clone)]
pub struct WorkerHandle {
    pub state: Arc<Mutex<DeviceState>>,
    pub notify: Arc<Notify>,
}

impl WorkerHandle {
    pub fn snapshot(&self) -> DeviceState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
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
    Other,
}

pub struct Worker {
    device: String,
    driver: DriverBox,
    store: Store,
    policy: Policy,
    handle: WorkerHandle,
    parked: Option<(ParkCause, Instant)>,
    /// The error that left the in-flight job unresolved, if this process saw it.
    last_failure: Option<(i64, DriverError)>,
}

/// Sends of one job after which the worker stops retrying it.
const MAX_ATTEMPTS: u32 = 12;

fn reason(code: &str, ru: &str, en: &str, action: &str) -> JobError {
    JobError { code: code.into(), title_ru: ru.into(), title_en: en.into(), action_ru: action.into() }
}

fn cause_of(c: Option<Condition>) -> ParkCause {
    match c {
        Some(Condition::PaperOut | Condition::CoverOpen) => ParkCause::Paper,
        Some(Condition::ShiftExpired) => ParkCause::ShiftExpired,
        Some(Condition::ShiftClosed) => ParkCause::ShiftClosed,
        _ => ParkCause::Other,
    }
}

fn db(e: super::StoreError) -> DriverError {
    DriverError::Protocol(format!("queue database: {e}"))
}

impl Worker {
    pub fn spawn(
        device: String,
        driver: DriverBox,
        store: Store,
        policy: Policy,
        shutdown: watch::Receiver<bool>,
    ) -> (WorkerHandle, tokio::task::JoinHandle<()>) {
        let handle = WorkerHandle { state: Arc::default(), notify: Arc::new(Notify::new()) };
        let w = Worker { device, driver, store, policy, handle: handle.clone(), parked: None, last_failure: None };
        let task = tokio::spawn(w.run(shutdown));
        (handle, task)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, DeviceState> {
        self.handle.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(200);
        loop {
            if *shutdown.borrow() {
                break;
            }
            // A step is never interrupted: a job in flight finishes (or stays in flight
            // for recovery) before shutdown is honoured.
            let step = self.step().await;
            let wait = match step {
                Step::Progress => {
                    backoff = Duration::from_millis(200);
                    continue;
                }
                Step::Idle => Duration::from_secs(2),
                Step::Parked => Duration::from_millis(700),
                Step::Offline => {
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    backoff
                }
            };
            tokio::select! {
                _ = self.handle.notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        self.driver.disconnect().await;
        tracing::info!(device = %self.device, "worker stopped");
    }

    fn offline(&mut self, e: &DriverError) -> Step {
        let mut s = self.state();
        s.online = false;
        s.last_error = Some(e.into());
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
            Some((ParkCause::Other, since)) => since.elapsed() > Duration::from_secs(15),
        }
    }

    async fn step(&mut self) -> Step {
        let status = match self.driver.status().await {
            Ok(s) => s,
            Err(e) => return self.offline(&e),
        };
        {
            let mut st = self.state();
            st.online = true;
            st.status = Some(status.clone());
        }
        if self.parked.is_some() && self.park_resolved(&status) {
            self.unpark();
        }
        // Copies owed after paper ran out mid-print.
        if status.paper_present {
            match self.store.copies_pending(&self.device) {
                Ok(jobs) => {
                    for j in jobs {
                        match self.driver.print_last_copy().await {
                            Ok(()) => {
                                let _ = self.store.clear_copy(j.id);
                            }
                            Err(e) if e.is_link() => return self.offline(&e),
                            Err(e) => return self.park(cause_of(e.condition()), (&e).into()),
                        }
                    }
                }
                Err(e) => return self.offline(&db(e)),
            }
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
                        "Снимите Z-отчёт (закройте смену): кнопка «Закрыть смену» или POST /api/v1/shift/close. Очередь продолжится сама.",
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
                    "Откройте смену: кнопка «Открыть смену» или POST /api/v1/shift/open.",
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The counter that tells whether `req` ran: the ФН's last document for fiscal
    /// jobs, the shift's cash-in or cash-out total for cash moves.
    async fn counter(&mut self, req: &JobRequest) -> Result<Option<u32>, DriverError> {
        Ok(match req {
            r if r.is_fiscal() => Some(self.driver.fn_status().await?.last_document_number),
            _ => None,
        })
    }

    async fn execute(&mut self, job: Job, status: &DeviceStatus) -> Step {
        // Only queued jobs get here, and a queued job was proven not fiscalised (recovery
        // requeues only when the ФН did not move), so giving up cannot lose a receipt.
        if job.attempts >= MAX_ATTEMPTS {
            let why = reason(
                "job.too_many_attempts",
                "Задание не удалось выполнить после многих попыток; ФН подтверждает, что чек не пробит",
                "The job failed after many attempts; the FN confirms nothing was fiscalised",
                "Проверьте ККТ (kkm-agent device … check) и отправьте задание заново с новым ключом.",
            );
            let _ = self.store.finish(job.id, JobStatus::NeedsAttention, None, Some(&why), false);
            return Step::Progress;
        }
        let req: JobRequest = match serde_json::from_value(job.request.clone()) {
            Ok(r) => r,
            Err(e) => {
                let why = reason("job.corrupt", "Повреждённое задание в очереди", "Corrupt job in the queue", "Сообщите разработчикам.");
                tracing::error!("job {} unreadable: {e}", job.id);
                let _ = self.store.finish(job.id, JobStatus::Failed, None, Some(&why), false);
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
        if let Err(step) = self.prepare(&req, status).await {
            return step;
        }
        let before = match self.counter(&req).await {
            Ok(c) => c,
            Err(e) if e.is_link() => return self.offline(&e),
            Err(e) => return self.park(cause_of(e.condition()), (&e).into()),
        };
        if let Err(e) = self.store.mark_in_flight(job.id, before) {
            return self.offline(&db(e));
        }
        let outcome = match &req {
            JobRequest::Receipt { receipt } => self.driver.fiscalize(receipt).await.map(Some),
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
            Err(e) if e.is_link() => {
                // A non-fiscal command with an unknown outcome: X-reports are harmless to
                // repeat; a cash move is not, so a person must check it.
                if matches!(req, JobRequest::XReport) {
                    let _ = self.store.requeue(job.id);
                } else {
                    let why = reason(
                        "recovery.cash_move_unknown",
                        "Связь прервалась во время внесения/выплаты: неизвестно, прошла ли операция",
                        "The link broke during a cash move: the outcome is unknown",
                        "Сверьте X-отчёт с программой; при необходимости повторите операцию с новым ключом.",
                    );
                    let _ = self.store.finish(job.id, JobStatus::NeedsAttention, None, Some(&why), false);
                }
                self.offline(&e)
            }
            Err(e) => self.refused(job.id, &e, &req),
        }
    }

    /// A definite refusal: fail, retry after fixing, or park. "Recoverable" states are
    /// fixed by the preflight before a receipt or a cash move; a shift job refused for
    /// the shift's state (close a closed shift, open an open one) is simply refused.
    fn refused(&mut self, id: i64, e: &DriverError, req: &JobRequest) -> Step {
        let shift_job = matches!(req, JobRequest::OpenShift | JobRequest::CloseShift | JobRequest::XReport);
        match e.class() {
            ErrorClass::Recoverable if shift_job => {
                let _ = self.store.finish(id, JobStatus::Failed, None, Some(&e.into()), false);
                Step::Progress
            }
            ErrorClass::Rejected => {
                let _ = self.store.finish(id, JobStatus::Failed, None, Some(&e.into()), false);
                Step::Progress
            }
            ErrorClass::Recoverable | ErrorClass::Transient => {
                let _ = self.store.requeue(id);
                self.state().last_error = Some(e.into());
                Step::Offline // a short backoff, then the preflight fixes the cause
            }
            ErrorClass::NeedsAttention => {
                let _ = self.store.requeue(id);
                self.park(cause_of(e.condition()), e.into())
            }
        }
    }

    async fn done(&mut self, id: i64, result: Option<&FiscalResult>) -> Step {
        // Paper may have run out while the fiscalised document printed.
        let copy = match self.driver.status().await {
            Ok(s) => !s.paper_present || matches!(s.submode_raw, 2 | 3),
            Err(_) => false,
        };
        if let Err(e) = self.store.finish(id, JobStatus::Done, result, None, copy) {
            return self.offline(&db(e));
        }
        self.last_failure = None;
        if copy {
            return self.park(
                ParkCause::Paper,
                reason("device.paper_out_after_fiscal", "Чек пробит, но бумага кончилась при печати", "Fiscalised, but paper ran out while printing", "Вставьте бумагу: агент напечатает копию чека, повторно чек не пробивается."),
            );
        }
        Step::Progress
    }

    /// Settles a job left in flight by asking the ФН what really happened.
    async fn recover(&mut self, job: Job, status: &DeviceStatus) -> Step {
        let req: JobRequest = match serde_json::from_value(job.request.clone()) {
            Ok(r) => r,
            Err(_) => {
                let _ = self.store.finish(job.id, JobStatus::Failed, None, None, false);
                return Step::Progress;
            }
        };
        if status.receipt_open {
            if let Err(e) = self.driver.cancel_receipt().await {
                return if e.is_link() { self.offline(&e) } else { self.park(ParkCause::Other, (&e).into()) };
            }
        }
        let failure = self.last_failure.take().filter(|(id, _)| *id == job.id).map(|(_, e)| e);
        let Some(before) = job.fn_before else {
            // Crashed before the counter was read, or a non-fiscal job: nothing was sent
            // for fiscal jobs; cash moves must be checked by a person.
            if req.is_fiscal() || matches!(req, JobRequest::XReport) {
                let _ = self.store.requeue(job.id);
            } else {
                let why = reason("recovery.cash_move_unknown", "Агент прервался во время внесения/выплаты: неизвестно, прошла ли операция", "Interrupted during a cash move", "Сверьте X-отчёт с программой.");
                let _ = self.store.finish(job.id, JobStatus::NeedsAttention, None, Some(&why), false);
            }
            return Step::Progress;
        };
        let last = match self.driver.fn_status().await {
            Ok(f) => f.last_document_number,
            Err(e) if e.is_link() => return self.offline(&e),
            Err(e) => return self.park(ParkCause::Other, (&e).into()),
        };
        if last == before {
            // Nothing fiscalised: the error (if we saw one) decides.
            tracing::info!(device = %self.device, job = job.id, "ФН unchanged at {before}: job not fiscalised");
            return match failure {
                Some(e) if !e.is_link() => self.refused(job.id, &e, &req),
                _ => {
                    let _ = self.store.requeue(job.id);
                    Step::Progress
                }
            };
        }
        let expected_total = match &req {
            JobRequest::Receipt { receipt } => receipt.validate(&self.driver.profile().limits).ok().map(|t| t.total),
            _ => None,
        };
        for n in before.saturating_add(1)..=last {
            let doc = match self.driver.find_document(n).await {
                Ok(d) => d,
                Err(e) if e.is_link() => return self.offline(&e),
                Err(_) => continue,
            };
            let matches = match &req {
                JobRequest::Receipt { receipt } => {
                    doc.kind == DocumentKind::Receipt && doc.operation == Some(receipt.operation) && doc.total == expected_total
                }
                JobRequest::OpenShift => doc.kind == DocumentKind::ShiftOpen,
                JobRequest::CloseShift => doc.kind == DocumentKind::ShiftClose,
                _ => false,
            };
            if matches {
                tracing::info!(device = %self.device, job = job.id, fd = n, "recovered: the ФН has the job's document");
                let result = FiscalResult { document_number: doc.number, fiscal_sign: doc.fiscal_sign, datetime: doc.datetime, shift_number: doc.shift_number };
                return self.done(job.id, Some(&result)).await;
            }
        }
        let why = JobError {
            code: "recovery.no_matching_document".into(),
            title_ru: format!(
                "ФН изменился (документы №{}–{last}), но ни один документ не совпадает с заданием. Чек не будет пробит повторно",
                before + 1
            ),
            title_en: format!("The FN moved ({}–{last}) but no document matches the job; it will not be reprinted", before + 1),
            action_ru: "Возможно, чек пробили вручную с клавиатуры ККТ. Сверьте чеки на кассе с программой и при необходимости пробейте чек заново с новым ключом.".into(),
        };
        let _ = self.store.finish(job.id, JobStatus::NeedsAttention, None, Some(&why), false);
        Step::Progress
    }
}
