//! `rooms`: which objects to create (subspaces, track rooms, backstages, talk rooms, stands) and the support rooms.
//! Owns the FOSDEM 2022 defaults and the check that support room keys are unique.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// Which objects to create. The FOSDEM 2022 shape is the default.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RoomsConfig {
    pub subspaces: bool,
    pub track_rooms: bool,
    pub backstages: bool,
    pub talk_rooms: bool,
    /// Stand tracks get a stand room (alias from `naming.stand_alias`) in place of a track room.
    pub stands: bool,
    /// Support rooms (speakers' lounge, info desk), each a child of the root space.
    pub support: Vec<SupportRoom>,
    /// Which rooms carry an `m.space.parent` link to their space, besides the space's `m.space.child` link to them.
    pub parent_links: ParentLinks,
}

/// Which child rooms name their space in an `m.space.parent` event (canonical). Spaces always list their children
/// (`m.space.child`): that is what Element and the hierarchy API show. A parent link in every leaf room costs one
/// state write per room at build time (a room's id is known only once it exists, so one of the two directions is
/// always a write after `createRoom`); only subspaces carry theirs by default.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
pub enum ParentLinks {
    /// Subspaces name the root space; rooms in a space do not.
    #[default]
    #[serde(rename = "spaces")]
    SpacesOnly,
    /// Every child room names its space.
    #[serde(rename = "all")]
    All,
    /// No room names its space.
    #[serde(rename = "none")]
    Off,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        RoomsConfig {
            subspaces: true,
            track_rooms: true,
            backstages: true,
            talk_rooms: true,
            stands: true,
            support: vec![
                SupportRoom { key: "speakers".into(), name: "Speakers' lounge".into(), topic: None, public: false },
                SupportRoom { key: "info".into(), name: "Info desk".into(), topic: None, public: true },
            ],
            parent_links: ParentLinks::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SupportRoom {
    pub key: String,
    pub name: String,
    pub topic: Option<String>,
    #[serde(default)]
    pub public: bool,
}

impl RoomsConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        let mut seen = HashSet::new();
        match self.support.iter().find(|s| !seen.insert(&s.key)) {
            Some(s) => Err(format!("rooms.support: key {:?} is used twice", s.key)),
            None => Ok(()),
        }
    }
}
