//! Space links and cancellations: which `m.space.child` events a space needs (add, re-order, take out what moved
//! elsewhere), which rooms the plan no longer holds, the limit on how many rooms one run may cancel, and what a
//! cancelled room becomes (kept, renamed `Cancelled: ...`, marked in its locator, out of its space). Pure.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use super::{Change, Settings, change, not_empty};
use crate::plan::state::{self, LOCATOR, StateItem, StateMap};
use crate::plan::{ObjectKind, Plan, PlannedRoom};

/// What a space's links need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpaceLinks {
    /// Links to add or re-order, and links to rooms that moved to another planned space.
    pub changes: Vec<Change>,
    /// Linked rooms the plan does not hold at all, by room id, with their link's content: candidates for
    /// cancellation, taken out only once marked (or found not ours).
    pub unplanned: Vec<(String, Value)>,
}

/// The most links to its rooms a space carries in its own `createRoom`; the rest are written after it. Synapse
/// spends about 25 ms on each (the FOSDEM 2022 devrooms space, some 720, took 18 s to create): a thousand keeps a
/// `createRoom` well inside the client's 60 s timeout, whose expiry would send a second one.
pub const MAX_LINKS_AT_CREATION: usize = 1000;

/// The link a space carries to one child (`suggested` while its talk is live).
pub fn child_link(child: &PlannedRoom, child_id: &str, s: &Settings) -> StateItem {
    state::child_event(child_id, &child.order, &s.server_name, s.moment.suggested(child))
}

/// The links of one space. `ids`: room ids of the planned rooms found or created this run, by plan key.
pub fn space_links(plan: &Plan, space: &PlannedRoom, ids: &HashMap<String, String>, state: &StateMap, s: &Settings) -> SpaceLinks {
    let mut out = SpaceLinks::default();
    let mut wanted: BTreeSet<&str> = BTreeSet::new();
    for child in plan.children(&space.key) {
        let Some(child_id) = ids.get(&child.key) else { continue };
        wanted.insert(child_id);
        out.changes.extend(change(state, child_link(child, child_id, s)));
    }
    // A planned child that could not be located or created this run has no id: its current link cannot be told from
    // a stale one, so nothing is taken out of this space this time.
    if !plan.children(&space.key).all(|c| ids.contains_key(&c.key)) {
        return out;
    }
    let planned: BTreeSet<&str> = ids.values().map(String::as_str).collect();
    let mut links: Vec<(&String, &Value)> =
        state.iter().filter(|((t, k), c)| t == "m.space.child" && !wanted.contains(k.as_str()) && not_empty(c)).map(|((_, k), c)| (k, c)).collect();
    links.sort_by_key(|(k, _)| *k);
    for (child_id, content) in links {
        if planned.contains(child_id.as_str()) {
            // Moved to another space.
            out.changes.push(Change { item: state::removed("m.space.child", child_id), from: Some(content.clone()) });
        } else {
            out.unplanned.push((child_id.clone(), content.clone()));
        }
    }
    out
}

/// The most rooms one run may cancel: the configured limit, else a fifth of the talk rooms and at least 10. An
/// empty or truncated export must not cancel a conference.
pub fn cancel_limit(plan: &Plan, max_cancel: Option<usize>) -> usize {
    max_cancel.unwrap_or_else(|| (plan.count(ObjectKind::TalkRoom) / 5).max(10))
}

/// What to do with a linked room the plan does not hold, from its own state.
#[derive(Debug, Clone, PartialEq)]
pub enum Retirement {
    /// Not ours (no locator, another conference) or still planned under its key: it may leave the space as it is.
    Unlink,
    /// Ours and no longer planned: mark it cancelled and cut its parent links (nothing left to do when empty), then
    /// it may leave the space. Never deleted: its history stays readable for those in it.
    Cancel { key: String, alias: String, changes: Vec<Change> },
}

/// Decides what a room the plan no longer holds becomes.
pub fn retirement(state: &StateMap, conference: &str, plan: &Plan) -> Retirement {
    let Some(locator) = state::get(state, LOCATOR, "") else { return Retirement::Unlink };
    if locator["conference"] != conference {
        return Retirement::Unlink;
    }
    let key = locator["key"].as_str().unwrap_or_default().to_string();
    if plan.rooms.iter().any(|r| r.key == key) {
        return Retirement::Unlink;
    }
    let text = |t: &str, field: &str| state::get(state, t, "").and_then(|c| c[field].as_str()).unwrap_or_default().to_string();
    let mut changes = Vec::new();
    if locator.get("cancelled") != Some(&json!(true)) {
        let mut marked = locator.clone();
        if let Some(o) = marked.as_object_mut() {
            o.insert("cancelled".into(), json!(true));
        }
        changes.push(Change { item: StateItem::new(LOCATOR, "", marked), from: Some(locator.clone()) });
        let name = text("m.room.name", "name");
        if !name.starts_with("Cancelled: ") {
            changes.push(Change { item: StateItem::new("m.room.name", "", json!({"name": format!("Cancelled: {name}")})), from: None });
        }
        let topic = format!("This talk was cancelled. The room is kept for what was said in it. {}", text("m.room.topic", "topic"));
        changes.push(Change { item: StateItem::new("m.room.topic", "", json!({ "topic": topic })), from: None });
    }
    let mut parents: Vec<(&String, &Value)> =
        state.iter().filter(|((t, _), c)| t == "m.space.parent" && not_empty(c)).map(|((_, k), c)| (k, c)).collect();
    parents.sort_by_key(|(k, _)| *k);
    for (k, content) in parents {
        changes.push(Change { item: state::removed("m.space.parent", k), from: Some(content.clone()) });
    }
    Retirement::Cancel { key, alias: text("m.room.canonical_alias", "alias"), changes }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::settings;
    use super::*;
    use crate::plan::talk_room_fixture;

    fn plan_of(rooms: Vec<PlannedRoom>) -> Plan {
        Plan { conference: "c".into(), server_name: "x".into(), rooms, warnings: Vec::new(), parent_links: Default::default() }
    }

    fn space() -> PlannedRoom {
        PlannedRoom { kind: ObjectKind::Subspace, key: "space/devroom".into(), ..talk_room_fixture(Vec::new()) }
    }

    fn talk(key: &str, order: &str) -> PlannedRoom {
        PlannedRoom { key: key.into(), order: order.into(), parent: Some("space/devroom".into()), ..talk_room_fixture(Vec::new()) }
    }

    fn link(state: &mut StateMap, id: &str, order: &str) {
        state.insert(("m.space.child".into(), id.into()), json!({"via": ["x"], "order": order}));
    }

    #[test]
    fn links_are_added_reordered_and_moved_rooms_unlinked() {
        let plan = plan_of(vec![space(), talk("talk/a", "1"), talk("talk/b", "2"), PlannedRoom { parent: None, ..talk("talk/c", "3") }]);
        let ids: HashMap<String, String> = [("talk/a", "!a"), ("talk/b", "!b"), ("talk/c", "!c")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        let mut state = StateMap::new();
        link(&mut state, "!a", "1");
        link(&mut state, "!b", "9");
        link(&mut state, "!c", "3");
        link(&mut state, "!gone", "4");
        state.insert(("m.space.child".into(), "!old".into()), json!({}));
        let out = space_links(&plan, &plan.rooms[0], &ids, &state, &settings());
        let changes: Vec<(&str, &Value)> = out.changes.iter().map(|c| (c.item.state_key.as_str(), &c.item.content)).collect();
        assert_eq!(changes, vec![("!b", &json!({"via": ["x"], "order": "2"})), ("!c", &json!({}))]);
        assert_eq!(out.unplanned, vec![("!gone".to_string(), json!({"via": ["x"], "order": "4"}))]);
    }

    #[test]
    fn the_live_talk_is_suggested_and_the_flag_moves_on() {
        let plan = plan_of(vec![space(), talk("talk/a", "1"), talk("talk/b", "2")]);
        let ids: HashMap<String, String> = [("talk/a", "!a"), ("talk/b", "!b")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        let mut state = StateMap::new();
        link(&mut state, "!a", "1");
        state.insert(("m.space.child".into(), "!b".into()), json!({"via": ["x"], "order": "2", "suggested": true}));
        let mut s = settings();
        s.moment.suggested.insert("talk/a".into());
        let out = space_links(&plan, &plan.rooms[0], &ids, &state, &s);
        let changes: Vec<(&str, &Value)> = out.changes.iter().map(|c| (c.item.state_key.as_str(), &c.item.content)).collect();
        assert_eq!(
            changes,
            vec![("!a", &json!({"via": ["x"], "order": "1", "suggested": true})), ("!b", &json!({"via": ["x"], "order": "2"}))]
        );
    }

    #[test]
    fn nothing_is_taken_out_while_a_planned_child_is_unknown() {
        let plan = plan_of(vec![space(), talk("talk/a", "1"), talk("talk/b", "2")]);
        let ids: HashMap<String, String> = [("talk/a".to_string(), "!a".to_string())].into();
        let mut state = StateMap::new();
        link(&mut state, "!a", "1");
        link(&mut state, "!maybe-b", "2");
        assert_eq!(space_links(&plan, &plan.rooms[0], &ids, &state, &settings()), SpaceLinks::default());
    }

    #[test]
    fn the_cancel_limit_is_a_fifth_of_the_talk_rooms_at_least_10_unless_configured() {
        let few = plan_of((0..20).map(|i| talk(&format!("talk/{i}"), "")).collect());
        assert_eq!(cancel_limit(&few, None), 10);
        let many = plan_of((0..200).map(|i| talk(&format!("talk/{i}"), "")).collect());
        assert_eq!(cancel_limit(&many, None), 40);
        assert_eq!(cancel_limit(&many, Some(2)), 2);
    }

    #[test]
    fn a_cancelled_room_is_renamed_marked_and_unparented_once() {
        let plan = plan_of(vec![space()]);
        let mut state = StateMap::new();
        state.insert((LOCATOR.into(), String::new()), json!({"conference": "c", "kind": "talk_room", "key": "talk/gone"}));
        state.insert(("m.room.name".into(), String::new()), json!({"name": "Gone talk"}));
        state.insert(("m.room.topic".into(), String::new()), json!({"topic": "Sat 10:00"}));
        state.insert(("m.room.canonical_alias".into(), String::new()), json!({"alias": "#c-talk-gone:x"}));
        state.insert(("m.space.parent".into(), "!space".into()), json!({"via": ["x"], "canonical": true}));
        let Retirement::Cancel { key, alias, changes } = retirement(&state, "c", &plan) else { panic!("not cancelled") };
        assert_eq!((key.as_str(), alias.as_str()), ("talk/gone", "#c-talk-gone:x"));
        let by_type: HashMap<&str, &Value> = changes.iter().map(|c| (c.item.event_type.as_str(), &c.item.content)).collect();
        assert_eq!(by_type["m.room.name"], &json!({"name": "Cancelled: Gone talk"}));
        assert_eq!(by_type[LOCATOR]["cancelled"], true);
        assert!(by_type["m.room.topic"]["topic"].as_str().unwrap().ends_with("Sat 10:00"));
        assert_eq!(by_type["m.space.parent"], &json!({}));
        // Once done, a second look finds nothing left to do: no "Cancelled: Cancelled: ...".
        for c in &changes {
            state.insert((c.item.event_type.clone(), c.item.state_key.clone()), c.item.content.clone());
        }
        assert_eq!(retirement(&state, "c", &plan), Retirement::Cancel { key, alias, changes: vec![] });
    }

    #[test]
    fn rooms_not_ours_or_still_planned_are_only_unlinked() {
        let plan = plan_of(vec![space(), talk("talk/kept", "1")]);
        assert_eq!(retirement(&StateMap::new(), "c", &plan), Retirement::Unlink);
        let mut other = StateMap::new();
        other.insert((LOCATOR.into(), String::new()), json!({"conference": "other", "key": "talk/x"}));
        assert_eq!(retirement(&other, "c", &plan), Retirement::Unlink);
        let mut kept = StateMap::new();
        kept.insert((LOCATOR.into(), String::new()), json!({"conference": "c", "key": "talk/kept"}));
        assert_eq!(retirement(&kept, "c", &plan), Retirement::Unlink);
    }
}
