//! Conference days and time zones: which timezone a file's times are in, which conference day an instant belongs
//! to (before the day change it is still the previous day), and a talk's start resolved against the listed days,
//! found by index, date and time range without a scan per talk. Pure.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveTime};
use chrono_tz::Tz;

use super::model::*;
use super::raw::{When, resolve_local};
use super::{Finding, ReadOptions};

pub(super) fn pick_timezone(file: &str, from_file: Option<&str>, opts: &ReadOptions, findings: &mut Vec<Finding>) -> Tz {
    if let Some(name) = from_file.map(str::trim).filter(|n| !n.is_empty()) {
        match name.parse::<Tz>() {
            Ok(tz) => {
                if let Some(cfg) = opts.timezone
                    && cfg != tz
                {
                    findings.push(Finding::warning(
                        file,
                        format!(
                            "the file says timezone {name} and the config says {}; the file wins",
                            cfg.name()
                        ),
                    ));
                }
                return tz;
            }
            Err(_) => findings.push(Finding::error(
                file,
                format!("unknown timezone {name:?} in the file; use an IANA name such as Europe/Brussels"),
            )),
        }
    }
    match opts.timezone {
        Some(tz) => tz,
        None => {
            findings.push(Finding::warning(
                file,
                "the file names no timezone and none is configured; times are read as UTC. Set conference.timezone \
                 in the config (or pass --timezone)",
            ));
            Tz::UTC
        }
    }
}

/// The conference date an instant belongs to: before the day change it is still the previous day.
pub(super) fn conference_date(t: DateTime<Tz>, day_change: Option<NaiveTime>) -> NaiveDate {
    let local = t.naive_local();
    match day_change {
        Some(dc) if local.time() < dc && dc <= NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN) => {
            local.date().pred_opt().unwrap_or(local.date())
        }
        _ => local.date(),
    }
}

/// The listed days, found by index, by date and by time range without a scan per talk (a file may list tens of
/// thousands of days; the scans made reading quadratic).
pub(super) struct DayLookup<'a> {
    days: &'a [Day],
    /// First day in list order with this index, and with this date.
    by_index: HashMap<u32, usize>,
    by_date: HashMap<NaiveDate, usize>,
    /// Days with a start and an end, sorted by start: (start, end, position in `days`).
    by_start: Vec<(DateTime<Tz>, DateTime<Tz>, usize)>,
}

impl<'a> DayLookup<'a> {
    pub(super) fn new(days: &'a [Day]) -> DayLookup<'a> {
        let mut by_index = HashMap::new();
        let mut by_date = HashMap::new();
        let mut by_start = Vec::new();
        for (i, d) in days.iter().enumerate() {
            by_index.entry(d.index).or_insert(i);
            by_date.entry(d.date).or_insert(i);
            if let (Some(s), Some(e)) = (d.start, d.end) {
                by_start.push((s, e, i));
            }
        }
        by_start.sort_by_key(|&(s, _, i)| (s, i));
        DayLookup { days, by_index, by_date, by_start }
    }

    pub(super) fn indexed(&self, index: u32) -> Option<&'a Day> {
        self.by_index.get(&index).map(|&i| &self.days[i])
    }

    /// The day whose range holds `t`: the latest-starting one that starts at or before it.
    pub(super) fn holding(&self, t: DateTime<Tz>) -> Option<&'a Day> {
        let after = self.by_start.partition_point(|&(s, _, _)| s <= t);
        let &(_, end, i) = self.by_start.get(after.checked_sub(1)?)?;
        (t < end).then(|| &self.days[i])
    }

    pub(super) fn on(&self, date: NaiveDate) -> Option<&'a Day> {
        self.by_date.get(&date).map(|&i| &self.days[i])
    }
}

pub(super) fn resolve_when(
    when: &When,
    day: Option<u32>,
    days: &DayLookup<'_>,
    day_change: Option<NaiveTime>,
    tz: Tz,
) -> Result<(DateTime<Tz>, u32), String> {
    let listed = day.and_then(|i| days.indexed(i));
    match when {
        When::Absolute(t) => {
            let start = t.with_timezone(&tz);
            let day = match listed {
                Some(d) => d.index,
                None => day_for(start, days, day_change),
            };
            Ok((start, day))
        }
        When::Local(ndt) => {
            let start = resolve_local(tz, *ndt);
            let day = match listed {
                Some(d) => d.index,
                None => day_for(start, days, day_change),
            };
            Ok((start, day))
        }
        When::DayTime(time) => {
            let Some(d) = listed else {
                return Err("the talk has a time but no day to put it on".to_string());
            };
            // After midnight: a time before the day's start (or before the day change) is on the next calendar date.
            let day_start_time = d.start.map(|s| s.naive_local().time()).or(day_change);
            let date = match day_start_time {
                Some(ds) if *time < ds => d.date.succ_opt().unwrap_or(d.date),
                _ => d.date,
            };
            Ok((resolve_local(tz, date.and_time(*time)), d.index))
        }
    }
}

pub(super) fn day_for(start: DateTime<Tz>, days: &DayLookup<'_>, day_change: Option<NaiveTime>) -> u32 {
    if let Some(d) = days.holding(start) {
        return d.index;
    }
    days.on(conference_date(start, day_change)).map_or(0, |d| d.index)
}
