//! Attendance: for every planned member of every talk room and backstage, whether they joined, are invited,
//! invited by e-mail, declined, or cannot be reached. Reads the live membership and Stagehand's managed records;
//! the counting, the summaries and "who is missing before this talk" are pure.

use std::collections::HashMap;

use serde::Serialize;

use super::client::{Homeserver, MatrixError};
use super::fanout::all;
use super::reconcile::locate::taken_up;
use crate::plan::managed::{self, Links, Managed};
use crate::plan::members::PlannedMember;
use crate::plan::{ObjectKind, Plan, PlannedRoom};
use crate::schedule::model::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Joined,
    Invited,
    /// Known only by e-mail; invited through the identity server, not taken up yet.
    EmailInvited,
    /// Left or refused the invite.
    Declined,
    /// Has a Matrix ID but no invite yet (the build has not run, or it failed).
    NotInvited,
    /// No Matrix ID; an e-mail address is known but no invite went out (no identity server configured).
    EmailOnly,
    /// Neither Matrix ID nor e-mail.
    Uncontactable,
}

impl Presence {
    pub fn label(self) -> &'static str {
        match self {
            Presence::Joined => "joined",
            Presence::Invited => "invited",
            Presence::EmailInvited => "email_invited",
            Presence::Declined => "declined",
            Presence::NotInvited => "not_invited",
            Presence::EmailOnly => "email_only",
            Presence::Uncontactable => "uncontactable",
        }
    }
}

/// What one room looks like now: membership by Matrix ID, Stagehand's record, invites taken up since.
#[derive(Debug, Clone, Default)]
pub struct RoomSeen {
    pub members: HashMap<String, String>,
    pub managed: Managed,
    pub taken: HashMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub track: String,
    pub room: String,
    pub room_name: String,
    pub person: String,
    pub name: String,
    pub role: String,
    pub user_ids: String,
    pub presence: Presence,
}

/// Presence of one planned member in a room.
pub fn presence(m: &PlannedMember, seen: Option<&RoomSeen>) -> Presence {
    if m.user_ids.is_empty() {
        let invited = seen.is_some_and(|s| {
            m.emails.iter().any(|e| s.managed.emails.get(&managed::email_key(e)).is_some_and(|r| r.token.is_some()))
        });
        return match (invited, m.emails.is_empty()) {
            (true, _) => Presence::EmailInvited,
            (false, false) => Presence::EmailOnly,
            (false, true) => Presence::Uncontactable,
        };
    }
    let states: Vec<&str> = m.user_ids.iter().filter_map(|u| seen.and_then(|s| s.members.get(u)).map(String::as_str)).collect();
    if states.contains(&"join") {
        Presence::Joined
    } else if states.contains(&"invite") {
        Presence::Invited
    } else if states.contains(&"leave") || states.contains(&"ban") {
        Presence::Declined
    } else {
        Presence::NotInvited
    }
}

/// The Matrix IDs that people known by e-mail turned out to have, from every room read.
pub fn links(seen: &HashMap<String, RoomSeen>) -> Links {
    let mut rooms: Vec<(&String, &RoomSeen)> = seen.iter().collect();
    rooms.sort_by_key(|(k, _)| *k);
    managed::links(rooms.into_iter().map(|(_, s)| (&s.managed, &s.taken)))
}

fn attended(room: &PlannedRoom) -> bool {
    matches!(room.kind, ObjectKind::TalkRoom | ObjectKind::Backstage)
}

/// One row per planned member of each talk room and backstage.
pub fn rows(plan: &Plan, seen: &HashMap<String, RoomSeen>) -> Vec<Row> {
    let links = links(seen);
    let mut out = Vec::new();
    for room in plan.rooms.iter().filter(|r| attended(r)) {
        let room = managed::linked(room, &links);
        let here = seen.get(&room.key);
        for m in &room.members {
            out.push(Row {
                track: room.track.clone().unwrap_or_default(),
                room: room.key.clone(),
                room_name: room.name.clone(),
                person: m.person.clone(),
                name: m.name.clone(),
                role: format!("{:?}", m.role).to_lowercase(),
                user_ids: m.user_ids.join(" "),
                presence: presence(m, here),
            });
        }
    }
    out
}

/// The speakers of a talk room who have not joined it yet (for the reminders before the talk).
pub fn missing_speakers<'a>(room: &'a PlannedRoom, seen: Option<&RoomSeen>) -> Vec<&'a PlannedMember> {
    room.members.iter().filter(|m| m.role == Role::Speaker || m.role == Role::Host).filter(|m| presence(m, seen) != Presence::Joined).collect()
}

/// Counts of one group (a room, a track, everything).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub group: String,
    pub total: usize,
    pub joined: usize,
    pub invited: usize,
    pub email_invited: usize,
    pub declined: usize,
    /// Not invited (yet) by any means.
    pub not_invited: usize,
    /// No Matrix ID and no e-mail invite possible.
    pub uncontactable: usize,
}

impl Summary {
    pub fn percent(&self, n: usize) -> f64 {
        if self.total == 0 { 0.0 } else { 100.0 * n as f64 / self.total as f64 }
    }
}

/// Per group, in first-seen order.
pub fn summarise<'a>(rows: &'a [Row], by: impl Fn(&'a Row) -> &'a str) -> Vec<Summary> {
    let mut groups: Vec<Summary> = Vec::new();
    for r in rows {
        let key = by(r);
        let i = match groups.iter().position(|g| g.group == key) {
            Some(i) => i,
            None => {
                groups.push(Summary {
                    group: key.to_string(),
                    total: 0,
                    joined: 0,
                    invited: 0,
                    email_invited: 0,
                    declined: 0,
                    not_invited: 0,
                    uncontactable: 0,
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        g.total += 1;
        match r.presence {
            Presence::Joined => g.joined += 1,
            Presence::Invited => g.invited += 1,
            Presence::EmailInvited => g.email_invited += 1,
            Presence::Declined => g.declined += 1,
            Presence::NotInvited => g.not_invited += 1,
            Presence::EmailOnly | Presence::Uncontactable => g.uncontactable += 1,
        }
    }
    groups
}

/// Reads the membership and records of every talk room and backstage of the plan (a few rooms at a time).
pub async fn read(hs: &Homeserver, plan: &Plan) -> Result<HashMap<String, RoomSeen>, MatrixError> {
    read_rooms(hs, plan.rooms.iter().filter(|r| attended(r))).await
}

/// [`read`] for some rooms only (the talk rooms of the next hour); a room that does not exist is left out.
pub async fn read_rooms<'a>(hs: &Homeserver, rooms: impl IntoIterator<Item = &'a PlannedRoom>) -> Result<HashMap<String, RoomSeen>, MatrixError> {
    const AT_ONCE: usize = 4;
    // Owned keys and aliases: a fan-out over borrowed rooms is not provably `Send` inside a spawned task
    // (rust-lang/rust#102211), and the status reads rooms from one.
    let rooms: Vec<(String, String)> = rooms.into_iter().map(|r| (r.key.clone(), r.alias.clone())).collect();
    let read = all(rooms, AT_ONCE, |(key, alias)| async move {
        let Some(room_id) = hs.resolve_alias(&alias).await? else { return Ok(None) };
        let events = hs.room_state(&room_id).await?;
        let members: HashMap<String, String> = events
            .iter()
            .filter(|e| e.event_type == "m.room.member")
            .filter_map(|e| Some((e.state_key.clone(), e.content["membership"].as_str()?.to_string())))
            .collect();
        let managed = Managed::from_state(&super::client::state_map(&events));
        let taken = taken_up(hs, &room_id, &events, &managed).await;
        Ok(Some((key, RoomSeen { members, managed, taken })))
    })
    .await;
    read.into_iter().filter_map(Result::transpose).collect()
}

/// The rows as CSV.
pub fn csv(rows: &[Row]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["track", "room", "room_name", "person", "name", "role", "user_ids", "presence"])?;
    for r in rows {
        w.write_record([&r.track, &r.room, &r.room_name, &r.person, &r.name, &r.role, &r.user_ids, r.presence.label()])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::plan::members::fixture as member;

    #[test]
    fn presence_covers_every_way_of_being_reached() {
        let mut seen = RoomSeen::default();
        seen.members.insert("@a:x".into(), "join".into());
        seen.members.insert("@b:x".into(), "invite".into());
        seen.members.insert("@c:x".into(), "leave".into());
        seen.managed.emails.insert(managed::email_key("e@x.org"), managed::EmailRecord { token: Some("t".into()), user_id: None });
        let p = |m: PlannedMember| presence(&m, Some(&seen));
        assert_eq!(p(member("A", Role::Speaker, &["@z:x", "@a:x"], &[])), Presence::Joined);
        assert_eq!(p(member("B", Role::Speaker, &["@b:x"], &[])), Presence::Invited);
        assert_eq!(p(member("C", Role::Speaker, &["@c:x"], &[])), Presence::Declined);
        assert_eq!(p(member("D", Role::Speaker, &["@d:x"], &[])), Presence::NotInvited);
        assert_eq!(p(member("E", Role::Speaker, &[], &["E@x.org"])), Presence::EmailInvited);
        assert_eq!(p(member("F", Role::Speaker, &[], &["f@x.org"])), Presence::EmailOnly);
        assert_eq!(p(member("G", Role::Speaker, &[], &[])), Presence::Uncontactable);
    }

    #[test]
    fn missing_speakers_are_those_who_have_not_joined_the_talk_room() {
        let room = crate::plan::talk_room_fixture(vec![
            member("Ann", Role::Speaker, &["@ann:x"], &[]),
            member("Ben", Role::Speaker, &["@ben:x"], &[]),
            member("Cat", Role::Host, &[], &["cat@x.org"]),
            member("Dan", Role::Coordinator, &["@dan:x"], &[]),
        ]);
        let mut seen = RoomSeen::default();
        seen.members.insert("@ann:x".into(), "join".into());
        seen.members.insert("@ben:x".into(), "invite".into());
        let missing: Vec<&str> = missing_speakers(&room, Some(&seen)).iter().map(|m| m.name.as_str()).collect();
        assert_eq!(missing, ["Ben", "Cat"], "coordinators are not speakers; Ann joined");
        let nobody: Vec<&str> = missing_speakers(&room, None).iter().map(|m| m.name.as_str()).collect();
        assert_eq!(nobody, ["Ann", "Ben", "Cat"]);
    }

    #[test]
    fn summaries_count_each_presence_once() {
        let row = |room: &str, presence| Row {
            track: "t".into(),
            room: room.into(),
            room_name: String::new(),
            person: String::new(),
            name: String::new(),
            role: "speaker".into(),
            user_ids: String::new(),
            presence,
        };
        let rows = vec![row("r1", Presence::Joined), row("r1", Presence::EmailInvited), row("r2", Presence::Uncontactable), row("r2", Presence::Joined)];
        let by_room = summarise(&rows, |r| r.room.as_str());
        assert_eq!(by_room.len(), 2);
        assert_eq!((by_room[0].joined, by_room[0].email_invited, by_room[0].total), (1, 1, 2));
        assert_eq!((by_room[1].joined, by_room[1].uncontactable), (1, 1));
        let all = summarise(&rows, |_| "all");
        assert_eq!(all[0].percent(all[0].joined), 50.0);
    }
}
