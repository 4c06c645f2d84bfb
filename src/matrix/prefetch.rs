//! Reading ahead of a go-live: a state action (the call maximised or its layout restored, the talk room opened)
//! converges its talk room, which takes the room's state; read at the instant, dozens of talks going live in one
//! second put as many reads beside their writes on a homeserver that is busy with them. So the rooms of state actions
//! that fire within [`LEAD`] are read before, and at the instant only the write goes out. [`StateCache`] keeps each
//! room's state as last read, with what the live side wrote since; an entry older than its bound, a failed write or a
//! new plan falls back to the read at the instant. [`reads_due`] says which rooms to read (pure). Used by the
//! runner's sender only: `apply`, a refresh's reconcile and the management room's commands read rooms as always, and
//! the sender's cache is emptied around a refresh (what they wrote meanwhile is read again).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use crate::plan::state::{StateItem, StateMap};
use crate::timeline::{Action, Clock, Effect, Priority};

/// How long before its fire time a state action's room is read.
pub const LEAD: Duration = Duration::seconds(30);
/// An entry older than this is read again: what others (organisers in a client, another process) changed in the room
/// meanwhile is seen within this bound.
pub const MAX_AGE: Duration = Duration::minutes(2);
/// No read ahead this close to a time-critical action's fire time, before or after (it may still wait for a send
/// slot): the homeserver's time is theirs.
pub const QUIET: Duration = Duration::seconds(3);

/// What a converge needs of a room: its state, and whom of its e-mail invitees it saw take their invite up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub state: Arc<StateMap>,
    pub taken: Arc<HashMap<String, String>>,
}

/// The rooms' state as last read (on the runner's clock), updated with what was written since.
pub struct StateCache {
    clock: Clock,
    max_age: Duration,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    rooms: HashMap<String, Entry>,
    /// A counter of changes; `changed` holds, per room, the count at its entry's last write or removal, and
    /// `cleared` the count at the last clear.
    version: u64,
    changed: HashMap<String, u64>,
    cleared: u64,
}

struct Entry {
    snapshot: Snapshot,
    read_at: DateTime<Utc>,
}

/// Taken just before a read: the read is kept only if the room's entry did not change while it ran (a write seen by
/// the cache but perhaps not by the read).
#[derive(Debug)]
pub struct Ticket {
    key: String,
    version: u64,
    at: DateTime<Utc>,
}

impl StateCache {
    pub fn new(clock: Clock, max_age: Duration) -> StateCache {
        StateCache { clock, max_age, inner: Mutex::default() }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every change leaves the map whole: a panic elsewhere while holding the lock does not make it wrong.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The room's state, if read within the bound.
    pub fn fresh(&self, key: &str) -> Option<Snapshot> {
        let now = self.clock.now();
        self.inner().rooms.get(key).filter(|e| now - e.read_at <= self.max_age).map(|e| e.snapshot.clone())
    }

    /// Whether the room's state, used at `at`, would be older than the bound (or is not there at all).
    pub fn stale_at(&self, key: &str, at: DateTime<Utc>) -> bool {
        self.inner().rooms.get(key).is_none_or(|e| at - e.read_at > self.max_age)
    }

    /// Before reading a room.
    pub fn ticket(&self, key: &str) -> Ticket {
        Ticket { key: key.to_string(), version: self.inner().version, at: self.clock.now() }
    }

    /// Keeps what a read returned, as of when its ticket was taken, unless the room's entry changed since. Whether
    /// it was kept.
    pub fn put(&self, ticket: Ticket, snapshot: Snapshot) -> bool {
        let mut inner = self.inner();
        let changed = inner.changed.get(&ticket.key).copied().unwrap_or(0).max(inner.cleared);
        if changed > ticket.version {
            return false;
        }
        // Entries too old to be used are dropped here, so the cache holds about the rooms of the next minutes.
        let (now, max_age) = (self.clock.now(), self.max_age);
        inner.rooms.retain(|_, e| now - e.read_at <= max_age);
        inner.rooms.insert(ticket.key, Entry { snapshot, read_at: ticket.at });
        true
    }

    /// What was written to a room, in order: its entry says so from now on (its age stays that of its read).
    pub fn wrote(&self, key: &str, items: &[StateItem]) {
        let mut inner = self.inner();
        if let Some(entry) = inner.rooms.get_mut(key) {
            let state = Arc::make_mut(&mut entry.snapshot.state);
            for item in items {
                state.insert((item.event_type.clone(), item.state_key.clone()), item.content.clone());
            }
        }
        touch(&mut inner, key);
    }

    /// A room whose state is no longer known (a write failed half-way): read at its next converge.
    pub fn forget(&self, key: &str) {
        let mut inner = self.inner();
        inner.rooms.remove(key);
        touch(&mut inner, key);
    }

    /// Every room read again (a new plan; rooms written by a reconcile).
    pub fn clear(&self) {
        let mut inner = self.inner();
        inner.rooms.clear();
        inner.version += 1;
        inner.cleared = inner.version;
    }
}

fn touch(inner: &mut Inner, key: &str) {
    inner.version += 1;
    let version = inner.version;
    inner.changed.insert(key.to_string(), version);
}

/// The room a state action converges, if it is one that reads the room's whole state.
pub fn converged_room(action: &Action) -> Option<&str> {
    match &action.effect {
        Effect::Layout { room, .. } | Effect::Open { room } => Some(room),
        Effect::Notice { .. } | Effect::Roll { .. } | Effect::Suggested { .. } | Effect::Questions { .. } => None,
    }
}

/// What to do ahead of the actions at `now`: the rooms to read, soonest first, each once: those of state actions
/// firing within `lead` whose state would be older than the bound at their fire time (`stale`); none while a
/// time-critical send is in flight (`busy`) or a time-critical action fires within [`QUIET`] of now.
pub fn reads_due(
    actions: &[Action],
    now: DateTime<Utc>,
    lead: Duration,
    busy: bool,
    stale: impl Fn(&str, DateTime<Utc>) -> bool,
) -> Vec<String> {
    let soon = actions.iter().filter(|a| a.fire_at > now && a.fire_at <= now + lead);
    let quiet = busy || actions.iter().any(|a| a.priority == Priority::Critical && (a.fire_at - now).abs() <= QUIET);
    if quiet {
        return Vec::new();
    }
    let mut seen = HashSet::new();
    let mut out: Vec<(DateTime<Utc>, String)> = soon
        .filter_map(|a| converged_room(a).map(|r| (a.fire_at, r)))
        .filter(|(at, room)| stale(room, *at))
        .map(|(at, room)| (at, room.to_string()))
        .collect();
    out.sort();
    out.retain(|(_, room)| seen.insert(room.clone()));
    out.into_iter().map(|(_, room)| room).collect()
}

#[cfg(test)]
#[path = "prefetch_tests.rs"]
mod tests;
