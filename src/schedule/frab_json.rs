//! Reader for the frab / pretalx `schedule.json` (the c3voc schema): `schedule.conference.days[].rooms{name: [event]}`,
//! and its successor the CCC hub's "schedule2" JSON: talks in a flat `schedule.events` list, each with a `room`
//! object, a `track` object and `participants` (with roles), days without `rooms`.
//! Lenient about unknown keys and about ids that are numbers in one export and strings in the next.

use chrono::NaiveDate;
use serde::Deserialize;

use super::raw::{RawDay, RawEvent, RawPerson, RawSchedule, RawTrack, When};
use super::raw::{parse_duration, parse_instant, parse_time};
use super::model::Role;
use super::{Finding, ScheduleError};

#[derive(Deserialize)]
struct Root {
    schedule: Option<Schedule>,
    talks: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Schedule {
    conference: Conference,
    /// The hub's flat list of talks (schedule2).
    #[serde(default)]
    events: Vec<Event>,
}

/// A room or track: a name (frab, pretalx) or an object with a name and a slug (the hub).
#[derive(Deserialize)]
#[serde(untagged)]
enum Named {
    Name(String),
    Object { name: Option<String>, slug: Option<String> },
}

impl Named {
    fn split(self) -> (Option<String>, Option<String>) {
        match self {
            Named::Name(n) => (Some(n), None),
            Named::Object { name, slug } => (name, slug),
        }
    }
}

#[derive(Deserialize)]
struct Conference {
    acronym: Option<String>,
    title: Option<String>,
    time_zone_name: Option<String>,
    #[serde(default)]
    tracks: Vec<Track>,
    #[serde(default)]
    rooms: Vec<Room>,
    #[serde(default)]
    days: Vec<Day>,
}

#[derive(Deserialize)]
struct Track {
    name: Option<String>,
    slug: Option<String>,
}

#[derive(Deserialize)]
struct Room {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Day {
    index: Option<u32>,
    date: Option<String>,
    day_start: Option<String>,
    day_end: Option<String>,
    /// Room name -> talks, in file order and with repeated names kept (a map would keep only the last list).
    #[serde(default, deserialize_with = "room_lists")]
    rooms: Vec<(String, Vec<Event>)>,
}

#[derive(Deserialize)]
struct Event {
    guid: Option<String>,
    #[serde(default, deserialize_with = "string_or_number")]
    id: Option<String>,
    date: Option<String>,
    start: Option<String>,
    duration: Option<String>,
    room: Option<Named>,
    slug: Option<String>,
    title: Option<String>,
    subtitle: Option<String>,
    track: Option<Named>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "abstract")]
    abstract_text: Option<String>,
    description: Option<String>,
    #[serde(default)]
    persons: Vec<Person>,
    /// The hub's name for persons, with a role each.
    #[serde(default)]
    participants: Vec<Person>,
}

#[derive(Deserialize)]
struct Person {
    #[serde(default, deserialize_with = "string_or_number")]
    id: Option<String>,
    guid: Option<String>,
    code: Option<String>,
    name: Option<String>,
    public_name: Option<String>,
    role: Option<String>,
}

fn room_lists<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(String, Vec<Event>)>, D::Error> {
    struct Lists;
    impl<'de> serde::de::Visitor<'de> for Lists {
        type Value = Vec<(String, Vec<Event>)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of room names to lists of talks")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = map.next_entry::<String, Vec<Event>>()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Lists)
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// Byte offset of the first array or object nested more than `max` deep, if any (strings skipped). serde_json bounds
/// what it builds, but skips unknown keys to any depth: a schedule that deep is damaged or hostile either way.
fn too_deep(text: &str, max: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, b) in text.bytes().enumerate() {
        match (in_string, b) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (_, b'"') => in_string = !in_string,
            (false, b'[' | b'{') => {
                depth += 1;
                if depth > max {
                    return Some(i);
                }
            }
            (false, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Reads a frab/pretalx JSON schedule into the raw model.
pub fn read(file: &str, text: &str, max_depth: usize) -> Result<RawSchedule, ScheduleError> {
    if let Some(offset) = too_deep(text, max_depth) {
        return Err(ScheduleError::at_offset(
            file,
            text.as_bytes(),
            offset,
            format!("arrays and objects are nested more than {max_depth} deep here; a schedule never is. The file is damaged or hostile"),
        ));
    }
    let root: Root = serde_json::from_str(text).map_err(|e| ScheduleError {
        file: file.to_string(),
        line: Some(super::to_u32(e.line())),
        column: Some(super::to_u32(e.column())),
        message: format!("this is not a readable schedule.json: {e}"),
    })?;
    let Some(schedule) = root.schedule else {
        let message = if root.talks.is_some() {
            "this is FOSDEM's speaker feed (talks with persons), not a schedule; pass it as the people file (--people)"
        } else {
            "no \"schedule\" object at the top: this is not a frab/pretalx schedule.json"
        };
        return Err(ScheduleError::new(file, message));
    };
    let conf = schedule.conference;
    let mut raw = RawSchedule {
        id: conf.acronym,
        title: conf.title,
        timezone: conf.time_zone_name,
        ..RawSchedule::default()
    };
    raw.tracks = conf
        .tracks
        .into_iter()
        .filter_map(|t| Some(RawTrack { name: t.name?, slug: t.slug, ..RawTrack::default() }))
        .collect();
    raw.rooms = conf.rooms.into_iter().filter_map(|r| r.name).collect();
    let mut known_rooms: std::collections::HashSet<String> = raw.rooms.iter().cloned().collect();
    for (i, day) in conf.days.into_iter().enumerate() {
        let date = day.date.as_deref().and_then(|d| NaiveDate::parse_from_str(d.get(..10).unwrap_or(d), "%Y-%m-%d").ok());
        let Some(date) = date else {
            raw.findings.push(Finding::error(
                file,
                format!("day {} has no valid date (YYYY-MM-DD); its talks are skipped", i + 1),
            ));
            continue;
        };
        let index = day.index.unwrap_or(super::to_u32(i + 1));
        raw.days.push(RawDay {
            index,
            date,
            start: day.day_start.as_deref().and_then(parse_instant),
            end: day.day_end.as_deref().and_then(parse_instant),
        });
        let mut listed = std::collections::HashSet::new();
        for (room_name, events) in day.rooms {
            if !listed.insert(room_name.clone()) {
                raw.findings.push(Finding::warning(
                    file,
                    format!("room {room_name:?} is listed twice on day {index}; the talks of both lists are read"),
                ));
            }
            if known_rooms.insert(room_name.clone()) {
                raw.rooms.push(room_name.clone());
            }
            for e in events {
                raw.events.push(event(file, e, Some(index), Some(&room_name), &mut raw.findings));
            }
        }
    }
    // The hub's flat list: each talk names its room; its day follows from its date.
    for e in schedule.events {
        raw.events.push(event(file, e, None, None, &mut raw.findings));
    }
    // Rooms map in JSON has no order; keep file order of talks by start within a day stable.
    raw.events.sort_by(|a, b| (a.day, start_key(a)).cmp(&(b.day, start_key(b))));
    Ok(raw)
}

fn start_key(e: &RawEvent) -> String {
    match &e.when {
        Some(When::Absolute(t)) => t.to_rfc3339(),
        Some(When::DayTime(t)) => t.to_string(),
        Some(When::Local(t)) => t.to_string(),
        None => String::new(),
    }
}

fn event(file: &str, e: Event, day: Option<u32>, room: Option<&str>, findings: &mut Vec<Finding>) -> RawEvent {
    let mut ev = RawEvent::new(e.title.unwrap_or_default());
    ev.guid = e.guid.filter(|g| !g.trim().is_empty());
    ev.id = e.id;
    ev.slug = e.slug;
    ev.subtitle = e.subtitle;
    ev.abstract_text = e.abstract_text.filter(|a| !a.trim().is_empty()).or(e.description);
    (ev.track, ev.track_slug) = e.track.map_or((None, None), Named::split);
    ev.room = e.room.and_then(|r| r.split().0).or_else(|| room.map(str::to_string));
    ev.day = day;
    ev.kind = e.kind;
    ev.when = e
        .date
        .as_deref()
        .and_then(parse_instant)
        .map(When::Absolute)
        .or_else(|| e.start.as_deref().and_then(parse_time).map(When::DayTime));
    let label = ev.guid.clone().or(ev.id.clone()).unwrap_or_else(|| ev.title.clone());
    if let Some(d) = e.duration {
        ev.duration = parse_duration(&d);
        if ev.duration.is_none() {
            findings.push(
                Finding::error(file, format!("unreadable duration {d:?}; expected H:MM, HH:MM or HH:MM:SS"))
                    .talk(&label),
            );
            ev.duration = Some(chrono::Duration::zero());
        }
    }
    ev.persons = e
        .persons
        .into_iter()
        .chain(e.participants)
        .map(|p| RawPerson {
            id: p.id.or(p.guid).or(p.code),
            name: p.public_name.or(p.name).unwrap_or_default(),
            role: p.role.as_deref().and_then(Role::parse),
            ..RawPerson::default()
        })
        .collect();
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = read("s.json", "{\n  \"schedule\": {\n    \"conference\": [,]\n}}", 64).unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.column.is_some());
    }

    #[test]
    fn speaker_feed_is_pointed_to_people() {
        let err = read("f.json", r#"{"talks": [], "tracks": []}"#, 64).unwrap_err();
        assert!(err.message.contains("--people"), "{err}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = read("d.json", &deep, 64).unwrap_err();
        assert!(err.message.contains("nested more than 64 deep") && err.column == Some(65), "{err}");
    }

    #[test]
    fn the_hub_schedule2_maps_rooms_tracks_participants_and_guids() {
        let text = include_str!("../../tests/fixtures/hub-schedule2.json");
        let parsed = crate::schedule::read("hub.json", text.as_bytes(), &crate::schedule::ReadOptions::default()).unwrap();
        let c = &parsed.conference;
        assert_eq!((c.id.as_str(), c.timezone.name(), c.days.len()), ("hub-camp", "Europe/Berlin", 2));
        let keys: Vec<&str> = c.talks.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["a1b2c3d4-0000-4000-8000-000000000101", "a1b2c3d4-0000-4000-8000-000000000102", "a1b2c3d4-0000-4000-8000-000000000103"]);
        let (solder, late, closing) = (&c.talks[0], &c.talks[1], &c.talks[2]);
        assert_eq!((solder.id.as_deref(), solder.slug.as_deref()), (Some("101"), Some("hub-camp-101-soldering-for-everyone")));
        assert_eq!(c.venue(solder.room.as_deref().unwrap()).unwrap().name, "Saal 1");
        assert_eq!(c.venue(late.room.as_deref().unwrap()).unwrap().name, "Saal Zuse");
        assert_eq!(solder.track.as_deref(), Some("hardware-making"), "the track object's slug is the key");
        assert_eq!(c.track("hardware-making").unwrap().name, "Hardware & Making");
        assert_eq!(solder.start.to_rfc3339(), "2025-12-27T11:00:00+01:00");
        assert_eq!(solder.duration_minutes(), 40);
        // After midnight, before the day's end: still the first day.
        assert_eq!((late.day, late.start.to_rfc3339().as_str()), (1, "2025-12-28T01:00:00+01:00"));
        assert_eq!(closing.day, 2);
        // Participants: by guid, with their roles; Ada speaks twice and is one person.
        let ada = "p0000000-0000-4000-8000-000000000001";
        assert_eq!(solder.people_with(Role::Speaker).collect::<Vec<_>>(), [ada]);
        assert_eq!(solder.people_with(Role::Host).collect::<Vec<_>>(), ["p0000000-0000-4000-8000-000000000002"]);
        assert!(late.people_with(Role::Speaker).any(|p| p == ada));
        assert_eq!(c.people.len(), 3);
        assert_eq!(c.person(ada).unwrap().name, "Ada L.");
        assert_eq!(parsed.errors().count(), 0, "{:?}", parsed.findings);
    }

    #[test]
    fn a_room_listed_twice_in_a_day_keeps_the_talks_of_both_lists() {
        let text = r#"{"schedule": {"conference": {"title": "T", "time_zone_name": "UTC", "days": [{"index": 1, "date": "2026-03-14",
            "rooms": {"A": [{"guid": "g1", "title": "One", "start": "10:00", "duration": "0:30"}],
                      "A": [{"guid": "g2", "title": "Two", "start": "11:00", "duration": "0:30"}]}}]}}}"#;
        let raw = read("d.json", text, 64).unwrap();
        let guids: Vec<_> = raw.events.iter().map(|e| e.guid.as_deref().unwrap_or_default()).collect();
        assert_eq!(guids, ["g1", "g2"]);
        assert!(raw.findings.iter().any(|f| f.message.contains("room \"A\" is listed twice on day 1")), "{:?}", raw.findings);
    }
}
