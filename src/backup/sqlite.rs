//! SQLite backups: `VACUUM INTO` writes a consistent, compacted copy while the service runs;
//! verifying opens a copy of it read-only; restoring swaps the database file for a checked copy.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, SqlitePool};

use super::manifest::{Contents, KEPT_TABLES, read_contents};

const TABLES: &str = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name";
const COLUMNS: &str = "SELECT name FROM pragma_table_info('users') ORDER BY cid";

pub async fn create(pool: &SqlitePool, output: &Path) -> anyhow::Result<Contents> {
    let target = output.to_str().context("the output path must be valid UTF-8")?;
    sqlx::query("VACUUM INTO $1").bind(target).execute(pool).await.context("VACUUM INTO")?;
    contents_of(output).await
}

async fn open(path: &Path, read_only: bool) -> anyhow::Result<SqliteConnection> {
    let options = SqliteConnectOptions::new().filename(path).read_only(read_only).create_if_missing(false);
    SqliteConnection::connect_with(&options).await.with_context(|| format!("opening {}", path.display()))
}

/// The contents of a backup or database file, after SQLite's own integrity check.
pub async fn contents_of(path: &Path) -> anyhow::Result<Contents> {
    let mut connection = open(path, true).await?;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut connection).await?;
    anyhow::ensure!(check == "ok", "{}: SQLite の整合性チェックに失敗しました: {check}", path.display());
    let contents = read_contents!(&mut connection, TABLES, COLUMNS);
    connection.close().await?;
    Ok(contents)
}

/// Checks a copy, so that verifying never touches the backup itself (SQLite may write to a file
/// it opens).
pub async fn verify(backup: &Path) -> anyhow::Result<Contents> {
    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    let copy = scratch.path().join("verify.sqlite3");
    std::fs::copy(backup, &copy).with_context(|| format!("copying {}", backup.display()))?;
    contents_of(&copy).await
}

/// The file a `sqlite:` URL names.
pub fn file_of(url: &str) -> anyhow::Result<PathBuf> {
    Ok(SqliteConnectOptions::from_str(url).context("DATABASE_URL")?.get_filename().to_path_buf())
}

/// Rows of the tables that make a database worth keeping (registrations, flows, admin accounts).
pub async fn kept_rows(path: &Path) -> anyhow::Result<i64> {
    if !path.exists() {
        return Ok(0);
    }
    let mut connection = open(path, true).await?;
    let mut rows = 0;
    for table in KEPT_TABLES {
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1")
            .bind(table)
            .fetch_one(&mut connection)
            .await?;
        if exists > 0 {
            let count: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"))).fetch_one(&mut connection).await?;
            rows += count;
        }
    }
    connection.close().await?;
    Ok(rows)
}

/// Puts a checked copy of the backup in place of the database file in one rename, so the target
/// is either the old database or the whole backup, never a mix. The service must be stopped.
pub async fn restore(backup: &Path, target: &Path) -> anyhow::Result<Contents> {
    let folder = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let staging = folder.join(format!(".restore-{}.sqlite3", std::process::id()));
    std::fs::copy(backup, &staging).with_context(|| format!("copying {} to {}", backup.display(), staging.display()))?;
    std::fs::File::open(&staging)?.sync_all()?;
    let contents = match contents_of(&staging).await {
        Ok(contents) => contents,
        Err(err) => {
            let _ = std::fs::remove_file(&staging);
            return Err(err);
        }
    };
    // The old database's write-ahead log must not be replayed into the restored file.
    for suffix in ["-wal", "-shm"] {
        let mut name = target.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
    std::fs::rename(&staging, target).with_context(|| format!("moving the restored database to {}", target.display()))?;
    Ok(contents)
}
