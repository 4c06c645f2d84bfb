//! What goes wrong on the day, told to the organisers in the management room without flooding it: problems of one
//! kind at most once per interval (the rest counted into the next post), a homeserver outage told once when it
//! starts and once when it ends (with what failed meanwhile folded into that notice), and posts that could not be
//! sent kept until they can. Pure: the caller feeds it problems, health checks and the time, and posts what it gives.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};

/// Consecutive failed health checks that make an outage.
const OUTAGE_AFTER: u32 = 3;

/// Samples named in a grouped post.
const SAMPLES: usize = 5;

#[derive(Debug, Default)]
struct Held {
    count: usize,
    samples: Vec<String>,
}

/// The reporter's state.
#[derive(Debug)]
pub struct Reporter {
    interval_ms: i64,
    last_post: BTreeMap<String, i64>,
    held: BTreeMap<String, Held>,
    failures: u32,
    first_failure: Option<i64>,
    last_error: String,
    outage_since: Option<i64>,
    /// Problems that came during the outage, told with its end.
    during_outage: BTreeMap<String, Held>,
    outbox: VecDeque<String>,
}

fn clock(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map(|t| t.format("%H:%M:%S UTC").to_string()).unwrap_or_default()
}

fn hold(map: &mut BTreeMap<String, Held>, kind: &str, text: String) {
    let h = map.entry(kind.to_string()).or_default();
    h.count += 1;
    if h.samples.len() < SAMPLES {
        h.samples.push(text);
    }
}

fn grouped(kind: &str, h: &Held) -> String {
    let more = h.count.saturating_sub(h.samples.len());
    let tail = if more > 0 { format!(" (and {more} more)") } else { String::new() };
    format!("{} × {kind}: {}{tail}", h.count, h.samples.join("; "))
}

impl Reporter {
    pub fn new(interval_seconds: u64) -> Reporter {
        Reporter {
            interval_ms: i64::try_from(interval_seconds).unwrap_or(i64::MAX / 2000) * 1000,
            last_post: BTreeMap::new(),
            held: BTreeMap::new(),
            failures: 0,
            first_failure: None,
            last_error: String::new(),
            outage_since: None,
            during_outage: BTreeMap::new(),
            outbox: VecDeque::new(),
        }
    }

    /// A problem of a kind (`action failed`, `schedule`): posted now if none of its kind was lately, else held.
    pub fn problem(&mut self, kind: &str, text: String, now_ms: i64) {
        if self.outage_since.is_some() {
            hold(&mut self.during_outage, kind, text);
            return;
        }
        let recent = self.last_post.get(kind).is_some_and(|&t| now_ms - t < self.interval_ms);
        if recent {
            hold(&mut self.held, kind, text);
        } else {
            self.last_post.insert(kind.to_string(), now_ms);
            self.outbox.push_back(format!("⚠️ {kind}: {text}"));
        }
    }

    /// A piece of news that is no problem (a schedule refresh changed talks): posted as it comes.
    pub fn notice(&mut self, text: String) {
        self.outbox.push_back(text);
    }

    /// The result of a health check of the homeserver.
    pub fn health(&mut self, ok: bool, error: &str, now_ms: i64) {
        if ok {
            if let Some(since) = self.outage_since.take() {
                let mut text = format!(
                    "✅ The homeserver answers again: it did not from {} to {} ({} s, {} failed checks).",
                    clock(since),
                    clock(now_ms),
                    (now_ms - since) / 1000,
                    self.failures
                );
                for (kind, h) in std::mem::take(&mut self.during_outage) {
                    text.push_str(&format!("\nMeanwhile: {}", grouped(&kind, &h)));
                }
                self.outbox.push_back(text);
            }
            self.failures = 0;
            self.first_failure = None;
            return;
        }
        self.failures += 1;
        self.last_error = error.to_string();
        let first = *self.first_failure.get_or_insert(now_ms);
        if self.failures >= OUTAGE_AFTER && self.outage_since.is_none() {
            self.outage_since = Some(first);
            self.outbox.push_back(format!("⚠️ The homeserver is not answering since {}: {error}. Stagehand keeps trying; what is due is sent when it is back, within each action's grace.", clock(first)));
        }
    }

    /// Whether an outage is going on.
    pub fn in_outage(&self) -> bool {
        self.outage_since.is_some()
    }

    /// What should be posted now: the waiting posts, and held problems whose interval has passed, grouped. Posts
    /// that cannot be sent go back with [`Reporter::retry`].
    pub fn take(&mut self, now_ms: i64) -> Vec<String> {
        if self.outage_since.is_none() {
            let due: Vec<String> = self
                .held
                .keys()
                .filter(|k| self.last_post.get(*k).is_none_or(|&t| now_ms - t >= self.interval_ms))
                .cloned()
                .collect();
            for kind in due {
                if let Some(h) = self.held.remove(&kind) {
                    self.last_post.insert(kind.clone(), now_ms);
                    self.outbox.push_back(format!("⚠️ {}", grouped(&kind, &h)));
                }
            }
        }
        self.outbox.drain(..).collect()
    }

    /// Puts posts that could not be sent back, first in line.
    pub fn retry(&mut self, unsent: Vec<String>) {
        for text in unsent.into_iter().rev() {
            self.outbox.push_front(text);
        }
    }
}

/// What a new schedule changed in the talks, in a line or two (none when no talk changed): added, cancelled, moved
/// and renamed talks, each named (the first few).
pub fn schedule_changes(old: &crate::schedule::Conference, new: &crate::schedule::Conference) -> Option<String> {
    use std::collections::HashMap;
    let before: HashMap<&str, &crate::schedule::model::Talk> = old.talks.iter().map(|t| (t.key.as_str(), t)).collect();
    let after: HashMap<&str, &crate::schedule::model::Talk> = new.talks.iter().map(|t| (t.key.as_str(), t)).collect();
    let name = |t: &crate::schedule::model::Talk| format!("“{}”", t.title);
    let mut added: Vec<String> = new.talks.iter().filter(|t| !before.contains_key(t.key.as_str())).map(name).collect();
    let mut cancelled: Vec<String> = old.talks.iter().filter(|t| !after.contains_key(t.key.as_str())).map(name).collect();
    let mut moved = Vec::new();
    let mut renamed = Vec::new();
    for t in &new.talks {
        let Some(b) = before.get(t.key.as_str()) else { continue };
        if b.start != t.start || b.end != t.end {
            moved.push(format!("{} now {}", name(t), t.start.format("%a %H:%M")));
        }
        if b.title != t.title {
            renamed.push(format!("“{}” → {}", b.title, name(t)));
        }
    }
    let mut parts = Vec::new();
    for (what, list) in [("added", &mut added), ("cancelled", &mut cancelled), ("moved", &mut moved), ("renamed", &mut renamed)] {
        if list.is_empty() {
            continue;
        }
        let n = list.len();
        list.truncate(SAMPLES);
        let more = if n > SAMPLES { format!(" and {} more", n - SAMPLES) } else { String::new() };
        parts.push(format!("{n} {what} ({}{more})", list.join(", ")));
    }
    (!parts.is_empty()).then(|| format!("📅 The schedule changed: {}.", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_changes_name_what_moved_was_added_cancelled_or_renamed() {
        let (old, _) = crate::timeline::fixtures::small();
        assert_eq!(schedule_changes(&old, &old), None);
        let mut new = old.clone();
        new.talks.retain(|t| t.key != "welcome");
        if let Some(t) = new.talks.iter_mut().find(|t| t.key == "async") {
            t.start += chrono::Duration::minutes(30);
            t.end += chrono::Duration::minutes(30);
            t.title = "Async, again".into();
        }
        let text = schedule_changes(&old, &new).unwrap();
        assert!(text.contains("1 cancelled (“Welcome”)"), "{text}");
        assert!(text.contains("1 moved (“Async, again” now Sat 10:30)"), "{text}");
        assert!(text.contains("1 renamed (“Async & <Rust>” → “Async, again”)"), "{text}");
    }

    #[test]
    fn one_post_per_kind_and_interval_the_rest_grouped() {
        let mut r = Reporter::new(300);
        r.problem("action failed", "t1 live-soon".into(), 0);
        r.problem("action failed", "t2 live-soon".into(), 1_000);
        r.problem("action failed", "t3 live-soon".into(), 2_000);
        r.problem("schedule", "2 errors".into(), 2_000);
        assert_eq!(r.take(2_000), ["⚠️ action failed: t1 live-soon", "⚠️ schedule: 2 errors"]);
        assert!(r.take(100_000).is_empty(), "held within the interval");
        assert_eq!(r.take(300_000), ["⚠️ 2 × action failed: t2 live-soon; t3 live-soon"]);
        assert!(r.take(900_000).is_empty());
    }

    #[test]
    fn an_outage_is_told_once_when_it_starts_and_once_when_it_ends_with_what_failed_meanwhile() {
        let mut r = Reporter::new(300);
        r.health(false, "connection refused", 10_000);
        r.health(false, "connection refused", 20_000);
        assert!(r.take(20_000).is_empty(), "two failed checks are no outage");
        for t in 3..=9 {
            r.health(false, "connection refused", t * 10_000);
            r.problem("action failed", format!("a{t}"), t * 10_000);
        }
        let start = r.take(90_000);
        assert_eq!(start.len(), 1, "{start:?}");
        assert!(start[0].contains("not answering since 00:00:10 UTC: connection refused"), "{start:?}");
        r.retry(start.clone());
        assert_eq!(r.take(91_000), start, "a post that could not be sent is sent later");
        r.health(true, "", 100_000);
        let end = r.take(100_000);
        assert_eq!(end.len(), 1, "{end:?}");
        assert!(end[0].starts_with("✅ The homeserver answers again: it did not from 00:00:10 UTC to 00:01:40 UTC (90 s, 9 failed checks)."), "{end:?}");
        assert!(end[0].contains("Meanwhile: 7 × action failed: a3; a4; a5; a6; a7 (and 2 more)"), "{end:?}");
        r.health(true, "", 110_000);
        assert!(r.take(110_000).is_empty());
    }
}
