//! The intake for a bot logged in as a user: a long-polling `/sync` with a saved filter (only the listed rooms, only
//! the event types that matter, members lazy-loaded, nothing else), gaps filled from `/messages`, and a room's whole
//! history read when it is first listed (or the store is new): that is how a deleted store is rebuilt.
//!
//! The position is two store values, written only after the consumer has stored what came before them:
//! `intake.since` (the sync token) and `intake.rooms` (the rooms whose history has been delivered up to it).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{Handover, Inbox, IntakeError, IntakeStatus, RoomEvent, STATE_TYPES, TIMELINE_TYPES, room_events, stopped};
use crate::matrix::client::{Homeserver, MessagesPage, Synced, SyncedRoom};
use crate::timeline::Store;

/// The newest events a sync returns per room; older ones come from `/messages`.
pub const TIMELINE_LIMIT: u32 = 100;

/// Events per `/messages` page.
pub(super) const PAGE_LIMIT: u32 = 250;

/// How long one sync waits for news.
const POLL: Duration = Duration::from_secs(30);

const SINCE_KEY: &str = "intake.since";
const ROOMS_KEY: &str = "intake.rooms";

/// The event types a sync's timeline and `/messages` return: the state types too, so that a change of power levels
/// or membership between two messages arrives in its place (a timeline filtered without them loses such a change:
/// the server computes the `state` section from the filtered timeline).
fn timeline_types() -> Vec<&'static str> {
    TIMELINE_TYPES.iter().chain(STATE_TYPES).copied().collect()
}

/// The sync filter: only `rooms`, only the types that matter, members lazy-loaded, a bounded timeline, no presence,
/// account data, ephemeral events or left rooms.
pub fn filter(rooms: &[String]) -> Value {
    let none = json!({"not_types": ["*"]});
    json!({
        "presence": none,
        "account_data": none,
        "room": {
            "rooms": rooms,
            "include_leave": false,
            "timeline": {"types": timeline_types(), "limit": TIMELINE_LIMIT, "lazy_load_members": true},
            "state": {"types": STATE_TYPES, "lazy_load_members": true},
            "ephemeral": none,
            "account_data": none,
        },
    })
}

/// The filter of `/messages`: the same types, members lazy-loaded.
pub(super) fn history_filter() -> Value {
    json!({"types": timeline_types(), "lazy_load_members": true})
}

/// A room's events in delivery order: the history (pages as read backwards, newest first) oldest first, each
/// page's state (what is not in any page) before its events; then the sync's state section, then its timeline.
pub(crate) fn ordered(room_id: &str, history: Vec<MessagesPage>, state: Vec<Value>, timeline: Vec<Value>) -> Vec<RoomEvent> {
    let in_pages: HashSet<String> =
        history.iter().flat_map(|p| &p.chunk).filter_map(|e| super::event_id(e)).map(str::to_string).collect();
    let mut all = Vec::new();
    for page in history.into_iter().rev() {
        all.extend(page.state.into_iter().filter(|e| super::event_id(e).is_none_or(|id| !in_pages.contains(id))));
        all.extend(page.chunk.into_iter().rev());
    }
    all.extend(state);
    all.extend(timeline);
    room_events(room_id, all)
}

pub(super) fn sent_at(event: &Value) -> Option<DateTime<Utc>> {
    event.get("origin_server_ts").and_then(Value::as_i64).and_then(DateTime::from_timestamp_millis)
}

/// Runs the sync intake until `stop` (or until the consumer closes the inbox): delivers the events of the rooms in
/// `rooms` to `inbox`, and restarts with a new filter when the list changes (rooms newly listed get their history).
/// History read for a room goes back to `not_before` (or the room's creation). Errors are retried with a back-off
/// of 1 to 30 seconds and reported in `status`.
pub async fn sync(
    hs: &Homeserver,
    mut rooms: watch::Receiver<Arc<Vec<String>>>,
    store: Store,
    inbox: Inbox,
    not_before: Option<DateTime<Utc>>,
    status: watch::Sender<IntakeStatus>,
    mut stop: watch::Receiver<bool>,
) {
    status.send_modify(|s| {
        s.mode = "sync";
        s.alive = true;
    });
    let mut listed = rooms.borrow_and_update().clone();
    let mut backoff = Backoff::default();
    'session: loop {
        let mut session = Session::new(hs, &store, &inbox, not_before, &listed);
        loop {
            if *stop.borrow() {
                break 'session;
            }
            if listed.is_empty() {
                tokio::select! {
                    _ = stopped(&mut stop) => break 'session,
                    new = changed(&mut rooms, &listed) => { listed = new; continue 'session; }
                }
            }
            let polled = tokio::select! {
                _ = stopped(&mut stop) => break 'session,
                new = changed(&mut rooms, &listed) => { listed = new; continue 'session; }
                polled = session.poll() => polled,
            };
            // A stop abandons a batch the consumer has not stored yet (it comes again on the next start); once it
            // has, the position is saved before the loop ends.
            let taken = match polled {
                Ok((since, synced)) => tokio::select! {
                    biased;
                    taken = session.take(since, synced) => taken,
                    _ = stopped(&mut stop) => break 'session,
                },
                Err(e) => Err(e),
            };
            let taken = match taken {
                Ok(position) => session.save(position).await,
                Err(e) => Err(e),
            };
            match taken {
                Ok(delivered) => {
                    backoff.reset();
                    status.send_modify(|s| s.succeeded(delivered));
                }
                Err(IntakeError::InboxClosed) => {
                    tracing::info!("the event consumer has stopped; the sync intake ends");
                    break 'session;
                }
                Err(e) => {
                    let wait = backoff.next();
                    tracing::warn!(error = %e, wait_ms = wait.as_millis() as u64, "sync intake failed; retrying");
                    status.send_modify(|s| s.failed(&e));
                    tokio::select! {
                        _ = stopped(&mut stop) => break 'session,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }
    status.send_modify(|s| s.alive = false);
}

/// The next room list that differs from `current` (as a set); never, once the sender is gone.
async fn changed(rooms: &mut watch::Receiver<Arc<Vec<String>>>, current: &Arc<Vec<String>>) -> Arc<Vec<String>> {
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    loop {
        if rooms.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        let new = rooms.borrow_and_update().clone();
        if set(&new) != set(current) {
            return new;
        }
    }
}

/// 1 s, doubling up to 30 s.
#[derive(Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let wait = Duration::from_secs(1 << self.failures.min(5)).min(Duration::from_secs(30));
        self.failures += 1;
        wait
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Where the intake stands after a sync the consumer has stored.
struct Position {
    since: String,
    /// The listed rooms whose history has been delivered.
    covered: BTreeSet<String>,
    delivered: usize,
}

/// One filter, one room list.
struct Session<'a> {
    hs: &'a Homeserver,
    store: &'a Store,
    inbox: &'a Inbox,
    not_before: Option<DateTime<Utc>>,
    rooms: Arc<Vec<String>>,
    filter_id: Option<String>,
    /// Rooms whose history could not be read (the bot is not in them): tried again when a sync shows them joined.
    unreadable: HashSet<String>,
    /// The first sync of the session answers at once, so that newly listed rooms get their history now.
    first: bool,
}

impl<'a> Session<'a> {
    fn new(hs: &'a Homeserver, store: &'a Store, inbox: &'a Inbox, not_before: Option<DateTime<Utc>>, rooms: &Arc<Vec<String>>) -> Session<'a> {
        Session { hs, store, inbox, not_before, rooms: rooms.clone(), filter_id: None, unreadable: HashSet::new(), first: true }
    }

    /// One sync from the stored position.
    async fn poll(&mut self) -> Result<(Option<String>, Synced), IntakeError> {
        let filter_id = match &self.filter_id {
            Some(id) => id.clone(),
            None => {
                let id = self.hs.upload_filter(&filter(&self.rooms)).await?;
                self.filter_id = Some(id.clone());
                id
            }
        };
        let since = self.store.value(SINCE_KEY).await?;
        let timeout = if self.first || since.is_none() { Duration::ZERO } else { POLL };
        let synced = self.hs.sync_once(&filter_id, since.as_deref(), timeout).await?;
        Ok((since, synced))
    }

    /// Delivers what a sync brought (and the history it calls for); returns the position to save now that the
    /// consumer has stored it.
    async fn take(&mut self, since: Option<String>, synced: Synced) -> Result<Position, IntakeError> {
        let mut covered: BTreeSet<String> = match since {
            Some(_) => self.store.value(ROOMS_KEY).await?.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default(),
            None => BTreeSet::new(),
        };
        covered.retain(|r| self.rooms.contains(r));
        let mut joined: HashMap<String, SyncedRoom> = synced.rooms.into_iter().map(|r| (r.room_id.clone(), r)).collect();
        // Each room's events go to the consumer as soon as they are read: it stores one room while the next is read.
        let mut handover = Handover::default();
        let mut newly = Vec::new();
        for room_id in self.rooms.iter() {
            let room = joined.remove(room_id);
            if !covered.contains(room_id) {
                // Not read yet: the whole history up to this sync (its timeline included) from `/messages`.
                if room.is_none() && (!self.first || self.unreadable.contains(room_id)) {
                    continue;
                }
                match super::history::history(self.hs, room_id, Some(&synced.next_batch), self.not_before).await {
                    Ok(events) => {
                        tracing::info!(room = %room_id, events = events.len(), "read the room's history");
                        handover.hand(self.inbox, events).await?;
                        newly.push(room_id.clone());
                        self.unreadable.remove(room_id);
                    }
                    Err(e) if matches!(e.errcode(), Some("M_FORBIDDEN" | "M_NOT_FOUND")) => {
                        tracing::info!(room = %room_id, error = %e, "cannot read the room's history yet (the bot is not in it?)");
                        self.unreadable.insert(room_id.clone());
                    }
                    Err(e) => return Err(e.into()),
                }
            } else if let Some(room) = room {
                let gap = match (&room.prev_batch, &since) {
                    (Some(prev), Some(since)) if room.limited => super::history::pages(self.hs, room_id, Some(prev), Some(since), None).await?.0,
                    _ => Vec::new(),
                };
                handover.hand(self.inbox, ordered(room_id, gap, room.state, room.timeline)).await?;
            }
        }
        let delivered = handover.stored().await?;
        covered.extend(newly);
        Ok(Position { since: synced.next_batch, covered, delivered })
    }

    /// Moves the position on (the rooms first: a crash between the two writes then repeats, never skips). Returns
    /// the number of events the position covers that were delivered.
    async fn save(&mut self, position: Position) -> Result<usize, IntakeError> {
        self.store.set_value(ROOMS_KEY, &json!(position.covered).to_string()).await?;
        self.store.set_value(SINCE_KEY, &position.since).await?;
        self.first = false;
        Ok(position.delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(events: &[RoomEvent]) -> Vec<&str> {
        events.iter().map(|e| e.event_id().unwrap()).collect()
    }

    fn ev(id: &str, kind: &str) -> Value {
        match kind {
            "m.room.member" | "m.room.power_levels" => json!({"type": kind, "event_id": id, "state_key": "", "content": {}}),
            _ => json!({"type": kind, "event_id": id, "content": {}}),
        }
    }

    #[test]
    fn the_filter_names_the_rooms_and_types_and_lazy_loads_members() {
        let f = filter(&["!a:x".to_string(), "!b".to_string()]);
        assert_eq!(
            f,
            json!({
                "presence": {"not_types": ["*"]},
                "account_data": {"not_types": ["*"]},
                "room": {
                    "rooms": ["!a:x", "!b"],
                    "include_leave": false,
                    "timeline": {
                        "types": ["m.room.message", "m.reaction", "m.room.redaction", "m.room.member", "m.room.power_levels"],
                        "limit": 100,
                        "lazy_load_members": true
                    },
                    "state": {"types": ["m.room.member", "m.room.power_levels"], "lazy_load_members": true},
                    "ephemeral": {"not_types": ["*"]},
                    "account_data": {"not_types": ["*"]}
                }
            })
        );
        // What the SDK makes of it still says the same (it is uploaded through ruma's types).
        let typed: matrix_sdk::ruma::api::client::filter::FilterDefinition = serde_json::from_value(f).unwrap();
        let back = serde_json::to_value(&typed).unwrap();
        assert_eq!(back["room"]["state"]["lazy_load_members"], true);
        assert_eq!(back["room"]["timeline"]["limit"], 100);
        assert_eq!(back["room"]["rooms"], json!(["!a:x", "!b"]));
        assert_eq!(back["presence"]["not_types"], json!(["*"]));
        let history: matrix_sdk::ruma::api::client::filter::RoomEventFilter = serde_json::from_value(history_filter()).unwrap();
        assert_eq!(serde_json::to_value(&history).unwrap()["lazy_load_members"], true);
    }

    #[test]
    fn history_oldest_first_then_state_then_timeline() {
        // Pages as read backwards: the newest page first, each newest first.
        let newest = MessagesPage {
            chunk: vec![ev("$h4", "m.room.message"), ev("$h3", "m.reaction")],
            state: vec![ev("$m1", "m.room.member"), ev("$h2", "m.room.member")],
            end: Some("t".into()),
        };
        let oldest = MessagesPage { chunk: vec![ev("$h2", "m.room.member"), ev("$h1", "m.room.power_levels")], state: vec![], end: None };
        let state = vec![ev("$h4", "m.room.message"), ev("$s1", "m.room.power_levels")];
        let timeline = vec![ev("$t1", "m.room.message"), ev("$x", "m.room.topic"), ev("$t2", "m.room.redaction")];
        let out = ordered("!r", vec![newest, oldest], state, timeline);
        // $m1 (a member event older than the history) comes before the page that needs it; $h2 keeps its place in
        // the history; $h4 is not repeated by the state section; the topic does not matter.
        assert_eq!(ids(&out), ["$h1", "$h2", "$m1", "$h3", "$h4", "$s1", "$t1", "$t2"]);
    }

    #[test]
    fn a_sync_answer_becomes_room_events_in_order() {
        let body = json!({
            "next_batch": "s72595_4483_1934",
            "rooms": {"join": {"!r:x": {
                "state": {"events": [
                    {"type": "m.room.member", "state_key": "@ann:x", "event_id": "$m", "sender": "@ann:x",
                     "origin_server_ts": 1, "content": {"membership": "join", "displayname": "Ann"}}
                ]},
                "timeline": {"limited": true, "prev_batch": "t34-23535_0_0", "events": [
                    {"type": "m.room.message", "event_id": "$q", "sender": "@ann:x", "origin_server_ts": 2,
                     "content": {"msgtype": "m.text", "body": "Q: why?"}, "unsigned": {"age": 5}},
                    {"type": "m.reaction", "event_id": "$v", "sender": "@bob:x", "origin_server_ts": 3,
                     "content": {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$q", "key": "👍"}}}
                ]},
                "ephemeral": {"events": []},
                "account_data": {"events": []}
            }}}
        });
        let synced = Synced::from_body(body.to_string().as_bytes()).unwrap();
        assert_eq!(synced.next_batch, "s72595_4483_1934");
        let [room] = &synced.rooms[..] else { panic!("{synced:?}") };
        assert!(room.limited);
        assert_eq!(room.prev_batch.as_deref(), Some("t34-23535_0_0"));
        let out = ordered(&room.room_id, vec![], room.state.clone(), room.timeline.clone());
        assert_eq!(ids(&out), ["$m", "$q", "$v"]);
        assert_eq!(out[1].room_id, "!r:x");
        assert_eq!(out[1].event["room_id"], "!r:x");
        assert_eq!(out[1].event["content"]["body"], "Q: why?");
        assert_eq!(out[1].event["unsigned"]["age"], 5);
        assert_eq!(out[0].event["state_key"], "@ann:x");
    }

    #[test]
    fn back_off_from_one_to_thirty_seconds() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..8).map(|_| b.next().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        b.reset();
        assert_eq!(b.next().as_secs(), 1);
    }
}
