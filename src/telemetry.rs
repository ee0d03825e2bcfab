//! Logging: one JSON object per line on stdout (production), or tracing's human-readable format
//! for local runs.
//!
//! The JSON layer flattens the fields of the enclosing spans into each line, so an event logged
//! inside a request carries that request's `request_id` and `path` at the top level, where log
//! queries such as the runbook's `filter-log-events` find them.

use std::io::Write;

use serde_json::{Map, Value};
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

struct SpanFields(Map<String, Value>);

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_string(), Value::from(format!("{value:?}")));
    }
}

impl<S> Layer<S> for JsonLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut JsonVisitor(&mut fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Map::new();
        let timestamp = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
        line.insert("timestamp".into(), Value::from(timestamp));
        line.insert("level".into(), Value::from(event.metadata().level().as_str()));
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    line.extend(fields.0.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        line.entry("message").or_insert_with(|| Value::from(""));
        line.insert("target".into(), Value::from(event.metadata().target()));
        let mut out = serde_json::to_vec(&line).unwrap_or_default();
        out.push(b'\n');
        let _ = std::io::stdout().lock().write_all(&out);
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
    fn redacts_addresses_and_phone_numbers() {
        assert_eq!(redact("550 5.1.1 <taro@example.jp>: user unknown"), "550 5.1.1 <[redacted]>: user unknown");
        assert_eq!(redact("call 090-1234-5678 now"), "call [redacted] now");
        assert_eq!(redact("timed out after 2000 ms"), "timed out after 2000 ms");
    }
}
