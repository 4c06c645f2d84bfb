use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::timeline::fixtures;

fn utc(s: &str) -> DateTime<Utc> {
    // Brussels is UTC+1 in March 2026 (before the DST change on the 29th).
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
    Utc.from_utc_datetime(&(naive - Duration::hours(1)))
}

fn of<'a>(list: &'a [Action], talk: &str, kind: ActionKind) -> &'a Action {
    list.iter().find(|a| a.talk == talk && a.kind == kind).unwrap_or_else(|| panic!("no {kind:?} for {talk}"))
}

#[test]
fn a_live_talk_gets_every_default_action_at_its_offset_in_its_room() {
    let (conf, plan) = fixtures::small();
    let list = timeline(&conf, &plan, &TimelineOptions::default());
    let mine: Vec<&Action> = list.iter().filter(|a| a.talk == "async").collect();
    assert_eq!(mine.len(), ActionKind::ALL.len() - 1, "every timed kind");
    let expect = [
        (ActionKind::FirstReminder, "09:00", "talk/async"),
        (ActionKind::LastReminder, "09:45", "talk/async"),
        (ActionKind::BackstageRoll, "09:45", "backstage/rust"),
        (ActionKind::LiveSoon, "09:55", "talk/async"),
        (ActionKind::BackstageLiveSoon, "09:55", "backstage/rust"),
        (ActionKind::LastMinute, "09:59", "talk/async"),
        (ActionKind::Maximise, "10:00", "talk/async"),
        (ActionKind::Suggest, "10:00", "space/devrooms"),
        (ActionKind::LiveNotice, "10:00", "track/rust"),
        (ActionKind::EndingSoon, "10:35", "talk/async"),
        (ActionKind::RestoreLayout, "10:40", "talk/async"),
        (ActionKind::Unsuggest, "10:40", "space/devrooms"),
        (ActionKind::OpenRoom, "10:40", "talk/async"),
        (ActionKind::HallwayNotice, "10:40", "track/rust"),
    ];
    for (kind, at, room) in expect {
        let a = of(&list, "async", kind);
        assert_eq!((a.instant, a.room()), (utc(&format!("2026-03-14 {at}")), room), "{kind:?}");
        assert_eq!(a.id, format!("async|{}|{}", kind.slug(), a.instant.format("%Y-%m-%dT%H:%M:%SZ")));
        match a.priority {
            Priority::Routine if a.instant >= utc("2026-03-14 10:40") || matches!(kind, ActionKind::Suggest | ActionKind::TopQuestions) => {
                assert!(a.fire_at >= a.instant && a.fire_at - a.instant <= Duration::seconds(60), "{kind:?} after its instant")
            }
            Priority::Routine => assert!(a.fire_at <= a.instant && a.instant - a.fire_at <= Duration::seconds(60)),
            // Paced just ahead of the instant with the other critical actions due then (a few here, one gap apart).
            Priority::Critical => assert!(a.fire_at <= a.instant && a.instant - a.fire_at < Duration::milliseconds(200), "{kind:?}"),
        }
    }
    let critical: Vec<ActionKind> = mine.iter().filter(|a| a.priority == Priority::Critical).map(|a| a.kind).collect();
    assert_eq!(critical.len(), 6, "countdowns, go-live (the call and the notice) and five minutes left: {critical:?}");
    assert_eq!(of(&list, "async", ActionKind::Suggest).priority, Priority::Routine, "suggested follows within the spread");
    // Sorted by fire time, critical first at one instant.
    assert!(list.is_sorted_by(|a, b| a.sort_key() <= b.sort_key()));
    // Nothing said before the go-live is sent after it; what ends the talk may be sent long after.
    assert_eq!(of(&list, "async", ActionKind::LastMinute).deadline, utc("2026-03-14 10:00") - Duration::seconds(1));
    assert_eq!(of(&list, "async", ActionKind::FirstReminder).deadline, utc("2026-03-14 09:30"));
    assert_eq!(of(&list, "async", ActionKind::OpenRoom).deadline, utc("2026-03-21 10:40"));
}

#[test]
fn a_prerecorded_talk_goes_live_at_its_qa_start_and_is_reminded_before_its_start() {
    let (conf, plan) = fixtures::small();
    let list = timeline(&conf, &plan, &TimelineOptions::default());
    assert_eq!(of(&list, "recorded", ActionKind::Maximise).instant, utc("2026-03-14 11:05"));
    assert_eq!(of(&list, "recorded", ActionKind::LastMinute).instant, utc("2026-03-14 11:04"));
    assert_eq!(of(&list, "recorded", ActionKind::LastReminder).instant, utc("2026-03-14 10:30"));
    assert_eq!(of(&list, "recorded", ActionKind::OpenRoom).instant, utc("2026-03-14 11:15"));
}

#[test]
fn messages_carry_the_planned_people_and_escape_the_schedule() {
    let (conf, plan) = fixtures::small();
    let list = timeline(&conf, &plan, &TimelineOptions::default());
    let Effect::Roll { talk_room, people, roll, .. } = &of(&list, "async", ActionKind::FirstReminder).effect else {
        panic!("not a roll call")
    };
    assert_eq!(talk_room, "talk/async");
    let mut who: Vec<(&str, Role)> = people.iter().map(|p| (p.person.as_str(), p.role)).collect();
    who.sort();
    assert_eq!(who, vec![("ada", Role::Host), ("grace", Role::Speaker), ("linus", Role::Speaker)]);
    assert_eq!((roll.minutes, roll.local_start.as_str()), (60, "10:00"));
    let Effect::Notice { message, .. } = &of(&list, "async", ActionKind::LiveNotice).effect else { panic!("not a notice") };
    assert!(message.body.starts_with("Now live: “Async & <Rust>” by Grace Hopper, Linus."), "{}", message.body);
    assert!(message.html.contains("<strong>Async &amp; &lt;Rust&gt;</strong>"), "{}", message.html);
    let Effect::Notice { message, .. } = &of(&list, "async", ActionKind::HallwayNotice).effect else { panic!("not a notice") };
    assert!(message.body.ends_with("#camp-talk-async:example.org"), "{}", message.body);
}

#[test]
fn options_move_and_switch_off_actions() {
    let (conf, plan) = fixtures::small();
    let opts: TimelineOptions = yaml_serde::from_str(
        "first_reminder: {minutes_before: 30}\nlast_minute: {enabled: false}\nbackstage_roll: {enabled: false}\nspread_seconds: 0\n",
    )
    .unwrap();
    let list = timeline(&conf, &plan, &opts);
    assert!(!list.iter().any(|a| matches!(a.kind, ActionKind::LastMinute | ActionKind::BackstageRoll)));
    let first = of(&list, "async", ActionKind::FirstReminder);
    // At its instant, but for the go-live of the welcome talk at 09:30: moved just before it.
    assert_eq!(first.instant, utc("2026-03-14 09:30"));
    assert!(first.fire_at <= first.instant && first.instant - first.fire_at < Duration::seconds(3), "{}", first.fire_at);
}

#[test]
fn ids_are_unique_stable_and_change_when_the_talk_moves() {
    let (mut conf, plan) = fixtures::small();
    let opts = TimelineOptions::default();
    let before = timeline(&conf, &plan, &opts);
    let ids: HashSet<&str> = before.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), before.len());
    assert_eq!(before, timeline(&conf, &plan, &opts), "same input, same list");
    let talk = conf.talks.iter_mut().find(|t| t.key == "welcome").unwrap();
    talk.start += Duration::minutes(10);
    talk.end += Duration::minutes(10);
    let after = timeline(&conf, &fixtures::replan(&conf), &opts);
    for (a, b) in before.iter().zip(&after).filter(|(a, _)| a.talk == "welcome") {
        assert_ne!(a.id, b.id);
        assert_ne!(a.txn_id(), b.txn_id());
    }
    let told = moved_notices(&fixtures::small().0, &conf, &plan, &opts, utc("2026-03-14 08:00"));
    assert_eq!(told.len(), 1, "only the moved talk is told");
    assert_eq!((told[0].room(), told[0].deadline), ("talk/welcome", utc("2026-03-14 09:00")));
    assert!(matches!(&told[0].effect, Effect::Notice { message, .. } if message.body.contains("now starts Sat 09:40 (was Sat 09:30)")));
    assert_eq!(told[0].id, Action::id_for("welcome", ActionKind::Moved, utc("2026-03-14 09:40")));
    assert!(moved_notices(&fixtures::small().0, &conf, &plan, &opts, utc("2026-03-14 09:40")).is_empty(), "too late to tell");
    let others = |l: &[Action]| l.iter().filter(|a| a.talk != "welcome").map(|a| a.id.clone()).collect::<Vec<_>>();
    assert_eq!(others(&before), others(&after));
}

#[test]
fn state_at_follows_go_live_and_end() {
    let (conf, plan) = fixtures::small();
    let list = timeline(&conf, &plan, &TimelineOptions::default());
    assert_eq!(state_at(&list, utc("2026-03-14 09:40")).suggested, BTreeSet::from(["talk/welcome".to_string()]));
    let live = state_at(&list, utc("2026-03-14 10:00"));
    assert_eq!(live.suggested, BTreeSet::from(["talk/async".to_string()]));
    assert_eq!(live.maximised, BTreeSet::from(["talk/async".to_string()]));
    assert_eq!(live.open, BTreeSet::from(["talk/welcome".to_string()]));
    let after = state_at(&list, utc("2026-03-14 12:00"));
    assert!(after.suggested.is_empty() && after.maximised.is_empty());
    assert_eq!(after.open.len(), 3);
    assert_eq!(state_at(&list, utc("2026-03-14 08:00")), LiveState::default());
    // A go-live paced ahead of its second is part of the state from when it fires: a converge then keeps the call
    // maximised instead of taking it back; the end, spread after its instant, counts from the instant.
    let mut paced = list.clone();
    let maximise = paced.iter_mut().find(|a| a.talk == "async" && a.kind == ActionKind::Maximise).unwrap();
    maximise.fire_at = maximise.instant - Duration::seconds(2);
    let ahead = utc("2026-03-14 10:00") - Duration::seconds(1);
    assert_eq!(state_at(&paced, ahead).maximised, BTreeSet::from(["talk/async".to_string()]));
    assert!(state_at(&list, ahead).maximised.is_empty());
    let open = list.iter().find(|a| a.talk == "async" && a.kind == ActionKind::OpenRoom).unwrap();
    assert!(open.fire_at >= open.instant);
    assert!(state_at(&list, open.instant).open.contains("talk/async"));
}
