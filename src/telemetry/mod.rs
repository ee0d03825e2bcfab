//! Logging: one JSON object per line on stdout (production), or a human-readable `key=value` format
//! (`text`) for local runs.
//!
//! Both formats add the request being served (`request_id`, `method`, `path`, kept in a
//! task-local, `context`) to each line logged while serving it: at the top level in JSON, where
//! log queries such as the runbook's `filter-log-events` find them, and at the end of a text line.
//! Spans are not used: their fields would not appear in the lines.

use std::io::Write;

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::macros::format_description;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub mod context;
pub mod redact;
mod text;

use crate::config::LogFormat;
use crate::json::push_json_string;

/// Installs the global subscriber. Calling it twice is harmless (the second call does nothing).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry.with(JsonLayer).try_init(),
        LogFormat::Text => {
            // Colour only on a terminal: escape codes in a file or a pipe would split `key=value`.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
            registry.with(tracing_subscriber::fmt::layer().with_ansi(ansi).event_format(text::TextFormat)).try_init()
        }
    };
}

struct JsonLayer;

/// Writes fields as JSON members straight into a line buffer.
struct JsonWriter<'a> {
    out: &'a mut String,
    has_message: bool,
}

impl JsonWriter<'_> {
    fn key(&mut self, field: &Field) {
        self.has_message |= field.name() == "message";
        self.out.push(',');
        push_json_string(self.out, field.name());
        self.out.push(':');
    }

    fn integer(&mut self, field: &Field, value: impl itoa::Integer) {
        self.key(field);
        self.out.push_str(itoa::Buffer::new().format(value));
    }

    fn number_f64(&mut self, value: f64) {
        // Latencies are rounded to hundredths: written from integers, without float formatting.
        let hundredths = (value * 100.0).round();
        if hundredths.abs() < 1e15 && hundredths / 100.0 == value {
            let hundredths = hundredths as i64;
            if hundredths < 0 {
                self.out.push('-');
            }
            let (whole, fraction) = (hundredths.unsigned_abs() / 100, hundredths.unsigned_abs() % 100);
            self.out.push_str(itoa::Buffer::new().format(whole));
            self.out.push('.');
            self.out.push(char::from(b'0' + (fraction / 10) as u8));
            self.out.push(char::from(b'0' + (fraction % 10) as u8));
            return;
        }
        // Otherwise ryu: the shortest form that reads back as the same number, valid JSON.
        let mut buffer = ryu::Buffer::new();
        self.out.push_str(if value.is_finite() { buffer.format_finite(value) } else { "null" });
    }
}

impl Visit for JsonWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_string(self.out, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.integer(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.integer(field, value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        self.number_f64(value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out.push_str(if value { "true" } else { "false" });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.key(field);
        push_json_string(self.out, &format!("{value:?}"));
    }
}

/// Lines not yet written (on a runtime worker, see `flush_this_thread`), the line being written at
/// their end, and the timestamp's date and time up to the second, formatted once per second and
/// thread rather than for every line.
struct LineBuffer {
    line: String,
    /// On a runtime worker that has parked at least once: INFO lines wait here until the worker
    /// parks again (runs out of work), the batch nears `BATCH_BYTES`, or a new line finds the first one
    /// `BATCH_MICROS` old. Elsewhere (the blocking pool, the main thread), every line is written
    /// at once.
    batching: bool,
    pending_since: u64,
    second: u64,
    second_text: String,
}

/// Below `PIPE_BUF` (4,096 on Linux) with room for one more line: a write of complete lines to a
/// pipe (a container's stdout) that small is never interleaved with another thread's.
const BATCH_BYTES: usize = 3 * 1024;
const BATCH_MICROS: u64 = 200_000;

thread_local! {
    static LINE: std::cell::RefCell<LineBuffer> = std::cell::RefCell::new(LineBuffer {
        line: String::with_capacity(BATCH_BYTES + 1024),
        batching: false,
        pending_since: 0,
        second: u64::MAX,
        second_text: String::new(),
    });
}

fn write_out(line: &mut String) {
    if !line.is_empty() {
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
        line.clear();
    }
}

/// For the runtime's `on_thread_park` hook: writes the lines this worker has batched, now that it
/// has nothing else to do, and batches its lines from then on. Under load, one `write` then
/// carries several access-log lines instead of one each (the `write` was about half of what a
/// log line cost); when idle, a worker parks right after each request, so lines are not delayed.
pub fn flush_this_thread() {
    LINE.with(|buffer| {
        if let Ok(mut buffer) = buffer.try_borrow_mut() {
            buffer.batching = true;
            write_out(&mut buffer.line);
        }
    });
}

/// For the runtime's `on_thread_stop` hook, and anywhere else lines must be out now.
pub fn flush_and_stop_batching() {
    LINE.with(|buffer| {
        if let Ok(mut buffer) = buffer.try_borrow_mut() {
            buffer.batching = false;
            write_out(&mut buffer.line);
        }
    });
}

/// RFC 3339 in UTC with microseconds: `2026-11-29T10:37:12.123456Z`.
fn push_timestamp(buffer: &mut LineBuffer, now: std::time::Duration) {
    if now.as_secs() != buffer.second {
        buffer.second = now.as_secs();
        buffer.second_text = OffsetDateTime::from_unix_timestamp(now.as_secs() as i64)
            .ok()
            .and_then(|t| t.format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]")).ok())
            .unwrap_or_default();
    }
    buffer.line.push_str(&buffer.second_text);
    buffer.line.push('.');
    let micros = now.subsec_micros();
    for place in [100_000, 10_000, 1_000, 100, 10, 1] {
        buffer.line.push(char::from(b'0' + (micros / place % 10) as u8));
    }
    buffer.line.push('Z');
}

impl<S: Subscriber> Layer<S> for JsonLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        LINE.with(|buffer| {
            let Ok(mut buffer) = buffer.try_borrow_mut() else { return };
            let buffer = &mut *buffer;
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            let now_micros = now.as_micros() as u64;
            if buffer.line.is_empty() {
                buffer.pending_since = now_micros;
            }
            buffer.line.push_str("{\"timestamp\":\"");
            push_timestamp(buffer, now);
            let line = &mut buffer.line;
            line.push_str("\",\"level\":\"");
            line.push_str(event.metadata().level().as_str());
            line.push('"');
            context::with_current(|request| {
                line.push_str(",\"request_id\":");
                push_json_string(line, &request.id);
                line.push_str(",\"method\":\"");
                line.push_str(request.method);
                line.push_str("\",\"path\":");
                push_json_string(line, &request.path);
            });
            let mut writer = JsonWriter { out: line, has_message: false };
            event.record(&mut writer);
            if !writer.has_message {
                line.push_str(",\"message\":\"\"");
            }
            line.push_str(",\"target\":");
            push_json_string(line, event.metadata().target());
            line.push_str("}\n");
            // Warnings and errors (every security event among them) go out at once, with the
            // lines batched before them, in order.
            let urgent = *event.metadata().level() <= tracing::Level::WARN;
            if urgent
                || !buffer.batching
                || buffer.line.len() >= BATCH_BYTES
                || now_micros.saturating_sub(buffer.pending_since) >= BATCH_MICROS
            {
                write_out(&mut buffer.line);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_valid_json_and_keep_their_value() {
        for value in [0.0, 0.29, 12.3, 1234.56, -0.07, 0.1 + 0.2, 1e-9, 3.0e20] {
            let mut out = String::new();
            let mut writer = super::JsonWriter { out: &mut out, has_message: false };
            writer.number_f64(value);
            let parsed: f64 = serde_json::from_str(&out).expect("a JSON number");
            assert_eq!(parsed, value, "{out}");
        }
    }
}
