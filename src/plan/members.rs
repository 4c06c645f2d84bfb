//! Who belongs in which room, and with what power: speakers, hosts and the track's coordinators in a talk room;
//! coordinators and hosts in a track backstage; every speaker in the speakers' lounge. Pure.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ObjectKind, PlannedRoom};
use crate::config::Config;
use crate::schedule::model::{Conference, Role};

/// A person who should be in a room.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedMember {
    pub person: String,
    pub name: String,
    pub role: Role,
    /// Power level once in the room (0: none).
    pub power: i64,
    /// Every Matrix ID the person has; each is invited.
    pub user_ids: Vec<String>,
    /// For people without a Matrix ID: where an e-mail invite could go.
    pub emails: Vec<String>,
}

fn rank(role: Role) -> u8 {
    match role {
        Role::Coordinator => 3,
        Role::Host => 2,
        Role::Speaker => 1,
    }
}

/// The members of one planned room, by person key.
pub fn members(room: &PlannedRoom, conf: &Conference, config: &Config) -> Vec<PlannedMember> {
    if room.kind == ObjectKind::Management {
        // The organisers, by Matrix ID: they are in the config, not in the schedule.
        return config
            .operations
            .organisers
            .iter()
            .map(|id| PlannedMember {
                person: id.clone(),
                name: id.clone(),
                role: Role::Coordinator,
                power: 50,
                user_ids: vec![id.clone()],
                emails: Vec::new(),
            })
            .collect();
    }
    let powers = &config.people;
    let power_of = |role: Role, own_talk: bool| match role {
        Role::Coordinator => powers.coordinator_power,
        Role::Host => powers.host_power,
        Role::Speaker if own_talk => powers.speaker_power,
        Role::Speaker => 0,
    };
    let mut wanted: BTreeMap<String, (Role, i64)> = BTreeMap::new();
    let mut add = |person: &str, role: Role, power: i64| {
        let slot = wanted.entry(person.to_string()).or_insert((role, power));
        if rank(role) > rank(slot.0) {
            slot.0 = role;
        }
        slot.1 = slot.1.max(power);
    };
    let track = room.track.as_deref().and_then(|k| conf.track(k));
    match room.kind {
        ObjectKind::TalkRoom => {
            if let Some(talk) = room.talk.as_deref().and_then(|k| conf.talks.iter().find(|t| t.key == k)) {
                for p in &talk.people {
                    add(&p.person, p.role, power_of(p.role, true));
                }
            }
            for c in track.map(|t| t.coordinators.as_slice()).unwrap_or_default() {
                add(c, Role::Coordinator, power_of(Role::Coordinator, true));
            }
        }
        ObjectKind::Backstage => {
            for c in track.map(|t| t.coordinators.as_slice()).unwrap_or_default() {
                add(c, Role::Coordinator, power_of(Role::Coordinator, true));
            }
            if let Some(t) = track {
                for talk in conf.talks_of(&t.key) {
                    for h in talk.people_with(Role::Host) {
                        add(h, Role::Host, power_of(Role::Host, true));
                    }
                }
            }
        }
        ObjectKind::Support if powers.lounge.as_deref().is_some_and(|l| room.key == format!("support/{l}")) => {
            for talk in &conf.talks {
                for s in talk.people_with(Role::Speaker) {
                    add(s, Role::Speaker, 0);
                }
            }
        }
        _ => {}
    }
    wanted
        .into_iter()
        .filter_map(|(key, (role, power))| {
            let p = conf.person(&key)?;
            Some(PlannedMember {
                person: key,
                name: p.name.clone(),
                role,
                power,
                user_ids: p.matrix_ids.clone(),
                emails: p.emails.clone(),
            })
        })
        .collect()
}

/// A member for tests elsewhere in the crate (power 50 when the role gives power in a talk room).
#[cfg(test)]
pub(crate) fn fixture(name: &str, role: Role, ids: &[&str], emails: &[&str]) -> PlannedMember {
    PlannedMember {
        person: name.to_lowercase(),
        name: name.into(),
        role,
        power: 50,
        user_ids: ids.iter().map(|s| s.to_string()).collect(),
        emails: emails.iter().map(|s| s.to_string()).collect(),
    }
}
