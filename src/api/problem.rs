//! RFC 9457 problem details with our stable codes and Russian/English titles.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable, machine-readable code, e.g. `receipt.payments_short`.
    pub code: String,
    pub title_ru: String,
    pub title_en: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, ru: impl Into<String>, en: impl Into<String>) -> Problem {
        let en = en.into();
        Problem {
            kind: format!("https://kkm-agent.local/problems/{code}"),
            title: en.clone(),
            status: status.as_u16(),
            code: code.into(),
            title_ru: ru.into(),
            title_en: en,
            detail: None,
        }
    }

    pub fn detail(mut self, d: impl Into<String>) -> Problem {
        self.detail = Some(d.into());
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response()
    }
}

pub fn internal(e: impl std::fmt::Display) -> Problem {
    tracing::error!("internal error: {e}");
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "agent.internal", "Внутренняя ошибка агента", "Internal agent error")
        .detail(e.to_string())
}

/// Turns any error response that is not problem+json yet (axum's own rejections of a
/// bad path parameter or query string, an unknown route, a wrong method, a wrong
/// content type) into one, keeping the status and the framework's text as `detail`.
pub async fn errors_as_problems(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let (code, ru, en) = match status {
        StatusCode::NOT_FOUND => ("request.not_found", "Такого адреса в API нет", "No such API route"),
        StatusCode::METHOD_NOT_ALLOWED => ("request.method_not_allowed", "Этот метод для адреса не поддерживается", "Method not allowed for this route"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("request.content_type", "Нужен Content-Type: application/json", "Content-Type must be application/json"),
        StatusCode::PAYLOAD_TOO_LARGE => ("request.body_too_large", "Слишком большой запрос", "Request body too large"),
        s if s.is_client_error() => ("request.invalid", "Неверный запрос (адрес или параметры)", "Bad request (path or query)"),
        _ => ("agent.internal", "Внутренняя ошибка агента", "Internal agent error"),
    };
    let mut p = Problem::new(status, code, ru, en);
    if !text.trim().is_empty() {
        p = p.detail(text.trim().to_string());
    }
    let mut out = p.into_response();
    // Keep what the original answer said about the request (Allow, CORS).
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// A handler panicked (a bug): the request gets a 500 problem and the log says where.
pub fn from_panic(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string());
    tracing::error!(panic = %what, "a request handler panicked");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal.bug",
        "Внутренняя ошибка агента: запрос не выполнен. Сообщите в поддержку, приложив журнал",
        "Internal error in the agent: the request was not carried out. Report it to support with the log",
    )
    .into_response()
}
