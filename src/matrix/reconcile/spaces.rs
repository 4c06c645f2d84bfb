//! Spaces: each space's `m.space.child` links brought to the plan after the build (re-ordered, moved, and the
//! links to rooms the plan no longer holds taken out once those rooms are marked cancelled). Links to rooms made in
//! this run were written during the build already. Spaces in parallel; each space's own links in order.

use futures_util::StreamExt;
use serde_json::Value;
use tracing::instrument;

use super::super::client::Homeserver;
use super::super::fanout::{all, fan_out};
use super::report::{ObjectReport, Status};
use super::retire::retire;
use super::{Options, Run};
use crate::plan::Plan;
use crate::plan::desired::spaces::{self, SpaceLinks};
use crate::plan::desired::{Change, Settings};
use crate::plan::state;

/// Links every space to its planned children and retires what the plan dropped. Returns the reports of rooms
/// cancelled (or refused cancellation).
#[instrument(skip_all)]
pub async fn phase(hs: &Homeserver, plan: &Plan, s: &Settings, opts: &Options, run: &mut Run) -> Vec<ObjectReport> {
    if s.members_only {
        return Vec::new();
    }
    let mut work: Vec<(String, String, Vec<Change>)> = Vec::new();
    let mut unplanned: Vec<(usize, String, Value)> = Vec::new();
    for space in plan.rooms.iter().filter(|r| r.kind.is_space()) {
        let Some(current) = run.rooms.get(&space.key) else { continue };
        let SpaceLinks { changes, unplanned: dropped } = spaces::space_links(plan, space, &run.ids, &current.state, s);
        unplanned.extend(dropped.into_iter().map(|(id, content)| (work.len(), id, content)));
        work.push((space.key.clone(), current.id.clone(), changes));
    }
    let mut dropped: Vec<String> = unplanned.iter().map(|(_, k, _)| k.clone()).collect();
    dropped.sort();
    dropped.dedup();
    let limit = spaces::cancel_limit(plan, opts.max_cancel);
    let mut reports = Vec::new();
    if dropped.len() > limit {
        // An empty or truncated export must not cancel a conference: refuse, say so, touch nothing.
        tracing::error!(rooms = dropped.len(), limit, "refusing to cancel this many rooms at once; check the schedule, or raise the limit (--max-cancel)");
        for room_id in dropped.drain(..) {
            let error = format!("not cancelled: {} rooms would be, more than the limit of {limit}", limit + 1);
            reports.push(ObjectReport { key: format!("(room {room_id})"), alias: String::new(), room_id: Some(room_id), status: Status::Failed { error } });
        }
    }
    let retired = all(dropped, opts.concurrency, |room_id| async move {
        let (report, done) = retire(hs, &s.conference, plan, &room_id, opts.dry_run).await;
        (room_id, report, done)
    })
    .await;
    for (room_id, report, done) in retired {
        reports.extend(report);
        if done {
            for (i, _, content) in unplanned.iter().filter(|(_, k, _)| *k == room_id) {
                if let Some((_, _, changes)) = work.get_mut(*i) {
                    changes.push(Change { item: state::removed("m.space.child", &room_id), from: Some(content.clone()) });
                }
            }
        }
    }
    let mut sent = fan_out(work.into_iter().filter(|(_, _, c)| !c.is_empty()), opts.concurrency, |(key, space_id, changes)| async move {
        let result = super::send(hs, &space_id, &changes, opts.dry_run).await;
        (key, changes, result)
    });
    while let Some((key, changes, result)) = sent.next().await {
        if let Some(report) = run.reports.get_mut(&key) {
            report.merge(&changes, &result);
        }
    }
    reports
}
