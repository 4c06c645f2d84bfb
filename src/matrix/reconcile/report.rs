//! What a run did, object by object and person by person, with the request counts of the connection; the
//! progress bar (or, without a terminal, progress lines in the log). Tokens in widget URLs are redacted here, so
//! no report or log line shows one.

use std::io::IsTerminal;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use super::super::client::{Counters, MatrixError};
use crate::plan::PlannedRoom;
use crate::plan::desired::Change;
use crate::plan::desired::members::MemberAction;

/// A change to one state event.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldChange {
    pub event_type: String,
    pub state_key: String,
    pub from: Option<Value>,
    pub to: Value,
}

impl FieldChange {
    fn of(c: &Change) -> FieldChange {
        FieldChange {
            event_type: c.item.event_type.clone(),
            state_key: c.item.state_key.clone(),
            from: c.from.as_ref().map(redact),
            to: redact(&c.item.content),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    Create,
    Update { changes: Vec<FieldChange> },
    Unchanged,
    /// The alias belongs to a room that is not ours (no or another locator).
    Foreign { reason: String },
    Failed { error: String },
    /// Not in the plan any more; kept, marked and taken out of its space.
    Cancelled,
}

impl Status {
    pub fn failed(e: impl std::fmt::Display) -> Status {
        Status::Failed { error: e.to_string() }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectReport {
    pub key: String,
    pub alias: String,
    pub room_id: Option<String>,
    #[serde(flatten)]
    pub status: Status,
}

impl ObjectReport {
    pub fn of(room: &PlannedRoom, room_id: Option<String>, status: Status) -> ObjectReport {
        ObjectReport { key: room.key.clone(), alias: room.alias.clone(), room_id, status }
    }

    /// Adds changes that were sent (or failed) to what the report says about the object.
    pub fn merge(&mut self, changes: &[Change], result: &Result<(), MatrixError>) {
        if let Err(e) = result {
            self.status = Status::failed(e);
            return;
        }
        let new = changes.iter().map(FieldChange::of);
        match &mut self.status {
            Status::Update { changes } => changes.extend(new),
            Status::Unchanged if changes.is_empty() => {}
            Status::Unchanged => self.status = Status::Update { changes: new.collect() },
            _ => {}
        }
    }
}

/// What happened (or, in a dry run, would happen) to one person in one room. For e-mail invites `user_id` is the
/// person's name and a masked address.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MemberReport {
    pub room: String,
    pub user_id: String,
    pub action: MemberAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl MemberReport {
    pub fn new(room: &str, user_id: impl Into<String>, action: MemberAction) -> MemberReport {
        MemberReport { room: room.to_string(), user_id: user_id.into(), action, error: None }
    }

    pub fn failed(room: &str, user_id: impl Into<String>, error: impl std::fmt::Display) -> MemberReport {
        MemberReport { error: Some(error.to_string()), ..MemberReport::new(room, user_id, MemberAction::Failed) }
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    /// Membership changes that failed (counted apart from objects).
    pub membership_failures: usize,
    pub invites: u64,
    /// People in this run who could not be invited at all (no Matrix ID, no e-mail invite possible).
    pub uncontactable: usize,
    pub memberships: Vec<MemberReport>,
    pub objects: Vec<ObjectReport>,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub cancelled: usize,
    pub reads: u64,
    pub writes: u64,
    pub state_events: u64,
    pub rooms_created: u64,
    /// State events written inside createRoom (initial state and power levels).
    pub initial_state_events: u64,
    pub rate_limited: u64,
    pub rate_limited_seconds: f64,
    pub seconds: f64,
}

impl Report {
    /// The report of a run that started at `started` with the connection's counters at `base`.
    pub fn new(objects: Vec<ObjectReport>, memberships: Vec<MemberReport>, base: &Snapshot, now: &Snapshot, started: Instant) -> Report {
        let count = |f: fn(&Status) -> bool| objects.iter().filter(|o| f(&o.status)).count();
        let d = |f: fn(&Snapshot) -> u64| f(now) - f(base);
        Report {
            membership_failures: memberships.iter().filter(|m| m.action == MemberAction::Failed).count(),
            uncontactable: memberships.iter().filter(|m| m.action == MemberAction::Uncontactable).count(),
            invites: d(|s| s.invites),
            memberships,
            created: count(|s| matches!(s, Status::Create)),
            updated: count(|s| matches!(s, Status::Update { .. })),
            unchanged: count(|s| matches!(s, Status::Unchanged)),
            failed: count(|s| matches!(s, Status::Failed { .. } | Status::Foreign { .. })),
            cancelled: count(|s| matches!(s, Status::Cancelled)),
            objects,
            reads: d(|s| s.reads),
            writes: d(|s| s.writes),
            state_events: d(|s| s.state_events),
            rooms_created: d(|s| s.rooms_created),
            rate_limited: d(|s| s.rate_limited),
            rate_limited_seconds: d(|s| s.rate_limited_ms) as f64 / 1000.0,
            initial_state_events: d(|s| s.initial_state_events),
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{} created, {} updated, {} unchanged, {} cancelled, {} failed; {} rooms and {} state events written, {} invites, {} membership failures, {} uncontactable, {} reads, {} rate-limit waits ({:.1} s), {:.1} s",
            self.created,
            self.updated,
            self.unchanged,
            self.cancelled,
            self.failed,
            self.rooms_created,
            self.state_events,
            self.invites,
            self.membership_failures,
            self.uncontactable,
            self.reads,
            self.rate_limited,
            self.rate_limited_seconds,
            self.seconds
        )
    }
}

/// The connection's counters at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    reads: u64,
    writes: u64,
    state_events: u64,
    rooms_created: u64,
    rate_limited: u64,
    rate_limited_ms: u64,
    initial_state_events: u64,
    invites: u64,
}

impl Snapshot {
    pub fn of(c: &Counters) -> Snapshot {
        Snapshot {
            reads: Counters::get(&c.reads),
            writes: Counters::get(&c.writes),
            state_events: Counters::get(&c.state_events),
            rooms_created: Counters::get(&c.rooms_created),
            rate_limited: Counters::get(&c.rate_limited),
            rate_limited_ms: Counters::get(&c.rate_limited_ms),
            initial_state_events: Counters::get(&c.initial_state_events),
            invites: Counters::get(&c.invites),
        }
    }
}

/// A progress bar on a terminal; progress lines in the log otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    done: u64,
}

impl Progress {
    pub fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg:>10} [{bar:40}] {pos}/{len} rooms ({eta})") {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Progress { bar, total, done: 0 }
    }

    pub fn step(&mut self, phase: &str) {
        self.done += 1;
        match &self.bar {
            Some(bar) => {
                bar.set_message(phase.to_string());
                bar.inc(1);
            }
            None => {
                if self.done % 50 == 0 || self.done == self.total {
                    tracing::info!(phase, done = self.done, total = self.total, "progress");
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Content with the `token=` of widget URLs hidden, for logs and reports: backstage page tokens are secrets.
pub fn redact(v: &Value) -> Value {
    match v {
        Value::String(s) if s.contains("token=") => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(i) = rest.find("token=") {
                out.push_str(&rest[..i + 6]);
                out.push_str("REDACTED");
                rest = &rest[i + 6..];
                rest = &rest[rest.find('&').unwrap_or(rest.len())..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), redact(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tokens_are_redacted() {
        let v = json!({"url": "https://x/qa/c/k?token=abc123&theme=$theme", "data": {"u": ["a?token=zz"]}, "n": 1});
        assert_eq!(
            redact(&v),
            json!({"url": "https://x/qa/c/k?token=REDACTED&theme=$theme", "data": {"u": ["a?token=REDACTED"]}, "n": 1})
        );
    }

    #[test]
    fn member_actions_keep_their_report_names() {
        let names: Vec<Value> = [MemberAction::Invite, MemberAction::Withdraw, MemberAction::Kick, MemberAction::EmailWithdraw, MemberAction::Failed]
            .iter()
            .map(|a| serde_json::to_value(MemberReport::new("r", "u", *a)).unwrap()["action"].clone())
            .collect();
        assert_eq!(names, vec![json!("invite"), json!("revoke"), json!("remove"), json!("email_revoke"), json!("failed")]);
    }
}
