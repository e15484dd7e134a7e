//! Jobs: what the shop program asks a device to do, and what came of it.

use kkm_core::{DriverError, FiscalResult, Money, Receipt};
use serde::{Deserialize, Serialize};

/// A request, as stored. Its canonical JSON decides whether a repeated idempotency key
/// carries the same body (same job) or another one (409).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobRequest {
    Receipt { receipt: Receipt },
    CashIn { sum: Money },
    CashOut { sum: Money },
    OpenShift,
    CloseShift,
    XReport,
}

impl JobRequest {
    pub fn kind(&self) -> &'static str {
        match self {
            JobRequest::Receipt { .. } => "receipt",
            JobRequest::CashIn { .. } => "cash_in",
            JobRequest::CashOut { .. } => "cash_out",
            JobRequest::OpenShift => "open_shift",
            JobRequest::CloseShift => "close_shift",
            JobRequest::XReport => "x_report",
        }
    }

    /// Does this job create a fiscal document (so the ФН's counter tells if it ran)?
    pub fn is_fiscal(&self) -> bool {
        matches!(self, JobRequest::Receipt { .. } | JobRequest::OpenShift | JobRequest::CloseShift)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Accepted and committed; waiting for its turn or for the device.
    Queued,
    /// Sent (or about to be sent) to the device; the ФН counter before it is recorded.
    InFlight,
    Done,
    /// The device or the validation refused it; it will not be retried.
    Failed,
    /// The ФН moved but no document matches the job: a person must look. Never reprinted.
    NeedsAttention,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::InFlight => "in_flight",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::NeedsAttention => "needs_attention",
            JobStatus::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<JobStatus> {
        [
            JobStatus::Queued,
            JobStatus::InFlight,
            JobStatus::Done,
            JobStatus::Failed,
            JobStatus::NeedsAttention,
            JobStatus::Cancelled,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
    /// As the cashier page and the CLI say it.
    pub fn name_ru(self) -> &'static str {
        match self {
            JobStatus::Queued => "в очереди",
            JobStatus::InFlight => "печатается",
            JobStatus::Done => "готово",
            JobStatus::Failed => "ошибка",
            JobStatus::NeedsAttention => "нужна проверка",
            JobStatus::Cancelled => "отменено",
        }
    }
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Done | JobStatus::Failed | JobStatus::NeedsAttention | JobStatus::Cancelled)
    }
}

/// Why a job failed or needs attention, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobError {
    pub code: String,
    pub title_ru: String,
    pub title_en: String,
    /// What to do, in Russian, for the engineer or integrator: may name a command or a
    /// setting (`kkm-agent device … check`).
    pub action_ru: String,
    /// What to do, in plain Russian, for the cashier's page: no commands, settings or
    /// Latin words. Often the same text as `action_ru`.
    #[serde(default)]
    pub cashier_action_ru: String,
}

impl JobError {
    /// An error whose action suits both the engineer and the cashier.
    pub fn new(code: &str, ru: impl Into<String>, en: impl Into<String>, action: &str) -> JobError {
        let action = action.to_string();
        JobError { code: code.into(), title_ru: ru.into(), title_en: en.into(), cashier_action_ru: action.clone(), action_ru: action }
    }

    /// The cashier's words where the engineer's action names a command or a setting.
    pub fn for_cashier(mut self, action: &str) -> JobError {
        self.cashier_action_ru = action.into();
        self
    }

    /// An error stored before `cashier_action_ru` existed reads the one action for both.
    pub fn stored(mut self) -> JobError {
        if self.cashier_action_ru.is_empty() {
            self.cashier_action_ru = self.action_ru.clone();
        }
        self
    }
}

impl From<&DriverError> for JobError {
    fn from(e: &DriverError) -> JobError {
        JobError::new(e.code(), e.title_ru(), e.title_en(), e.action_ru()).for_cashier(e.cashier_action_ru())
    }
}

/// A job as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: i64,
    pub device: String,
    pub idempotency_key: String,
    /// receipt, cash_in, cash_out, open_shift, close_shift, x_report
    pub kind: String,
    pub status: JobStatus,
    /// The request as stored (its canonical JSON).
    #[schema(value_type = Object)]
    pub request: serde_json::Value,
    pub result: Option<FiscalResult>,
    pub error: Option<JobError>,
    pub attempts: u32,
    /// The ФН's last document number recorded before the job was sent.
    pub fn_before: Option<u32>,
    /// The document is fiscalised but its paper copy has still to be printed.
    pub copy_pending: bool,
    pub created_at: String,
    pub updated_at: String,
    /// The ФН (its serial) that `fn_before` was read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fn_serial: Option<String>,
    /// The command that makes the receipt fiscal was about to be sent.
    #[serde(skip)]
    pub close_sent: bool,
    /// The receipt's operation and total (the cash move's sum), stored apart from the
    /// body so recovery never depends on the body parsing.
    #[serde(skip)]
    pub operation: Option<kkm_core::Operation>,
    /// The receipt's total (the sum of its lines) or the cash move's sum, kopecks;
    /// null for shift jobs and X-reports.
    #[schema(value_type = Option<i64>)]
    pub total: Option<Money>,
    /// The shift's cash-in (cash-out) total before a cash move was sent.
    #[serde(skip)]
    pub cash_before: Option<Money>,
    /// When a person marked this `needs_attention` job as checked (RFC 3339); the job
    /// keeps its status.
    pub acknowledged_at: Option<String>,
}
