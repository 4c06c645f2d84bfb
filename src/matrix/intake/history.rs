//! A room's history from `/messages`, read backwards and delivered oldest first: for a room first listed or a store
//! that is new (over sync and for an application service alike), and for the gap of a limited sync.

use chrono::{DateTime, Utc};

use super::RoomEvent;
use super::sync::{PAGE_LIMIT, history_filter, ordered, sent_at};
use crate::matrix::client::{Homeserver, MatrixError, MessagesPage};

/// A room's whole history up to `from` (none: up to now), back to its creation or `not_before`; when cut at
/// `not_before`, the room's current power levels come first (unless the history holds them), so moderators are known.
pub(super) async fn history(hs: &Homeserver, room_id: &str, from: Option<&str>, not_before: Option<DateTime<Utc>>) -> Result<Vec<RoomEvent>, MatrixError> {
    let (mut pages, cut) = pages(hs, room_id, from, None, not_before).await?;
    if cut && let Some(levels) = hs.current_state_event(room_id, "m.room.power_levels", "").await? {
        match pages.last_mut() {
            Some(oldest) => oldest.state.insert(0, levels),
            None => pages.push(MessagesPage { state: vec![levels], ..MessagesPage::default() }),
        }
    }
    Ok(ordered(room_id, pages, Vec::new(), Vec::new()))
}

/// Pages `/messages` backwards from `from` (none: the end of the room) down to `to` (or the room's start), stopping
/// at `not_before` when there is no `to`. Returns the pages newest first, and whether `not_before` cut the history.
pub(super) async fn pages(
    hs: &Homeserver,
    room_id: &str,
    from: Option<&str>,
    to: Option<&str>,
    not_before: Option<DateTime<Utc>>,
) -> Result<(Vec<MessagesPage>, bool), MatrixError> {
    let filter = history_filter();
    let not_before = if to.is_none() { not_before } else { None };
    let mut pages = Vec::new();
    let mut from = from.map(str::to_string);
    loop {
        let mut page = hs.messages_back(room_id, from.as_deref(), to, &filter, PAGE_LIMIT).await?;
        let empty = page.chunk.is_empty();
        let older = not_before.and_then(|t| page.chunk.iter().position(|e| sent_at(e).is_some_and(|at| at < t)));
        if let Some(i) = older {
            page.chunk.truncate(i);
        }
        let end = page.end.take();
        pages.push(page);
        if older.is_some() {
            return Ok((pages, true));
        }
        match end {
            Some(end) if !empty && Some(&end) != from.as_ref() => from = Some(end),
            _ => return Ok((pages, false)),
        }
    }
}
