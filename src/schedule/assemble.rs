//! The assembly of the raw schedule every reader produces ([`super::raw`]) into the [`Conference`] model: timezone,
//! conference days, talk identity (guid, else id, else slug; collisions reported and renamed), tracks and their
//! kinds, venues and people.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, NaiveDate, NaiveTime};

use super::model::*;
use super::days::{DayLookup, conference_date, pick_timezone, resolve_when};
use super::raw::*;
use super::{Finding, ReadOptions};

/// Counts of values (event types, rooms) seen for one track, compared without ASCII case, in the order first seen.
/// Indexed: a track may hold thousands of rooms.
#[derive(Default)]
struct Votes {
    counts: Vec<(String, usize)>,
    index: HashMap<String, usize>,
}

fn vote(votes: &mut Votes, value: &str) {
    let folded = value.to_ascii_lowercase();
    match votes.index.get(&folded) {
        Some(&i) => votes.counts[i].1 += 1,
        None => {
            votes.index.insert(folded, votes.counts.len());
            votes.counts.push((value.to_string(), 1));
        }
    }
}

/// The most frequent value; the first seen wins a tie.
fn winner(votes: &Votes) -> Option<&str> {
    let mut best: Option<&(String, usize)> = None;
    for v in &votes.counts {
        if best.is_none_or(|b| v.1 > b.1) {
            best = Some(v);
        }
    }
    best.map(|(v, _)| v.as_str())
}

fn trim_owned(s: String) -> String {
    if s.len() == s.trim().len() { s } else { s.trim().to_string() }
}

struct Ids {
    /// Where each talk key was first seen.
    talk_keys: HashMap<String, (u32, Option<u32>)>,
    keys: Keys,
}

/// Keys handed out so far. A taken key gets the next free `BASE{sep}N` (N from 2), found in amortised constant time:
/// each base remembers where its search stopped (20,000 talks sharing one key, or rooms sharing one slug, were
/// quadratic when every rename counted from 2 again over a list).
#[derive(Default)]
struct Keys {
    taken: HashSet<String>,
    next: HashMap<String, u32>,
}

impl Keys {
    /// `base` if it is free, else the first free `BASE{sep}N`; either way the key returned is taken now.
    fn claim(&mut self, base: &str, sep: char) -> String {
        if self.taken.insert(base.to_string()) {
            return base.to_string();
        }
        let n = self.next.entry(base.to_string()).or_insert(2);
        loop {
            let key = format!("{base}{sep}{n}");
            *n += 1;
            if self.taken.insert(key.clone()) {
                return key;
            }
        }
    }
}

/// Builds the model from a raw schedule. Never fails: what cannot be used becomes a finding.
pub fn assemble(file: &str, raw: RawSchedule, opts: &ReadOptions) -> (Conference, Vec<Finding>) {
    let mut findings = raw.findings;
    let tz = pick_timezone(file, raw.timezone.as_deref(), opts, &mut findings);
    let day_change = raw.day_change.filter(|t| *t != NaiveTime::MIN);

    let mut days: Vec<Day> = raw
        .days
        .iter()
        .map(|d| Day {
            index: d.index,
            date: d.date,
            start: d.start.map(|t| t.with_timezone(&tz)),
            end: d.end.map(|t| t.with_timezone(&tz)),
        })
        .collect();

    // Tracks declared up front, then the ones events name.
    let mut tracks: Vec<Track> = Vec::new();
    let mut track_by_name: HashMap<String, usize> = HashMap::new();
    let mut type_votes: Vec<Votes> = Vec::new();
    let mut track_rooms: Vec<Votes> = Vec::new();
    let mut people = PeopleBook::default();

    let mut track_by_raw: HashMap<String, usize> = HashMap::new();
    let mut track_by_key: HashMap<String, usize> = HashMap::new();
    let mut track_keys = Keys::default();
    let mut declare_track = |tracks: &mut Vec<Track>,
                             type_votes: &mut Vec<Votes>,
                             track_rooms: &mut Vec<Votes>,
                             name: &str,
                             slug: Option<&str>|
     -> usize {
        if slug.is_none()
            && let Some(&i) = track_by_raw.get(name)
        {
            return i;
        }
        let raw_name = name;
        let name = clean_text(name);
        let lookup = name.to_lowercase();
        if slug.is_none() {
            if let Some(&i) = track_by_name.get(&lookup) {
                track_by_raw.insert(raw_name.to_string(), i);
                return i;
            }
        }
        if let Some(&i) = track_by_name.get(&lookup) {
            return i;
        }
        if let Some(slug) = slug
            && let Some(&i) = track_by_key.get(slug)
        {
            track_by_name.insert(lookup, i);
            return i;
        }
        let mut key = slug.map(str::to_string).unwrap_or_else(|| slugify(&name));
        if key.is_empty() {
            key = "track".to_string();
        }
        let key = track_keys.claim(&key, '-');
        track_by_key.insert(key.clone(), tracks.len());
        tracks.push(Track {
            key,
            name,
            kind: TrackKind::Other,
            source_type: None,
            online_qa: None,
            coordinators: Vec::new(),
        });
        type_votes.push(Votes::default());
        track_rooms.push(Votes::default());
        track_by_name.insert(lookup, tracks.len() - 1);
        tracks.len() - 1
    };

    for t in &raw.tracks {
        if clean_text(&t.name).is_empty() {
            continue;
        }
        let i = declare_track(&mut tracks, &mut type_votes, &mut track_rooms, &t.name, t.slug.as_deref());
        tracks[i].online_qa = t.online_qa;
        if let Some(kind) = t.kind {
            tracks[i].kind = kind;
        }
        for c in &t.coordinators {
            let key = people.add(c);
            if !tracks[i].coordinators.contains(&key) {
                tracks[i].coordinators.push(key);
            }
        }
    }
    let explicit_kinds: Vec<bool> = raw.tracks.iter().map(|t| t.kind.is_some()).collect();
    let declared_tracks = tracks.len();

    let mut rooms: Vec<Venue> = Vec::new();
    let mut room_by_name: HashMap<String, usize> = HashMap::new();
    let mut room_by_raw: HashMap<String, usize> = HashMap::new();
    let mut room_keys = Keys::default();
    let mut add_room = |rooms: &mut Vec<Venue>, name: &str| -> usize {
        if let Some(&i) = room_by_raw.get(name) {
            return i;
        }
        let raw_name = name.to_string();
        let name = clean_text(name);
        if let Some(&i) = room_by_name.get(&name) {
            return i;
        }
        let mut key = slugify(&name);
        if key.is_empty() {
            key = "room".into();
        }
        let key = room_keys.claim(&key, '-');
        rooms.push(Venue { key, name: name.clone() });
        room_by_name.insert(name, rooms.len() - 1);
        room_by_raw.insert(raw_name, rooms.len() - 1);
        rooms.len() - 1
    };
    for r in &raw.rooms {
        if !clean_text(r).is_empty() {
            add_room(&mut rooms, r);
        }
    }

    let mut ids = Ids { talk_keys: HashMap::new(), keys: Keys::default() };
    let mut talks: Vec<Talk> = Vec::with_capacity(raw.events.len());
    let mut untracked: Vec<String> = Vec::new();
    let lookup = DayLookup::new(&days);
    for ev in raw.events {
        let title = clean_owned(ev.title);
        let base_key = ev
            .key
            .as_deref()
            .or(ev.guid.as_deref())
            .or(ev.id.as_deref())
            .or(ev.slug.as_deref())
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| slugify(&title));
        let key = unique_talk_key(file, &mut ids, base_key, ev.day.unwrap_or(0), ev.line, &mut findings);

        // Start, end and day.
        let Some(when) = &ev.when else {
            findings.push(
                Finding::error(file, "the talk has no start time; add <start> (and <date>) to it")
                    .at(ev.line)
                    .talk(&key),
            );
            continue;
        };
        let (start, day) = match resolve_when(when, ev.day, &lookup, day_change, tz) {
            Ok(v) => v,
            Err(msg) => {
                findings.push(Finding::error(file, msg).at(ev.line).talk(&key));
                continue;
            }
        };
        let duration = match ev.duration {
            Some(d) => d,
            None => {
                findings.push(
                    Finding::warning(file, "the talk has no duration; taken as zero length")
                        .at(ev.line)
                        .talk(&key),
                );
                Duration::zero()
            }
        };
        let Some(end) = start.checked_add_signed(duration) else {
            findings.push(Finding::error(file, "the talk ends at an impossible date").at(ev.line).talk(&key));
            continue;
        };
        let qa_start = ev.qa_start.as_ref().and_then(|w| resolve_when(w, Some(day), &lookup, day_change, tz).ok()).map(|(t, _)| t);
        if ev.qa_start.is_some() && qa_start.is_none() {
            findings.push(Finding::warning(file, "the Q&A start could not be read; ignored").at(ev.line).talk(&key));
        }

        let track_name = ev.track.as_deref().filter(|t| !t.trim().is_empty()).or_else(|| {
            // No track: the talk goes into a track named after its room, as the room is where people find it.
            let room = ev.room.as_deref().filter(|r| !r.trim().is_empty())?;
            untracked.push(key.clone());
            Some(room)
        });
        let track = match track_name {
            Some(name) => {
                let before = tracks.len();
                let i = declare_track(&mut tracks, &mut type_votes, &mut track_rooms, name, ev.track_slug.as_deref());
                if declared_tracks > 0 && i >= before && ev.track.is_some() {
                    findings.push(
                        Finding::warning(
                            file,
                            format!("track {name:?} is not in the file's list of tracks; it is added as it is"),
                        )
                        .at(ev.line)
                        .talk(&key),
                    );
                }
                if let Some(kind) = &ev.kind {
                    vote(&mut type_votes[i], kind.trim());
                }
                if let Some(room) = &ev.room {
                    vote(&mut track_rooms[i], room.trim());
                }
                Some(tracks[i].key.clone())
            }
            None => None,
        };
        let room = ev.room.as_deref().filter(|r| !r.trim().is_empty()).map(|r| {
            let i = add_room(&mut rooms, r);
            rooms[i].key.clone()
        });

        let mut talk_people: Vec<TalkPerson> = Vec::new();
        let mut seen: HashSet<(String, Role)> = HashSet::new();
        for p in &ev.persons {
            let pkey = people.add(p);
            let role = p.role.unwrap_or(Role::Speaker);
            if seen.insert((pkey.clone(), role)) {
                talk_people.push(TalkPerson { person: pkey, role });
            }
        }

        talks.push(Talk {
            key,
            guid: ev.guid,
            id: ev.id,
            slug: ev.slug,
            title,
            subtitle: ev.subtitle.map(clean_owned).filter(|s| !s.is_empty()),
            abstract_text: ev.abstract_text.map(trim_owned).filter(|s| !s.is_empty()),
            track,
            room,
            day,
            start,
            end,
            qa_start,
            kind: ev.kind.map(trim_owned).filter(|k| !k.is_empty()),
            people: talk_people,
            line: ev.line,
        });
    }

    if !untracked.is_empty() {
        let mut f = Finding::warning(
            file,
            format!(
                "{} talk(s) have no track; each is placed in a track named after its room ({}{})",
                untracked.len(),
                untracked.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                if untracked.len() > 5 { ", ..." } else { "" }
            ),
        );
        if untracked.len() == 1 {
            f = f.talk(&untracked[0]);
        }
        findings.push(f);
    }

    // Classify tracks: an explicit kind wins; otherwise the config rules over the type most talks carry.
    for (i, track) in tracks.iter_mut().enumerate() {
        let source_type = winner(&type_votes[i]).map(str::to_lowercase);
        let main_room = winner(&track_rooms[i]).map(clean_text);
        track.source_type = source_type;
        let explicit = i < declared_tracks && explicit_kinds.get(i).copied().unwrap_or(false);
        if !explicit {
            track.kind = opts.track_rules.classify(
                &track.key,
                &track.name,
                track.source_type.as_deref(),
                main_room.as_deref(),
            );
        }
    }

    // Days the file did not list come from the talks.
    if days.is_empty() {
        let mut dates: Vec<NaiveDate> = talks.iter().map(|t| conference_date(t.start, day_change)).collect();
        dates.sort();
        dates.dedup();
        days = dates
            .into_iter()
            .enumerate()
            .map(|(i, date)| Day { index: super::to_u32(i + 1), date, start: None, end: None })
            .collect();
        for t in &mut talks {
            let date = conference_date(t.start, day_change);
            // `days` is sorted by date here.
            if let Ok(i) = days.binary_search_by_key(&date, |d| d.date) {
                t.day = days[i].index;
            }
        }
    }

    let id = raw
        .id
        .map(|s| slugify(&s))
        .filter(|s| !s.is_empty())
        .or_else(|| opts.conference_id.clone())
        .or_else(|| raw.title.as_deref().map(slugify).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "conference".to_string());
    let conference = Conference {
        id,
        title: raw.title.map(|t| clean_text(&t)).unwrap_or_default(),
        timezone: tz,
        days,
        tracks,
        rooms,
        talks,
        people: people.into_people(),
    };
    (conference, findings)
}

fn unique_talk_key(
    file: &str,
    ids: &mut Ids,
    base: String,
    day: u32,
    line: Option<u32>,
    findings: &mut Vec<Finding>,
) -> String {
    let base = if base.is_empty() { "talk".to_string() } else { base };
    // Skips suffixes the file itself uses as keys (a talk keyed "x~2" beside two called "x").
    let key = ids.keys.claim(&base, '~');
    let Some(&(first_day, first_line)) = ids.talk_keys.get(&base) else {
        ids.talk_keys.insert(base.clone(), (day, line));
        return base;
    };
    ids.talk_keys.insert(key.clone(), (day, line));
    let first = match first_line {
        Some(l) => format!("line {l}, day {first_day}"),
        None => format!("day {first_day}"),
    };
    findings.push(
        Finding::warning(
            file,
            format!(
                "duplicate talk key {base:?} (first seen at {first}); this one is kept as {key:?}. Give every event \
                 its own guid or id so its identity survives re-exports"
            ),
        )
        .at(line)
        .talk(&key),
    );
    key
}

/// People seen while assembling, merged by key.
#[derive(Default)]
struct PeopleBook {
    people: Vec<Person>,
    by_key: HashMap<String, usize>,
}

impl PeopleBook {
    fn add(&mut self, p: &RawPerson) -> String {
        let id = p.id.as_deref().map(str::trim).filter(|k| !k.is_empty());
        let found = match id {
            Some(k) => self.by_key.get(k).copied(),
            None => None,
        };
        let i = match found {
            Some(i) => i,
            None => {
                let name = clean_text(&p.name);
                let key = match id {
                    Some(k) => k.to_string(),
                    None => format!("name:{}", slugify(&name)),
                };
                match self.by_key.get(&key) {
                    Some(&i) => i,
                    None => {
                        self.people.push(Person { key: key.clone(), name, ..Person::default() });
                        self.by_key.insert(key, self.people.len() - 1);
                        self.people.len() - 1
                    }
                }
            }
        };
        let person = &mut self.people[i];
        if person.name.is_empty() {
            person.name = clean_text(&p.name);
        }
        for m in &p.matrix_ids {
            let m = m.trim();
            if !m.is_empty() && !person.matrix_ids.iter().any(|x| x == m) {
                person.matrix_ids.push(m.to_string());
            }
        }
        for e in &p.emails {
            let e = e.trim();
            if !e.is_empty() && !person.emails.iter().any(|x| x.eq_ignore_ascii_case(e)) {
                person.emails.push(e.to_string());
            }
        }
        person.key.clone()
    }

    fn into_people(self) -> Vec<Person> {
        self.people
    }
}

#[cfg(test)]
#[path = "assemble_tests.rs"]
mod tests;
