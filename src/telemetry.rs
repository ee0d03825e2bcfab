//! Logging: one JSON object per line on stdout (production), or tracing's human-readable format
//! for local runs.
//!
//! The JSON layer flattens the fields of the enclosing spans into each line, so an event logged
//! inside a request carries that request's `request_id` and `path` at the top level, where log
//! queries such as the runbook's `filter-log-events` find them.

use std::io::Write;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber, span};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// Installs the global subscriber. Calling it twice is harmless (the second call does nothing).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry.with(JsonLayer).try_init(),
        LogFormat::Text => registry.with(tracing_subscriber::fmt::layer().with_target(false)).try_init(),
    };
}

struct JsonLayer;

/// A span's fields, rendered once as `,"key":value` pairs and copied into each line logged inside
/// the span — cheaper than rebuilding them per event, which matters at one line per request.
struct SpanFields(String);

/// Writes fields as JSON members straight into a line buffer.
struct JsonWriter<'a> {
    out: &'a mut String,
    has_message: bool,
}

fn escape_into(out: &mut String, value: &str) {
    use std::fmt::Write as _;
    out.push('"');
    // Most values (paths, ids, event names, Japanese messages) need no escaping. A branch-free
    // check over all bytes (which the compiler vectorises) finds that out, and the value is
    // copied whole; otherwise the runs between the bytes that need escaping are copied.
    let bytes = value.as_bytes();
    if !bytes.iter().fold(false, |any, &b| any | (b < 0x20) | (b == b'"') | (b == b'\\')) {
        out.push_str(value);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&value[start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&value[start..]);
    out.push('"');
}

impl JsonWriter<'_> {
    fn key(&mut self, field: &Field) {
        self.has_message |= field.name() == "message";
        self.out.push(',');
        escape_into(self.out, field.name());
        self.out.push(':');
    }

    fn number(&mut self, field: &Field, value: impl std::fmt::Display) {
        use std::fmt::Write as _;
        self.key(field);
        let _ = write!(self.out, "{value}");
    }
}

impl Visit for JsonWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        escape_into(self.out, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.number(field, value);
        } else {
            self.key(field);
            self.out.push_str("null");
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.number(field, value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.key(field);
        escape_into(self.out, &format!("{value:?}"));
    }
}

thread_local! {
    static LINE: std::cell::RefCell<String> = std::cell::RefCell::new(String::with_capacity(512));
}

impl<S> Layer<S> for JsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = String::new();
        attrs.record(&mut JsonWriter { out: &mut fields, has_message: false });
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut JsonWriter { out: &mut fields.0, has_message: false });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        LINE.with(|line| {
            let Ok(mut line) = line.try_borrow_mut() else { return };
            line.clear();
            line.push_str("{\"timestamp\":\"");
            line.push_str(&OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default());
            line.push_str("\",\"level\":\"");
            line.push_str(event.metadata().level().as_str());
            line.push('"');
            if let Some(scope) = ctx.event_scope(event) {
                for span in scope.from_root() {
                    if let Some(fields) = span.extensions().get::<SpanFields>() {
                        line.push_str(&fields.0);
                    }
                }
            }
            let mut writer = JsonWriter { out: &mut line, has_message: false };
            event.record(&mut writer);
            if !writer.has_message {
                line.push_str(",\"message\":\"\"");
            }
            line.push_str(",\"target\":");
            escape_into(&mut line, event.metadata().target());
            line.push_str("}\n");
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
        });
    }
}

/// Masks what looks like an email address or a phone number in free text — error messages from
/// other systems (an SMTP server's rejection, say) may quote what we sent them, and no personal
/// data may reach the logs.
pub fn redact(text: &str) -> String {
    let is_separator = |c: char| c.is_whitespace() || "<>\"'(),;[]".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let digits = word.chars().filter(char::is_ascii_digit).count();
        if word.contains('@') || digits >= 10 {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_separator(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn json_escaping_keeps_every_line_valid() {
        let mut out = String::new();
        super::escape_into(&mut out, "a\"b\\c\nd\u{1}é");
        let parsed: String = serde_json::from_str(&out).expect("valid JSON string");
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn redacts_addresses_and_phone_numbers() {
        assert_eq!(redact("550 5.1.1 <taro@example.jp>: user unknown"), "550 5.1.1 <[redacted]>: user unknown");
        assert_eq!(redact("call 090-1234-5678 now"), "call [redacted] now");
        assert_eq!(redact("timed out after 2000 ms"), "timed out after 2000 ms");
    }
}
