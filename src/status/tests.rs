//! The status of the small conference at 10:00:10 (Brussels), ten seconds after "Async & <Rust>" went live: what
//! it says about the live talk, the actions, the missing speakers and the rooms, and how it reads as text.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::matrix::attendance::RoomSeen;
use crate::timeline::fixtures;
use crate::timeline::{RunnerStatus, TimelineOptions, timeline};

fn brussels(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    chrono_tz::Europe::Brussels.with_ymd_and_hms(2026, 3, 14, h, m, s).unwrap().to_utc()
}

fn record(a: &Action, state: RecordState, detail: Option<&str>, updated: DateTime<Utc>) -> Record {
    Record {
        id: a.id.clone(),
        talk: a.talk.clone(),
        kind: a.kind.slug().into(),
        instant: a.instant.to_rfc3339(),
        room: a.room().into(),
        txn_id: a.txn_id(),
        state,
        attempts: 1,
        event_id: None,
        detail: detail.map(str::to_string),
        updated_at: updated.to_rfc3339(),
        priority: None,
        fire_at: Some(a.fire_at.to_rfc3339()),
        started_at: None,
        requested_at: None,
    }
}

struct Fixture {
    conf: Conference,
    plan: Plan,
    actions: Vec<Action>,
    records: HashMap<String, Record>,
    everything: Observation,
    /// The action left unrecorded past its grace window, and the one recorded `sending`.
    missed: String,
    sending: String,
}

const NOW: (u32, u32, u32) = (10, 0, 10);

fn fixture() -> Fixture {
    let (conf, plan) = fixtures::small();
    let actions = timeline(&conf, &plan, &TimelineOptions::default());
    let now = brussels(NOW.0, NOW.1, NOW.2);
    let go_live = brussels(10, 0, 0);
    // What fired before the go-live second (its own actions are paced a little ahead of it: they are not).
    let earlier: Vec<&Action> = actions.iter().filter(|a| a.fire_at < go_live && a.instant < go_live).collect();
    let missed = earlier.iter().rev().find(|a| a.deadline < now).expect("an action past its grace").id.clone();
    let mut records = HashMap::new();
    for (i, a) in earlier.iter().enumerate() {
        let updated = a.fire_at;
        let r = match i {
            0 => record(a, RecordState::Failed, Some("M_FORBIDDEN: no permission"), updated),
            1 => record(a, RecordState::Skipped, Some("missed: beyond its grace window"), updated),
            _ if a.id == missed => continue,
            _ => record(a, RecordState::Sent, None, updated),
        };
        records.insert(a.id.clone(), r);
    }
    let sending = actions.iter().find(|a| a.instant == go_live && a.fire_at == go_live).expect("a go-live action").clone();
    records.insert(sending.id.clone(), record(&sending, RecordState::Sending, None, go_live));

    // Every room exists but the recorded talk's; Grace joined the async talk room, Ada (its host) is invited.
    let mut seen = RoomSeen::default();
    seen.members.insert("@grace:example.org".into(), "join".into());
    seen.members.insert("@ada:example.org".into(), "invite".into());
    let keys: HashSet<String> = plan.rooms.iter().map(|r| r.key.clone()).collect();
    let everything = Observation {
        at: brussels(9, 58, 0),
        everything: true,
        existing: keys.iter().filter(|k| *k != "talk/recorded").cloned().collect(),
        checked: keys,
        attendance: HashMap::from([("talk/async".to_string(), seen)]),
        error: None,
    };
    Fixture { conf, plan, actions, records, everything, missed, sending: sending.id }
}

fn boards() -> HashMap<String, BoardSize> {
    HashMap::from([
        ("async".to_string(), BoardSize { questions: 2, votes: 3 }),
        ("welcome".to_string(), BoardSize { questions: 1, votes: 0 }),
        ("recorded".to_string(), BoardSize::default()),
    ])
}

fn status_of(f: &Fixture, observations: &[&Observation]) -> Status {
    let b = boards();
    build(Inputs {
        conference: &f.conf,
        plan: &f.plan,
        actions: &f.actions,
        records: &f.records,
        now: brussels(NOW.0, NOW.1, NOW.2),
        taken_at: brussels(NOW.0, NOW.1, NOW.2),
        rehearsal: false,
        schedule: ScheduleStatus {
            source: "schedule.yaml".into(),
            talks: f.conf.talks.len(),
            read_at: brussels(9, 0, 0),
            refreshed_at: Some(brussels(9, 57, 30)),
            next_refresh: Some(brussels(10, 2, 30)),
        },
        observations,
        boards: Some(&b),
        homeserver: HomeserverStatus { reachable: Some(true), last_ok: Some(brussels(10, 0, 9)), last_error: None, error: None },
        runner: Some(RunnerHealth { runner: RunnerStatus { alive: true, sent: 30, in_flight: 1, ..RunnerStatus::default() }, behind_ms: 0 }),
        intake: Some(IntakeHealth {
            mode: "sync".into(),
            alive: true,
            last_ok: Some(brussels(9, 59, 0)),
            failures: 3,
            last_error: Some("sync: connection refused".into()),
            delivered: 12,
        }),
        problems: vec![Problem {
            at: brussels(9, 59, 30),
            level: "warn".into(),
            message: "transient error; retrying".into(),
            fields: "request=sync".into(),
            count: 3,
        }],
    })
}

/// The status of the fixture, for the web tests.
pub(crate) fn sample() -> Status {
    let f = fixture();
    status_of(&f, &[&f.everything])
}

#[test]
fn the_live_talk_shows_with_its_board_and_qa_counts_every_board() {
    let s = sample();
    let live: Vec<(&str, &str, Option<usize>, Option<usize>)> =
        s.live.iter().map(|l| (l.track_name.as_str(), l.title.as_str(), l.questions, l.votes)).collect();
    assert_eq!(live, [("Rust devroom", "Async & <Rust>", Some(2), Some(3))], "the welcome talk ended at 09:50");
    assert_eq!(s.qa, Some(QaActivity { boards: 2, questions: 3, votes: 3 }));
    assert_eq!((s.title.as_str(), s.timezone.as_str()), ("Camp", "Europe/Brussels"));
}

#[test]
fn actions_are_next_late_missed_failed_or_skipped_by_their_record_and_the_clock() {
    let f = fixture();
    let s = status_of(&f, &[&f.everything]);
    let now = brussels(NOW.0, NOW.1, NOW.2);
    let a = &s.actions;
    assert_eq!(a.total, f.actions.len());
    let future: Vec<&Action> = f.actions.iter().filter(|x| x.fire_at > now).collect();
    assert_eq!(a.next.len(), future.len().min(NEXT_ACTIONS));
    assert!(a.next.iter().zip(&future).all(|(l, x)| l.id == x.id && l.state == "pending"), "in firing order");

    // Due at 10:00 (fired then or paced just before) and not recorded: late; the one being sent: sending; the one
    // past its grace: missed.
    let go_live = brussels(10, 0, 0);
    let due: Vec<&Action> = f.actions.iter().filter(|x| x.fire_at <= go_live && x.instant == go_live && x.fire_at > go_live - Duration::seconds(10)).collect();
    assert_eq!(a.late_count, due.len() + 1);
    let state_of = |id: &str| a.late.iter().find(|l| l.id == id).map(|l| l.state.as_str());
    assert_eq!(state_of(&f.sending), Some("sending"));
    assert_eq!(state_of(&f.missed), Some("missed"));
    assert!(due.iter().filter(|x| x.id != f.sending).all(|x| state_of(&x.id) == Some("late")));
    assert_eq!(a.late.last().map(|l| l.id.as_str()), Some(f.missed.as_str()), "latest first");

    assert_eq!((a.failed_count, a.skipped_count), (1, 1));
    let failed: Vec<(&str, Option<&str>)> = a.failed.iter().map(|l| (l.state.as_str(), l.detail.as_deref())).collect();
    assert_eq!(failed, [("skipped", Some("missed: beyond its grace window")), ("failed", Some("M_FORBIDDEN: no permission"))]);
    assert_eq!(a.sent, f.records.values().filter(|r| r.state == RecordState::Sent).count());
    assert!(s.needs_attention());
}

#[test]
fn missing_speakers_are_those_of_the_next_hour_who_have_not_joined() {
    let s = sample();
    let a = s.attendance.as_ref().expect("observed");
    let missing: Vec<(&str, bool, Vec<(&str, &str, &str)>)> = a
        .missing
        .iter()
        .map(|t| (t.title.as_str(), t.live, t.people.iter().map(|p| (p.name.as_str(), p.role.as_str(), p.presence.as_str())).collect()))
        .collect();
    assert_eq!(
        missing,
        [
            ("Async & <Rust>", true, vec![("Ada <Lovelace>", "host", "invited"), ("Linus", "speaker", "uncontactable")]),
            ("Recorded", false, vec![("Grace Hopper", "speaker", "not_invited")]),
        ],
        "Grace joined the live talk's room; the recorded talk's room does not exist; the welcome talk is over"
    );
    assert_eq!((a.unchecked, a.observed_at), (0, brussels(9, 58, 0)));
    let invites = a.invites.as_ref().expect("every room read");
    assert_eq!((invites.joined, invites.invited), (1, 1));
}

#[test]
fn a_newer_reading_of_a_room_wins_and_rooms_count_only_from_a_full_reading() {
    let f = fixture();
    let mut seen = RoomSeen::default();
    for who in ["@grace:example.org", "@ada:example.org"] {
        seen.members.insert(who.into(), "join".into());
    }
    let soon = Observation {
        at: brussels(10, 0, 0),
        checked: HashSet::from(["talk/async".to_string()]),
        existing: HashSet::from(["talk/async".to_string()]),
        attendance: HashMap::from([("talk/async".to_string(), seen)]),
        ..Observation::default()
    };
    let s = status_of(&f, &[&soon, &f.everything]);
    let titles: Vec<&str> = s.attendance.as_ref().unwrap().missing.iter().map(|t| t.title.as_str()).collect();
    let linus_only: Vec<&str> = s.attendance.as_ref().unwrap().missing[0].people.iter().map(|p| p.name.as_str()).collect();
    assert_eq!((titles, linus_only), (vec!["Async & <Rust>", "Recorded"], vec!["Linus"]));

    let only_soon = status_of(&f, &[&soon]);
    assert!(only_soon.rooms.observed_at.is_none() && only_soon.rooms.kinds.iter().all(|k| k.existing.is_none()));
    assert_eq!(only_soon.attendance.as_ref().unwrap().unchecked, 1, "the recorded talk's room was not read");
    let talk_rooms = s.rooms.kinds.iter().find(|k| k.kind == "talk room").unwrap();
    assert_eq!((talk_rooms.planned, talk_rooms.existing), (3, Some(2)));
    assert!(status_of(&f, &[]).attendance.is_none(), "never read: unknown, not 'nobody'");
}

#[test]
fn the_running_bots_parts_are_added_to_a_status_taken_elsewhere() {
    let f = fixture();
    let mut mine = status_of(&f, &[&f.everything]);
    (mine.runner, mine.intake, mine.qa, mine.problems) = (None, None, None, Vec::new());
    mine.live[0].questions = None;
    mine.add_running(sample());
    assert_eq!(mine, sample());
}

#[test]
fn a_status_reads_as_a_few_lines_and_in_detail() {
    let s = sample();
    let short = text(&s);
    assert!(short.lines().count() <= 7, "{short}");
    insta::assert_snapshot!("text", short);
    insta::assert_snapshot!("details", details(&s));
}

#[test]
fn a_status_survives_json() {
    let s = sample();
    let back: Status = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
}
