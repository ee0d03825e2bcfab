//! The backup drill of issue 17 on both backends: register people through the form, back up,
//! destroy the database, restore, verify — every registration back with the same checksum, the
//! service serving and registering again on the restored database.

use std::path::Path;
use std::time::Instant;

use sqlx::{Connection, Executor};

use crate::helpers::{Backend, TestApp, admin_database_url, db_for};
use crate::on_both_backends;

/// Runs the binary's `backup …` against `database_url`; (exit code, stdout, stderr).
async fn backup(database_url: &str, data_dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_normal-form-app"))
        .arg("backup")
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("DATA_DIR", data_dir)
        .env("LOG_FORMAT", "json")
        .output()
        .await
        .expect("run backup");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).to_string();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

fn manifest(path: &Path) -> serde_json::Value {
    let mut name = path.as_os_str().to_owned();
    name.push(".manifest.json");
    serde_json::from_slice(&std::fs::read(name).expect("manifest written")).expect("manifest JSON")
}

async fn registration_numbers(database_url: &str) -> Vec<String> {
    let db = db_for(database_url);
    let numbers = normal_form_app::with_pool!(&db, |pool| sqlx::query_scalar("SELECT registration_number FROM users ORDER BY id")
        .fetch_all(pool)
        .await)
    .expect("read users");
    db.close().await;
    numbers
}

/// Destroys the test's database: the file (SQLite) or the whole database, recreated empty
/// (PostgreSQL), as a lost volume or a dropped cluster would leave it.
async fn destroy(app: &TestApp) {
    match app.backend {
        Backend::Sqlite => {
            let file = app.database_url.trim_start_matches("sqlite://").to_string();
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{file}{suffix}"));
            }
        }
        Backend::Postgres => {
            let name = app.database_url.rsplit('/').next().expect("database name").to_string();
            let mut admin = sqlx::PgConnection::connect(&admin_database_url()).await.expect("admin connection");
            admin.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).await.expect("drop");
            admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("recreate empty");
        }
    }
}

on_both_backends! {
    async fn backup_drill_restores_every_registration_with_the_same_checksum(app) {
        let mut app = app;
        const PEOPLE: usize = 4;
        for i in 0..PEOPLE {
            app.with_new_browser().register(&format!("drill{i}@example.jp")).await;
        }
        app.with_new_browser().type_and_leave().await; // an abandoned flow too
        let numbers = registration_numbers(&app.database_url).await;
        assert_eq!(numbers.len(), PEOPLE);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("drill.backup");
        let file_arg = file.to_str().expect("utf-8 path");
        let data = app.data_dir.path().to_path_buf();

        let started = Instant::now();
        let (code, out, err) = backup(&app.database_url, &data, &["create", "--output", file_arg]).await;
        assert_eq!(code, 0, "create: {out}{err}");
        let created = started.elapsed();
        assert!(out.contains(&format!("登録 {PEOPLE} 件")), "{out}");
        let taken = manifest(&file);
        assert_eq!(taken["contents"]["tables"]["users"], PEOPLE as i64);
        assert!(taken["contents"]["tables"]["user_sessions"].as_i64().expect("flows counted") > PEOPLE as i64);

        let (code, out, err) = backup(&app.database_url, &data, &["verify", file_arg]).await;
        assert_eq!(code, 0, "verify: {out}{err}");
        assert!(out.contains("検証しました"), "{out}");
        // A backup that changed since it was made is caught before anything is restored.
        let tampered = dir.path().join("tampered.backup");
        let mut bytes = std::fs::read(&file).expect("read backup");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&tampered, bytes).expect("write tampered copy");
        std::fs::copy(dir.path().join("drill.backup.manifest.json"), dir.path().join("tampered.backup.manifest.json")).expect("copy manifest");
        let (code, _, err) = backup(&app.database_url, &data, &["verify", tampered.to_str().expect("path")]).await;
        assert_ne!(code, 0, "a damaged backup must not verify");
        assert!(err.contains("作成時と異なります"), "{err}");

        app.stop().await;
        destroy(&app).await;
        let started = Instant::now();
        let (code, out, err) = backup(&app.database_url, &data, &["restore", file_arg]).await;
        assert_eq!(code, 0, "restore into the empty database: {out}{err}");
        let restored_in = started.elapsed();
        assert!(out.contains("復元しました"), "{out}");
        assert_eq!(registration_numbers(&app.database_url).await, numbers, "every registration is back, in order");

        // The same checksum, read afresh from the restored database by a second backup.
        let again = dir.path().join("again.backup");
        let (code, out, err) = backup(&app.database_url, &data, &["create", "--output", again.to_str().expect("path")]).await;
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(manifest(&again)["contents"], taken["contents"], "identical tables and registrations checksum");

        // A database that holds registrations is not overwritten by accident.
        let (code, _, err) = backup(&app.database_url, &data, &["restore", file_arg]).await;
        assert_ne!(code, 0);
        assert!(err.contains("--force"), "{err}");

        // The service runs on the restored database and takes new registrations (sequences too).
        let restarted = app.another_instance().await;
        assert_eq!(restarted.count_users("drill0@example.jp").await, 1);
        restarted.with_new_browser().register("after-restore@example.jp").await;
        assert_eq!(registration_numbers(&app.database_url).await.len(), PEOPLE + 1);
        eprintln!(
            "backup drill ({:?}): {PEOPLE} registrations, create {:.2} s, restore {:.2} s",
            app.backend,
            created.as_secs_f64(),
            restored_in.as_secs_f64()
        );
    }
}
