//! How the queue writes kinds, statuses and waiting times in Japanese.

use time::OffsetDateTime;

/// How long something waited, in Japanese (「3日4時間」, 「2時間5分」, 「12分」).
pub fn waited(from: OffsetDateTime, until: OffsetDateTime) -> String {
    let minutes = (until - from).whole_minutes().max(0);
    let (days, hours, mins) = (minutes / 1440, (minutes % 1440) / 60, minutes % 60);
    if days > 0 {
        format!("{days}日{hours}時間")
    } else if hours > 0 {
        format!("{hours}時間{mins}分")
    } else {
        format!("{mins}分")
    }
}

pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "inventory" => "在庫",
        "region" => "地域",
        _ => "その他",
    }
}

/// Label and badge class of a review status.
pub fn status_badge(status: &str) -> (&'static str, &'static str) {
    match status {
        "pending" => ("未対応", "warn"),
        "approved" => ("承認", "ok"),
        "rejected" => ("却下", "bad"),
        _ => ("不明", ""),
    }
}

pub fn inventory_label(status: &str) -> &'static str {
    match status {
        "reserved" => "確保済み",
        "needs_check" => "要確認",
        "confirmed" => "確認済み（承認）",
        "rejected" => "却下",
        _ => "不明",
    }
}

pub fn region_label(status: &str) -> &'static str {
    match status {
        "eligible" => "提供地域内",
        "unchecked" => "未確認（自動再確認待ち）",
        "ineligible" => "提供地域外の可能性（要確認）",
        "approved" => "確認済み（承認）",
        "rejected" => "却下",
        _ => "不明",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_time_in_japanese() {
        let t = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(waited(t, t + time::Duration::minutes(12)), "12分");
        assert_eq!(waited(t, t + time::Duration::minutes(125)), "2時間5分");
        assert_eq!(waited(t, t + time::Duration::hours(76)), "3日4時間");
        assert_eq!(waited(t + time::Duration::minutes(5), t), "0分");
    }
}
