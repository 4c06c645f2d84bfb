//! Reader for Pentabarf / frab / pretalx `schedule.xml`.
//!
//! A streaming reader over quick-xml events that keeps a stack of element tags and reads only direct children
//! (`event/title`, never "the first `<title>` below": CCC files nest `<title>` in links). Unknown elements are
//! skipped. DTDs with entity declarations are refused (no entity expansion, no external entities), nesting is bounded.

use chrono::{Duration, NaiveDate};
use quick_xml::Reader;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};

use super::raw::{RawDay, RawEvent, RawPerson, RawSchedule, RawTrack, When};
use super::raw::{parse_duration, parse_instant, parse_time};
use super::{Finding, ReadOptions, ScheduleError};

#[path = "pentabarf_position.rs"]
mod position;
use position::{Lines, xml_error};
#[cfg(test)]
use position::count_newlines;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Schedule,
    Conference,
    Tracks,
    Track,
    Day,
    Room,
    Event,
    Persons,
    Person,
    Other,
}

fn tag_of(name: &str) -> Tag {
    match name {
        "schedule" => Tag::Schedule,
        "conference" => Tag::Conference,
        "tracks" => Tag::Tracks,
        "track" => Tag::Track,
        "day" => Tag::Day,
        "room" => Tag::Room,
        "event" => Tag::Event,
        "persons" => Tag::Persons,
        "person" => Tag::Person,
        _ => Tag::Other,
    }
}

/// What the text being captured will become.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    Conference(ConfField),
    /// `<track>` in `<tracks>` or `<conference>`: its text is the name.
    TrackDecl,
    Event(EventField),
    EventPerson,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ConfField {
    Acronym,
    Title,
    TimeZone,
    DayChange,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum EventField {
    Date,
    Start,
    Duration,
    Room,
    Slug,
    Title,
    Subtitle,
    Track,
    Type,
    Abstract,
    Description,
    Guid,
    QaStart,
}

fn event_field(name: &str) -> Option<EventField> {
    Some(match name {
        "date" => EventField::Date,
        "start" => EventField::Start,
        "duration" => EventField::Duration,
        "room" => EventField::Room,
        "slug" => EventField::Slug,
        "title" => EventField::Title,
        "subtitle" => EventField::Subtitle,
        "track" => EventField::Track,
        "type" => EventField::Type,
        "abstract" => EventField::Abstract,
        "description" => EventField::Description,
        "guid" => EventField::Guid,
        "qa_start" | "qa-start" => EventField::QaStart,
        _ => return None,
    })
}

struct Capture {
    field: Field,
    /// Stack depth of the element whose text this is.
    depth: usize,
    /// Deep capture also takes the text of nested elements (abstracts written as inline HTML).
    deep: bool,
    text: String,
    id: Option<String>,
}

/// Reads a Pentabarf/frab XML schedule into the raw model.
pub fn read(file: &str, text: &str, opts: &ReadOptions) -> Result<RawSchedule, ScheduleError> {
    let mut reader = Reader::from_str(text);
    {
        let cfg = reader.config_mut();
        cfg.expand_empty_elements = true;
        cfg.check_end_names = true;
    }
    let bytes = text.as_bytes();
    let mut lines = Lines { text: bytes, offset: 0, line: 1 };
    let mut raw = RawSchedule::default();
    let mut stack: Vec<Tag> = Vec::with_capacity(16);
    let mut capture: Option<Capture> = None;
    let mut event: Option<RawEvent> = None;
    let mut day: Option<u32> = None;
    let mut track_decl: Option<RawTrack> = None;
    let mut seen_root = false;

    loop {
        let pos = reader.buffer_position() as usize;
        let ev = match reader.read_event() {
            Ok(ev) => ev,
            Err(e) => return Err(xml_error(file, bytes, reader.error_position() as usize, &e.to_string())),
        };
        if let Event::Start(e) | Event::Empty(e) = &ev
            && let Some(Err(err)) = e.attributes().find(|a| matches!(a, Err(AttrError::Duplicated(..))))
        {
            return Err(ScheduleError::at_offset(
                file,
                bytes,
                pos,
                format!("{err}: each attribute may appear once in an element; the file is damaged"),
            ));
        }
        match ev {
            Event::Start(e) => {
                let name = e.local_name();
                let name: &str = name.as_ref();
                let tag = tag_of(name);
                let parent = stack.last().copied();
                if stack.len() >= opts.max_depth {
                    return Err(ScheduleError::at_offset(
                        file,
                        bytes,
                        pos,
                        format!(
                            "elements are nested more than {} deep; a schedule never is. The file is damaged or \
                             hostile",
                            opts.max_depth
                        ),
                    ));
                }
                if stack.is_empty() {
                    if seen_root {
                        return Err(ScheduleError::at_offset(file, bytes, pos, "a second root element"));
                    }
                    seen_root = true;
                    if tag != Tag::Schedule {
                        return Err(ScheduleError::at_offset(
                            file,
                            bytes,
                            pos,
                            format!(
                                "the root element is <{name}>, not <schedule>: this is not a Pentabarf/frab schedule"
                            ),
                        ));
                    }
                }
                let depth = stack.len() + 1;
                match (parent, tag) {
                    (Some(Tag::Schedule), Tag::Day) => {
                        let d = parse_day(file, &e, lines.line_at(pos), &mut raw.findings);
                        day = d.as_ref().map(|d| d.index);
                        if let Some(d) = d {
                            raw.days.push(d);
                        }
                    }
                    (Some(Tag::Day), Tag::Room) => {
                        if let Some(n) = attr(&e, "name") {
                            raw.rooms.push(n);
                        }
                    }
                    (Some(Tag::Room) | Some(Tag::Day), Tag::Event) => {
                        let mut ev = RawEvent::new(String::new());
                        ev.guid = attr(&e, "guid");
                        ev.id = attr(&e, "id");
                        ev.day = day;
                        ev.line = Some(lines.line_at(pos));
                        event = Some(ev);
                    }
                    (Some(Tag::Event), _) => {
                        if let Some(field) = event_field(name) {
                            if field == EventField::Track
                                && let Some(ev) = event.as_mut()
                            {
                                ev.track_slug = attr(&e, "slug");
                            }
                            let deep = matches!(field, EventField::Abstract | EventField::Description);
                            capture = Some(Capture {
                                field: Field::Event(field),
                                depth,
                                deep,
                                text: String::new(),
                                id: None,
                            });
                        }
                    }
                    (Some(Tag::Persons), Tag::Person) if stack.len() >= 2 && stack[stack.len() - 2] == Tag::Event => {
                        let id = attr(&e, "id").or_else(|| attr(&e, "guid")).or_else(|| attr(&e, "code"));
                        capture =
                            Some(Capture { field: Field::EventPerson, depth, deep: false, text: String::new(), id });
                    }
                    (Some(Tag::Tracks), Tag::Track) | (Some(Tag::Conference), Tag::Track) => {
                        track_decl = Some(RawTrack {
                            name: attr(&e, "name").unwrap_or_default(),
                            slug: attr(&e, "slug"),
                            online_qa: attr(&e, "online_qa").map(|v| v.trim() == "true"),
                            ..RawTrack::default()
                        });
                        capture = Some(Capture { field: Field::TrackDecl, depth, deep: false, text: String::new(), id: None });
                    }
                    (Some(Tag::Conference), _) => {
                        let field = match name {
                            "acronym" => Some(ConfField::Acronym),
                            "title" => Some(ConfField::Title),
                            "time_zone_name" => Some(ConfField::TimeZone),
                            "day_change" => Some(ConfField::DayChange),
                            _ => None,
                        };
                        if let Some(f) = field {
                            capture =
                                Some(Capture { field: Field::Conference(f), depth, deep: false, text: String::new(), id: None });
                        }
                    }
                    _ => {}
                }
                stack.push(tag);
            }
            Event::Text(t) => {
                if let Some(c) = capture.as_mut()
                    && (c.depth == stack.len() || (c.deep && stack.len() > c.depth))
                {
                    c.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(c) = capture.as_mut()
                    && (c.depth == stack.len() || (c.deep && stack.len() > c.depth))
                {
                    c.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let wanted = capture.as_ref().is_some_and(|c| c.depth == stack.len() || (c.deep && stack.len() > c.depth));
                let ch = r.resolve_char_ref().map_err(|e| {
                    ScheduleError::at_offset(file, bytes, pos, format!("bad character reference: {e}"))
                })?;
                let name = r.into_inner();
                let resolved = match ch {
                    Some(_) => None,
                    None => match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(s) => Some(s),
                        None => {
                            return Err(ScheduleError::at_offset(
                                file,
                                bytes,
                                pos,
                                format!(
                                    "undefined entity &{name}; (only &amp; &lt; &gt; &quot; &apos; and character \
                                     references are accepted)"
                                ),
                            ));
                        }
                    },
                };
                if wanted && let Some(c) = capture.as_mut() {
                    match (ch, resolved) {
                        (Some(ch), _) => c.text.push(ch),
                        (None, Some(s)) => c.text.push_str(s),
                        (None, None) => {}
                    }
                }
            }
            Event::End(_) => {
                let depth = stack.len();
                let tag = stack.pop();
                if let Some(c) = capture.take_if(|c| c.depth == depth) {
                    finish_capture(file, c, &mut raw, event.as_mut(), track_decl.as_mut());
                }
                match tag {
                    Some(Tag::Event) if stack.last() != Some(&Tag::Event) => {
                        if let Some(ev) = event.take() {
                            raw.events.push(finish_event(file, ev, &mut raw.findings));
                        }
                    }
                    Some(Tag::Track) => {
                        if let Some(t) = track_decl.take() {
                            raw.tracks.push(t);
                        }
                    }
                    Some(Tag::Day) if stack.last() == Some(&Tag::Schedule) => day = None,
                    _ => {}
                }
            }
            Event::DocType(d) => {
                let content = d.into_inner();
                if content.contains("<!ENTITY") || content.contains("SYSTEM") || content.contains("PUBLIC") {
                    return Err(ScheduleError::at_offset(
                        file,
                        bytes,
                        pos,
                        "the file declares entities or an external DTD; Stagehand refuses them (entity expansion and \
                         external entities are a known attack). Remove the <!DOCTYPE ...> block",
                    ));
                }
            }
            Event::Eof => break,
            Event::Empty(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if !seen_root {
        return Err(ScheduleError::new(file, "no <schedule> element: the file is empty or not a schedule"));
    }
    if !stack.is_empty() {
        return Err(ScheduleError::at_offset(
            file,
            bytes,
            bytes.len(),
            "the file ends inside an element: it is truncated. Download or export it again",
        ));
    }
    Ok(raw)
}

fn attr(e: &BytesStart<'_>, key: &str) -> Option<String> {
    e.attributes().flatten().find(|a| a.key.local_name().as_ref() == key).and_then(|a| {
        a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    })
}

fn parse_day(file: &str, e: &BytesStart<'_>, line: u32, findings: &mut Vec<Finding>) -> Option<RawDay> {
    let index = attr(e, "index").and_then(|i| i.parse::<u32>().ok());
    let date = attr(e, "date").and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
    match (index, date) {
        (Some(index), Some(date)) => Some(RawDay {
            index,
            date,
            start: attr(e, "start").and_then(|s| parse_instant(&s)),
            end: attr(e, "end").and_then(|s| parse_instant(&s)),
        }),
        _ => {
            findings.push(
                Finding::error(file, "a <day> without a valid index and date (YYYY-MM-DD); its talks are skipped")
                    .at(Some(line)),
            );
            None
        }
    }
}

fn finish_capture(
    file: &str,
    c: Capture,
    raw: &mut RawSchedule,
    event: Option<&mut RawEvent>,
    track: Option<&mut RawTrack>,
) {
    let text = c.text;
    match c.field {
        Field::Conference(f) => {
            let value = text.trim().to_string();
            match f {
                ConfField::Acronym => raw.id = Some(value).filter(|v| !v.is_empty()),
                ConfField::Title => raw.title = Some(value),
                ConfField::TimeZone => raw.timezone = Some(value).filter(|v| !v.is_empty()),
                ConfField::DayChange => {
                    raw.day_change = parse_time(&value);
                    if raw.day_change.is_none() && !value.is_empty() {
                        raw.findings.push(Finding::warning(file, format!("unreadable <day_change> {value:?}; ignored")));
                    }
                }
            }
        }
        Field::TrackDecl => {
            if let Some(t) = track
                && t.name.is_empty()
            {
                t.name = text.trim().to_string();
            }
        }
        Field::EventPerson => {
            if let Some(ev) = event {
                ev.persons.push(RawPerson { id: c.id, name: text.trim().to_string(), ..RawPerson::default() });
            }
        }
        Field::Event(f) => {
            let Some(ev) = event else { return };
            let text = if text.len() == text.trim().len() { text } else { text.trim().to_string() };
            let value = Some(text).filter(|v| !v.is_empty());
            match f {
                EventField::Date => {
                    if let Some(v) = value {
                        ev.when = parse_instant(&v).map(When::Absolute).or(ev.when.take());
                    }
                }
                EventField::Start => {
                    if let Some(v) = value {
                        // Keep an absolute <date> if it came first.
                        if !matches!(ev.when, Some(When::Absolute(_))) {
                            ev.when = parse_time(&v).map(When::DayTime).or_else(|| parse_instant(&v).map(When::Absolute));
                            if ev.when.is_none() {
                                raw.findings.push(
                                    Finding::error(file, format!("unreadable <start> {v:?}; expected HH:MM"))
                                        .at(ev.line),
                                );
                            }
                        }
                    }
                }
                EventField::Duration => {
                    if let Some(v) = value {
                        ev.duration = parse_duration(&v);
                        if ev.duration.is_none() {
                            raw.findings.push(
                                Finding::error(
                                    file,
                                    format!("unreadable <duration> {v:?}; expected H:MM, HH:MM or HH:MM:SS"),
                                )
                                .at(ev.line),
                            );
                            ev.duration = Some(Duration::zero());
                        }
                    }
                }
                EventField::Room => ev.room = value,
                EventField::Slug => ev.slug = value,
                EventField::Title => ev.title = value.unwrap_or_default(),
                EventField::Subtitle => ev.subtitle = value,
                EventField::Track => ev.track = value,
                EventField::Type => ev.kind = value,
                EventField::Abstract => ev.abstract_text = value,
                EventField::Description => {
                    if ev.abstract_text.is_none() {
                        ev.abstract_text = value;
                    }
                }
                EventField::Guid => {
                    if ev.guid.is_none() {
                        ev.guid = value;
                    }
                }
                EventField::QaStart => {
                    if let Some(v) = value {
                        ev.qa_start = parse_instant(&v).map(When::Absolute).or_else(|| parse_time(&v).map(When::DayTime));
                    }
                }
            }
        }
    }
}

fn finish_event(file: &str, mut ev: RawEvent, findings: &mut Vec<Finding>) -> RawEvent {
    if super::model::clean_text(&ev.title).is_empty() {
        findings.push(Finding::warning(file, "an event without a title").at(ev.line));
        ev.title = ev.slug.clone().or(ev.id.clone()).unwrap_or_default();
    }
    ev
}

#[cfg(test)]
#[path = "pentabarf_tests.rs"]
mod tests;
