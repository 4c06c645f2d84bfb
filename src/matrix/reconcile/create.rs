//! Create: a missing room is made with everything known at creation inside `createRoom` (alias, room version,
//! initial state with the managed record, its parent link when it names its space, a space's links to the rooms
//! made before it, power levels). A room that names its space hands back the link the space needs, which the build
//! sends while other rooms are still being created, so the links cost no round of their own. A room whose alias turns out taken by an earlier run that did not live to see the answer is adopted, not
//! made again.

use tracing::instrument;

use super::super::client::Homeserver;
use super::locate::locate;
use super::report::{ObjectReport, Status};
use super::{Built, Family, Link, Room, update};
use crate::plan::PlannedRoom;
use crate::plan::desired::{self, Settings, spaces};
use crate::plan::managed::{Links, Managed};

/// Creates one room with what the build knows of its relations.
#[instrument(skip_all, fields(room = %room.key))]
pub async fn create(hs: &Homeserver, room: &PlannedRoom, s: &Settings, links: &Links, family: Family<'_>) -> Built {
    let Family { parent, parent_id, children } = family;
    let creation = desired::creation(room, s, parent.map(|(_, p)| p.id.as_str()), &children, links);
    let alias_local = room.alias.trim_start_matches('#').split(':').next().unwrap_or_default();
    let result = hs
        .create_room(alias_local, &s.room_version, room.kind.is_space(), room.public, &creation.initial_state, &creation.power_levels)
        .await;
    let failed = |status| Built { report: ObjectReport::of(room, None, status), room: None, link: None };
    match result {
        Ok(room_id) => {
            tracing::debug!(room_id = %room_id, "created");
            let link = parent.and_then(|(key, space)| {
                let change = desired::change(&space.state, spaces::child_link(room, &room_id, s))?;
                Some(Link { space: key.to_string(), space_id: space.id.clone(), change })
            });
            let state = desired::created_state(&creation);
            let previous = Managed::from_state(&state);
            let report = ObjectReport::of(room, Some(room_id.clone()), Status::Create);
            Built { report, room: Some(Room { id: room_id, state, previous, ok: true, members: creation.members }), link }
        }
        // Created by an earlier run that did not live to see the answer: adopt it.
        Err(e) if e.errcode() == Some("M_ROOM_IN_USE") => match locate(hs, &s.conference, room).await {
            Ok(Some(found)) => update::update(hs, room, found, s, parent_id, links, false).await,
            Ok(None) => failed(Status::failed(e)),
            Err(status) => failed(status),
        },
        Err(e) => failed(Status::failed(e)),
    }
}
