//! E-mail invites of one room, sent in turn: each new invite's token is read back from the room and recorded at
//! once, so a crash before the end of the run cannot lose it. An invite whose record a crash lost is adopted, not
//! sent again (see [`invites`]).

use std::collections::HashSet;

use tracing::instrument;

use super::super::client::{Homeserver, StateMap, state_map};
use super::super::identity::IdentityServer;
use super::report::MemberReport;
use crate::plan::desired::members::{self, MemberAction, MemberWork};
use crate::plan::managed::{self, EmailRecord, Managed};
use crate::plan::state::{MANAGED, StateItem};

/// Sends one room's e-mail invites in turn and reads each one's token back from the room, recording it at once.
/// An invite whose record a crash lost is adopted, not sent again, when it fits exactly one address still to invite
/// here and that address exactly one such invite (masked addresses can collide: then a second mail beats giving
/// one person another's invite). An address already bound to a Matrix ID is invited as that user by the
/// homeserver; that user is recorded for the address.
#[instrument(skip_all, fields(room))]
pub async fn invites<'a>(
    hs: &Homeserver,
    identity: &IdentityServer,
    room: &'a str,
    room_id: &str,
    items: Vec<MemberWork>,
    mut known: HashSet<String>,
) -> (&'a str, Vec<MemberReport>, Vec<(String, EmailRecord)>) {
    let mut actions = Vec::new();
    let mut records: Vec<(String, EmailRecord)> = Vec::new();
    let unrecorded = |state: &StateMap, known: &HashSet<String>| -> Vec<(String, String)> {
        managed::third_party_invites(state).into_iter().filter(|(t, _)| !known.contains(t)).collect()
    };
    let invited = |state: &StateMap| -> HashSet<String> {
        state.iter().filter(|((t, _), c)| t == "m.room.member" && c["membership"] == "invite").map(|((_, k), _)| k.clone()).collect()
    };
    let read = || async { hs.room_state(room_id).await.map(|events| state_map(&events)) };
    // Read afresh: the Matrix invites of this run changed the room's members since it was located.
    let mut state = match read().await {
        Ok(s) => s,
        Err(e) => {
            actions.extend(items.iter().map(|w| MemberReport::failed(room, w.who(), &e)));
            return (room, actions, records);
        }
    };
    let items: Vec<(String, String, String)> = items
        .into_iter()
        .filter_map(|w| match w {
            MemberWork::EmailInvite { key, address, name } => Some((key, address, name)),
            _ => None,
        })
        .collect();
    let addresses: Vec<String> = items.iter().map(|(_, address, _)| address.clone()).collect();
    for (key, address, name) in items {
        let who = members::label(&name, &address);
        let fitting: Vec<(String, String)> =
            unrecorded(&state, &known).into_iter().filter(|(_, d)| managed::display_fits(d, &address)).collect();
        if let [(token, display)] = fitting.as_slice()
            && addresses.iter().filter(|a| managed::display_fits(display, a)).count() == 1
        {
            tracing::info!(room, person = %who, "e-mail invite found in the room from an earlier run; not sent again");
            known.insert(token.clone());
            let record = EmailRecord { token: Some(token.clone()), user_id: None };
            note_record(hs, room_id, &state, &key, &record).await;
            records.push((key, record));
            actions.push(MemberReport::new(room, who, MemberAction::EmailInvite));
            continue;
        }
        let before: HashSet<String> = managed::third_party_invites(&state).into_iter().map(|(t, _)| t).collect();
        let invited_before = invited(&state);
        if let Err(e) = hs.invite_email(room_id, &identity.server, &identity.token, &address).await {
            tracing::warn!(room, person = %who, error = %e, "e-mail invite failed");
            actions.push(MemberReport::failed(room, who, e));
            continue;
        }
        state = match read().await {
            Ok(s) => s,
            Err(e) => {
                actions.push(MemberReport::failed(room, who, format!("invited, but {e}")));
                continue;
            }
        };
        let new: Vec<(String, String)> = unrecorded(&state, &known).into_iter().filter(|(t, _)| !before.contains(t)).collect();
        let token = match new.as_slice() {
            [(t, _)] => Some(t.clone()),
            _ => new.iter().find(|(_, d)| managed::display_fits(d, &address)).map(|(t, _)| t.clone()),
        };
        let newly_invited: Vec<String> = invited(&state).difference(&invited_before).cloned().collect();
        let record = match (token, newly_invited.as_slice()) {
            (Some(token), _) => {
                tracing::info!(room, person = %who, "e-mail invite sent");
                known.insert(token.clone());
                actions.push(MemberReport::new(room, who, MemberAction::EmailInvite));
                EmailRecord { token: Some(token), user_id: None }
            }
            // The address is bound to a Matrix ID: the homeserver invited that user; from now on they count by it.
            (None, [user]) => {
                tracing::info!(room, person = %who, user = %user, "the e-mail address belongs to a Matrix user, who was invited directly");
                actions.push(MemberReport::new(room, user.clone(), MemberAction::Invite));
                EmailRecord { token: None, user_id: Some(user.clone()) }
            }
            (None, _) => {
                actions.push(MemberReport::failed(room, who, "invited, but neither an e-mail invite nor a member invite appeared in the room"));
                continue;
            }
        };
        note_record(hs, room_id, &state, &key, &record).await;
        records.push((key, record));
    }
    (room, actions, records)
}
async fn note_record(hs: &Homeserver, room_id: &str, state: &StateMap, key: &str, record: &EmailRecord) {
    let mut managed = Managed::from_state(state);
    managed.emails.insert(key.to_string(), record.clone());
    if let Err(e) = hs.put_state(room_id, &StateItem::new(MANAGED, "", managed.to_content())).await {
        tracing::warn!(room_id, error = %e, "could not record an e-mail invite yet; the end of the run tries again");
    }
}
