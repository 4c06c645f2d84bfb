//! The read-ahead cache and which rooms to read, on a paused clock.

use serde_json::json;

use super::*;
use crate::timeline::fixtures;
use crate::timeline::{ActionKind, TimelineOptions, timeline};

fn layout(maximised: bool) -> StateItem {
    StateItem { event_type: "io.element.widgets.layout".into(), state_key: String::new(), content: json!({ "maximised": maximised }) }
}

fn snapshot(items: &[StateItem]) -> Snapshot {
    let state = items.iter().map(|i| ((i.event_type.clone(), i.state_key.clone()), i.content.clone())).collect();
    Snapshot { state: Arc::new(state), taken: Arc::default() }
}

fn layout_of(s: &Snapshot) -> serde_json::Value {
    s.state[&("io.element.widgets.layout".to_string(), String::new())].clone()
}

fn cache() -> (StateCache, Clock) {
    let clock = Clock::starting_at(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
    (StateCache::new(clock, MAX_AGE), clock)
}

async fn wait(d: Duration) {
    tokio::time::advance(d.to_std().unwrap()).await;
}

#[tokio::test(start_paused = true)]
async fn a_read_is_used_until_it_is_older_than_the_bound() {
    let (cache, clock) = cache();
    assert!(cache.fresh("talk/a").is_none() && cache.stale_at("talk/a", clock.now()));
    assert!(cache.put(cache.ticket("talk/a"), snapshot(&[layout(false)])));
    assert_eq!(cache.fresh("talk/a"), Some(snapshot(&[layout(false)])));
    assert!(!cache.stale_at("talk/a", clock.now() + MAX_AGE));
    assert!(cache.stale_at("talk/a", clock.now() + MAX_AGE + Duration::seconds(1)), "too old by the time it is used");
    wait(MAX_AGE + Duration::seconds(1)).await;
    assert!(cache.fresh("talk/a").is_none(), "read again");
}

#[tokio::test(start_paused = true)]
async fn a_write_updates_the_entry_and_keeps_the_age_of_its_read() {
    let (cache, _) = cache();
    cache.put(cache.ticket("talk/a"), snapshot(&[layout(false)]));
    wait(Duration::seconds(90)).await;
    cache.wrote("talk/a", &[layout(true)]);
    assert_eq!(layout_of(&cache.fresh("talk/a").unwrap()), json!({"maximised": true}));
    wait(Duration::seconds(31)).await;
    assert!(cache.fresh("talk/a").is_none(), "a write says nothing of the rest of the room");
    cache.wrote("talk/b", &[layout(true)]);
    assert!(cache.fresh("talk/b").is_none(), "a write alone is not a read");
}

#[tokio::test(start_paused = true)]
async fn a_read_that_overlapped_a_write_or_a_clear_is_not_kept() {
    let (cache, _) = cache();
    cache.put(cache.ticket("talk/a"), snapshot(&[layout(false)]));
    // A read ahead starts, the go-live's converge writes, the read returns what it saw before the write.
    let ticket = cache.ticket("talk/a");
    cache.wrote("talk/a", &[layout(true)]);
    assert!(!cache.put(ticket, snapshot(&[layout(false)])));
    assert_eq!(layout_of(&cache.fresh("talk/a").unwrap()), json!({"maximised": true}), "the write stands");
    // Another room's write does not matter; a clear does.
    let ticket = cache.ticket("talk/b");
    cache.wrote("talk/a", &[layout(false)]);
    assert!(cache.put(ticket, snapshot(&[layout(false)])));
    let ticket = cache.ticket("talk/b");
    cache.clear();
    assert!(!cache.put(ticket, snapshot(&[layout(true)])));
    assert!(cache.fresh("talk/a").is_none() && cache.fresh("talk/b").is_none());
    let ticket = cache.ticket("talk/a");
    cache.forget("talk/a");
    assert!(!cache.put(ticket, snapshot(&[layout(true)])), "forgotten while read");
    assert!(cache.put(cache.ticket("talk/a"), snapshot(&[layout(true)])));
}

#[test]
fn the_rooms_of_state_actions_due_soon_are_read_once_soonest_first_and_never_beside_a_critical_action() {
    let (conf, plan) = fixtures::small();
    let list = timeline(&conf, &plan, &TimelineOptions::default());
    let find = |talk: &str, kind: ActionKind| list.iter().find(|a| a.talk == talk && a.kind == kind).unwrap();
    let maximise = find("async", ActionKind::Maximise);
    let all_stale = |_: &str, _: DateTime<Utc>| true;
    // Half a minute before the go-live, the talk room; not the space of `suggest`, not the rooms of messages.
    let before = maximise.fire_at - Duration::seconds(20);
    assert_eq!(reads_due(&list, before, LEAD, false, all_stale), ["talk/async"]);
    assert!(reads_due(&list, before - LEAD, LEAD, false, all_stale).is_empty(), "too early");
    assert!(reads_due(&list, before, LEAD, false, |_, _| false).is_empty(), "read recently enough");
    assert!(reads_due(&list, before, LEAD, true, all_stale).is_empty(), "a critical send is in flight");
    assert!(reads_due(&list, maximise.fire_at - QUIET, LEAD, false, all_stale).is_empty(), "the go-live is too close");
    // A time-critical action that fired just now may still wait for a send slot.
    let mut just_fired = list.clone();
    let mut countdown = find("welcome", ActionKind::LiveSoon).clone();
    countdown.fire_at = before - QUIET;
    just_fired.push(countdown.clone());
    assert!(reads_due(&just_fired, before, LEAD, false, all_stale).is_empty());
    countdown.fire_at = before - QUIET - Duration::seconds(1);
    *just_fired.last_mut().unwrap() = countdown;
    assert_eq!(reads_due(&just_fired, before, LEAD, false, all_stale), ["talk/async"]);
    // The end of the talk: the layout restored and the room opened, one read.
    let open = find("async", ActionKind::OpenRoom);
    let restore = find("async", ActionKind::RestoreLayout);
    let end = restore.fire_at.min(open.fire_at);
    assert_eq!(converged_room(open), Some("talk/async"));
    let ending = find("async", ActionKind::EndingSoon);
    assert!(ending.fire_at < end - LEAD, "five minutes left is not in the way");
    assert_eq!(reads_due(&list, end - Duration::seconds(10), LEAD, false, all_stale), ["talk/async"]);
}
