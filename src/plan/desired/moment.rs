//! Time as an input of the desired state: what the live timeline has done to the rooms by a given moment, so that an
//! `apply` or a schedule refresh during or after the event keeps it instead of undoing it. A talk room whose talk
//! is over is open to the audience; the room of a talk that is live is `suggested` in its space and has its video
//! call maximised. A runner that was down converges by reconciling to the moment, not by replaying what it missed.
//! Pure: the moment is computed by the timeline from the schedule and a clock, and comes in as data.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::plan::state::StateItem;
use crate::plan::widgets;
use crate::plan::{ObjectKind, PlannedRoom};

/// The rooms the timeline has changed by now, by plan key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moment {
    /// Talk rooms opened to the audience (their talk is over).
    pub open: BTreeSet<String>,
    /// Talk rooms `suggested` in their space (the talk is live).
    pub suggested: BTreeSet<String>,
    /// Talk rooms with the video call maximised (the talk is live).
    pub maximised: BTreeSet<String>,
    /// Join rule of an opened talk room (`public`, or `knock`).
    pub open_join_rule: String,
    /// History visibility of an opened talk room (`shared`: the audience reads what was said during the talk).
    pub open_history: String,
}

impl Default for Moment {
    /// Before the event: nothing opened, nothing live.
    fn default() -> Moment {
        Moment {
            open: BTreeSet::new(),
            suggested: BTreeSet::new(),
            maximised: BTreeSet::new(),
            open_join_rule: "public".into(),
            open_history: "shared".into(),
        }
    }
}

impl Moment {
    fn is_talk(room: &PlannedRoom) -> bool {
        room.kind == ObjectKind::TalkRoom
    }

    /// Whether the room's link in its space is `suggested` now.
    pub fn suggested(&self, room: &PlannedRoom) -> bool {
        Moment::is_talk(room) && self.suggested.contains(&room.key)
    }

    /// The room's state items as they should be now: an opened talk room's join rule and history visibility, a
    /// live talk's layout with the video call in the centre.
    pub fn apply(&self, room: &PlannedRoom, items: &mut [StateItem]) {
        if !Moment::is_talk(room) {
            return;
        }
        let open = self.open.contains(&room.key);
        let live = self.maximised.contains(&room.key);
        let jitsi = items.iter().find(|i| i.event_type == widgets::WIDGET && i.content["type"] == "jitsi").map(|i| i.state_key.clone());
        for item in items.iter_mut() {
            match item.event_type.as_str() {
                "m.room.join_rules" if open => item.content = json!({"join_rule": self.open_join_rule}),
                "m.room.history_visibility" if open => item.content = json!({"history_visibility": self.open_history}),
                widgets::LAYOUT if live => {
                    if let Some(jitsi) = &jitsi {
                        maximise(&mut item.content, jitsi)
                    }
                }
                _ => {}
            }
        }
    }
}

/// A layout with the Jitsi widget in Element's `center` container (the maximised widget) and the others beside it.
fn maximise(layout: &mut Value, jitsi: &str) {
    let Some(slots) = layout.get_mut("widgets").and_then(Value::as_object_mut) else { return };
    if let Some(slot) = slots.get_mut(jitsi) {
        *slot = json!({"container": "center", "index": 0, "width": 100, "height": 100});
    }
    let mut index = 0;
    let mut others: Vec<&String> = slots.keys().filter(|id| *id != jitsi).collect();
    others.sort();
    let others: Vec<String> = others.into_iter().cloned().collect();
    for id in others {
        if let Some(slot) = slots.get_mut(&id) {
            *slot = json!({"container": "right", "index": index, "width": 100, "height": 50});
            index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{built, with_widgets};
    use super::super::{Observed, Settings, room_changes};
    use super::*;
    use crate::plan::managed::{Links, Managed};
    use crate::plan::state;
    use crate::plan::talk_room_fixture;

    fn at(open: &[&str], live: &[&str]) -> Moment {
        let set = |keys: &[&str]| keys.iter().map(|s| s.to_string()).collect();
        Moment { open: set(open), suggested: set(live), maximised: set(live), ..Moment::default() }
    }

    fn changes(room: &PlannedRoom, built_at: &Settings, now: &Settings) -> Vec<(String, Value)> {
        let state = built(room, built_at, None);
        let managed = Managed::from_state(&state);
        room_changes(room, Observed { state: &state, managed: &managed }, now, None, &Links::new())
            .into_iter()
            .map(|c| (c.item.event_type, c.item.content))
            .collect()
    }

    #[test]
    fn a_talk_room_opens_after_its_talk_and_stays_open() {
        let room = talk_room_fixture(Vec::new());
        let before = with_widgets(false);
        let mut after = Settings { moment: at(&["talk/t1"], &[]), ..with_widgets(false) };
        // An invite-only talk room already shares its history with members: only the join rule changes.
        assert_eq!(changes(&room, &before, &after), vec![("m.room.join_rules".to_string(), json!({"join_rule": "public"}))]);
        after.moment.open_history = "world_readable".into();
        assert_eq!(
            changes(&room, &before, &after),
            vec![
                ("m.room.join_rules".to_string(), json!({"join_rule": "public"})),
                ("m.room.history_visibility".to_string(), json!({"history_visibility": "world_readable"}))
            ]
        );
        // The runner opened it: an apply at the same moment (or later) writes nothing, and does not close it.
        assert_eq!(changes(&room, &after, &after), vec![]);
        // Other rooms are not opened by someone else's talk.
        let other = PlannedRoom { key: "talk/t2".into(), ..room };
        assert_eq!(changes(&other, &before, &after), vec![]);
    }

    #[test]
    fn the_live_talk_has_its_call_maximised_and_gets_it_back_after() {
        let room = talk_room_fixture(Vec::new());
        let live = Settings { moment: at(&[], &["talk/t1"]), ..with_widgets(false) };
        let state = built(&room, &live, None);
        let layout = state::get(&state, widgets::LAYOUT, "").cloned().unwrap_or_default();
        let slots = layout["widgets"].as_object().cloned().unwrap_or_default();
        let centre: Vec<&String> = slots.iter().filter(|(_, s)| s["container"] == "center").map(|(k, _)| k).collect();
        assert_eq!(centre.len(), 1, "{layout}");
        assert!(centre[0].starts_with("stagehand-jitsi-"));
        assert!(slots.values().filter(|s| s["container"] != "center").all(|s| s["container"] == "right"));
        // After the talk: the layout is restored (and the room opened).
        let over = Settings { moment: at(&["talk/t1"], &[]), ..with_widgets(false) };
        let types: Vec<String> = changes(&room, &live, &over).into_iter().map(|(t, _)| t).collect();
        assert!(types.contains(&widgets::LAYOUT.to_string()), "{types:?}");
    }

    #[test]
    fn only_talk_rooms_follow_the_moment() {
        let backstage = PlannedRoom { kind: ObjectKind::Backstage, key: "backstage/rust".into(), ..talk_room_fixture(Vec::new()) };
        let m = at(&["backstage/rust"], &["backstage/rust"]);
        assert!(!m.suggested(&backstage));
        let now = Settings { moment: m, ..with_widgets(false) };
        assert_eq!(changes(&backstage, &with_widgets(false), &now), vec![]);
    }
}
