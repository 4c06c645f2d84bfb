//! The Matrix state each planned room should carry: name, topic, join rules, history visibility, canonical alias,
//! the locator, power levels, and the space relations. Pure: room ids and the bot's user id come in as strings.
//!
//! Comparison is by subset: what we plan must be present with the same values; keys a server adds (Synapse puts
//! `m.topic` next to `topic`) are left alone. An empty planned content means "must be empty" (a removed space child).

use serde_json::{Map, Value, json};

use super::{ObjectKind, PlannedRoom};

/// State type of the locator event every Stagehand room carries.
pub const LOCATOR: &str = "org.stagehand.locator";

/// State events by (type, state key) -> content, as observed in a room.
pub type StateMap = std::collections::HashMap<(String, String), Value>;

/// The content of one state event in an observed room.
pub fn get<'a>(state: &'a StateMap, event_type: &str, state_key: &str) -> Option<&'a Value> {
    state.get(&(event_type.to_string(), state_key.to_string()))
}

/// One state event: type, state key, content.
#[derive(Debug, Clone, PartialEq)]
pub struct StateItem {
    pub event_type: String,
    pub state_key: String,
    pub content: Value,
}

impl StateItem {
    pub fn new(event_type: &str, state_key: &str, content: Value) -> StateItem {
        StateItem { event_type: event_type.to_string(), state_key: state_key.to_string(), content }
    }
}

/// The locator content that identifies a room as ours.
pub fn locator(conference: &str, room: &PlannedRoom) -> Value {
    json!({"conference": conference, "kind": room.kind, "key": room.key})
}

/// Whether a room's locator says it is the one Stagehand built for this conference and key.
pub fn is_ours(locator: Option<&Value>, conference: &str, key: &str) -> bool {
    locator.is_some_and(|l| l["conference"] == conference && l["key"] == key)
}

/// Whether a room version gives creators unlimited power (and forbids them in `users`): version 12 and later.
pub fn creators_are_privileged(room_version: &str) -> bool {
    room_version.parse::<u32>().is_ok_and(|v| v >= 12) || room_version == "org.matrix.hydra.11"
}

/// State sent in `createRoom`'s `initial_state` and reconciled afterwards (power levels and space relations apart).
pub fn room_state(conference: &str, room: &PlannedRoom) -> Vec<StateItem> {
    let join_rule = if room.public { "public" } else { "invite" };
    let history = if room.public { "world_readable" } else { "shared" };
    let mut items = vec![
        StateItem::new("m.room.name", "", json!({"name": room.name})),
        StateItem::new("m.room.topic", "", json!({"topic": room.topic})),
        StateItem::new("m.room.join_rules", "", json!({"join_rule": join_rule})),
        StateItem::new("m.room.history_visibility", "", json!({"history_visibility": history})),
        StateItem::new(LOCATOR, "", locator(conference, room)),
    ];
    if room.public {
        items.push(StateItem::new("m.room.guest_access", "", json!({"guest_access": "can_join"})));
    }
    if matches!(room.kind, ObjectKind::TalkRoom | ObjectKind::Backstage | ObjectKind::Support | ObjectKind::Management) {
        items.push(StateItem::new(MANAGED, "", json!({ "users": member_ids(room) })));
    }
    items
}

/// Power levels: room settings, widgets, layout, space relations and the locator need more than a moderator has.
pub fn power_levels(room: &PlannedRoom, room_version: &str, bot: &str) -> Value {
    let admin_only = [
        "m.room.name",
        "m.room.topic",
        "m.room.join_rules",
        "m.room.power_levels",
        "m.room.history_visibility",
        "m.room.canonical_alias",
        "m.room.tombstone",
        "m.room.server_acl",
        "m.room.encryption",
        "m.room.guest_access",
        "m.space.child",
        "m.space.parent",
        "im.vector.modular.widgets",
        "io.element.widgets.layout",
        LOCATOR,
        MANAGED,
    ];
    let mut events = Map::new();
    for e in admin_only {
        events.insert(e.to_string(), json!(100));
    }
    events.insert("m.room.avatar".into(), json!(50));
    events.insert("m.room.pinned_events".into(), json!(50));
    let mut pl = json!({
        "users_default": 0,
        "events_default": if room.kind.is_space() { 100 } else { 0 },
        "state_default": 100,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": if room.public { 0 } else { 50 },
        "events": events,
    });
    let mut users = Map::new();
    for m in &room.members {
        for uid in &m.user_ids {
            if m.power > 0 && uid != bot {
                users.insert(uid.clone(), json!(m.power));
            }
        }
    }
    if !creators_are_privileged(room_version) {
        users.insert(bot.to_string(), json!(100));
    }
    if !users.is_empty()
        && let Some(obj) = pl.as_object_mut()
    {
        obj.insert("users".into(), Value::Object(users));
    }
    pl
}

/// State type recording whom Stagehand invited and empowered in a room, so that people the schedule drops can be
/// found again (and nobody else is ever touched).
pub const MANAGED: &str = "org.stagehand.managed";

/// The planned members' Matrix IDs, sorted.
pub fn member_ids(room: &PlannedRoom) -> Vec<String> {
    let mut ids: Vec<String> = room.members.iter().flat_map(|m| m.user_ids.iter().cloned()).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// `m.space.parent` in a child, pointing at its space.
pub fn parent_event(parent_id: &str, server: &str) -> StateItem {
    StateItem::new("m.space.parent", parent_id, json!({"via": [server], "canonical": true}))
}

/// `m.space.child` in a space, with its order.
pub fn child_event(child_id: &str, order: &str, server: &str, suggested: bool) -> StateItem {
    let mut content = json!({"via": [server], "order": order});
    if suggested && let Some(o) = content.as_object_mut() {
        o.insert("suggested".into(), json!(true));
    }
    StateItem::new("m.space.child", child_id, content)
}

/// Removes a relation: empty content.
pub fn removed(event_type: &str, state_key: &str) -> StateItem {
    StateItem::new(event_type, state_key, json!({}))
}

/// Whether the current content satisfies the planned one (see the module doc).
pub fn satisfies(planned: &Value, current: Option<&Value>) -> bool {
    match (planned, current) {
        (Value::Object(p), None) => p.is_empty(),
        (_, None) => false,
        (Value::Object(p), Some(Value::Object(c))) => {
            if p.is_empty() {
                return c.is_empty();
            }
            p.iter().all(|(k, v)| match v {
                Value::Object(inner) if !inner.is_empty() => satisfies(v, c.get(k)),
                _ => c.get(k) == Some(v),
            })
        }
        (p, Some(c)) => p == c,
    }
}

/// The content to send so that the result satisfies `planned`: for power levels the planned values merged into
/// the current ones (a PUT replaces the whole content); otherwise the planned content itself.
pub fn content_to_send(event_type: &str, planned: &Value, current: Option<&Value>) -> Value {
    if event_type != "m.room.power_levels" {
        return planned.clone();
    }
    let mut out = current.cloned().unwrap_or_else(|| json!({}));
    merge(&mut out, planned);
    out
}

fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(slot) if v.is_object() && slot.is_object() => merge(slot, v),
                    _ => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_comparison() {
        let planned = json!({"topic": "x"});
        assert!(satisfies(&planned, Some(&json!({"topic": "x", "m.topic": {"m.text": []}}))));
        assert!(!satisfies(&planned, Some(&json!({"topic": "y"}))));
        assert!(!satisfies(&planned, None));
        assert!(satisfies(&json!({}), None));
        assert!(satisfies(&json!({}), Some(&json!({}))));
        assert!(!satisfies(&json!({}), Some(&json!({"via": ["a"]}))));
        let pl = json!({"events": {"m.room.name": 100}, "users": {"@bot:x": 100}});
        assert!(satisfies(&pl, Some(&json!({"events": {"m.room.name": 100, "m.room.topic": 50}, "users": {"@bot:x": 100, "@s:x": 50}}))));
        assert!(!satisfies(&pl, Some(&json!({"events": {"m.room.name": 50}, "users": {"@bot:x": 100}}))));
    }

    #[test]
    fn power_levels_merge_keeps_what_we_do_not_plan() {
        let current = json!({"users": {"@speaker:x": 50}, "events": {"m.room.avatar": 0}, "notifications": {"room": 50}});
        let planned = json!({"events": {"m.room.avatar": 50}, "ban": 50});
        let sent = content_to_send("m.room.power_levels", &planned, Some(&current));
        assert_eq!(sent, json!({"users": {"@speaker:x": 50}, "events": {"m.room.avatar": 50}, "notifications": {"room": 50}, "ban": 50}));
        assert!(satisfies(&planned, Some(&sent)));
    }

    #[test]
    fn version_12_keeps_the_creator_out_of_users() {
        assert!(creators_are_privileged("12"));
        assert!(!creators_are_privileged("11"));
        assert!(!creators_are_privileged("10"));
    }
}
