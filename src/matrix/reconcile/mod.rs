//! Reconcile: read what exists on the homeserver, compare it with the plan, and send only the differences. What a
//! room should carry is decided in `plan::desired`; the phases here only observe and send:
//!
//! 1. `locate`: find every planned room by its alias and check its locator.
//! 2. build, in creation order (a space after the rooms it lists from its creation on, a room that names its space
//!    after the space): `create` what is missing (with everything known in `createRoom`, a room that names an
//!    existing space linked into it right away), `update` what exists.
//! 3. `spaces`: each space's links follow the plan; `retire` rooms the plan no longer holds (kept, marked
//!    cancelled, taken out of the space; never deleted).
//! 4. `members`: invites and withdrawals, e-mail invites (`email`), then each room's managed record.
//! 5. `report`: what happened, object by object, and the request counts.
//!
//! A second run with no schedule change writes nothing. Failures are collected per object; the run goes on and
//! ends with a summary. Every phase fans out through `matrix::fanout`, bounded by the configured concurrency.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tracing::instrument;

use super::client::{Homeserver, MatrixError, StateMap};
use super::identity::IdentityOptions;
use crate::plan::desired::members::RoomMembers;
pub use crate::plan::desired::moment::Moment;
use crate::plan::desired::{Change, Settings};
use crate::plan::managed::{Links, Managed};
use crate::plan::widgets::WidgetContext;
use crate::plan::{Plan, PlannedRoom};

mod create;
mod email;
pub(crate) mod locate;
mod members;
mod report;
mod retire;
mod spaces;
mod update;

pub use crate::plan::desired::members::MemberAction;
pub use report::{FieldChange, MemberReport, ObjectReport, Report, Status};

/// What a run touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Rooms, spaces, widgets, memberships: everything.
    #[default]
    All,
    /// Only power levels, the managed record and invites of rooms that exist (`stagehand invite`).
    Members,
}

/// How a run goes: the matrix layer's own options, built once by the caller.
#[derive(Debug, Clone)]
pub struct Options {
    pub room_version: String,
    pub concurrency: usize,
    /// Compare only; write nothing.
    pub dry_run: bool,
    /// Kick joined members the schedule no longer puts in a room (otherwise only their power is lowered).
    pub kick_removed: bool,
    /// Widgets to put in rooms; none when `None`.
    pub widgets: Option<WidgetContext>,
    /// Invite planned members (power levels and the managed list are set either way).
    pub invite: bool,
    /// Most rooms one run may cancel (default: a fifth of the talk rooms, at least 10).
    pub max_cancel: Option<usize>,
    /// Where e-mail invites go; people with only an e-mail address are reported uncontactable without it.
    pub identity_server: Option<IdentityOptions>,
    pub scope: Scope,
}

/// A planned room as found or made in this run.
pub struct Room {
    pub id: String,
    /// Its state as the run left it.
    pub state: StateMap,
    /// The managed record as it was before this run.
    pub previous: Managed,
    /// Whether every change to the room went through (otherwise its record is left as it was).
    pub ok: bool,
    /// The membership work decided for it.
    pub members: RoomMembers,
}

/// The link a space needs to a room made just now: sent by the build while other rooms are being created.
pub struct Link {
    space: String,
    space_id: String,
    change: Change,
}

/// What the build did to one room.
pub struct Built {
    report: ObjectReport,
    room: Option<Room>,
    link: Option<Link>,
}

/// The run so far: rooms found or made, by plan key.
#[derive(Default)]
pub struct Run {
    pub ids: HashMap<String, String>,
    pub rooms: HashMap<String, Room>,
    pub reports: HashMap<String, ObjectReport>,
}

/// Reconciles the homeserver with the plan (or, with `dry_run`, reports what it would do), before the event.
pub async fn reconcile(hs: &Homeserver, plan: &Plan, opts: &Options) -> Report {
    reconcile_at(hs, plan, opts, Moment::default).await
}

/// Reconciles the homeserver with the plan as it stands at a moment of the event: what the live timeline has done
/// by then (rooms opened, the live talk suggested and maximised) is kept, not undone. `moment` is asked once every
/// room has been read, so a room the runner changed while this reconcile was reading is judged by a moment that
/// includes the change (a moment taken at the start would take a go-live of the meantime back); a change the runner
/// makes after the reads is seen neither in the rooms nor in the moment, and left alone.
pub async fn reconcile_at(hs: &Homeserver, plan: &Plan, opts: &Options, moment: impl FnOnce() -> Moment) -> Report {
    let started = Instant::now();
    let base = report::Snapshot::of(&hs.counters);
    let mut progress = report::Progress::new(plan.rooms.len() as u64 * 2);
    let mut found = locate_all(hs, plan, opts, &mut progress).await;
    let s = settings(hs, plan, opts, &moment());
    let links = locate::links(&found);
    let mut run = Run::default();
    build(hs, plan, &s, opts, &links, &mut found, &mut run, &mut progress).await;
    let cancelled = spaces::phase(hs, plan, &s, opts, &mut run).await;
    let outcome = members::phase(hs, plan, opts, &run).await;
    for (key, changes, result) in members::records(hs, plan, opts, &run, &outcome, &links).await {
        if let Some(report) = run.reports.get_mut(&key) {
            report.merge(&changes, &result);
        }
    }
    progress.finish();
    let mut objects: Vec<ObjectReport> = plan.rooms.iter().filter_map(|r| run.reports.remove(&r.key)).chain(cancelled).collect();
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Report::new(objects, outcome.actions, &base, &report::Snapshot::of(&hs.counters), started)
}

/// The desired state's settings for a run of this connection, plan and options at a moment.
pub fn settings(hs: &Homeserver, plan: &Plan, opts: &Options, moment: &Moment) -> Settings {
    Settings {
        conference: plan.conference.clone(),
        server_name: hs.server_name.clone(),
        bot: hs.user_id.clone(),
        room_version: opts.room_version.clone(),
        widgets: opts.widgets.clone(),
        kick_removed: opts.kick_removed,
        email_invites: opts.identity_server.is_some(),
        members_only: opts.scope == Scope::Members,
        moment: moment.clone(),
        parent_links: plan.parent_links,
    }
}

#[instrument(skip_all)]
async fn locate_all(hs: &Homeserver, plan: &Plan, opts: &Options, progress: &mut report::Progress) -> HashMap<String, locate::Found> {
    let mut found = HashMap::new();
    let mut located = super::fanout::fan_out(&plan.rooms, opts.concurrency, |room| async move {
        (room.key.clone(), locate::locate(hs, &plan.conference, room).await)
    });
    while let Some((key, f)) = located.next().await {
        found.insert(key, f);
        progress.step("locate");
    }
    found
}

/// Creates or updates every planned room, level by level in creation order ([`Plan::creation_levels`]): a room
/// that names its space after the space, a space after the rooms that do not name it, so each `createRoom` carries
/// every link whose other end exists.
#[instrument(skip_all)]
#[allow(clippy::too_many_arguments)]
async fn build(
    hs: &Homeserver,
    plan: &Plan,
    s: &Settings,
    opts: &Options,
    links: &Links,
    found: &mut HashMap<String, locate::Found>,
    run: &mut Run,
    progress: &mut report::Progress,
) {
    let levels = plan.creation_levels();
    let max_level = levels.values().copied().max().unwrap_or(0);
    // Rooms that exist already, by key: a room whose space comes later in the build still knows the space's id.
    let located: HashMap<String, String> =
        found.iter().filter_map(|(k, f)| Some((k.clone(), f.as_ref().ok()?.as_ref()?.room_id.clone()))).collect();
    for level in 0..=max_level {
        let rooms: Vec<(&PlannedRoom, locate::Found)> = plan
            .rooms
            .iter()
            .filter(|r| levels.get(r.key.as_str()) == Some(&level))
            .map(|r| (r, found.remove(&r.key).unwrap_or(Ok(None))))
            .collect();
        let (done, linked) = {
            let (earlier, ids, located) = (&run.rooms, &run.ids, &located);
            let built = super::fanout::fan_out(rooms, opts.concurrency, |(room, f)| {
                let key = room.parent.as_deref();
                let parent = key.filter(|_| plan.carries_parent_link(room)).and_then(|p| earlier.get(p).map(|r| (p, r)));
                let parent_id = key.and_then(|p| ids.get(p).or_else(|| located.get(p))).map(String::as_str);
                let children = plan.listed_at_creation(room, ids);
                build_room(hs, room, f, Family { parent, parent_id, children }, s, opts, links)
            });
            build_and_link(hs, built, opts.concurrency, progress).await
        };
        for (l, result) in linked {
            if let Some(space) = run.rooms.get_mut(&l.space)
                && result.is_ok()
            {
                space.state.insert((l.change.item.event_type.clone(), l.change.item.state_key.clone()), l.change.item.content.clone());
            }
            if let Some(report) = run.reports.get_mut(&l.space) {
                report.merge(std::slice::from_ref(&l.change), &result);
            }
        }
        for b in done {
            if let Some(room) = b.room {
                run.ids.insert(b.report.key.clone(), room.id.clone());
                run.rooms.insert(b.report.key.clone(), room);
            }
            run.reports.insert(b.report.key.clone(), b.report);
        }
    }
}

/// A room's relations as the build knows them when it comes to the room.
pub struct Family<'a> {
    /// Its space, when the room names it and the space was found or made earlier in this run (key and room).
    pub parent: Option<(&'a str, &'a Room)>,
    /// Its space's id, when the space exists (made earlier in this run, or found).
    pub parent_id: Option<&'a str>,
    /// The rooms a space lists from its creation on: made or found earlier in this run, not naming it.
    pub children: Vec<(&'a PlannedRoom, &'a str)>,
}

/// Drives one level's builds and, alongside them, the links of rooms made into their spaces (at most `limit` links
/// in flight, apart from the builds), so that a space's links queue on the server while creation goes on.
async fn build_and_link(
    hs: &Homeserver,
    mut built: impl futures_util::Stream<Item = Built> + Unpin,
    limit: usize,
    progress: &mut report::Progress,
) -> (Vec<Built>, Vec<(Link, Result<(), MatrixError>)>) {
    let mut done = Vec::new();
    let mut linked = Vec::new();
    let mut waiting: VecDeque<Link> = VecDeque::new();
    let mut linking = FuturesUnordered::new();
    let mut building = true;
    loop {
        while linking.len() < limit.max(1)
            && let Some(l) = waiting.pop_front()
        {
            linking.push(async move {
                let result = send(hs, &l.space_id, std::slice::from_ref(&l.change), false).await;
                (l, result)
            });
        }
        tokio::select! {
            b = built.next(), if building => match b {
                Some(mut b) => {
                    progress.step("build");
                    waiting.extend(b.link.take());
                    done.push(b);
                }
                None => building = false,
            },
            Some(l) = linking.next(), if !linking.is_empty() => linked.push(l),
            else => break,
        }
    }
    (done, linked)
}

/// One room: created when missing, updated when found, reported when it cannot be used.
async fn build_room(hs: &Homeserver, room: &PlannedRoom, found: locate::Found, family: Family<'_>, s: &Settings, opts: &Options, links: &Links) -> Built {
    let unusable = |status| Built { report: ObjectReport::of(room, None, status), room: None, link: None };
    match found {
        Err(status) => unusable(status),
        Ok(Some(l)) => update::update(hs, room, l, s, family.parent_id, links, opts.dry_run).await,
        Ok(None) if s.members_only => unusable(Status::failed(format!("{} does not exist yet; run `stagehand apply` first", room.alias))),
        Ok(None) if opts.dry_run => unusable(Status::Create),
        Ok(None) => create::create(hs, room, s, links, family).await,
    }
}

/// Sends state changes to one room in order (nothing in a dry run), logging each as from -> to.
pub(crate) async fn send(hs: &Homeserver, room_id: &str, changes: &[Change], dry_run: bool) -> Result<(), MatrixError> {
    send_ids(hs, room_id, changes, dry_run).await.map(|_| ())
}

/// [`send`], returning the event ids.
pub(crate) async fn send_ids(hs: &Homeserver, room_id: &str, changes: &[Change], dry_run: bool) -> Result<Vec<String>, MatrixError> {
    let mut ids = Vec::new();
    if dry_run {
        return Ok(ids);
    }
    for c in changes {
        let (was, now) = (c.from.as_ref().map(report::redact).unwrap_or_default(), report::redact(&c.item.content));
        tracing::info!(room_id, event_type = %c.item.event_type, state_key = %c.item.state_key, from = %was, to = %now, "update");
        ids.push(hs.put_state(room_id, &c.item).await?);
    }
    Ok(ids)
}
