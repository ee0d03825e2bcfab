//! The database: SQLite (embedded default) or PostgreSQL, chosen by the URL scheme.
//!
//! Both backends share one `Db` handle. Most SQL is written once with `$n` placeholders, which
//! SQLite accepts too, and run through `with_pool!`, which type-checks the same body against each
//! backend's pool. Where the dialects differ, the caller matches on `Db` itself.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
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
        matches!(err, sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_))
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

    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

/// True when the error is a unique-constraint violation (the database refused a duplicate).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
