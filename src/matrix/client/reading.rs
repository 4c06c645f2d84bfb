//! Reading what happens in rooms: `/sync` with a saved filter and `/messages` backwards, and what comes out of them.

use std::time::Duration;

use serde_json::Value;

use super::{Homeserver, MAX_RATE_LIMIT_WAIT, MatrixError, json, request_config, room_id_of, user_id_of};
use crate::metrics::RequestKind;

/// One joined room of a `/sync` answer, as far as the filter let it through.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncedRoom {
    pub room_id: String,
    /// The `state` section: state changes between the last sync and the start of the timeline.
    pub state: Vec<Value>,
    /// The timeline, oldest first.
    pub timeline: Vec<Value>,
    /// Events between the last sync and this timeline were left out (page `/messages` back from `prev_batch`).
    pub limited: bool,
    pub prev_batch: Option<String>,
}

/// A `/sync` answer: the joined rooms it has news of, and the token the next sync continues from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Synced {
    pub next_batch: String,
    pub rooms: Vec<SyncedRoom>,
}

impl Synced {
    fn of(resp: matrix_sdk::ruma::api::client::sync::sync_events::v3::Response) -> Synced {
        use matrix_sdk::ruma::api::client::sync::sync_events::v3::State;
        let rooms = resp
            .rooms
            .join
            .into_iter()
            .map(|(room_id, room)| {
                let state = match room.state {
                    State::Before(s) | State::After(s) => s.events.iter().filter_map(json).collect(),
                    _ => Vec::new(),
                };
                SyncedRoom {
                    room_id: room_id.to_string(),
                    state,
                    timeline: room.timeline.events.iter().filter_map(json).collect(),
                    limited: room.timeline.limited,
                    prev_batch: room.timeline.prev_batch,
                }
            })
            .collect();
        Synced { next_batch: resp.next_batch, rooms }
    }

    /// Reads a `/sync` answer's body, as the connection does (for tests of what comes out of it).
    #[cfg(test)]
    pub(crate) fn from_body(body: &[u8]) -> Result<Synced, MatrixError> {
        use matrix_sdk::ruma::api::IncomingResponse;
        use matrix_sdk::ruma::api::client::sync::sync_events::v3 as sync;
        let http = axum::http::Response::builder().status(200).body(body.to_vec()).map_err(|e| MatrixError::Setup(e.to_string()))?;
        let resp = sync::Response::try_from_http_response(http).map_err(|e| MatrixError::Setup(format!("not a sync answer: {e}")))?;
        Ok(Synced::of(resp))
    }
}

/// One page of `/messages` read backwards.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessagesPage {
    /// Newest first.
    pub chunk: Vec<Value>,
    /// State the chunk needs (with lazy-loaded members: the memberships of its senders).
    pub state: Vec<Value>,
    /// Where the next page starts; `None` at the room's beginning or at `to`.
    pub end: Option<String>,
}

impl Homeserver {
    /// Saves a filter for `/sync` (a filter naming a thousand rooms is too long for a URL) and returns its id.
    pub async fn upload_filter(&self, filter: &Value) -> Result<String, MatrixError> {
        use matrix_sdk::ruma::api::client::filter::{FilterDefinition, create_filter::v3 as create};
        let definition: FilterDefinition =
            serde_json::from_value(filter.clone()).map_err(|e| MatrixError::Setup(format!("not a sync filter: {e}")))?;
        let user = user_id_of(&self.user_id)?;
        let request = create::Request::new(user, definition);
        let resp = self.call("save the sync filter", false, || self.client.send(request.clone()).into_future()).await?;
        Ok(resp.filter_id)
    }

    /// One `/sync` with a saved filter, waiting up to `timeout` for news. Rate limits are waited out; any other
    /// error is returned at once (the caller backs off and reports it).
    pub async fn sync_once(&self, filter_id: &str, since: Option<&str>, timeout: Duration) -> Result<Synced, MatrixError> {
        use matrix_sdk::ruma::api::client::sync::sync_events::v3 as sync;
        use matrix_sdk::ruma::presence::PresenceState;
        let mut request = sync::Request::new();
        request.filter = Some(sync::Filter::FilterId(filter_id.to_string()));
        request.since = since.map(str::to_string);
        request.timeout = Some(timeout);
        request.set_presence = PresenceState::Offline;
        let config = request_config().timeout(timeout + Duration::from_secs(30));
        let resp = self
            .call_with("sync", RequestKind::Sync, 0, MAX_RATE_LIMIT_WAIT, || self.client.send(request.clone()).with_request_config(config).into_future())
            .await?;
        Ok(Synced::of(resp))
    }

    /// One page of a room's events backwards from `from` (a `/sync` or `/messages` token; none: the end of the room),
    /// down to `to` if given.
    pub async fn messages_back(&self, room_id: &str, from: Option<&str>, to: Option<&str>, filter: &Value, limit: u32) -> Result<MessagesPage, MatrixError> {
        use matrix_sdk::ruma::api::client::message::get_message_events::v3 as messages;
        let id = room_id_of(room_id)?;
        let mut request = messages::Request::backward(id);
        request.from = from.map(str::to_string);
        request.to = to.map(str::to_string);
        request.limit = limit.into();
        request.filter = serde_json::from_value(filter.clone()).map_err(|e| MatrixError::Setup(format!("not a room event filter: {e}")))?;
        let what = format!("read the history of {room_id}");
        let resp = self.call(&what, false, || self.client.send(request.clone()).into_future()).await?;
        Ok(MessagesPage { chunk: resp.chunk.iter().filter_map(json).collect(), state: resp.state.iter().filter_map(json).collect(), end: resp.end })
    }
}
