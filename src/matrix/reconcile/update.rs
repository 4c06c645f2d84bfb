//! Update: an existing room's state brought to the plan, field by field (what to change is decided in
//! `plan::desired`), and its entry in the room directory.

use serde_json::json;
use tracing::instrument;

use super::super::client::Homeserver;
use super::locate::Located;
use super::report::{FieldChange, ObjectReport, Status};
use super::{Built, Room};
use crate::plan::PlannedRoom;
use crate::plan::desired::{self, Observed, RoomWork, Settings};
use crate::plan::managed::Links;
use crate::plan::state::{self, StateMap};

/// Brings one existing room to the plan.
#[instrument(skip_all, fields(room = %room.key))]
pub async fn update(hs: &Homeserver, room: &PlannedRoom, found: Located, s: &Settings, parent_id: Option<&str>, links: &Links, dry_run: bool) -> Built {
    let Located { room_id, mut state, managed, .. } = found;
    let RoomWork { changes, members } = desired::room(room, Observed { state: &state, managed: &managed }, s, parent_id, links);
    // A talk room opened after its talk is public to join but never listed: only rooms the plan makes public, or
    // that were public otherwise, have their directory entry looked at.
    let opened = s.moment.open.contains(&room.key);
    let directory = if s.members_only || opened { None } else { directory_change(hs, &room_id, room, &state, dry_run).await };
    let result = super::send(hs, &room_id, &changes, dry_run).await;
    let ok = result.is_ok();
    if ok {
        for c in &changes {
            state.insert((c.item.event_type.clone(), c.item.state_key.clone()), c.item.content.clone());
        }
    }
    let mut report = ObjectReport::of(room, Some(room_id.clone()), Status::Unchanged);
    report.merge(&changes, &result);
    if let Some(change) = directory {
        match &mut report.status {
            Status::Update { changes } => changes.push(change),
            Status::Unchanged => report.status = Status::Update { changes: vec![change] },
            _ => {}
        }
    }
    Built { report, room: Some(Room { id: room_id, state, previous: managed, ok, members }), link: None }
}

/// Brings the room's entry in the room directory to the plan (public rooms listed, others not). Only rooms that are
/// or were public are looked at. A server that refuses to publish (`room_list_publication_rules`) gets a warning,
/// not a failure: the room itself is right.
async fn directory_change(hs: &Homeserver, room_id: &str, room: &PlannedRoom, state: &StateMap, dry_run: bool) -> Option<FieldChange> {
    let was_public = state::get(state, "m.room.join_rules", "").is_some_and(|c| c["join_rule"] == "public");
    if !room.public && !was_public {
        return None;
    }
    let listed = match hs.published(room_id).await {
        Ok(listed) => listed,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the room's directory visibility");
            return None;
        }
    };
    if listed == room.public {
        return None;
    }
    let visibility = |public: bool| json!({"visibility": if public { "public" } else { "private" }});
    let change = FieldChange { event_type: "directory".into(), state_key: String::new(), from: Some(visibility(listed)), to: visibility(room.public) };
    if dry_run {
        return Some(change);
    }
    match hs.publish(room_id, room.public).await {
        Ok(()) => {
            tracing::info!(public = room.public, "directory visibility");
            Some(change)
        }
        Err(e) => {
            tracing::warn!(error = %e, "the homeserver refused the directory change; check room_list_publication_rules");
            None
        }
    }
}
