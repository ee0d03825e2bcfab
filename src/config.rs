//! Typed configuration read once at start from environment variables.
//!
//! Every value is parsed and validated here; a bad value becomes a `ConfigError` that names the
//! variable, and `main` turns it into one line on stderr and exit code 2.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the configuration comes from: the process environment, or a map in tests.
pub trait EnvSource {
    fn get(&self, key: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.trim().is_empty())
    }
}

impl EnvSource for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned().filter(|v| !v.trim().is_empty())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

fn bad(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError { var, problem: problem.into() }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Development,
    Production,
}

/// A secret that never prints: `Debug` shows `***`.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One external API: its URL (absent: the embedded provider), timeout and forced fallback.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub url: Option<String>,
    pub timeout: Duration,
    pub force_fallback: bool,
}

#[derive(Clone, Debug)]
pub struct ExternalConfig {
    pub address: ApiConfig,
    pub inventory: ApiConfig,
    pub region: ApiConfig,
    pub retries: usize,
    pub breaker_threshold: u32,
    pub breaker_open_for: Duration,
    pub region_recheck_interval: Duration,
    /// How often each instance reads the operators' switches (`api_switches`).
    pub switch_poll_interval: Duration,
}

#[derive(Clone, Debug)]
pub struct MailConfig {
    /// `smtp://user:pass@host:587?tls=required` or `smtps://…:465`; absent: `.eml` files under
    /// `DATA_DIR/mail/`.
    pub smtp_url: Option<String>,
    pub from: String,
    pub subject_confirmation: String,
    pub subject_duplicate: String,
    pub max_attempts: i32,
    pub poll_interval: Duration,
    /// First retry delay; each further one doubles (capped at an hour).
    pub retry_base: Duration,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub mode: Mode,
    pub listen_addr: SocketAddr,
    pub database_url: String,
    /// A read-only replica (`DATABASE_READ_URL`) for the admin console's lists, search, dashboard
    /// and CSV and for the reports; absent: they read the writer.
    pub database_read_url: Option<String>,
    pub data_dir: PathBuf,
    pub public_base_url: String,
    pub secret_key: Secret,
    pub log_format: LogFormat,
    pub db_max_connections: u32,
    pub db_acquire_timeout: Duration,
    pub db_statement_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub flow_idle_timeout: Duration,
    /// Flows are deleted this long after their last change (`FLOW_RETENTION_DAYS`).
    pub flow_retention: Duration,
    /// Sent or failed mail and mail throttles are deleted after this (`MAIL_RETENTION_DAYS`).
    pub mail_retention: Duration,
    /// Validation-error and duplicate-signup counts are deleted after this (`ANALYTICS_RETENTION_DAYS`).
    pub analytics_retention: Duration,
    /// How often the purge runs inside `serve` (`PURGE_INTERVAL_SECS`, a day).
    pub purge_interval: Duration,
    /// How long the admin dashboard's aggregates (days of registrations and flows) are reused.
    pub dashboard_cache: Duration,
    pub min_age: u32,
    pub max_age: u32,
    /// POSTs per minute allowed from one client IP.
    pub rate_limit_per_minute: u32,
    /// Page views (GET/HEAD, health, metrics and static files aside) per minute from one client IP.
    pub rate_limit_get_per_minute: u32,
    /// How many reverse proxies in front of us append to `X-Forwarded-For`.
    pub trusted_proxy_hops: usize,
    pub catalog_path: Option<PathBuf>,
    pub external: ExternalConfig,
    /// At or below this many units a plan shows 残りわずか.
    pub low_stock_threshold: i64,
    pub mail: MailConfig,
    /// Origins allowed to call the JSON API from a browser (CORS); empty: CORS off.
    pub cors_allowed_origins: Vec<String>,
    /// Record metrics and serve `/metrics` (`METRICS_ENABLED=0` turns both off, e.g. to measure
    /// their cost).
    pub metrics_enabled: bool,
    /// Also write CloudWatch EMF lines to stdout every this often (`METRICS_CLOUDWATCH_EMF=1`).
    pub emf_interval: Option<Duration>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&ProcessEnv)
    }

    pub fn from_source(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let mode = match env.get("APP_ENV").as_deref() {
            None | Some("development") => Mode::Development,
            Some("production") => Mode::Production,
            Some(other) => {
                return Err(bad("APP_ENV", format!("'{other}' is neither 'development' nor 'production'")));
            }
        };
        let listen_addr: SocketAddr = parse_var(env, "LISTEN_ADDR", "127.0.0.1:8080", "a socket address such as 127.0.0.1:8080")?;
        let data_dir = PathBuf::from(env.get("DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = match env.get("DATABASE_URL") {
            Some(url) => {
                if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return Err(bad("DATABASE_URL", "must start with sqlite:, postgres:// or postgresql://"));
                }
                url
            }
            None => format!("sqlite://{}", data_dir.join("normal-form-app.db").display()),
        };
        let database_read_url = match env.get("DATABASE_READ_URL") {
            Some(url) if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) => {
                return Err(bad(
                    "DATABASE_READ_URL",
                    "must start with postgres:// or postgresql:// (a read replica of the PostgreSQL writer)",
                ));
            }
            Some(_) if database_url.starts_with("sqlite:") => {
                return Err(bad("DATABASE_READ_URL", "needs DATABASE_URL to be PostgreSQL: SQLite has no replicas"));
            }
            other => other,
        };
        let public_base_url = match env.get("PUBLIC_BASE_URL") {
            Some(url) => {
                let url = url.trim_end_matches('/').to_string();
                if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
                    return Err(bad("PUBLIC_BASE_URL", "must be an absolute http:// or https:// URL"));
                }
                url
            }
            None if mode == Mode::Production => {
                return Err(bad("PUBLIC_BASE_URL", "is required when APP_ENV=production"));
            }
            None => format!("http://{listen_addr}"),
        };
        let secret_key = match env.get("SECRET_KEY") {
            Some(key) if key.len() >= 32 => Secret(key.into_bytes()),
            Some(_) => return Err(bad("SECRET_KEY", "must be at least 32 characters long")),
            None if mode == Mode::Production => {
                return Err(bad("SECRET_KEY", "is required when APP_ENV=production"));
            }
            None => load_or_create_secret(&data_dir)?,
        };
        let log_format = match env.get("LOG_FORMAT").as_deref() {
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            None => {
                use std::io::IsTerminal;
                if std::io::stdout().is_terminal() { LogFormat::Text } else { LogFormat::Json }
            }
            Some(other) => return Err(bad("LOG_FORMAT", format!("'{other}' is neither 'json' nor 'text'"))),
        };
        let min_age: u32 = parse_var(env, "MIN_AGE", "18", "a whole number of years")?;
        let max_age: u32 = parse_var(env, "MAX_AGE", "120", "a whole number of years")?;
        if min_age >= max_age {
            return Err(bad("MAX_AGE", "must be greater than MIN_AGE"));
        }
        let db_max_connections: u32 = parse_var(env, "DB_MAX_CONNECTIONS", "10", "a whole number")?;
        if db_max_connections == 0 {
            return Err(bad("DB_MAX_CONNECTIONS", "must be at least 1"));
        }
        let rate_limit_per_minute: u32 = parse_var(env, "RATE_LIMIT_PER_MINUTE", "60", "a whole number")?;
        if rate_limit_per_minute == 0 {
            return Err(bad("RATE_LIMIT_PER_MINUTE", "must be at least 1"));
        }
        let rate_limit_get_per_minute: u32 = parse_var(env, "RATE_LIMIT_GET_PER_MINUTE", "300", "a whole number")?;
        if rate_limit_get_per_minute == 0 {
            return Err(bad("RATE_LIMIT_GET_PER_MINUTE", "must be at least 1"));
        }
        Ok(Config {
            mode,
            listen_addr,
            database_url,
            database_read_url,
            data_dir,
            public_base_url,
            secret_key,
            log_format,
            db_max_connections,
            db_acquire_timeout: seconds(env, "DB_ACQUIRE_TIMEOUT_SECS", "3")?,
            db_statement_timeout: seconds(env, "DB_STATEMENT_TIMEOUT_SECS", "10")?,
            shutdown_timeout: seconds(env, "SHUTDOWN_TIMEOUT_SECS", "25")?,
            flow_idle_timeout: Duration::from_secs(
                60 * u64::from(parse_var::<u32>(env, "FLOW_IDLE_MINUTES", "60", "a whole number of minutes")?),
            ),
            flow_retention: days(env, "FLOW_RETENTION_DAYS", "30")?,
            mail_retention: days(env, "MAIL_RETENTION_DAYS", "30")?,
            analytics_retention: days(env, "ANALYTICS_RETENTION_DAYS", "90")?,
            purge_interval: seconds(env, "PURGE_INTERVAL_SECS", "86400")?,
            dashboard_cache: Duration::from_secs(parse_var(env, "DASHBOARD_CACHE_SECS", "30", "a whole number of seconds")?),
            min_age,
            max_age,
            rate_limit_per_minute,
            rate_limit_get_per_minute,
            trusted_proxy_hops: parse_var(env, "TRUSTED_PROXY_HOPS", "0", "a whole number")?,
            catalog_path: env.get("CATALOG_PATH").map(PathBuf::from),
            external: ExternalConfig {
                address: api_config(env, ["ADDRESS_API_URL", "ADDRESS_API_TIMEOUT_MS", "FORCE_FALLBACK_ADDRESS"])?,
                inventory: api_config(env, ["INVENTORY_API_URL", "INVENTORY_API_TIMEOUT_MS", "FORCE_FALLBACK_INVENTORY"])?,
                region: api_config(env, ["REGION_API_URL", "REGION_API_TIMEOUT_MS", "FORCE_FALLBACK_REGION"])?,
                retries: parse_var(env, "EXTERNAL_API_RETRIES", "2", "a whole number")?,
                breaker_threshold: parse_var(env, "EXTERNAL_API_BREAKER_THRESHOLD", "5", "a whole number")?,
                breaker_open_for: seconds(env, "EXTERNAL_API_BREAKER_OPEN_SECS", "30")?,
                region_recheck_interval: seconds(env, "REGION_RECHECK_INTERVAL_SECS", "60")?,
                switch_poll_interval: {
                    let ms: u64 = parse_var(env, "API_SWITCH_POLL_MS", "2000", "a whole number of milliseconds")?;
                    if ms == 0 {
                        return Err(bad("API_SWITCH_POLL_MS", "must be at least 1"));
                    }
                    Duration::from_millis(ms)
                },
            },
            low_stock_threshold: parse_var(env, "LOW_STOCK_THRESHOLD", "10", "a whole number")?,
            mail: mail_config(env)?,
            cors_allowed_origins: match env.get("CORS_ALLOWED_ORIGINS") {
                None => Vec::new(),
                Some(list) => {
                    let origins: Vec<String> =
                        list.split(',').map(|o| o.trim().trim_end_matches('/').to_string()).filter(|o| !o.is_empty()).collect();
                    if let Some(bad_origin) =
                        origins.iter().find(|o| !(o.starts_with("http://") || o.starts_with("https://")) || o.matches('/').count() != 2)
                    {
                        return Err(bad("CORS_ALLOWED_ORIGINS", format!("'{bad_origin}' is not an origin such as https://app.example.jp")));
                    }
                    origins
                }
            },
            metrics_enabled: match env.get("METRICS_ENABLED").as_deref() {
                None | Some("1") | Some("true") => true,
                Some("0") | Some("false") => false,
                Some(other) => return Err(bad("METRICS_ENABLED", format!("'{other}' is neither 1 nor 0"))),
            },
            emf_interval: match env.get("METRICS_CLOUDWATCH_EMF").as_deref() {
                None | Some("0") | Some("false") => None,
                Some("1") | Some("true") => Some(seconds(env, "METRICS_CLOUDWATCH_EMF_INTERVAL_SECS", "60")?),
                Some(other) => return Err(bad("METRICS_CLOUDWATCH_EMF", format!("'{other}' is neither 1 nor 0"))),
            },
        })
    }

    /// Cookies get `Secure` and the `__Host-` prefix unless we are served over plain HTTP.
    pub fn secure_cookies(&self) -> bool {
        self.public_base_url.starts_with("https://")
    }
}

fn mail_config(env: &dyn EnvSource) -> Result<MailConfig, ConfigError> {
    let smtp_url = match env.get("SMTP_URL") {
        Some(url) if url.starts_with("smtp://") || url.starts_with("smtps://") => Some(url),
        Some(_) => return Err(bad("SMTP_URL", "must start with smtp:// or smtps://")),
        None => None,
    };
    let from = env.get("MAIL_FROM").unwrap_or_else(|| "会員登録 <no-reply@example.jp>".into());
    if from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(bad("MAIL_FROM", format!("'{from}' is not a mailbox such as 会員登録 <no-reply@example.jp>")));
    }
    let max_attempts: i32 = parse_var(env, "OUTBOX_MAX_ATTEMPTS", "8", "a whole number")?;
    if max_attempts < 1 {
        return Err(bad("OUTBOX_MAX_ATTEMPTS", "must be at least 1"));
    }
    Ok(MailConfig {
        smtp_url,
        from,
        subject_confirmation: env
            .get("MAIL_SUBJECT_CONFIRMATION")
            .unwrap_or_else(|| "【会員登録】お申し込みありがとうございます（メールアドレスの確認のお願い）".into()),
        subject_duplicate: env.get("MAIL_SUBJECT_DUPLICATE").unwrap_or_else(|| "【会員登録】このメールアドレスは登録済みです".into()),
        max_attempts,
        poll_interval: seconds(env, "OUTBOX_POLL_SECS", "2")?,
        retry_base: seconds(env, "OUTBOX_RETRY_BASE_SECS", "10")?,
    })
}

/// `{NAME}_API_URL`, `{NAME}_API_TIMEOUT_MS` (default 2000) and `FORCE_FALLBACK_{NAME}`.
fn api_config(env: &dyn EnvSource, [url_var, timeout_var, force_var]: [&'static str; 3]) -> Result<ApiConfig, ConfigError> {
    let url = match env.get(url_var) {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => Some(url.trim_end_matches('/').to_string()),
        Some(url) => return Err(bad(url_var, format!("'{url}' is not an http:// or https:// URL"))),
        None => None,
    };
    let timeout_ms: u64 = parse_var(env, timeout_var, "2000", "a whole number of milliseconds")?;
    if timeout_ms == 0 {
        return Err(bad(timeout_var, "must be at least 1"));
    }
    let force_fallback = match env.get(force_var).as_deref() {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(other) => return Err(bad(force_var, format!("'{other}' is neither 1 nor 0"))),
    };
    Ok(ApiConfig { url, timeout: Duration::from_millis(timeout_ms), force_fallback })
}

fn parse_var<T: std::str::FromStr>(env: &dyn EnvSource, var: &'static str, default: &str, what: &str) -> Result<T, ConfigError> {
    let raw = env.get(var).unwrap_or_else(|| default.to_string());
    raw.trim().parse().map_err(|_| bad(var, format!("'{raw}' is not {what}")))
}

fn seconds(env: &dyn EnvSource, var: &'static str, default: &str) -> Result<Duration, ConfigError> {
    let secs: u64 = parse_var(env, var, default, "a whole number of seconds")?;
    if secs == 0 {
        return Err(bad(var, "must be at least 1 second"));
    }
    Ok(Duration::from_secs(secs))
}

fn days(env: &dyn EnvSource, var: &'static str, default: &str) -> Result<Duration, ConfigError> {
    let days: u64 = parse_var(env, var, default, "a whole number of days")?;
    if days == 0 {
        return Err(bad(var, "must be at least 1 day"));
    }
    Ok(Duration::from_secs(days * 24 * 3600))
}

/// The embedded default needs no set-up: a random key is generated once and kept in the data
/// folder, so signed values stay valid across restarts.
fn load_or_create_secret(data_dir: &Path) -> Result<Secret, ConfigError> {
    let path = data_dir.join("secret.key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let key = existing.trim();
        if key.len() >= 32 {
            return Ok(Secret(key.as_bytes().to_vec()));
        }
    }
    std::fs::create_dir_all(data_dir).map_err(|e| bad("DATA_DIR", format!("cannot create {}: {e}", data_dir.display())))?;
    let key = crate::crypto::random_token(48);
    write_private(&path, key.as_bytes()).map_err(|e| bad("SECRET_KEY", format!("not set and cannot write {}: {e}", path.display())))?;
    Ok(Secret(key.into_bytes()))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_need_no_setup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().to_string_lossy().to_string();
        let config = Config::from_source(&env(&[("DATA_DIR", &data)])).expect("config");
        assert_eq!(config.listen_addr.to_string(), "127.0.0.1:8080");
        assert!(config.database_url.starts_with("sqlite://") && config.database_url.ends_with("normal-form-app.db"));
        assert!(dir.path().join("secret.key").exists());
        let again = Config::from_source(&env(&[("DATA_DIR", &data)])).expect("config");
        assert_eq!(config.secret_key.expose(), again.secret_key.expose(), "the key is persisted");
        assert_eq!(format!("{:?}", config.secret_key), "***");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases = [
            ("LISTEN_ADDR", "nowhere"),
            ("DATABASE_URL", "mysql://x"),
            ("LOG_FORMAT", "xml"),
            ("SECRET_KEY", "short"),
            ("APP_ENV", "staging"),
            ("PUBLIC_BASE_URL", "ftp://x"),
            ("DB_MAX_CONNECTIONS", "-1"),
        ];
        for (var, value) in cases {
            let err =
                Config::from_source(&env(&[(var, value), ("SECRET_KEY", if var == "SECRET_KEY" { value } else { "k".repeat(40).leak() })]))
                    .expect_err(var);
            assert_eq!(err.var, var);
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn a_read_replica_needs_a_postgresql_writer() {
        let key = "k".repeat(40);
        let pg = [("SECRET_KEY", key.as_str()), ("DATABASE_URL", "postgres://w/db")];
        let config = Config::from_source(&env(&[pg[0], pg[1], ("DATABASE_READ_URL", "postgres://r/db")])).expect("config");
        assert_eq!(config.database_read_url.as_deref(), Some("postgres://r/db"));
        assert_eq!(Config::from_source(&env(&pg)).expect("config").database_read_url, None);
        let err = Config::from_source(&env(&[pg[0], pg[1], ("DATABASE_READ_URL", "sqlite://x.db")])).expect_err("scheme");
        assert_eq!(err.var, "DATABASE_READ_URL");
        let err = Config::from_source(&env(&[pg[0], ("DATABASE_READ_URL", "postgres://r/db")])).expect_err("sqlite writer");
        assert!(err.to_string().contains("SQLite"), "{err}");
    }

    #[test]
    fn production_requires_secret_and_base_url() {
        let err = Config::from_source(&env(&[("APP_ENV", "production"), ("PUBLIC_BASE_URL", "https://example.jp")])).expect_err("secret");
        assert_eq!(err.var, "SECRET_KEY");
        let err = Config::from_source(&env(&[("APP_ENV", "production"), ("SECRET_KEY", &"k".repeat(40))])).expect_err("url");
        assert_eq!(err.var, "PUBLIC_BASE_URL");
    }
}
