//! Builds the application from its configuration, binds the listener and serves until a shutdown
//! signal, draining in-flight requests for at most `SHUTDOWN_TIMEOUT_SECS`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower_http::limit::RequestBodyLimitLayer;

use crate::apis::Apis;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::db::{Availability, Db, PoolSettings};
use crate::http::rate_limit::RateLimits;
use crate::http::{rate_limit, request_log, security_headers};
use crate::password::PasswordHasher;
use crate::registration;
use crate::state::AppState;

/// Form posts are small; anything larger is refused with 413 before it is read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The response body of the stack inside `RequestBodyLimitLayer`, which answers 413 itself.
type LimitedBody = tower_http::limit::ResponseBody<axum::body::Body>;

pub fn router(state: AppState) -> Router {
    let hsts = state.config.secure_cookies();
    Router::new()
        .route("/health", get(crate::health::health))
        .route("/health/live", get(crate::health::live))
        .route("/metrics", get(crate::metrics::render))
        .merge(registration::routes(&state.availability))
        .merge(match registration::api::cors(&state.config.cors_allowed_origins) {
            Some(cors) => registration::api::routes(&state.availability).layer(cors),
            None => registration::api::routes(&state.availability),
        })
        .merge(crate::mail::verify::routes(&state.availability))
        .merge(crate::address::routes::routes())
        .merge(crate::assets::routes())
        .merge(crate::admin::routes(&state))
        // Outermost first, in one `ServiceBuilder`: axum boxes and clones each `Router::layer`
        // separately for every request. Tower layers, not axum's `from_fn`, which clones the inner
        // service stack and boxes futures per request.
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::Extension(crate::http::client_ip::TrustedProxyHops(state.config.trusted_proxy_hops)))
                .layer(request_log::TraceLayer)
                .layer(tower::util::MapResponseLayer::new(move |response: axum::http::Response<LimitedBody>| {
                    security_headers::add_security_headers(response, hsts)
                }))
                .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
                .layer(rate_limit::RateLimitLayer::new(state.rate_limits.clone())),
        )
        .with_state(state)
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    mail: MailSetup,
}

struct MailSetup {
    transport: crate::mail::transport::Transport,
    from: lettre::message::Mailbox,
}

impl Application {
    /// Connects the database, applies migrations and binds `LISTEN_ADDR` (port 0 picks a free one).
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        crate::external::install_crypto_provider();
        let db = Db::connect(&config.database_url, &PoolSettings::from(&config))?;
        if let Err(err) = db.migrate().await {
            // Start anyway when the database is unreachable: /health answers 503 until it is
            // back, and the migrations are retried in the background. Any other error is fatal.
            if !err.is_unreachable() {
                return Err(err).context("applying database migrations");
            }
            tracing::error!(event = "migrations_deferred", error = %err, "database unreachable at start; will retry migrations");
            tokio::spawn(crate::jobs::retry_migrations(db.clone()));
        }
        let catalog = Arc::new(Catalog::configured(config.catalog_path.as_deref())?);
        if let Err(err) = crate::inventory::seed_stock(&db, &catalog).await {
            tracing::error!(event = "stock_seed_deferred", error = %err, "could not seed plan stock; will retry in the background");
        }
        if config.metrics_enabled || config.emf_interval.is_some() {
            crate::metrics::install();
        }
        let apis = Arc::new(Apis::from_config(&config, &db, &catalog)?);
        if config.external.address.url.is_none() {
            // Decode the bundled postal table now rather than on the first lookup.
            crate::address::postal::PostalTable::embedded();
        }
        let listener =
            TcpListener::bind(config.listen_addr).await.with_context(|| format!("LISTEN_ADDR: cannot listen on {}", config.listen_addr))?;
        let mut config = config;
        if config.public_base_url == format!("http://{}", config.listen_addr) {
            // The default base URL follows the port actually bound (port 0 picks a free one).
            config.public_base_url = format!("http://{}", listener.local_addr()?);
        }
        let read_db = match &config.database_read_url {
            Some(url) => Some(Db::connect(url, &PoolSettings::from(&config)).context("DATABASE_READ_URL")?),
            None => None,
        };
        let state = AppState {
            rate_limits: RateLimits::new(config.rate_limit_per_minute, config.rate_limit_get_per_minute),
            hasher: PasswordHasher::new(),
            config: Arc::new(config),
            db,
            read_db,
            availability: Availability::default(),
            catalog,
            apis,
            started_at: Instant::now(),
        };
        let mail = MailSetup {
            transport: crate::mail::transport::Transport::from_config(&state.config.mail, &state.config.data_dir)?,
            from: state.config.mail.from.parse()?,
        };
        Ok(Application { listener, state, mail })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.state.config.listen_addr)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
    /// (bounded by the configured timeout) and closes the database pool.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Application { listener, state, mail } = self;
        let drain_timeout = state.config.shutdown_timeout;
        let db = state.db.clone();
        let read_db = state.read_db.clone();
        let housekeeping = tokio::spawn(crate::jobs::housekeeping(state.clone()));
        let watch = tokio::spawn(crate::jobs::watch_databases(state.clone()));
        let purge = tokio::spawn(crate::jobs::purge_daily(state.clone()));
        let switch_poll = tokio::spawn(crate::admin::switches::poll(state.clone()));
        let emf = state.config.emf_interval.map(|every| tokio::spawn(crate::emf::run(state.clone(), every)));
        let mail_worker = tokio::spawn(crate::mail::worker::run(state.db.clone(), mail.transport, mail.from, state.config.mail.clone()));
        let shutting_down = Arc::new(Notify::new());
        let signal = shutting_down.clone();
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!(event = "shutdown_started", "shutdown signal received; draining in-flight requests");
            signal.notify_one();
        });
        let mut server = std::pin::pin!(server.into_future());
        let result = tokio::select! {
            result = &mut server => result,
            () = shutting_down.notified() => match tokio::time::timeout(drain_timeout, &mut server).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(event = "shutdown_drain_timeout", "in-flight requests did not finish in time");
                    Ok(())
                }
            },
        };
        housekeeping.abort();
        watch.abort();
        purge.abort();
        switch_poll.abort();
        if let Some(emf) = emf {
            emf.abort();
        }
        mail_worker.abort();
        db.close().await;
        if let Some(replica) = read_db {
            replica.close().await;
        }
        tracing::info!(event = "shutdown_complete", "stopped");
        result
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
