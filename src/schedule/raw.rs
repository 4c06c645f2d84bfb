//! The raw, format-neutral schedule every reader produces (events, days, tracks, people, as the file says them),
//! and the parsing of times and durations the readers share. Pure; [`super::assemble`] turns it into the model.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

use super::Finding;
use super::model::*;

/// When a raw event starts, as precisely as the file says.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// An instant with an offset (`<date>2026-01-31T09:30:00+01:00</date>`).
    Absolute(DateTime<FixedOffset>),
    /// A wall-clock time on the conference day the event is listed under (FOSDEM before 2024).
    DayTime(NaiveTime),
    /// A wall-clock date and time in the conference timezone (our YAML).
    Local(NaiveDateTime),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawPerson {
    pub id: Option<String>,
    pub name: String,
    pub role: Option<Role>,
    pub emails: Vec<String>,
    pub matrix_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    pub guid: Option<String>,
    pub id: Option<String>,
    pub slug: Option<String>,
    /// Explicit key (our YAML).
    pub key: Option<String>,
    pub title: String,
    pub subtitle: Option<String>,
    pub abstract_text: Option<String>,
    pub track: Option<String>,
    pub track_slug: Option<String>,
    pub room: Option<String>,
    /// Index of the day the event is listed under, if any.
    pub day: Option<u32>,
    pub when: Option<When>,
    pub duration: Option<Duration>,
    pub qa_start: Option<When>,
    pub kind: Option<String>,
    pub persons: Vec<RawPerson>,
    pub line: Option<u32>,
}

impl RawEvent {
    pub fn new(title: String) -> RawEvent {
        RawEvent {
            guid: None,
            id: None,
            slug: None,
            key: None,
            title,
            subtitle: None,
            abstract_text: None,
            track: None,
            track_slug: None,
            room: None,
            day: None,
            when: None,
            duration: None,
            qa_start: None,
            kind: None,
            persons: Vec::new(),
            line: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RawDay {
    pub index: u32,
    pub date: NaiveDate,
    pub start: Option<DateTime<FixedOffset>>,
    pub end: Option<DateTime<FixedOffset>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawTrack {
    pub name: String,
    pub slug: Option<String>,
    pub kind: Option<TrackKind>,
    pub online_qa: Option<bool>,
    pub coordinators: Vec<RawPerson>,
}

#[derive(Debug, Clone, Default)]
pub struct RawSchedule {
    pub id: Option<String>,
    pub title: Option<String>,
    /// Timezone name as the file gives it.
    pub timezone: Option<String>,
    /// Day change time (`<day_change>`): earlier wall-clock times belong to the previous day.
    pub day_change: Option<NaiveTime>,
    pub days: Vec<RawDay>,
    pub tracks: Vec<RawTrack>,
    pub rooms: Vec<String>,
    pub events: Vec<RawEvent>,
    pub findings: Vec<Finding>,
}

/// Parses `H:MM`, `HH:MM`, `HH:MM:SS` and `D:HH:MM:SS`-less variants into a duration.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    let nums: Option<Vec<i64>> = parts.iter().map(|p| p.trim().parse::<i64>().ok()).collect();
    let nums = nums?;
    if nums.iter().any(|&n| n < 0) {
        return None;
    }
    let seconds = match nums.as_slice() {
        [h, m] if *m < 60 => h.checked_mul(3600)?.checked_add(m * 60)?,
        [h, m, sec] if *m < 60 && *sec < 60 => h.checked_mul(3600)?.checked_add(m * 60 + sec)?,
        _ => return None,
    };
    bounded_seconds(seconds)
}

/// The longest duration accepted: a week. Longer is a typo, and far longer would overflow date arithmetic.
pub const MAX_DURATION_SECONDS: i64 = 7 * 24 * 3600;

/// A duration of `seconds`, if it is between zero and [`MAX_DURATION_SECONDS`].
pub fn bounded_seconds(seconds: i64) -> Option<Duration> {
    if (0..=MAX_DURATION_SECONDS).contains(&seconds) { Duration::try_seconds(seconds) } else { None }
}

/// Parses `HH:MM` or `HH:MM:SS`.
pub fn parse_time(s: &str) -> Option<NaiveTime> {
    let s = s.trim();
    NaiveTime::parse_from_str(s, "%H:%M").or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S")).ok()
}

/// Parses an RFC 3339 instant, tolerating a space instead of `T`.
pub fn parse_instant(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s).ok().or_else(|| DateTime::parse_from_rfc3339(&s.replacen(' ', "T", 1)).ok())
}

/// Resolves a wall-clock time in `tz`: the earlier instant when ambiguous (DST end), shifted forward past a gap
/// (DST start).
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Tz> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t,
        chrono::LocalResult::Ambiguous(a, _) => a,
        chrono::LocalResult::None => {
            let mut probe = local;
            for _ in 0..8 {
                probe += Duration::minutes(30);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t;
                }
            }
            tz.from_utc_datetime(&local)
        }
    }
}
