//! The live side of the matrix layer: what the timeline's runner sends during the event. Notices go out under a
//! transaction id derived from the action, so a send retried after a crash is deduplicated by the homeserver. State
//! changes (a talk room opened, the live talk suggested in its space, its call maximised) are a reconcile of the
//! touched rooms at the new moment, through the same desired state as `apply`, so the two never disagree and a
//! runner that was down converges instead of replaying. Which action fires when is decided by the timeline.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Mutex;
use tracing::instrument;

use super::client::{Homeserver, MatrixError, state_map};
use super::prefetch::{self, Snapshot, StateCache};
use super::reconcile::locate::taken_up;
use super::reconcile::{Moment, Options, send_ids, settings};
use crate::plan::desired::{self, Observed, Settings, spaces};
use crate::plan::managed::{self, Managed};
use crate::plan::state::{self, LOCATOR, StateMap};
use crate::plan::{Plan, PlannedRoom};
use crate::qa::Qa;
use crate::timeline::text::{self, Asked};
use crate::timeline::{
    Action, Clock, Effect, Invitee, LiveState, Message, Priority, SendError, Sender as TimelineSender, Sent, state_at,
};

/// A notice for a room: plain text, the same as HTML (everything from the schedule escaped by the caller), and
/// the Matrix IDs it mentions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub html: String,
    pub mentions: Vec<String>,
}

impl Notice {
    /// The `m.room.message` content: an `m.notice` (clients do not notify for bot notices unless mentioned).
    pub fn content(&self) -> Value {
        json!({
            "msgtype": "m.notice",
            "body": self.text,
            "format": "org.matrix.custom.html",
            "formatted_body": self.html,
            "m.mentions": {"user_ids": self.mentions},
        })
    }
}

/// The homeserver as the runner sees it: the plan's rooms by key, with their ids remembered.
#[derive(Clone)]
pub struct Live {
    hs: Homeserver,
    plan: Arc<Plan>,
    opts: Options,
    ids: Arc<Mutex<HashMap<String, String>>>,
    /// One converge at a time per room: two actions of one instant (maximise, suggest) must not both send a change.
    busy: Arc<Mutex<HashMap<String, Arc<Mutex<()>>>>>,
    /// The rooms' state read ahead (the runner's sender only): a converge then only writes.
    cache: Option<Arc<StateCache>>,
}

impl Live {
    pub fn new(hs: Homeserver, plan: Arc<Plan>, opts: Options) -> Live {
        Live { hs, plan, opts, ids: Arc::new(Mutex::new(HashMap::new())), busy: Arc::new(Mutex::new(HashMap::new())), cache: None }
    }

    /// Converges from the rooms' state in `cache` when it is fresh there, keeping it up to date with what they write.
    pub fn with_cache(self, cache: Arc<StateCache>) -> Live {
        Live { cache: Some(cache), ..self }
    }

    /// Follows a new schedule: rooms are looked up in the new plan from now on, their state read again.
    pub fn with_plan(&self, plan: Arc<Plan>) -> Live {
        if let Some(c) = &self.cache {
            c.clear();
        }
        Live { plan, ..self.clone() }
    }

    pub fn homeserver(&self) -> &Homeserver {
        &self.hs
    }

    fn planned(&self, key: &str) -> Result<&PlannedRoom, MatrixError> {
        self.plan.rooms.iter().find(|r| r.key == key).ok_or_else(|| MatrixError::Setup(format!("{key} is not in the plan")))
    }

    /// The room id of a planned room (looked up by its alias once).
    pub async fn room_id(&self, key: &str) -> Result<String, MatrixError> {
        if let Some(id) = self.ids.lock().await.get(key) {
            return Ok(id.clone());
        }
        let room = self.planned(key)?;
        let id = self
            .hs
            .resolve_alias(&room.alias)
            .await?
            .ok_or_else(|| MatrixError::Setup(format!("{} does not exist; run `stagehand apply`", room.alias)))?;
        self.ids.lock().await.insert(key.to_string(), id.clone());
        Ok(id)
    }

    /// Posts a notice in a planned room: its event id, and when the request went out.
    #[instrument(skip(self, notice), fields(room = key))]
    pub async fn post(&self, key: &str, txn_id: &str, notice: &Notice, urgent: bool) -> Result<Sent, MatrixError> {
        let room_id = self.room_id(key).await?;
        let requested = tokio::time::Instant::now();
        let event = self.hs.send_message(&room_id, txn_id, "m.room.message", &notice.content(), urgent).await?;
        Ok(Sent::event(event, requested))
    }

    /// Who has joined a planned room now.
    pub async fn joined(&self, key: &str) -> Result<HashSet<String>, MatrixError> {
        let room_id = self.room_id(key).await?;
        let state = state_map(&self.hs.room_state(&room_id).await?);
        Ok(state
            .iter()
            .filter(|((t, _), c)| t == "m.room.member" && c["membership"] == "join")
            .map(|((_, k), _)| k.clone())
            .collect())
    }

    /// Brings one planned room, and its link in its space, to the desired state at `moment`. Returns the ids of the
    /// state events sent (none when the room already is as it should be).
    pub async fn converge(&self, key: &str, moment: &Moment) -> Result<Vec<String>, MatrixError> {
        Ok(self.converge_parts(key, Parts::Both, || moment.clone()).await?.ids)
    }

    /// [`Self::converge`] to the moment `now` gives once the room is this caller's: of two converges of one room,
    /// the later never writes an older moment over a newer one.
    pub async fn converge_at(&self, key: &str, now: impl FnOnce() -> Moment) -> Result<Vec<String>, MatrixError> {
        Ok(self.converge_parts(key, Parts::Both, now).await?.ids)
    }

    /// [`Self::converge_at`] of the room's own state, of its link in its space, or of both. At a go-live the call's
    /// layout is the room's own (dozens of talk rooms, written in parallel) and `suggested` is the link (all in one
    /// space, whose writes the homeserver takes one by one): each action writes only its part. The room's state is
    /// read here unless it was read ahead ([`Self::read_ahead`]).
    #[instrument(skip(self, now), fields(room = key))]
    pub async fn converge_parts(&self, key: &str, parts: Parts, now: impl FnOnce() -> Moment) -> Result<Converged, MatrixError> {
        let room = self.planned(key)?;
        let lock = self.busy.lock().await.entry(format!("{key}|{parts:?}")).or_default().clone();
        let _one_at_a_time = lock.lock().await;
        let moment = now();
        let s = settings(&self.hs, &self.plan, &self.opts, &moment);
        let parent_id = match &room.parent {
            Some(p) => Some(self.room_id(p).await?),
            None => None,
        };
        let room_id = self.room_id(key).await?;
        if parts == Parts::Link {
            return match parent_id {
                Some(space_id) => self.converge_link(room, &room_id, &space_id, &s).await,
                None => Ok(Converged::default()),
            };
        }
        // The room's own state (small), and of its space only the one link: a space of a thousand talk rooms is
        // never read whole on the day.
        let seen = match self.cache.as_ref().and_then(|c| c.fresh(key)) {
            Some(seen) => seen,
            None => self.read(key, &room_id).await?,
        };
        let state = &*seen.state;
        if !state::is_ours(state::get(state, LOCATOR, ""), &self.plan.conference, key) {
            return Err(MatrixError::Setup(format!("{} is not the room Stagehand built for {key}", room.alias)));
        }
        let managed = Managed::from_state(state);
        let observed = Observed { state, managed: &managed };
        // People known by e-mail who took their invite up here keep their power: their links are on record here.
        let links = managed::links(std::iter::once((&managed, &*seen.taken)));
        let changes = desired::room_changes(room, observed, &s, parent_id.as_deref(), &links);
        let requested = (!changes.is_empty()).then(tokio::time::Instant::now);
        let sent = send_ids(&self.hs, &room_id, &changes, false).await;
        if let Some(cache) = &self.cache {
            match &sent {
                Ok(_) => cache.wrote(key, &changes.iter().map(|c| c.item.clone()).collect::<Vec<_>>()),
                Err(_) => cache.forget(key),
            }
        }
        let mut done = Converged { ids: sent?, requested };
        if let (Some(space_id), Parts::Both) = (parent_id, parts) {
            let link = self.converge_link(room, &room_id, &space_id, &s).await?;
            done.ids.extend(link.ids);
            done.requested = done.requested.or(link.requested);
        }
        Ok(done)
    }

    /// Reads a planned room's state, and whom of its e-mail invitees it saw take their invite up, keeping it in the
    /// cache unless the room was written meanwhile.
    async fn read(&self, key: &str, room_id: &str) -> Result<Snapshot, MatrixError> {
        let ticket = self.cache.as_ref().map(|c| c.ticket(key));
        let events = self.hs.room_state(room_id).await?;
        let state = state_map(&events);
        let managed = Managed::from_state(&state);
        let taken = taken_up(&self.hs, room_id, &events, &managed).await;
        let seen = Snapshot { state: Arc::new(state), taken: Arc::new(taken) };
        if let (Some(cache), Some(ticket)) = (&self.cache, ticket) {
            cache.put(ticket, seen.clone());
        }
        Ok(seen)
    }

    /// Reads a planned room ahead of a converge (into the cache; without one, nothing to do).
    #[instrument(skip(self), fields(room = key))]
    pub async fn read_ahead(&self, key: &str) -> Result<(), MatrixError> {
        if self.cache.is_some() {
            let room_id = self.room_id(key).await?;
            self.read(key, &room_id).await?;
        }
        Ok(())
    }

    /// The room's `m.space.child` link in its space, read alone and written when it differs.
    async fn converge_link(&self, room: &PlannedRoom, room_id: &str, space_id: &str, s: &Settings) -> Result<Converged, MatrixError> {
        let link = spaces::child_link(room, room_id, s);
        let current = self.hs.state_event(space_id, &link.event_type, &link.state_key).await?;
        let mut space = StateMap::new();
        if let Some(c) = current {
            space.insert((link.event_type.clone(), link.state_key.clone()), c);
        }
        match desired::change(&space, link) {
            Some(link) => {
                let requested = Some(tokio::time::Instant::now());
                Ok(Converged { ids: send_ids(&self.hs, space_id, std::slice::from_ref(&link), false).await?, requested })
            }
            None => Ok(Converged::default()),
        }
    }
}

/// What a converge wrote: the ids of the state events sent (none when the room already was as it should be), and
/// when the first write went out.
#[derive(Debug, Clone, Default)]
pub struct Converged {
    pub ids: Vec<String>,
    pub requested: Option<tokio::time::Instant>,
}

/// Which part of a planned room a converge brings to the desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parts {
    /// Its own state (name, topic, layout, join rule, power, ...).
    Room,
    /// Its `m.space.child` link in its space (`suggested`, order).
    Link,
    Both,
}

/// What the timeline's runner sends through: each action's effect on the homeserver. Notices and roll calls are
/// messages under the action's transaction id. Layout, `suggested` and opening are not replayed one by one: the room
/// is converged to what the whole timeline says at the clock's now, so actions that fire late, together or out of
/// order (a restart after a talk) still leave the room as it should be now.
pub struct Sender {
    live: std::sync::RwLock<Live>,
    actions: tokio::sync::watch::Receiver<Arc<Vec<Action>>>,
    clock: Clock,
    /// Join rule and history visibility of an opened talk room.
    opened: (String, String),
    /// Prefix of every transaction id: empty for the event, unique per rehearsal so a rehearsal's sends are never
    /// taken by the homeserver for the event's (or an earlier rehearsal's).
    txn_prefix: String,
    /// Where the question lists come from (none: Q&A is off).
    questions: Option<Arc<Qa>>,
    /// The talk rooms' state, read ahead of their state actions.
    cache: Arc<StateCache>,
    /// The last moment computed, for the action list and the number of its actions due then: at a go-live dozens
    /// of converges ask for the same one.
    moment: std::sync::Mutex<Option<LastMoment>>,
    /// Time-critical sends under way: no reading ahead meanwhile.
    critical: std::sync::atomic::AtomicUsize,
}

impl Sender {
    pub fn new(
        live: Live,
        actions: tokio::sync::watch::Receiver<Arc<Vec<Action>>>,
        clock: Clock,
        opened: (String, String),
        txn_prefix: String,
    ) -> Sender {
        let cache = Arc::new(StateCache::new(clock, prefetch::MAX_AGE));
        Sender {
            live: std::sync::RwLock::new(live.with_cache(cache.clone())),
            actions,
            clock,
            opened,
            txn_prefix,
            questions: None,
            cache,
            moment: std::sync::Mutex::default(),
            critical: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The same sender, reading question lists from `qa`.
    pub fn with_questions(mut self, qa: Arc<Qa>) -> Sender {
        self.questions = Some(qa);
        self
    }

    /// Follows a new plan (after a schedule refresh; the new actions come through the runner's channel).
    pub fn replan(&self, plan: Arc<Plan>) {
        if let Ok(mut live) = self.live.write() {
            *live = live.with_plan(plan);
        }
    }

    /// Rooms read again before their next converge (another part of the process is writing them).
    pub fn reread_rooms(&self) {
        self.cache.clear();
    }

    fn live(&self) -> Result<Live, SendError> {
        self.live.read().map(|l| l.clone()).map_err(|_| SendError::Permanent("the sender's plan lock was poisoned".into()))
    }

    /// What the timeline has done to the rooms by now.
    fn now(&self) -> Moment {
        let actions = self.actions.borrow().clone();
        let now = self.clock.now();
        // The actions due at `now` are the first `due` by effective time: the same count, the same moment.
        let due = actions.iter().filter(|a| a.effective() <= now).count();
        let mut last = self.moment.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(l) = last.as_ref().filter(|l| Arc::ptr_eq(&l.actions, &actions) && l.due == due) {
            return l.moment.clone();
        }
        let m = moment(&state_at(&actions, now), &self.opened.0, &self.opened.1);
        *last = Some(LastMoment { actions, due, moment: m.clone() });
        m
    }

    async fn converge(&self, key: &str, parts: Parts) -> Result<Sent, SendError> {
        let done = self.live()?.converge_parts(key, parts, || self.now()).await.map_err(classify)?;
        Ok(match (done.ids.last(), done.requested) {
            (Some(id), Some(at)) => Sent::event(id.clone(), at),
            _ => Sent::nothing("unchanged"),
        })
    }

    /// Reads the talk rooms of state actions ahead of their fire time (see [`prefetch`]), and resolves the room ids
    /// of every action due soon, until `stop`. Best effort: a room that cannot be read is read at its action.
    pub async fn read_ahead(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let actions = self.actions.borrow().clone();
            let now = self.clock.now();
            if let Ok(live) = self.live() {
                self.read_ahead_once(&live, &actions, now).await;
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    async fn read_ahead_once(&self, live: &Live, actions: &[Action], now: chrono::DateTime<chrono::Utc>) {
        for a in actions.iter().filter(|a| a.fire_at > now && a.fire_at <= now + prefetch::LEAD) {
            let talk_room = match &a.effect {
                Effect::Roll { talk_room, .. } => Some(talk_room.as_str()),
                _ => None,
            };
            let parent = live.planned(a.room()).ok().and_then(|r| r.parent.as_deref());
            for key in [Some(a.room()), talk_room, parent].into_iter().flatten() {
                if let Err(e) = live.room_id(key).await {
                    tracing::debug!(room = key, error = %e, "cannot resolve a room ahead of its action");
                }
            }
        }
        let busy = || self.critical.load(std::sync::atomic::Ordering::Relaxed) > 0;
        let due = prefetch::reads_due(actions, now, prefetch::LEAD, busy(), |room, at| self.cache.stale_at(room, at));
        for room in due {
            // Each read waits for the time-critical sends of the moment, and none starts right before one.
            let now = self.clock.now();
            if !prefetch::reads_due(actions, now, prefetch::LEAD, busy(), |r, _| r == room).contains(&room) {
                return;
            }
            if let Err(e) = live.read_ahead(&room).await {
                tracing::debug!(room, error = %e, "cannot read a room ahead of its action: read at the action");
            }
        }
    }
}

/// A failure the runner may retry (the server or the network), or one it may not (the request itself is wrong).
fn classify(e: MatrixError) -> SendError {
    match &e {
        MatrixError::Api { status, .. } if *status == 429 || *status >= 500 => SendError::Transient(e.to_string()),
        MatrixError::Transport { .. } => SendError::Transient(e.to_string()),
        _ => SendError::Permanent(e.to_string()),
    }
}

fn notice(m: &Message) -> Notice {
    Notice { text: m.body.clone(), html: m.html.clone(), mentions: m.mentions.clone() }
}

/// A moment and what it was computed from (the list is kept, so its address is not another list's).
struct LastMoment {
    actions: Arc<Vec<Action>>,
    due: usize,
    moment: Moment,
}

/// Counts a time-critical send while it lasts.
struct Critical<'a>(Option<&'a std::sync::atomic::AtomicUsize>);

impl<'a> Critical<'a> {
    fn start(count: &'a std::sync::atomic::AtomicUsize, critical: bool) -> Critical<'a> {
        if critical {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Critical(critical.then_some(count))
    }
}

impl Drop for Critical<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.0 {
            c.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl TimelineSender for Sender {
    async fn perform(&self, action: &Action, txn_id: &str) -> Result<Sent, SendError> {
        let urgent = action.priority == Priority::Critical;
        let _critical = Critical::start(&self.critical, urgent);
        let txn = format!("{}{txn_id}", self.txn_prefix);
        match &action.effect {
            Effect::Notice { room, message } => self.live()?.post(room, &txn, &notice(message), urgent).await.map_err(classify),
            Effect::Roll { room, talk_room, people, roll } => {
                let live = self.live()?;
                let joined = live.joined(talk_room).await.map_err(classify)?;
                let missing: Vec<&Invitee> = people.iter().filter(|p| !p.user_ids.iter().any(|u| joined.contains(u))).collect();
                live.post(room, &txn, &notice(&roll.render(&missing)), urgent).await.map_err(classify)
            }
            Effect::Layout { room, .. } | Effect::Open { room } => self.converge(room, Parts::Room).await,
            Effect::Suggested { child, .. } => self.converge(child, Parts::Link).await,
            Effect::Questions { room, talk, title, top } => {
                let Some(qa) = &self.questions else { return Ok(Sent::nothing("no questions: Q&A is off")) };
                let board = qa.board(talk);
                let open = board.questions.iter().filter(|q| !q.answered);
                let list: Vec<Asked> = open
                    .take(top.unwrap_or(usize::MAX))
                    .map(|q| Asked { text: q.text.clone(), asker: q.asker_name.clone(), votes: q.votes })
                    .collect();
                match text::questions(title, &list, top.is_none()) {
                    Some(m) => self.live()?.post(room, &txn, &notice(&m), urgent).await.map_err(classify),
                    None => Ok(Sent::nothing("no questions")),
                }
            }
        }
    }
}

/// The desired state's moment from what the timeline's actions leave behind, with how opened rooms open.
pub fn moment(state: &LiveState, join_rule: &str, history: &str) -> Moment {
    Moment {
        open: state.open.clone(),
        suggested: state.suggested.clone(),
        maximised: state.maximised.clone(),
        open_join_rule: join_rule.to_string(),
        open_history: history.to_string(),
    }
}
