//! The order a build makes rooms in, and which rooms name their space (`rooms.parent_links`). A room's id is known
//! only once it exists, so of the two links between a space and a room (`m.space.child` in the space,
//! `m.space.parent` in the room) one can go into a `createRoom` and the other, when wanted, is a write after it.

use std::collections::HashMap;

use super::{ObjectKind, Plan, PlannedRoom};
use crate::config::ParentLinks;

impl Plan {
    /// Whether a room names its space in an `m.space.parent` event (`rooms.parent_links`).
    pub fn carries_parent_link(&self, room: &PlannedRoom) -> bool {
        room.parent.is_some() && names_its_space(self.parent_links, room.kind)
    }

    /// The rooms a space lists in its own `createRoom`: its planned rooms that do not name it and exist already
    /// (`ids`: room ids by plan key), with their ids.
    pub fn listed_at_creation<'a>(&'a self, space: &PlannedRoom, ids: &'a HashMap<String, String>) -> Vec<(&'a PlannedRoom, &'a str)> {
        self.rooms
            .iter()
            .filter(|c| c.parent.as_deref() == Some(space.key.as_str()) && !self.carries_parent_link(c))
            .filter_map(|c| Some((c, ids.get(&c.key)?.as_str())))
            .collect()
    }

    /// The order rooms are made in, as a level per key (0 first): a room's `createRoom` carries every link whose
    /// other end already exists. A room that names its space comes after the space (its parent link goes into its
    /// own `createRoom`, the space's link to it is a write after); a space comes after the rooms that do not name
    /// it (its links to them go into its `createRoom`). Each link then costs a separate write only in the first
    /// case, so the default (only subspaces name the root) makes a conference with one write per subspace.
    pub fn creation_levels(&self) -> HashMap<&str, usize> {
        let by_key: HashMap<&str, &PlannedRoom> = self.rooms.iter().map(|r| (r.key.as_str(), r)).collect();
        let mut after: HashMap<&str, Vec<&str>> = HashMap::new();
        for room in &self.rooms {
            let Some(parent) = room.parent.as_deref().filter(|p| by_key.contains_key(p)) else { continue };
            if self.carries_parent_link(room) {
                after.entry(room.key.as_str()).or_default().push(parent);
            } else {
                after.entry(parent).or_default().push(room.key.as_str());
            }
        }
        let mut levels: HashMap<&str, usize> = HashMap::new();
        for room in &self.rooms {
            level_of(room.key.as_str(), &after, &mut levels, 0);
        }
        levels
    }
}

/// Whether a room of this kind, when it is in a space, names the space in an `m.space.parent` event, under a
/// `rooms.parent_links` policy.
pub fn names_its_space(policy: ParentLinks, kind: ObjectKind) -> bool {
    match policy {
        ParentLinks::All => true,
        ParentLinks::SpacesOnly => kind.is_space(),
        ParentLinks::Off => false,
    }
}

/// A room's creation level: one more than the highest of the rooms it comes after. Bounded: a plan is a few levels
/// deep; a cycle would be a planning bug, not a hang.
fn level_of<'a>(key: &'a str, after: &HashMap<&'a str, Vec<&'a str>>, levels: &mut HashMap<&'a str, usize>, depth: usize) -> usize {
    if let Some(l) = levels.get(key) {
        return *l;
    }
    let level = match after.get(key) {
        Some(before) if depth <= 16 => before.iter().map(|b| level_of(b, after, levels, depth + 1) + 1).max().unwrap_or(0),
        _ => 0,
    };
    levels.insert(key, level);
    level
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::talk_room_fixture;

    fn room(kind: ObjectKind, key: &str, parent: Option<&str>) -> PlannedRoom {
        PlannedRoom { kind, key: key.into(), parent: parent.map(str::to_string), ..talk_room_fixture(Vec::new()) }
    }

    fn conference(parent_links: ParentLinks) -> Plan {
        let rooms = vec![
            room(ObjectKind::RootSpace, "root", None),
            room(ObjectKind::Subspace, "space/a", Some("root")),
            room(ObjectKind::TrackRoom, "track/a", Some("space/a")),
            room(ObjectKind::TalkRoom, "talk/1", Some("space/a")),
            room(ObjectKind::Support, "support/info", Some("root")),
            room(ObjectKind::Management, "management", None),
        ];
        Plan { conference: "c".into(), server_name: "x".into(), rooms, warnings: Vec::new(), parent_links }
    }

    fn levels(plan: &Plan) -> Vec<(&str, usize)> {
        let levels = plan.creation_levels();
        plan.rooms.iter().map(|r| (r.key.as_str(), levels[r.key.as_str()])).collect()
    }

    #[test]
    fn by_default_only_subspaces_name_their_space_and_come_after_it() {
        let plan = conference(ParentLinks::default());
        let named: Vec<&str> = plan.rooms.iter().filter(|r| plan.carries_parent_link(r)).map(|r| r.key.as_str()).collect();
        assert_eq!(named, vec!["space/a"]);
        // Leaves first; the root after the support room it lists; the subspace after the root and its own rooms.
        assert_eq!(
            levels(&plan),
            vec![("root", 1), ("space/a", 2), ("track/a", 0), ("talk/1", 0), ("support/info", 0), ("management", 0)]
        );
    }

    #[test]
    fn a_space_lists_at_creation_the_rooms_that_exist_and_do_not_name_it() {
        let plan = conference(ParentLinks::default());
        let ids: HashMap<String, String> = [("track/a", "!t"), ("support/info", "!i"), ("space/a", "!s")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        let listed = |key: &str| {
            let space = plan.rooms.iter().find(|r| r.key == key).unwrap();
            plan.listed_at_creation(space, &ids).into_iter().map(|(r, id)| (r.key.clone(), id.to_string())).collect::<Vec<_>>()
        };
        // talk/1 is not made yet; the subspace names the root, so the root's link to it is a write after.
        assert_eq!(listed("space/a"), vec![("track/a".to_string(), "!t".to_string())]);
        assert_eq!(listed("root"), vec![("support/info".to_string(), "!i".to_string())]);
    }

    #[test]
    fn with_every_parent_link_the_build_goes_top_down() {
        let plan = conference(ParentLinks::All);
        assert!(plan.rooms.iter().all(|r| plan.carries_parent_link(r) == r.parent.is_some()));
        assert_eq!(
            levels(&plan),
            vec![("root", 0), ("space/a", 1), ("track/a", 2), ("talk/1", 2), ("support/info", 1), ("management", 0)]
        );
    }

    #[test]
    fn without_parent_links_the_build_goes_bottom_up() {
        let plan = conference(ParentLinks::Off);
        assert!(plan.rooms.iter().all(|r| !plan.carries_parent_link(r)));
        assert_eq!(
            levels(&plan),
            vec![("root", 2), ("space/a", 1), ("track/a", 0), ("talk/1", 0), ("support/info", 0), ("management", 0)]
        );
    }

    #[test]
    fn a_parent_missing_from_the_plan_orders_nothing() {
        let mut plan = conference(ParentLinks::All);
        plan.rooms.retain(|r| r.key != "space/a");
        assert_eq!(plan.creation_levels()["track/a"], 0);
    }
}
