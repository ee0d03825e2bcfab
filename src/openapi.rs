//! The OpenAPI 3.1 description of `/api/v1`, generated from the handlers' annotations and served
//! at `/api/v1/openapi.json`. `docs/api-v1.openapi.json` is a committed copy; a test fails when
//! the two drift apart (regenerate with `normal-form-app openapi > docs/api-v1.openapi.json`).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::address::api::PostalAnswer;
use crate::address::postal::PostalAddress;
use crate::http::problem::{FieldProblem, Problem};
use crate::registration::api::{FieldView, FlowView, PlanList, PlanView, Registered, StepView, SubmitRequest};

struct FlowAuth;

impl Modify for FlowAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "flowToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Native clients: the `token` returned by POST /api/v1/flows"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "flowCookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "nf_flow",
                "Browser clients: the flow cookie (`__Host-nf_flow` over HTTPS); state changes also need the X-CSRF-Token header",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "normal-form-app API",
        version = "1",
        description = "The registration flow as JSON for single-page and mobile front ends, with the same rules and state as the HTML form, and the postal-code lookup. Errors are RFC 9457 problem details (application/problem+json) with a Japanese `detail`."
    ),
    paths(
        crate::registration::api::start,
        crate::registration::api::read,
        crate::registration::api::save,
        crate::registration::api::plan_list,
        crate::registration::api::submit,
        crate::address::routes::lookup,
    ),
    components(schemas(FlowView, StepView, FieldView, PlanList, PlanView, SubmitRequest, Registered, Problem, FieldProblem, PostalAnswer, PostalAddress)),
    modifiers(&FlowAuth)
)]
pub struct ApiDoc;

/// The description as pretty JSON, exactly as committed under `docs/`.
pub fn json() -> String {
    let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_else(|_| "{}".into());
    text.push('\n');
    text
}
