//! `normal-form-app backup create | verify | restore`: backups the service makes and checks
//! itself, on either backend (runbook: バックアップ状況確認, 災害復旧テスト; docs/disaster-recovery.md).
//!
//! A backup is one file (SQLite: a copy made with `VACUUM INTO`; PostgreSQL: `pg_dump -Fc`) and
//! its manifest beside it (`manifest`): the row count of every table and a checksum over every
//! registration. `verify` restores the file somewhere of its own and compares; `restore` refuses a
//! target that holds registrations, flows or admin accounts unless `--force`, and checks the
//! result the same way.

pub mod manifest;
mod postgres;
mod sqlite;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use time::OffsetDateTime;

use self::manifest::{Contents, FORMAT, Manifest};
use crate::config::Config;
use crate::db::{Db, PoolSettings};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of(url: &str) -> Backend {
        if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres }
    }

    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite3",
            Backend::Postgres => "dump",
        }
    }
}

/// `BACKUP_DIR/normal-form-app-BACKEND-20261204T093000Z.EXT`.
pub fn default_output(dir: &Path, database_url: &str, now: OffsetDateTime) -> PathBuf {
    let backend = Backend::of(database_url);
    let stamp =
        format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", now.year(), u8::from(now.month()), now.day(), now.hour(), now.minute(), now.second());
    dir.join(format!("normal-form-app-{}-{stamp}.{}", backend.name(), backend.extension()))
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

fn summary(contents: &Contents) -> String {
    let rows: i64 = contents.tables.values().sum();
    format!(
        "登録 {} 件、{} テーブル・計 {} 行、登録データのチェックサム {}…",
        contents.registrations(),
        contents.tables.len(),
        rows,
        &contents.registrations_sha256[..16]
    )
}

/// `backup create`: writes the backup and its manifest; returns the backup's path.
pub async fn create(config: &Config, output: PathBuf) -> anyhow::Result<PathBuf> {
    let backend = Backend::of(&config.database_url);
    anyhow::ensure!(!output.exists(), "{} はすでにあります（上書きしません）", output.display());
    if let Some(folder) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    }
    println!("バックアップを作成しています（{}）: {}", backend.name(), output.display());
    let started = Instant::now();
    let created_at = OffsetDateTime::now_utc();
    let made = match backend {
        Backend::Sqlite => {
            let Db::Sqlite(pool) = Db::connect(&config.database_url, &PoolSettings::from(config))? else {
                anyhow::bail!("DATABASE_URL is not SQLite");
            };
            let contents = sqlite::create(&pool, &output).await;
            pool.close().await;
            contents
        }
        Backend::Postgres => postgres::create(&config.database_url, &output).await,
    };
    let contents = match made {
        Ok(contents) => contents,
        Err(err) => {
            // Never leave a half-written file that could pass for a backup.
            let _ = std::fs::remove_file(&output);
            return Err(err.context("バックアップを作成できませんでした"));
        }
    };
    let (file_bytes, file_sha256) = manifest::file_digest(&output)?;
    let manifest = Manifest {
        format: FORMAT,
        backend: backend.name().to_string(),
        created_at: created_at.format(&time::format_description::well_known::Rfc3339)?,
        app_version: env!("CARGO_PKG_VERSION").to_string(),
        file_bytes,
        file_sha256,
        contents,
    };
    let manifest_path = manifest.write(&output)?;
    println!("作成しました: {}（{}、{:.1} 秒）", output.display(), megabytes(file_bytes), started.elapsed().as_secs_f64());
    println!("  内容: {}", summary(&manifest.contents));
    println!("  マニフェスト: {}", manifest_path.display());
    Ok(output)
}

/// `backup verify`: restores the backup somewhere of its own and compares it with its manifest.
/// PostgreSQL needs a server to restore into (`scratch_url`, default `DATABASE_URL`'s server); a
/// scratch database is created there and dropped.
pub async fn verify(config: &Config, backup: &Path, scratch_url: Option<&str>) -> anyhow::Result<Contents> {
    let manifest = Manifest::read(backup)?;
    println!("バックアップを検証しています: {}（{}、{} 作成）", backup.display(), manifest.backend, manifest.created_at);
    let started = Instant::now();
    manifest.check_file(backup)?;
    println!("  ファイル: {}、SHA-256 一致", megabytes(manifest.file_bytes));
    let restored = match manifest.backend.as_str() {
        "sqlite" => sqlite::verify(backup).await?,
        "postgres" => {
            let server = scratch_url.unwrap_or(&config.database_url);
            anyhow::ensure!(
                Backend::of(server) == Backend::Postgres,
                "PostgreSQL のバックアップの検証には、--scratch-url に PostgreSQL の URL が必要です"
            );
            postgres::verify(server, backup).await?
        }
        other => anyhow::bail!("unknown backend {other:?} in the manifest"),
    };
    let differences = restored.differences(&manifest.contents);
    anyhow::ensure!(differences.is_empty(), "検証に失敗しました: {}", differences.join("、"));
    println!("検証しました（{:.1} 秒）: {}", started.elapsed().as_secs_f64(), summary(&restored));
    Ok(restored)
}

/// `backup restore`: replaces `DATABASE_URL`'s contents with the backup. Refuses a target that
/// holds registrations, flows or admin accounts, or (PostgreSQL) that the service is connected
/// to, unless `force`.
pub async fn restore(config: &Config, backup: &Path, force: bool) -> anyhow::Result<Contents> {
    let manifest = Manifest::read(backup)?;
    let backend = Backend::of(&config.database_url);
    anyhow::ensure!(
        manifest.backend == backend.name(),
        "{} のバックアップは {} のデータベースには戻せません",
        manifest.backend,
        backend.name()
    );
    manifest.check_file(backup)?;
    let started = Instant::now();
    let kept = match backend {
        Backend::Sqlite => sqlite::kept_rows(&sqlite::file_of(&config.database_url)?).await?,
        Backend::Postgres => postgres::kept_rows(&config.database_url).await?,
    };
    if kept > 0 && !force {
        anyhow::bail!(
            "復元先のデータベースには登録・フロー・管理者のデータが {kept} 行あります。上書きする場合は --force を付けてください（先に backup create で退避することをおすすめします）"
        );
    }
    if backend == Backend::Postgres {
        let sessions = postgres::service_sessions(&config.database_url).await?;
        if sessions > 0 && !force {
            anyhow::bail!(
                "サービスが復元先に接続しています（{sessions} 接続）。サービスを停止してから復元してください（ECS ならタスク数 0）"
            );
        }
    }
    println!(
        "復元しています: {} → {}（{}）",
        backup.display(),
        backend.name(),
        if kept > 0 { "既存のデータを置き換えます" } else { "空のデータベース" }
    );
    let restored = match backend {
        Backend::Sqlite => sqlite::restore(backup, &sqlite::file_of(&config.database_url)?).await?,
        Backend::Postgres => postgres::restore(&config.database_url, backup).await?,
    };
    let differences = restored.differences(&manifest.contents);
    anyhow::ensure!(differences.is_empty(), "復元後の内容がバックアップと一致しません: {}", differences.join("、"));
    println!("復元しました（{:.1} 秒）: {}", started.elapsed().as_secs_f64(), summary(&restored));
    Ok(restored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_carry_the_backend_and_the_utc_time() {
        let now = time::macros::datetime!(2026-12-04 09:30:05 UTC);
        assert_eq!(
            default_output(Path::new("backups"), "sqlite://data/x.db", now),
            PathBuf::from("backups/normal-form-app-sqlite-20261204T093005Z.sqlite3")
        );
        assert_eq!(
            default_output(Path::new("/b"), "postgres://h/db", now),
            PathBuf::from("/b/normal-form-app-postgres-20261204T093005Z.dump")
        );
    }
}
