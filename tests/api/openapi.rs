//! The committed OpenAPI description is the one the code generates and serves.

use crate::helpers::{Backend, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_openapi_matches_the_code() {
    let committed = include_str!("../../docs/api-v1.openapi.json");
    let generated = normal_form_app::openapi::json();
    assert!(committed == generated, "docs/api-v1.openapi.json is out of date: run `cargo run -- openapi > docs/api-v1.openapi.json`");
    let app = spawn_app(Backend::Sqlite).await;
    let served = app.get("/api/v1/openapi.json").await.text().await.expect("body");
    assert_eq!(served, generated);
    let spec: serde_json::Value = serde_json::from_str(&served).expect("json");
    assert_eq!(spec["openapi"], "3.1.0");
    for path in [
        "/api/v1/flows",
        "/api/v1/flows/current",
        "/api/v1/flows/current/steps/{step}",
        "/api/v1/flows/current/plans",
        "/api/v1/flows/current/submit",
        "/api/v1/postal-codes/{code}",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} described");
    }
}
