//! The localhost HTTP API for the shop program, and a small page for cashiers.
//!
//! * [`security`]: loopback-only Host and Origin (no DNS rebinding, no CSRF from a
//!   browser tab), the bearer token, bounded bodies.
//! * [`problem`]: every error as `application/problem+json` with a stable `code` and
//!   `title_ru`/`title_en`.
//! * [`routes`]: the handlers, under `/api/v1`.
//! * [`acknowledge`]: «Проверено» on a job that needed a person.
//! * [`diagnostics`]: the daemon's health checks and its own state, for engineers.
//! * [`openapi`]: the OpenAPI 3 document, generated from the handlers' annotations.

pub mod acknowledge;
pub mod diagnostics;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod security;

use crate::queue::worker::WorkerHandle;
use crate::queue::Store;
use axum::Router;
use kkm_core::Limits;
use std::sync::Arc;

/// One configured device, as the API sees it.
#[derive(Clone)]
pub struct DeviceEntry {
    pub id: String,
    pub model: String,
    pub port: String,
    pub limits: Limits,
    pub handle: WorkerHandle,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub committer: crate::queue::committer::Committer,
    pub devices: Arc<Vec<DeviceEntry>>,
    pub token: Arc<String>,
    /// Web-app origins allowed to call the API from a browser (CORS).
    pub allowed_origins: Arc<Vec<String>>,
}

impl AppState {
    pub fn device(&self, id: Option<&str>) -> Option<&DeviceEntry> {
        match id {
            Some(id) => self.devices.iter().find(|d| d.id == id),
            None if self.devices.len() == 1 => self.devices.first(),
            None => None,
        }
    }
}

/// Every request ends within this (a long-poll waits at most 60 s).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(75);

/// The largest request body accepted.
pub const MAX_BODY: usize = 256 * 1024;

pub fn router(state: AppState) -> Router {
    routes::router(state.clone())
        .layer(axum::middleware::from_fn_with_state(state, security::guard))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        // A bug must cost one request a 500, never the connection without an answer.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(problem::from_panic))
        // Outermost: whatever answered an error (the guard, a handler, the framework's
        // own rejections of a bad path, query or method), it leaves as problem+json.
        .layer(axum::middleware::from_fn(problem::errors_as_problems))
}
