//! When the time-critical actions fire. A homeserver persists events one after another: one Synapse process takes
//! about 45 a second here, so the 80 go-live events of a FOSDEM half hour sent in its first second land over two
//! seconds, the last ones two seconds late, and sending more at once only moves the queue into the homeserver. So the
//! actions due together are started ahead of their instant, no faster than [`BurstOptions::rate`] and no earlier
//! than [`BurstOptions::max_lead_seconds`] before it, so that the last of them goes out at its instant and none
//! after; the go-live ones (the call maximised, the notice) go last, closest to it, the countdown messages before
//! them. Routine actions that would fire while a burst lands are moved just before or after it. Pure, and a function
//! of the whole list, so a recomputed list keeps the fire times of what did not change
//! (to the gap between two sends, when a neighbour moved).

use chrono::{DateTime, Duration, Utc};

use super::actions::{Action, ActionKind, Priority, seconds};
use super::options::BurstOptions;

/// How close to its instant an action of a burst goes: the lower, the closer.
fn closeness(kind: ActionKind) -> u8 {
    match kind {
        ActionKind::Maximise => 0,
        ActionKind::LiveNotice => 1,
        ActionKind::LastMinute => 2,
        ActionKind::EndingSoon => 3,
        ActionKind::LiveSoon => 4,
        ActionKind::BackstageLiveSoon => 5,
        _ => 6,
    }
}

/// Sets the fire time of every time-critical action: from the last instant back, each fires at its instant or one
/// gap before the next one fired, whichever is earlier, but never more than the lead before its instant (a burst
/// bigger than the lead allows queues after it, as without pacing). Then moves the routine actions that would fire
/// while a burst lands out of its window ([`clear_windows`]).
pub(crate) fn pace(actions: &mut [Action], burst: &BurstOptions) {
    if burst.rate == 0 {
        return;
    }
    // Whole milliseconds: the runner's timer has no finer grain.
    let gap = Duration::milliseconds((1000 / i64::from(burst.rate)).max(1));
    let lead = seconds(burst.max_lead_seconds);
    let mut order: Vec<usize> = (0..actions.len()).filter(|&i| actions[i].priority == Priority::Critical).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&actions[a], &actions[b]);
        (y.instant, closeness(x.kind), &x.talk, &x.id).cmp(&(x.instant, closeness(y.kind), &y.talk, &y.id))
    });
    let mut free: Option<DateTime<Utc>> = None;
    for &i in &order {
        let a = &mut actions[i];
        let earliest = a.instant.checked_sub_signed(lead).unwrap_or(a.instant);
        let at = free.map_or(a.instant, |f| f.min(a.instant)).max(earliest);
        a.fire_at = at;
        free = at.checked_sub_signed(gap);
    }
    clear_windows(actions, &windows(actions, &order));
}

/// How long after its instant the homeserver is still busy with the last send of a burst.
const SETTLE_MS: i64 = 1000;

/// The spans the time-critical sends take: from each one's fire time to its instant and a settling second after,
/// merged where they touch, in order.
fn windows(actions: &[Action], critical: &[usize]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let settle = Duration::milliseconds(SETTLE_MS);
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> =
        critical.iter().map(|&i| (actions[i].fire_at, actions[i].instant.checked_add_signed(settle).unwrap_or(actions[i].instant))).collect();
    spans.sort();
    let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for (from, to) in spans {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
}

/// Moves the routine actions that would fire inside a window out of it, keeping their order and spacing: one spread
/// ahead of its instant (a reminder) as far before the window as it was from the window's end, one spread after (the
/// end of a talk: never before its instant) as far after it as it was from its start, its deadline moved along if
/// need be. So the homeserver has the go-lives to itself while they land, and the routine sends come just before and
/// after.
fn clear_windows(actions: &mut [Action], windows: &[(DateTime<Utc>, DateTime<Utc>)]) {
    if windows.is_empty() {
        return;
    }
    for a in actions.iter_mut().filter(|a| a.priority == Priority::Routine) {
        let i = windows.partition_point(|w| w.1 < a.fire_at);
        let Some(&(from, to)) = windows.get(i).filter(|w| w.0 <= a.fire_at) else { continue };
        let step = Duration::milliseconds(1);
        if !a.kind.spreads_after() {
            a.fire_at = from.checked_sub_signed(to - a.fire_at + step).unwrap_or(from);
        } else {
            a.fire_at = to.checked_add_signed(a.fire_at - from + step).unwrap_or(to);
            a.deadline = a.deadline.max(a.fire_at);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::timeline::fixtures;
    use crate::timeline::{TimelineOptions, timeline};

    fn opts(rate: u32, max_lead_seconds: u64) -> TimelineOptions {
        TimelineOptions { burst: BurstOptions { rate, max_lead_seconds }, ..TimelineOptions::default() }
    }

    #[test]
    fn a_fosdem_half_hour_goes_out_ahead_at_the_rate_the_go_lives_last_none_after_its_instant() {
        let (conf, plan) = fixtures::fosdem_2022();
        let off = timeline(&conf, &plan, &opts(0, 10));
        let paced = timeline(&conf, &plan, &opts(40, 10));
        let before: HashMap<&str, &Action> = off.iter().map(|a| (a.id.as_str(), a)).collect();
        assert_eq!(paced.len(), off.len());
        let critical: Vec<&Action> = paced.iter().filter(|a| a.priority == Priority::Critical).collect();
        for a in &paced {
            let was = before[a.id.as_str()];
            match a.priority {
                // Unmoved, or moved out of a burst: a reminder earlier, the end of a talk later (never before it).
                Priority::Routine if !a.kind.spreads_after() => assert!(a.fire_at <= was.fire_at, "{}", a.id),
                Priority::Routine => {
                    assert!(a.fire_at >= was.fire_at && a.fire_at >= a.instant && a.deadline >= a.fire_at, "{}", a.id)
                }
                Priority::Critical => {
                    assert_eq!(was.fire_at, a.instant, "without pacing at its instant: {}", a.id);
                    assert!(a.fire_at <= a.instant && a.fire_at >= a.instant - Duration::seconds(10), "{}", a.id);
                    assert!(a.deadline >= a.instant, "{}", a.id);
                }
            }
        }
        // Never two critical sends closer than the gap: the homeserver is given no more than the rate.
        let mut fires: Vec<DateTime<Utc>> = critical.iter().map(|a| a.fire_at).collect();
        fires.sort();
        assert!(fires.windows(2).all(|w| w[1] - w[0] >= Duration::milliseconds(25)), "a gap under 25 ms");
        // The busiest instant: every go-live of it after every countdown of it, the last one at the instant.
        let mut count: HashMap<DateTime<Utc>, usize> = HashMap::new();
        for a in &critical {
            *count.entry(a.instant).or_default() += 1;
        }
        let (&busiest, &n) = count.iter().max_by_key(|(t, n)| (**n, **t)).unwrap();
        assert!(n > 40, "{n} critical actions at {busiest}");
        let burst: Vec<&Action> = critical.iter().copied().filter(|a| a.instant == busiest).collect();
        let last = burst.iter().map(|a| a.fire_at).max().unwrap();
        assert_eq!(last, busiest, "the last of the burst goes at the instant");
        let go_live = |a: &Action| matches!(a.kind, ActionKind::Maximise | ActionKind::LiveNotice);
        let first_go_live = burst.iter().filter(|a| go_live(a)).map(|a| a.fire_at).min();
        let last_other = burst.iter().filter(|a| !go_live(a)).map(|a| a.fire_at).max();
        if let (Some(g), Some(o)) = (first_go_live, last_other) {
            assert!(o < g, "countdowns before the go-lives");
        }
        let first = burst.iter().map(|a| a.fire_at).min().unwrap();
        assert_eq!(last - first, Duration::microseconds(25_000) * i32::try_from(n - 1).unwrap(), "one gap apart");
        // No routine send while the burst lands (from its first send to a second after its instant); those that
        // would have fired then come right before or after.
        let landing = |t: DateTime<Utc>| t >= first && t <= busiest + Duration::seconds(1);
        assert!(!paced.iter().any(|a| a.priority == Priority::Routine && landing(a.fire_at)));
        let moved = paced.iter().filter(|a| a.priority == Priority::Routine && landing(before[a.id.as_str()].fire_at)).count();
        assert!(moved > 0, "the ends of the talks before it were due in it");
    }

    #[test]
    fn a_burst_bigger_than_the_lead_starts_at_the_lead_and_the_last_of_a_small_one_fires_at_its_instant() {
        let (conf, plan) = fixtures::small();
        let mut list = timeline(&conf, &plan, &opts(0, 0));
        let first = list.iter().position(|a| a.priority == Priority::Critical).unwrap();
        let at = list[first].instant;
        // Two hundred copies due at one instant an hour later, with a one-second lead at 40 a second.
        let later = at + Duration::hours(1);
        let copies: Vec<Action> = (0..200)
            .map(|i| Action { id: format!("copy{i:03}"), talk: format!("t{i:03}"), instant: later, fire_at: later, ..list[first].clone() })
            .collect();
        list.extend(copies);
        pace(&mut list, &BurstOptions { rate: 40, max_lead_seconds: 1 });
        assert_eq!(list[first].fire_at, at, "the last of its small burst: at its instant");
        let fires: Vec<DateTime<Utc>> = list.iter().filter(|a| a.id.starts_with("copy")).map(|a| a.fire_at).collect();
        assert_eq!(fires.iter().max(), Some(&later));
        let earliest = later - Duration::seconds(1);
        assert_eq!(fires.iter().min(), Some(&earliest));
        // 41 paced (1 s at 40 a second, both ends), the other 159 at the lead, queued as without pacing.
        assert_eq!(fires.iter().filter(|&&t| t == earliest).count(), 160);
    }
}
