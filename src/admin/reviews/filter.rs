//! The queue's filters, read leniently from the query string.

use serde::Deserialize;
use time::{Date, OffsetDateTime};

use crate::values::jst;

/// Entries per page.
pub const PAGE_SIZE: i64 = 50;

/// The list's query string, every field optional and read leniently: an unknown value is a
/// Japanese message on the page, never an error status without explanation.
#[derive(Deserialize, Default)]
pub struct RawFilter {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KindFilter {
    All,
    Inventory,
    Region,
    /// Registrations still flagged `unchecked` (no review row yet).
    Unchecked,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StatusFilter {
    Pending,
    Approved,
    Rejected,
    Decided,
    All,
}

#[derive(Clone, Debug)]
pub struct Filter {
    pub kind: KindFilter,
    pub status: StatusFilter,
    pub plan: Option<String>,
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub after: Option<i64>,
}

impl Filter {
    /// The filter, and the Japanese messages for the parts that could not be read (ignored).
    pub fn parse(raw: &RawFilter, plans: &[(String, String)]) -> (Filter, Vec<&'static str>) {
        let mut errors = Vec::new();
        let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let kind = match text(&raw.kind).as_deref() {
            None | Some("all") => KindFilter::All,
            Some("inventory") => KindFilter::Inventory,
            Some("region") => KindFilter::Region,
            Some("unchecked") => KindFilter::Unchecked,
            Some(_) => {
                errors.push("種別の指定が正しくないため、すべての種別を表示しています。");
                KindFilter::All
            }
        };
        let status = match text(&raw.status).as_deref() {
            None | Some("pending") => StatusFilter::Pending,
            Some("approved") => StatusFilter::Approved,
            Some("rejected") => StatusFilter::Rejected,
            Some("decided") => StatusFilter::Decided,
            Some("all") => StatusFilter::All,
            Some(_) => {
                errors.push("状態の指定が正しくないため、未対応のものを表示しています。");
                StatusFilter::Pending
            }
        };
        let plan = match text(&raw.plan) {
            Some(p) if plans.iter().any(|(id, _)| *id == p) => Some(p),
            Some(_) => {
                errors.push("プランの指定が正しくないため、すべてのプランを表示しています。");
                None
            }
            None => None,
        };
        let mut date = |v: &Option<String>, message: &'static str| match text(v) {
            Some(s) => jst::parse_date(&s).or_else(|| {
                errors.push(message);
                None
            }),
            None => None,
        };
        let from = date(&raw.from, "開始日は「2025-01-31」の形式で入力してください（指定を無視しました）。");
        let to = date(&raw.to, "終了日は「2025-01-31」の形式で入力してください（指定を無視しました）。");
        let after = text(&raw.after).and_then(|s| s.parse::<i64>().ok()).filter(|n| *n >= 0);
        (Filter { kind, status, plan, from, to, after }, errors)
    }

    /// The query string for this filter with another `after` (pagination links).
    pub fn query(&self, after: Option<i64>) -> String {
        let kind = match self.kind {
            KindFilter::All => "all",
            KindFilter::Inventory => "inventory",
            KindFilter::Region => "region",
            KindFilter::Unchecked => "unchecked",
        };
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("kind", kind);
        q.append_pair("status", self.status_value());
        if let Some(plan) = &self.plan {
            q.append_pair("plan", plan);
        }
        if let Some(from) = self.from {
            q.append_pair("from", &from.to_string());
        }
        if let Some(to) = self.to {
            q.append_pair("to", &to.to_string());
        }
        if let Some(after) = after {
            q.append_pair("after", &after.to_string());
        }
        q.finish()
    }

    pub(super) fn status_value(&self) -> &'static str {
        match self.status {
            StatusFilter::Pending => "pending",
            StatusFilter::Approved => "approved",
            StatusFilter::Rejected => "rejected",
            StatusFilter::Decided => "decided",
            StatusFilter::All => "all",
        }
    }

    /// Start of the `from` day and end of the `to` day, in JST, as UTC instants.
    pub(super) fn range(&self) -> (Option<OffsetDateTime>, Option<OffsetDateTime>) {
        (self.from.map(jst::start_of_day), self.to.and_then(|d| d.next_day()).map(jst::start_of_day))
    }

    /// The review statuses to show (two values, possibly equal), or none for all.
    pub(super) fn statuses(&self) -> Option<(&'static str, &'static str)> {
        match self.status {
            StatusFilter::Pending => Some(("pending", "pending")),
            StatusFilter::Approved => Some(("approved", "approved")),
            StatusFilter::Rejected => Some(("rejected", "rejected")),
            StatusFilter::Decided => Some(("approved", "rejected")),
            StatusFilter::All => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_leniently() {
        let plans = vec![("standard".to_string(), "スタンダード".to_string())];
        let raw = RawFilter {
            kind: Some("region".into()),
            status: Some("decided".into()),
            plan: Some("standard".into()),
            from: Some("2026-01-02".into()),
            to: Some("bad".into()),
            after: Some("17".into()),
        };
        let (filter, errors) = Filter::parse(&raw, &plans);
        assert_eq!(filter.kind, KindFilter::Region);
        assert_eq!(filter.status, StatusFilter::Decided);
        assert_eq!(filter.plan.as_deref(), Some("standard"));
        assert_eq!(filter.from.map(|d| d.to_string()).as_deref(), Some("2026-01-02"));
        assert_eq!(filter.to, None);
        assert_eq!(errors.len(), 1);
        assert_eq!(filter.after, Some(17));
        assert_eq!(filter.query(Some(20)), "kind=region&status=decided&plan=standard&from=2026-01-02&after=20");
        let (filter, errors) = Filter::parse(&RawFilter { plan: Some("nope".into()), ..RawFilter::default() }, &plans);
        assert_eq!((filter.kind, filter.status, filter.plan), (KindFilter::All, StatusFilter::Pending, None));
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn date_range_is_whole_jst_days() {
        let plans = vec![];
        let raw = RawFilter { from: Some("2026-01-02".into()), to: Some("2026-01-02".into()), ..RawFilter::default() };
        let (filter, _) = Filter::parse(&raw, &plans);
        let (from, to) = filter.range();
        assert_eq!(from.map(|t| t.to_string()), Some("2026-01-01 15:00:00.0 +00:00:00".to_string()));
        assert_eq!(to.map(|t| t.to_string()), Some("2026-01-02 15:00:00.0 +00:00:00".to_string()));
    }
}
