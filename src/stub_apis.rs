//! `normal-form-app stub-apis`: the three external APIs' contracts (docs/external-apis.openapi.json)
//! served from the embedded data on one port — AddressAPI under `/address`, InventoryAPI under
//! `/inventory`, RegionAPI under `/region` — for local development, demos and tests. Each API can
//! be made slow, answer 5xx, or refuse connections, at start (`--slow`, `--fail`, `--refuse`) or
//! at run time (`POST /_control/{api}?mode=ok|slow|fail|refuse&delay_ms=N`).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;

use crate::address::api::PostalAnswer;
use crate::address::postal::PostalTable;
use crate::catalog::Catalog;
use crate::external::ApiName;
use crate::inventory::{PlanStock, ReservationAnswer, StockAnswer};
use crate::region::eligibility;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Ok,
    Slow(Duration),
    Fail,
    Refuse,
}

impl Mode {
    fn describe(self) -> String {
        match self {
            Mode::Ok => "ok".into(),
            Mode::Slow(d) => format!("slow {} ms", d.as_millis()),
            Mode::Fail => "fail (503)".into(),
            Mode::Refuse => "refuse connections".into(),
        }
    }
}

fn api_of(prefix: &str) -> Option<ApiName> {
    match prefix {
        "address" => Some(ApiName::Address),
        "inventory" => Some(ApiName::Inventory),
        "region" => Some(ApiName::Region),
        _ => None,
    }
}

#[derive(Clone)]
struct Stub {
    catalog: Arc<Catalog>,
    modes: Arc<Mutex<HashMap<ApiName, Mode>>>,
    stock: Arc<Mutex<HashMap<String, i64>>>,
    reserved: Arc<Mutex<HashSet<String>>>,
}

impl Stub {
    fn mode(&self, api: ApiName) -> Mode {
        self.modes.lock().map(|m| m.get(&api).copied().unwrap_or(Mode::Ok)).unwrap_or(Mode::Ok)
    }

    /// Applies the API's mode before answering: waits when slow, or answers 503.
    async fn gate(&self, api: ApiName) -> Option<Response> {
        match self.mode(api) {
            Mode::Slow(delay) => {
                tokio::time::sleep(delay).await;
                None
            }
            Mode::Fail | Mode::Refuse => {
                Some((StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": "stubbed failure" }))).into_response())
            }
            Mode::Ok => None,
        }
    }
}

pub struct StubOptions {
    pub listen: SocketAddr,
    pub modes: Vec<(ApiName, Mode)>,
}

/// Parses `address=1500`-style switch values of the command line.
pub fn parse_switch(value: &str, with_delay: bool) -> Result<(ApiName, Mode), String> {
    let (name, delay) = value.split_once('=').unwrap_or((value, "3000"));
    let api = api_of(name).ok_or_else(|| format!("'{name}' is not one of address, inventory, region"))?;
    if !with_delay {
        return Ok((api, Mode::Ok));
    }
    let ms: u64 = delay.parse().map_err(|_| format!("'{delay}' is not a number of milliseconds"))?;
    Ok((api, Mode::Slow(Duration::from_millis(ms))))
}

fn router(stub: Stub) -> Router {
    Router::new()
        .route("/{api}/health", get(health))
        .route("/address/postal-codes/{code}", get(postal_code))
        .route("/inventory/stock", get(stock))
        .route("/inventory/reservations", post(reserve))
        .route("/region/eligibility", get(region))
        .route("/_control", get(show_control))
        .route("/_control/{api}", post(control))
        .layer(axum::middleware::map_response(|mut response: Response| async move {
            // One request per connection, so a switch to `refuse` takes effect on the next call.
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }))
        .with_state(stub)
}

async fn health(State(stub): State<Stub>, Path(api): Path<String>) -> Response {
    let Some(api) = api_of(&api) else { return StatusCode::NOT_FOUND.into_response() };
    if let Some(failure) = stub.gate(api).await {
        return failure;
    }
    Json(json!({ "status": "ok" })).into_response()
}

async fn postal_code(State(stub): State<Stub>, Path(code): Path<String>) -> Response {
    if let Some(failure) = stub.gate(ApiName::Address).await {
        return failure;
    }
    let addresses = PostalTable::embedded().lookup(&code);
    if addresses.is_empty() {
        return (StatusCode::NOT_FOUND, Json(json!({ "postal_code": code, "addresses": [] }))).into_response();
    }
    Json(PostalAnswer { postal_code: code, addresses }).into_response()
}

#[derive(Deserialize)]
struct StockQuery {
    #[serde(default)]
    plan_id: String,
}

async fn stock(State(stub): State<Stub>, Query(query): Query<StockQuery>) -> Response {
    if let Some(failure) = stub.gate(ApiName::Inventory).await {
        return failure;
    }
    let stock = stub.stock.lock().map(|s| s.clone()).unwrap_or_default();
    let plans = query.plan_id.split(',').filter_map(|id| stock.get(id).map(|s| PlanStock { plan_id: id.to_string(), stock: *s })).collect();
    Json(StockAnswer { plans }).into_response()
}

#[derive(Deserialize)]
struct ReserveBody {
    plan_id: String,
    reference: String,
}

async fn reserve(State(stub): State<Stub>, Json(body): Json<ReserveBody>) -> Response {
    if let Some(failure) = stub.gate(ApiName::Inventory).await {
        return failure;
    }
    let (Ok(mut stock), Ok(mut reserved)) = (stub.stock.lock(), stub.reserved.lock()) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if reserved.contains(&body.reference) {
        return (StatusCode::OK, Json(ReservationAnswer { reserved: true })).into_response();
    }
    match stock.get_mut(&body.plan_id) {
        Some(left) if *left > 0 => {
            *left -= 1;
            reserved.insert(body.reference);
            (StatusCode::CREATED, Json(ReservationAnswer { reserved: true })).into_response()
        }
        Some(_) => (StatusCode::CONFLICT, Json(ReservationAnswer { reserved: false })).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(Deserialize)]
struct RegionQuery {
    plan_id: String,
    #[serde(default)]
    prefecture: String,
    #[serde(default)]
    postal_code: String,
}

async fn region(State(stub): State<Stub>, Query(query): Query<RegionQuery>) -> Response {
    if let Some(failure) = stub.gate(ApiName::Region).await {
        return failure;
    }
    match stub.catalog.plan(&query.plan_id) {
        Some(plan) => Json(eligibility(plan, &query.prefecture, &query.postal_code)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(Deserialize)]
struct ControlQuery {
    mode: String,
    #[serde(default)]
    delay_ms: Option<u64>,
}

async fn control(State(stub): State<Stub>, Path(api): Path<String>, Query(query): Query<ControlQuery>) -> Response {
    let Some(api) = api_of(&api) else { return (StatusCode::NOT_FOUND, "unknown api").into_response() };
    let mode = match query.mode.as_str() {
        "ok" => Mode::Ok,
        "slow" => Mode::Slow(Duration::from_millis(query.delay_ms.unwrap_or(3000))),
        "fail" => Mode::Fail,
        "refuse" => Mode::Refuse,
        _ => return (StatusCode::BAD_REQUEST, "mode must be ok, slow, fail or refuse").into_response(),
    };
    if let Ok(mut modes) = stub.modes.lock() {
        modes.insert(api, mode);
    }
    tracing::info!(event = "stub_mode", api = api.as_str(), mode = mode.describe(), "stub mode changed");
    show_control(State(stub)).await.into_response()
}

async fn show_control(State(stub): State<Stub>) -> impl IntoResponse {
    let modes: serde_json::Map<String, serde_json::Value> =
        ApiName::ALL.iter().map(|api| (api.as_str().to_string(), json!(stub.mode(*api).describe()))).collect();
    Json(modes)
}

/// Which API a request is for, read from its request line without consuming it.
async fn requested_api(stream: &tokio::net::TcpStream) -> Option<ApiName> {
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.peek(&mut buf)).await.ok()?.ok()?;
    let line = std::str::from_utf8(&buf[..read]).ok()?;
    let path = line.split(' ').nth(1)?;
    api_of(path.trim_start_matches('/').split('/').next()?)
}

pub async fn run(catalog: Catalog, options: StubOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let stock = catalog.plans.iter().map(|p| (p.id.clone(), i64::from(p.initial_stock))).collect();
    let stub = Stub {
        catalog: Arc::new(catalog),
        modes: Arc::new(Mutex::new(options.modes.into_iter().collect())),
        stock: Arc::new(Mutex::new(stock)),
        reserved: Arc::default(),
    };
    // Load the postal table now rather than on the first request.
    let _ = PostalTable::embedded().len();
    let listener = TcpListener::bind(options.listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(event = "listening", address = %address, "stub APIs listening");
    println!(
        "stub APIs on http://{address}\n  ADDRESS_API_URL=http://{address}/address\n  INVENTORY_API_URL=http://{address}/inventory\n  REGION_API_URL=http://{address}/region"
    );
    for api in ApiName::ALL {
        println!("  {}: {}", api.as_str(), stub.mode(api).describe());
    }
    let app = router(stub.clone());
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let app = app.clone();
        let stub = stub.clone();
        tokio::spawn(async move {
            if let Some(api) = requested_api(&stream).await
                && stub.mode(api) == Mode::Refuse
            {
                // Close without a word: the client's request fails as if nothing listened.
                drop(stream);
                return;
            }
            let service = TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
