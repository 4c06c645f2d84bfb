//! Attendance: for every planned member of every talk room and backstage, whether they joined, are invited, declined,
//! or cannot be reached (no Matrix ID). Reads the live membership; the counting itself is pure.

use std::collections::HashMap;

use serde::Serialize;

use super::client::{Homeserver, MatrixError};
use crate::plan::{ObjectKind, Plan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Joined,
    Invited,
    /// Left or refused the invite.
    Declined,
    /// Has a Matrix ID but no invite yet (the build has not run, or it failed).
    NotInvited,
    /// No Matrix ID; an e-mail address is known.
    EmailOnly,
    /// Neither Matrix ID nor e-mail.
    Uncontactable,
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

/// One row per planned member of each talk room and backstage. `membership` maps room key to user to membership.
pub fn rows(plan: &Plan, membership: &HashMap<String, HashMap<String, String>>) -> Vec<Row> {
    let mut out = Vec::new();
    for room in plan.rooms.iter().filter(|r| matches!(r.kind, ObjectKind::TalkRoom | ObjectKind::Backstage)) {
        let here = membership.get(&room.key);
        for m in &room.members {
            let states: Vec<&str> =
                m.user_ids.iter().filter_map(|u| here.and_then(|h| h.get(u)).map(String::as_str)).collect();
            let presence = if m.user_ids.is_empty() {
                if m.emails.is_empty() { Presence::Uncontactable } else { Presence::EmailOnly }
            } else if states.contains(&"join") {
                Presence::Joined
            } else if states.contains(&"invite") {
                Presence::Invited
            } else if states.contains(&"leave") || states.contains(&"ban") {
                Presence::Declined
            } else {
                Presence::NotInvited
            };
            out.push(Row {
                track: room.track.clone().unwrap_or_default(),
                room: room.key.clone(),
                room_name: room.name.clone(),
                person: m.person.clone(),
                name: m.name.clone(),
                role: format!("{:?}", m.role).to_lowercase(),
                user_ids: m.user_ids.join(" "),
                presence,
            });
        }
    }
    out
}

/// Per group (room or track): joined, total and the percentage joined.
pub fn summarise<'a>(rows: &'a [Row], by: impl Fn(&'a Row) -> &'a str) -> Vec<(String, usize, usize, f64)> {
    let mut groups: Vec<(String, usize, usize)> = Vec::new();
    for r in rows {
        let key = by(r);
        let i = match groups.iter().position(|g| g.0 == key) {
            Some(i) => i,
            None => {
                groups.push((key.to_string(), 0, 0));
                groups.len() - 1
            }
        };
        groups[i].2 += 1;
        if r.presence == Presence::Joined {
            groups[i].1 += 1;
        }
    }
    groups.into_iter().map(|(k, j, t)| (k, j, t, if t == 0 { 0.0 } else { 100.0 * j as f64 / t as f64 })).collect()
}

/// Reads the membership of every talk room and backstage of the plan.
pub async fn read(hs: &Homeserver, plan: &Plan) -> Result<HashMap<String, HashMap<String, String>>, MatrixError> {
    let mut out = HashMap::new();
    for room in plan.rooms.iter().filter(|r| matches!(r.kind, ObjectKind::TalkRoom | ObjectKind::Backstage)) {
        let Some(room_id) = hs.resolve_alias(&room.alias).await? else { continue };
        let members: HashMap<String, String> = hs
            .room_state(&room_id)
            .await?
            .into_iter()
            .filter(|(t, _, _)| t == "m.room.member")
            .filter_map(|(_, user, content)| Some((user, content["membership"].as_str()?.to_string())))
            .collect();
        out.insert(room.key.clone(), members);
    }
    Ok(out)
}

/// The rows as CSV.
pub fn csv(rows: &[Row]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["track", "room", "room_name", "person", "name", "role", "user_ids", "presence"])?;
    for r in rows {
        let presence = serde_json::to_value(r.presence).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        w.write_record([&r.track, &r.room, &r.room_name, &r.person, &r.name, &r.role, &r.user_ids, &presence])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
