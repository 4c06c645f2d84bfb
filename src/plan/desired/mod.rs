//! The desired state of one room, given what was observed there: the state events to write, its power levels for
//! the room's own version, widgets and layout, space links, cancellations and the membership work. Pure: it takes
//! the plan, the run's [`Settings`] and what the matrix layer observed (as data), and returns what must be sent.
//! The matrix layer only observes and sends; every decision about what a room should carry is made here.
//!
//! Comparison is exact for relations, the locator, the managed record and widgets (a key dropped from a widget must
//! go), by subset for the rest (a server adds keys of its own; see [`super::state::satisfies`]).

use std::borrow::Cow;

use serde_json::Value;

use super::{PlannedRoom, names_its_space};
use crate::config::ParentLinks;
use super::managed::{self, Links, Managed};
use super::state::{self, LOCATOR, MANAGED, StateItem, StateMap};
use super::widgets::{self, WidgetContext};

pub mod members;
pub mod moment;
pub mod power;
pub mod spaces;

/// What shapes every room of a run, besides the plan.
#[derive(Debug, Clone)]
pub struct Settings {
    pub conference: String,
    /// The server named in `via` of space relations.
    pub server_name: String,
    /// The bot's Matrix ID: never managed, never lowered.
    pub bot: String,
    /// Room version of rooms created now (existing rooms keep theirs).
    pub room_version: String,
    /// Widgets to put in rooms; none when `None`.
    pub widgets: Option<WidgetContext>,
    /// Kick joined members the schedule no longer puts in a room (otherwise only their power is lowered).
    pub kick_removed: bool,
    /// Whether e-mail invites can be sent (an identity server is configured).
    pub email_invites: bool,
    /// Only power levels, the managed record and memberships (`stagehand invite`): no room state, no widgets.
    pub members_only: bool,
    /// What the live timeline has done by now (talk rooms opened, the live talk suggested and maximised).
    pub moment: moment::Moment,
    /// Which rooms name their space (the plan's `parent_links`).
    pub parent_links: ParentLinks,
}

/// One state event to write and the content it replaces (for the report).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub item: StateItem,
    pub from: Option<Value>,
}

/// What the matrix layer observed in one existing room.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub state: &'a StateMap,
    /// Stagehand's record in the room, parsed once.
    pub managed: &'a Managed,
}

/// What `createRoom` carries for a new room (its whole initial state and its power levels), and the membership work
/// once it exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Creation {
    pub initial_state: Vec<StateItem>,
    pub power_levels: Value,
    pub members: members::RoomMembers,
}

/// What one existing room needs: its state changes (the managed record apart, written after the memberships) and
/// its membership work.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomWork {
    pub changes: Vec<Change>,
    pub members: members::RoomMembers,
}

/// Exact comparison for relations, the locator, the record and widgets; subset comparison for the rest.
pub fn satisfied(item: &StateItem, current: Option<&Value>) -> bool {
    if matches!(item.event_type.as_str(), LOCATOR | MANAGED | widgets::WIDGET | "m.space.child" | "m.space.parent") {
        return current.map_or(item.content.as_object().is_some_and(|o| o.is_empty()), |c| *c == item.content);
    }
    state::satisfies(&item.content, current)
}

/// The change that brings one state event to `item`, or nothing when the room already has it.
pub fn change(state: &StateMap, item: StateItem) -> Option<Change> {
    let from = state::get(state, &item.event_type, &item.state_key);
    (!satisfied(&item, from)).then(|| Change { from: from.cloned(), item })
}

/// Everything a room should carry but its power levels and space children: name, topic, rules, locator, the
/// managed record, its parent link (when it names its space) and its widgets.
fn room_items(room: &PlannedRoom, s: &Settings, parent_id: Option<&str>) -> Vec<StateItem> {
    let mut items = state::room_state(&s.conference, room);
    if let Some(p) = parent_id.filter(|_| names_its_space(s.parent_links, room.kind)) {
        items.push(state::parent_event(p, &s.server_name));
    }
    if let Some(ctx) = &s.widgets {
        items.extend(widgets::widgets(room, ctx));
    }
    s.moment.apply(room, &mut items);
    items
}

/// A new room: everything known at creation goes into `createRoom`, a space's links to the rooms made before it
/// (`children`: planned room and room id) included, up to [`spaces::MAX_LINKS_AT_CREATION`] (the rest are written
/// after it, by the spaces phase).
pub fn creation(room: &PlannedRoom, s: &Settings, parent_id: Option<&str>, children: &[(&PlannedRoom, &str)], links: &Links) -> Creation {
    let linked = managed::linked(room, links);
    let mut initial_state = room_items(&linked, s, parent_id);
    initial_state.extend(children.iter().take(spaces::MAX_LINKS_AT_CREATION).map(|(child, id)| spaces::child_link(child, id, s)));
    let mut out = Creation {
        initial_state,
        power_levels: power::planned(&linked, &s.room_version, s),
        members: members::RoomMembers::default(),
    };
    let state = created_state(&out);
    out.members = members::memberships(room, Observed { state: &state, managed: &Managed::from_state(&state) }, s, links);
    out
}

/// Everything one existing room needs, from what was observed there.
pub fn room(room: &PlannedRoom, seen: Observed<'_>, s: &Settings, parent_id: Option<&str>, links: &Links) -> RoomWork {
    RoomWork { changes: room_changes(room, seen, s, parent_id, links), members: members::memberships(room, seen, s, links) }
}

/// The state changes an existing room needs: planned state that differs, power levels (with people the plan
/// dropped lowered), widgets and a layout the plan no longer holds, and a parent link the plan no longer names.
/// The managed record is not among them: it is written after the memberships ([`members::record`]).
/// `parent_id` is `None` both for a room without a parent and for one whose parent could not be found this run:
/// `parent_known` tells them apart, so an unknown parent never unlinks a room.
pub fn room_changes(room: &PlannedRoom, seen: Observed<'_>, s: &Settings, parent_id: Option<&str>, links: &Links) -> Vec<Change> {
    let room = managed::linked(room, links);
    let mut out = Vec::new();
    let items = if s.members_only { Vec::new() } else { room_items(&room, s, parent_id) };
    let planned_widgets: Vec<&str> =
        items.iter().filter(|i| i.event_type == widgets::WIDGET).map(|i| i.state_key.as_str()).collect();
    let mut removals = Vec::new();
    if !s.members_only {
        // Our widgets the plan no longer holds (a livestream switched off, widgets disabled): ids with our prefix only.
        for ((t, k), content) in seen.state {
            if t == widgets::WIDGET && k.starts_with(widgets::ID_PREFIX) && !planned_widgets.contains(&k.as_str()) && not_empty(content) {
                removals.push(Change { item: state::removed(widgets::WIDGET, k), from: Some(content.clone()) });
            }
        }
        // A layout without planned widgets (widgets switched off).
        if planned_widgets.is_empty()
            && let Some(layout) = state::get(seen.state, widgets::LAYOUT, "").filter(|c| not_empty(c))
        {
            removals.push(Change { item: state::removed(widgets::LAYOUT, ""), from: Some(layout.clone()) });
        }
        // A parent the plan no longer names (the talk moved to another space); never when the parent is unknown.
        let parent_unknown = room.parent.is_some() && parent_id.is_none();
        for ((t, k), content) in seen.state {
            if !parent_unknown && t == "m.space.parent" && Some(k.as_str()) != parent_id && not_empty(content) {
                removals.push(Change { item: state::removed("m.space.parent", k), from: Some(content.clone()) });
            }
        }
    }
    out.extend(items.into_iter().filter(|i| i.event_type != MANAGED).filter_map(|i| change(seen.state, i)));
    out.extend(power::change(&room, seen, s));
    removals.sort_by(|a, b| (&a.item.event_type, &a.item.state_key).cmp(&(&b.item.event_type, &b.item.state_key)));
    out.extend(removals);
    out
}

/// The state a new room has right after `createRoom`, as if observed.
pub fn created_state(creation: &Creation) -> StateMap {
    let mut out: StateMap =
        creation.initial_state.iter().map(|i| ((i.event_type.clone(), i.state_key.clone()), i.content.clone())).collect();
    out.insert(("m.room.power_levels".into(), String::new()), creation.power_levels.clone());
    out
}

/// Whether a state content is present (a removed relation or widget has empty content).
pub fn not_empty(content: &Value) -> bool {
    content.as_object().is_some_and(|o| !o.is_empty())
}

/// The room as the desired state sees it (see [`managed::linked`]).
pub fn linked<'a>(room: &'a PlannedRoom, links: &Links) -> Cow<'a, PlannedRoom> {
    managed::linked(room, links)
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::config::WidgetsConfig;

    pub fn settings() -> Settings {
        Settings {
            conference: "c".into(),
            server_name: "x".into(),
            bot: "@bot:x".into(),
            room_version: "11".into(),
            widgets: None,
            kick_removed: false,
            email_invites: false,
            members_only: false,
            moment: moment::Moment::default(),
            parent_links: ParentLinks::All,
        }
    }

    pub fn with_widgets(moderators_can_edit: bool) -> Settings {
        let config = WidgetsConfig { moderators_can_edit, ..WidgetsConfig::default() };
        let ctx = WidgetContext { conference: "c".into(), bot: "@bot:x".into(), config, secret: b"0123456789abcdef".to_vec() };
        Settings { widgets: Some(ctx), ..settings() }
    }

    /// The state of a room created from this plan, as the server would show it (with its version).
    pub fn built(room: &PlannedRoom, s: &Settings, parent_id: Option<&str>) -> StateMap {
        let mut state = created_state(&creation(room, s, parent_id, &[], &Links::new()));
        state.insert(("m.room.create".into(), String::new()), serde_json::json!({"room_version": s.room_version}));
        state
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::fixtures::*;
    use super::*;
    use crate::plan::members::fixture;
    use crate::plan::{ObjectKind, talk_room_fixture};
    use crate::schedule::model::Role;

    fn observe(state: &StateMap) -> Managed {
        Managed::from_state(state)
    }

    #[test]
    fn a_room_built_from_the_plan_needs_nothing() {
        let room = talk_room_fixture(vec![fixture("Ann", Role::Speaker, &["@ann:x"], &[])]);
        for s in [settings(), with_widgets(false), with_widgets(true)] {
            let state = built(&room, &s, Some("!space"));
            let managed = observe(&state);
            let changes = room_changes(&room, Observed { state: &state, managed: &managed }, &s, Some("!space"), &Links::new());
            assert_eq!(changes, vec![], "{s:?}");
        }
    }

    #[test]
    fn a_new_room_carries_everything_in_create_room_and_invites_its_people() {
        let room = talk_room_fixture(vec![fixture("Ann", Role::Speaker, &["@ann:x"], &[]), fixture("Eve", Role::Host, &[], &["eve@x.org"])]);
        let c = creation(&room, &with_widgets(false), Some("!space"), &[], &Links::new());
        let types: Vec<&str> = c.initial_state.iter().map(|i| i.event_type.as_str()).collect();
        for t in ["m.room.name", "m.room.topic", "m.room.join_rules", LOCATOR, MANAGED, "m.space.parent", widgets::WIDGET, widgets::LAYOUT] {
            assert!(types.contains(&t), "{t} missing from createRoom: {types:?}");
        }
        assert_eq!(c.power_levels["users"]["@ann:x"], 50);
        assert_eq!(c.members.work, vec![members::MemberWork::Invite { user_id: "@ann:x".into() }]);
        assert_eq!(c.members.notes[0].action, members::MemberAction::Uncontactable, "no identity server configured");
    }

    #[test]
    fn a_retitled_talk_changes_its_name_only_and_server_keys_are_left_alone() {
        let room = talk_room_fixture(Vec::new());
        let s = settings();
        let mut state = built(&room, &s, None);
        state.insert(("m.room.topic".into(), String::new()), json!({"topic": room.topic, "m.topic": {"m.text": []}}));
        let renamed = PlannedRoom { name: "Two".into(), ..room.clone() };
        let managed = observe(&state);
        let changes = room_changes(&renamed, Observed { state: &state, managed: &managed }, &s, None, &Links::new());
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!((changes[0].item.event_type.as_str(), &changes[0].item.content), ("m.room.name", &json!({"name": "Two"})));
        assert_eq!(changes[0].from, Some(json!({"name": "One"})));
    }

    #[test]
    fn widgets_switched_off_are_removed_with_their_layout_and_foreign_widgets_stay() {
        let room = talk_room_fixture(Vec::new());
        let mut state = built(&room, &with_widgets(false), None);
        state.insert((widgets::WIDGET.into(), "someone-elses".into()), json!({"type": "custom", "url": "https://x"}));
        let managed = observe(&state);
        let changes = room_changes(&room, Observed { state: &state, managed: &managed }, &settings(), None, &Links::new());
        let removed: Vec<(&str, &str)> = changes.iter().map(|c| (c.item.event_type.as_str(), c.item.state_key.as_str())).collect();
        assert!(removed.iter().all(|(t, k)| (*t == widgets::WIDGET && k.starts_with(widgets::ID_PREFIX)) || *t == widgets::LAYOUT), "{removed:?}");
        assert!(removed.contains(&(widgets::LAYOUT, "")));
        assert_eq!(removed.iter().filter(|(t, _)| *t == widgets::WIDGET).count(), 3, "jitsi, Q&A and countdown go: {removed:?}");
        assert!(changes.iter().all(|c| c.item.content == json!({})));
    }

    #[test]
    fn a_parent_is_unlinked_only_when_the_plan_names_another() {
        let room = PlannedRoom { parent: Some("space/devroom".into()), ..talk_room_fixture(Vec::new()) };
        let s = settings();
        let state = built(&room, &s, Some("!old"));
        let managed = observe(&state);
        let seen = Observed { state: &state, managed: &managed };
        // Moved to another space: the old link goes, the new one comes.
        let moved = room_changes(&room, seen, &s, Some("!new"), &Links::new());
        let kinds: Vec<(&str, &Value)> = moved.iter().map(|c| (c.item.state_key.as_str(), &c.item.content)).collect();
        assert!(kinds.contains(&("!old", &json!({}))), "{kinds:?}");
        assert!(kinds.iter().any(|(k, c)| *k == "!new" && c["canonical"] == true), "{kinds:?}");
        // The parent could not be found this run: nothing is unlinked.
        assert_eq!(room_changes(&room, seen, &s, None, &Links::new()), vec![]);
    }

    #[test]
    fn by_default_rooms_in_a_space_do_not_name_it_subspaces_do_and_a_space_lists_the_rooms_made_before_it() {
        let s = Settings { parent_links: ParentLinks::SpacesOnly, ..settings() };
        let talk = PlannedRoom { parent: Some("space/a".into()), order: "10".into(), ..talk_room_fixture(Vec::new()) };
        let types = |c: &Creation| c.initial_state.iter().map(|i| (i.event_type.clone(), i.state_key.clone())).collect::<Vec<_>>();
        let c = creation(&talk, &s, Some("!space"), &[], &Links::new());
        assert!(!types(&c).iter().any(|(t, _)| t == "m.space.parent"), "{:?}", types(&c));
        let space = PlannedRoom { kind: ObjectKind::Subspace, key: "space/a".into(), parent: Some("root".into()), ..talk_room_fixture(Vec::new()) };
        let c = creation(&space, &s, Some("!root"), &[(&talk, "!talk")], &Links::new());
        let parent = c.initial_state.iter().find(|i| i.event_type == "m.space.parent").expect("a subspace names the root");
        assert_eq!((parent.state_key.as_str(), &parent.content), ("!root", &json!({"via": ["x"], "canonical": true})));
        let child = c.initial_state.iter().find(|i| i.event_type == "m.space.child").expect("the space lists its room");
        assert_eq!((child.state_key.as_str(), &child.content), ("!talk", &json!({"via": ["x"], "order": "10"})));
        // Built like that, neither needs anything on a rerun.
        for (room, parent_id) in [(&talk, "!space"), (&space, "!root")] {
            let state = built(room, &s, Some(parent_id));
            let managed = observe(&state);
            assert_eq!(room_changes(room, Observed { state: &state, managed: &managed }, &s, Some(parent_id), &Links::new()), vec![]);
        }
    }

    #[test]
    fn a_space_lists_at_most_so_many_rooms_in_its_create_room_and_the_rest_after() {
        let s = settings();
        let space = PlannedRoom { kind: ObjectKind::Subspace, key: "space/a".into(), ..talk_room_fixture(Vec::new()) };
        let rooms: Vec<(PlannedRoom, String)> = (0..spaces::MAX_LINKS_AT_CREATION + 3)
            .map(|i| (PlannedRoom { key: format!("talk/{i}"), parent: Some("space/a".into()), ..talk_room_fixture(Vec::new()) }, format!("!r{i}")))
            .collect();
        let children: Vec<(&PlannedRoom, &str)> = rooms.iter().map(|(r, id)| (r, id.as_str())).collect();
        let c = creation(&space, &s, None, &children, &Links::new());
        assert_eq!(c.initial_state.iter().filter(|i| i.event_type == "m.space.child").count(), spaces::MAX_LINKS_AT_CREATION);
        let ids: std::collections::HashMap<String, String> = rooms.iter().map(|(r, id)| (r.key.clone(), id.clone())).collect();
        let plan = crate::plan::Plan {
            conference: "c".into(),
            server_name: "x".into(),
            rooms: std::iter::once(space.clone()).chain(rooms.iter().map(|(r, _)| r.clone())).collect(),
            warnings: Vec::new(),
            parent_links: ParentLinks::SpacesOnly,
        };
        let after = spaces::space_links(&plan, &space, &ids, &created_state(&c), &s);
        let keys: Vec<&str> = after.changes.iter().map(|c| c.item.state_key.as_str()).collect();
        let n = spaces::MAX_LINKS_AT_CREATION;
        assert_eq!(keys, vec![format!("!r{n}"), format!("!r{}", n + 1), format!("!r{}", n + 2)]);
    }

    #[test]
    fn a_room_that_does_not_name_its_space_loses_stale_parent_links_and_keeps_one_to_its_space() {
        let room = PlannedRoom { parent: Some("space/a".into()), ..talk_room_fixture(Vec::new()) };
        // Built when every room named its space, then the talk moved from !old to !space, and the policy changed.
        let mut state = built(&room, &settings(), Some("!old"));
        state.insert(("m.space.parent".into(), "!space".into()), json!({"via": ["x"], "canonical": true}));
        let managed = observe(&state);
        let s = Settings { parent_links: ParentLinks::SpacesOnly, ..settings() };
        let changes = room_changes(&room, Observed { state: &state, managed: &managed }, &s, Some("!space"), &Links::new());
        let sent: Vec<(&str, &str, &Value)> = changes.iter().map(|c| (c.item.event_type.as_str(), c.item.state_key.as_str(), &c.item.content)).collect();
        assert_eq!(sent, vec![("m.space.parent", "!old", &json!({}))]);
        // The space not found this run: nothing is unlinked.
        assert_eq!(room_changes(&room, Observed { state: &state, managed: &managed }, &s, None, &Links::new()), vec![]);
    }

    #[test]
    fn members_only_touches_power_levels_and_nothing_else() {
        let room = talk_room_fixture(vec![fixture("Ann", Role::Speaker, &["@ann:x"], &[])]);
        let s = with_widgets(false);
        let before = built(&talk_room_fixture(Vec::new()), &settings(), None);
        let managed = observe(&before);
        let only = Settings { members_only: true, ..s };
        let changes = room_changes(&PlannedRoom { name: "Renamed".into(), ..room }, Observed { state: &before, managed: &managed }, &only, None, &Links::new());
        let types: Vec<&str> = changes.iter().map(|c| c.item.event_type.as_str()).collect();
        assert_eq!(types, vec!["m.room.power_levels"]);
        assert_eq!(changes[0].item.content["users"]["@ann:x"], 50);
    }
}
