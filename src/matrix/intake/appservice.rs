//! The intake for a bot running as an application service: the homeserver pushes its rooms' events to
//! `PUT /_matrix/app/v1/transactions/{txnId}` (no `/sync` at all). A transaction is answered 200 only after the
//! consumer has stored its events and its id is recorded, so the homeserver retries one the bot crashed on; an id
//! already recorded is answered at once. Requests must carry the registration's `hs_token` (as `Authorization:
//! Bearer`, or `?access_token=` from older homeservers).
//!
//! Serves only the application service API under `/_matrix/app/v1` (and the legacy `/transactions`); merged into
//! the web server's router. Never logs the token.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post, put};
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};

use std::collections::BTreeSet;

use chrono::DateTime;

use super::history::history;
use super::{Inbox, IntakeError, IntakeStatus, RoomEvent, deliver, room_events, stopped};
use crate::matrix::client::Homeserver;
use crate::secrets::same_secret;
use crate::timeline::{Store, StoreError};

/// Synapse sends at most 100 events (of up to 64 KiB) per transaction, with ephemeral events and to-device messages
/// besides.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// How many days a recorded transaction id is kept (the homeserver retries for less).
const KEEP_DAYS: i64 = 30;

struct Pushed {
    hs_token: String,
    store: Store,
    inbox: Inbox,
    status: watch::Sender<IntakeStatus>,
    /// One transaction at a time, in the order they come (the homeserver sends them one by one anyway).
    turn: Mutex<()>,
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

/// The application service routes. `hs_token` comes from the registration ([`crate::secrets::appservice_hs_token`]).
pub fn router(hs_token: String, store: Store, inbox: Inbox, status: watch::Sender<IntakeStatus>) -> Router {
    status.send_modify(|s| {
        s.mode = "appservice";
        s.alive = true;
    });
    let pushed = Arc::new(Pushed { hs_token, store, inbox, status, turn: Mutex::new(()) });
    Router::new()
        .route("/_matrix/app/v1/transactions/{txn_id}", put(transaction))
        .route("/transactions/{txn_id}", put(transaction))
        .route("/_matrix/app/v1/users/{user_id}", get(nobody))
        .route("/_matrix/app/v1/rooms/{alias}", get(nobody))
        .route("/_matrix/app/v1/ping", post(ping))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(pushed)
}

fn error(status: StatusCode, errcode: &str, message: &str) -> Response {
    (status, Json(json!({"errcode": errcode, "error": message}))).into_response()
}

fn ok() -> Response {
    Json(json!({})).into_response()
}

/// Why a request was refused. No token at all: 401 `M_UNAUTHORIZED`; a wrong one: 403 `M_FORBIDDEN` (as the
/// application service API says).
enum Denied {
    NoToken,
    WrongToken,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::NoToken => error(StatusCode::UNAUTHORIZED, "M_UNAUTHORIZED", "no token: send the registration's hs_token"),
            Denied::WrongToken => error(StatusCode::FORBIDDEN, "M_FORBIDDEN", "the token does not match the registration's hs_token"),
        }
    }
}

impl Pushed {
    /// The homeserver's token, from the header or the query.
    fn check(&self, headers: &HeaderMap, query: &TokenQuery) -> Result<(), Denied> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        match bearer.or(query.access_token.as_deref()) {
            Some(token) if same_secret(token, &self.hs_token) => Ok(()),
            Some(_) => Err(Denied::WrongToken),
            None => Err(Denied::NoToken),
        }
    }

    fn failed(&self, e: &IntakeError) -> Response {
        tracing::warn!(error = %e, "a pushed transaction failed; the homeserver will retry it");
        self.status.send_modify(|s| s.failed(e));
        error(StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN", &e.to_string())
    }

    async fn take(&self, txn_id: String, body: &[u8]) -> Response {
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return error(StatusCode::BAD_REQUEST, "M_NOT_JSON", "the transaction is not JSON");
        };
        let _turn = self.turn.lock().await;
        match done(&self.store, txn_id.clone()).await {
            Ok(true) => return ok(),
            Ok(false) => {}
            Err(e) => return self.failed(&e.into()),
        }
        let events = transaction_events(&body);
        let delivered = match deliver(&self.inbox, events).await {
            Ok(n) => n,
            Err(e) => return self.failed(&e),
        };
        if let Err(e) = record(&self.store, txn_id).await {
            return self.failed(&e.into());
        }
        self.status.send_modify(|s| s.succeeded(delivered));
        ok()
    }
}

async fn transaction(
    State(pushed): State<Arc<Pushed>>,
    Path(txn_id): Path<String>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(denied) = pushed.check(&headers, &query) {
        return denied.into_response();
    }
    pushed.take(txn_id, &body).await
}

/// Stagehand creates no users or rooms on demand.
async fn nobody(State(pushed): State<Arc<Pushed>>, Query(query): Query<TokenQuery>, headers: HeaderMap) -> Response {
    if let Err(denied) = pushed.check(&headers, &query) {
        return denied.into_response();
    }
    error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Stagehand creates no users or rooms on demand")
}

async fn ping(State(pushed): State<Arc<Pushed>>, Query(query): Query<TokenQuery>, headers: HeaderMap) -> Response {
    if let Err(denied) = pushed.check(&headers, &query) {
        return denied.into_response();
    }
    ok()
}

/// The events of a transaction body that matter, in the order they came, each with its room.
pub(crate) fn transaction_events(body: &Value) -> Vec<RoomEvent> {
    let events = body.get("events").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut out = Vec::new();
    for event in events {
        let Some(room_id) = event.get("room_id").and_then(Value::as_str) else { continue };
        out.extend(room_events(room_id, [event.clone()]));
    }
    // Each event id once over the whole transaction.
    let mut seen = std::collections::HashSet::new();
    out.retain(|e| e.event_id().is_none_or(|id| seen.insert(id.to_string())));
    out
}

const TABLE: &str = "CREATE TABLE IF NOT EXISTS intake_transactions (txn_id TEXT PRIMARY KEY, done_at TEXT NOT NULL)";

/// Whether the transaction was taken in already.
async fn done(store: &Store, txn_id: String) -> Result<bool, StoreError> {
    store
        .call(move |c| {
            c.execute_batch(TABLE)?;
            c.query_row("SELECT 1 FROM intake_transactions WHERE txn_id = ?1", [txn_id], |_| Ok(())).map(|()| true).or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(false),
                e => Err(e),
            })
        })
        .await
}

/// Records a transaction as taken in, and forgets those older than [`KEEP_DAYS`].
async fn record(store: &Store, txn_id: String) -> Result<(), StoreError> {
    let now = Utc::now();
    let (at, old) = (now.to_rfc3339(), (now - chrono::Duration::days(KEEP_DAYS)).to_rfc3339());
    store
        .call(move |c| {
            c.execute_batch(TABLE)?;
            c.execute("INSERT OR IGNORE INTO intake_transactions (txn_id, done_at) VALUES (?1, ?2)", [&txn_id, &at])?;
            c.execute("DELETE FROM intake_transactions WHERE done_at < ?1", [&old])
        })
        .await
        .map(drop)
}

/// Rooms whose history an application service has delivered (a JSON list in the store).
const READ_KEY: &str = "intake.appservice.rooms";

/// The history an application service would otherwise never see: the homeserver pushes only what happens from
/// now on (and retries what the bot missed while down), so a room listed for the first time, or every room when the
/// store is new, has its history read from `/messages` (back to `not_before`) and delivered, once. Runs until `stop`,
/// following the room list; a room that cannot be read yet is tried again at the next change of the list, and
/// failures are retried after a pause.
pub async fn catch_up(
    hs: &Homeserver,
    mut rooms: watch::Receiver<Arc<Vec<String>>>,
    store: Store,
    inbox: Inbox,
    not_before: Option<DateTime<Utc>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let listed = rooms.borrow_and_update().clone();
        if let Err(e) = read_new_rooms(hs, &listed, &store, &inbox, not_before).await {
            tracing::warn!(error = %e, "cannot read the rooms' history yet; trying again in 30 s");
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => continue,
                _ = stopped(&mut stop) => return,
            }
        }
        tokio::select! {
            changed = rooms.changed() => if changed.is_err() { return },
            _ = stopped(&mut stop) => return,
        }
    }
}

async fn read_new_rooms(hs: &Homeserver, listed: &[String], store: &Store, inbox: &Inbox, not_before: Option<DateTime<Utc>>) -> Result<(), IntakeError> {
    let mut read: BTreeSet<String> = store.value(READ_KEY).await?.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default();
    let new: Vec<&String> = listed.iter().filter(|r| !read.contains(*r)).collect();
    for room_id in new {
        match history(hs, room_id, None, not_before).await {
            Ok(events) => {
                tracing::info!(room = %room_id, events = events.len(), "read the room's history");
                deliver(inbox, events).await?;
                read.insert(room_id.clone());
                store.set_value(READ_KEY, &json!(read).to_string()).await?;
            }
            Err(e) if matches!(e.errcode(), Some("M_FORBIDDEN" | "M_NOT_FOUND")) => {
                tracing::info!(room = %room_id, error = %e, "cannot read the room's history yet (the bot is not in it?)");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_keeps_the_events_that_matter_in_order() {
        let body = json!({"events": [
            {"type": "m.room.message", "event_id": "$1", "room_id": "!a", "content": {"body": "Q?"}},
            {"type": "m.room.name", "event_id": "$2", "room_id": "!a", "state_key": "", "content": {}},
            {"type": "m.reaction", "event_id": "$3", "room_id": "!b", "content": {}},
            {"type": "m.room.message", "event_id": "$4", "content": {}},
            {"type": "m.room.member", "event_id": "$5", "room_id": "!a", "state_key": "@x:y", "content": {"membership": "join"}},
            {"type": "m.room.message", "event_id": "$1", "room_id": "!a", "content": {}}
        ], "ephemeral": [{"type": "m.typing"}]});
        let out = transaction_events(&body);
        let got: Vec<_> = out.iter().map(|e| (e.room_id.as_str(), e.event_id().unwrap())).collect();
        assert_eq!(got, [("!a", "$1"), ("!b", "$3"), ("!a", "$5")]);
        assert_eq!(out[0].event["content"]["body"], "Q?");
        assert!(transaction_events(&json!({})).is_empty());
    }

    #[tokio::test]
    async fn transaction_ids_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.sqlite")).unwrap();
        assert!(!done(&store, "7".into()).await.unwrap());
        record(&store, "7".into()).await.unwrap();
        record(&store, "7".into()).await.unwrap();
        assert!(done(&store, "7".into()).await.unwrap());
        assert!(!done(&store, "8".into()).await.unwrap());
    }
}
