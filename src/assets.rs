//! First-party static files, compiled into the binary (no CDN, no build step).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::state::AppState;

const APP_CSS: &str = include_str!("../static/app.css");
const ADMIN_CSS: &str = include_str!("../static/admin.css");
const APP_JS: &str = include_str!("../static/app.js");
const FAVICON: &str = include_str!("../static/favicon.svg");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/static/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        .route("/static/admin.css", get(|| async { asset("text/css; charset=utf-8", ADMIN_CSS) }))
        .route("/static/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/favicon.ico", get(|| async { asset("image/svg+xml", FAVICON) }))
        .route("/static/favicon.svg", get(|| async { asset("image/svg+xml", FAVICON) }))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body)
}
