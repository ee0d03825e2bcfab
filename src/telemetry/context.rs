//! The request being served, in a task-local: the JSON log layer copies it into every line logged
//! while serving it, and the error page shows its id. `http::request_log` opens the scope; this
//! module depends on nothing in the crate, so both the log layer and the HTTP edge use it
//! downwards.
//!
//! A task-local rather than a tracing span: a span per request (allocated in the registry, entered
//! and left on every poll) cost more than the access-log line itself.

use std::future::Future;
use std::sync::Arc;

/// What every log line written while serving a request says about it.
pub struct RequestContext {
    pub id: String,
    pub method: &'static str,
    pub path: String,
}

tokio::task_local! {
    static CURRENT: Arc<RequestContext>;
}

/// Runs `f` with the request being served on this task, if any (none in background jobs and on
/// the blocking pool).
pub fn with_current<R>(f: impl FnOnce(&RequestContext) -> R) -> Option<R> {
    CURRENT.try_with(|request| f(request)).ok()
}

/// The id of the request being served, for pages that show it to the person (the error page), so
/// that an operator can find its log lines.
pub fn current_id() -> Option<String> {
    with_current(|request| request.id.clone())
}

/// Runs `f` (synchronously) as part of serving `context`: what it logs carries the request.
pub fn sync_scope<R>(context: Arc<RequestContext>, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(context, f)
}

/// Serves `future` as part of `context`.
pub async fn scope<F: Future>(context: Arc<RequestContext>, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}
