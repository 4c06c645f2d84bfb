//! The Q&A widget's data: the ranked questions of the talk a room's page shows (a talk room: its talk; a backstage:
//! its track's talk of the moment), as JSON and as a server-sent-events stream that sends the board again the moment
//! a vote changes it (no polling timer) and when the talk of the moment changes. Both need the room's token.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Json;
use futures_util::Stream;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::{Denied, PageQuery, Pages};
use crate::qa::{Board, Qa};

/// The talk keys a room's Q&A follows.
fn talk_keys(pages: &Pages, conf: &str, key: &str, token: Option<&str>) -> Result<Vec<String>, Denied> {
    let site = pages.site();
    let room = site.backstage_room(conf, key, token)?;
    Ok(site.talks_of(room).into_iter().map(|t| t.key.clone()).collect())
}

/// What the page shows now: the talk and its board.
fn snapshot(pages: &Pages, qa: Option<&Qa>, room: &str, talks: &[String]) -> Value {
    let site = pages.site();
    let now = (site.clock)().timestamp_millis();
    let Some(qa) = qa else {
        // `stagehand serve` does not listen to the rooms: say so rather than show an empty board as if it were one.
        let live = site.conference.talks.iter().filter(|t| talks.contains(&t.key)).find(|t| t.start.timestamp_millis() <= now && now < t.end.timestamp_millis());
        return json!({"room": room, "listening": false, "talk": live.map(|t| json!({"key": t.key, "title": t.title})), "questions": [], "hidden": 0});
    };
    let shown = qa.scope().shown(talks, now);
    let talk = shown.as_ref().and_then(|k| site.conference.talks.iter().find(|t| &t.key == k));
    let board = shown.as_deref().map(|k| qa.board(k)).unwrap_or_default();
    board_json(room, talk.map(|t| (t.key.as_str(), t.title.as_str())), &board)
}

fn board_json(room: &str, talk: Option<(&str, &str)>, board: &Board) -> Value {
    json!({
        "room": room,
        "listening": true,
        "talk": talk.map(|(key, title)| json!({"key": key, "title": title})),
        "questions": board.questions,
        "hidden": board.hidden,
    })
}

pub(super) async fn qa_json(
    State(pages): State<Arc<Pages>>,
    Path((conf, key)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, Denied> {
    let talks = talk_keys(&pages, &conf, &key, q.token.as_deref())?;
    Ok(Json(snapshot(&pages, pages.qa.as_deref(), &key, &talks)))
}

/// How long the stream waits at most before looking at the talk of the moment again (a backstop: the exact instant
/// of the next change is waited for first).
const LONGEST_WAIT: Duration = Duration::from_secs(300);

pub(super) async fn qa_events(
    State(pages): State<Arc<Pages>>,
    Path((conf, key)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Denied> {
    let talks = talk_keys(&pages, &conf, &key, q.token.as_deref())?;
    let changes = pages.qa.as_ref().map(|qa| qa.subscribe());
    let first = snapshot(&pages, pages.qa.as_deref(), &key, &talks);
    let state = Stream_ { pages, room: key, talks, changes, pending: Some(first.clone()), last: Value::Null };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        let next = s.next().await?;
        Some((Ok(Event::default().event("board").data(next.to_string())), s))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

struct Stream_ {
    pages: Arc<Pages>,
    room: String,
    talks: Vec<String>,
    changes: Option<tokio::sync::broadcast::Receiver<Arc<Board>>>,
    pending: Option<Value>,
    last: Value,
}

impl Stream_ {
    /// The next board to send: at once when a vote changes the talk's board or the talk of the moment changes.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(v) = self.pending.take() {
                if v != self.last {
                    self.last = v.clone();
                    return Some(v);
                }
            }
            let qa = self.pages.qa.clone();
            let Some(rx) = self.changes.as_mut() else {
                // Nothing listens to the rooms: the board never changes; the stream stays open for keep-alives.
                std::future::pending::<()>().await;
                return None;
            };
            let wake = qa.as_ref().and_then(|qa| {
                let scope = qa.scope();
                let now = scope.clock().now().timestamp_millis();
                let at = scope.next_change(&self.talks, now)?;
                let wall = chrono::DateTime::from_timestamp_millis(at)?;
                Some(scope.clock().instant_at(wall))
            });
            let wake = wake.unwrap_or_else(|| tokio::time::Instant::now() + LONGEST_WAIT).min(tokio::time::Instant::now() + LONGEST_WAIT);
            tokio::select! {
                changed = rx.recv() => match changed {
                    Ok(board) => {
                        if !self.talks.contains(&board.talk) {
                            continue;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                },
                _ = tokio::time::sleep_until(wake) => {}
            }
            self.pending = Some(snapshot(&self.pages, qa.as_deref(), &self.room, &self.talks));
        }
    }
}
