//! The schedule model: one faithful picture of a conference, whatever format it came from.
//!
//! Owns the types every reader produces and every later stage (plan, timeline, diff) consumes.
//! Pure data: no I/O, no clock, no Matrix types.

use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use serde::Serialize;

/// Which reader produced a conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Pentabarf / frab / pretalx `schedule.xml`.
    PentabarfXml,
    /// pretalx / frab `schedule.json` (the c3voc schema).
    FrabJson,
    /// Stagehand's own hand-written YAML.
    Yaml,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::PentabarfXml => "pentabarf-xml",
            Format::FrabJson => "frab-json",
            Format::Yaml => "yaml",
        }
    }
}

/// A whole conference.
#[derive(Debug, Clone, Serialize)]
pub struct Conference {
    /// Short identifier (acronym), used in aliases and locators.
    pub id: String,
    pub title: String,
    #[serde(serialize_with = "ser_tz")]
    pub timezone: Tz,
    pub days: Vec<Day>,
    pub tracks: Vec<Track>,
    pub rooms: Vec<Venue>,
    pub talks: Vec<Talk>,
    pub people: Vec<Person>,
}

fn ser_tz<S: serde::Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

/// A conference day. Events after midnight belong to the day they are listed under.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Day {
    pub index: u32,
    pub date: NaiveDate,
    /// When the day begins and ends, if the file says so (CCC, pretalx); otherwise derived from its talks.
    pub start: Option<DateTime<Tz>>,
    pub end: Option<DateTime<Tz>>,
}

/// What kind of track this is; decides which subspace it lands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    MainTrack,
    Devroom,
    Stand,
    Other,
}

impl TrackKind {
    pub const ALL: [TrackKind; 4] =
        [TrackKind::MainTrack, TrackKind::Devroom, TrackKind::Stand, TrackKind::Other];

    pub fn slug(self) -> &'static str {
        match self {
            TrackKind::MainTrack => "main-tracks",
            TrackKind::Devroom => "devrooms",
            TrackKind::Stand => "stands",
            TrackKind::Other => "other",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            TrackKind::MainTrack => "Main tracks",
            TrackKind::Devroom => "Devrooms",
            TrackKind::Stand => "Stands",
            TrackKind::Other => "Other tracks",
        }
    }
}

/// A track (devroom, main track, stand, ...).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Track {
    /// Stable key: the slug from the file, else a slug of the name.
    pub key: String,
    pub name: String,
    pub kind: TrackKind,
    /// The event `type` the file gave most talks of this track (`maintrack`, `devroom`, `stand`, ...).
    pub source_type: Option<String>,
    /// Whether the track does online Q&A, when the file says.
    pub online_qa: Option<bool>,
    /// Person keys of the track's coordinators.
    pub coordinators: Vec<String>,
}

/// A physical (or virtual) room of the venue.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Venue {
    pub key: String,
    pub name: String,
}

/// Role of a person in a talk or track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Speaker,
    Host,
    Coordinator,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "speaker" | "presenter" | "moderator" => Some(Role::Speaker),
            "host" => Some(Role::Host),
            "coordinator" | "manager" | "devroom manager" => Some(Role::Coordinator),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TalkPerson {
    pub person: String,
    pub role: Role,
}

/// One talk (event).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Talk {
    /// Stable identity: guid, else id, else slug (see `identity`).
    pub key: String,
    pub guid: Option<String>,
    pub id: Option<String>,
    pub slug: Option<String>,
    pub title: String,
    pub subtitle: Option<String>,
    pub abstract_text: Option<String>,
    /// Track key, if the talk has a track.
    pub track: Option<String>,
    /// Venue key.
    pub room: Option<String>,
    /// Index of the conference day the talk is listed under.
    pub day: u32,
    pub start: DateTime<Tz>,
    pub end: DateTime<Tz>,
    /// For pre-recorded talks: when the live Q&A begins.
    pub qa_start: Option<DateTime<Tz>>,
    /// The event `type` from the file.
    pub kind: Option<String>,
    pub people: Vec<TalkPerson>,
    /// Line in the source file, where the reader knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

impl Talk {
    pub fn duration_minutes(&self) -> i64 {
        (self.end - self.start).num_minutes()
    }

    /// Person keys with the given role, in file order.
    pub fn people_with(&self, role: Role) -> impl Iterator<Item = &str> {
        self.people.iter().filter(move |p| p.role == role).map(|p| p.person.as_str())
    }
}

/// A person: speaker, host or coordinator.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Person {
    pub key: String,
    pub name: String,
    pub matrix_ids: Vec<String>,
    pub emails: Vec<String>,
}

impl Conference {
    pub fn person(&self, key: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.key == key)
    }

    pub fn track(&self, key: &str) -> Option<&Track> {
        self.tracks.iter().find(|t| t.key == key)
    }

    pub fn venue(&self, key: &str) -> Option<&Venue> {
        self.rooms.iter().find(|r| r.key == key)
    }

    /// Talks of a track, ordered by start.
    pub fn talks_of<'a>(&'a self, track: &'a str) -> impl Iterator<Item = &'a Talk> + 'a {
        self.talks.iter().filter(move |t| t.track.as_deref() == Some(track))
    }
}

/// FNV-1a over bytes: stable across runs and Rust versions (unlike the std hasher), for names derived from keys.
pub fn stable_hash(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Lower-case ASCII slug: letters and digits kept, everything else folded to single `-`.
pub fn slugify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut dash = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
            dash = false;
        } else if !out.is_empty() && !dash {
            out.push('-');
            dash = true;
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Whether [`clean_text`] would return the text unchanged.
fn is_clean(s: &str) -> bool {
    let b = s.as_bytes();
    if b.first().is_some_and(u8::is_ascii_whitespace) || b.last().is_some_and(u8::is_ascii_whitespace) {
        return false;
    }
    if s.is_ascii() {
        let mut prev_space = false;
        for &c in b {
            if c == b' ' {
                if prev_space {
                    return false;
                }
                prev_space = true;
            } else if c.is_ascii_control() {
                return false;
            } else {
                prev_space = false;
            }
        }
        return true;
    }
    let mut prev_space = true;
    for c in s.chars() {
        let zero_width = matches!(c, '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{FEFF}' | '\u{2060}');
        if zero_width || c.is_control() || (c.is_whitespace() && (c != ' ' || prev_space)) {
            return false;
        }
        prev_space = c == ' ';
    }
    !prev_space
}

/// [`clean_text`] for an owned string: no copy when it is clean already.
pub fn clean_owned(s: String) -> String {
    if is_clean(&s) { s } else { clean_text(&s) }
}

/// Clean display text: trims, drops zero-width and control characters, folds runs of white space.
pub fn clean_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if matches!(c, '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{FEFF}' | '\u{2060}') {
            continue;
        }
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if c.is_control() {
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugify_folds_punctuation_and_case() {
        assert_eq!(slugify("Rust devroom (D.rust)"), "rust-devroom-d-rust");
        assert_eq!(slugify("  --Ärger--  "), "rger");
        assert_eq!(slugify(""), "");
    }

    #[test]
    fn clean_owned_agrees_with_clean_text() {
        for s in ["a b", " a", "a  b", "a\tb", "é ü", "é  ü", "x\u{200B}", "", " ", "a\u{00A0}b", "plain"] {
            assert_eq!(clean_owned(s.to_string()), clean_text(s), "{s:?}");
        }
    }

    #[test]
    fn clean_text_drops_zero_width_and_folds_space() {
        assert_eq!(clean_text("  A\u{200B}B \n\t C  "), "AB C");
        assert_eq!(clean_text("\u{FEFF}"), "");
    }
}
