//! The homeserver connection (authentication is in [`super::session`]) and every request Stagehand makes, with its own handling of rate limits (`retry_after_ms` is
//! honoured and logged) and transient errors. Counts reads and writes so a run can prove it wrote nothing.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use matrix_sdk::config::RequestConfig;
use matrix_sdk::ruma::api::client::{alias, room, state};
use matrix_sdk::ruma::api::error::{ErrorKind, LimitExceededErrorData, RetryAfter};
use matrix_sdk::ruma::events::{AnyInitialStateEvent, AnyStateEventContent, StateEventType};
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomAliasId, OwnedRoomId, OwnedUserId, RoomVersionId};
use matrix_sdk::{Client, HttpError};
use serde_json::Value;

use super::session;

mod reading;
pub use reading::{MessagesPage, Synced, SyncedRoom};
pub use super::session::{Credentials, appservice_registration};
use crate::metrics::{self, InviteMedium, RequestKind, RequestOutcome};
use crate::plan::state::StateItem;

/// One state event as the homeserver returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct StateEvent {
    pub event_type: String,
    pub state_key: String,
    pub content: Value,
    /// The content this event replaced, when the server says (`unsigned.prev_content`).
    pub prev_content: Option<Value>,
    /// The id of the event this one replaced (`unsigned.replaces_state`).
    pub replaces_state: Option<String>,
}

impl StateEvent {
    pub fn from_json(v: &Value) -> Option<StateEvent> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let unsigned = v.get("unsigned");
        Some(StateEvent {
            event_type: text("type")?,
            state_key: text("state_key")?,
            content: v.get("content").cloned().unwrap_or(Value::Null),
            prev_content: unsigned.and_then(|u| u.get("prev_content")).or_else(|| v.get("prev_content")).cloned(),
            replaces_state: unsigned.and_then(|u| u.get("replaces_state")).and_then(Value::as_str).map(str::to_string),
        })
    }
}

pub use crate::plan::state::StateMap;

fn json<T>(raw: &Raw<T>) -> Option<Value> {
    raw.deserialize_as_unchecked::<Value>().ok()
}

/// The contents of a room's state, by (type, state key).
pub fn state_map(events: &[StateEvent]) -> StateMap {
    events.iter().map(|e| ((e.event_type.clone(), e.state_key.clone()), e.content.clone())).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("{what}: the homeserver answered {status} {errcode}: {message}")]
    Api { what: String, status: u16, errcode: String, message: String },
    #[error("{what}: {message}")]
    Transport { what: String, message: String },
    #[error("{0}")]
    Setup(String),
}

impl MatrixError {
    pub fn errcode(&self) -> Option<&str> {
        match self {
            MatrixError::Api { errcode, .. } => Some(errcode),
            _ => None,
        }
    }
}

/// Request counts of one connection.
#[derive(Debug, Default)]
pub struct Counters {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub rooms_created: AtomicU64,
    pub state_events: AtomicU64,
    pub invites: AtomicU64,
    /// State events sent inside createRoom (initial state, power levels).
    pub initial_state_events: AtomicU64,
    pub rate_limited: AtomicU64,
    pub rate_limited_ms: AtomicU64,
    pub retries: AtomicU64,
    pub messages: AtomicU64,
}

impl Counters {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// A connection to the homeserver.
#[derive(Clone)]
pub struct Homeserver {
    client: Client,
    pub user_id: String,
    pub server_name: String,
    pub counters: Arc<Counters>,
    test_pause: Option<(String, u64)>,
}

/// The longest a single request waits out 429s in total.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30 * 60);

fn request_config() -> RequestConfig {
    // Stagehand handles 429 and transient errors itself, visibly; the SDK must not retry for minutes silently.
    RequestConfig::new().disable_retry().timeout(Duration::from_secs(60))
}

impl Homeserver {
    /// Connects and authenticates.
    pub async fn connect(url: &str, credentials: &Credentials) -> Result<Homeserver, MatrixError> {
        let setup = |e: &dyn std::fmt::Display| MatrixError::Setup(format!("{url}: {e}"));
        let client = Client::builder()
            .homeserver_url(url)
            .request_config(request_config())
            // Skips a GET /versions before the first request; every endpoint we use is in v1.11.
            .server_versions([matrix_sdk::ruma::api::MatrixVersion::V1_11])
            .build()
            .await
            .map_err(|e| setup(&e))?;
        session::login(&client, url, credentials).await?;
        let user_id = client.user_id().map(|u| u.to_string()).ok_or_else(|| MatrixError::Setup("no user after login".into()))?;
        let server_name = user_id.split_once(':').map(|(_, s)| s.to_string()).unwrap_or_default();
        let test_pause = std::env::var("STAGEHAND_TEST_PAUSE_AFTER").ok().and_then(|v| {
            let (what, n) = v.split_once(':')?;
            Some((what.to_string(), n.parse().ok()?))
        });
        Ok(Homeserver { client, user_id, server_name, counters: Arc::new(Counters::default()), test_pause })
    }

    /// Sends a request, waiting out rate limits and retrying transient errors. `kind` is a [`RequestKind`], or a
    /// bool (write or not) for requests that need no kind of their own.
    async fn call<T, F, Fut>(&self, what: &str, kind: impl Into<RequestKind>, f: F) -> Result<T, MatrixError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, HttpError>>,
    {
        self.call_with(what, kind, 6, MAX_RATE_LIMIT_WAIT, f).await
    }

    /// [`Self::call`] with a bound on retries of transient errors (invites use 0) and on the total time spent waiting
    /// out rate limits (time-critical sends give up early rather than arrive late).
    async fn call_with<T, F, Fut>(
        &self,
        what: &str,
        kind: impl Into<RequestKind>,
        transient_limit: u32,
        max_wait: Duration,
        mut f: F,
    ) -> Result<T, MatrixError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, HttpError>>,
    {
        let kind = kind.into();
        let metrics = metrics::global();
        let mut transient_tries = 0u32;
        let mut waited = Duration::ZERO;
        loop {
            let counter = if kind.is_write() { &self.counters.writes } else { &self.counters.reads };
            counter.fetch_add(1, Ordering::Relaxed);
            let err = match f().await {
                Ok(v) => {
                    metrics.request(kind, RequestOutcome::Ok);
                    return Ok(v);
                }
                Err(e) => e,
            };
            if let Some(ErrorKind::LimitExceeded(LimitExceededErrorData { retry_after, .. })) = err.client_api_error_kind() {
                metrics.request(kind, RequestOutcome::RateLimited);
                let wait = match retry_after {
                    Some(RetryAfter::Delay(d)) => *d,
                    Some(RetryAfter::DateTime(t)) => t.duration_since(std::time::SystemTime::now()).unwrap_or_default(),
                    None => Duration::from_secs(5),
                }
                .max(Duration::from_millis(50));
                // A server that never lets us through (or asks for hours) is an error for this object, not a hang.
                waited += wait;
                if waited > max_wait {
                    return Err(MatrixError::Transport {
                        what: what.to_string(),
                        message: format!("still rate limited after waiting {} s; raise the homeserver's limits", waited.as_secs()),
                    });
                }
                self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                self.counters.rate_limited_ms.fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
                metrics.rate_limit_wait(kind, wait);
                tracing::warn!(request = what, wait_ms = wait.as_millis() as u64, "rate limited by the homeserver; waiting");
                tokio::time::sleep(wait).await;
                continue;
            }
            metrics.request(kind, RequestOutcome::Error);
            let transient = match &err {
                HttpError::Api(_) => err.as_client_api_error().is_some_and(|e| e.status_code.is_server_error()),
                HttpError::Reqwest(_) => true,
                _ => false,
            };
            if transient && transient_tries < transient_limit {
                transient_tries += 1;
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                let wait = Duration::from_millis(250 * 2u64.pow(transient_tries));
                tracing::warn!(request = what, error = %err, attempt = transient_tries, wait_ms = wait.as_millis() as u64, "transient error; retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(describe(what, &err));
        }
    }

    /// Whether the homeserver answers: one `whoami`, no retries (a health check).
    pub async fn ping(&self) -> Result<(), MatrixError> {
        use matrix_sdk::ruma::api::client::account::whoami::v3 as whoami;
        self.call_with("check the homeserver", false, 0, Duration::from_secs(5), || self.client.send(whoami::Request::new()).into_future())
            .await
            .map(drop)
    }

    /// Room id of an alias, or `None` when it does not exist.
    pub async fn resolve_alias(&self, alias: &str) -> Result<Option<String>, MatrixError> {
        let alias_id = OwnedRoomAliasId::try_from(alias).map_err(|e| MatrixError::Setup(format!("alias {alias}: {e}")))?;
        let what = format!("resolve {alias}");
        match self.call(&what, false, || self.client.send(alias::get_alias::v3::Request::new(alias_id.clone())).into_future()).await {
            Ok(resp) => Ok(Some(resp.room_id.to_string())),
            Err(e) if e.errcode() == Some("M_NOT_FOUND") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The room's full current state.
    pub async fn room_state(&self, room_id: &str) -> Result<Vec<StateEvent>, MatrixError> {
        let id = room_id_of(room_id)?;
        let what = format!("read the state of {room_id}");
        let resp = self.call(&what, false, || self.client.send(state::get_state_events::v3::Request::new(id.clone())).into_future()).await?;
        let mut out = Vec::with_capacity(resp.room_state.len());
        for raw in resp.room_state {
            let Ok(v) = raw.deserialize_as_unchecked::<Value>() else { continue };
            if let Some(e) = StateEvent::from_json(&v) {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// The content of one state event, or `None` when the room has none of that type and key.
    pub async fn state_event(&self, room_id: &str, event_type: &str, state_key: &str) -> Result<Option<Value>, MatrixError> {
        self.get_state(room_id, event_type, state_key, state::get_state_event_for_key::v3::StateEventFormat::Content).await
    }

    /// One current state event whole (event id, sender, timestamp, content), or `None` when the room has none.
    pub async fn current_state_event(&self, room_id: &str, event_type: &str, state_key: &str) -> Result<Option<Value>, MatrixError> {
        self.get_state(room_id, event_type, state_key, state::get_state_event_for_key::v3::StateEventFormat::Event).await
    }

    async fn get_state(
        &self,
        room_id: &str,
        event_type: &str,
        state_key: &str,
        format: state::get_state_event_for_key::v3::StateEventFormat,
    ) -> Result<Option<Value>, MatrixError> {
        use state::get_state_event_for_key::v3 as get;
        let id = room_id_of(room_id)?;
        let what = format!("read {event_type} in {room_id}");
        let mut request = get::Request::new(id, StateEventType::from(event_type), state_key.to_string());
        request.format = format;
        match self.call(&what, false, || self.client.send(request.clone()).into_future()).await {
            Ok(resp) => Ok(serde_json::from_str::<Value>(resp.event_or_content.get()).ok()),
            Err(e) if e.errcode() == Some("M_NOT_FOUND") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One event of a room, as JSON (for the membership an event replaced).
    pub async fn event(&self, room_id: &str, event_id: &str) -> Result<Value, MatrixError> {
        let id = room_id_of(room_id)?;
        let event = OwnedEventId::try_from(event_id).map_err(|e| MatrixError::Setup(format!("event id {event_id}: {e}")))?;
        let what = format!("read event {event_id} of {room_id}");
        let resp = self
            .call(&what, false, || self.client.send(room::get_room_event::v3::Request::new(id.clone(), event.clone())).into_future())
            .await?;
        resp.event.deserialize_as_unchecked::<Value>().map_err(|e| MatrixError::Transport { what, message: e.to_string() })
    }

    /// An OpenID token proving to a third party (the identity server) that we are this user.
    pub async fn openid_token(&self) -> Result<Value, MatrixError> {
        use matrix_sdk::ruma::api::client::account::request_openid_token::v3 as openid;
        let user = user_id_of(&self.user_id)?;
        let resp = self.call("request an OpenID token", false, || self.client.send(openid::Request::new(user.clone())).into_future()).await?;
        Ok(serde_json::json!({
            "access_token": resp.access_token,
            "token_type": "Bearer",
            "matrix_server_name": resp.matrix_server_name.to_string(),
            "expires_in": resp.expires_in.as_secs(),
        }))
    }

    /// Creates a room with everything that can go into `createRoom`. Returns the room id.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_room(
        &self,
        alias_localpart: &str,
        room_version: &str,
        is_space: bool,
        public: bool,
        initial_state: &[StateItem],
        power_levels: &Value,
    ) -> Result<String, MatrixError> {
        let mut request = room::create_room::v3::Request::new();
        request.room_alias_name = Some(alias_localpart.to_string());
        request.room_version = Some(RoomVersionId::try_from(room_version).map_err(|e| MatrixError::Setup(format!("room version {room_version}: {e}")))?);
        request.visibility = if public { room::Visibility::Public } else { room::Visibility::Private };
        request.preset = Some(if public { room::create_room::v3::RoomPreset::PublicChat } else { room::create_room::v3::RoomPreset::PrivateChat });
        if is_space {
            request.creation_content = Some(raw(&serde_json::json!({"type": "m.space"}))?);
        }
        request.power_level_content_override = Some(raw(power_levels)?);
        request.initial_state = initial_state
            .iter()
            .map(|s| raw::<AnyInitialStateEvent>(&serde_json::json!({"type": s.event_type, "state_key": s.state_key, "content": s.content})))
            .collect::<Result<_, _>>()?;
        let what = format!("create #{alias_localpart}");
        let resp = self.call(&what, RequestKind::CreateRoom, || self.client.send(request.clone()).into_future()).await?;
        self.counters.rooms_created.fetch_add(1, Ordering::Relaxed);
        self.counters.initial_state_events.fetch_add(initial_state.len() as u64 + 1, Ordering::Relaxed);
        self.test_point("create").await;
        Ok(resp.room_id.to_string())
    }

    /// Sends one state event.
    /// Returns the event id (the current one when the server found nothing new in it).
    pub async fn put_state(&self, room_id: &str, item: &StateItem) -> Result<String, MatrixError> {
        let id = room_id_of(room_id)?;
        let body: Raw<AnyStateEventContent> = raw(&item.content)?;
        let event_type = StateEventType::from(item.event_type.as_str());
        let request = state::send_state_event::v3::Request::new_raw(id, event_type, item.state_key.clone(), body);
        let what = format!("send {} in {room_id}", item.event_type);
        let resp = self.call(&what, RequestKind::State, || self.client.send(request.clone()).into_future()).await?;
        self.counters.state_events.fetch_add(1, Ordering::Relaxed);
        self.test_point("state").await;
        Ok(resp.event_id.to_string())
    }

    /// Invites a user.
    pub async fn invite(&self, room_id: &str, user_id: &str) -> Result<(), MatrixError> {
        use matrix_sdk::ruma::api::client::membership::invite_user::v3 as invite;
        let id = room_id_of(room_id)?;
        let user = user_id_of(user_id)?;
        let request = invite::Request::new(id, invite::InvitationRecipient::UserId(invite::InviteUserId::new(user)));
        self.send_invite(&format!("invite {user_id} to {room_id}"), InviteMedium::Matrix, request).await
    }

    /// Sends an invite: no retry on server errors (usually a remote server that cannot be reached, which Synapse
    /// has already tried), counted, with the `invite` test point.
    async fn send_invite(
        &self,
        what: &str,
        medium: InviteMedium,
        request: matrix_sdk::ruma::api::client::membership::invite_user::v3::Request,
    ) -> Result<(), MatrixError> {
        self.call_with(what, RequestKind::Invite, 0, MAX_RATE_LIMIT_WAIT, || self.client.send(request.clone()).into_future()).await?;
        self.counters.invites.fetch_add(1, Ordering::Relaxed);
        metrics::global().invite_sent(medium);
        self.test_point("invite").await;
        Ok(())
    }

    /// Whether the room is published in the server's room directory.
    pub async fn published(&self, room_id: &str) -> Result<bool, MatrixError> {
        use matrix_sdk::ruma::api::client::directory::get_room_visibility::v3 as get;
        let id = room_id_of(room_id)?;
        let what = format!("read the directory visibility of {room_id}");
        let resp = self.call(&what, false, || self.client.send(get::Request::new(id.clone())).into_future()).await?;
        Ok(resp.visibility == room::Visibility::Public)
    }

    /// Publishes the room in the room directory, or takes it out.
    pub async fn publish(&self, room_id: &str, public: bool) -> Result<(), MatrixError> {
        use matrix_sdk::ruma::api::client::directory::set_room_visibility::v3 as set;
        let id = room_id_of(room_id)?;
        let visibility = if public { room::Visibility::Public } else { room::Visibility::Private };
        let what = format!("set the directory visibility of {room_id}");
        self.call(&what, true, || self.client.send(set::Request::new(id.clone(), visibility.clone())).into_future()).await?;
        Ok(())
    }

    /// Invites an e-mail address through the identity server (the homeserver looks it up and, if nobody has bound
    /// it yet, has the identity server store the invite and mail it; the room gets an `m.room.third_party_invite`).
    pub async fn invite_email(&self, room_id: &str, id_server: &str, id_access_token: &str, address: &str) -> Result<(), MatrixError> {
        use matrix_sdk::ruma::api::client::membership::{Invite3pid, Invite3pidInit, invite_user::v3 as invite};
        use matrix_sdk::ruma::thirdparty::Medium;
        let id = room_id_of(room_id)?;
        let recipient: Invite3pid = Invite3pidInit {
            id_server: id_server.to_string(),
            id_access_token: id_access_token.to_string(),
            medium: Medium::Email,
            address: address.to_string(),
        }
        .into();
        let request = invite::Request::new(id, invite::InvitationRecipient::ThirdPartyId(recipient));
        self.send_invite(&format!("invite an e-mail address to {room_id}"), InviteMedium::Email, request).await
    }

    /// Withdraws an invite or removes a member.
    pub async fn kick(&self, room_id: &str, user_id: &str, reason: &str) -> Result<(), MatrixError> {
        use matrix_sdk::ruma::api::client::membership::kick_user::v3 as kick;
        let id = room_id_of(room_id)?;
        let user = user_id_of(user_id)?;
        let mut request = kick::Request::new(id, user);
        request.reason = Some(reason.to_string());
        let what = format!("remove {user_id} from {room_id}");
        self.call(&what, RequestKind::Kick, || self.client.send(request.clone()).into_future()).await?;
        Ok(())
    }

    /// Sends a message-like event under the caller's transaction id: the homeserver answers a repeat of the same id
    /// from the same session with the first event, so a send retried after a crash is not shown twice. An urgent
    /// send retries a server error once and waits out rate limits for at most a few seconds: late is worse than
    /// failed and reported. Returns the event id.
    pub async fn send_message(&self, room_id: &str, txn_id: &str, event_type: &str, content: &Value, urgent: bool) -> Result<String, MatrixError> {
        use matrix_sdk::ruma::api::client::message::send_message_event::v3 as send;
        use matrix_sdk::ruma::events::{AnyMessageLikeEventContent, MessageLikeEventType};
        let id = room_id_of(room_id)?;
        let body: Raw<AnyMessageLikeEventContent> = raw(content)?;
        let request = send::Request::new_raw(id, txn_id.into(), MessageLikeEventType::from(event_type), body);
        let what = format!("send {event_type} in {room_id}");
        let (retries, max_wait) = if urgent { (1, Duration::from_secs(5)) } else { (6, MAX_RATE_LIMIT_WAIT) };
        let resp = self.call_with(&what, RequestKind::Message, retries, max_wait, || self.client.send(request.clone()).into_future()).await?;
        self.counters.messages.fetch_add(1, Ordering::Relaxed);
        self.test_point("message").await;
        Ok(resp.event_id.to_string())
    }

    /// Test hook: `STAGEHAND_TEST_PAUSE_AFTER=create:N` (or `state:N`) stops here after the Nth such write, says so
    /// on stderr and waits to be killed. Lets tests SIGKILL the bot at an exact point.
    async fn test_point(&self, what: &str) {
        let Some((w, n)) = &self.test_pause else { return };
        if w != what {
            return;
        }
        let count = match what {
            "create" => Counters::get(&self.counters.rooms_created),
            "invite" => Counters::get(&self.counters.invites),
            "message" => Counters::get(&self.counters.messages),
            _ => Counters::get(&self.counters.state_events),
        };
        if count == *n {
            eprintln!("STAGEHAND_TEST_POINT {what} {count}");
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        }
    }
}

fn raw<T>(v: &Value) -> Result<Raw<T>, MatrixError> {
    let json = serde_json::value::to_raw_value(v).map_err(|e| MatrixError::Setup(format!("cannot encode JSON: {e}")))?;
    Ok(Raw::from_json(json))
}

pub(super) fn user_id_of(user_id: &str) -> Result<OwnedUserId, MatrixError> {
    OwnedUserId::try_from(user_id).map_err(|e| MatrixError::Setup(format!("user id {user_id}: {e}")))
}

fn room_id_of(room_id: &str) -> Result<OwnedRoomId, MatrixError> {
    OwnedRoomId::try_from(room_id).map_err(|e| MatrixError::Setup(format!("room id {room_id}: {e}")))
}

fn describe(what: &str, err: &HttpError) -> MatrixError {
    if let Some(api) = err.as_client_api_error() {
        let (errcode, message) = match &api.body {
            matrix_sdk::ruma::api::error::ErrorBody::Standard(s) => (
                api.error_kind().map(|k| k.errcode().to_string()).unwrap_or_default(),
                s.message.clone(),
            ),
            other => (String::new(), format!("{other:?}")),
        };
        return MatrixError::Api { what: what.to_string(), status: api.status_code.as_u16(), errcode, message };
    }
    MatrixError::Transport { what: what.to_string(), message: err.to_string() }
}
