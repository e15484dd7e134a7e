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
