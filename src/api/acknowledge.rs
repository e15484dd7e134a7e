//! «Проверено»: a person marks a `needs_attention` job as checked. The mark is recorded
//! (`acknowledged_at`), the job keeps its status and stays in the journal, so the
//! accountant can still see what happened and who needed to look.

use super::problem::{internal, Problem};
use super::routes::job_not_found;
use super::AppState;
use crate::queue::{Job, StoreError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

/// Marks a `needs_attention` job as checked by a person. The job keeps its status and
/// gets `acknowledged_at`; marking it again answers the same job with the first time.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/acknowledge", params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = Job, description = "Marked as checked"), (status = 400, body = Problem, content_type = "application/problem+json"),
    (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 404, body = Problem, content_type = "application/problem+json"),
    (status = 409, body = Problem, content_type = "application/problem+json", description = "The job does not need attention")))]
pub async fn acknowledge_job(State(s): State<AppState>, Path(id): Path<i64>) -> Result<Json<Job>, Problem> {
    s.store.blocking(move |st| st.acknowledge(id)).await.map(Json).map_err(|e| match e {
        StoreError::NotFound => job_not_found(),
        StoreError::NotAcknowledgeable(j) => Problem::new(
            StatusCode::CONFLICT,
            "request.job_not_needing_attention",
            "Это задание не требует проверки: отметить его нельзя",
            "Only a job that needs attention can be marked as checked",
        )
        .detail(format!("status {}", j.status.as_str())),
        e => internal(e),
    })
}
