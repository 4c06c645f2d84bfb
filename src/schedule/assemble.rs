//! The raw, format-neutral schedule every reader produces, and its assembly into the [`Conference`] model:
//! timezone, conference days, talk identity (guid, else id, else slug; collisions reported and renamed), tracks and
//! their kinds, venues and people.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

use super::model::*;
use super::{Finding, ReadOptions};

/// When a raw event starts, as precisely as the file says.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// An instant with an offset (`<date>2026-01-31T09:30:00+01:00</date>`).
    Absolute(DateTime<FixedOffset>),
    /// A wall-clock time on the conference day the event is listed under (FOSDEM before 2024).
    DayTime(NaiveTime),
    /// A wall-clock date and time in the conference timezone (our YAML).
    Local(NaiveDateTime),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawPerson {
    pub id: Option<String>,
    pub name: String,
    pub role: Option<Role>,
    pub emails: Vec<String>,
    pub matrix_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    pub guid: Option<String>,
    pub id: Option<String>,
    pub slug: Option<String>,
    /// Explicit key (our YAML).
    pub key: Option<String>,
    pub title: String,
    pub subtitle: Option<String>,
    pub abstract_text: Option<String>,
    pub track: Option<String>,
    pub track_slug: Option<String>,
    pub room: Option<String>,
    /// Index of the day the event is listed under, if any.
    pub day: Option<u32>,
    pub when: Option<When>,
    pub duration: Option<Duration>,
    pub qa_start: Option<When>,
    pub kind: Option<String>,
    pub persons: Vec<RawPerson>,
    pub line: Option<u32>,
}

impl RawEvent {
    pub fn new(title: String) -> RawEvent {
        RawEvent {
            guid: None,
            id: None,
            slug: None,
            key: None,
            title,
            subtitle: None,
            abstract_text: None,
            track: None,
            track_slug: None,
            room: None,
            day: None,
            when: None,
            duration: None,
            qa_start: None,
            kind: None,
            persons: Vec::new(),
            line: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RawDay {
    pub index: u32,
    pub date: NaiveDate,
    pub start: Option<DateTime<FixedOffset>>,
    pub end: Option<DateTime<FixedOffset>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawTrack {
    pub name: String,
    pub slug: Option<String>,
    pub kind: Option<TrackKind>,
    pub online_qa: Option<bool>,
    pub coordinators: Vec<RawPerson>,
}

#[derive(Debug, Clone, Default)]
pub struct RawSchedule {
    pub id: Option<String>,
    pub title: Option<String>,
    /// Timezone name as the file gives it.
    pub timezone: Option<String>,
    /// Day change time (`<day_change>`): earlier wall-clock times belong to the previous day.
    pub day_change: Option<NaiveTime>,
    pub days: Vec<RawDay>,
    pub tracks: Vec<RawTrack>,
    pub rooms: Vec<String>,
    pub events: Vec<RawEvent>,
    pub findings: Vec<Finding>,
}

/// Parses `H:MM`, `HH:MM`, `HH:MM:SS` and `D:HH:MM:SS`-less variants into a duration.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    let nums: Option<Vec<i64>> = parts.iter().map(|p| p.trim().parse::<i64>().ok()).collect();
    let nums = nums?;
    if nums.iter().any(|&n| n < 0) {
        return None;
    }
    let seconds = match nums.as_slice() {
        [h, m] if *m < 60 => h.checked_mul(3600)?.checked_add(m * 60)?,
        [h, m, sec] if *m < 60 && *sec < 60 => h.checked_mul(3600)?.checked_add(m * 60 + sec)?,
        _ => return None,
    };
    bounded_seconds(seconds)
}

/// The longest duration accepted: a week. Longer is a typo, and far longer would overflow date arithmetic.
pub const MAX_DURATION_SECONDS: i64 = 7 * 24 * 3600;

/// A duration of `seconds`, if it is between zero and [`MAX_DURATION_SECONDS`].
pub fn bounded_seconds(seconds: i64) -> Option<Duration> {
    if (0..=MAX_DURATION_SECONDS).contains(&seconds) { Duration::try_seconds(seconds) } else { None }
}

/// Parses `HH:MM` or `HH:MM:SS`.
pub fn parse_time(s: &str) -> Option<NaiveTime> {
    let s = s.trim();
    NaiveTime::parse_from_str(s, "%H:%M").or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S")).ok()
}

/// Parses an RFC 3339 instant, tolerating a space instead of `T`.
pub fn parse_instant(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s).ok().or_else(|| DateTime::parse_from_rfc3339(&s.replacen(' ', "T", 1)).ok())
}

/// Resolves a wall-clock time in `tz`: the earlier instant when ambiguous (DST end), shifted forward past a gap
/// (DST start).
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Tz> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => t,
        chrono::LocalResult::Ambiguous(a, _) => a,
        chrono::LocalResult::None => {
            let mut probe = local;
            for _ in 0..8 {
                probe += Duration::minutes(30);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t;
                }
            }
            tz.from_utc_datetime(&local)
        }
    }
}

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

fn pick_timezone(file: &str, from_file: Option<&str>, opts: &ReadOptions, findings: &mut Vec<Finding>) -> Tz {
    if let Some(name) = from_file.map(str::trim).filter(|n| !n.is_empty()) {
        match name.parse::<Tz>() {
            Ok(tz) => {
                if let Some(cfg) = opts.timezone
                    && cfg != tz
                {
                    findings.push(Finding::warning(
                        file,
                        format!(
                            "the file says timezone {name} and the config says {}; the file wins",
                            cfg.name()
                        ),
                    ));
                }
                return tz;
            }
            Err(_) => findings.push(Finding::error(
                file,
                format!("unknown timezone {name:?} in the file; use an IANA name such as Europe/Brussels"),
            )),
        }
    }
    match opts.timezone {
        Some(tz) => tz,
        None => {
            findings.push(Finding::warning(
                file,
                "the file names no timezone and none is configured; times are read as UTC. Set conference.timezone \
                 in the config (or pass --timezone)",
            ));
            Tz::UTC
        }
    }
}

/// The conference date an instant belongs to: before the day change it is still the previous day.
fn conference_date(t: DateTime<Tz>, day_change: Option<NaiveTime>) -> NaiveDate {
    let local = t.naive_local();
    match day_change {
        Some(dc) if local.time() < dc && dc <= NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN) => {
            local.date().pred_opt().unwrap_or(local.date())
        }
        _ => local.date(),
    }
}

/// The listed days, found by index, by date and by time range without a scan per talk (a file may list tens of
/// thousands of days; the scans made reading quadratic).
struct DayLookup<'a> {
    days: &'a [Day],
    /// First day in list order with this index, and with this date.
    by_index: HashMap<u32, usize>,
    by_date: HashMap<NaiveDate, usize>,
    /// Days with a start and an end, sorted by start: (start, end, position in `days`).
    by_start: Vec<(DateTime<Tz>, DateTime<Tz>, usize)>,
}

impl<'a> DayLookup<'a> {
    fn new(days: &'a [Day]) -> DayLookup<'a> {
        let mut by_index = HashMap::new();
        let mut by_date = HashMap::new();
        let mut by_start = Vec::new();
        for (i, d) in days.iter().enumerate() {
            by_index.entry(d.index).or_insert(i);
            by_date.entry(d.date).or_insert(i);
            if let (Some(s), Some(e)) = (d.start, d.end) {
                by_start.push((s, e, i));
            }
        }
        by_start.sort_by_key(|&(s, _, i)| (s, i));
        DayLookup { days, by_index, by_date, by_start }
    }

    fn indexed(&self, index: u32) -> Option<&'a Day> {
        self.by_index.get(&index).map(|&i| &self.days[i])
    }

    /// The day whose range holds `t`: the latest-starting one that starts at or before it.
    fn holding(&self, t: DateTime<Tz>) -> Option<&'a Day> {
        let after = self.by_start.partition_point(|&(s, _, _)| s <= t);
        let &(_, end, i) = self.by_start.get(after.checked_sub(1)?)?;
        (t < end).then(|| &self.days[i])
    }

    fn on(&self, date: NaiveDate) -> Option<&'a Day> {
        self.by_date.get(&date).map(|&i| &self.days[i])
    }
}

fn resolve_when(
    when: &When,
    day: Option<u32>,
    days: &DayLookup<'_>,
    day_change: Option<NaiveTime>,
    tz: Tz,
) -> Result<(DateTime<Tz>, u32), String> {
    let listed = day.and_then(|i| days.indexed(i));
    match when {
        When::Absolute(t) => {
            let start = t.with_timezone(&tz);
            let day = match listed {
                Some(d) => d.index,
                None => day_for(start, days, day_change),
            };
            Ok((start, day))
        }
        When::Local(ndt) => {
            let start = resolve_local(tz, *ndt);
            let day = match listed {
                Some(d) => d.index,
                None => day_for(start, days, day_change),
            };
            Ok((start, day))
        }
        When::DayTime(time) => {
            let Some(d) = listed else {
                return Err("the talk has a time but no day to put it on".to_string());
            };
            // After midnight: a time before the day's start (or before the day change) is on the next calendar date.
            let day_start_time = d.start.map(|s| s.naive_local().time()).or(day_change);
            let date = match day_start_time {
                Some(ds) if *time < ds => d.date.succ_opt().unwrap_or(d.date),
                _ => d.date,
            };
            Ok((resolve_local(tz, date.and_time(*time)), d.index))
        }
    }
}

fn day_for(start: DateTime<Tz>, days: &DayLookup<'_>, day_change: Option<NaiveTime>) -> u32 {
    if let Some(d) = days.holding(start) {
        return d.index;
    }
    days.on(conference_date(start, day_change)).map_or(0, |d| d.index)
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
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_real_shape() {
        assert_eq!(parse_duration("0:30"), Some(Duration::minutes(30)));
        assert_eq!(parse_duration("00:20"), Some(Duration::minutes(20)));
        assert_eq!(parse_duration("01:00:30"), Some(Duration::seconds(3630)));
        assert_eq!(parse_duration("10:00"), Some(Duration::hours(10)));
        assert_eq!(parse_duration("00:75"), None);
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("-1:00"), None);
        // Absurd values are refused, never a panic or an overflow.
        assert_eq!(parse_duration("9999999999999:00"), None);
        assert_eq!(parse_duration("9223372036854775807:00"), None);
        assert_eq!(parse_duration("169:00"), None);
        assert_eq!(parse_duration("168:00"), Some(Duration::hours(168)));
    }

    #[test]
    fn dst_gap_moves_forward_and_ambiguity_takes_the_earlier() {
        let tz: Tz = "Europe/Brussels".parse().unwrap();
        let gap = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap().and_hms_opt(2, 30, 0).unwrap();
        assert_eq!(resolve_local(tz, gap).to_rfc3339(), "2026-03-29T03:00:00+02:00");
        let amb = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap().and_hms_opt(2, 30, 0).unwrap();
        assert_eq!(resolve_local(tz, amb).to_rfc3339(), "2026-10-25T02:30:00+02:00");
    }

    #[test]
    fn keys_are_renamed_in_order_around_keys_the_file_uses() {
        let mut keys = Keys::default();
        let got: Vec<String> = ["x", "x", "x~3", "x", "x", "x~2"].iter().map(|k| keys.claim(k, '~')).collect();
        assert_eq!(got, ["x", "x~2", "x~3", "x~4", "x~5", "x~2~2"]);
        let mut rooms = Keys::default();
        assert_eq!([rooms.claim("h", '-'), rooms.claim("h", '-')], ["h", "h-2"]);
    }

    #[test]
    fn duplicate_talk_keys_are_renamed_and_reported_with_the_first_line() {
        let talks: String = (0..3).map(|i| format!("  - {{key: same, title: T{i}, room: A, start: \"2026-03-14 1{i}:00\", duration: 30}}\n")).collect();
        let text = format!("conference: {{title: T, timezone: Europe/Brussels}}\ntalks:\n{talks}");
        let parsed = crate::schedule::read("d.yaml", text.as_bytes(), &ReadOptions::default()).unwrap();
        let keys: Vec<&str> = parsed.conference.talks.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["same", "same~2", "same~3"]);
        let dup: Vec<_> = parsed.findings.iter().filter(|f| f.message.contains("duplicate talk key")).collect();
        assert_eq!(dup.len(), 2, "{dup:?}");
        assert!(dup[1].message.contains("first seen at line 3") && dup[1].line == Some(5), "{:?}", dup[1]);
    }
}
