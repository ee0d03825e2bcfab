//! Japan time: the one offset and the few ways screens, mails and reports write a date or an
//! instant. Timestamps are stored in UTC; everything a person reads is in JST.

use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};
use unicode_normalization::UnicodeNormalization;

/// Japan has no daylight saving time, so a fixed +09:00 is exact.
pub const JST: UtcOffset = match UtcOffset::from_hms(9, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// Today's date in Japan.
pub fn today() -> Date {
    OffsetDateTime::now_utc().to_offset(JST).date()
}

/// The date in Japan at the instant `at`.
pub fn date_of(at: OffsetDateTime) -> Date {
    at.to_offset(JST).date()
}

/// Midnight at the start of `date` in Japan, in UTC (how timestamps are stored and compared).
pub fn start_of_day(date: Date) -> OffsetDateTime {
    date.midnight().assume_offset(JST).to_offset(UtcOffset::UTC)
}

/// A date filter as typed or sent by a date input: `2026-04-01`, `2026/04/01`, full-width digits
/// too. `None` when it is not a real date.
pub fn parse_date(raw: &str) -> Option<Date> {
    let text: String = raw.nfkc().collect::<String>().trim().replace('/', "-");
    Date::parse(&text, format_description!("[year]-[month]-[day]")).ok()
}

/// `2026-04-01 09:30:05`: the audit log, the switches, the registrations list.
pub fn date_time(at: OffsetDateTime) -> String {
    let t = at.to_offset(JST);
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second())
}

/// `2026-04-01 09:30`: queues, where the second does not matter.
pub fn date_time_minutes(at: OffsetDateTime) -> String {
    let t = at.to_offset(JST);
    format!("{:04}-{:02}-{:02} {:02}:{:02}", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

/// `09:30:05`.
pub fn time_of_day(at: OffsetDateTime) -> String {
    let t = at.to_offset(JST);
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

/// `2026年4月1日`.
pub fn japanese_date(date: Date) -> String {
    format!("{}年{}月{}日", date.year(), u8::from(date.month()), date.day())
}

/// `2026年4月1日 09:30`: what a mail tells its reader.
pub fn japanese_date_time(at: OffsetDateTime) -> String {
    let t = at.to_offset(JST);
    format!("{} {:02}:{:02}", japanese_date(t.date()), t.hour(), t.minute())
}

/// `20260401`: file names.
pub fn compact_date(date: Date) -> String {
    format!("{:04}{:02}{:02}", date.year(), u8::from(date.month()), date.day())
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn instants_are_written_in_japan_time() {
        // 15:04:05 UTC on 31 March is 00:04:05 on 1 April in Japan.
        let at = datetime!(2026-03-31 15:04:05 UTC);
        assert_eq!(date_time(at), "2026-04-01 00:04:05");
        assert_eq!(date_time_minutes(at), "2026-04-01 00:04");
        assert_eq!(time_of_day(at), "00:04:05");
        assert_eq!(japanese_date_time(at), "2026年4月1日 00:04");
        assert_eq!(date_of(at), date!(2026 - 04 - 01));
    }

    #[test]
    fn dates_and_their_first_instant() {
        assert_eq!(japanese_date(date!(2026 - 04 - 01)), "2026年4月1日");
        assert_eq!(compact_date(date!(2026 - 04 - 01)), "20260401");
        assert_eq!(start_of_day(date!(2026 - 04 - 01)), datetime!(2026-03-31 15:00 UTC));
        for typed in ["2026-04-01", " 2026/04/01 ", "２０２６－０４－０１"] {
            assert_eq!(parse_date(typed), Some(date!(2026 - 04 - 01)), "{typed}");
        }
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_date("yesterday"), None);
    }
}
