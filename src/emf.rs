//! CloudWatch Embedded Metric Format without an agent (`METRICS_CLOUDWATCH_EMF=1`): once a
//! minute, one JSON line per namespace on stdout, which CloudWatch Logs in ECS turns into the
//! metrics the runbook queries — `Normal-Form-App/Application` (ErrorRate, ResponseTime,
//! ActiveSessions, Registrations, CSRFFailures, RateLimited; no dimensions) and
//! `Normal-Form-App/External-API` (ResponseTime, SuccessRate; dimension APIName).
//!
//! The figures are the differences between two renderings of our own Prometheus metrics, so the
//! two outputs can never disagree.

use std::collections::HashMap;

use serde_json::{Value, json};

/// One parsed Prometheus sample: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

pub fn parse_prometheus(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}')?;
                    let labels = inner
                        .split("\",")
                        .filter_map(|pair| {
                            let (k, v) = pair.split_once("=\"")?;
                            Some((k.trim_matches(',').to_string(), v.trim_end_matches('"').to_string()))
                        })
                        .collect();
                    (name.to_string(), labels)
                }
                None => (series.to_string(), Vec::new()),
            };
            Some((name, labels, value))
        })
        .collect()
}

fn label<'a>(labels: &'a [(String, String)], key: &str) -> Option<&'a str> {
    labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Cumulative figures taken from one rendering.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub requests: f64,
    pub errors: f64,
    /// Cumulative bucket counts of request latency, by upper bound (seconds).
    latency_buckets: Vec<(f64, f64)>,
    registrations: f64,
    csrf_failures: f64,
    rate_limited: f64,
    active_flows: f64,
    /// Per API: (calls, successes, latency sum in seconds, latency count).
    apis: HashMap<String, (f64, f64, f64, f64)>,
}

impl Snapshot {
    pub fn from_prometheus(text: &str) -> Snapshot {
        let mut s = Snapshot::default();
        let mut buckets: HashMap<String, f64> = HashMap::new();
        for (name, labels, value) in parse_prometheus(text) {
            match name.as_str() {
                "nfa_http_requests_total" => {
                    s.requests += value;
                    if label(&labels, "status_class") == Some("5xx") {
                        s.errors += value;
                    }
                }
                "nfa_http_request_duration_seconds_bucket" => {
                    if let Some(le) = label(&labels, "le") {
                        *buckets.entry(le.to_string()).or_default() += value;
                    }
                }
                "nfa_registrations_completed_total" => s.registrations += value,
                "nfa_security_csrf_failures_total" => s.csrf_failures += value,
                "nfa_security_rate_limited_total" => s.rate_limited += value,
                "nfa_registration_active_flows" => s.active_flows = value,
                "nfa_external_api_requests_total" => {
                    if let Some(api) = label(&labels, "api") {
                        let entry = s.apis.entry(api.to_string()).or_default();
                        entry.0 += value;
                        if label(&labels, "outcome") == Some("success") {
                            entry.1 += value;
                        }
                    }
                }
                "nfa_external_api_request_duration_seconds_sum" | "nfa_external_api_request_duration_seconds_count" => {
                    if let Some(api) = label(&labels, "api") {
                        let entry = s.apis.entry(api.to_string()).or_default();
                        if name.ends_with("_sum") {
                            entry.2 += value;
                        } else {
                            entry.3 += value;
                        }
                    }
                }
                _ => {}
            }
        }
        s.latency_buckets = buckets
            .into_iter()
            .map(|(le, count)| (if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::INFINITY) }, count))
            .collect();
        s.latency_buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        s
    }
}

/// The 95th percentile (ms) of the requests between two snapshots, interpolated in its bucket.
pub fn p95_ms(before: &Snapshot, after: &Snapshot) -> f64 {
    let deltas: Vec<(f64, f64)> = after
        .latency_buckets
        .iter()
        .map(|(le, count)| (*le, count - before.latency_buckets.iter().find(|(l, _)| l == le).map_or(0.0, |(_, c)| *c)))
        .collect();
    let total = deltas.last().map_or(0.0, |(_, c)| *c);
    if total <= 0.0 {
        return 0.0;
    }
    let target = total * 0.95;
    let mut lower = (0.0, 0.0);
    for (le, count) in deltas {
        if count >= target {
            if le.is_infinite() {
                return lower.0 * 1000.0;
            }
            let within = if count > lower.1 { (target - lower.1) / (count - lower.1) } else { 1.0 };
            return (lower.0 + (le - lower.0) * within) * 1000.0;
        }
        lower = (le, count);
    }
    lower.0 * 1000.0
}

/// The EMF lines for the window between two snapshots.
pub fn lines(before: &Snapshot, after: &Snapshot, timestamp_ms: i64) -> Vec<Value> {
    let requests = after.requests - before.requests;
    let errors = after.errors - before.errors;
    let error_rate = if requests > 0.0 { errors * 100.0 / requests } else { 0.0 };
    let mut out = vec![json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Normal-Form-App/Application",
                "Dimensions": [[]],
                "Metrics": [
                    { "Name": "ErrorRate", "Unit": "Percent" },
                    { "Name": "ResponseTime", "Unit": "Milliseconds" },
                    { "Name": "ActiveSessions", "Unit": "Count" },
                    { "Name": "Registrations", "Unit": "Count" },
                    { "Name": "CSRFFailures", "Unit": "Count" },
                    { "Name": "RateLimited", "Unit": "Count" },
                    { "Name": "Requests", "Unit": "Count" }
                ]
            }]
        },
        "ErrorRate": error_rate,
        "ResponseTime": p95_ms(before, after),
        "ActiveSessions": after.active_flows,
        "Registrations": after.registrations - before.registrations,
        "CSRFFailures": after.csrf_failures - before.csrf_failures,
        "RateLimited": after.rate_limited - before.rate_limited,
        "Requests": requests,
    })];
    let mut apis: Vec<&String> = after.apis.keys().collect();
    apis.sort();
    for api in apis {
        let (calls, successes, sum, count) = after.apis[api];
        let (calls0, successes0, sum0, count0) = before.apis.get(api).copied().unwrap_or_default();
        let (calls, successes, sum, count) = (calls - calls0, successes - successes0, sum - sum0, count - count0);
        if calls <= 0.0 {
            continue;
        }
        out.push(json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": "Normal-Form-App/External-API",
                    "Dimensions": [["APIName"]],
                    "Metrics": [
                        { "Name": "ResponseTime", "Unit": "Milliseconds" },
                        { "Name": "SuccessRate", "Unit": "Percent" }
                    ]
                }]
            },
            "APIName": api,
            "ResponseTime": if count > 0.0 { sum * 1000.0 / count } else { 0.0 },
            "SuccessRate": successes * 100.0 / calls,
        }));
    }
    out
}

/// Writes the EMF lines every `interval` until the task is dropped.
pub async fn run(state: crate::state::AppState, interval: std::time::Duration) {
    use std::io::Write;
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    let mut before = Snapshot::from_prometheus(&crate::metrics::rendered(&state).await);
    loop {
        tick.tick().await;
        let after = Snapshot::from_prometheus(&crate::metrics::rendered(&state).await);
        let now = time::OffsetDateTime::now_utc();
        let timestamp_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
        let mut out = std::io::stdout().lock();
        for line in lines(&before, &after, timestamp_ms) {
            let _ = writeln!(out, "{line}");
        }
        before = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "\
nfa_http_requests_total{route=\"/health\",method=\"GET\",status_class=\"2xx\"} 100
nfa_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\",status_class=\"2xx\",le=\"0.1\"} 100
nfa_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\",status_class=\"2xx\",le=\"1\"} 100
nfa_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\",status_class=\"2xx\",le=\"+Inf\"} 100
nfa_registrations_completed_total 5
";
    const AFTER: &str = "\
nfa_http_requests_total{route=\"/health\",method=\"GET\",status_class=\"2xx\"} 190
nfa_http_requests_total{route=\"/register/{step}\",method=\"POST\",status_class=\"5xx\"} 10
nfa_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\",status_class=\"2xx\",le=\"0.1\"} 180
nfa_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\",status_class=\"2xx\",le=\"1\"} 200
nfa_http_request_duration_seconds_bucket{route=\"/health\",method=\"GET\",status_class=\"2xx\",le=\"+Inf\"} 200
nfa_registrations_completed_total 8
nfa_security_csrf_failures_total 2
nfa_registration_active_flows 7
nfa_external_api_requests_total{api=\"InventoryAPI\",outcome=\"success\"} 9
nfa_external_api_requests_total{api=\"InventoryAPI\",outcome=\"timeout\"} 1
nfa_external_api_request_duration_seconds_sum{api=\"InventoryAPI\"} 0.5
nfa_external_api_request_duration_seconds_count{api=\"InventoryAPI\"} 10
";

    /// The rules of the EMF specification that CloudWatch enforces.
    fn assert_valid_emf(line: &Value) {
        let aws = &line["_aws"];
        assert!(aws["Timestamp"].as_i64().is_some_and(|t| t > 0), "Timestamp: epoch milliseconds");
        let directives = aws["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics array");
        assert!(!directives.is_empty());
        for directive in directives {
            let namespace = directive["Namespace"].as_str().expect("Namespace");
            assert!(!namespace.is_empty() && namespace.len() <= 255);
            for set in directive["Dimensions"].as_array().expect("Dimensions") {
                let set = set.as_array().expect("dimension set");
                assert!(set.len() <= 30);
                for dimension in set {
                    let key = dimension.as_str().expect("dimension name");
                    assert!(line[key].is_string(), "dimension {key} is a string member");
                }
            }
            let metrics = directive["Metrics"].as_array().expect("Metrics");
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for metric in metrics {
                let name = metric["Name"].as_str().expect("Name");
                assert!(line[name].is_number(), "metric {name} is a number member");
                let unit = metric["Unit"].as_str().expect("Unit");
                assert!(["Percent", "Milliseconds", "Count", "Seconds", "None"].contains(&unit));
            }
        }
    }

    #[test]
    fn window_figures_follow_the_runbooks_names_and_the_spec() {
        let before = Snapshot::from_prometheus(BEFORE);
        let after = Snapshot::from_prometheus(AFTER);
        let lines = lines(&before, &after, 1_700_000_000_000);
        assert_eq!(lines.len(), 2);
        for line in &lines {
            assert_valid_emf(line);
        }
        let app = &lines[0];
        assert_eq!(app["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Normal-Form-App/Application");
        assert_eq!(app["ErrorRate"], 10.0, "10 of 100 requests in the window were 5xx");
        assert_eq!(app["Registrations"], 3.0);
        assert_eq!(app["CSRFFailures"], 2.0);
        assert_eq!(app["ActiveSessions"], 7.0);
        let p95 = app["ResponseTime"].as_f64().expect("p95");
        assert!(p95 > 100.0 && p95 <= 1000.0, "95th percentile falls in the 0.1–1 s bucket: {p95}");
        let api = &lines[1];
        assert_eq!(api["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Normal-Form-App/External-API");
        assert_eq!(api["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["APIName"]]));
        assert_eq!(api["APIName"], "InventoryAPI");
        assert_eq!(api["SuccessRate"], 90.0);
        assert_eq!(api["ResponseTime"], 50.0);
    }
}
