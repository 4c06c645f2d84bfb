//! Reader for Stagehand's own YAML schedule, written by a person for a small conference.
//! See `schedules/example.yaml` for a complete, commented example. Unknown keys are errors (a typo must not silently
//! drop a talk); people are referenced by key.

use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime, NaiveTime};
use serde::Deserialize;

use super::raw::{RawEvent, RawPerson, RawSchedule, RawTrack, When};
use super::raw::{parse_duration, parse_instant};
use super::model::TrackKind;
use super::{Finding, ScheduleError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    conference: ConferenceDoc,
    #[serde(default)]
    tracks: Vec<TrackDoc>,
    #[serde(default)]
    rooms: Vec<String>,
    #[serde(default)]
    people: Vec<PersonDoc>,
    #[serde(default)]
    talks: Vec<TalkDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConferenceDoc {
    id: Option<String>,
    title: String,
    timezone: Option<String>,
    /// Wall-clock times before this belong to the previous conference day (default: midnight).
    day_change: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackDoc {
    key: Option<String>,
    name: String,
    kind: Option<TrackKind>,
    online_qa: Option<bool>,
    #[serde(default)]
    coordinators: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonDoc {
    key: String,
    name: String,
    matrix: Option<OneOrMany>,
    email: Option<OneOrMany>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DurationDoc {
    Minutes(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TalkDoc {
    key: String,
    title: String,
    subtitle: Option<String>,
    track: Option<String>,
    room: Option<String>,
    start: String,
    duration: Option<DurationDoc>,
    end: Option<String>,
    qa_start: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "abstract")]
    abstract_text: Option<String>,
    #[serde(default)]
    speakers: Vec<String>,
    #[serde(default)]
    hosts: Vec<String>,
}

/// `30`, `30m`, `1h`, `1h30m`, `1:30`, `01:30:00`.
pub fn parse_human_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(d) = parse_duration(s) {
        return Some(d);
    }
    if let Ok(m) = s.parse::<i64>() {
        return super::raw::bounded_seconds(m.checked_mul(60)?);
    }
    let mut total = 0i64;
    let mut num = String::new();
    for c in s.chars() {
        match c {
            '0'..='9' => num.push(c),
            'h' => total = total.checked_add(num.parse::<i64>().ok()?.checked_mul(60)?)?,
            'm' => total = total.checked_add(num.parse::<i64>().ok()?)?,
            ' ' => continue,
            _ => return None,
        }
        if !c.is_ascii_digit() {
            num.clear();
        }
    }
    if !num.is_empty() || s.is_empty() {
        return None;
    }
    super::raw::bounded_seconds(total.checked_mul(60)?)
}

fn parse_when(s: &str) -> Option<When> {
    if let Some(t) = parse_instant(s) {
        return Some(When::Absolute(t));
    }
    let s = s.trim();
    ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(When::Local)
}

/// 1-based line of the first line that, after its indentation, starts with `KEY:` (lexical: the YAML library keeps
/// no positions of values).
fn key_line(text: &str, key: &str) -> Option<u32> {
    let prefix = format!("{key}:");
    text.lines().position(|l| l.trim_start().starts_with(&prefix)).map(|i| super::to_u32(i + 1))
}

/// Each `key:` of an item of the top-level `talks:` list with its line, in order: block items (`- key: a`) and flow
/// items (`- {key: a, ...}`). Lexical, like [`key_line`]; a line is used only where the key read there is the talk's.
fn talk_key_lines(text: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        if !line.trim().is_empty() && !line.starts_with([' ', '\t', '-', '#']) {
            inside = line.starts_with("talks:");
            continue;
        }
        let item = line.trim_start().trim_start_matches('-').trim_start().trim_start_matches('{').trim_start();
        if let Some(value) = item.strip_prefix("key:").filter(|_| inside) {
            let value = value.split([',', '}', '#']).next().unwrap_or_default().trim().trim_matches(['"', '\'']);
            out.push((value.to_string(), super::to_u32(i + 1)));
        }
    }
    out
}

/// Most keys and values a YAML file may hold. The YAML library keeps every event of a document in memory, about
/// 180 bytes each (20 MB of `a,a,a,...` took 1.8 GB); a hand-written schedule of 20,000 talks holds about 300,000.
pub(crate) const MAX_VALUES: usize = 1_000_000;

/// What [`shape`] found wrong, and where (byte offset).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A flow collection nested deeper than allowed.
    TooDeep(usize),
    /// More keys and values than [`MAX_VALUES`].
    TooMany(usize),
}

/// The first flow collection (`[` or `{`) nested more than `max` deep, or the value past [`MAX_VALUES`], if any.
/// The YAML library's scanner takes time quadratic in flow nesting (200,000 levels ran for minutes before any check
/// of ours) and memory far beyond the text's size, so this runs first. Lexical and linear: counts brackets that open
/// a collection where a value starts, and the scalars that start there; skips quoted scalars, comments and block
/// scalars (`|`, `>`), so brackets in titles and abstracts do not count.
pub(crate) fn shape(text: &str, max: usize) -> Option<Shape> {
    let bytes = text.as_bytes();
    let (mut depth, mut i, mut values) = (0usize, 0usize, 0usize);
    // Whether a value may start here (line start, after "- ", ": ", ",", "[", "{", "? "), and the current line's indent.
    let (mut value_start, mut indent, mut line_start) = (true, 0usize, true);
    // Block scalar: lines indented more than this belong to it.
    let mut block: Option<usize> = None;
    while i < bytes.len() {
        let c = bytes[i];
        if line_start {
            let spaces = bytes[i..].iter().take_while(|&&b| b == b' ').count();
            let blank = matches!(bytes.get(i + spaces), None | Some(b'\n' | b'\r'));
            if let Some(parent) = block {
                if blank || spaces > parent {
                    i = bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| i + p + 1);
                    continue;
                }
                block = None;
            }
            (indent, line_start) = (spaces, false);
            i += spaces;
            continue;
        }
        match c {
            b'\n' => (line_start, value_start) = (true, true),
            b'#' if i == 0 || bytes[i - 1].is_ascii_whitespace() => {
                i = bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| i + p);
                continue;
            }
            b'\'' | b'"' if value_start => {
                values += 1;
                if values > MAX_VALUES {
                    return Some(Shape::TooMany(i));
                }
                // A quoted scalar, possibly over several lines.
                let mut j = i + 1;
                while j < bytes.len() {
                    match bytes[j] {
                        b'\\' if c == b'"' => j += 1,
                        b'\'' if c == b'\'' && bytes.get(j + 1) == Some(&b'\'') => j += 1,
                        q if q == c => break,
                        _ => {}
                    }
                    j += 1;
                }
                (i, value_start) = (j + 1, false);
                continue;
            }
            b'[' | b'{' if value_start => {
                depth += 1;
                if depth > max {
                    return Some(Shape::TooDeep(i));
                }
            }
            b']' | b'}' if depth > 0 => depth -= 1,
            b'|' | b'>' if value_start && depth == 0 => block = Some(indent),
            b',' => value_start = true,
            b'-' | b':' | b'?' if bytes.get(i + 1).is_none_or(|b| b.is_ascii_whitespace()) => value_start = true,
            b' ' | b'\t' | b'\r' => {}
            _ if value_start => {
                value_start = false;
                values += 1;
                if values > MAX_VALUES {
                    return Some(Shape::TooMany(i));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// [`shape`] as the error a reader returns.
pub(crate) fn check_shape(file: &str, text: &str, max: usize) -> Result<(), ScheduleError> {
    let (offset, message) = match shape(text, max) {
        None => return Ok(()),
        Some(Shape::TooDeep(at)) => {
            (at, format!("lists and maps are nested more than {max} deep here; a schedule never is. The file is damaged or hostile"))
        }
        Some(Shape::TooMany(at)) => (
            at,
            format!(
                "more than {MAX_VALUES} keys and values by here; a hand-written schedule never holds that many, and \
                 reading them would take gigabytes. Export such a schedule as Pentabarf XML or frab JSON"
            ),
        ),
    };
    Err(ScheduleError::at_offset(file, text.as_bytes(), offset, message))
}

/// Reads our YAML schedule into the raw model.
pub fn read(file: &str, text: &str, max_depth: usize) -> Result<RawSchedule, ScheduleError> {
    check_shape(file, text, max_depth)?;
    let doc: Doc = yaml_serde::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((None, None), |l| {
            (Some(super::to_u32(l.line())), Some(super::to_u32(l.column())))
        });
        ScheduleError {
            file: file.to_string(),
            line,
            column,
            message: if e.to_string().contains("repetition limit exceeded") {
                "aliases (*name) in this file expand to more than a schedule ever holds (an alias bomb?); write the \
                 values out instead of repeating anchors"
                    .to_string()
            } else {
                format!("this is not a readable Stagehand YAML schedule: {e} (see schedules/example.yaml)")
            },
        }
    })?;
    let mut raw = RawSchedule {
        id: doc.conference.id,
        title: Some(doc.conference.title),
        timezone: doc.conference.timezone,
        rooms: doc.rooms,
        ..RawSchedule::default()
    };
    if let Some(dc) = &doc.conference.day_change {
        raw.day_change = NaiveTime::parse_from_str(dc, "%H:%M").ok();
        if raw.day_change.is_none() {
            raw.findings.push(
                Finding::error(
                    file,
                    format!("conference.day_change {dc:?} is not a time of day; write HH:MM, for example \"04:00\""),
                )
                .at(key_line(text, "day_change")),
            );
        }
    }

    let mut people: HashMap<String, RawPerson> = HashMap::new();
    for p in doc.people {
        let person = RawPerson {
            id: Some(p.key.clone()),
            name: p.name,
            role: None,
            emails: p.email.map(OneOrMany::into_vec).unwrap_or_default(),
            matrix_ids: p.matrix.map(OneOrMany::into_vec).unwrap_or_default(),
        };
        if people.insert(p.key.clone(), person).is_some() {
            raw.findings.push(Finding::error(file, format!("person key {:?} is used twice under people:", p.key)));
        }
    }
    let mut referenced: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut person_ref = |key: &str, role: super::model::Role, findings: &mut Vec<Finding>, talk: Option<(&str, Option<u32>)>| {
        referenced.insert(key.to_string());
        match people.get(key) {
            Some(p) => Some(RawPerson { role: Some(role), ..p.clone() }),
            None => {
                let mut f = Finding::error(file, format!("unknown person {key:?}; add them under people:"));
                if let Some((t, line)) = talk {
                    f = f.talk(t).at(line);
                }
                findings.push(f);
                None
            }
        }
    };

    // Track key or name -> (key, name), the first declaration of each winning.
    let mut track_names: HashMap<String, (Option<String>, String)> = HashMap::new();
    for t in doc.tracks {
        let coordinators = t
            .coordinators
            .iter()
            .filter_map(|c| person_ref(c, super::model::Role::Coordinator, &mut raw.findings, None))
            .collect();
        for k in [t.key.clone(), Some(t.name.clone())].into_iter().flatten() {
            track_names.entry(k).or_insert_with(|| (t.key.clone(), t.name.clone()));
        }
        raw.tracks.push(RawTrack { name: t.name, slug: t.key, kind: t.kind, online_qa: t.online_qa, coordinators });
    }

    let lines = talk_key_lines(text);
    for (i, t) in doc.talks.into_iter().enumerate() {
        let line = lines.get(i).filter(|(k, _)| *k == t.key).map(|(_, l)| *l);
        let mut ev = RawEvent::new(t.title);
        ev.line = line;
        ev.key = Some(t.key.clone());
        ev.subtitle = t.subtitle;
        ev.abstract_text = t.abstract_text;
        ev.room = t.room;
        ev.kind = t.kind;
        if let Some(track) = &t.track {
            match track_names.get(track.as_str()) {
                Some((k, n)) => {
                    ev.track = Some(n.clone());
                    ev.track_slug = k.clone();
                }
                None => {
                    raw.findings.push(
                        Finding::error(file, format!("unknown track {track:?}; declare it under tracks:")).talk(&t.key).at(line),
                    );
                    ev.track = Some(track.clone());
                }
            }
        }
        ev.when = parse_when(&t.start);
        if ev.when.is_none() {
            raw.findings.push(
                Finding::error(
                    file,
                    format!("start {:?} is not a date and time (write 2026-03-14 10:00, or RFC 3339)", t.start),
                )
                .talk(&t.key).at(line),
            );
        }
        ev.duration = match (&t.duration, &t.end) {
            (Some(DurationDoc::Minutes(m)), _) => {
                let d = m.checked_mul(60).and_then(super::raw::bounded_seconds);
                if d.is_none() {
                    raw.findings.push(
                        Finding::error(file, format!("duration {m} minutes is negative or longer than a week")).talk(&t.key).at(line),
                    );
                }
                d
            }
            (Some(DurationDoc::Text(s)), _) => {
                let d = parse_human_duration(s);
                if d.is_none() {
                    raw.findings.push(
                        Finding::error(file, format!("duration {s:?} is not readable (write 30m, 1h30m or 0:30)"))
                            .talk(&t.key).at(line),
                    );
                }
                d
            }
            (None, Some(end)) => match (parse_when(end), &ev.when) {
                (Some(When::Local(e)), Some(When::Local(s))) => Some(e - *s),
                (Some(When::Absolute(e)), Some(When::Absolute(s))) => Some(e - *s),
                _ => {
                    raw.findings.push(
                        Finding::error(file, format!("end {end:?} is not readable in the same form as start"))
                            .talk(&t.key).at(line),
                    );
                    None
                }
            },
            (None, None) => {
                raw.findings.push(Finding::error(file, "the talk has neither duration nor end").talk(&t.key).at(line));
                None
            }
        };
        ev.qa_start = t.qa_start.as_deref().and_then(parse_when);
        if t.qa_start.is_some() && ev.qa_start.is_none() {
            raw.findings.push(Finding::error(file, "qa_start is not a date and time").talk(&t.key).at(line));
        }
        for s in &t.speakers {
            ev.persons.extend(person_ref(s, super::model::Role::Speaker, &mut raw.findings, Some((&t.key, line))));
        }
        for h in &t.hosts {
            ev.persons.extend(person_ref(h, super::model::Role::Host, &mut raw.findings, Some((&t.key, line))));
        }
        raw.events.push(ev);
    }
    let mut unused: Vec<&String> = people.keys().filter(|k| !referenced.contains(*k)).collect();
    unused.sort();
    for k in unused {
        raw.findings.push(Finding::warning(file, format!("person {k:?} is in no talk and no track")));
    }
    Ok(raw)
}

#[cfg(test)]
#[path = "yaml_tests.rs"]
mod tests;
