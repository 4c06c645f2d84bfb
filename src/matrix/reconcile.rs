//! Reconcile: read what exists on the homeserver, compare it with the plan, and send only the differences.
//!
//! 1. Locate every planned room by its alias and check its locator (a room another program owns is reported, never
//!    touched). `createRoom` carries the alias, so a room created just before a crash is found again, not duplicated.
//! 2. Create missing rooms top-down (root, subspaces, the rest) with everything in `createRoom`, including the
//!    `m.space.parent`; update existing ones field by field.
//! 3. Bring each space's `m.space.child` list to the plan: add, re-order, and take out what the plan no longer holds.
//! 4. A talk room taken out of its space because its talk was cancelled is kept, marked cancelled, not deleted.
//!
//! A second run with no schedule change reads and writes nothing else. Failures are collected per object; the run
//! goes on and ends with a summary.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::client::{Counters, Homeserver, MatrixError, StateMap, state_map};
use super::people::{self, EmailRecord, IdentityServer, Managed, THIRD_PARTY_INVITE};
use crate::config::IdentityServerConfig;
use crate::plan::state::{self, LOCATOR, MANAGED, StateItem};
use crate::plan::widgets::{self, WidgetContext};
use crate::plan::{Plan, PlannedRoom};

/// State changes to one room: the new item and what it replaces.
type Changes = Vec<(StateItem, Option<Value>)>;

/// What a run touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Rooms, spaces, widgets, memberships: everything.
    #[default]
    All,
    /// Only power levels, the managed record and invites of rooms that exist (`stagehand invite`).
    Members,
}

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
    pub identity_server: Option<IdentityServerConfig>,
    pub scope: Scope,
}

/// A change to one state event.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldChange {
    pub event_type: String,
    pub state_key: String,
    pub from: Option<Value>,
    pub to: Value,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    Create,
    Update { changes: Vec<FieldChange> },
    Unchanged,
    /// The alias belongs to a room that is not ours (no or another locator).
    Foreign { reason: String },
    Failed { error: String },
    /// Not in the plan any more; kept, marked and taken out of its space.
    Cancelled,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectReport {
    pub key: String,
    pub alias: String,
    pub room_id: Option<String>,
    #[serde(flatten)]
    pub status: Status,
}

/// What happened (or, in a dry run, would happen) to one person in one room.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MemberAction {
    pub room: String,
    pub user_id: String,
    /// `invite`, `revoke` (an invite withdrawn), `remove` (a member kicked, only with people.kick_removed),
    /// `declined` (left or refused an invite: not invited again), `email_invite`, `email_revoke`,
    /// `uncontactable` (no Matrix ID, and no identity server to invite the e-mail address), `failed`.
    /// For e-mail invites `user_id` is the person's name and a masked address.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl MemberAction {
    fn new(room: &str, user_id: impl Into<String>, action: &str) -> MemberAction {
        MemberAction { room: room.to_string(), user_id: user_id.into(), action: action.to_string(), error: None }
    }

    fn failed(room: &str, user_id: impl Into<String>, error: impl std::fmt::Display) -> MemberAction {
        MemberAction { room: room.to_string(), user_id: user_id.into(), action: "failed".into(), error: Some(error.to_string()) }
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    /// Membership changes that failed (counted apart from objects).
    pub membership_failures: usize,
    pub invites: u64,
    /// People in this run who could not be invited at all (no Matrix ID, no e-mail invite possible).
    pub uncontactable: usize,
    pub memberships: Vec<MemberAction>,
    pub objects: Vec<ObjectReport>,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub cancelled: usize,
    pub reads: u64,
    pub writes: u64,
    pub state_events: u64,
    pub rooms_created: u64,
    /// State events written inside createRoom (initial state and power levels).
    pub initial_state_events: u64,
    pub rate_limited: u64,
    pub rate_limited_seconds: f64,
    pub seconds: f64,
}

impl Report {
    pub fn summary(&self) -> String {
        format!(
            "{} created, {} updated, {} unchanged, {} cancelled, {} failed; {} rooms and {} state events written, {} invites, {} membership failures, {} uncontactable, {} reads, {} rate-limit waits ({:.1} s), {:.1} s",
            self.created,
            self.updated,
            self.unchanged,
            self.cancelled,
            self.failed,
            self.rooms_created,
            self.state_events,
            self.invites,
            self.membership_failures,
            self.uncontactable,
            self.reads,
            self.rate_limited,
            self.rate_limited_seconds,
            self.seconds
        )
    }
}

struct Located {
    room_id: String,
    state: StateMap,
    /// Stagehand's record in the room, as found.
    managed: Managed,
    /// Third-party invite tokens taken up since the last run: token -> Matrix ID.
    taken: HashMap<String, String>,
}

/// A room after its own state was brought to the plan; its managed record is written at the end of the run.
struct Current {
    room_id: String,
    state: StateMap,
    /// The managed record as it was before this run.
    previous: Managed,
    /// Whether every change to the room went through (otherwise its record is left as it was).
    ok: bool,
}


/// Exact comparison for relations and the locator; subset comparison for the rest.
fn satisfied(item: &StateItem, current: Option<&Value>) -> bool {
    if matches!(item.event_type.as_str(), LOCATOR | MANAGED | widgets::WIDGET | "m.space.child" | "m.space.parent") {
        return current.map_or(item.content.as_object().is_some_and(|o| o.is_empty()), |c| *c == item.content);
    }
    state::satisfies(&item.content, current)
}

/// Each planned room's distance from the root, by key.
fn depths(plan: &Plan) -> HashMap<&str, usize> {
    let parents: HashMap<&str, Option<&str>> = plan.rooms.iter().map(|r| (r.key.as_str(), r.parent.as_deref())).collect();
    plan.rooms
        .iter()
        .map(|r| {
            let mut d = 0;
            let mut parent = r.parent.as_deref();
            // Bounded: a plan is at most a few levels deep; a cycle would be a planning bug, not a hang.
            while let Some(p) = parent.filter(|_| d <= 16) {
                d += 1;
                parent = parents.get(p).copied().flatten();
            }
            (r.key.as_str(), d)
        })
        .collect()
}

struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    done: u64,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg:>10} [{bar:40}] {pos}/{len} rooms ({eta})") {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Progress { bar, total, done: 0 }
    }

    fn step(&mut self, phase: &str) {
        self.done += 1;
        match &self.bar {
            Some(bar) => {
                bar.set_message(phase.to_string());
                bar.inc(1);
            }
            None => {
                if self.done % 50 == 0 || self.done == self.total {
                    tracing::info!(phase, done = self.done, total = self.total, "progress");
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Reconciles the homeserver with the plan (or, with `dry_run`, reports what it would do).
pub async fn reconcile(hs: &Homeserver, plan: &Plan, opts: &Options) -> Report {
    let started = Instant::now();
    let c = &hs.counters;
    let base = [&c.reads, &c.writes, &c.state_events, &c.rooms_created, &c.rate_limited, &c.rate_limited_ms, &c.initial_state_events, &c.invites].map(Counters::get);
    let conference = plan.conference.clone();
    let sem = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut progress = Progress::new(plan.rooms.len() as u64 * 2);

    // 1. Locate.
    let mut located: HashMap<String, Result<Option<Located>, Status>> = HashMap::new();
    let mut set = JoinSet::new();
    for room in &plan.rooms {
        let (hs, sem, room, conference) = (hs.clone(), sem.clone(), room.clone(), conference.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let found = locate(&hs, &conference, &room).await;
            (room.key.clone(), found)
        });
    }
    while let Some(joined) = set.join_next().await {
        if let Ok((key, found)) = joined {
            located.insert(key, found);
            progress.step("locate");
        }
    }
    // People known only by e-mail who took an invite up: from now on their Matrix ID counts like one from the
    // schedule (power, attendance, invites to other rooms).
    let mut found: Vec<(&String, &Located)> = located.iter().filter_map(|(k, l)| l.as_ref().ok().and_then(Option::as_ref).map(|l| (k, l))).collect();
    // In plan-key order, so that "the first" of two conflicting links is the same every run.
    found.sort_by_key(|(k, _)| *k);
    let links = people::links(found.iter().map(|(_, l)| (&l.managed, &l.taken)));
    let mut linked = plan.clone();
    people::apply_links(&mut linked, &links);
    let plan = &linked;

    // 2. Create or update, top-down so parents have ids before their children.
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut states: HashMap<String, Current> = HashMap::new();
    let mut reports: HashMap<String, ObjectReport> = HashMap::new();
    let depth = depths(plan);
    let max_depth = depth.values().copied().max().unwrap_or(0);
    for level in 0..=max_depth {
        let mut set = JoinSet::new();
        for room in plan.rooms.iter().filter(|r| depth.get(r.key.as_str()) == Some(&level)) {
            let found = match located.remove(&room.key).unwrap_or(Ok(None)) {
                Ok(None) if opts.scope == Scope::Members => {
                    Err(Status::Failed { error: format!("{} does not exist yet; run `stagehand apply` first", room.alias) })
                }
                found => found,
            };
            let parent_id = room.parent.as_ref().and_then(|p| ids.get(p).cloned());
            let (hs, sem, room, opts, conference) = (hs.clone(), sem.clone(), room.clone(), opts.clone(), conference.clone());
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                ensure(&hs, &conference, &room, found, parent_id, &opts).await
            });
        }
        while let Some(joined) = set.join_next().await {
            let Ok((report, state)) = joined else { continue };
            if let (Some(id), Some(current)) = (&report.room_id, state) {
                ids.insert(report.key.clone(), id.clone());
                states.insert(report.key.clone(), current);
            }
            reports.insert(report.key.clone(), report);
            progress.step("build");
        }
    }

    // 3. Space children follow the plan; 4. a room no longer planned is marked cancelled before it is taken out of
    // its space, so a room whose marking failed stays linked and the next run finds it and tries again.
    let planned_ids: HashMap<&str, &str> = ids.iter().map(|(k, v)| (v.as_str(), k.as_str())).collect();
    let mut work: Vec<(String, String, Changes)> = Vec::new();
    let mut unplanned: Vec<(usize, String, Value)> = Vec::new();
    for space in plan.rooms.iter().filter(|r| r.kind.is_space() && opts.scope == Scope::All) {
        let (Some(space_id), Some(current)) = (ids.get(&space.key), states.get(&space.key).map(|c| &c.state)) else { continue };
        let mut changes = Vec::new();
        let mut wanted: Vec<String> = Vec::new();
        for child in plan.children(&space.key) {
            let Some(child_id) = ids.get(&child.key) else { continue };
            wanted.push(child_id.clone());
            let item = state::child_event(child_id, &child.order, &hs.server_name, false);
            let cur = current.get(&(item.event_type.clone(), item.state_key.clone()));
            if !satisfied(&item, cur) {
                changes.push((item, cur.cloned()));
            }
        }
        // A planned child that could not be located or created this run has no id: its current link cannot be told
        // from a stale one, so nothing is taken out of this space this time.
        let all_known = plan.children(&space.key).all(|c| ids.contains_key(&c.key));
        for ((t, k), content) in current {
            if all_known && t == "m.space.child" && !wanted.contains(k) && content.as_object().is_some_and(|o| !o.is_empty()) {
                if planned_ids.contains_key(k.as_str()) {
                    // Moved to another space.
                    changes.push((state::removed("m.space.child", k), Some(content.clone())));
                } else {
                    unplanned.push((work.len(), k.clone(), content.clone()));
                }
            }
        }
        work.push((space.key.clone(), space_id.clone(), changes));
    }
    let mut dropped: Vec<String> = unplanned.iter().map(|(_, k, _)| k.clone()).collect();
    dropped.sort();
    dropped.dedup();
    let mut cancelled = Vec::new();
    let mut unlink: HashSet<String> = HashSet::new();
    let talk_rooms = plan.rooms.iter().filter(|r| r.kind == crate::plan::ObjectKind::TalkRoom).count();
    let limit = opts.max_cancel.unwrap_or_else(|| (talk_rooms / 5).max(10));
    if dropped.len() > limit {
        // An empty or truncated export must not cancel a conference: refuse, say so, touch nothing.
        tracing::error!(rooms = dropped.len(), limit, "refusing to cancel this many rooms at once; check the schedule, or raise the limit (--max-cancel)");
        for room_id in dropped.drain(..) {
            cancelled.push(Some(ObjectReport {
                key: format!("(room {room_id})"),
                alias: String::new(),
                room_id: Some(room_id),
                status: Status::Failed { error: format!("not cancelled: {} rooms would be, more than the limit of {limit}", limit + 1) },
            }));
        }
    }
    for room_id in dropped {
        let (report, done) = retire(hs, &conference, plan, &room_id, opts.dry_run).await;
        cancelled.push(report);
        if done {
            unlink.insert(room_id);
        }
    }
    for (i, child_id, content) in unplanned {
        if unlink.contains(&child_id)
            && let Some((_, _, changes)) = work.get_mut(i)
        {
            changes.push((state::removed("m.space.child", &child_id), Some(content)));
        }
    }
    // Spaces in parallel (bounded); each space's own links in order.
    let mut set = JoinSet::new();
    for (key, space_id, changes) in work.into_iter().filter(|(_, _, c)| !c.is_empty()) {
        let (hs, sem, dry_run) = (hs.clone(), sem.clone(), opts.dry_run);
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let result = apply_changes(&hs, &space_id, &changes, dry_run).await;
            (key, changes, result)
        });
    }
    while let Some(joined) = set.join_next().await {
        let Ok((key, changes, result)) = joined else { continue };
        if let Some(report) = reports.get_mut(&key) {
            merge_status(report, &changes, result);
        }
    }
    // 5. Memberships, then each room's managed record (last: a failed removal stays on record for the next run).
    let outcome = memberships(hs, plan, &states, &links, opts, &sem).await;
    for room in plan.rooms.iter() {
        let Some(current) = states.get(&room.key).filter(|c| c.ok || outcome.tokens.contains_key(&room.key)) else { continue };
        let record = record_of(room, current, &outcome, &links);
        let item = StateItem::new(MANAGED, "", record.to_content());
        let cur = current.state.get(&(MANAGED.to_string(), String::new()));
        if satisfied(&item, cur) || !matches!(room.kind, crate::plan::ObjectKind::TalkRoom | crate::plan::ObjectKind::Backstage | crate::plan::ObjectKind::Support) {
            continue;
        }
        let changes = vec![(item, cur.cloned())];
        let result = apply_changes(hs, &current.room_id, &changes, opts.dry_run).await;
        if let Some(report) = reports.get_mut(&room.key) {
            merge_status(report, &changes, result);
        }
    }
    let memberships = outcome.actions;
    progress.finish();

    let mut objects: Vec<ObjectReport> =
        plan.rooms.iter().filter_map(|r| reports.remove(&r.key)).chain(cancelled.into_iter().flatten()).collect();
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    let now = [&c.reads, &c.writes, &c.state_events, &c.rooms_created, &c.rate_limited, &c.rate_limited_ms, &c.initial_state_events, &c.invites].map(Counters::get);
    let delta = |i: usize| now[i] - base[i];
    let count = |f: fn(&Status) -> bool| objects.iter().filter(|o| f(&o.status)).count();
    Report {
        membership_failures: memberships.iter().filter(|m| m.action == "failed").count(),
        uncontactable: memberships.iter().filter(|m| m.action == "uncontactable").count(),
        invites: delta(7),
        memberships,
        created: count(|s| matches!(s, Status::Create)),
        updated: count(|s| matches!(s, Status::Update { .. })),
        unchanged: count(|s| matches!(s, Status::Unchanged)),
        failed: count(|s| matches!(s, Status::Failed { .. } | Status::Foreign { .. })),
        cancelled: count(|s| matches!(s, Status::Cancelled)),
        objects,
        reads: delta(0),
        writes: delta(1),
        state_events: delta(2),
        rooms_created: delta(3),
        rate_limited: delta(4),
        rate_limited_seconds: delta(5) as f64 / 1000.0,
        initial_state_events: delta(6),
        seconds: started.elapsed().as_secs_f64(),
    }
}

async fn locate(hs: &Homeserver, conference: &str, room: &PlannedRoom) -> Result<Option<Located>, Status> {
    let failed = |e: MatrixError| Status::Failed { error: e.to_string() };
    let Some(room_id) = hs.resolve_alias(&room.alias).await.map_err(failed)? else {
        return Ok(None);
    };
    let events = hs.room_state(&room_id).await.map_err(failed)?;
    let state = state_map(&events);
    let locator = state.get(&(LOCATOR.to_string(), String::new()));
    let ours = locator.is_some_and(|l| l["conference"] == conference && l["key"] == room.key.as_str());
    if !ours {
        let reason = match locator {
            None => format!("{} is {room_id}, a room without Stagehand's locator; rename the alias or the object", room.alias),
            Some(l) => format!("{} is {room_id}, which Stagehand built for {}", room.alias, l),
        };
        return Err(Status::Foreign { reason });
    }
    let managed = Managed::from_state(&state);
    let taken = people::taken_up(hs, &room_id, &events, &managed).await;
    Ok(Some(Located { room_id, state, managed, taken }))
}

/// Everything a room should carry, but its space children.
fn desired(conference: &str, room: &PlannedRoom, parent_id: Option<&str>, hs: &Homeserver, opts: &Options) -> (Vec<StateItem>, Value) {
    let mut items = state::room_state(conference, room);
    if let Some(p) = parent_id {
        items.push(state::parent_event(p, &hs.server_name));
    }
    let mut pl = state::power_levels(room, &opts.room_version, &hs.user_id);
    if let Some(ctx) = &opts.widgets {
        items.extend(widgets::widgets(room, ctx));
        if ctx.config.moderators_can_edit {
            for t in [widgets::WIDGET, widgets::LAYOUT] {
                pl["events"][t] = json!(50);
            }
        }
    }
    (items, pl)
}

async fn ensure(
    hs: &Homeserver,
    conference: &str,
    room: &PlannedRoom,
    found: Result<Option<Located>, Status>,
    parent_id: Option<String>,
    opts: &Options,
) -> (ObjectReport, Option<Current>) {
    let alias_local = room.alias.trim_start_matches('#').split(':').next().unwrap_or_default().to_string();
    let report = |room_id: Option<String>, status| ObjectReport { key: room.key.clone(), alias: room.alias.clone(), room_id, status };
    let (mut items, pl) = desired(conference, room, parent_id.as_deref(), hs, opts);
    let all = opts.scope == Scope::All;
    if !all {
        items.clear();
    }
    let located = match found {
        Err(status) => return (report(None, status), None),
        Ok(Some(l)) => l,
        Ok(None) if opts.dry_run => return (report(None, Status::Create), None),
        Ok(None) => {
            match hs.create_room(&alias_local, &opts.room_version, room.kind.is_space(), room.public, &items, &pl).await {
                Ok(room_id) => {
                    tracing::debug!(room = %room.key, room_id = %room_id, "created");
                    let mut state: StateMap = items.iter().map(|i| ((i.event_type.clone(), i.state_key.clone()), i.content.clone())).collect();
                    state.insert(("m.room.power_levels".into(), String::new()), pl);
                    let previous = Managed::from_state(&state);
                    return (report(Some(room_id.clone()), Status::Create), Some(Current { room_id, state, previous, ok: true }));
                }
                // Created by an earlier run that did not live to see the answer: adopt it.
                Err(e) if e.errcode() == Some("M_ROOM_IN_USE") => match locate(hs, conference, room).await {
                    Ok(Some(l)) => l,
                    Ok(None) => return (report(None, Status::Failed { error: e.to_string() }), None),
                    Err(status) => return (report(None, status), None),
                },
                Err(e) => return (report(None, Status::Failed { error: e.to_string() }), None),
            }
        }
    };
    let Located { room_id, mut state, managed: previous, .. } = located;
    let mut changes: Vec<(StateItem, Option<Value>)> = Vec::new();
    let planned_widgets: Vec<String> = items.iter().filter(|i| i.event_type == widgets::WIDGET).map(|i| i.state_key.clone()).collect();
    let items_keys: Vec<&str> = planned_widgets.iter().map(String::as_str).collect();
    // The managed record is written after the memberships, at the end of the run.
    for item in items.into_iter().filter(|i| i.event_type != MANAGED) {
        let cur = state.get(&(item.event_type.clone(), item.state_key.clone()));
        if !satisfied(&item, cur) {
            changes.push((item, cur.cloned()));
        }
    }
    // Power levels for the room's own version (a room built as v12 stays v12 whatever the config says now).
    let version = state
        .get(&("m.room.create".to_string(), String::new()))
        .and_then(|c| c["room_version"].as_str())
        .unwrap_or("1")
        .to_string();
    let pl = if state.contains_key(&("m.room.create".to_string(), String::new())) && version != opts.room_version {
        desired(conference, room, parent_id.as_deref(), hs, &Options { room_version: version.clone(), ..opts.clone() }).1
    } else {
        pl
    };
    let pl_key = ("m.room.power_levels".to_string(), String::new());
    let cur_pl = state.get(&pl_key);
    // People Stagehand empowered earlier whom the plan no longer names, or names at no power, lose their power.
    let planned_users = &pl["users"];
    let users_default = cur_pl.and_then(|p| p["users_default"].as_i64()).unwrap_or(0);
    // Nobody at or above the bot's own level can be lowered by it (a room creator in v12 outranks everyone).
    let bot_level = match cur_pl.and_then(|p| p["users"].get(&hs.user_id)).and_then(Value::as_i64) {
        Some(level) => level,
        None if state::creators_are_privileged(&version) => i64::MAX,
        None => users_default,
    };
    let mut stale: Vec<String> = previous
        .users
        .iter()
        .cloned()
        .chain(state::member_ids(room))
        .filter(|u| *u != hs.user_id && planned_users.get(u).is_none())
        .filter(|u| cur_pl.and_then(|p| p["users"].get(u)).and_then(Value::as_i64).is_some_and(|level| level > users_default && level < bot_level))
        .collect();
    stale.sort();
    stale.dedup();
    if !state::satisfies(&pl, cur_pl) || !stale.is_empty() {
        let mut content = state::content_to_send("m.room.power_levels", &pl, cur_pl);
        if let Some(users) = content.get_mut("users").and_then(Value::as_object_mut) {
            for u in &stale {
                users.remove(u);
            }
        }
        changes.push((StateItem::new("m.room.power_levels", "", content), cur_pl.cloned()));
    }
    // Our widgets the plan no longer holds (a livestream switched off, widgets disabled).
    for ((t, k), content) in state.iter().filter(|_| all) {
        if t == widgets::WIDGET
            && k.starts_with(widgets::ID_PREFIX)
            && !items_keys.contains(&k.as_str())
            && content.as_object().is_some_and(|o| !o.is_empty())
        {
            changes.push((state::removed(widgets::WIDGET, k), Some(content.clone())));
        }
    }
    // A layout without planned widgets (widgets switched off).
    let layout_key = (widgets::LAYOUT.to_string(), String::new());
    if all
        && items_keys.is_empty()
        && let Some(layout) = state.get(&layout_key).filter(|c| c.as_object().is_some_and(|o| !o.is_empty()))
    {
        changes.push((state::removed(widgets::LAYOUT, ""), Some(layout.clone())));
    }
    // A parent the plan no longer names (the talk moved to another space).
    for ((t, k), content) in state.iter().filter(|_| all) {
        let parent_unknown = room.parent.is_some() && parent_id.is_none();
        if !parent_unknown && t == "m.space.parent" && Some(k) != parent_id.as_ref() && content.as_object().is_some_and(|o| !o.is_empty()) {
            changes.push((state::removed("m.space.parent", k), Some(content.clone())));
        }
    }
    let directory = if all { directory_change(hs, &room_id, room, &state, opts.dry_run).await } else { None };
    if changes.is_empty() {
        let status = match directory {
            Some(change) => Status::Update { changes: vec![change] },
            None => Status::Unchanged,
        };
        return (report(Some(room_id.clone()), status), Some(Current { room_id, state, previous, ok: true }));
    }
    let result = apply_changes(hs, &room_id, &changes, opts.dry_run).await;
    let ok = result.is_ok();
    if ok {
        for (item, _) in &changes {
            state.insert((item.event_type.clone(), item.state_key.clone()), item.content.clone());
        }
    }
    let mut r = report(Some(room_id.clone()), Status::Unchanged);
    merge_status(&mut r, &changes, result);
    if let (Some(change), Status::Update { changes }) = (directory, &mut r.status) {
        changes.push(change);
    }
    (r, Some(Current { room_id, state, previous, ok }))
}

/// Brings the room's entry in the room directory to the plan (public rooms listed, others not). Only rooms that are
/// or were public are looked at. A server that refuses to publish (`room_list_publication_rules`) gets a warning,
/// not a failure: the room itself is right.
async fn directory_change(hs: &Homeserver, room_id: &str, room: &PlannedRoom, state: &StateMap, dry_run: bool) -> Option<FieldChange> {
    let was_public = state.get(&("m.room.join_rules".to_string(), String::new())).is_some_and(|c| c["join_rule"] == "public");
    if !room.public && !was_public {
        return None;
    }
    let listed = match hs.published(room_id).await {
        Ok(listed) => listed,
        Err(e) => {
            tracing::warn!(room = %room.key, error = %e, "cannot read the room's directory visibility");
            return None;
        }
    };
    if listed == room.public {
        return None;
    }
    let change = FieldChange {
        event_type: "directory".into(),
        state_key: String::new(),
        from: Some(json!({"visibility": if listed { "public" } else { "private" }})),
        to: json!({"visibility": if room.public { "public" } else { "private" }}),
    };
    if dry_run {
        return Some(change);
    }
    match hs.publish(room_id, room.public).await {
        Ok(()) => {
            tracing::info!(room = %room.key, public = room.public, "directory visibility");
            Some(change)
        }
        Err(e) => {
            tracing::warn!(room = %room.key, error = %e, "the homeserver refused the directory change; check room_list_publication_rules");
            None
        }
    }
}

async fn apply_changes(hs: &Homeserver, room_id: &str, changes: &[(StateItem, Option<Value>)], dry_run: bool) -> Result<(), MatrixError> {
    if dry_run {
        return Ok(());
    }
    for (item, from) in changes {
        let (was, now) = (from.as_ref().map(redact).unwrap_or_default(), redact(&item.content));
        tracing::info!(room = room_id, event_type = %item.event_type, state_key = %item.state_key, from = %was, to = %now, "update");
        hs.put_state(room_id, item).await?;
    }
    Ok(())
}

fn merge_status(report: &mut ObjectReport, changes: &[(StateItem, Option<Value>)], result: Result<(), MatrixError>) {
    if let Err(e) = result {
        report.status = Status::Failed { error: e.to_string() };
        return;
    }
    let new: Vec<FieldChange> = changes
        .iter()
        .map(|(i, from)| FieldChange {
            event_type: i.event_type.clone(),
            state_key: i.state_key.clone(),
            from: from.as_ref().map(redact),
            to: redact(&i.content),
        })
        .collect();
    match &mut report.status {
        Status::Update { changes } => changes.extend(new),
        Status::Unchanged => report.status = Status::Update { changes: new },
        _ => {}
    }
}

/// A room in one of our spaces that the plan no longer holds: if it is ours, mark it cancelled and cut its parent
/// link. Never deleted: its history stays readable for those in it. Returns the report and whether the room may
/// now be taken out of the space (marked, or not ours to mark); a room that could not be read or marked stays in.
async fn retire(hs: &Homeserver, conference: &str, plan: &Plan, room_id: &str, dry_run: bool) -> (Option<ObjectReport>, bool) {
    let state = match hs.room_state(room_id).await {
        Ok(s) => state_map(&s),
        Err(e) => {
            tracing::warn!(room_id, error = %e, "cannot read a room the plan no longer holds; it stays in its space until it can be marked");
            return (None, false);
        }
    };
    let Some(locator) = state.get(&(LOCATOR.to_string(), String::new())).cloned() else { return (None, true) };
    if locator["conference"] != conference {
        return (None, true);
    }
    let key = locator["key"].as_str().unwrap_or_default().to_string();
    if plan.rooms.iter().any(|r| r.key == key) {
        return (None, true);
    }
    let mut changes = Vec::new();
    if locator.get("cancelled") != Some(&json!(true)) {
        let mut marked = locator.clone();
        if let Some(o) = marked.as_object_mut() {
            o.insert("cancelled".into(), json!(true));
        }
        changes.push((StateItem::new(LOCATOR, "", marked), Some(locator.clone())));
        let name = state.get(&("m.room.name".into(), String::new())).and_then(|n| n["name"].as_str()).unwrap_or_default();
        if !name.starts_with("Cancelled: ") {
            changes.push((StateItem::new("m.room.name", "", json!({"name": format!("Cancelled: {name}")})), None));
        }
        let topic = state.get(&("m.room.topic".into(), String::new())).and_then(|n| n["topic"].as_str()).unwrap_or_default();
        changes.push((
            StateItem::new("m.room.topic", "", json!({"topic": format!("This talk was cancelled. The room is kept for what was said in it. {topic}")})),
            None,
        ));
    }
    for ((t, k), content) in &state {
        if t == "m.space.parent" && content.as_object().is_some_and(|o| !o.is_empty()) {
            changes.push((state::removed("m.space.parent", k), Some(content.clone())));
        }
    }
    let result = apply_changes(hs, room_id, &changes, dry_run).await;
    let done = result.is_ok();
    let status = match result {
        Ok(()) => {
            tracing::info!(room = %key, room_id, "talk no longer in the schedule: kept, marked cancelled, taken out of its space");
            Status::Cancelled
        }
        Err(e) => Status::Failed { error: format!("not marked cancelled (stays in its space, retried next run): {e}") },
    };
    let alias = state.get(&("m.room.canonical_alias".into(), String::new())).and_then(|a| a["alias"].as_str()).unwrap_or_default().to_string();
    (Some(ObjectReport { key, alias, room_id: Some(room_id.to_string()), status }), done)
}

/// Content with the `token=` of widget URLs hidden, for logs and reports: backstage page tokens are secrets.
fn redact(v: &Value) -> Value {
    match v {
        Value::String(s) if s.contains("token=") => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(i) = rest.find("token=") {
                out.push_str(&rest[..i + 6]);
                out.push_str("REDACTED");
                rest = &rest[i + 6..];
                rest = &rest[rest.find('&').unwrap_or(rest.len())..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), redact(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

fn membership_of<'a>(state: &'a StateMap, user: &str) -> Option<&'a str> {
    state.get(&("m.room.member".to_string(), user.to_string())).and_then(|m| m["membership"].as_str())
}

/// What the membership phase did, for the managed records.
#[derive(Default)]
struct Outcome {
    actions: Vec<MemberAction>,
    /// New e-mail invites (or the Matrix user an address turned out to be bound to): room key -> (e-mail key, record).
    tokens: HashMap<String, Vec<(String, EmailRecord)>>,
    /// Removals not done (failed, or invites off): (room key, Matrix ID or e-mail key) stay on record.
    pending: HashSet<(String, String)>,
}

/// One membership change to make.
struct Work {
    room: String,
    room_id: String,
    user_id: String,
    action: &'static str,
    /// For someone known by e-mail: the record entry that stays until this is done.
    email_key: Option<String>,
}

impl Work {
    /// What stays on the room's record while this removal is not done.
    fn pending(&self) -> Vec<(String, String)> {
        if self.action == "invite" {
            return Vec::new();
        }
        let mut out = vec![(self.room.clone(), self.user_id.clone())];
        out.extend(self.email_key.clone().map(|k| (self.room.clone(), k)));
        out
    }
}

/// One e-mail invite to send.
struct EmailWork {
    key: String,
    address: String,
    name: String,
}

fn label(name: &str, address: &str) -> String {
    format!("{name} <{}>", people::masked(address))
}

/// Invites the planned members who are not in (or invited to) their rooms, by Matrix ID or, for people with only
/// an e-mail address, through the identity server; withdraws what the schedule no longer wants. Restart-safe: an
/// invite already sent shows in the room's state or record, and is not sent again.
async fn memberships(
    hs: &Homeserver,
    plan: &Plan,
    states: &HashMap<String, Current>,
    links: &BTreeMap<String, String>,
    opts: &Options,
    sem: &Arc<Semaphore>,
) -> Outcome {
    let mut out = Outcome::default();
    let mut work: Vec<Work> = Vec::new();
    let mut email_work: BTreeMap<String, (String, Vec<EmailWork>)> = BTreeMap::new();
    let mut email_revokes: Vec<(String, String, String, String)> = Vec::new();
    for room in &plan.rooms {
        let Some(current) = states.get(&room.key) else { continue };
        let (room_id, state, previous) = (&current.room_id, &current.state, &current.previous);
        let desired = state::member_ids(room);
        // People whose e-mail invite we sent here, by the Matrix ID they turned out to have.
        let invited_by_email: HashSet<&String> = room
            .members
            .iter()
            .filter(|m| m.emails.iter().any(|e| previous.emails.get(&people::email_key(e)).is_some_and(|r| r.token.is_some() || r.user_id.is_some())))
            .flat_map(|m| m.user_ids.iter())
            .collect();
        for uid in &desired {
            match membership_of(state, uid) {
                Some("join" | "invite" | "ban") => {}
                // They left or refused after our invite (by Matrix ID or by e-mail): their choice stands.
                Some("leave") if previous.users.contains(uid) || invited_by_email.contains(uid) => {
                    out.actions.push(MemberAction::new(&room.key, uid.clone(), "declined"))
                }
                _ => work.push(Work { room: room.key.clone(), room_id: room_id.clone(), user_id: uid.clone(), action: "invite", email_key: None }),
            }
        }
        for uid in previous.users.iter().filter(|u| !desired.contains(u) && **u != hs.user_id) {
            match membership_of(state, uid) {
                Some("invite") => work.push(Work { room: room.key.clone(), room_id: room_id.clone(), user_id: uid.clone(), action: "revoke", email_key: None }),
                Some("join") if opts.kick_removed => {
                    work.push(Work { room: room.key.clone(), room_id: room_id.clone(), user_id: uid.clone(), action: "remove", email_key: None })
                }
                _ => {}
            }
        }
        // People known only by e-mail. Everyone the room wants who has an address, with or without a Matrix ID: their e-mail invites stay.
        let wanted_keys: HashSet<String> = room.members.iter().flat_map(|m| m.emails.iter().map(|e| people::email_key(e))).collect();
        for m in room.members.iter().filter(|m| m.user_ids.is_empty() && !m.emails.is_empty()) {
            let keys: Vec<String> = m.emails.iter().map(|e| people::email_key(e)).collect();
            if keys.iter().any(|k| previous.emails.get(k).is_some_and(|r| r.token.is_some())) {
                continue;
            }
            let address = m.emails[0].clone();
            if opts.identity_server.is_none() {
                out.actions.push(MemberAction {
                    error: Some("no Matrix ID, and no identity server configured (people.identity_server) to invite the e-mail address".into()),
                    ..MemberAction::new(&room.key, label(&m.name, &address), "uncontactable")
                });
                continue;
            }
            email_work
                .entry(room.key.clone())
                .or_insert_with(|| (room_id.clone(), Vec::new()))
                .1
                .push(EmailWork { key: keys[0].clone(), address, name: m.name.clone() });
        }
        for (key, record) in previous.emails.iter().filter(|(k, _)| !wanted_keys.contains(*k)) {
            let (Some(token), None) = (&record.token, &record.user_id) else { continue };
            let live = state.get(&(THIRD_PARTY_INVITE.to_string(), token.clone())).is_some_and(|c| c.as_object().is_some_and(|o| !o.is_empty()));
            if live {
                email_revokes.push((room.key.clone(), room_id.clone(), key.clone(), token.clone()));
            }
            // Taken up since the last run, by someone the schedule has dropped meanwhile: their Matrix membership
            // goes like anyone else's.
            let Some(user) = links.get(key).filter(|u| !desired.contains(u)) else { continue };
            let action = match membership_of(state, user) {
                Some("invite") => "revoke",
                Some("join") if opts.kick_removed => "remove",
                _ => continue,
            };
            work.push(Work { room: room.key.clone(), room_id: room_id.clone(), user_id: user.clone(), action, email_key: Some(key.clone()) });
        }
    }
    // Spread invites across receivers: Synapse limits invites per receiver, so one person's many rooms go last.
    let mut per_user: HashMap<String, usize> = HashMap::new();
    let mut keyed: Vec<(usize, Work)> = work
        .into_iter()
        .map(|w| {
            let n = per_user.entry(w.user_id.clone()).or_default();
            *n += 1;
            (*n, w)
        })
        .collect();
    keyed.sort_by_key(|a| a.0);
    if opts.dry_run || !opts.invite {
        for (_, w) in keyed {
            out.pending.extend(w.pending());
            out.actions.push(MemberAction::new(&w.room, w.user_id, w.action));
        }
        for (room, (_, items)) in email_work {
            for e in items {
                out.actions.push(MemberAction::new(&room, label(&e.name, &e.address), "email_invite"));
            }
        }
        for (room, _, key, _) in email_revokes {
            out.pending.insert((room.clone(), key.clone()));
            out.actions.push(MemberAction::new(&room, format!("e-mail {key}"), "email_revoke"));
        }
        if !opts.invite {
            out.actions.retain(|a| a.action == "uncontactable");
        }
        return out;
    }
    let total = keyed.len();
    if total > 0 {
        tracing::info!(total, "sending invites and withdrawals, spread across people");
    }
    let mut set = JoinSet::new();
    for (_, w) in keyed {
        let (hs, sem) = (hs.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let result = match w.action {
                "invite" => hs.invite(&w.room_id, &w.user_id).await,
                _ => hs.kick(&w.room_id, &w.user_id, "The schedule no longer lists you for this room").await,
            };
            match result {
                Ok(()) => {
                    tracing::info!(room = %w.room, user = %w.user_id, action = w.action, "membership");
                    (MemberAction::new(&w.room, w.user_id, w.action), Vec::new())
                }
                Err(e) => {
                    tracing::warn!(room = %w.room, user = %w.user_id, action = w.action, error = %e, "membership failed");
                    let pending = w.pending();
                    (MemberAction::failed(&w.room, w.user_id, e), pending)
                }
            }
        });
    }
    let mut done = 0usize;
    while let Some(joined) = set.join_next().await {
        done += 1;
        if done.is_multiple_of(50) || done == total {
            tracing::info!(done, total, rate_limit_waits = Counters::get(&hs.counters.rate_limited), "invites progress");
        }
        match joined {
            Ok((a, pending)) => {
                out.actions.push(a);
                out.pending.extend(pending);
            }
            Err(e) => out.actions.push(MemberAction::failed("", "", format!("an invite task failed: {e}"))),
        }
    }
    // Withdrawing an e-mail invite is a state event in the room; the identity server is not involved.
    for (room, room_id, key, token) in email_revokes {
        let item = state::removed(THIRD_PARTY_INVITE, &token);
        let action = match hs.put_state(&room_id, &item).await {
            Ok(()) => MemberAction::new(&room, format!("e-mail {key}"), "email_revoke"),
            Err(e) => {
                out.pending.insert((room.clone(), key.clone()));
                MemberAction::failed(&room, format!("e-mail {key}"), e)
            }
        };
        out.actions.push(action);
    }
    // E-mail invites: one room at a time each (the new invite's token is read back from the room), rooms in parallel.
    let identity = match &opts.identity_server {
        Some(config) if !email_work.is_empty() => Some(people::register(hs, config).await),
        _ => None,
    };
    match identity {
        Some(Err(e)) => {
            tracing::error!(error = %e, "e-mail invites not sent");
            for (room, (_, items)) in email_work {
                for w in items {
                    out.actions.push(MemberAction::failed(&room, label(&w.name, &w.address), &e));
                }
            }
        }
        Some(Ok(identity)) => {
            let identity = Arc::new(identity);
            let mut set = JoinSet::new();
            for (room, (room_id, items)) in email_work {
                let Some(current) = states.get(&room) else { continue };
                let known: HashSet<String> = current.previous.emails.values().filter_map(|r| r.token.clone()).collect();
                let (hs, sem, identity) = (hs.clone(), sem.clone(), identity.clone());
                set.spawn(async move {
                    let _permit = sem.acquire_owned().await;
                    email_invites(&hs, &identity, &room, &room_id, items, known).await
                });
            }
            while let Some(joined) = set.join_next().await {
                if let Ok((room, actions, tokens)) = joined {
                    out.actions.extend(actions);
                    out.tokens.entry(room).or_default().extend(tokens);
                }
            }
        }
        None => {}
    }
    out.actions.sort_by(|a, b| (&a.room, &a.user_id).cmp(&(&b.room, &b.user_id)));
    out
}

/// Sends one room's e-mail invites in turn and reads each one's token back from the room, recording it at once.
/// An invite whose record a crash lost is adopted, not sent again, when it fits exactly one address still to invite
/// here and that address exactly one such invite (masked addresses can collide: then a second mail beats giving
/// one person another's invite). An address already bound to a Matrix ID is invited as that user by the
/// homeserver; that user is recorded for the address.
async fn email_invites(
    hs: &Homeserver,
    identity: &IdentityServer,
    room: &str,
    room_id: &str,
    items: Vec<EmailWork>,
    mut known: HashSet<String>,
) -> (String, Vec<MemberAction>, Vec<(String, EmailRecord)>) {
    let mut actions = Vec::new();
    let mut records: Vec<(String, EmailRecord)> = Vec::new();
    let unrecorded = |state: &StateMap, known: &HashSet<String>| -> Vec<(String, String)> {
        people::third_party_invites(state).into_iter().filter(|(t, _)| !known.contains(t)).collect()
    };
    let invited = |state: &StateMap| -> HashSet<String> {
        state.iter().filter(|((t, _), c)| t == "m.room.member" && c["membership"] == "invite").map(|((_, k), _)| k.clone()).collect()
    };
    let read = || async { hs.room_state(room_id).await.map(|events| state_map(&events)) };
    // Read afresh: the Matrix invites of this run changed the room's members since it was located.
    let mut state = match read().await {
        Ok(s) => s,
        Err(e) => {
            for w in items {
                actions.push(MemberAction::failed(room, label(&w.name, &w.address), &e));
            }
            return (room.to_string(), actions, records);
        }
    };
    let addresses: Vec<String> = items.iter().map(|w| w.address.clone()).collect();
    for w in items {
        let who = label(&w.name, &w.address);
        let fitting: Vec<(String, String)> = unrecorded(&state, &known).into_iter().filter(|(_, d)| people::display_fits(d, &w.address)).collect();
        if let [(token, display)] = fitting.as_slice()
            && addresses.iter().filter(|a| people::display_fits(display, a)).count() == 1
        {
            tracing::info!(room, person = %who, "e-mail invite found in the room from an earlier run; not sent again");
            known.insert(token.clone());
            let record = EmailRecord { token: Some(token.clone()), user_id: None };
            note_record(hs, room_id, &state, &w.key, &record).await;
            records.push((w.key, record));
            actions.push(MemberAction::new(room, who, "email_invite"));
            continue;
        }
        let before: HashSet<String> = people::third_party_invites(&state).into_iter().map(|(t, _)| t).collect();
        let invited_before = invited(&state);
        if let Err(e) = hs.invite_email(room_id, &identity.server, &identity.token, &w.address).await {
            tracing::warn!(room, person = %who, error = %e, "e-mail invite failed");
            actions.push(MemberAction::failed(room, who, e));
            continue;
        }
        state = match read().await {
            Ok(s) => s,
            Err(e) => {
                actions.push(MemberAction::failed(room, who, format!("invited, but {e}")));
                continue;
            }
        };
        let new: Vec<(String, String)> = unrecorded(&state, &known).into_iter().filter(|(t, _)| !before.contains(t)).collect();
        let token = match new.as_slice() {
            [(t, _)] => Some(t.clone()),
            _ => new.iter().find(|(_, d)| people::display_fits(d, &w.address)).map(|(t, _)| t.clone()),
        };
        let newly_invited: Vec<String> = invited(&state).difference(&invited_before).cloned().collect();
        let record = match (token, newly_invited.as_slice()) {
            (Some(token), _) => {
                tracing::info!(room, person = %who, "e-mail invite sent");
                known.insert(token.clone());
                actions.push(MemberAction::new(room, who, "email_invite"));
                EmailRecord { token: Some(token), user_id: None }
            }
            // The address is bound to a Matrix ID: the homeserver invited that user; from now on they count by it.
            (None, [user]) => {
                tracing::info!(room, person = %who, user = %user, "the e-mail address belongs to a Matrix user, who was invited directly");
                actions.push(MemberAction::new(room, user.clone(), "invite"));
                EmailRecord { token: None, user_id: Some(user.clone()) }
            }
            (None, _) => {
                actions.push(MemberAction::failed(room, who, "invited, but neither an e-mail invite nor a member invite appeared in the room"));
                continue;
            }
        };
        note_record(hs, room_id, &state, &w.key, &record).await;
        records.push((w.key, record));
    }
    (room.to_string(), actions, records)
}

/// Adds one e-mail invite to the room's record right away, so a crash before the end of the run cannot lose it.
async fn note_record(hs: &Homeserver, room_id: &str, state: &StateMap, key: &str, record: &EmailRecord) {
    let mut managed = Managed::from_state(state);
    managed.emails.insert(key.to_string(), record.clone());
    if let Err(e) = hs.put_state(room_id, &StateItem::new(MANAGED, "", managed.to_content())).await {
        tracing::warn!(room_id, error = %e, "could not record an e-mail invite yet; the end of the run tries again");
    }
}

/// A room's managed record after this run: the planned Matrix IDs, removals still to do, and the e-mail invites
/// with the Matrix IDs that took them up.
fn record_of(room: &PlannedRoom, current: &Current, outcome: &Outcome, links: &BTreeMap<String, String>) -> Managed {
    let pending = |k: &str| outcome.pending.contains(&(room.key.clone(), k.to_string()));
    let mut users = state::member_ids(room);
    users.extend(current.previous.users.iter().filter(|u| pending(u)).cloned());
    let new_records: HashMap<&str, &EmailRecord> =
        outcome.tokens.get(&room.key).map(|v| v.iter().map(|(k, r)| (k.as_str(), r)).collect()).unwrap_or_default();
    let mut emails = BTreeMap::new();
    for m in room.members.iter().filter(|m| !m.emails.is_empty()) {
        let keys: Vec<String> = m.emails.iter().map(|e| people::email_key(e)).collect();
        let key = keys.iter().find(|k| current.previous.emails.contains_key(*k) || new_records.contains_key(k.as_str())).unwrap_or(&keys[0]);
        let mut record: EmailRecord = current.previous.emails.get(key).cloned().unwrap_or_default();
        if let Some(new) = new_records.get(key.as_str()) {
            record.token = new.token.clone().or(record.token);
            record.user_id = new.user_id.clone().or(record.user_id);
        }
        if record.user_id.is_none() {
            record.user_id = keys.iter().find_map(|k| links.get(k).cloned());
        }
        if record.token.is_some() || record.user_id.is_some() {
            emails.insert(key.clone(), record);
        }
    }
    for (key, record) in &current.previous.emails {
        if pending(key) && !emails.contains_key(key) {
            emails.insert(key.clone(), record.clone());
        }
    }
    Managed { users, emails }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(name: &str, ids: &[&str], emails: &[&str]) -> crate::plan::members::PlannedMember {
        crate::plan::members::fixture(name, crate::schedule::model::Role::Speaker, ids, emails)
    }

    #[test]
    fn the_record_keeps_planned_people_pending_removals_and_email_invites() {
        let room = crate::plan::talk_room_fixture(vec![person("Ann", &["@ann:x"], &[]), person("Eve", &[], &["eve@x.org"]), person("Fay", &[], &["fay@x.org"])]);
        let (eve, fay, gus) = (people::email_key("eve@x.org"), people::email_key("fay@x.org"), people::email_key("gus@x.org"));
        let mut previous = Managed { users: vec!["@ann:x".into(), "@old:x".into(), "@gone:x".into()], emails: BTreeMap::new() };
        previous.emails.insert(eve.clone(), EmailRecord { token: Some("te".into()), user_id: None });
        previous.emails.insert(gus.clone(), EmailRecord { token: Some("tg".into()), user_id: None });
        let current = Current { room_id: "!r:x".into(), state: StateMap::new(), previous, ok: true };
        let mut outcome = Outcome::default();
        // @old's withdrawal failed; @gone's went through; gus's e-mail invite could not be withdrawn.
        outcome.pending.insert(("talk/t1".into(), "@old:x".into()));
        outcome.pending.insert(("talk/t1".into(), gus.clone()));
        // Fay was invited by e-mail in this run.
        outcome.tokens.insert("talk/t1".into(), vec![(fay.clone(), EmailRecord { token: Some("tf".into()), user_id: None })]);
        // Eve took hers up.
        let links: BTreeMap<String, String> = [(eve.clone(), "@eve:x".to_string())].into_iter().collect();
        let record = record_of(&room, &current, &outcome, &links);
        assert_eq!(record.users, vec!["@ann:x".to_string(), "@old:x".to_string()]);
        assert_eq!(record.emails.get(&eve), Some(&EmailRecord { token: Some("te".into()), user_id: Some("@eve:x".into()) }));
        assert_eq!(record.emails.get(&fay), Some(&EmailRecord { token: Some("tf".into()), user_id: None }));
        assert_eq!(record.emails.get(&gus), Some(&EmailRecord { token: Some("tg".into()), user_id: None }));
        // Once gus's withdrawal went through, his entry goes.
        outcome.pending.remove(&("talk/t1".to_string(), gus.clone()));
        assert!(!record_of(&room, &current, &outcome, &links).emails.contains_key(&gus));
    }

    #[test]
    fn tokens_are_redacted() {
        let v = json!({"url": "https://x/qa/c/k?token=abc123&theme=$theme", "data": {"u": ["a?token=zz"]}, "n": 1});
        assert_eq!(
            redact(&v),
            json!({"url": "https://x/qa/c/k?token=REDACTED&theme=$theme", "data": {"u": ["a?token=REDACTED"]}, "n": 1})
        );
    }
}
