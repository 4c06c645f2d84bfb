//! Locate: find every planned room by its alias and check its locator (a room another program owns is reported,
//! never touched); read its state, Stagehand's record, and who took up the e-mail invites recorded there.
//! `createRoom` carries the alias, so a room created just before a crash is found here again, not duplicated.

use std::collections::HashMap;

use tracing::instrument;

use super::super::client::{Homeserver, StateEvent, state_map};
use super::report::Status;
use crate::plan::PlannedRoom;
use crate::plan::managed::{self, Links, Managed, invite_token};
use crate::plan::state::{self, LOCATOR, StateMap};

/// A planned room found on the server.
pub struct Located {
    pub room_id: String,
    pub state: StateMap,
    /// Stagehand's record in the room, as found.
    pub managed: Managed,
    /// Third-party invite tokens taken up since the last run: token -> Matrix ID.
    pub taken: HashMap<String, String>,
}

/// What locating one room found: nothing (to create), our room, or a reason it cannot be used.
pub type Found = Result<Option<Located>, Status>;

/// Finds one planned room.
#[instrument(skip_all, fields(room = %room.key))]
pub async fn locate(hs: &Homeserver, conference: &str, room: &PlannedRoom) -> Found {
    let Some(room_id) = hs.resolve_alias(&room.alias).await.map_err(Status::failed)? else {
        return Ok(None);
    };
    let events = hs.room_state(&room_id).await.map_err(Status::failed)?;
    let state = state_map(&events);
    let locator = state::get(&state, LOCATOR, "");
    let ours = state::is_ours(locator, conference, &room.key);
    if !ours {
        let reason = match locator {
            None => format!("{} is {room_id}, a room without Stagehand's locator; rename the alias or the object", room.alias),
            Some(l) => format!("{} is {room_id}, which Stagehand built for {}", room.alias, l),
        };
        return Err(Status::Foreign { reason });
    }
    let managed = Managed::from_state(&state);
    let taken = taken_up(hs, &room_id, &events, &managed).await;
    Ok(Some(Located { room_id, state, managed, taken }))
}

/// People known only by e-mail who took an invite up, across the rooms found: from now on their Matrix ID counts
/// like one from the schedule (power, attendance, invites to other rooms). In plan-key order, so that "the first"
/// of two conflicting links is the same every run.
pub fn links(found: &HashMap<String, Found>) -> Links {
    let mut rooms: Vec<(&String, &Located)> =
        found.iter().filter_map(|(k, f)| f.as_ref().ok().and_then(Option::as_ref).map(|l| (k, l))).collect();
    rooms.sort_by_key(|(k, _)| *k);
    managed::links(rooms.iter().map(|(_, l)| (&l.managed, &l.taken)))
}

/// Who took up which invite in one room: token -> Matrix ID, from the member events (or, for members who joined
/// since, the invite their join replaced). Only rooms with invites not yet linked are looked at, and only members
/// Stagehand does not manage yet; walking back through replaced memberships stops once every pending invite is
/// found, and after a bounded number of reads (a room opened to the audience has many members).
pub async fn taken_up(hs: &Homeserver, room_id: &str, events: &[StateEvent], managed: &Managed) -> HashMap<String, String> {
    const MAX_READS: usize = 64;
    let mut out = HashMap::new();
    let pending: Vec<&str> = managed.emails.values().filter(|r| r.user_id.is_none()).filter_map(|r| r.token.as_deref()).collect();
    if pending.is_empty() {
        return out;
    }
    let candidates: Vec<&StateEvent> = events
        .iter()
        .filter(|e| e.event_type == "m.room.member" && e.state_key != hs.user_id && !managed.users.contains(&e.state_key))
        .collect();
    let mut walk = Vec::new();
    for e in &candidates {
        match invite_token(&e.content).or_else(|| e.prev_content.as_ref().and_then(invite_token)) {
            Some(token) if pending.contains(&token) => {
                out.insert(token.to_string(), e.state_key.clone());
            }
            Some(_) => {}
            None if e.content["membership"] != "invite" => walk.push(*e),
            None => {}
        }
    }
    // The server did not say what these memberships replaced, or it was not the invite: walk back a few events.
    let mut reads = 0;
    for e in walk {
        let mut next = e.replaces_state.clone();
        for _ in 0..4 {
            if out.len() == pending.len() || reads >= MAX_READS {
                return out;
            }
            let Some(id) = next.take() else { break };
            reads += 1;
            let Ok(v) = hs.event(room_id, &id).await else { break };
            if let Some(token) = invite_token(&v["content"]) {
                if pending.contains(&token) {
                    out.insert(token.to_string(), e.state_key.clone());
                }
                break;
            }
            next = v["unsigned"]["replaces_state"].as_str().map(str::to_string);
        }
    }
    out
}
