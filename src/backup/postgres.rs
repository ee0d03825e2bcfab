//! PostgreSQL backups with the server's own tools: `pg_dump -Fc` in an exported snapshot (the
//! manifest's figures are read in that same snapshot), `pg_restore` into a scratch database to
//! verify, and `pg_restore --clean --single-transaction` to restore (all or nothing). The tools
//! come from the PostgreSQL client package (same or newer major version than the server); the
//! password goes to them in `PGPASSWORD`, never on a command line `ps` can show.

use std::path::Path;
use std::process::Stdio;

use anyhow::Context;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};
use url::Url;

use super::manifest::{Contents, KEPT_TABLES, read_contents};

const TABLES: &str = "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename";
const COLUMNS: &str = "SELECT column_name::text FROM information_schema.columns \
     WHERE table_schema = current_schema() AND table_name = 'users' ORDER BY ordinal_position";

/// A libpq URL without its password, and the password apart.
struct Target {
    url: String,
    password: Option<String>,
}

impl Target {
    fn parse(url: &str) -> anyhow::Result<Target> {
        let mut parsed = Url::parse(url).context("not a postgres:// URL")?;
        let password = parsed.password().map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned());
        let _ = parsed.set_password(None);
        Ok(Target { url: parsed.to_string(), password })
    }

    /// The same server, another database.
    fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
        let mut parsed = Url::parse(url).context("not a postgres:// URL")?;
        parsed.set_path(&format!("/{database}"));
        Ok(parsed.to_string())
    }

    fn command(&self, program: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(program);
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password);
        }
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true);
        command
    }
}

/// Runs a client tool to completion; its stderr becomes the error.
async fn run(mut command: tokio::process::Command, program: &str) -> anyhow::Result<()> {
    let child = command.spawn().map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!(
                "{program} が見つかりません: PostgreSQL のクライアント（postgresql-client、サーバーと同じかそれ以降の版）を入れてください"
            )
        } else {
            anyhow::Error::from(err).context(format!("starting {program}"))
        }
    })?;
    let output = child.wait_with_output().await.with_context(|| format!("waiting for {program}"))?;
    anyhow::ensure!(output.status.success(), "{program} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    Ok(())
}

pub async fn create(url: &str, output: &Path) -> anyhow::Result<Contents> {
    let target = Target::parse(url)?;
    let mut connection = PgConnection::connect(url).await.context("connecting to DATABASE_URL")?;
    connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()").fetch_one(&mut connection).await?;
    let mut dump = target.command("pg_dump");
    dump.arg("--format=custom").arg("--no-owner").arg("--no-privileges").arg(format!("--snapshot={snapshot}"));
    dump.arg("--file").arg(output).arg("--dbname").arg(&target.url);
    // The snapshot lives as long as this transaction: count in it while pg_dump copies it.
    let (dumped, contents) = tokio::join!(run(dump, "pg_dump"), async { anyhow::Ok(read_contents!(&mut connection, TABLES, COLUMNS)) });
    dumped?;
    let contents = contents?;
    connection.execute("COMMIT").await?;
    connection.close().await?;
    Ok(contents)
}

async fn contents_of(url: &str) -> anyhow::Result<Contents> {
    let mut connection = PgConnection::connect(url).await?;
    let contents = read_contents!(&mut connection, TABLES, COLUMNS);
    connection.close().await?;
    Ok(contents)
}

async fn restore_into(url: &str, backup: &Path, clean: bool) -> anyhow::Result<()> {
    let target = Target::parse(url)?;
    let mut restore = target.command("pg_restore");
    restore.arg("--no-owner").arg("--no-privileges").arg("--exit-on-error").arg("--single-transaction");
    if clean {
        restore.arg("--clean").arg("--if-exists");
    }
    restore.arg("--dbname").arg(&target.url).arg(backup);
    run(restore, "pg_restore").await
}

/// Restores into a database of its own on `server_url`'s server, reads it, drops it.
pub async fn verify(server_url: &str, backup: &Path) -> anyhow::Result<Contents> {
    let name = format!("nfa_verify_{}", crate::crypto::random_token(10).to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "x"));
    let mut admin = PgConnection::connect(server_url).await.context("connecting to the server for the scratch database")?;
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.context("creating the scratch database")?;
    let scratch = Target::with_database(server_url, &name)?;
    let result = async {
        restore_into(&scratch, backup, false).await?;
        contents_of(&scratch).await
    }
    .await;
    let dropped = admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await;
    let _ = admin.close().await;
    let contents = result?;
    dropped.context("dropping the scratch database")?;
    Ok(contents)
}

/// Sessions of the service on the target database (other than ours): a restore under a running
/// service would mix its writes with the backup's.
pub async fn service_sessions(url: &str) -> anyhow::Result<i64> {
    let mut connection = PgConnection::connect(url).await.context("connecting to DATABASE_URL")?;
    let sessions: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND application_name LIKE 'normal-form-app%'",
    )
    .fetch_one(&mut connection)
    .await?;
    connection.close().await?;
    Ok(sessions)
}

/// Rows of the tables that make a database worth keeping (registrations, flows, admin accounts).
pub async fn kept_rows(url: &str) -> anyhow::Result<i64> {
    let mut connection = PgConnection::connect(url).await.context("connecting to DATABASE_URL")?;
    let mut rows = 0;
    for table in KEPT_TABLES {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(table).fetch_one(&mut connection).await?;
        if exists {
            let count: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"))).fetch_one(&mut connection).await?;
            rows += count;
        }
    }
    connection.close().await?;
    Ok(rows)
}

/// Replaces the target's objects with the backup's in one transaction: the target ends up either
/// unchanged or exactly the backup.
pub async fn restore(url: &str, backup: &Path) -> anyhow::Result<Contents> {
    restore_into(url, backup, true).await?;
    contents_of(url).await
}
