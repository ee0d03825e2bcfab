//! `normal-form-app ops report`: the runbook's 週次 性能監視レポート as one self-contained HTML
//! file — registrations per day, completion rate, funnel and drop-off, top validation errors from
//! the database; request rate, p95 and error rate per day from Prometheus when given.

use std::fmt::Write;

use super::stats;
use crate::db::Db;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A bar chart as inline SVG: one bar per (label, value).
pub fn bar_chart(title: &str, bars: &[(String, f64)], unit: &str) -> String {
    let (width, height, pad) = (640.0, 220.0, 30.0);
    let max = bars.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max).max(1.0);
    let slot = (width - 2.0 * pad) / bars.len().max(1) as f64;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\">",
        escape(title),
        escape(title)
    );
    let _ = write!(svg, "<line x1=\"{pad}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#9aa5b1\"/>", height - pad, width - pad);
    for (i, (label, value)) in bars.iter().enumerate() {
        let h = (height - 2.0 * pad) * value / max;
        let x = pad + slot * i as f64 + slot * 0.15;
        let y = height - pad - h;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#0b5cad\"><title>{}: {value}{unit}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            slot * 0.7,
            escape(label),
            x + slot * 0.35,
            height - pad + 14.0,
            escape(label),
            x + slot * 0.35,
            y - 4.0,
            if value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value:.2}") }
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// Per-day values of a PromQL expression over the period (query_range, one step a day).
async fn prometheus_days(client: &reqwest::Client, base: &str, query: &str, days: i32) -> Vec<(String, f64)> {
    let end = time::OffsetDateTime::now_utc().unix_timestamp();
    let start = end - i64::from(days) * 86400;
    let Ok(response) = client
        .get(format!("{base}/api/v1/query_range"))
        .query(&[("query", query), ("start", &start.to_string()), ("end", &end.to_string()), ("step", "86400")])
        .send()
        .await
    else {
        return Vec::new();
    };
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    body["data"]["result"][0]["values"]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|pair| {
                    let at = time::OffsetDateTime::from_unix_timestamp(pair[0].as_f64()? as i64).ok()?;
                    Some((at.date().to_string(), pair[1].as_str()?.parse::<f64>().ok().filter(|v| v.is_finite()).unwrap_or(0.0)))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub async fn build(db: &Db, days: i32, prometheus_url: Option<&str>) -> Result<String, sqlx::Error> {
    let daily = stats::daily_registrations(db, days).await?;
    let completion = stats::completion_rate(db, days).await?;
    let funnel = stats::funnel(db, days).await?;
    let errors = stats::top_field_errors(db, days, 10).await?;
    let generated = crate::values::jst::today();

    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>週次 性能監視レポート</title><style>\
         body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;color:#1f2933;line-height:1.6}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #cbd2d9;padding:.3rem .6rem;text-align:right}}\
         th:first-child,td:first-child{{text-align:left}}figure{{margin:1rem 0}}svg{{max-width:100%;height:auto}}</style></head><body>\
         <h1>週次 性能監視レポート</h1><p>対象: 直近{days}日 ／ 作成: {}</p>",
        generated
    );
    let total: i64 = daily.iter().map(|d| d.registrations).sum();
    let _ = write!(html, "<h2>ユーザー登録数推移</h2><p>合計 {total}件</p>");
    html.push_str(&bar_chart(
        "日別登録数",
        &daily.iter().map(|d| (d.day[5..].to_string(), d.registrations as f64)).collect::<Vec<_>>(),
        "件",
    ));
    let _ = write!(
        html,
        "<h2>登録完了率</h2><p><strong>{}</strong>（完了 {} ／ セッション {}）</p>",
        completion.rate_text(),
        completion.completed,
        completion.total_sessions
    );
    let steps = [
        ("開始", funnel.started),
        ("お客様情報", funnel.customer),
        ("ご住所", funnel.address),
        ("プラン", funnel.plan),
        ("完了", funnel.completed),
    ];
    html.push_str("<h2>ファネルと離脱</h2>");
    html.push_str(&bar_chart(
        "各段階に到達したセッション数",
        &steps.iter().map(|(n, v)| (n.to_string(), *v as f64)).collect::<Vec<_>>(),
        "件",
    ));
    html.push_str("<table><tr><th>段階</th><th>到達</th><th>前段階からの離脱</th></tr>");
    for window in steps.windows(2) {
        let (previous, current) = (window[0], window[1]);
        let lost = previous.1 - current.1;
        let share = if previous.1 > 0 { lost as f64 * 100.0 / previous.1 as f64 } else { 0.0 };
        let _ = write!(html, "<tr><td>{}</td><td>{}</td><td>{lost}（{share:.1}%）</td></tr>", current.0, current.1);
    }
    html.push_str("</table><h2>エラー発生パターン（入力エラーの多い項目）</h2><table><tr><th>ステップ</th><th>項目</th><th>件数</th></tr>");
    for e in &errors {
        let _ = write!(html, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", escape(&e.step), escape(&e.field), e.count);
    }
    html.push_str("</table>");
    match prometheus_url {
        Some(base) => {
            let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().unwrap_or_default();
            html.push_str("<h2>リクエスト数・レスポンス時間・エラー率（Prometheus）</h2>");
            let series = [
                ("日別リクエスト数", "sum(increase(nfa_http_requests_total[1d]))", "件"),
                (
                    "日別 p95 レスポンス時間（秒）",
                    "histogram_quantile(0.95, sum by (le) (increase(nfa_http_request_duration_seconds_bucket[1d])))",
                    "秒",
                ),
                (
                    "日別エラー率（%）",
                    "sum(increase(nfa_http_requests_total{status_class=\"5xx\"}[1d])) / sum(increase(nfa_http_requests_total[1d])) * 100",
                    "%",
                ),
            ];
            for (title, query, unit) in series {
                let values = prometheus_days(&client, base, query, days).await;
                if values.is_empty() {
                    let _ = write!(html, "<p>{title}: Prometheus から取得できませんでした。</p>");
                } else {
                    html.push_str(&bar_chart(title, &values.iter().map(|(d, v)| (d[5..].to_string(), *v)).collect::<Vec<_>>(), unit));
                }
            }
        }
        None => html.push_str("<p>リクエスト数・レスポンス時間・エラー率は PROMETHEUS_URL を指定すると掲載されます。</p>"),
    }
    html.push_str("</body></html>\n");
    Ok(html)
}
