//! The conference's status at a glance, for the organisers: what is live in each track, the next actions of the
//! timeline and the late, failed or skipped ones, who is missing from the talks of the next hour, whether the rooms
//! exist, Q&A activity, whether the homeserver answers, whether intake and the runner are alive, and the last
//! problems logged. One [`Status`] serves `stagehand status`, the management room's `status` command and the
//! organisers' `/status` page.
//!
//! - [`Status`] (serialisable) and [`build`] (pure): the status from what was gathered ([`Inputs`]);
//! - [`text`] (pure): the status as a few lines for a Matrix reply ([`text()`]) and the details for its thread
//!   ([`details`]);
//! - [`journal`]: the ring of the last warnings and errors, filled by a `tracing` layer;
//! - [`gather`]: the only IO: the store's records, the homeserver's rooms and attendance ([`Observation`]), the
//!   running parts (runner, intake, Q&A), behind [`Sources`].
//!
//! Owns what the status says and how it reads. Must not touch: the homeserver outside [`gather`] (and there only
//! reads), the timeline's store (read only), the schedule and the plan (read only).

pub mod gather;
pub mod journal;
mod model;
pub mod text;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};

pub use gather::{Observation, Running, Sources, observe_everything, observe_rooms};
pub use journal::Problem;
pub use model::*;
pub use text::{details, text};

use crate::matrix::attendance::{self, RoomSeen};
use crate::plan::{ObjectKind, Plan, PlannedRoom};
use crate::schedule::model::{Conference, Talk};
use crate::timeline::{Action, Record, RecordState};

/// How many of the next actions a status lists.
pub const NEXT_ACTIONS: usize = 10;
/// How many late, and how many failed or skipped, actions a status lists (the latest; all are counted).
pub const LISTED: usize = 10;
/// "Soon": talks live now or starting within this many minutes have their speakers checked.
pub const SOON_MINUTES: i64 = 60;
/// An action not sent this many seconds after its fire time is late.
const LATE_AFTER_SECONDS: i64 = 5;

/// What a status is made of, gathered by [`gather`].
pub struct Inputs<'a> {
    pub conference: &'a Conference,
    pub plan: &'a Plan,
    /// The timeline in force, sorted by [`Action::sort_key`].
    pub actions: &'a [Action],
    /// The store's records, by action id.
    pub records: &'a HashMap<String, Record>,
    /// The conference clock.
    pub now: DateTime<Utc>,
    /// The wall clock.
    pub taken_at: DateTime<Utc>,
    pub rehearsal: bool,
    pub schedule: ScheduleStatus,
    /// What the homeserver showed, in any order (the newest reading of a room wins).
    pub observations: &'a [&'a Observation],
    /// Board sizes by talk key, where Q&A runs.
    pub boards: Option<&'a HashMap<String, BoardSize>>,
    pub homeserver: HomeserverStatus,
    pub runner: Option<RunnerHealth>,
    pub intake: Option<IntakeHealth>,
    pub problems: Vec<Problem>,
}

/// The status from what was gathered. Pure.
pub fn build(i: Inputs<'_>) -> Status {
    let conf = i.conference;
    Status {
        conference: i.plan.conference.clone(),
        title: if conf.title.is_empty() { i.plan.conference.clone() } else { conf.title.clone() },
        timezone: conf.timezone.name().to_string(),
        now: i.now,
        taken_at: i.taken_at,
        rehearsal: i.rehearsal,
        schedule: i.schedule,
        rooms: rooms(i.plan, i.observations),
        live: live(conf, i.now, i.boards),
        actions: actions(conf, i.actions, i.records, i.now),
        attendance: attendance(conf, i.plan, i.now, i.observations),
        qa: i.boards.map(|b| {
            let mut qa = QaActivity::default();
            for size in b.values().filter(|s| s.questions > 0) {
                qa.boards += 1;
                qa.questions += size.questions;
                qa.votes += size.votes;
            }
            qa
        }),
        homeserver: i.homeserver,
        runner: i.runner,
        intake: i.intake,
        problems: i.problems,
    }
}

/// The talk rooms of the talks live at `now` or starting within [`SOON_MINUTES`]: whose speakers the status checks.
pub fn soon<'a>(conf: &Conference, plan: &'a Plan, now: DateTime<Utc>) -> Vec<&'a PlannedRoom> {
    let keys: HashSet<String> = soon_talks(conf, now).map(|t| format!("talk/{}", t.key)).collect();
    plan.rooms.iter().filter(|r| r.kind == ObjectKind::TalkRoom && keys.contains(&r.key)).collect()
}

fn soon_talks(conf: &Conference, now: DateTime<Utc>) -> impl Iterator<Item = &Talk> {
    let horizon = now + Duration::minutes(SOON_MINUTES);
    conf.talks.iter().filter(move |t| t.end.to_utc() > now && t.start.to_utc() < horizon)
}

fn rooms(plan: &Plan, observations: &[&Observation]) -> RoomsStatus {
    let all = observations.iter().filter(|o| o.everything).max_by_key(|o| o.at);
    let mut kinds: Vec<RoomCount> = Vec::new();
    for room in &plan.rooms {
        let label = room.kind.label();
        let i = match kinds.iter().position(|k| k.kind == label) {
            Some(i) => i,
            None => {
                kinds.push(RoomCount { kind: label.to_string(), planned: 0, existing: all.map(|_| 0) });
                kinds.len() - 1
            }
        };
        kinds[i].planned += 1;
        if all.is_some_and(|o| o.existing.contains(&room.key)) {
            kinds[i].existing = kinds[i].existing.map(|n| n + 1);
        }
    }
    RoomsStatus { observed_at: all.map(|o| o.at), kinds }
}

fn live(conf: &Conference, now: DateTime<Utc>, boards: Option<&HashMap<String, BoardSize>>) -> Vec<LiveTalk> {
    let order: HashMap<&str, usize> = conf.tracks.iter().enumerate().map(|(i, t)| (t.key.as_str(), i)).collect();
    let mut talks: Vec<&Talk> = conf.talks.iter().filter(|t| t.start.to_utc() <= now && now < t.end.to_utc()).collect();
    talks.sort_by_key(|t| (t.track.as_deref().and_then(|k| order.get(k)).copied().unwrap_or(usize::MAX), t.start, t.key.clone()));
    talks
        .into_iter()
        .map(|t| {
            let track = t.track.clone().unwrap_or_default();
            let size = boards.map(|b| b.get(&t.key).copied().unwrap_or_default());
            LiveTalk {
                track_name: conf.track(&track).map_or_else(|| track.clone(), |x| x.name.clone()),
                track,
                talk: t.key.clone(),
                title: t.title.clone(),
                start: t.start.to_utc(),
                end: t.end.to_utc(),
                questions: size.map(|s| s.questions),
                votes: size.map(|s| s.votes),
            }
        })
        .collect()
}

fn title_of<'a>(conf: &'a Conference, talk: &str) -> &'a str {
    conf.talks.iter().find(|t| t.key == talk).map_or("", |t| t.title.as_str())
}

fn actions(conf: &Conference, list: &[Action], records: &HashMap<String, Record>, now: DateTime<Utc>) -> ActionsStatus {
    let line = |a: &Action, state: &str| ActionLine {
        id: a.id.clone(),
        talk: a.talk.clone(),
        title: title_of(conf, &a.talk).to_string(),
        kind: a.kind.slug().to_string(),
        room: a.room().to_string(),
        at: a.instant,
        state: state.to_string(),
        detail: None,
    };
    let mut next = Vec::new();
    let mut late = Vec::new();
    for a in list {
        let recorded = records.get(&a.id).map(|r| r.state);
        if matches!(recorded, Some(RecordState::Sent | RecordState::Skipped | RecordState::Failed)) {
            continue;
        }
        let sending = recorded == Some(RecordState::Sending);
        if a.fire_at > now {
            if next.len() < NEXT_ACTIONS {
                next.push(line(a, if sending { "sending" } else { "pending" }));
            }
        } else if now > a.deadline {
            late.push(line(a, "missed"));
        } else if now - a.fire_at > Duration::seconds(LATE_AFTER_SECONDS) {
            late.push(line(a, if sending { "sending" } else { "late" }));
        }
    }
    let late_count = late.len();
    late.reverse();
    late.truncate(LISTED);

    let mut done: Vec<&Record> = records.values().filter(|r| matches!(r.state, RecordState::Failed | RecordState::Skipped)).collect();
    done.sort_by(|a, b| (&b.updated_at, &b.id).cmp(&(&a.updated_at, &a.id)));
    let failed_count = done.iter().filter(|r| r.state == RecordState::Failed).count();
    let failed = done
        .iter()
        .take(LISTED)
        .map(|r| ActionLine {
            id: r.id.clone(),
            talk: r.talk.clone(),
            title: title_of(conf, &r.talk).to_string(),
            kind: r.kind.clone(),
            room: r.room.clone(),
            at: DateTime::parse_from_rfc3339(&r.instant).map_or(now, |t| t.to_utc()),
            state: if r.state == RecordState::Failed { "failed" } else { "skipped" }.to_string(),
            detail: r.detail.clone(),
        })
        .collect();
    ActionsStatus {
        total: list.len(),
        sent: records.values().filter(|r| r.state == RecordState::Sent).count(),
        next,
        late,
        late_count,
        failed,
        failed_count,
        skipped_count: done.len() - failed_count,
    }
}

fn attendance(conf: &Conference, plan: &Plan, now: DateTime<Utc>, observations: &[&Observation]) -> Option<AttendanceStatus> {
    if observations.is_empty() {
        return None;
    }
    let by_key: HashMap<&str, &PlannedRoom> = plan.rooms.iter().map(|r| (r.key.as_str(), r)).collect();
    let mut talks: Vec<&Talk> = soon_talks(conf, now).collect();
    talks.sort_by_key(|t| (t.start, t.key.clone()));
    let mut missing = Vec::new();
    let mut unchecked = 0;
    let mut oldest: Option<DateTime<Utc>> = None;
    for talk in talks {
        let key = format!("talk/{}", talk.key);
        let Some(room) = by_key.get(key.as_str()) else { continue };
        let Some(seen) = observations.iter().filter(|o| o.checked.contains(&key)).max_by_key(|o| o.at) else {
            unchecked += 1;
            continue;
        };
        oldest = Some(oldest.map_or(seen.at, |o| o.min(seen.at)));
        let people: Vec<MissingPerson> = attendance::missing_speakers(room, seen.attendance.get(&key))
            .into_iter()
            .map(|m| MissingPerson {
                name: m.name.clone(),
                role: format!("{:?}", m.role).to_lowercase(),
                user_ids: m.user_ids.clone(),
                presence: attendance::presence(m, seen.attendance.get(&key)).label().to_string(),
            })
            .collect();
        if !people.is_empty() {
            missing.push(MissingTalk {
                talk: talk.key.clone(),
                title: talk.title.clone(),
                track_name: talk.track.as_deref().and_then(|k| conf.track(k)).map(|t| t.name.clone()).unwrap_or_default(),
                start: talk.start.to_utc(),
                live: talk.start.to_utc() <= now,
                people,
            });
        }
    }
    let newest = observations.iter().map(|o| o.at).max()?;
    let invites = observations.iter().filter(|o| o.everything).max_by_key(|o| o.at).map(|o| invites(plan, &o.attendance));
    Some(AttendanceStatus { observed_at: oldest.unwrap_or(newest), missing, unchecked, invites })
}

fn invites(plan: &Plan, seen: &HashMap<String, RoomSeen>) -> Invites {
    let rows = attendance::rows(plan, seen);
    let Some(s) = attendance::summarise(&rows, |_| "all").into_iter().next() else { return Invites::default() };
    Invites {
        total: s.total,
        joined: s.joined,
        invited: s.invited + s.email_invited,
        declined: s.declined,
        not_invited: s.not_invited,
        uncontactable: s.uncontactable,
    }
}

#[cfg(test)]
pub(crate) mod tests;
