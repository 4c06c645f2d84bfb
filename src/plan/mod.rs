//! The plan: from a conference and the config, the Matrix objects Stagehand wants to exist — root space, subspaces by
//! track kind, track rooms, backstages, per-talk rooms, stands and support rooms — with names, aliases, parents and
//! order keys. Pure: no network, no Matrix SDK types. The homeserver issue extends each object with its full state.

use std::collections::HashMap;

use serde::Serialize;

pub mod desired;
pub mod managed;
pub mod members;
pub mod naming;
mod order;
pub mod state;
mod topics;
pub mod widgets;

pub use order::names_its_space;

use crate::config::{Config, ParentLinks};
use naming::render;
use crate::schedule::model::{Conference, Talk, TrackKind, slugify};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    RootSpace,
    Subspace,
    TrackRoom,
    Backstage,
    TalkRoom,
    Stand,
    Support,
    /// The organisers' management room (`operations.management_room`): private, in no space.
    Management,
}

impl ObjectKind {
    pub fn is_space(self) -> bool {
        matches!(self, ObjectKind::RootSpace | ObjectKind::Subspace)
    }

    pub fn label(self) -> &'static str {
        match self {
            ObjectKind::RootSpace => "root space",
            ObjectKind::Subspace => "space",
            ObjectKind::TrackRoom => "track room",
            ObjectKind::Backstage => "backstage",
            ObjectKind::TalkRoom => "talk room",
            ObjectKind::Stand => "stand",
            ObjectKind::Support => "support room",
            ObjectKind::Management => "management room",
        }
    }
}

/// One planned room or space.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedRoom {
    pub kind: ObjectKind,
    /// Locator key, unique in the conference (`track/rust`, `talk/<guid>`).
    pub key: String,
    pub name: String,
    /// Full canonical alias, `#localpart:server`.
    pub alias: String,
    /// Locator key of the parent space.
    pub parent: Option<String>,
    /// `m.space.child` order: printable ASCII, at most 50 characters.
    pub order: String,
    /// Talks this room covers (a track room: its track's talks; a talk room: 1).
    pub talks: usize,
    pub track: Option<String>,
    pub talk: Option<String>,
    /// What the room is for, when, where, and how to ask questions.
    pub topic: String,
    /// Public (anyone may join, world-readable) or invite-only.
    pub public: bool,
    /// Who is invited, with what power.
    pub members: Vec<members::PlannedMember>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub conference: String,
    pub server_name: String,
    pub rooms: Vec<PlannedRoom>,
    pub warnings: Vec<String>,
    /// Which rooms name their space (`rooms.parent_links`).
    pub parent_links: ParentLinks,
}

/// The talk room of talk `t1` with these members, for tests elsewhere in the crate.
#[cfg(test)]
pub(crate) fn talk_room_fixture(members: Vec<members::PlannedMember>) -> PlannedRoom {
    PlannedRoom {
        kind: ObjectKind::TalkRoom,
        key: "talk/t1".into(),
        name: "One".into(),
        alias: "#c-talk-t1:x".into(),
        parent: None,
        order: String::new(),
        talks: 1,
        track: Some("rust".into()),
        talk: Some("t1".into()),
        topic: String::new(),
        public: false,
        members,
    }
}

impl Plan {
    pub fn count(&self, kind: ObjectKind) -> usize {
        self.rooms.iter().filter(|r| r.kind == kind).count()
    }

    pub fn children<'a>(&'a self, parent: &'a str) -> impl Iterator<Item = &'a PlannedRoom> + 'a {
        self.rooms.iter().filter(move |r| r.parent.as_deref() == Some(parent))
    }
}

/// An alias localpart made safe: lower-case, `[a-z0-9._=-]`, other characters folded to `-`.
pub fn alias_safe(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '=' | '-') { c } else { '-' }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches('-').to_string()
}

fn order_prefix(s: &str) -> String {
    let slug = slugify(s);
    slug.chars().take(30).collect()
}

/// Builds the plan for a conference.
pub fn plan(conf: &Conference, config: &Config) -> Plan {
    let n = &config.naming;
    let kinds = &config.rooms;
    let server = config.homeserver.server_name.as_str();
    let cid = config.conference.id.as_str();
    let ctitle = config.conference.title.clone().unwrap_or_else(|| conf.title.clone());
    let mut rooms: Vec<PlannedRoom> = Vec::new();
    let mut warnings = Vec::new();
    let mut aliases: HashMap<String, String> = HashMap::new();

    let mut push = |rooms: &mut Vec<PlannedRoom>, warnings: &mut Vec<String>, mut room: PlannedRoom| {
        let local = alias_safe(&room.alias);
        let mut candidate = local.clone();
        let mut i = 2;
        while let Some(owner) = aliases.get(&candidate) {
            if i == 2 {
                warnings.push(format!("alias #{local}:{server} of {} is already taken by {owner}", room.key));
            }
            candidate = format!("{local}-{i}");
            i += 1;
        }
        aliases.insert(candidate.clone(), room.key.clone());
        room.alias = format!("#{candidate}:{server}");
        rooms.push(room);
    };

    let root_key = "root".to_string();
    push(
        &mut rooms,
        &mut warnings,
        PlannedRoom {
            kind: ObjectKind::RootSpace,
            key: root_key.clone(),
            name: render(&n.root_name, &[("conference", cid), ("conference_title", &ctitle)]),
            alias: render(&n.root_alias, &[("conference", cid)]),
            parent: None,
            order: String::new(),
            talks: conf.talks.len(),
            track: None,
            talk: None,
            topic: String::new(),
            public: false,
            members: Vec::new(),
        },
    );

    // Subspaces in a fixed kind order, each only if it has tracks.
    let mut by_kind: Vec<(TrackKind, Vec<&crate::schedule::model::Track>)> = Vec::new();
    for kind in TrackKind::ALL {
        let mut tracks: Vec<_> = conf.tracks.iter().filter(|t| t.kind == kind).collect();
        tracks.sort_by(|a, b| (slugify(&a.name), &a.key).cmp(&(slugify(&b.name), &b.key)));
        if !tracks.is_empty() {
            by_kind.push((kind, tracks));
        }
    }
    let mut talks_by_track: HashMap<&str, Vec<&Talk>> = HashMap::new();
    for t in &conf.talks {
        if let Some(tr) = &t.track {
            talks_by_track.entry(tr.as_str()).or_default().push(t);
        }
    }

    for (ki, (kind, tracks)) in by_kind.iter().enumerate() {
        let space_key = format!("space/{}", kind.slug());
        let parent_key = if kinds.subspaces {
            let talk_count = tracks.iter().map(|t| talks_by_track.get(t.key.as_str()).map_or(0, Vec::len)).sum();
            push(
                &mut rooms,
                &mut warnings,
                PlannedRoom {
                    kind: ObjectKind::Subspace,
                    key: space_key.clone(),
                    name: format!("{} ({})", kind.title(), ctitle),
                    alias: render(&n.subspace_alias, &[("conference", cid), ("kind", kind.slug())]),
                    parent: Some(root_key.clone()),
                    order: format!("{ki}"),
                    talks: talk_count,
                    track: None,
                    talk: None,
                    topic: String::new(),
                    public: false,
                    members: Vec::new(),
                },
            );
            space_key
        } else {
            root_key.clone()
        };
        for track in tracks {
            let tkey = alias_safe(&track.key);
            let talks = talks_by_track.get(track.key.as_str()).cloned().unwrap_or_default();
            let vars = [
                ("conference", cid),
                ("conference_title", ctitle.as_str()),
                ("track", tkey.as_str()),
                ("track_name", track.name.as_str()),
            ];
            let prefix = order_prefix(&track.name);
            // A stand's public room is its stand room; otherwise the track room.
            let (room_kind, key_prefix, alias_template) = if *kind == TrackKind::Stand && kinds.stands {
                (ObjectKind::Stand, "stand", &n.stand_alias)
            } else {
                (ObjectKind::TrackRoom, "track", &n.track_alias)
            };
            if kinds.track_rooms {
                push(
                    &mut rooms,
                    &mut warnings,
                    PlannedRoom {
                        kind: room_kind,
                        key: format!("{key_prefix}/{}", track.key),
                        name: render(&n.track_name, &vars),
                        alias: render(alias_template, &vars),
                        parent: Some(parent_key.clone()),
                        order: format!("{prefix} 0"),
                        talks: talks.len(),
                        track: Some(track.key.clone()),
                        talk: None,
                        topic: String::new(),
                        public: false,
                        members: Vec::new(),
                    },
                );
            }
            if kinds.backstages {
                push(
                    &mut rooms,
                    &mut warnings,
                    PlannedRoom {
                        kind: ObjectKind::Backstage,
                        key: format!("backstage/{}", track.key),
                        name: render(&n.backstage_name, &vars),
                        alias: render(&n.backstage_alias, &vars),
                        parent: Some(parent_key.clone()),
                        order: format!("{prefix} 1"),
                        talks: talks.len(),
                        track: Some(track.key.clone()),
                        talk: None,
                        topic: String::new(),
                        public: false,
                        members: Vec::new(),
                    },
                );
            }
            if kinds.talk_rooms {
                let mut talks = talks.clone();
                talks.sort_by(|a, b| (a.start, &a.key).cmp(&(b.start, &b.key)));
                for t in talks {
                    let talk_key = alias_safe(&t.key);
                    let vars = [
                        ("conference", cid),
                        ("conference_title", ctitle.as_str()),
                        ("track", tkey.as_str()),
                        ("track_name", track.name.as_str()),
                        ("talk", talk_key.as_str()),
                        ("talk_title", t.title.as_str()),
                    ];
                    push(
                        &mut rooms,
                        &mut warnings,
                        PlannedRoom {
                            kind: ObjectKind::TalkRoom,
                            key: format!("talk/{}", t.key),
                            name: render(&n.talk_name, &vars),
                            alias: render(&n.talk_alias, &vars),
                            parent: Some(parent_key.clone()),
                            order: format!("{prefix} 2{}", t.start.with_timezone(&chrono::Utc).format("%Y%m%d%H%M")),
                            talks: 1,
                            track: Some(track.key.clone()),
                            talk: Some(t.key.clone()),
                            topic: String::new(),
                            public: false,
                            members: Vec::new(),
                        },
                    );
                }
            }
        }
    }

    for (i, s) in kinds.support.iter().enumerate() {
        let local = format!("{cid}-{}", s.key);
        push(
            &mut rooms,
            &mut warnings,
            PlannedRoom {
                kind: ObjectKind::Support,
                key: format!("support/{}", s.key),
                name: s.name.clone(),
                alias: local,
                parent: Some(root_key.clone()),
                order: format!("~{i}"),
                talks: 0,
                track: None,
                talk: None,
                topic: String::new(),
                public: false,
                members: Vec::new(),
            },
        );
    }

    if config.operations.has_management_room() {
        push(
            &mut rooms,
            &mut warnings,
            PlannedRoom {
                kind: ObjectKind::Management,
                key: "management".into(),
                name: format!("{} management", if conf.title.is_empty() { cid } else { conf.title.as_str() }),
                alias: format!("{cid}-{}", config.operations.management_room),
                parent: None,
                order: String::new(),
                talks: 0,
                track: None,
                talk: None,
                topic: String::new(),
                public: false,
                members: Vec::new(),
            },
        );
    }

    let track_aliases: HashMap<String, String> = rooms
        .iter()
        .filter(|r| matches!(r.kind, ObjectKind::TrackRoom | ObjectKind::Stand))
        .filter_map(|r| Some((r.track.clone()?, r.alias.clone())))
        .collect();
    for room in &mut rooms {
        room.public = match room.kind {
            ObjectKind::RootSpace | ObjectKind::Subspace | ObjectKind::TrackRoom | ObjectKind::Stand => true,
            ObjectKind::Backstage | ObjectKind::TalkRoom | ObjectKind::Management => false,
            ObjectKind::Support => kinds.support.iter().any(|s| room.key == format!("support/{}", s.key) && s.public),
        };
        room.topic = topics::topic(room, conf, config, &track_aliases);
        room.members = members::members(room, conf, config);
    }

    let untracked = conf.talks.iter().filter(|t| t.track.is_none()).count();
    if untracked > 0 {
        warnings.push(format!("{untracked} talk(s) have neither track nor room and get no room"));
    }
    Plan { conference: cid.to_string(), server_name: server.to_string(), rooms, warnings, parent_links: config.rooms.parent_links }
}

/// The plan as an indented tree for a person to read.
pub fn render_tree(plan: &Plan) -> String {
    let mut out = String::new();
    let mut children: HashMap<&str, Vec<&PlannedRoom>> = HashMap::new();
    for r in &plan.rooms {
        if let Some(p) = &r.parent {
            children.entry(p.as_str()).or_default().push(r);
        }
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| (&a.order, &a.key).cmp(&(&b.order, &b.key)));
    }
    fn walk(out: &mut String, room: &PlannedRoom, children: &HashMap<&str, Vec<&PlannedRoom>>, depth: usize) {
        let talks = match room.kind {
            ObjectKind::TalkRoom | ObjectKind::Support | ObjectKind::Management => String::new(),
            _ => format!(", {} talk{}", room.talks, if room.talks == 1 { "" } else { "s" }),
        };
        out.push_str(&format!("{}{}  {}  [{}{}]\n", "  ".repeat(depth), room.name, room.alias, room.kind.label(), talks));
        if let Some(kids) = children.get(room.key.as_str()) {
            for k in kids {
                walk(out, k, children, depth + 1);
            }
        }
    }
    for root in plan.rooms.iter().filter(|r| r.parent.is_none()) {
        walk(&mut out, root, &children, 0);
    }
    out.push_str(&summary_line(plan));
    out.push('\n');
    out
}

pub fn summary_line(plan: &Plan) -> String {
    let spaces = plan.count(ObjectKind::RootSpace) + plan.count(ObjectKind::Subspace);
    format!(
        "{} spaces, {} track rooms, {} backstages, {} talk rooms, {} stands, {} support rooms{}: {} rooms in all",
        spaces,
        plan.count(ObjectKind::TrackRoom),
        plan.count(ObjectKind::Backstage),
        plan.count(ObjectKind::TalkRoom),
        plan.count(ObjectKind::Stand),
        plan.count(ObjectKind::Support),
        if plan.count(ObjectKind::Management) > 0 { ", a management room" } else { "" },
        plan.rooms.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_safe_folds() {
        assert_eq!(alias_safe("E001~2"), "e001-2");
        assert_eq!(alias_safe("9c3ebb8c-7716"), "9c3ebb8c-7716");
        assert_eq!(alias_safe("A b/c"), "a-b-c");
    }
}
