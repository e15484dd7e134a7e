//! The handlers. Every write is a job: committed in SQLite before the answer, under
//! the caller's `Idempotency-Key`, and run by the device's worker.

use super::problem::{internal, Problem};
use super::{AppState, DeviceEntry, MAX_BODY};
use crate::queue::store::JobFilter;
use crate::queue::worker::DeviceState;
use crate::queue::{Job, JobRequest, JobStatus, StoreError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kkm_core::{Money, Receipt};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/devices", get(devices))
        .route("/api/v1/devices/{id}", get(device))
        .route("/api/v1/diagnostics", get(super::diagnostics::diagnostics))
        .route("/api/v1/receipts", post(submit_receipt))
        .route("/api/v1/receipts/{id}", get(get_job))
        .route("/api/v1/jobs", get(list_jobs))
        .route("/api/v1/jobs/{id}", get(job).delete(cancel_job))
        .route("/api/v1/jobs/{id}/acknowledge", post(super::acknowledge::acknowledge_job))
        .route("/api/v1/shift/open", post(open_shift))
        .route("/api/v1/shift/close", post(close_shift))
        .route("/api/v1/x-report", post(x_report))
        .route("/api/v1/cash-in", post(cash_in))
        .route("/api/v1/cash-out", post(cash_out))
        .route("/api/v1/devices/{id}/shift/totals", get(shift_totals))
        .route("/api/v1/reconciliations", post(reconcile).layer(axum::extract::DefaultBodyLimit::max(MAX_RECONCILE_BODY)))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

async fn openapi() -> Response {
    Json(super::openapi::document_json()).into_response()
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    pub id: String,
    pub model: String,
    pub port: String,
    #[schema(value_type = Object)]
    pub state: DeviceState,
    /// The daemon's last health check of the device; `null` before the first one.
    pub health: Option<crate::queue::worker::Health>,
}

fn view(d: &DeviceEntry) -> DeviceView {
    let state = d.handle.snapshot();
    DeviceView { id: d.id.clone(), model: d.model.clone(), port: d.port.clone(), health: state.health.clone(), state }
}

/// Configured devices and their live state (online, parked reason, last status) and
/// the daemon's last health check of each (`health`).
#[utoipa::path(get, path = "/api/v1/devices", responses((status = 200, body = [DeviceView]),
    (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn devices(State(s): State<AppState>) -> Json<Vec<DeviceView>> {
    Json(s.devices.iter().map(view).collect())
}

#[utoipa::path(get, path = "/api/v1/devices/{id}", params(("id" = String, Path, description = "Device id from the config")),
    responses((status = 200, body = DeviceView), (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn device(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<DeviceView>, Problem> {
    s.device(Some(&id)).map(|d| Json(view(d))).ok_or_else(|| unknown_device(&id))
}

pub(super) fn job_not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "request.job_not_found", "Задание не найдено", "Job not found")
}

fn unknown_device(id: &str) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "request.unknown_device", format!("Нет ККТ с id {id:?}"), format!("No device {id:?}"))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct DeviceQuery {
    /// Device id; may be omitted when only one device is configured.
    pub device: Option<String>,
}

fn idempotency_key(h: &HeaderMap) -> Result<String, Problem> {
    let bad = || {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "request.idempotency_key_missing",
            "Нужен заголовок Idempotency-Key (1–128 печатных символов ASCII)",
            "An Idempotency-Key header (1-128 printable ASCII characters) is required",
        )
    };
    let k = h.get("idempotency-key").ok_or_else(bad)?.to_str().map_err(|_| bad())?.trim();
    if k.is_empty() || k.len() > 128 || !k.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(k.to_string())
}

/// The body, or a problem+json 413/400 when it is too large or unreadable.
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "request.body_too_large", "Запрос слишком большой (больше 256 КБ)", "Request body over 256 KiB")
        } else {
            Problem::new(StatusCode::BAD_REQUEST, "request.body_unreadable", "Не удалось прочитать тело запроса", "Cannot read the request body")
                .detail(e.body_text())
        }
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        // Well-formed JSON whose fields do not fit (a fraction in kopecks, an unknown
        // field): the request is understood and refused, as a business rule would be.
        serde_json::error::Category::Data => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.body_invalid",
            format!("Поля запроса не подходят: {e}"),
            format!("The request's fields do not fit: {e}"),
        ),
        _ => Problem::new(StatusCode::BAD_REQUEST, "request.json_invalid", format!("Неверный JSON: {e}"), format!("Invalid JSON: {e}")),
    })
}

async fn enqueue(s: &AppState, device: Option<&str>, headers: &HeaderMap, req: JobRequest) -> Result<Response, Problem> {
    let key = idempotency_key(headers)?;
    let dev = s.device(device).ok_or_else(|| match device {
        Some(id) => unknown_device(id),
        None => Problem::new(StatusCode::BAD_REQUEST, "request.device_required", "Укажите ККТ: ?device=<id>", "Choose a device: ?device=<id>"),
    })?;
    if let JobRequest::Receipt { receipt } = &req {
        receipt.validate(&dev.limits).map_err(|v| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, v.code, v.ru, v.en))?;
    }
    if let JobRequest::CashIn { sum } | JobRequest::CashOut { sum } = &req {
        kkm_core::check_sum(*sum, &dev.limits).map_err(|v| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, v.code, v.ru, v.en))?;
    }
    let device_id = dev.id.clone();
    let notify = dev.handle.notify.clone();
    let result = s.committer.submit(device_id, key, req).await;
    match result {
        Ok((job, created)) => {
            notify.notify_one();
            let code = if created { StatusCode::ACCEPTED } else { StatusCode::OK };
            Ok((code, Json(job)).into_response())
        }
        Err(StoreError::Conflict(job)) => Err(Problem::new(
            StatusCode::CONFLICT,
            "request.idempotency_conflict",
            "Этот Idempotency-Key уже использован с другим содержимым",
            "This Idempotency-Key was already used with a different body",
        )
        .detail(format!("existing job {}", job.id))),
        Err(StoreError::CloseAlreadyQueued(job)) => Err(Problem::new(
            StatusCode::CONFLICT,
            "shift.close_already_queued",
            "Закрытие смены (Z-отчёт) уже в очереди: дождитесь его, второй Z-отчёт не нужен",
            "A shift close (Z-report) is already queued; wait for it instead of sending another",
        )
        .detail(format!("existing job {}", job.id))),
        Err(e) => Err(internal(e)),
    }
}

/// Queues a receipt. Answers 202 with the job once its row is committed; the same key
/// again answers 200 with the same job; the same key with another body answers 409.
#[utoipa::path(post, path = "/api/v1/receipts", request_body = Receipt, params(DeviceQuery,
    ("Idempotency-Key" = String, Header, description = "Client key, unique per device: 1 to 128 printable ASCII characters")),
    responses((status = 202, body = Job, description = "Job accepted and committed"), (status = 200, body = Job, description = "Same key, same body: the same job"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Bad JSON, missing key or device"),
        (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Unknown device"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Same key, another body"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "Body over 256 KiB"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "The receipt breaks a rule (sums, text, limits)")))]
pub async fn submit_receipt(
    State(s): State<AppState>,
    Query(q): Query<DeviceQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let receipt: Receipt = parse_json(&body_bytes(body)?)?;
    enqueue(&s, q.device.as_deref(), &headers, JobRequest::Receipt { receipt }).await
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct WaitQuery {
    /// Long-poll: wait up to this many seconds (at most 60) for the job to finish.
    pub wait: Option<u64>,
}

/// A job by id, optionally waiting for it to finish.
#[utoipa::path(get, path = "/api/v1/receipts/{id}", params(("id" = i64, Path, description = "Job id"), WaitQuery),
    responses((status = 200, body = Job), (status = 400, body = Problem, content_type = "application/problem+json"),
    (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_job(State(s): State<AppState>, Path(id): Path<i64>, Query(q): Query<WaitQuery>) -> Result<Json<Job>, Problem> {
    let wait = q.wait.unwrap_or(0);
    if wait > super::openapi::MAX_WAIT_SECONDS {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "request.wait_too_long",
            format!("wait: не больше {} секунд", super::openapi::MAX_WAIT_SECONDS),
            format!("wait: at most {} seconds", super::openapi::MAX_WAIT_SECONDS),
        ));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    // Subscribed before the first read, so a change between the read and the wait is
    // not missed. Waiters sleep until their job changes: no polling.
    let mut changes = s.store.subscribe();
    loop {
        let job = s.store.blocking(move |st| st.get(id)).await.map_err(|e| match e {
            StoreError::NotFound => job_not_found(),
            e => internal(e),
        })?;
        if job.status.is_final() || tokio::time::Instant::now() >= deadline {
            return Ok(Json(job));
        }
        // A waiter holds nothing while it sleeps (the job, with its receipt, is read
        // again on wake): a thousand waiters must not keep a thousand receipts.
        drop(job);
        loop {
            tokio::select! {
                changed = changes.recv() => match changed {
                    Ok(other) if other != id => continue,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        tokio::time::sleep_until(deadline).await;
                        break;
                    }
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
    }
}

/// A job by id (any kind), optionally waiting for it to finish: the same as
/// `GET /api/v1/receipts/{id}`.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", params(("id" = i64, Path, description = "Job id"), WaitQuery),
    responses((status = 200, body = Job), (status = 400, body = Problem, content_type = "application/problem+json"),
    (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn job(s: State<AppState>, id: Path<i64>, q: Query<WaitQuery>) -> Result<Json<Job>, Problem> {
    get_job(s, id, q).await
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    pub device: Option<String>,
    /// queued, in_flight, done, failed, needs_attention, cancelled
    pub status: Option<String>,
    /// RFC 3339 lower bound on the creation time.
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/jobs", params(ListQuery), responses((status = 200, body = [Job]),
    (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn list_jobs(State(s): State<AppState>, Query(q): Query<ListQuery>) -> Result<Json<Vec<Job>>, Problem> {
    let status = match q.status.as_deref() {
        None => None,
        Some(x) => Some(JobStatus::parse(x).ok_or_else(|| {
            Problem::new(StatusCode::BAD_REQUEST, "request.status_invalid", format!("Неизвестный статус {x:?}"), format!("Unknown status {x:?}"))
        })?),
    };
    let limit = q.limit.unwrap_or(100);
    if limit > super::openapi::MAX_LIST_LIMIT {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "request.limit_invalid",
            format!("limit: не больше {}", super::openapi::MAX_LIST_LIMIT),
            format!("limit: at most {}", super::openapi::MAX_LIST_LIMIT),
        ));
    }
    let f = JobFilter {
        device: q.device,
        status,
        since: q.since.as_deref().map(|t| instant(t, "since")).transpose()?,
        until: q.until.as_deref().map(|t| instant(t, "until")).transpose()?,
        limit,
    };
    s.store.blocking(move |st| st.list(&f)).await.map(Json).map_err(internal)
}

/// An RFC 3339 instant from a query (`2026-11-25T10:00:00+03:00` or `…Z`), as UTC.
fn instant(text: &str, name: &str) -> Result<String, Problem> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "request.time_invalid",
            format!("{name}: нужно время в формате RFC 3339, например 2026-11-25T10:00:00+03:00"),
            format!("{name}: expected an RFC 3339 instant such as 2026-11-25T10:00:00+03:00"),
        )
    })?;
    t.to_offset(time::UtcOffset::UTC).format(&Rfc3339).map_err(internal)
}

/// Cancels a job that has not started yet.
#[utoipa::path(delete, path = "/api/v1/jobs/{id}", params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = Job, description = "Cancelled"), (status = 400, body = Problem, content_type = "application/problem+json"),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json", description = "Already started or final"),
    (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn cancel_job(State(s): State<AppState>, Path(id): Path<i64>) -> Result<Json<Job>, Problem> {
    s.store.blocking(move |st| st.cancel(id)).await.map(Json).map_err(|e| match e {
        StoreError::NotFound => job_not_found(),
        StoreError::NotCancellable(j) => Problem::new(
            StatusCode::CONFLICT,
            "request.job_not_cancellable",
            "Задание уже выполняется или завершено — отменить нельзя",
            "The job has started or finished and cannot be cancelled",
        )
        .detail(format!("status {}", j.status.as_str())),
        e => internal(e),
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CashBody {
    /// Kopecks.
    #[schema(value_type = i64)]
    pub sum: Money,
}

macro_rules! simple_job {
    ($name:ident, $path:literal, $req:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, params(DeviceQuery, ("Idempotency-Key" = String, Header, description = "Client key")),
            responses((status = 202, body = Job), (status = 200, body = Job), (status = 400, body = Problem, content_type = "application/problem+json"),
                (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
                (status = 409, body = Problem, content_type = "application/problem+json")))]
        pub async fn $name(State(s): State<AppState>, Query(q): Query<DeviceQuery>, headers: HeaderMap) -> Result<Response, Problem> {
            enqueue(&s, q.device.as_deref(), &headers, $req).await
        }
    };
}

simple_job!(open_shift, "/api/v1/shift/open", JobRequest::OpenShift, "Opens the shift (a job).");
simple_job!(close_shift, "/api/v1/shift/close", JobRequest::CloseShift,
    "Z-report: closes the shift (a job). While one is queued or printing, another key answers 409 `shift.close_already_queued`.");
simple_job!(x_report, "/api/v1/x-report", JobRequest::XReport, "Prints an X-report (a job).");

#[utoipa::path(post, path = "/api/v1/cash-in", request_body = CashBody, params(DeviceQuery, ("Idempotency-Key" = String, Header, description = "Client key")),
    responses((status = 202, body = Job), (status = 200, body = Job), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"), (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn cash_in(
    State(s): State<AppState>,
    Query(q): Query<DeviceQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let b: CashBody = parse_json(&body_bytes(body)?)?;
    enqueue(&s, q.device.as_deref(), &headers, JobRequest::CashIn { sum: b.sum }).await
}

#[utoipa::path(post, path = "/api/v1/cash-out", request_body = CashBody, params(DeviceQuery, ("Idempotency-Key" = String, Header, description = "Client key")),
    responses((status = 202, body = Job), (status = 200, body = Job), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"), (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn cash_out(
    State(s): State<AppState>,
    Query(q): Query<DeviceQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let b: CashBody = parse_json(&body_bytes(body)?)?;
    enqueue(&s, q.device.as_deref(), &headers, JobRequest::CashOut { sum: b.sum }).await
}

/// A device error during a read, as a problem: the device is there but did not answer.
fn device_problem(e: &kkm_core::DriverError) -> Problem {
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.title_ru(), e.title_en()).detail(e.action_ru())
}

fn source_problem(e: crate::reconcile::source::SourceError) -> Problem {
    match e {
        crate::reconcile::source::SourceError::Driver(d) => device_problem(&d),
        crate::reconcile::source::SourceError::Store(s) => internal(s),
    }
}

fn timeout_problem() -> Problem {
    Problem::new(
        StatusCode::GATEWAY_TIMEOUT,
        "device.read_timeout",
        "ККТ не успела отдать все документы смены: прочитанные сохранены, повторите сверку — она продолжит с того места",
        "The device did not give all of the shift's documents in time; those read are cached, ask again to continue",
    )
}

/// A reconciliation body may carry a shift's list of operations: up to 32 MiB.
pub const MAX_RECONCILE_BODY: usize = 32 << 20;

/// How long a reconciliation may read the device: inside the router's request time-out,
/// so the caller gets this problem rather than a bare 408. Documents read before the
/// budget ran out are cached, so asking again continues where the read stopped.
const READ_BUDGET: Duration = Duration::from_secs(65);

#[derive(Deserialize, utoipa::IntoParams)]
pub struct TotalsQuery {
    /// Also print an X-report on the device.
    pub x_report: Option<bool>,
}

/// Sums of one operation by payment type, kopecks.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PaymentSums {
    #[schema(value_type = i64)]
    pub cash: Money,
    /// Безналичными (card, SBP).
    #[schema(value_type = i64)]
    pub card: Money,
    #[schema(value_type = i64)]
    pub advance: Money,
    #[schema(value_type = i64)]
    pub credit: Money,
    #[schema(value_type = i64)]
    pub other: Money,
    /// Receipts of this operation in the shift.
    pub receipts: u32,
}

/// The shift's counters, read without printing.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ShiftTotalsView {
    pub device: String,
    pub shift_number: u32,
    pub shift_state: String,
    /// Device time of the shift-open document.
    pub opened_at: Option<String>,
    #[schema(value_type = i64)]
    pub cash_in_drawer: Money,
    #[schema(value_type = i64)]
    pub cash_in: Money,
    #[schema(value_type = i64)]
    pub cash_out: Money,
    pub sale: PaymentSums,
    pub sale_return: PaymentSums,
    pub purchase: PaymentSums,
    pub purchase_return: PaymentSums,
    pub receipt_count: u32,
    pub fn_serial: String,
    pub last_document: u32,
    /// With `x_report=true`: whether the X-report printed, and why not.
    #[schema(value_type = Option<Object>)]
    pub x_report: Option<serde_json::Value>,
}

pub fn totals_view(device: &str, r: &crate::queue::worker::ShiftRead) -> ShiftTotalsView {
    use kkm_core::{Operation, PaymentType};
    let t = &r.totals;
    let sums = |op| PaymentSums {
        cash: t.sum(op, PaymentType::Cash),
        card: t.sum(op, PaymentType::Electronic),
        advance: t.sum(op, PaymentType::Prepayment),
        credit: t.sum(op, PaymentType::Credit),
        other: t.sum(op, PaymentType::Other),
        receipts: t.count(op),
    };
    ShiftTotalsView {
        device: device.to_string(),
        shift_number: t.shift_number,
        shift_state: serde_json::to_value(r.status.shift).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
        opened_at: t.opened_at.as_ref().map(kkm_core::device::dt::format),
        cash_in_drawer: t.cash_in_drawer,
        cash_in: t.cash_ins,
        cash_out: t.cash_outs,
        sale: sums(Operation::Sale),
        sale_return: sums(Operation::SaleReturn),
        purchase: sums(Operation::Purchase),
        purchase_return: sums(Operation::PurchaseReturn),
        receipt_count: t.receipt_count,
        fn_serial: r.fn_serial.clone(),
        last_document: r.last_document,
        x_report: r.x_report.as_ref().map(|x| match x {
            Ok(()) => serde_json::json!({"printed": true}),
            Err(e) => serde_json::json!({"printed": false, "error": e}),
        }),
    }
}

/// The shift's counters without printing (cash in the drawer; sales, returns, purchases
/// and purchase returns by payment type; cash-ins and cash-outs; receipts by operation;
/// shift number and open time). `x_report=true` prints an X-report as well. The read
/// goes through the device's worker, between jobs.
#[utoipa::path(get, path = "/api/v1/devices/{id}/shift/totals", params(TotalsQuery),
    responses((status = 200, body = ShiftTotalsView), (status = 404, body = Problem), (status = 503, body = Problem), (status = 504, body = Problem)))]
pub async fn shift_totals(State(s): State<AppState>, Path(id): Path<String>, Query(q): Query<TotalsQuery>) -> Result<Json<ShiftTotalsView>, Problem> {
    use crate::reconcile::source::{shift_documents, DeviceReader};
    let dev = s.device(Some(&id)).ok_or_else(|| unknown_device(&id))?;
    let mut reader = dev.handle.clone();
    let work = async {
        let mut read = reader.shift(q.x_report.unwrap_or(false)).await.map_err(|e| device_problem(&e))?;
        let docs = shift_documents(&mut reader, Some(&s.store), &read.fn_serial, read.last_document).await.map_err(source_problem)?;
        read.totals.opened_at = docs.opened_at();
        crate::reconcile::source::fill_missing_sums(&mut read.totals, &docs);
        Ok::<_, Problem>(read)
    };
    let read = tokio::time::timeout(READ_BUDGET, work).await.map_err(|_| timeout_problem())??;
    Ok(Json(totals_view(&dev.id, &read)))
}

/// A reconciliation request: the device and what the program says.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileBody {
    /// Device id; may be omitted when only one device is configured.
    pub device: Option<String>,
    pub program: crate::reconcile::ProgramInput,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ReconcileQuery {
    /// `json` (default), `csv` (for the accountant) or `text` (the Russian report).
    pub format: Option<String>,
}

/// Reconciles the program's figures with the register's shift: reads the counters and
/// the shift's documents (cached), matches them with the agent's journal and the
/// program's totals or operations, and explains every kopeck of the difference.
#[utoipa::path(post, path = "/api/v1/reconciliations", request_body = ReconcileBody, params(ReconcileQuery),
    responses((status = 200, body = crate::reconcile::Reconciliation), (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem), (status = 503, body = Problem), (status = 504, body = Problem)))]
pub async fn reconcile(State(s): State<AppState>, Query(q): Query<ReconcileQuery>, body: Result<Bytes, BytesRejection>) -> Result<Response, Problem> {
    let format = q.format.as_deref().unwrap_or("json");
    if !["json", "csv", "text"].contains(&format) {
        return Err(Problem::new(StatusCode::BAD_REQUEST, "request.format_invalid", "format: json, csv или text", "format must be json, csv or text"));
    }
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "request.body_too_large", "Запрос сверки слишком большой (больше 32 МБ)", "Reconciliation body over 32 MiB")
        } else {
            Problem::new(StatusCode::BAD_REQUEST, "request.body_unreadable", "Не удалось прочитать тело запроса", "Cannot read the request body")
                .detail(e.body_text())
        }
    })?;
    let b: ReconcileBody = parse_json(&body)?;
    let program = b.program.validate().map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.code, e.ru, e.en))?;
    let dev = s.device(b.device.as_deref()).ok_or_else(|| match b.device.as_deref() {
        Some(id) => unknown_device(id),
        None => Problem::new(StatusCode::BAD_REQUEST, "request.device_required", "Укажите ККТ: \"device\": \"<id>\"", "Choose a device: \"device\": \"<id>\""),
    })?;
    let g = tokio::time::timeout(READ_BUDGET, crate::reconcile::source::gather(&dev.handle, &s.store, &dev.id))
        .await
        .map_err(|_| timeout_problem())?
        .map_err(source_problem)?;
    let r = crate::reconcile::reconcile(&g.input, &program);
    Ok(match format {
        "csv" => ([(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (axum::http::header::CONTENT_DISPOSITION, "attachment; filename=\"reconciliation.csv\"")], crate::reconcile::report::csv(&r)).into_response(),
        "text" => ([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], crate::reconcile::report::human(&r)).into_response(),
        _ => Json(r).into_response(),
    })
}
