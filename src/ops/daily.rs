//! `normal-form-app ops daily`: the runbook's 毎朝9:00 checklist against a running instance and
//! its database, as a Japanese report (or JSON), exiting non-zero when something needs a person.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::stats;
use crate::db::Db;
use crate::emf::{Snapshot, p95_ms};

#[derive(Debug, Serialize)]
pub struct Check {
    pub item: &'static str,
    pub ok: bool,
    pub detail: String,
}

fn check(item: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check { item, ok, detail: detail.into() }
}

pub struct DailyOptions<'a> {
    pub url: &'a str,
    pub prometheus_url: Option<&'a str>,
    pub backup_dir: Option<&'a Path>,
}

/// A single value from Prometheus' instant-query API.
async fn prometheus_value(client: &reqwest::Client, base: &str, query: &str) -> Option<f64> {
    let body: serde_json::Value =
        client.get(format!("{base}/api/v1/query")).query(&[("query", query)]).send().await.ok()?.json().await.ok()?;
    body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

pub async fn run(db: &Db, options: &DailyOptions<'_>) -> Vec<Check> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
    let url = options.url.trim_end_matches('/');
    let mut checks = Vec::new();

    // 1. ヘルスチェック (curl -f …/health) and the external APIs it reports.
    match client.get(format!("{url}/health")).send().await {
        Ok(response) => {
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            checks.push(check("ヘルスチェック", status.is_success(), format!("HTTP {} status={}", status.as_u16(), body["status"])));
            let degraded: Vec<String> = body["external_apis"]
                .as_array()
                .map(|apis| {
                    apis.iter()
                        .filter(|a| a["status"] != "ok")
                        .map(|a| {
                            format!(
                                "{}={}{}",
                                a["api"].as_str().unwrap_or("?"),
                                a["status"].as_str().unwrap_or("?"),
                                if a["forced_fallback"] == true { "（手動切替中）" } else { "" }
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            checks.push(check(
                "外部API",
                degraded.is_empty(),
                if degraded.is_empty() {
                    "InventoryAPI / AddressAPI / RegionAPI すべて正常".into()
                } else {
                    format!("代替運用中: {}", degraded.join(", "))
                },
            ));
        }
        Err(err) => checks.push(check("ヘルスチェック", false, format!("応答なし: {err}"))),
    }

    // 2. エラー率 (< 1 %) and レスポンス時間 p95 (< 2 s): from Prometheus over 24 h when given,
    // otherwise from the instance's own counters since it started.
    let (error_rate, p95, basis) = match options.prometheus_url {
        Some(prom) => (
            prometheus_value(
                &client,
                prom,
                "sum(increase(nfa_http_requests_total{status_class=\"5xx\"}[24h])) / sum(increase(nfa_http_requests_total[24h])) * 100",
            )
            .await,
            prometheus_value(
                &client,
                prom,
                "histogram_quantile(0.95, sum by (le) (increase(nfa_http_request_duration_seconds_bucket[24h])))",
            )
            .await
            .map(|s| s * 1000.0),
            "過去24時間（Prometheus）",
        ),
        None => match client.get(format!("{url}/metrics")).send().await {
            Ok(response) => {
                let after = Snapshot::from_prometheus(&response.text().await.unwrap_or_default());
                let rate = if after.requests > 0.0 { Some(after.errors * 100.0 / after.requests) } else { Some(0.0) };
                (rate, Some(p95_ms(&Snapshot::default(), &after)), "インスタンス起動後の累計")
            }
            Err(_) => (None, None, "取得できません"),
        },
    };
    match error_rate {
        Some(rate) => checks.push(check("エラー率", rate < 1.0, format!("{rate:.2}%（基準 1%未満、{basis}）"))),
        None => checks.push(check("エラー率", false, format!("取得できません（{basis}）"))),
    }
    match p95 {
        Some(ms) => checks.push(check("レスポンス時間 p95", ms < 2000.0, format!("{ms:.0} ms（基準 2秒未満、{basis}）"))),
        None => checks.push(check("レスポンス時間 p95", false, "取得できません")),
    }

    // 3. 前日の登録数 against the 7 days before it; 登録完了率; queues.
    match business(db).await {
        Ok(mut business) => checks.append(&mut business),
        Err(err) => checks.push(check("データベース", false, format!("集計できません: {err}"))),
    }

    // 4. バックアップ状況: the newest file in the backup folder is at most 26 h old.
    if let Some(dir) = options.backup_dir {
        let newest = std::fs::read_dir(dir).ok().and_then(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()?.modified().ok()).max());
        match newest.and_then(|t| SystemTime::now().duration_since(t).ok()) {
            Some(age) => {
                let hours = age.as_secs_f64() / 3600.0;
                checks.push(check("バックアップ", hours <= 26.0, format!("最新のバックアップは {hours:.1} 時間前（基準 26時間以内）")));
            }
            None => checks.push(check("バックアップ", false, format!("{} にバックアップがありません", dir.display()))),
        }
    }
    checks
}

async fn business(db: &Db) -> Result<Vec<Check>, sqlx::Error> {
    let mut checks = Vec::new();
    let today = stats::today(db).await?;
    let days = stats::daily_registrations(db, 8).await?;
    let count_on = |date: time::Date| days.iter().find(|d| d.day == date.to_string()).map_or(0, |d| d.registrations);
    let yesterday = today.previous_day().unwrap_or(today);
    let count = count_on(yesterday);
    let history: Vec<f64> = (2..=8).filter_map(|back| today.checked_sub(time::Duration::days(back))).map(|d| count_on(d) as f64).collect();
    let mean = history.iter().sum::<f64>() / history.len().max(1) as f64;
    let sd = (history.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / history.len().max(1) as f64).sqrt();
    let (low, high) = ((mean - 2.0 * sd).max(0.0).floor(), (mean + 2.0 * sd).ceil());
    checks.push(check(
        "前日の登録数",
        (low..=high).contains(&(count as f64)),
        format!("{yesterday}: {count}件（過去7日の正常範囲 {low:.0}〜{high:.0}件、平均 {mean:.1}件）"),
    ));
    let completion = stats::completion_rate(db, 1).await?;
    checks.push(check(
        "登録完了率",
        true,
        format!("{}（完了 {} / セッション {}、直近1日）", completion.rate_text(), completion.completed, completion.total_sessions),
    ));
    let (reviews, pending, failed, oldest) = stats::queues(db).await?;
    checks.push(check("手動確認待ち", reviews == 0, format!("{reviews}件（/admin の確認待ちで対応してください）")));
    checks.push(check(
        "メール送信",
        failed == 0 && oldest < 900.0,
        format!("未送信 {pending}件（最古 {:.0}秒前）、送信失敗 {failed}件", oldest),
    ));
    Ok(checks)
}

pub fn print(checks: &[Check]) {
    println!("日次チェック（運用手順書 毎朝9:00）");
    for c in checks {
        println!("{} {}: {}", if c.ok { "[OK]  " } else { "[要対応]" }, c.item, c.detail);
    }
    let attention = checks.iter().filter(|c| !c.ok).count();
    if attention == 0 {
        println!("すべて正常です。");
    } else {
        println!("{attention}件の項目に対応が必要です。");
    }
}
