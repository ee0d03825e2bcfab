//! CSV export (BOM, Japanese header, formula neutralisation, CP932, streaming over batches,
//! audit, authorisation) and the `dev seed` command.

use std::process::Command;

use normal_form_app::admin::actor::Role;
use normal_form_app::with_pool;

use super::admin;
use super::registrations::{Person, insert, urlencode};
use crate::helpers::{TestApp, location};
use crate::on_both_backends;

const BIN: &str = env!("CARGO_BIN_EXE_normal-form-app");
const HEADER: &str = "受付番号,登録日時（日本時間）,姓,名,セイ,メイ,メールアドレス,メール確認,電話番号,生年月日,郵便番号,都道府県,市区町村,番地,建物名,プラン,在庫確認,地域確認";

fn records(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("csv record").iter().map(str::to_string).collect())
        .collect()
}

async fn audit_count(app: &TestApp) -> i64 {
    with_pool!(&app.db, |pool| sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'registrations.export'")
        .fetch_one(pool)
        .await)
    .expect("count")
}

on_both_backends! {
    async fn utf8_export_has_bom_header_and_neutralised_formulas(app) {
        let mut evil = Person::new(1);
        evil.family = "=HYPERLINK(\"http://evil.example\",\"x\")".into();
        evil.given = "+81".into();
        evil.street = "-1+2".into();
        evil.building = "@SUM(A1:A9)".into();
        evil.email = "evil@example.jp".into();
        insert(&app, &evil).await;
        let mut tab = Person::new(2);
        tab.building = "\tcmd".into();
        insert(&app, &tab).await;
        let admin = admin(&app, Role::Operator).await;
        let response = admin.get("/admin/registrations/export.csv").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
        let disposition = response.headers()["content-disposition"].to_str().expect("ascii").to_string();
        assert!(disposition.starts_with("attachment; filename=\"registrations-2"), "{disposition}");
        assert!(disposition.ends_with(".csv\"") && disposition.len() == "attachment; filename=\"registrations-YYYYMMDD.csv\"".len());
        let bytes = response.bytes().await.expect("body");
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "BOM");
        let text = std::str::from_utf8(&bytes[3..]).expect("utf-8");
        assert!(text.starts_with(&format!("{HEADER}\r\n")), "Japanese header: {text}");
        assert!(!text.contains("$argon2id$"), "no password hash");
        let rows = records(text);
        assert_eq!(rows.len(), 3, "header + 2 rows");
        let evil_row = rows.iter().find(|r| r[6] == "evil@example.jp").expect("evil row");
        assert_eq!(evil_row[2], "'=HYPERLINK(\"http://evil.example\",\"x\")");
        assert_eq!(evil_row[3], "'+81");
        assert_eq!(evil_row[13], "'-1+2");
        assert_eq!(evil_row[14], "'@SUM(A1:A9)");
        let tab_row = rows.iter().find(|r| r[0] == tab.number).expect("tab row");
        assert_eq!(tab_row[14], "'\tcmd");
        // Ordinary cells are untouched.
        assert_eq!(tab_row[2], "佐藤");
        assert_eq!(tab_row[10], "150-0002");
        assert_eq!(tab_row[16], "在庫確保済み");
    }

    async fn cp932_export_decodes_to_the_same_text(app) {
        for n in 0..3 {
            let mut p = Person::new(n);
            p.family = "髙橋".into();
            p.building = "メゾン①Ⅱ－１０２号".into();
            insert(&app, &p).await;
        }
        let admin = admin(&app, Role::Operator).await;
        let utf8 = admin.get("/admin/registrations/export.csv?encoding=utf8").await.bytes().await.expect("body");
        let response = admin.get("/admin/registrations/export.csv?encoding=cp932").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/csv; charset=Shift_JIS");
        let sjis = response.bytes().await.expect("body");
        assert!(!sjis.starts_with(b"\xEF\xBB\xBF"), "no BOM in Shift_JIS");
        let (decoded, _, had_errors) = encoding_rs::SHIFT_JIS.decode(&sjis);
        assert!(!had_errors);
        assert_eq!(decoded, std::str::from_utf8(&utf8[3..]).expect("utf-8"));
        assert!(decoded.contains("髙橋"));
        // Characters CP932 lacks become '?'.
        let mut emoji = Person::new(9);
        emoji.building = "ハウス😀 1〜2".into();
        insert(&app, &emoji).await;
        let sjis = admin.get("/admin/registrations/export.csv?encoding=cp932").await.bytes().await.expect("body");
        assert!(encoding_rs::SHIFT_JIS.decode(&sjis).0.contains("ハウス?"));
        // The JIS WAVE DASH is written as CP932's 0x8160, not lost.
        assert!(sjis.windows(3).any(|w| w == b"1\x81\x60"), "〜 as 0x8160");
        // An unknown encoding is a Japanese 422.
        let response = admin.get("/admin/registrations/export.csv?encoding=latin1").await;
        assert_eq!(response.status(), 422);
        assert!(response.text().await.expect("body").contains("文字コード"));
    }

    async fn export_follows_the_filters_and_is_audited(app) {
        let mut wanted = Person::new(1);
        wanted.email = "wanted@example.jp".into();
        wanted.family = "山田".into();
        insert(&app, &wanted).await;
        insert(&app, &Person::new(2)).await;
        let admin = admin(&app, Role::Operator).await;
        assert_eq!(audit_count(&app).await, 0);
        let response = admin.get(&format!("/admin/registrations/export.csv?email=wanted%40example.jp&name={}", urlencode("山田"))).await;
        let text = response.text().await.expect("body");
        let rows = records(text.trim_start_matches('\u{feff}'));
        assert_eq!(rows.len(), 2, "header + the one match");
        assert_eq!(rows[1][0], wanted.number);
        let (actor, target, detail): (String, String, sqlx::types::Json<serde_json::Value>) = with_pool!(&app.db, |pool| {
            sqlx::query_as("SELECT actor, target, detail FROM audit_log WHERE action = 'registrations.export'").fetch_one(pool).await
        })
        .expect("audit row");
        assert_eq!(actor, admin.email);
        assert_eq!(target, "users");
        assert_eq!(detail.0["encoding"], "utf8");
        assert_eq!(detail.0["filters"]["email"], true);
        assert_eq!(detail.0["filters"]["name"], true);
        let detail_text = detail.0.to_string();
        assert!(!detail_text.contains("wanted") && !detail_text.contains("山田"), "no personal data in the audit log: {detail_text}");
        // Bad filters: a Japanese 422 and nothing exported or audited.
        let response = admin.get("/admin/registrations/export.csv?from=2026-13-01").await;
        assert_eq!(response.status(), 422);
        assert!(response.text().await.expect("body").contains("登録日"));
        assert_eq!(audit_count(&app).await, 1);
    }

    async fn only_operators_export(app) {
        insert(&app, &Person::new(1)).await;
        let viewer = admin(&app, Role::Viewer).await;
        let response = viewer.get("/admin/registrations/export.csv").await;
        assert_eq!(response.status(), 403);
        assert!(response.text().await.expect("body").contains("権限がありません"));
        let response = app.get("/admin/registrations/export.csv?encoding=cp932").await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/admin/login");
        assert_eq!(audit_count(&app).await, 0, "refused exports are not audited as exports");
    }

    async fn seeded_rows_export_across_batches(app) {
        // More than one batch (5,000 rows) so the keyset continuation is exercised.
        let catalog = normal_form_app::catalog::Catalog::embedded().expect("catalog");
        let mut reported = Vec::new();
        let summary = normal_form_app::dev::seed(&app.db, &catalog, 5_100, |done| reported.push(done)).await.expect("seed");
        assert_eq!(summary.users, 5_100);
        assert_eq!(reported.last(), Some(&5_100));
        let (users, completed, abandoned, with_user): (i64, i64, i64, i64) = with_pool!(&app.db, |pool| {
            sqlx::query_as(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM user_sessions WHERE status = 'completed'), \
                 (SELECT count(*) FROM user_sessions WHERE status <> 'completed'), \
                 (SELECT count(DISTINCT user_id) FROM user_sessions WHERE status = 'completed')",
            )
            .fetch_one(pool)
            .await
        })
        .expect("counts");
        assert_eq!((users, completed, with_user), (5_100, 5_100, 5_100));
        assert!(abandoned > 500, "some abandoned flows: {abandoned}");
        assert_eq!(summary.flows as i64, completed + abandoned);
        let admin = admin(&app, Role::Operator).await;
        let text = admin.get("/admin/registrations/export.csv").await.text().await.expect("body");
        let rows = records(text.trim_start_matches('\u{feff}'));
        assert_eq!(rows.len(), 5_101);
        let numbers: std::collections::HashSet<&String> = rows[1..].iter().map(|r| &r[0]).collect();
        assert_eq!(numbers.len(), 5_100, "every row once");
        // Newest first across the batch boundary.
        let created: Vec<&String> = rows[1..].iter().map(|r| &r[1]).collect();
        assert!(created.windows(2).all(|w| w[0] >= w[1]));
    }
}

#[test]
fn dev_seed_refuses_in_production() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("prod.db");
    let output = Command::new(BIN)
        .args(["dev", "seed", "--users", "5"])
        .env("APP_ENV", "production")
        .env("PUBLIC_BASE_URL", "https://example.jp")
        .env("SECRET_KEY", "k".repeat(48))
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refuses to run with APP_ENV=production"), "{stderr}");
    assert!(!db.exists(), "the database was not even opened");
}

#[test]
fn dev_seed_inserts_n_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("dev.db");
    let output = Command::new(BIN)
        .args(["dev", "seed", "--users", "7"])
        .env("DATA_DIR", dir.path())
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("seeded 7 users"));
}
