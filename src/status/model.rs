//! What a status says: the serialisable [`Status`] and its parts, with the questions a reader asks of them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Problem;
use crate::matrix::intake::IntakeStatus;
use crate::timeline::RunnerStatus;

/// Everything the organisers see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The conference id.
    pub conference: String,
    pub title: String,
    /// The conference's timezone (IANA name), for showing times.
    pub timezone: String,
    /// The conference clock (a rehearsal's is shifted).
    pub now: DateTime<Utc>,
    /// The wall clock when the status was taken.
    pub taken_at: DateTime<Utc>,
    pub rehearsal: bool,
    pub schedule: ScheduleStatus,
    pub rooms: RoomsStatus,
    /// What is live now, track by track.
    pub live: Vec<LiveTalk>,
    pub actions: ActionsStatus,
    /// Who is missing from the talks of the next hour; `None` when the homeserver was not asked yet.
    pub attendance: Option<AttendanceStatus>,
    /// Questions and votes; `None` where Q&A does not run (the `status` command on its own).
    pub qa: Option<QaActivity>,
    pub homeserver: HomeserverStatus,
    /// The timeline's runner; `None` when not running here.
    pub runner: Option<RunnerHealth>,
    /// The event intake; `None` when not running here.
    pub intake: Option<IntakeHealth>,
    /// The last warnings and errors, oldest first.
    pub problems: Vec<Problem>,
}

/// Where the schedule comes from and when it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleStatus {
    /// The file or URL, as shown (no credentials).
    pub source: String,
    pub talks: usize,
    /// When the schedule in force was read.
    pub read_at: DateTime<Utc>,
    /// The last time a re-read brought a schedule (none since the start: `None`).
    pub refreshed_at: Option<DateTime<Utc>>,
    /// When it is re-read next (`timeline.refresh`).
    pub next_refresh: Option<DateTime<Utc>>,
}

/// Rooms planned and found on the homeserver, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomsStatus {
    /// When every room was last looked up; `None`: not yet (then `existing` is unknown).
    pub observed_at: Option<DateTime<Utc>>,
    pub kinds: Vec<RoomCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCount {
    /// The kind's label (`talk room`, `backstage`, ...).
    pub kind: String,
    pub planned: usize,
    pub existing: Option<usize>,
}

/// A talk live now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveTalk {
    pub track: String,
    pub track_name: String,
    pub talk: String,
    pub title: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Questions on its board and their votes (`None` without Q&A).
    pub questions: Option<usize>,
    pub votes: Option<usize>,
}

/// The timeline: what comes next and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionsStatus {
    /// Actions in the timeline now.
    pub total: usize,
    /// Actions recorded sent (of any timeline this store has run).
    pub sent: usize,
    /// The next ones, in firing order.
    pub next: Vec<ActionLine>,
    /// Due and not sent: the latest [`LISTED`].
    pub late: Vec<ActionLine>,
    pub late_count: usize,
    /// Recorded failed or skipped: the latest [`LISTED`].
    pub failed: Vec<ActionLine>,
    pub failed_count: usize,
    pub skipped_count: usize,
}

/// One action as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionLine {
    pub id: String,
    pub talk: String,
    /// The talk's title (empty when the schedule no longer has it).
    pub title: String,
    /// The action kind's slug (`live-soon`).
    pub kind: String,
    /// The room's plan key.
    pub room: String,
    /// When it is due (its instant: reminders fire up to a minute before it, the end of a talk up to a minute after,
    /// a burst of go-lives a few seconds before).
    pub at: DateTime<Utc>,
    /// `pending`, `late` (due, not sent yet, within grace), `missed` (beyond grace, not sent), `sending` (sent
    /// and not confirmed yet), `failed` or `skipped`.
    pub state: String,
    /// Why it failed or was skipped.
    pub detail: Option<String>,
}

/// Who is missing from the talks of the next hour, and the invites outstanding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendanceStatus {
    /// When the rooms were read (the oldest of those used).
    pub observed_at: DateTime<Utc>,
    /// Talks live now or within the hour with a speaker or host who has not joined, by start.
    pub missing: Vec<MissingTalk>,
    /// Talk rooms of the next hour not read yet.
    pub unchecked: usize,
    /// Over every talk room and backstage, when they were all read.
    pub invites: Option<Invites>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingTalk {
    pub talk: String,
    pub title: String,
    pub track_name: String,
    pub start: DateTime<Utc>,
    pub live: bool,
    pub people: Vec<MissingPerson>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingPerson {
    pub name: String,
    /// `speaker` or `host`.
    pub role: String,
    pub user_ids: Vec<String>,
    /// `invited`, `email_invited`, `declined`, `not_invited`, `email_only` or `uncontactable`.
    pub presence: String,
}

/// Planned members of every talk room and backstage, by where they stand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invites {
    pub total: usize,
    pub joined: usize,
    /// Invited (by Matrix ID or by e-mail) and not joined yet: the invites outstanding.
    pub invited: usize,
    pub declined: usize,
    /// Not invited (yet) by any means.
    pub not_invited: usize,
    pub uncontactable: usize,
}

/// Questions and votes over all boards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QaActivity {
    /// Boards with at least one question.
    pub boards: usize,
    pub questions: usize,
    pub votes: usize,
}

/// One board's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BoardSize {
    pub questions: usize,
    pub votes: usize,
}

/// Whether the homeserver answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeserverStatus {
    /// Whether its last answer came after its last failure; `None`: not asked yet.
    pub reachable: Option<bool>,
    pub last_ok: Option<DateTime<Utc>>,
    pub last_error: Option<DateTime<Utc>>,
    /// What went wrong last (cannot log in, a read that failed).
    pub error: Option<String>,
}

/// The timeline's runner, as `/healthz` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerHealth {
    #[serde(flatten)]
    pub runner: RunnerStatus,
    /// How far past its next wake-up it was when the status was taken (0: on time).
    pub behind_ms: i64,
}

impl RunnerHealth {
    pub fn of(s: &RunnerStatus, now: DateTime<Utc>) -> RunnerHealth {
        RunnerHealth { runner: s.clone(), behind_ms: s.behind_ms(now) }
    }

    /// Alive and less than a minute behind (what `/healthz` calls healthy).
    pub fn ok(&self) -> bool {
        self.runner.alive && self.behind_ms < 60_000
    }
}

/// The event intake.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntakeHealth {
    /// `sync` or `appservice`.
    pub mode: String,
    pub alive: bool,
    pub last_ok: Option<DateTime<Utc>>,
    /// Failures since the last success.
    pub failures: u32,
    pub last_error: Option<String>,
    pub delivered: u64,
}

impl IntakeHealth {
    pub fn of(s: &IntakeStatus) -> IntakeHealth {
        IntakeHealth {
            mode: s.mode.to_string(),
            alive: s.alive,
            last_ok: s.last_ok,
            failures: s.failures,
            last_error: s.last_error.clone(),
            delivered: s.delivered,
        }
    }

    /// Alive and not failing again and again (what `/healthz` calls healthy).
    pub fn ok(&self) -> bool {
        self.alive && self.failures < 3
    }
}

impl Status {
    /// Whether anything needs an organiser: failed or late actions, the homeserver not answering, intake or the
    /// runner down, a speaker missing within the hour.
    pub fn needs_attention(&self) -> bool {
        self.actions.failed_count > 0
            || self.actions.late_count > 0
            || self.homeserver.reachable == Some(false)
            || self.runner.as_ref().is_some_and(|r| !r.ok())
            || self.intake.as_ref().is_some_and(|i| !i.ok())
            || self.attendance.as_ref().is_some_and(|a| !a.missing.is_empty())
    }
}

impl Status {
    /// Adds what only the running bot knows (its runner, intake, Q&A boards and logged problems) from its own
    /// status: for `stagehand status --url`.
    pub fn add_running(&mut self, running: Status) {
        let theirs: HashMap<&str, &LiveTalk> = running.live.iter().map(|l| (l.talk.as_str(), l)).collect();
        for l in &mut self.live {
            if let Some(t) = theirs.get(l.talk.as_str()) {
                (l.questions, l.votes) = (t.questions, t.votes);
            }
        }
        self.runner = running.runner;
        self.intake = running.intake;
        self.qa = running.qa;
        self.problems.extend(running.problems);
        self.problems.sort_by_key(|p| p.at);
    }
}
