//! The action list: from the schedule, the plan and the [`TimelineOptions`], every action of every talk with its
//! instant (UTC), its room by plan key, its kind, priority, grace window and stable id; and [`state_at`], what those
//! actions imply for the rooms at an instant (which talk rooms are open, suggested, live). Pure: no clock, no I/O.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::options::TimelineOptions;
use super::text::{self, Invitee, Message, Roll, RollPlace};
use crate::plan::{Plan, PlannedRoom};
use crate::schedule::model::{Conference, Role, Talk, stable_hash};

/// What an action is. The order of the variants is the order of actions of one talk at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    FirstReminder,
    LastReminder,
    BackstageRoll,
    LiveSoon,
    BackstageLiveSoon,
    LastMinute,
    /// Before the maximise and suggest of the same instant: a message is cheap, a converge reads and writes rooms, and
    /// dozens of talks go live in one second.
    LiveNotice,
    Maximise,
    Suggest,
    /// Go-live: the top questions so far, for the host, in the talk room.
    TopQuestions,
    EndingSoon,
    RestoreLayout,
    Unsuggest,
    OpenRoom,
    HallwayNotice,
    /// After the talk: the questions left unanswered, in the talk room, for the speaker to answer in writing.
    QuestionSummary,
    /// Not timed: the talk room told its talk moved, when a new schedule says so ([`moved_notices`]).
    Moved,
}

/// Time-critical actions (countdown, go-live, "five minutes left") are sent at their instant, those due together
/// paced just ahead of it ([`super::burst`]); routine ones are spread over `spread_seconds`: reminders before their
/// instant, the end of a talk after it, so the busiest second (dozens of talks going live at :00) carries only what
/// must be exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Critical,
    Routine,
}

/// The instant of the talk an action's offset counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Start,
    GoLive,
    End,
}

impl ActionKind {
    pub const ALL: [ActionKind; 17] = [
        ActionKind::FirstReminder,
        ActionKind::LastReminder,
        ActionKind::BackstageRoll,
        ActionKind::LiveSoon,
        ActionKind::BackstageLiveSoon,
        ActionKind::LastMinute,
        ActionKind::LiveNotice,
        ActionKind::Maximise,
        ActionKind::Suggest,
        ActionKind::TopQuestions,
        ActionKind::EndingSoon,
        ActionKind::RestoreLayout,
        ActionKind::Unsuggest,
        ActionKind::OpenRoom,
        ActionKind::HallwayNotice,
        ActionKind::QuestionSummary,
        ActionKind::Moved,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            ActionKind::FirstReminder => "first-reminder",
            ActionKind::LastReminder => "last-reminder",
            ActionKind::BackstageRoll => "backstage-roll",
            ActionKind::LiveSoon => "live-soon",
            ActionKind::BackstageLiveSoon => "backstage-live-soon",
            ActionKind::LastMinute => "last-minute",
            ActionKind::Maximise => "maximise",
            ActionKind::Suggest => "suggest",
            ActionKind::LiveNotice => "live-notice",
            ActionKind::EndingSoon => "ending-soon",
            ActionKind::RestoreLayout => "restore-layout",
            ActionKind::Unsuggest => "unsuggest",
            ActionKind::OpenRoom => "open-room",
            ActionKind::HallwayNotice => "hallway-notice",
            ActionKind::TopQuestions => "top-questions",
            ActionKind::QuestionSummary => "question-summary",
            ActionKind::Moved => "moved",
        }
    }

    pub fn parse(slug: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.slug() == slug)
    }

    /// What a person waits for at the second is critical: the countdowns, the call maximised, the go-live notice,
    /// five minutes left. `suggested` in the space is not: the links of a space are written one by one by the
    /// homeserver, so dozens of talks going live at :00 would hold up each other's; it follows within the spread.
    pub fn priority(self) -> Priority {
        match self {
            ActionKind::LiveSoon
            | ActionKind::BackstageLiveSoon
            | ActionKind::LastMinute
            | ActionKind::Maximise
            | ActionKind::LiveNotice
            | ActionKind::EndingSoon => Priority::Critical,
            _ => Priority::Routine,
        }
    }

    /// Whether a routine action of this kind is spread after its instant (the end of a talk; the top questions,
    /// read at go-live, and `suggested`, once live), not before it like a reminder.
    pub fn spreads_after(self) -> bool {
        self.anchor() == Anchor::End || matches!(self, ActionKind::TopQuestions | ActionKind::Suggest)
    }

    fn anchor(self) -> Anchor {
        match self {
            ActionKind::FirstReminder | ActionKind::LastReminder | ActionKind::BackstageRoll | ActionKind::Moved => {
                Anchor::Start
            }
            ActionKind::LiveSoon
            | ActionKind::BackstageLiveSoon
            | ActionKind::LastMinute
            | ActionKind::Maximise
            | ActionKind::Suggest
            | ActionKind::LiveNotice
            | ActionKind::TopQuestions => Anchor::GoLive,
            _ => Anchor::End,
        }
    }
}

/// What the sender does. Rooms are plan keys (`talk/<key>`, `track/<key>`, `stand/<key>`, `backstage/<key>`, the
/// space's key); the sender maps them to room ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// An `m.notice` with fixed text.
    Notice { room: String, message: Message },
    /// An `m.notice` about who of `people` has not joined `talk_room`: the sender asks who is missing at fire time
    /// and sends [`Roll::render`] of them.
    Roll { room: String, talk_room: String, people: Vec<Invitee>, roll: Roll },
    /// The room's Jitsi widget in Element's `center` container (`maximised`), or the planned layout back.
    Layout { room: String, maximised: bool },
    /// `suggested` on the `m.space.child` event of `child` in `room` (its parent space).
    Suggested { room: String, child: String, suggested: bool },
    /// The talk room opened to the audience (join rule and history visibility per config).
    Open { room: String },
    /// An `m.notice` listing the talk's questions, read from Q&A at fire time: the `top` most upvoted unanswered
    /// ones, or (`top: None`) every unanswered one. Nothing is sent when there are none.
    Questions { room: String, talk: String, title: String, top: Option<usize> },
}

impl Effect {
    /// The room the sender writes to.
    pub fn room(&self) -> &str {
        match self {
            Effect::Notice { room, .. }
            | Effect::Roll { room, .. }
            | Effect::Layout { room, .. }
            | Effect::Suggested { room, .. }
            | Effect::Open { room }
            | Effect::Questions { room, .. } => room,
        }
    }
}

/// One thing to do at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    /// Stable id: talk key, kind and instant (a moved talk's actions get new ids).
    pub id: String,
    pub talk: String,
    pub kind: ActionKind,
    /// When the action is due.
    pub instant: DateTime<Utc>,
    /// When the runner sends it: routine actions up to `spread_seconds` before their instant (after it for the end of
    /// a talk), time-critical ones at it or, when many are due together, up to `burst.max_lead_seconds` before it.
    pub fire_at: DateTime<Utc>,
    /// The last instant it is still worth sending; a runner later than this skips it.
    pub deadline: DateTime<Utc>,
    pub priority: Priority,
    pub effect: Effect,
}

impl Action {
    /// The stable id of a talk's action at an instant.
    pub fn id_for(talk: &str, kind: ActionKind, instant: DateTime<Utc>) -> String {
        format!("{talk}|{}|{}", kind.slug(), instant.format("%Y-%m-%dT%H:%M:%SZ"))
    }

    /// The Matrix transaction id of the action's send: derived from the id only, so a send repeated after a crash
    /// is deduplicated by the homeserver.
    pub fn txn_id(&self) -> String {
        let h = stable_hash(self.id.bytes());
        format!("stagehand.{}.{}.{h:016x}", self.kind.slug(), self.instant.timestamp())
    }

    pub fn room(&self) -> &str {
        self.effect.room()
    }

    /// From when the action's effect is part of the rooms' desired state: its instant, or its fire time when it is
    /// sent ahead of it (a go-live paced ahead of its second maximises the call then, and a converge at that moment
    /// must not take it back). The end of a talk, spread after its instant, counts from the instant.
    pub fn effective(&self) -> DateTime<Utc> {
        self.instant.min(self.fire_at)
    }

    /// Whether the action has to be sent first: by fire time, then priority, kind and talk.
    pub fn sort_key(&self) -> (DateTime<Utc>, Priority, ActionKind, &str) {
        (self.fire_at, self.priority, self.kind, &self.talk)
    }
}

/// When the talk goes live: its Q&A start for a pre-recorded talk (when it lies within the talk), else its start.
pub fn go_live(talk: &Talk) -> DateTime<Utc> {
    match talk.qa_start {
        Some(qa) if qa >= talk.start && qa <= talk.end => qa.to_utc(),
        _ => talk.start.to_utc(),
    }
}

/// A number of seconds from the options as a duration (at most a century: nothing is waited for longer).
pub(crate) fn seconds(n: u64) -> Duration {
    const CENTURY: i64 = 100 * 366 * 24 * 3600;
    Duration::seconds(i64::try_from(n).unwrap_or(CENTURY).min(CENTURY))
}

/// The rooms of the plan that one talk's actions use.
struct Rooms<'a> {
    talk: Option<&'a PlannedRoom>,
    track: Option<&'a PlannedRoom>,
    backstage: Option<&'a PlannedRoom>,
}

/// Every action of every talk, sorted by [`Action::sort_key`]. Talks without a planned talk room get only their
/// track-room actions; kinds switched off in the options and rooms switched off in the plan give none.
pub fn timeline(conf: &Conference, plan: &Plan, opts: &TimelineOptions) -> Vec<Action> {
    let by_key: HashMap<&str, &PlannedRoom> = plan.rooms.iter().map(|r| (r.key.as_str(), r)).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for talk in &conf.talks {
        let track = talk.track.as_deref().unwrap_or_default();
        let rooms = Rooms {
            talk: by_key.get(format!("talk/{}", talk.key).as_str()).copied(),
            track: by_key
                .get(format!("track/{track}").as_str())
                .or_else(|| by_key.get(format!("stand/{track}").as_str()))
                .copied(),
            backstage: by_key.get(format!("backstage/{track}").as_str()).copied(),
        };
        for kind in ActionKind::ALL {
            if let Some(action) = action(conf, talk, &rooms, kind, opts).filter(|a| seen.insert(a.id.clone())) {
                out.push(action);
            }
        }
    }
    super::burst::pace(&mut out, &opts.burst);
    out.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    out
}

fn action(conf: &Conference, talk: &Talk, rooms: &Rooms<'_>, kind: ActionKind, opts: &TimelineOptions) -> Option<Action> {
    let step = opts.step(kind);
    if !step.enabled {
        return None;
    }
    let anchor = match kind.anchor() {
        Anchor::Start => talk.start.to_utc(),
        Anchor::GoLive => go_live(talk),
        Anchor::End => talk.end.to_utc(),
    };
    let instant = anchor.checked_sub_signed(Duration::try_minutes(step.minutes_before)?)?;
    let effect = effect(conf, talk, rooms, kind, step.minutes_before, opts)?;
    let id = Action::id_for(&talk.key, kind, instant);
    let priority = kind.priority();
    // Spread by the id, so the same action keeps its fire time when the list is recomputed: reminders ahead of their
    // instant, the end of a talk after it (a room is never opened before its talk ends).
    let spread = seconds(stable_hash(id.bytes()) % (opts.spread_seconds.min(3600) + 1));
    // The top questions are read at go-live and the talk is suggested once live, so they are spread after it like
    // the end of a talk.
    let after = kind.spreads_after();
    let fire_at = match priority {
        Priority::Critical => instant,
        Priority::Routine if after => instant + spread,
        Priority::Routine => instant - spread,
    };
    let mut deadline = instant.checked_add_signed(seconds(step.grace_seconds)).unwrap_or(DateTime::<Utc>::MAX_UTC).max(fire_at);
    // Nothing said before its anchor ("live in one minute") is said after it.
    if instant < anchor {
        deadline = deadline.min(anchor - Duration::seconds(1)).max(instant);
    }
    Some(Action { id, talk: talk.key.clone(), kind, instant, fire_at, deadline, priority, effect })
}

fn effect(conf: &Conference, talk: &Talk, rooms: &Rooms<'_>, kind: ActionKind, minutes: i64, opts: &TimelineOptions) -> Option<Effect> {
    let talk_room = || rooms.talk.map(|r| r.key.clone());
    let title = talk.title.as_str();
    let roll = |place: RollPlace, room: String| {
        let talk_room = rooms.talk?;
        let people = talk_room
            .members
            .iter()
            .filter(|m| matches!(m.role, Role::Speaker | Role::Host))
            .map(|m| Invitee { person: m.person.clone(), name: m.name.clone(), role: m.role, user_ids: m.user_ids.clone() })
            .collect();
        let local_start = talk.start.format("%H:%M").to_string();
        let roll = Roll { place, title: title.to_string(), minutes, local_start };
        Some(Effect::Roll { room, talk_room: talk_room.key.clone(), people, roll })
    };
    let suggested = |suggested: bool| {
        let r = rooms.talk?;
        Some(Effect::Suggested { room: r.parent.clone()?, child: r.key.clone(), suggested })
    };
    let notice = |room: Option<&PlannedRoom>, message: Message| Some(Effect::Notice { room: room?.key.clone(), message });
    match kind {
        ActionKind::FirstReminder | ActionKind::LastReminder => roll(RollPlace::TalkRoom, talk_room()?),
        ActionKind::BackstageRoll => roll(RollPlace::Backstage, rooms.backstage?.key.clone()),
        ActionKind::LiveSoon | ActionKind::LastMinute => notice(rooms.talk, text::countdown(title, minutes)),
        ActionKind::BackstageLiveSoon => notice(rooms.backstage, text::countdown(title, minutes)),
        ActionKind::Maximise => Some(Effect::Layout { room: talk_room()?, maximised: true }),
        ActionKind::RestoreLayout => Some(Effect::Layout { room: talk_room()?, maximised: false }),
        ActionKind::Suggest => suggested(true),
        ActionKind::Unsuggest => suggested(false),
        ActionKind::LiveNotice => {
            let speakers: Vec<String> =
                talk.people_with(Role::Speaker).map(|k| conf.person(k).map_or(k, |p| p.name.as_str()).to_string()).collect();
            notice(rooms.track, text::live_notice(title, &speakers, &opts.how_to_ask))
        }
        ActionKind::EndingSoon => notice(rooms.talk, text::ending_soon(title, minutes)),
        ActionKind::OpenRoom => Some(Effect::Open { room: talk_room()? }),
        ActionKind::HallwayNotice => notice(rooms.track, text::hallway(title, &rooms.talk?.alias)),
        ActionKind::TopQuestions if opts.top_questions_count > 0 => Some(Effect::Questions {
            room: talk_room()?,
            talk: talk.key.clone(),
            title: title.to_string(),
            top: Some(opts.top_questions_count),
        }),
        ActionKind::TopQuestions => None,
        ActionKind::QuestionSummary => {
            Some(Effect::Questions { room: talk_room()?, talk: talk.key.clone(), title: title.to_string(), top: None })
        }
        ActionKind::Moved => None,
    }
}

/// For a new schedule: a notice in the talk room of every talk that starts at another time than in the old one (and
/// has not started yet at `at`), sent from `at` on. Its id holds the new start, so each move is told once; add these
/// to the list the runner gets.
pub fn moved_notices(old: &Conference, new: &Conference, plan: &Plan, opts: &TimelineOptions, at: DateTime<Utc>) -> Vec<Action> {
    let step = opts.step(ActionKind::Moved);
    if !step.enabled {
        return Vec::new();
    }
    let was: HashMap<&str, &Talk> = old.talks.iter().map(|t| (t.key.as_str(), t)).collect();
    let mut out = Vec::new();
    for talk in &new.talks {
        let Some(before) = was.get(talk.key.as_str()).filter(|b| b.start != talk.start) else { continue };
        let start = talk.start.to_utc();
        let Some(room) = plan.rooms.iter().find(|r| r.talk.as_deref() == Some(&talk.key)) else { continue };
        if start <= at {
            continue;
        }
        let fmt = |t: &Talk| t.start.format("%a %H:%M").to_string();
        let message = text::moved(&talk.title, &fmt(talk), &fmt(before));
        let deadline = at.checked_add_signed(seconds(step.grace_seconds)).unwrap_or(start).min(start);
        out.push(Action {
            id: Action::id_for(&talk.key, ActionKind::Moved, start),
            talk: talk.key.clone(),
            kind: ActionKind::Moved,
            instant: at,
            fire_at: at,
            deadline,
            priority: ActionKind::Moved.priority(),
            effect: Effect::Notice { room: room.key.clone(), message },
        });
    }
    out
}

/// What the runner's actions imply for the rooms at an instant, for a reconcile that takes the time as input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LiveState {
    /// Talk rooms opened to the audience.
    pub open: BTreeSet<String>,
    /// Talk rooms marked `suggested` in their space.
    pub suggested: BTreeSet<String>,
    /// Talk rooms with the call maximised (live now).
    pub maximised: BTreeSet<String>,
}

/// The state the actions due at or before `at` ([`Action::effective`]) leave behind, applied in instant order.
pub fn state_at(actions: &[Action], at: DateTime<Utc>) -> LiveState {
    let mut due: Vec<&Action> = actions.iter().filter(|a| a.effective() <= at).collect();
    due.sort_by(|a, b| (a.instant, a.kind, &a.talk).cmp(&(b.instant, b.kind, &b.talk)));
    let mut state = LiveState::default();
    for a in due {
        match &a.effect {
            Effect::Open { room } => {
                state.open.insert(room.clone());
            }
            Effect::Suggested { child, suggested, .. } => toggle(&mut state.suggested, child, *suggested),
            Effect::Layout { room, maximised } => toggle(&mut state.maximised, room, *maximised),
            Effect::Notice { .. } | Effect::Roll { .. } | Effect::Questions { .. } => {}
        }
    }
    state
}

fn toggle(set: &mut BTreeSet<String>, key: &str, on: bool) {
    if on {
        set.insert(key.to_string());
    } else {
        set.remove(key);
    }
}

#[cfg(test)]
#[path = "actions_tests.rs"]
mod tests;
