//! The database: SQLite (embedded default) or PostgreSQL, chosen by the URL scheme.
//!
//! Both backends share one `Db` handle. Most SQL is written once with `$n` placeholders, which
//! SQLite accepts too, and run through `with_pool!`, which type-checks the same body against each
//! backend's pool. Where the dialects differ, the caller matches on `Db` itself.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::config::Config;

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of whichever backend is in use.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL: {0}")]
    BadUrl(String),
    #[error("cannot create the folder for the SQLite database: {0}")]
    Folder(std::io::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

impl DbError {
    /// The database could not be reached (as opposed to refusing what we asked).
    pub fn is_unreachable(&self) -> bool {
        let err = match self {
            DbError::Migrate(sqlx::migrate::MigrateError::Execute(err)) | DbError::Sqlx(err) => err,
            _ => return false,
        };
        is_connection_error(err)
    }
}

/// A PostgreSQL connection idle for this long is pinged before it is handed out, so one the
/// server closed meanwhile (a restart, a failover, `pg_terminate_backend`) is replaced instead of
/// failing a request. sqlx's default pings before every acquire: one more round trip for every
/// one-statement query (docs/DECISIONS.md).
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
}

impl From<&Config> for PoolSettings {
    fn from(config: &Config) -> Self {
        PoolSettings {
            max_connections: config.db_max_connections,
            acquire_timeout: config.db_acquire_timeout,
            statement_timeout: config.db_statement_timeout,
        }
    }
}

impl Db {
    /// Opens a pool lazily: the service starts (and `/health` reports 503) even while PostgreSQL
    /// is down, and connects by itself once it is back.
    pub fn connect(url: &str, settings: &PoolSettings) -> Result<Db, DbError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| DbError::BadUrl(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            let file = options.get_filename();
            if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(DbError::Folder)?;
            }
            // A SQLite connection is a file handle nothing else can close: sqlx's ping before each
            // acquire would only add a round trip to the connection's worker thread.
            let pool = SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(settings.max_connections)
                .acquire_timeout(settings.acquire_timeout)
                .connect_lazy_with(options);
            Ok(Db::Sqlite(pool))
        } else {
            let statement_timeout = format!("{}ms", settings.statement_timeout.as_millis());
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| DbError::BadUrl(e.to_string()))?
                .application_name("normal-form-app")
                .options([("statement_timeout", statement_timeout.as_str())]);
            let pool = PgPoolOptions::new()
                .test_before_acquire(false)
                .before_acquire(|connection, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_AFTER_IDLE {
                            connection.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .max_connections(settings.max_connections)
                .acquire_timeout(settings.acquire_timeout)
                .idle_timeout(Duration::from_secs(300))
                .connect_lazy_with(options);
            Ok(Db::Postgres(pool))
        }
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// One round trip to the database, for `/health` and each metrics scrape. The wait for a
    /// pool connection is recorded as `nfa_db_pool_acquire_duration_seconds`: sampled by every
    /// probe, it shows when the pool runs short.
    pub async fn ping(&self) -> Result<Duration, sqlx::Error> {
        let started = Instant::now();
        with_pool!(self, |pool| {
            let mut connection = pool.acquire().await?;
            metrics::histogram!("nfa_db_pool_acquire_duration_seconds").record(started.elapsed().as_secs_f64());
            sqlx::query("SELECT 1").execute(&mut *connection).await.map(|_| ())
        })?;
        Ok(started.elapsed())
    }

    /// How far a read replica's replay is behind (seconds; 0 when it has replayed all it
    /// received), or `None` for a database that is not a standby.
    pub async fn replication_lag(&self) -> Result<Option<f64>, sqlx::Error> {
        let Db::Postgres(pool) = self else { return Ok(None) };
        sqlx::query_scalar(
            "SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL \
             WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
             ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END::float8",
        )
        .fetch_one(pool)
        .await
    }

    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

/// Whether the writer and the read replica answer, as the watch job (`jobs::watch_databases`) and
/// `/health` last saw them. While the writer is down the public form pauses (503 with
/// `Retry-After`) and the admin console reads on from the replica.
#[derive(Clone, Debug, Default)]
pub struct Availability(Arc<Down>);

#[derive(Debug, Default)]
struct Down {
    writer: AtomicBool,
    reader: AtomicBool,
}

impl Availability {
    pub fn writer_up(&self) -> bool {
        !self.0.writer.load(Ordering::Relaxed)
    }

    pub fn reader_up(&self) -> bool {
        !self.0.reader.load(Ordering::Relaxed)
    }

    /// Records what a check saw; a change is logged once (ERROR when the writer goes).
    pub fn set_writer(&self, up: bool) {
        let was_down = self.0.writer.swap(!up, Ordering::Relaxed);
        match (was_down, up) {
            (false, false) => tracing::error!(event = "database_writer_down", "database writer unreachable; registration paused"),
            (true, true) => tracing::info!(event = "database_writer_up", "database writer reachable again; registration resumed"),
            _ => {}
        }
    }

    pub fn set_reader(&self, up: bool) {
        let was_down = self.0.reader.swap(!up, Ordering::Relaxed);
        match (was_down, up) {
            (false, false) => tracing::warn!(event = "database_reader_down", "read replica unreachable; reads go to the writer"),
            (true, true) => tracing::info!(event = "database_reader_up", "read replica reachable again"),
            _ => {}
        }
    }
}

/// Checks one database over a connection of its own, outside the pool: a pool that is busy under
/// load must not look like a database that is down.
pub struct Probe {
    options: Option<PgConnectOptions>,
    connection: Option<PgConnection>,
}

impl Probe {
    pub fn new(db: &Db) -> Probe {
        let options = match db {
            Db::Postgres(pool) => Some((*pool.connect_options()).clone().application_name("normal-form-app-probe")),
            Db::Sqlite(_) => None,
        };
        Probe { options, connection: None }
    }

    /// `SELECT 1` within `timeout` (reconnecting first when the last check failed). SQLite, a file
    /// of this process, always answers.
    pub async fn answers(&mut self, timeout: Duration) -> bool {
        let Some(options) = &self.options else { return true };
        let check = async {
            if self.connection.is_none() {
                self.connection = Some(PgConnection::connect_with(options).await?);
            }
            match &mut self.connection {
                Some(connection) => sqlx::query("SELECT 1").execute(connection).await.map(|_| ()),
                None => Ok(()),
            }
        };
        let ok = matches!(tokio::time::timeout(timeout, check).await, Ok(Ok(())));
        if !ok {
            // Closed by the server, or stuck: the next check opens a fresh one.
            self.connection = None;
        }
        ok
    }
}

/// True when the error means the database could not be reached or went away mid-request (a
/// restart, a failover, a dropped connection), as opposed to refusing what we asked: the person
/// is told to retry shortly instead of seeing an internal error.
pub fn is_connection_error(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        // 08xxx connection exceptions, 57P01-57P03 admin/crash shutdown, cannot connect now;
        // 25006 read-only transaction (a writer that became a standby).
        sqlx::Error::Database(db) => {
            db.code().is_some_and(|code| code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "25006"))
        }
        _ => false,
    }
}

/// True when the error is a unique-constraint violation (the database refused a duplicate).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
