//! Power levels of one room: the plan's levels for the room's own version (a room built as v12 stays v12 whatever
//! the config says now), widgets and layout editable by moderators when the config allows it, and the people
//! Stagehand empowered earlier whom the plan no longer names (or names at power 0) lowered. Nobody at or above the
//! bot's own level is touched: the server would refuse the whole event.

use serde_json::{Value, json};

use super::{Change, Observed, Settings};
use crate::plan::PlannedRoom;
use crate::plan::state::{self, StateMap};
use crate::plan::widgets;

/// The power levels the plan wants in a room of this version.
pub fn planned(room: &PlannedRoom, room_version: &str, s: &Settings) -> Value {
    let mut pl = state::power_levels(room, room_version, &s.bot);
    if s.widgets.as_ref().is_some_and(|ctx| ctx.config.moderators_can_edit) {
        for t in [widgets::WIDGET, widgets::LAYOUT] {
            pl["events"][t] = json!(50);
        }
    }
    pl
}

/// The room's version, from its create event (the configured one for a room not read from the server).
pub fn version_of<'a>(state: &'a StateMap, s: &'a Settings) -> &'a str {
    state::get(state, "m.room.create", "").and_then(|c| c["room_version"].as_str()).unwrap_or(&s.room_version)
}

/// The bot's own level in the room: nobody at or above it can be lowered by the bot.
fn bot_level(current: Option<&Value>, version: &str, bot: &str) -> i64 {
    let users_default = current.and_then(|p| p["users_default"].as_i64()).unwrap_or(0);
    match current.and_then(|p| p["users"].get(bot)).and_then(Value::as_i64) {
        Some(level) => level,
        // A room creator in v12 outranks everyone.
        None if state::creators_are_privileged(version) => i64::MAX,
        None => users_default,
    }
}

/// The power-levels event to send, or nothing when the room already satisfies the plan.
pub fn change(room: &PlannedRoom, seen: Observed<'_>, s: &Settings) -> Option<Change> {
    let version = version_of(seen.state, s);
    let pl = planned(room, version, s);
    let current = state::get(seen.state, "m.room.power_levels", "");
    let users_default = current.and_then(|p| p["users_default"].as_i64()).unwrap_or(0);
    let ceiling = bot_level(current, version, &s.bot);
    let level = |u: &str| current.and_then(|p| p["users"].get(u)).and_then(Value::as_i64);
    let mut stale: Vec<String> = seen
        .managed
        .users
        .iter()
        .cloned()
        .chain(state::member_ids(room))
        .filter(|u| *u != s.bot && pl["users"].get(u).is_none())
        .filter(|u| level(u).is_some_and(|l| l > users_default && l < ceiling))
        .collect();
    stale.sort();
    stale.dedup();
    if state::satisfies(&pl, current) && stale.is_empty() {
        return None;
    }
    let mut content = state::content_to_send("m.room.power_levels", &pl, current);
    if let Some(users) = content.get_mut("users").and_then(Value::as_object_mut) {
        for u in &stale {
            users.remove(u);
        }
    }
    Some(Change { item: state::StateItem::new("m.room.power_levels", "", content), from: current.cloned() })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{built, settings, with_widgets};
    use super::*;
    use crate::plan::managed::Managed;
    use crate::plan::members::fixture;
    use crate::plan::talk_room_fixture;
    use crate::schedule::model::Role;

    fn pl_change(room: &PlannedRoom, state: &StateMap, managed: &Managed, s: &Settings) -> Option<Value> {
        change(room, Observed { state, managed }, s).map(|c| c.item.content)
    }

    fn with_users(state: &mut StateMap, users: Value) {
        let key = ("m.room.power_levels".to_string(), String::new());
        let mut pl = state[&key].clone();
        pl["users"] = users;
        state.insert(key, pl);
    }

    #[test]
    fn power_follows_the_rooms_own_version() {
        let room = talk_room_fixture(vec![fixture("Ann", Role::Speaker, &["@ann:x"], &[])]);
        // Built as v12 (bot not in users); the config now says 11: nothing to change, the bot is not added.
        let v12 = Settings { room_version: "12".into(), ..settings() };
        let state = built(&room, &v12, None);
        assert!(state[&("m.room.power_levels".into(), String::new())]["users"].get("@bot:x").is_none());
        assert_eq!(pl_change(&room, &state, &Managed::default(), &settings()), None);
        // Built as v11: the bot is in users at 100.
        let state = built(&room, &settings(), None);
        assert_eq!(state[&("m.room.power_levels".into(), String::new())]["users"]["@bot:x"], 100);
    }

    #[test]
    fn power_0_means_0_and_dropped_people_are_lowered() {
        let ann = fixture("Ann", Role::Speaker, &["@ann:x"], &[]);
        let room = talk_room_fixture(vec![PlannedMember { power: 0, ..ann }]);
        let mut state = built(&talk_room_fixture(Vec::new()), &settings(), None);
        with_users(&mut state, json!({"@bot:x": 100, "@ann:x": 50, "@gone:x": 50, "@stranger:x": 50}));
        let managed = Managed { users: vec!["@gone:x".into()], ..Managed::default() };
        let sent = pl_change(&room, &state, &managed, &settings()).expect("a change");
        // Ann is planned at power 0: her 50 goes. @gone was ours and is dropped. @stranger was never ours: kept.
        assert_eq!(sent["users"], json!({"@bot:x": 100, "@stranger:x": 50}));
    }

    #[test]
    fn nobody_at_or_above_the_bots_level_is_touched() {
        let room = talk_room_fixture(Vec::new());
        let mut state = built(&room, &settings(), None);
        with_users(&mut state, json!({"@bot:x": 100, "@boss:x": 100, "@mod:x": 50}));
        let managed = Managed { users: vec!["@boss:x".into(), "@mod:x".into()], ..Managed::default() };
        let sent = pl_change(&room, &state, &managed, &settings()).expect("a change");
        assert_eq!(sent["users"], json!({"@bot:x": 100, "@boss:x": 100}));
        // In v12 a creator bot outranks everyone: @boss at 100 can be lowered.
        let v12 = Settings { room_version: "12".into(), ..settings() };
        let mut state = built(&room, &v12, None);
        with_users(&mut state, json!({"@boss:x": 100}));
        let sent = pl_change(&room, &state, &managed, &v12).expect("a change");
        assert_eq!(sent["users"], json!({}));
    }

    #[test]
    fn moderators_may_edit_widgets_only_when_the_config_says_so() {
        let room = talk_room_fixture(Vec::new());
        let off = planned(&room, "11", &with_widgets(false));
        let on = planned(&room, "11", &with_widgets(true));
        assert_eq!((off["events"][widgets::WIDGET].clone(), off["events"][widgets::LAYOUT].clone()), (json!(100), json!(100)));
        assert_eq!((on["events"][widgets::WIDGET].clone(), on["events"][widgets::LAYOUT].clone()), (json!(50), json!(50)));
        // A room built without the permission gets it when the config changes, and only those two keys move.
        let state = built(&room, &with_widgets(false), None);
        let sent = pl_change(&room, &state, &Managed::default(), &with_widgets(true)).expect("a change");
        assert_eq!(sent["events"][widgets::WIDGET], 50);
        assert_eq!(sent["events"]["m.room.name"], 100);
    }

    use crate::plan::members::PlannedMember;
}
