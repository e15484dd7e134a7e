//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` annotations
//! and the request types' schemas.

use super::problem::Problem;
use super::routes;

mod conventions;
pub use conventions::{MAX_LIST_LIMIT, MAX_WAIT_SECONDS};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "kkm-agent", description = "Localhost API of the fiscal-register agent. Money is integer kopecks."),
    paths(
        routes::devices, routes::device, routes::submit_receipt, routes::get_job, routes::job, routes::list_jobs, routes::cancel_job,
        super::acknowledge::acknowledge_job,
        routes::open_shift, routes::close_shift, routes::x_report, routes::cash_in, routes::cash_out,
        routes::shift_totals, routes::reconcile, super::diagnostics::diagnostics
    ),
    components(schemas(
        Problem, routes::DeviceView, routes::CashBody, crate::queue::Job, crate::queue::JobStatus, crate::queue::JobError,
        kkm_core::FiscalResult, kkm_core::Receipt, kkm_core::Item, kkm_core::Payment,
        kkm_core::Cashier, kkm_core::Customer, kkm_core::Operation, kkm_core::VatRate, kkm_core::PaymentMethod,
        kkm_core::PaymentObject, kkm_core::PaymentType, kkm_core::TaxSystem, kkm_core::Money, kkm_core::Quantity,
        routes::ShiftTotalsView, routes::PaymentSums, routes::ReconcileBody, crate::reconcile::ProgramInput,
        crate::reconcile::ProgramOperation, crate::reconcile::input::OperationKind, crate::reconcile::Reconciliation,
        crate::reconcile::Cause, crate::reconcile::Category, crate::reconcile::DocumentRef, crate::reconcile::Figures,
        crate::reconcile::DocumentStats, super::diagnostics::Diagnostics, super::diagnostics::DeviceDiagnostics,
        crate::queue::worker::Health, crate::queue::worker::HealthFinding, crate::queue::worker::HealthSeverity,
        crate::queue::worker::HealthRegistration,
        crate::queue::worker::TimedError
    )),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        openapi.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as served: the annotations' output plus the conventions every operation
/// shares, applied in one place so that a new route cannot forget them.
pub fn document_json() -> &'static serde_json::Value {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(document()).unwrap_or_default();
        conventions::apply(&mut doc);
        doc
    })
}
