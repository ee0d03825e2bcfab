//! The human-readable log format (`LOG_FORMAT=text`): tracing's fields as `key=value`, followed by
//! the request being served (`request_id`, `method`, `path`, from `context`), so that a text line
//! logged while serving a request can be tied to it just as a JSON line can.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::context;

/// A line, for example (one line in the log):
///
/// ```text
/// 2026-12-04T22:20:06.298624Z  WARN SECURITY CSRF check failed category="SECURITY"
///   event="csrf_failure" step="customer" request_id="nuGbv1KWR8BxYP5r" method="POST" path="/register/customer"
/// ```
pub struct TextFormat;

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        SystemTime.format_time(&mut writer)?;
        write!(writer, " {:>5} ", event.metadata().level())?;
        ctx.format_fields(writer.by_ref(), event)?;
        context::with_current(|request| write_request(&mut writer, request)).transpose()?;
        writeln!(writer)
    }
}

/// The request's fields written as the access-log line writes its own (string fields quoted), so
/// that one search (`request_id="…"`) finds both.
fn write_request(writer: &mut Writer<'_>, request: &context::RequestContext) -> fmt::Result {
    write!(writer, " request_id={:?} method={:?} path={:?}", request.id, request.method, request.path)
}
