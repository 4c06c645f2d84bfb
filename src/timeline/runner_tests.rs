//! The runner driven by a paused tokio clock, with a recording fake sender.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::timeline::fixtures;
use crate::timeline::{ActionKind, TimelineOptions, timeline};

/// One call of the fake sender.
#[derive(Debug, Clone)]
struct Call {
    id: String,
    txn: String,
    at: DateTime<Utc>,
}

/// Records every call; can hang, slow down or fail chosen actions.
struct Fake {
    clock: Clock,
    calls: Mutex<Vec<Call>>,
    hang: HashSet<String>,
    slow: HashMap<String, std::time::Duration>,
    /// Transient failures left per action id (`u32::MAX`: always).
    transient: Mutex<HashMap<String, u32>>,
    permanent: HashSet<String>,
}

impl Fake {
    fn new(clock: Clock) -> Fake {
        Fake {
            clock,
            calls: Mutex::default(),
            hang: HashSet::new(),
            slow: HashMap::new(),
            transient: Mutex::default(),
            permanent: HashSet::new(),
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

impl Sender for Fake {
    async fn perform(&self, action: &Action, txn_id: &str) -> Result<Sent, SendError> {
        let at = self.clock.now();
        self.calls.lock().unwrap().push(Call { id: action.id.clone(), txn: txn_id.to_string(), at });
        if self.hang.contains(&action.id) {
            std::future::pending::<()>().await;
        }
        if let Some(d) = self.slow.get(&action.id) {
            tokio::time::sleep(*d).await;
        }
        if self.permanent.contains(&action.id) {
            return Err(SendError::Permanent("M_FORBIDDEN".into()));
        }
        let fail = match self.transient.lock().unwrap().get_mut(&action.id) {
            Some(n) if *n > 0 => {
                *n = n.saturating_sub(1);
                true
            }
            _ => false,
        };
        if fail {
            return Err(SendError::Transient("502".into()));
        }
        // A slow send is a slow preparation: its request goes out at the end.
        Ok(Sent::event(format!("$event-{}", action.txn_id()), tokio::time::Instant::now()))
    }
}

fn half_second() -> Duration {
    Duration::milliseconds(500)
}

async fn at(clock: &Clock, wall: DateTime<Utc>) {
    tokio::time::sleep_until(clock.instant_at(wall)).await;
}

/// Runs a runner over `list` until `until` on the clock.
async fn run(fake: Arc<Fake>, store: Store, clock: Clock, list: Vec<Action>, until: DateTime<Utc>) -> RunSummary {
    let (_tx, rx) = watch::channel(Arc::new(list));
    let runner = Runner::new(fake, store, clock, RetryOptions::default());
    runner.run(rx, at(&clock, until)).await.unwrap()
}

fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join(".stagehand/stagehand.sqlite")).unwrap()
}

fn ids<'a>(actions: impl IntoIterator<Item = &'a Action>) -> BTreeSet<String> {
    actions.into_iter().map(|a| a.id.clone()).collect()
}

fn by_id(list: &[Action]) -> HashMap<&str, &Action> {
    list.iter().map(|a| (a.id.as_str(), a)).collect()
}

#[tokio::test(start_paused = true)]
async fn a_whole_fosdem_2022_runs_every_action_once_at_its_instant_in_order() {
    let (conf, plan) = fixtures::fosdem_2022();
    let list = timeline(&conf, &plan, &TimelineOptions::default());
    assert!(list.len() > 9000, "{}", list.len());
    let (first, last) = (list[0].fire_at, list[list.len() - 1].fire_at);
    let clock = Clock::starting_at(first - Duration::minutes(1));
    let fake = Arc::new(Fake::new(clock));
    let dir = tempfile::tempdir().unwrap();
    let summary = run(fake.clone(), store(&dir), clock, list.clone(), last + Duration::minutes(1)).await;
    let calls = fake.calls();
    assert_eq!(calls.len(), list.len(), "every action is sent once");
    assert_eq!(ids(&list).len(), list.len());
    let index = by_id(&list);
    for c in &calls {
        assert_eq!(c.at, index[c.id.as_str()].fire_at, "{} fired late or early", c.id);
    }
    let order: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
    let expected: Vec<&str> = list.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(order, expected, "fired in instant, then priority order");
    assert_eq!((summary.sent, summary.skipped, summary.failed), (list.len(), 0, 0));
    let rows = store(&dir).load().await.unwrap();
    assert_eq!(rows.len(), list.len());
    assert!(rows.values().all(|r| r.state == RecordState::Sent && r.event_id.is_some()));
}

#[tokio::test(start_paused = true)]
async fn a_restart_mid_day_repeats_nothing_sends_what_is_within_grace_and_skips_the_rest() {
    let (conf, plan) = fixtures::fosdem_2022();
    let list = timeline(&conf, &plan, &TimelineOptions::default());
    let clock = Clock::starting_at(list[0].fire_at - Duration::minutes(1));
    let dir = tempfile::tempdir().unwrap();
    // The runner dies at 13:00:00.5 while the go-live of a 13:00 talk is being sent; it is back 20 minutes later.
    let noon = list.iter().find(|a| a.kind == ActionKind::Maximise && a.instant.format("%H:%M").to_string() == "13:00").unwrap();
    let crash = noon.fire_at + half_second();
    let back = crash + Duration::minutes(20);
    let mut first = Fake::new(clock);
    first.hang.insert(noon.id.clone());
    let first = Arc::new(first);
    let (_tx, rx) = watch::channel(Arc::new(list.clone()));
    let runner = Runner::new(first.clone(), store(&dir), clock, RetryOptions::default());
    let task = tokio::spawn(runner.run(rx, std::future::pending()));
    at(&clock, crash).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let rows = store(&dir).load().await.unwrap();
    assert_eq!(rows[&noon.id].state, RecordState::Sending, "recorded before the send");

    at(&clock, back).await;
    let second = Arc::new(Fake::new(clock));
    let last = list[list.len() - 1].fire_at;
    run(second.clone(), store(&dir), clock, list.clone(), last + Duration::minutes(1)).await;

    let before: Vec<Call> = first.calls();
    let after: Vec<Call> = second.calls();
    assert_eq!(ids(list.iter().filter(|a| a.fire_at < crash)), before.iter().map(|c| c.id.clone()).collect());
    let resent: Vec<&Call> = after.iter().filter(|c| c.id == noon.id).collect();
    let attempt = before.iter().find(|c| c.id == noon.id).unwrap();
    assert_eq!((resent.len(), resent[0].txn.as_str(), resent[0].at), (1, attempt.txn.as_str(), back), "same txn id");
    let mut seen = HashSet::new();
    for c in before.iter().filter(|c| c.id != noon.id).chain(&after) {
        assert!(seen.insert(c.id.clone()), "{} sent twice", c.id);
    }
    let missed: Vec<&Action> = list.iter().filter(|a| a.fire_at > crash && a.fire_at < back).collect();
    let (late, gone): (Vec<&Action>, Vec<&Action>) = missed.into_iter().partition(|a| a.deadline >= back);
    assert!(!late.is_empty() && !gone.is_empty(), "{} late, {} beyond grace", late.len(), gone.len());
    let when: HashMap<&str, DateTime<Utc>> = after.iter().map(|c| (c.id.as_str(), c.at)).collect();
    for a in &late {
        assert_eq!(when.get(a.id.as_str()), Some(&back), "{} is within grace and sent on restart", a.id);
    }
    for a in list.iter().filter(|a| a.fire_at > back) {
        assert_eq!(when.get(a.id.as_str()), Some(&a.fire_at), "{}", a.id);
    }
    let rows = store(&dir).load().await.unwrap();
    for a in &gone {
        assert!(!when.contains_key(a.id.as_str()), "{} is beyond grace but was sent", a.id);
        let r = &rows[&a.id];
        assert_eq!(r.state, RecordState::Skipped, "{}", a.id);
        assert!(r.detail.as_deref().unwrap_or_default().contains("grace"), "{r:?}");
    }
    assert_eq!(rows.len(), list.len());
    assert_eq!(rows.values().filter(|r| r.state == RecordState::Skipped).count(), gone.len());
    assert_eq!((rows[&noon.id].state, rows[&noon.id].attempts), (RecordState::Sent, 2));
}

#[tokio::test(start_paused = true)]
async fn a_schedule_change_mid_day_moves_exactly_the_actions_of_the_changed_talks() {
    let (conf, plan) = fixtures::fosdem_2022();
    let opts = TimelineOptions::default();
    let old = timeline(&conf, &plan, &opts);
    let clock = Clock::starting_at(old[0].fire_at - Duration::minutes(1));
    let change = old.iter().find(|a| a.instant.format("%H:%M").to_string() == "12:00").unwrap().instant + half_second();
    // One talk starting two hours later moves by half an hour; another is cancelled.
    let later: Vec<&str> =
        conf.talks.iter().filter(|t| t.start.to_utc() >= change + Duration::hours(2)).map(|t| t.key.as_str()).take(2).collect();
    let (moved, cancelled) = (later[0].to_string(), later[1].to_string());
    let mut changed = conf.clone();
    changed.talks.retain(|t| t.key != cancelled);
    for t in changed.talks.iter_mut().filter(|t| t.key == moved) {
        t.start += Duration::minutes(30);
        t.end += Duration::minutes(30);
        t.qa_start = t.qa_start.map(|q| q + Duration::minutes(30));
    }
    let new = timeline(&changed, &fixtures::replan(&changed), &opts);

    let fake = Arc::new(Fake::new(clock));
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = watch::channel(Arc::new(old.clone()));
    let update = new.clone();
    tokio::spawn(async move {
        at(&clock, change).await;
        tx.send(Arc::new(update)).unwrap();
        std::future::pending::<()>().await;
    });
    let end = new.iter().chain(&old).map(|a| a.fire_at).max().unwrap() + Duration::minutes(1);
    Runner::new(fake.clone(), store(&dir), clock, RetryOptions::default()).run(rx, at(&clock, end)).await.unwrap();

    let calls = fake.calls();
    let sent: BTreeSet<String> = calls.iter().map(|c| c.id.clone()).collect();
    assert_eq!(sent.len(), calls.len(), "nothing twice");
    let of = |l: &[Action], talk: &str| ids(l.iter().filter(|a| a.talk == talk));
    let old_ids = ids(&old);
    let dropped: BTreeSet<String> = old_ids.difference(&sent).cloned().collect();
    let added: BTreeSet<String> = sent.difference(&old_ids).cloned().collect();
    let mut changed_old = of(&old, &moved);
    changed_old.extend(of(&old, &cancelled));
    assert_eq!(dropped, changed_old, "only the moved and the cancelled talk lose actions");
    assert_eq!(added, of(&new, &moved), "the moved talk's actions at their new instants");
    assert!(of(&new, &cancelled).is_empty());
    let index = by_id(&new);
    for c in calls.iter().filter(|c| c.at > change) {
        assert_eq!(c.at, index[c.id.as_str()].fire_at, "{}", c.id);
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_send_in_flight_and_records_what_fired() {
    let (conf, plan) = fixtures::small();
    let list = timeline(&conf, &plan, &TimelineOptions::default());
    let live = list.iter().find(|a| a.talk == "async" && a.kind == ActionKind::Maximise).unwrap();
    let clock = Clock::starting_at(list[0].fire_at - Duration::minutes(1));
    let mut fake = Fake::new(clock);
    fake.slow.insert(live.id.clone(), std::time::Duration::from_secs(20));
    let fake = Arc::new(fake);
    let dir = tempfile::tempdir().unwrap();
    let (_tx, rx) = watch::channel(Arc::new(list.clone()));
    let runner = Runner::new(fake.clone(), store(&dir), clock, RetryOptions::default());
    let status = runner.status();
    let stop = live.instant + Duration::seconds(5);
    let (summary, seen) = tokio::join!(runner.run(rx, at(&clock, stop)), async {
        at(&clock, stop - Duration::seconds(1)).await;
        status.borrow().clone()
    });
    let summary = summary.unwrap();
    assert!(seen.alive && seen.in_flight >= 1, "{seen:?}");
    let next = seen.next.unwrap();
    assert_eq!((seen.behind_ms(next), seen.behind_ms(next + Duration::seconds(3))), (0, 3000));
    let fired = ids(list.iter().filter(|a| a.fire_at <= live.instant));
    let rows = store(&dir).load().await.unwrap();
    assert_eq!(rows.keys().cloned().collect::<BTreeSet<_>>(), fired);
    assert!(rows.values().all(|r| r.state == RecordState::Sent));
    assert_eq!(summary.sent, fired.len());
    assert_eq!(clock.now(), live.instant + Duration::seconds(20), "waited for the slow send, then stopped");
    let last = status.borrow().clone();
    assert!(!last.alive && last.sent == fired.len() && last.max_lateness_ms == 0, "{last:?}");
}

#[tokio::test(start_paused = true)]
async fn the_record_says_when_each_send_began_waiting_for_a_slot_and_when_its_request_went_out() {
    let (conf, plan) = fixtures::small();
    let list = timeline(&conf, &plan, &TimelineOptions::default());
    let pick = |kind: ActionKind| list.iter().find(|a| a.talk == "async" && a.kind == kind).unwrap();
    let (notice, maximise) = (pick(ActionKind::LiveNotice), pick(ActionKind::Maximise));
    assert_eq!(maximise.fire_at, maximise.instant, "the call at the go-live");
    let gap = Duration::milliseconds(1000 / i64::from(TimelineOptions::default().burst.rate));
    assert_eq!(maximise.fire_at - notice.fire_at, gap, "the notice one gap before it");
    let clock = Clock::starting_at(list[0].fire_at - Duration::minutes(1));
    let mut fake = Fake::new(clock);
    fake.slow.insert(notice.id.clone(), std::time::Duration::from_secs(3));
    let fake = Arc::new(fake);
    let dir = tempfile::tempdir().unwrap();
    let (_tx, rx) = watch::channel(Arc::new(list.clone()));
    let one_slot = RetryOptions { max_in_flight: 1, ..RetryOptions::default() };
    let runner = Runner::new(fake, store(&dir), clock, one_slot);
    runner.run(rx, at(&clock, maximise.fire_at + Duration::seconds(10))).await.unwrap();
    let rows = store(&dir).load().await.unwrap();
    let when = |t: DateTime<Utc>| Some(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let (go_live, first) = (maximise.fire_at, notice.fire_at);
    let (n, m) = (&rows[&notice.id], &rows[&maximise.id]);
    assert_eq!((n.started_at.clone(), n.requested_at.clone()), (when(first), when(first + Duration::seconds(3))));
    assert_eq!(m.started_at, when(first + Duration::seconds(3)), "waited for the one send slot");
    assert_eq!(m.requested_at, m.started_at);
    assert_eq!((m.priority.as_deref(), m.fire_at.clone()), (Some("critical"), when(go_live)));
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_the_same_txn_id_within_a_short_budget() {
    let (conf, plan) = fixtures::small();
    let list = timeline(&conf, &plan, &TimelineOptions::default());
    let pick = |kind: ActionKind| list.iter().find(|a| a.talk == "async" && a.kind == kind).unwrap().id.clone();
    let (flaky, down, forbidden) = (pick(ActionKind::Maximise), pick(ActionKind::LiveNotice), pick(ActionKind::OpenRoom));
    let clock = Clock::starting_at(list[0].fire_at - Duration::minutes(1));
    let mut fake = Fake::new(clock);
    fake.transient.lock().unwrap().extend([(flaky.clone(), 2), (down.clone(), u32::MAX)]);
    fake.permanent.insert(forbidden.clone());
    let fake = Arc::new(fake);
    let dir = tempfile::tempdir().unwrap();
    let end = list[list.len() - 1].fire_at + Duration::minutes(1);
    let summary = run(fake.clone(), store(&dir), clock, list.clone(), end).await;
    let calls = fake.calls();
    let tries = |id: &str| calls.iter().filter(|c| c.id == id).cloned().collect::<Vec<Call>>();
    let flaky_calls = tries(&flaky);
    assert_eq!(flaky_calls.len(), 3);
    assert!(flaky_calls.iter().all(|c| c.txn == flaky_calls[0].txn));
    let down_calls = tries(&down);
    let spent = down_calls[down_calls.len() - 1].at - down_calls[0].at;
    assert!(spent <= Duration::seconds(20) && down_calls.len() >= 4, "{} tries over {spent}", down_calls.len());
    assert_eq!(tries(&forbidden).len(), 1);
    let rows = store(&dir).load().await.unwrap();
    assert_eq!((rows[&flaky].state, rows[&flaky].attempts), (RecordState::Sent, 3));
    assert_eq!(rows[&down].state, RecordState::Failed);
    assert!(rows[&down].detail.as_deref().unwrap_or_default().contains("gave up"), "{:?}", rows[&down]);
    assert_eq!(rows[&forbidden].state, RecordState::Failed);
    assert_eq!((summary.failed, summary.sent), (2, list.len() - 2));
}

#[tokio::test(start_paused = true)]
async fn every_outcome_is_counted_in_the_metrics_by_kind_with_the_lateness_of_each_send() {
    use crate::metrics::Metrics;
    let (conf, plan) = fixtures::small();
    let list = timeline(&conf, &plan, &TimelineOptions::default());
    let forbidden = list.iter().find(|a| a.talk == "async" && a.kind == ActionKind::OpenRoom).unwrap().id.clone();
    // Started just after the first deadline: that action is beyond grace (skipped), others are sent late.
    let start = list.iter().map(|a| a.deadline).min().unwrap() + Duration::seconds(1);
    let clock = Clock::starting_at(start);
    let mut fake = Fake::new(clock);
    fake.permanent.insert(forbidden);
    let fake = Arc::new(fake);
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(Metrics::new());
    let (_tx, rx) = watch::channel(Arc::new(list.clone()));
    let end = list[list.len() - 1].fire_at + Duration::minutes(1);
    let runner = Runner::new(fake, store(&dir), clock, RetryOptions::default()).with_metrics(metrics.clone());
    let summary = runner.run(rx, at(&clock, end)).await.unwrap();
    assert!(summary.sent > 0 && summary.skipped > 0 && summary.failed == 1, "{summary:?}");

    let text = metrics.render().unwrap();
    let series = |name: &str, labels: &str| -> f64 {
        let prefix = format!("{name}{{{labels}}} ");
        text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.parse().ok()).unwrap_or(0.0)
    };
    let rows = store(&dir).load().await.unwrap();
    let kinds: BTreeSet<ActionKind> = list.iter().map(|a| a.kind).collect();
    for kind in kinds {
        for (state, outcome) in [(RecordState::Sent, "sent"), (RecordState::Skipped, "skipped"), (RecordState::Failed, "failed")] {
            let recorded = list.iter().filter(|a| a.kind == kind && rows[&a.id].state == state).count();
            let counted = series("stagehand_timeline_actions_total", &format!("kind=\"{}\",outcome=\"{outcome}\"", kind.slug()));
            assert_eq!(counted, recorded as f64, "{} {outcome}", kind.slug());
        }
    }
    let observed = series("stagehand_timeline_lateness_seconds_count", "priority=\"critical\"")
        + series("stagehand_timeline_lateness_seconds_count", "priority=\"routine\"");
    assert_eq!(observed, summary.sent as f64, "one lateness per send");
    // The late sends at start are above the first bucket; the rest were on time.
    let on_time = series("stagehand_timeline_lateness_seconds_bucket", "priority=\"critical\",le=\"0.01\"")
        + series("stagehand_timeline_lateness_seconds_bucket", "priority=\"routine\",le=\"0.01\"");
    let late = list.iter().filter(|a| a.fire_at < start && rows[&a.id].state == RecordState::Sent).count();
    assert!(late > 0, "some actions within grace were sent late");
    assert_eq!(on_time, (summary.sent - late) as f64);
}

#[tokio::test(start_paused = true)]
async fn an_action_recorded_skipped_meanwhile_is_not_sent_once_the_list_is_nudged() {
    let (conf, plan) = fixtures::small();
    let list = timeline(&conf, &plan, &TimelineOptions::default());
    let clock = Clock::starting_at(list[0].fire_at - Duration::minutes(1));
    let skipped = list[list.len() / 2].clone();
    let fake = Arc::new(Fake::new(clock));
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let (tx, rx) = watch::channel(Arc::new(list.clone()));
    let (skip_store, at_skip) = (s.clone(), list[0].fire_at + half_second());
    tokio::spawn(async move {
        at(&clock, at_skip).await;
        // What an organiser's `skip` does: the record, then the runner told to look again.
        skip_store.finish(&skipped, RecordState::Skipped, None, Some("skipped by an organiser".into()), at_skip, SendTimes::default()).await.unwrap();
        tx.send_modify(|_| {});
        std::future::pending::<()>().await;
    });
    let end = list.iter().map(|a| a.fire_at).max().unwrap() + Duration::minutes(1);
    Runner::new(fake.clone(), s.clone(), clock, RetryOptions::default()).run(rx, at(&clock, end)).await.unwrap();
    let sent = ids(fake.calls().iter().map(|c| list.iter().find(|a| a.id == c.id).unwrap()));
    let skipped = &list[list.len() / 2];
    assert!(!sent.contains(&skipped.id), "{} was sent", skipped.id);
    assert_eq!(sent.len(), list.len() - 1, "everything else was sent");
    assert_eq!(s.load().await.unwrap()[&skipped.id].state, RecordState::Skipped);
}

#[tokio::test(start_paused = true)]
async fn routine_sends_hold_at_most_half_the_slots_so_a_critical_one_never_waits_for_them() {
    let (conf, plan) = fixtures::small();
    let list = timeline(&conf, &plan, &TimelineOptions::default());
    let critical = list.iter().find(|a| a.priority == Priority::Critical).unwrap().clone();
    let routine = list.iter().find(|a| a.priority == Priority::Routine).unwrap().clone();
    let t = critical.fire_at;
    // Ten routine sends due a second before it, all hanging (a slow homeserver).
    let mut actions: Vec<Action> = (0..10)
        .map(|i| Action {
            id: format!("routine-{i}"),
            instant: t - Duration::seconds(1),
            fire_at: t - Duration::seconds(1),
            deadline: t + Duration::hours(1),
            ..routine.clone()
        })
        .collect();
    actions.push(critical.clone());
    let clock = Clock::starting_at(t - Duration::minutes(1));
    let mut fake = Fake::new(clock);
    fake.hang.extend(actions.iter().filter(|a| a.priority == Priority::Routine).map(|a| a.id.clone()));
    let fake = Arc::new(fake);
    let dir = tempfile::tempdir().unwrap();
    let (_tx, rx) = watch::channel(Arc::new(actions));
    let four = RetryOptions { max_in_flight: 4, ..RetryOptions::default() };
    Runner::new(fake.clone(), store(&dir), clock, four).run(rx, at(&clock, t + Duration::seconds(5))).await.unwrap();
    let calls = fake.calls();
    let started_routine = calls.iter().filter(|c| c.id.starts_with("routine-")).count();
    assert_eq!(started_routine, 2, "half of the four slots");
    let c = calls.iter().find(|c| c.id == critical.id).expect("the critical send went out");
    assert_eq!(c.at, t, "at its fire time, beside the two routine sends that hang");
}
