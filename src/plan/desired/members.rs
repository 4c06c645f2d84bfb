//! Membership work of one room, decided from the plan and what was observed: whom to invite (by Matrix ID or, for
//! people known only by e-mail, through the identity server), whose invite to withdraw, whom to kick, and who
//! declined (never invited again). Then the room's managed record after the work was done. Pure.
//!
//! Restart-safe by construction: an invite already sent shows in the room's state or its record, and is not
//! decided again.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::{Change, Observed, Settings, change, not_empty};
use crate::plan::{ObjectKind, PlannedRoom};
use crate::plan::managed::{self, EmailRecord, Links, Managed, THIRD_PARTY_INVITE, email_key};
use crate::plan::state::{self, MANAGED, StateItem, StateMap};

/// What happened (or, in a dry run, would happen) to one person in one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberAction {
    Invite,
    /// An invite withdrawn.
    #[serde(rename = "revoke")]
    Withdraw,
    /// A member kicked (only with `people.kick_removed`).
    #[serde(rename = "remove")]
    Kick,
    /// Left or refused an invite: not invited again.
    Declined,
    EmailInvite,
    /// An e-mail invite withdrawn.
    #[serde(rename = "email_revoke")]
    EmailWithdraw,
    /// No Matrix ID, and no identity server to invite the e-mail address.
    Uncontactable,
    Failed,
}

impl MemberAction {
    /// The name reports use (as in the JSON).
    pub fn label(self) -> &'static str {
        match self {
            MemberAction::Invite => "invite",
            MemberAction::Withdraw => "revoke",
            MemberAction::Kick => "remove",
            MemberAction::Declined => "declined",
            MemberAction::EmailInvite => "email_invite",
            MemberAction::EmailWithdraw => "email_revoke",
            MemberAction::Uncontactable => "uncontactable",
            MemberAction::Failed => "failed",
        }
    }
}

/// One membership change to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberWork {
    Invite { user_id: String },
    /// Withdraw an open invite; `email_key` when the person is on record by e-mail.
    Withdraw { user_id: String, email_key: Option<String> },
    Kick { user_id: String, email_key: Option<String> },
    EmailInvite { key: String, address: String, name: String },
    /// Withdraw an e-mail invite: empty the third-party invite event with this token.
    EmailWithdraw { key: String, token: String },
}

impl MemberWork {
    pub fn action(&self) -> MemberAction {
        match self {
            MemberWork::Invite { .. } => MemberAction::Invite,
            MemberWork::Withdraw { .. } => MemberAction::Withdraw,
            MemberWork::Kick { .. } => MemberAction::Kick,
            MemberWork::EmailInvite { .. } => MemberAction::EmailInvite,
            MemberWork::EmailWithdraw { .. } => MemberAction::EmailWithdraw,
        }
    }

    /// Who it is about, as reports show it: a Matrix ID, or a name and a masked address.
    pub fn who(&self) -> String {
        match self {
            MemberWork::Invite { user_id } | MemberWork::Withdraw { user_id, .. } | MemberWork::Kick { user_id, .. } => user_id.clone(),
            MemberWork::EmailInvite { address, name, .. } => label(name, address),
            MemberWork::EmailWithdraw { key, .. } => format!("e-mail {key}"),
        }
    }

    /// The record entries (Matrix ID, e-mail key) that stay on record while this removal is not done.
    pub fn pending(&self) -> Vec<String> {
        match self {
            MemberWork::Withdraw { user_id, email_key } | MemberWork::Kick { user_id, email_key } => {
                std::iter::once(user_id.clone()).chain(email_key.clone()).collect()
            }
            MemberWork::EmailWithdraw { key, .. } => vec![key.clone()],
            MemberWork::Invite { .. } | MemberWork::EmailInvite { .. } => Vec::new(),
        }
    }
}

/// Something to report about a person that needs no request: declined, or cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub who: String,
    pub action: MemberAction,
    pub reason: Option<String>,
}

/// The membership work of one room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomMembers {
    pub work: Vec<MemberWork>,
    pub notes: Vec<Note>,
}

/// A person known by e-mail, as reports show them: name and masked address.
pub fn label(name: &str, address: &str) -> String {
    format!("{name} <{}>", managed::masked(address))
}

fn membership_of<'a>(state: &'a StateMap, user: &str) -> Option<&'a str> {
    state::get(state, "m.room.member", user).and_then(|m| m["membership"].as_str())
}

/// Whom to invite, withdraw or kick in one room.
pub fn memberships(room: &PlannedRoom, seen: Observed<'_>, s: &Settings, links: &Links) -> RoomMembers {
    let room = super::linked(room, links);
    let (state, previous) = (seen.state, seen.managed);
    let mut out = RoomMembers::default();
    let desired = state::member_ids(&room);
    // People whose e-mail invite we sent here, by the Matrix ID they turned out to have.
    let invited_by_email: HashSet<&String> = room
        .members
        .iter()
        .filter(|m| m.emails.iter().any(|e| previous.emails.get(&email_key(e)).is_some_and(|r| r.token.is_some() || r.user_id.is_some())))
        .flat_map(|m| m.user_ids.iter())
        .collect();
    for uid in &desired {
        match membership_of(state, uid) {
            Some("join" | "invite" | "ban") => {}
            // They left or refused after our invite (by Matrix ID or by e-mail): their choice stands.
            Some("leave") if previous.users.contains(uid) || invited_by_email.contains(uid) => {
                out.notes.push(Note { who: uid.clone(), action: MemberAction::Declined, reason: None })
            }
            _ => out.work.push(MemberWork::Invite { user_id: uid.clone() }),
        }
    }
    for uid in previous.users.iter().filter(|u| !desired.contains(u) && **u != s.bot) {
        match membership_of(state, uid) {
            Some("invite") => out.work.push(MemberWork::Withdraw { user_id: uid.clone(), email_key: None }),
            Some("join") if s.kick_removed => out.work.push(MemberWork::Kick { user_id: uid.clone(), email_key: None }),
            _ => {}
        }
    }
    // People known only by e-mail: invited once through the identity server.
    for m in room.members.iter().filter(|m| m.user_ids.is_empty() && !m.emails.is_empty()) {
        let keys: Vec<String> = m.emails.iter().map(|e| email_key(e)).collect();
        if keys.iter().any(|k| previous.emails.get(k).is_some_and(|r| r.token.is_some())) {
            continue;
        }
        let address = m.emails[0].clone();
        if !s.email_invites {
            let reason = "no Matrix ID, and no identity server configured (people.identity_server) to invite the e-mail address";
            out.notes.push(Note { who: label(&m.name, &address), action: MemberAction::Uncontactable, reason: Some(reason.into()) });
            continue;
        }
        out.work.push(MemberWork::EmailInvite { key: keys[0].clone(), address, name: m.name.clone() });
    }
    // E-mail invites of people the room no longer wants (with or without a Matrix ID, an address still wanted stays).
    let wanted_keys: HashSet<String> = room.members.iter().flat_map(|m| m.emails.iter().map(|e| email_key(e))).collect();
    for (key, record) in previous.emails.iter().filter(|(k, _)| !wanted_keys.contains(*k)) {
        let (Some(token), None) = (&record.token, &record.user_id) else { continue };
        if state::get(state, THIRD_PARTY_INVITE, token).is_some_and(not_empty) {
            out.work.push(MemberWork::EmailWithdraw { key: key.clone(), token: token.clone() });
        }
        // Taken up since the last run, by someone the schedule has dropped meanwhile: their Matrix membership goes
        // like anyone else's.
        let Some(user) = links.get(key).filter(|u| !desired.contains(u)) else { continue };
        let email_key = Some(key.clone());
        match membership_of(state, user) {
            Some("invite") => out.work.push(MemberWork::Withdraw { user_id: user.clone(), email_key }),
            Some("join") if s.kick_removed => out.work.push(MemberWork::Kick { user_id: user.clone(), email_key }),
            _ => {}
        }
    }
    out
}

/// Orders Matrix invites and removals so that each person's first come first: Synapse limits invites per receiver,
/// so one person's many rooms go last rather than holding up everyone else. Stable within a round.
pub fn spread<T>(work: Vec<(T, MemberWork)>) -> Vec<(T, MemberWork)> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut keyed: Vec<(usize, (T, MemberWork))> = work
        .into_iter()
        .map(|(t, w)| {
            let n = seen.entry(w.who()).or_default();
            *n += 1;
            (*n, (t, w))
        })
        .collect();
    keyed.sort_by_key(|(round, _)| *round);
    keyed.into_iter().map(|(_, w)| w).collect()
}

/// A room's managed record after a run: the planned Matrix IDs, removals still to do (`pending`: Matrix IDs and
/// e-mail keys), and the e-mail invites with the Matrix IDs that took them up. `new_emails`: e-mail invites sent
/// this run (or the Matrix user an address turned out to be bound to), by e-mail key.
pub fn record(room: &PlannedRoom, previous: &Managed, pending: &HashSet<String>, new_emails: &[(String, EmailRecord)], links: &Links) -> Managed {
    let room = super::linked(room, links);
    let mut users = state::member_ids(&room);
    users.extend(previous.users.iter().filter(|u| pending.contains(*u)).cloned());
    let new_records: HashMap<&str, &EmailRecord> = new_emails.iter().map(|(k, r)| (k.as_str(), r)).collect();
    let mut emails = BTreeMap::new();
    for m in room.members.iter().filter(|m| !m.emails.is_empty()) {
        let keys: Vec<String> = m.emails.iter().map(|e| email_key(e)).collect();
        let key = keys.iter().find(|k| previous.emails.contains_key(*k) || new_records.contains_key(k.as_str())).unwrap_or(&keys[0]);
        let mut entry: EmailRecord = previous.emails.get(key).cloned().unwrap_or_default();
        if let Some(new) = new_records.get(key.as_str()) {
            entry.token = new.token.clone().or(entry.token);
            entry.user_id = new.user_id.clone().or(entry.user_id);
        }
        if entry.user_id.is_none() {
            entry.user_id = keys.iter().find_map(|k| links.get(k).cloned());
        }
        if entry.token.is_some() || entry.user_id.is_some() {
            emails.insert(key.clone(), entry);
        }
    }
    for (key, entry) in &previous.emails {
        if pending.contains(key) && !emails.contains_key(key) {
            emails.insert(key.clone(), entry.clone());
        }
    }
    Managed { users, emails }
}

/// The record write one room needs after the membership work: nothing when it is unchanged, or for rooms where
/// nobody is managed (spaces, track rooms, stands).
pub fn record_change(room: &PlannedRoom, seen: Observed<'_>, pending: &HashSet<String>, new_emails: &[(String, EmailRecord)], links: &Links) -> Option<Change> {
    if !matches!(room.kind, ObjectKind::TalkRoom | ObjectKind::Backstage | ObjectKind::Support | ObjectKind::Management) {
        return None;
    }
    let content = record(room, seen.managed, pending, new_emails, links).to_content();
    change(seen.state, StateItem::new(MANAGED, "", content))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::settings;
    use super::*;
    use crate::plan::members::fixture;
    use crate::plan::talk_room_fixture;
    use crate::schedule::model::Role;

    fn person(name: &str, ids: &[&str], emails: &[&str]) -> crate::plan::members::PlannedMember {
        fixture(name, Role::Speaker, ids, emails)
    }

    fn member(state: &mut StateMap, user: &str, membership: &str) {
        state.insert(("m.room.member".into(), user.into()), json!({"membership": membership}));
    }

    fn decide(room: &PlannedRoom, state: &StateMap, managed: &Managed, s: &Settings, links: &Links) -> RoomMembers {
        memberships(room, Observed { state, managed }, s, links)
    }

    #[test]
    fn planned_people_are_invited_once_and_declined_people_not_again() {
        let room = talk_room_fixture(vec![person("Ann", &["@ann:x"], &[]), person("Bob", &["@bob:x"], &[]), person("Cy", &["@cy:x"], &[])]);
        let mut state = StateMap::new();
        member(&mut state, "@ann:x", "invite");
        member(&mut state, "@bob:x", "leave");
        // Bob left after our invite: declined. Cy left a room we never invited him to: invited.
        member(&mut state, "@cy:x", "leave");
        let managed = Managed { users: vec!["@ann:x".into(), "@bob:x".into()], ..Managed::default() };
        let out = decide(&room, &state, &managed, &settings(), &Links::new());
        assert_eq!(out.work, vec![MemberWork::Invite { user_id: "@cy:x".into() }]);
        assert_eq!(out.notes, vec![Note { who: "@bob:x".into(), action: MemberAction::Declined, reason: None }]);
    }

    #[test]
    fn dropped_people_lose_their_invite_and_are_kicked_only_when_configured() {
        let room = talk_room_fixture(vec![]);
        let mut state = StateMap::new();
        member(&mut state, "@inv:x", "invite");
        member(&mut state, "@in:x", "join");
        member(&mut state, "@bot:x", "join");
        let managed = Managed { users: vec!["@inv:x".into(), "@in:x".into(), "@bot:x".into()], ..Managed::default() };
        let out = decide(&room, &state, &managed, &settings(), &Links::new());
        assert_eq!(out.work, vec![MemberWork::Withdraw { user_id: "@inv:x".into(), email_key: None }]);
        let kick = Settings { kick_removed: true, ..settings() };
        let out = decide(&room, &state, &managed, &kick, &Links::new());
        assert!(out.work.contains(&MemberWork::Kick { user_id: "@in:x".into(), email_key: None }), "{out:?}");
        assert!(!out.work.iter().any(|w| w.who() == "@bot:x"), "the bot never removes itself");
    }

    #[test]
    fn email_only_people_are_invited_by_email_once_or_reported_uncontactable() {
        let room = talk_room_fixture(vec![person("Eve", &[], &["eve@x.org"])]);
        let state = StateMap::new();
        let out = decide(&room, &state, &Managed::default(), &settings(), &Links::new());
        assert_eq!(out.work, vec![]);
        assert_eq!(out.notes[0].action, MemberAction::Uncontactable);
        assert_eq!(out.notes[0].who, "Eve <e…@x.org>");
        let email = Settings { email_invites: true, ..settings() };
        let out = decide(&room, &state, &Managed::default(), &email, &Links::new());
        assert_eq!(out.work, vec![MemberWork::EmailInvite { key: email_key("eve@x.org"), address: "eve@x.org".into(), name: "Eve".into() }]);
        // Invited before: not again.
        let mut managed = Managed::default();
        managed.emails.insert(email_key("eve@x.org"), EmailRecord { token: Some("t".into()), user_id: None });
        assert_eq!(decide(&room, &state, &managed, &email, &Links::new()), RoomMembers::default());
    }

    #[test]
    fn email_links_are_remembered_and_a_linked_person_is_invited_by_matrix_id_elsewhere() {
        // Eve took an e-mail invite up elsewhere as @eve:x: here she is invited by that ID, not by e-mail again.
        let room = talk_room_fixture(vec![person("Eve", &[], &["eve@x.org"])]);
        let links: Links = [(email_key("eve@x.org"), "@eve:x".to_string())].into_iter().collect();
        let email = Settings { email_invites: true, ..settings() };
        let out = decide(&room, &StateMap::new(), &Managed::default(), &email, &links);
        assert_eq!(out.work, vec![MemberWork::Invite { user_id: "@eve:x".into() }]);
        // She left this room after taking our e-mail invite here: declined, not invited again.
        let mut managed = Managed::default();
        managed.emails.insert(email_key("eve@x.org"), EmailRecord { token: Some("t".into()), user_id: Some("@eve:x".into()) });
        let mut state = StateMap::new();
        member(&mut state, "@eve:x", "leave");
        let out = decide(&room, &state, &managed, &email, &links);
        assert_eq!((out.work.len(), out.notes[0].action), (0, MemberAction::Declined));
    }

    #[test]
    fn a_dropped_email_invite_is_withdrawn_and_its_taker_too() {
        let room = talk_room_fixture(vec![]);
        let key = email_key("gus@x.org");
        let mut managed = Managed::default();
        managed.emails.insert(key.clone(), EmailRecord { token: Some("tg".into()), user_id: None });
        let mut state = StateMap::new();
        state.insert((THIRD_PARTY_INVITE.into(), "tg".into()), json!({"display_name": "g...@x..."}));
        member(&mut state, "@gus:x", "invite");
        let links: Links = [(key.clone(), "@gus:x".to_string())].into_iter().collect();
        let out = decide(&room, &state, &managed, &settings(), &links);
        assert_eq!(
            out.work,
            vec![
                MemberWork::EmailWithdraw { key: key.clone(), token: "tg".into() },
                MemberWork::Withdraw { user_id: "@gus:x".into(), email_key: Some(key.clone()) }
            ]
        );
        // Already withdrawn (empty content): nothing to send for the invite itself.
        state.insert((THIRD_PARTY_INVITE.into(), "tg".into()), json!({}));
        let out = decide(&room, &state, &managed, &settings(), &Links::new());
        assert_eq!(out.work, vec![]);
    }

    #[test]
    fn invites_are_spread_across_people() {
        let w = |u: &str| MemberWork::Invite { user_id: u.into() };
        let order = spread(vec![("r1", w("@a:x")), ("r2", w("@a:x")), ("r3", w("@a:x")), ("r1", w("@b:x")), ("r2", w("@b:x"))]);
        let who: Vec<(&str, String)> = order.iter().map(|(r, w)| (*r, w.who())).collect();
        assert_eq!(
            who,
            vec![("r1", "@a:x".into()), ("r1", "@b:x".into()), ("r2", "@a:x".into()), ("r2", "@b:x".into()), ("r3", "@a:x".into())]
        );
    }

    #[test]
    fn the_record_keeps_planned_people_pending_removals_and_email_invites() {
        let room = talk_room_fixture(vec![person("Ann", &["@ann:x"], &[]), person("Eve", &[], &["eve@x.org"]), person("Fay", &[], &["fay@x.org"])]);
        let (eve, fay, gus) = (email_key("eve@x.org"), email_key("fay@x.org"), email_key("gus@x.org"));
        let mut previous = Managed { users: vec!["@ann:x".into(), "@old:x".into(), "@gone:x".into()], emails: BTreeMap::new() };
        previous.emails.insert(eve.clone(), EmailRecord { token: Some("te".into()), user_id: None });
        previous.emails.insert(gus.clone(), EmailRecord { token: Some("tg".into()), user_id: None });
        // @old's withdrawal failed; @gone's went through; gus's e-mail invite could not be withdrawn.
        let mut pending: HashSet<String> = ["@old:x".to_string(), gus.clone()].into_iter().collect();
        // Fay was invited by e-mail in this run.
        let new = vec![(fay.clone(), EmailRecord { token: Some("tf".into()), user_id: None })];
        // Eve took hers up.
        let links: Links = [(eve.clone(), "@eve:x".to_string())].into_iter().collect();
        let record = record(&room, &previous, &pending, &new, &links);
        assert_eq!(record.users, vec!["@ann:x".to_string(), "@eve:x".to_string(), "@old:x".to_string()]);
        assert_eq!(record.emails.get(&eve), Some(&EmailRecord { token: Some("te".into()), user_id: Some("@eve:x".into()) }));
        assert_eq!(record.emails.get(&fay), Some(&EmailRecord { token: Some("tf".into()), user_id: None }));
        assert_eq!(record.emails.get(&gus), Some(&EmailRecord { token: Some("tg".into()), user_id: None }));
        // Once gus's withdrawal went through, his entry goes.
        pending.remove(&gus);
        assert!(!super::record(&room, &previous, &pending, &new, &links).emails.contains_key(&gus));
    }
}
