//! Plumbing shared by the three external APIs (InventoryAPI, AddressAPI, RegionAPI): the HTTP
//! client with timeouts, bounded retries with jitter for idempotent reads and a circuit breaker;
//! the operator's forced-fallback switch; and per-API metrics.
//!
//! Each API's own module (`address`, `inventory`, `region`) defines its trait, its embedded
//! provider and its HTTP provider on top of this.

pub mod breaker;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use serde::Serialize;
use serde::de::DeserializeOwned;

use self::breaker::{Breaker, CircuitState};

/// One TLS crypto provider for all outbound HTTPS: ring (see docs/DECISIONS.md). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ApiName {
    #[serde(rename = "InventoryAPI")]
    Inventory,
    #[serde(rename = "AddressAPI")]
    Address,
    #[serde(rename = "RegionAPI")]
    Region,
}

impl ApiName {
    pub const ALL: [ApiName; 3] = [ApiName::Inventory, ApiName::Address, ApiName::Region];

    /// The name the runbook and the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiName::Inventory => "InventoryAPI",
            ApiName::Address => "AddressAPI",
            ApiName::Region => "RegionAPI",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    #[error("fallback forced on by the operator")]
    Forced,
    #[error("circuit breaker open")]
    CircuitOpen,
    #[error("timed out")]
    Timeout,
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("malformed answer: {0}")]
    Malformed(String),
}

impl ExternalError {
    /// Worth another try (the request may well succeed a moment later).
    fn transient(&self) -> bool {
        matches!(self, ExternalError::Timeout | ExternalError::Connect(_)) || matches!(self, ExternalError::Status(s) if *s >= 500)
    }

    /// The `outcome` label of `nfa_external_api_requests_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            ExternalError::Timeout => "timeout",
            ExternalError::CircuitOpen | ExternalError::Forced => "circuit_open",
            _ => "error",
        }
    }
}

/// What `/health` and the admin dashboard show for an API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiHealth {
    Ok,
    Degraded,
    Down,
}

#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub base_url: String,
    pub timeout: Duration,
    pub retries: usize,
    pub breaker_threshold: u32,
    pub breaker_open_for: Duration,
}

/// An HTTP JSON API behind a timeout and a circuit breaker.
pub struct HttpApi {
    name: ApiName,
    base_url: String,
    client: reqwest::Client,
    retries: usize,
    breaker: Breaker,
}

impl HttpApi {
    pub fn new(name: ApiName, settings: &HttpSettings) -> anyhow::Result<HttpApi> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("normal-form-app/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpApi {
            name,
            base_url: settings.base_url.trim_end_matches('/').to_string(),
            client,
            retries: settings.retries,
            breaker: Breaker::new(settings.breaker_threshold, settings.breaker_open_for),
        })
    }

    /// An idempotent read: retried (at most `retries` times, exponential backoff with jitter) on
    /// timeouts, connection errors and 5xx. `Ok(None)` for 404.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<Option<T>, ExternalError> {
        let attempt = || async { self.once::<T>(self.client.get(format!("{}{path}", self.base_url)).query(query)).await };
        attempt
            .retry(ExponentialBuilder::default().with_min_delay(Duration::from_millis(50)).with_max_times(self.retries).with_jitter())
            .when(|e: &ExternalError| e.transient())
            .await
    }

    /// A write: never retried (the other side may have acted on it).
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<Option<T>, ExternalError> {
        self.once(self.client.post(format!("{}{path}", self.base_url)).json(body)).await
    }

    async fn once<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<Option<T>, ExternalError> {
        if !self.breaker.allow() {
            return Err(ExternalError::CircuitOpen);
        }
        let result = send::<T>(request).await;
        // A 404 or 409 is the API answering, not failing.
        let healthy = match &result {
            Ok(_) => true,
            Err(ExternalError::Status(s)) => *s < 500,
            Err(_) => false,
        };
        self.breaker.record(healthy);
        if let Err(err) = &result {
            tracing::warn!(
                event = "external_api_error",
                api = self.name.as_str(),
                error = crate::telemetry::redact::redact(&err.to_string()),
                "external API call failed"
            );
        }
        result
    }
}

async fn send<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<Option<T>, ExternalError> {
    let response = request.send().await.map_err(classify)?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() && status != reqwest::StatusCode::CONFLICT {
        return Err(ExternalError::Status(status.as_u16()));
    }
    let bytes = response.bytes().await.map_err(classify)?;
    // A 409 carries a body the caller interprets (e.g. out of stock), like a 2xx.
    let value = serde_json::from_slice(&bytes).map_err(|e| ExternalError::Malformed(e.to_string()))?;
    Ok(Some(value))
}

fn classify(err: reqwest::Error) -> ExternalError {
    if err.is_timeout() {
        ExternalError::Timeout
    } else if err.is_connect() {
        ExternalError::Connect(err.to_string())
    } else if err.is_decode() {
        ExternalError::Malformed(err.to_string())
    } else {
        ExternalError::Connect(err.to_string())
    }
}

/// What a provider says of its own state. Embedded providers are always up (the defaults); the
/// HTTP provider answers from its circuit breaker.
pub trait Provider: Send + Sync {
    fn circuit(&self) -> CircuitState {
        CircuitState::Closed
    }

    fn health(&self) -> ApiHealth {
        ApiHealth::Ok
    }
}

/// `HttpApi` itself is the HTTP provider of each API: `address`, `inventory` and `region`
/// implement their traits for it.
impl Provider for HttpApi {
    fn circuit(&self) -> CircuitState {
        self.breaker.state()
    }

    fn health(&self) -> ApiHealth {
        match self.breaker.state() {
            CircuitState::Open => ApiHealth::Down,
            CircuitState::HalfOpen => ApiHealth::Degraded,
            CircuitState::Closed if self.breaker.recent_failures() > 0 => ApiHealth::Degraded,
            CircuitState::Closed => ApiHealth::Ok,
        }
    }
}

/// One external API as the app uses it: the configured provider behind the operator's
/// forced-fallback switch and the metrics. Each API's module adds its calls (`lookup`, `check`,
/// `levels`, `reserve`) in an `impl Api<dyn …>`.
pub struct Api<P: ?Sized> {
    pub guard: Guard,
    pub provider: Box<P>,
}

impl<P: ?Sized + Provider> Api<P> {
    pub fn new(name: ApiName, provider: Box<P>, forced: bool) -> Api<P> {
        Api { guard: Guard::new(name, forced), provider }
    }

    pub fn circuit(&self) -> CircuitState {
        if self.guard.forced() { CircuitState::Open } else { self.provider.circuit() }
    }

    pub fn health(&self) -> ApiHealth {
        if self.guard.forced() { ApiHealth::Down } else { self.provider.health() }
    }

    /// May it be asked now? A half-open circuit counts: the next call is the probe that brings
    /// the API back by itself.
    pub fn available(&self) -> bool {
        self.circuit() != CircuitState::Open
    }
}

/// The operator's switch and the metrics around every call of one API, whichever provider
/// answers it.
pub struct Guard {
    pub name: ApiName,
    forced: AtomicBool,
    metrics: OnceLock<GuardMetrics>,
}

/// The API's metric handles, registered on first use and then reused: a lookup by labels on every
/// call cost more than the call itself for the embedded providers.
struct GuardMetrics {
    /// By outcome: `success`, `timeout`, `circuit_open`, `error`.
    requests: [metrics::Counter; 4],
    duration: metrics::Histogram,
}

const OUTCOMES: [&str; 4] = ["success", "timeout", "circuit_open", "error"];

impl Guard {
    pub fn new(name: ApiName, forced: bool) -> Guard {
        Guard { name, forced: AtomicBool::new(forced), metrics: OnceLock::new() }
    }

    fn metrics(&self) -> &GuardMetrics {
        self.metrics.get_or_init(|| {
            let api = self.name.as_str();
            GuardMetrics {
                requests: OUTCOMES.map(|outcome| metrics::counter!("nfa_external_api_requests_total", "api" => api, "outcome" => outcome)),
                duration: metrics::histogram!("nfa_external_api_request_duration_seconds", "api" => api),
            }
        })
    }

    fn count(&self, outcome: &str) {
        let index = OUTCOMES.iter().position(|known| *known == outcome).unwrap_or(OUTCOMES.len() - 1);
        self.metrics().requests[index].increment(1);
    }

    pub fn forced(&self) -> bool {
        self.forced.load(Ordering::Relaxed)
    }

    pub fn set_forced(&self, forced: bool) {
        self.forced.store(forced, Ordering::Relaxed);
    }

    /// Runs one logical call (including its retries) and records its outcome and latency.
    pub async fn call<T>(&self, call: impl Future<Output = Result<T, ExternalError>>) -> Result<T, ExternalError> {
        if self.forced() {
            self.count(ExternalError::Forced.outcome());
            return Err(ExternalError::Forced);
        }
        let started = Instant::now();
        let result = call.await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(err) => err.outcome(),
        };
        self.count(outcome);
        self.metrics().duration.record(started.elapsed().as_secs_f64());
        result
    }
}
