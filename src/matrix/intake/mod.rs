//! The event intake: how room events reach the bot, behind one interface. Either a filtered `/sync` loop
//! ([`sync::sync`], for a bot logged in as a user) or the homeserver's pushed transactions ([`appservice::router`],
//! for a bot running as an application service). Both hand the events that matter ([`TIMELINE_TYPES`],
//! [`STATE_TYPES`]) to one [`Inbox`] as [`Delivery`] batches in timeline order, and move their position on (the
//! since token, the transaction id) only after the consumer answered `done`: a crash never loses an event, and may
//! deliver one twice (consumers are idempotent by event id).
//!
//! Owns the intake's position in the store (`intake.*` values, the `intake_transactions` table) and its
//! [`IntakeStatus`]. It does not interpret events (questions, votes and commands are the consumers' business) and
//! never writes to the homeserver.

pub mod appservice;
mod history;
pub mod sync;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use super::client::MatrixError;
use crate::timeline::StoreError;

/// One room event as the client-server API gives it (event_id, sender, type, content, origin_server_ts, unsigned,
/// state_key for state events). The event carries `room_id` too, whichever way it came.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomEvent {
    pub room_id: String,
    pub event: serde_json::Value,
}

impl RoomEvent {
    pub fn event_id(&self) -> Option<&str> {
        event_id(&self.event)
    }

    pub fn event_type(&self) -> Option<&str> {
        self.event.get("type").and_then(Value::as_str)
    }
}

/// A batch of events in timeline order; `done` is answered by the consumer once it has stored them durably.
pub struct Delivery {
    pub events: Vec<RoomEvent>,
    pub done: Option<oneshot::Sender<()>>,
}

/// Where the intake delivers.
pub type Inbox = mpsc::Sender<Delivery>;

/// The message-like event types that matter: questions and commands, votes, and their removal.
pub const TIMELINE_TYPES: &[&str] = &["m.room.message", "m.reaction", "m.room.redaction"];

/// The state event types that matter: who is in a room (and their display names), and who may moderate.
pub const STATE_TYPES: &[&str] = &["m.room.member", "m.room.power_levels"];

/// Liveness for `/healthz` and status.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct IntakeStatus {
    /// `sync` or `appservice`.
    pub mode: &'static str,
    /// The loop runs (sync), the routes are served (application service).
    pub alive: bool,
    /// When the last sync or transaction was taken in completely.
    pub last_ok: Option<DateTime<Utc>>,
    /// Failures since the last success.
    pub failures: u32,
    pub last_error: Option<String>,
    /// Events delivered since the start (again after a retry).
    pub delivered: u64,
}

impl IntakeStatus {
    fn succeeded(&mut self, delivered: usize) {
        self.last_ok = Some(Utc::now());
        self.failures = 0;
        self.delivered += delivered as u64;
    }

    fn failed(&mut self, error: &IntakeError) {
        self.failures += 1;
        self.last_error = Some(error.to_string());
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the event consumer has stopped taking events")]
    InboxClosed,
    #[error("the event consumer dropped a batch without storing it; it is delivered again")]
    NotStored,
}

/// Whether an event is of a type that matters (a state type only as a state event).
pub fn matters(event: &Value) -> bool {
    let Some(kind) = event.get("type").and_then(Value::as_str) else { return false };
    TIMELINE_TYPES.contains(&kind) || (STATE_TYPES.contains(&kind) && event.get("state_key").is_some_and(Value::is_string))
}

fn event_id(event: &Value) -> Option<&str> {
    event.get("event_id").and_then(Value::as_str)
}

/// The events that matter, each event id once (its first place kept), as [`RoomEvent`]s of `room_id` that carry
/// the room id in the event too.
fn room_events(room_id: &str, events: impl IntoIterator<Item = Value>) -> Vec<RoomEvent> {
    let mut seen = std::collections::HashSet::new();
    events
        .into_iter()
        .filter(|e| matters(e) && event_id(e).is_none_or(|id| seen.insert(id.to_string())))
        .map(|mut event| {
            if let Some(object) = event.as_object_mut() {
                object.entry("room_id").or_insert_with(|| Value::String(room_id.to_string()));
            }
            RoomEvent { room_id: room_id.to_string(), event }
        })
        .collect()
}

/// Batches handed to the consumer, and its answers to come.
#[derive(Default)]
struct Handover {
    answers: Vec<oneshot::Receiver<()>>,
    events: usize,
}

impl Handover {
    /// Hands a batch to the consumer (an empty one is skipped); it works on it while the next is prepared.
    async fn hand(&mut self, inbox: &Inbox, events: Vec<RoomEvent>) -> Result<(), IntakeError> {
        if events.is_empty() {
            return Ok(());
        }
        self.events += events.len();
        let (done, answer) = oneshot::channel();
        inbox.send(Delivery { events, done: Some(done) }).await.map_err(|_| IntakeError::InboxClosed)?;
        self.answers.push(answer);
        Ok(())
    }

    /// Waits until the consumer has stored every batch handed over; returns the number of events.
    async fn stored(self) -> Result<usize, IntakeError> {
        for answer in self.answers {
            answer.await.map_err(|_| IntakeError::NotStored)?;
        }
        Ok(self.events)
    }
}

/// Delivers one batch and waits until the consumer has stored it.
async fn deliver(inbox: &Inbox, events: Vec<RoomEvent>) -> Result<usize, IntakeError> {
    let mut handover = Handover::default();
    handover.hand(inbox, events).await?;
    handover.stored().await
}

/// Waits for `stop` (a dropped sender counts as a stop).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_the_types_that_matter_each_once_with_their_room() {
        let events = vec![
            json!({"type": "m.room.message", "event_id": "$1", "content": {"body": "hi"}}),
            json!({"type": "m.room.topic", "event_id": "$2", "state_key": ""}),
            json!({"type": "m.room.member", "event_id": "$3", "state_key": "@a:x"}),
            json!({"type": "m.room.member", "event_id": "$4"}),
            json!({"type": "m.reaction", "event_id": "$5", "room_id": "!other"}),
            json!({"type": "m.room.message", "event_id": "$1", "content": {"body": "again"}}),
            json!({"type": "m.room.redaction", "event_id": "$6"}),
        ];
        let out = room_events("!r", events);
        let ids: Vec<_> = out.iter().map(|e| e.event_id().unwrap()).collect();
        assert_eq!(ids, ["$1", "$3", "$5", "$6"]);
        assert_eq!(out[0].event["room_id"], "!r");
        assert_eq!(out[0].event["content"]["body"], "hi", "the first place is kept");
        assert_eq!(out[2].event["room_id"], "!other", "a room id the event carries is left alone");
        assert!(out.iter().all(|e| e.room_id == "!r"));
    }

    #[tokio::test]
    async fn empty_batches_are_not_sent_and_a_batch_dropped_unanswered_is_not_stored() {
        let (inbox, mut rx) = mpsc::channel(4);
        let consumer = tokio::spawn(async move {
            let first: Delivery = rx.recv().await.unwrap();
            let _ = first.done.unwrap().send(());
            let second: Delivery = rx.recv().await.unwrap();
            drop(second);
        });
        let one = || vec![RoomEvent { room_id: "!r".into(), event: json!({"type": "m.room.message"}) }];
        let mut handover = Handover::default();
        handover.hand(&inbox, one()).await.unwrap();
        handover.hand(&inbox, vec![]).await.unwrap();
        assert_eq!(handover.stored().await.unwrap(), 1);
        assert!(matches!(deliver(&inbox, one()).await, Err(IntakeError::NotStored)));
        consumer.await.unwrap();
        assert!(matches!(deliver(&inbox, one()).await, Err(IntakeError::InboxClosed)));
    }
}
