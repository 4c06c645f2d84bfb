//! Which talk a question belongs to, and who may moderate it: from the schedule, the plan and the rooms' ids. A
//! message in a track room belongs to the talk of that track whose window holds it (its start to its end plus the
//! margin, the later talk winning where two windows meet); a message in a talk room belongs to its talk once the
//! room is open (after the talk). Times are the conference clock's: a rehearsal shifts them. Pure.

use std::collections::{HashMap, HashSet};

use crate::plan::{ObjectKind, Plan};
use crate::schedule::model::{Conference, Role};
use crate::timeline::Clock;

/// A room Q&A listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A track room or stand: its track's talks, by time.
    Track(String),
    /// A talk room: its talk, once open.
    Talk(String),
}

#[derive(Debug, Clone)]
struct Window {
    talk: String,
    start_ms: i64,
    end_ms: i64,
}

/// A talk as Q&A needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct TalkInfo {
    pub title: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Its hosts and coordinators and its track's coordinators, who may hide and mark answered.
    pub moderators: HashSet<String>,
    /// Plan keys of the rooms its questions are asked in (the track room, the talk room).
    pub rooms: Vec<String>,
}

/// The mapping from rooms and times to talks.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Room id → what it is.
    places: HashMap<String, Place>,
    /// Plan key → room id.
    ids: HashMap<String, String>,
    windows: HashMap<String, Vec<Window>>,
    talks: HashMap<String, TalkInfo>,
    margin_ms: i64,
    clock: Clock,
}

impl Scope {
    /// `room_ids`: plan key → room id, for the rooms that exist.
    pub fn new(conf: &Conference, plan: &Plan, room_ids: &HashMap<String, String>, margin_minutes: i64, clock: Clock) -> Scope {
        let margin_ms = margin_minutes * 60_000;
        let mut places = HashMap::new();
        let mut track_rooms: HashMap<String, String> = HashMap::new();
        let mut talk_rooms: HashMap<String, String> = HashMap::new();
        let mut coordinators: HashMap<String, HashSet<String>> = HashMap::new();
        let mut hosts: HashMap<String, HashSet<String>> = HashMap::new();
        for room in &plan.rooms {
            let ids = |min: Role| -> HashSet<String> {
                room.members.iter().filter(|m| m.role >= min).flat_map(|m| m.user_ids.iter().cloned()).collect()
            };
            match (&room.kind, &room.track, &room.talk) {
                (ObjectKind::TalkRoom, _, Some(talk)) => {
                    talk_rooms.insert(talk.clone(), room.key.clone());
                    hosts.entry(talk.clone()).or_default().extend(ids(Role::Host));
                    if let Some(id) = room_ids.get(&room.key) {
                        places.insert(id.clone(), Place::Talk(talk.clone()));
                    }
                }
                (ObjectKind::TrackRoom | ObjectKind::Stand, Some(track), _) => {
                    track_rooms.insert(track.clone(), room.key.clone());
                    coordinators.entry(track.clone()).or_default().extend(ids(Role::Coordinator));
                    if let Some(id) = room_ids.get(&room.key) {
                        places.insert(id.clone(), Place::Track(track.clone()));
                    }
                }
                (ObjectKind::Backstage, Some(track), _) => {
                    coordinators.entry(track.clone()).or_default().extend(ids(Role::Coordinator));
                }
                _ => {}
            }
        }
        let mut windows: HashMap<String, Vec<Window>> = HashMap::new();
        let mut talks = HashMap::new();
        for t in &conf.talks {
            let (start_ms, end_ms) = (t.start.timestamp_millis(), t.end.timestamp_millis());
            let mut moderators = hosts.get(&t.key).cloned().unwrap_or_default();
            let mut rooms = Vec::new();
            if let Some(track) = &t.track {
                moderators.extend(coordinators.get(track).into_iter().flatten().cloned());
                windows.entry(track.clone()).or_default().push(Window { talk: t.key.clone(), start_ms, end_ms: end_ms + margin_ms });
                rooms.extend(track_rooms.get(track).cloned());
            }
            rooms.extend(talk_rooms.get(&t.key).cloned());
            talks.insert(t.key.clone(), TalkInfo { title: t.title.clone(), start_ms, end_ms, moderators, rooms });
        }
        for w in windows.values_mut() {
            w.sort_by(|a, b| (a.start_ms, &a.talk).cmp(&(b.start_ms, &b.talk)));
        }
        Scope { places, ids: room_ids.clone(), windows, talks, margin_ms, clock }
    }

    /// The talk a message sent at `ts_ms` (the server's clock) in room `room_id` asks, if any.
    pub fn talk_of(&self, room_id: &str, ts_ms: i64) -> Option<&str> {
        let at = self.clock.conference_ms(ts_ms);
        match self.places.get(room_id)? {
            Place::Talk(talk) => {
                let t = self.talks.get(talk)?;
                (at >= t.end_ms).then_some(talk.as_str())
            }
            Place::Track(track) => {
                let w = self.windows.get(track)?;
                // The latest talk started by then whose window still holds the instant.
                let started = w.partition_point(|x| x.start_ms <= at);
                w[..started].iter().rev().find(|x| at < x.end_ms).map(|x| x.talk.as_str())
            }
        }
    }

    pub fn talk(&self, key: &str) -> Option<&TalkInfo> {
        self.talks.get(key)
    }

    /// The room ids a talk's questions come from.
    pub fn room_ids_of(&self, talk: &str) -> Vec<&str> {
        self.talks.get(talk).into_iter().flat_map(|t| &t.rooms).filter_map(|k| self.ids.get(k).map(String::as_str)).collect()
    }

    /// Every room id Q&A listens to.
    pub fn room_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.places.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Whether Q&A listens to a room.
    pub fn knows(&self, room_id: &str) -> bool {
        self.places.contains_key(room_id)
    }

    /// The talk a Q&A page of a room shows at `now_ms` (the conference clock): a talk room's own talk; for a track's
    /// backstage or room, the talk whose window holds now, else the last one started, else the first to come.
    pub fn shown(&self, talks: &[String], now_ms: i64) -> Option<String> {
        let mut list: Vec<(&str, &TalkInfo)> = talks.iter().filter_map(|k| Some((k.as_str(), self.talks.get(k)?))).collect();
        list.sort_by_key(|(k, t)| (t.start_ms, *k));
        let started: Vec<&(&str, &TalkInfo)> = list.iter().filter(|(_, t)| t.start_ms <= now_ms).collect();
        let live = started.iter().rev().find(|(_, t)| now_ms < t.end_ms + self.margin_ms);
        live.or(started.last()).or(list.first().as_ref()).map(|(k, _)| k.to_string())
    }

    /// The next instant at or after which [`Scope::shown`] may change for these talks (a start or an end plus the
    /// margin), if any.
    pub fn next_change(&self, talks: &[String], now_ms: i64) -> Option<i64> {
        talks
            .iter()
            .filter_map(|k| self.talks.get(k))
            .flat_map(|t| [t.start_ms, t.end_ms + self.margin_ms])
            .filter(|&x| x > now_ms)
            .min()
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }
}
