//! The last problems: a small ring of the warnings and errors Stagehand logged, newest last, for the status. A
//! `tracing` layer ([`layer`]) that the binary installs beside the log printer fills the process's ring
//! ([`global`]); the ring itself is plain and testable. A message that comes again right after itself (a rate limit
//! waited out many times) is folded into one entry with a count, so a flood cannot push everything else out.
//!
//! Owns the ring. Must not touch: the log output (the printer does that), secrets (nothing logged holds one).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};

/// How many problems the ring keeps.
pub const CAPACITY: usize = 20;

/// One warning or error as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// When it was last logged (wall clock).
    pub at: DateTime<Utc>,
    /// `error` or `warn`.
    pub level: String,
    /// The log message.
    pub message: String,
    /// Its fields, `key=value` separated by spaces (the room, the talk, the error).
    pub fields: String,
    /// How many times it came in a row (1: once).
    pub count: u32,
}

/// A ring of the last problems.
#[derive(Debug)]
pub struct Journal {
    ring: Mutex<VecDeque<Problem>>,
    capacity: usize,
}

impl Journal {
    pub fn new(capacity: usize) -> Journal {
        Journal { ring: Mutex::new(VecDeque::with_capacity(capacity)), capacity: capacity.max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Problem>> {
        // A ring of strings is whole after any panic.
        self.ring.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps a problem; the same level and message as the newest entry fold into it (its time, fields and count
    /// move on).
    pub fn record(&self, at: DateTime<Utc>, level: &str, message: &str, fields: &str) {
        let mut ring = self.lock();
        if let Some(last) = ring.back_mut().filter(|p| p.level == level && p.message == message) {
            last.at = at;
            last.fields = fields.to_string();
            last.count = last.count.saturating_add(1);
            return;
        }
        if ring.len() == self.capacity {
            ring.pop_front();
        }
        ring.push_back(Problem { at, level: level.to_string(), message: message.to_string(), fields: fields.to_string(), count: 1 });
    }

    /// The problems kept, oldest first.
    pub fn recent(&self) -> Vec<Problem> {
        self.lock().iter().cloned().collect()
    }
}

/// The process's journal, the one the status shows.
pub fn global() -> &'static Journal {
    static GLOBAL: LazyLock<Journal> = LazyLock::new(|| Journal::new(CAPACITY));
    &GLOBAL
}

/// A `tracing` layer that keeps Stagehand's warnings and errors in `journal`. Only events at WARN or ERROR from
/// Stagehand's own modules get to it (its filter), so the SDK's chatter costs nothing.
pub fn layer<S>(journal: &'static Journal) -> impl Layer<S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    JournalLayer { journal }.with_filter(Problems)
}

struct JournalLayer {
    journal: &'static Journal,
}

/// Stagehand's warnings and errors.
struct Problems;

impl<S> Filter<S> for Problems {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: &Context<'_, S>) -> bool {
        *meta.level() <= Level::WARN && meta.target().starts_with("stagehand")
    }
}

impl<S: Subscriber> Layer<S> for JournalLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = if *event.metadata().level() == Level::ERROR { "error" } else { "warn" };
        self.journal.record(Utc::now(), level, &fields.message, fields.rest.trim_start());
    }
}

/// An event's message and its other fields as text.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    fn at(s: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + i64::from(s), 0).unwrap()
    }

    #[test]
    fn the_ring_keeps_the_newest_and_folds_repeats() {
        let j = Journal::new(3);
        j.record(at(0), "warn", "a", "");
        j.record(at(1), "warn", "rate limited", "wait_ms=10");
        j.record(at(2), "warn", "rate limited", "wait_ms=20");
        j.record(at(3), "error", "b", "");
        j.record(at(4), "error", "c", "");
        let kept = j.recent();
        let shown: Vec<(&str, u32)> = kept.iter().map(|p| (p.message.as_str(), p.count)).collect();
        assert_eq!(shown, [("rate limited", 2), ("b", 1), ("c", 1)]);
        assert_eq!((kept[0].at, kept[0].fields.as_str()), (at(2), "wait_ms=20"));
    }

    #[test]
    fn the_layer_keeps_stagehands_warnings_and_errors_only() {
        static J: LazyLock<Journal> = LazyLock::new(|| Journal::new(10));
        let subscriber = tracing_subscriber::registry().with(layer(&J));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "stagehand::timeline", "fine");
            tracing::warn!(target: "stagehand::timeline", room = "talk/t1", attempts = 2, "send failed, retrying");
            tracing::error!(target: "matrix_sdk::http", "not ours");
            tracing::error!(target: "stagehand::cli", error = %"boom", "cannot re-read the schedule");
        });
        let kept = J.recent();
        let shown: Vec<(&str, &str, &str)> = kept.iter().map(|p| (p.level.as_str(), p.message.as_str(), p.fields.as_str())).collect();
        assert_eq!(
            shown,
            [("warn", "send failed, retrying", "room=talk/t1 attempts=2"), ("error", "cannot re-read the schedule", "error=boom")]
        );
    }
}
