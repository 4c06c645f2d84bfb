//! People files: add Matrix IDs, e-mail addresses and roles to the people of any schedule.
//!
//! Three shapes are read: a YAML list, a CSV table (header `key,name,email,matrix,role,track,talk`), and FOSDEM's
//! speaker feed (`{"talks": [...], "tracks": [...]}` with `event_role`, `email`, `matrix_id`). Entries match a
//! schedule person by person key, then by e-mail, then by name only when exactly one person has that name: a
//! name-only match is a warning naming both sides, or refused (an error) when the config says so.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use super::model::{Conference, Person, Role, TalkPerson, clean_text};
use super::{Finding, ScheduleError};

/// One line of a people file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeopleEntry {
    pub key: Option<String>,
    pub name: Option<String>,
    pub emails: Vec<String>,
    pub matrix_ids: Vec<String>,
    /// (role, track key or name, talk key or id)
    pub roles: Vec<(Role, Option<String>, Option<String>)>,
    pub line: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlDoc {
    people: Vec<YamlPerson>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlPerson {
    key: Option<String>,
    name: Option<String>,
    email: Option<OneOrMany>,
    matrix: Option<OneOrMany>,
    #[serde(default)]
    roles: Vec<YamlRole>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlRole {
    role: Role,
    track: Option<String>,
    talk: Option<String>,
}

fn many(v: Option<OneOrMany>) -> Vec<String> {
    match v {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => split_list(&s),
        Some(OneOrMany::Many(v)) => v.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split([';', ' ', ',']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[derive(Deserialize)]
struct Feed {
    talks: Vec<FeedTalk>,
    #[serde(default)]
    tracks: Vec<FeedTrack>,
}

#[derive(Deserialize)]
struct FeedTalk {
    event_id: serde_json::Value,
    #[serde(default)]
    persons: Vec<FeedPerson>,
    track: Option<FeedTrackRef>,
}

#[derive(Deserialize)]
struct FeedTrackRef {
    slug: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct FeedTrack {
    slug: Option<String>,
    name: Option<String>,
    #[serde(default)]
    managers: Vec<FeedPerson>,
}

#[derive(Deserialize)]
struct FeedPerson {
    person_id: serde_json::Value,
    event_role: Option<String>,
    name: Option<String>,
    email: Option<String>,
    matrix_id: Option<String>,
}

fn value_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl FeedPerson {
    fn entry(self, track: Option<String>, talk: Option<String>) -> PeopleEntry {
        let role = self.event_role.as_deref().and_then(Role::parse).unwrap_or(Role::Speaker);
        PeopleEntry {
            key: value_string(&self.person_id),
            name: self.name,
            emails: self.email.into_iter().filter(|e| !e.trim().is_empty()).collect(),
            matrix_ids: self.matrix_id.into_iter().filter(|m| !m.trim().is_empty()).collect(),
            roles: vec![(role, track, talk)],
            line: None,
        }
    }
}

/// Reads a people file of any of the three shapes.
pub fn read(file: &str, text: &str) -> Result<Vec<PeopleEntry>, ScheduleError> {
    let trimmed = text.trim_start_matches('\u{FEFF}').trim_start();
    if trimmed.starts_with('{') {
        let feed: Feed = serde_json::from_str(trimmed).map_err(|e| ScheduleError {
            file: file.into(),
            line: Some(super::to_u32(e.line())),
            column: Some(super::to_u32(e.column())),
            message: format!("not a readable FOSDEM speaker feed: {e}"),
        })?;
        let mut out = Vec::new();
        for t in feed.talks {
            let talk = value_string(&t.event_id);
            let track = t.track.and_then(|r| r.slug.or(r.name));
            for p in t.persons {
                let role = p.event_role.as_deref().and_then(Role::parse).unwrap_or(Role::Speaker);
                // A coordinator listed on a talk coordinates its track.
                let entry = if role == Role::Coordinator {
                    p.entry(track.clone(), None)
                } else {
                    p.entry(None, talk.clone())
                };
                out.push(entry);
            }
        }
        for tr in feed.tracks {
            let track = tr.slug.or(tr.name);
            for m in tr.managers {
                let mut e = m.entry(track.clone(), None);
                e.roles = vec![(Role::Coordinator, track.clone(), None)];
                out.push(e);
            }
        }
        return Ok(out);
    }
    let first_line = trimmed.lines().next().unwrap_or_default();
    if first_line.contains(',') && !first_line.contains(':') {
        return read_csv(file, text);
    }
    super::yaml::check_shape(file, text, super::ReadOptions::default().max_depth)?;
    let doc: YamlDoc = yaml_serde::from_str(text).map_err(|e| {
        let loc = e.location();
        ScheduleError {
            file: file.into(),
            line: loc.as_ref().map(|l| super::to_u32(l.line())),
            column: loc.as_ref().map(|l| super::to_u32(l.column())),
            message: format!("not a readable people file: {e} (see schedules/people.example.yaml)"),
        }
    })?;
    Ok(doc
        .people
        .into_iter()
        .map(|p| PeopleEntry {
            key: p.key,
            name: p.name,
            emails: many(p.email),
            matrix_ids: many(p.matrix),
            roles: p.roles.into_iter().map(|r| (r.role, r.track, r.talk)).collect(),
            line: None,
        })
        .collect())
}

fn read_csv(file: &str, text: &str) -> Result<Vec<PeopleEntry>, ScheduleError> {
    let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(true).from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| ScheduleError::new(file, format!("cannot read the CSV header: {e}")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (key, name, email, matrix, role, track, talk) =
        (col("key"), col("name"), col("email"), col("matrix"), col("role"), col("track"), col("talk"));
    if key.is_none() && name.is_none() && email.is_none() {
        return Err(ScheduleError {
            file: file.into(),
            line: Some(1),
            column: Some(1),
            message: "the CSV header needs at least one of key, name, email (columns: key,name,email,matrix,role,track,talk)"
                .into(),
        });
    }
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| ScheduleError {
            file: file.into(),
            line: e.position().map(|p| super::to_u32(p.line() as usize)),
            column: None,
            message: format!("unreadable CSV row: {e}"),
        })?;
        let line = rec.position().map(|p| super::to_u32(p.line() as usize));
        let get = |c: Option<usize>| c.and_then(|i| rec.get(i)).map(str::to_string).filter(|s| !s.is_empty());
        let mut roles = Vec::new();
        if let Some(r) = get(role) {
            match Role::parse(&r) {
                Some(r) => roles.push((r, get(track), get(talk))),
                None => {
                    return Err(ScheduleError {
                        file: file.into(),
                        line,
                        column: None,
                        message: format!("unknown role {r:?}; use speaker, host or coordinator"),
                    });
                }
            }
        }
        out.push(PeopleEntry {
            key: get(key),
            name: get(name),
            emails: get(email).map(|e| split_list(&e)).unwrap_or_default(),
            matrix_ids: get(matrix).map(|m| split_list(&m)).unwrap_or_default(),
            roles,
            line,
        });
    }
    Ok(out)
}

/// What to do with an entry that matches a schedule person by display name only (no key, no known e-mail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameOnly {
    /// Apply it, with a warning naming both sides.
    #[default]
    Warn,
    /// Do not apply it: an error naming both sides.
    Refuse,
}

/// How an entry found its schedule person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    KeyOrEmail,
    NameOnly,
}

/// Applies people entries to a conference. Returns findings for entries that matched nobody, matched by name only, or
/// named unknown talks.
pub fn apply(file: &str, conf: &mut Conference, entries: Vec<PeopleEntry>, by_name: NameOnly) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut index = Index::new(conf);
    for entry in entries {
        let idx = match index.find_person(&entry) {
            Ok(Some((i, Match::KeyOrEmail))) => i,
            Ok(Some((i, Match::NameOnly))) => {
                let p = &conf.people[i];
                let both = format!(
                    "the entry {:?} has no key and no e-mail the schedule knows, and matches schedule person {} ({:?}) \
                     by display name only",
                    entry.name.as_deref().unwrap_or_default(),
                    p.key,
                    p.name
                );
                if by_name == NameOnly::Refuse {
                    findings.push(
                        Finding::error(
                            file,
                            format!("{both}; refused (schedule.refuse_name_only_matches): add `key: {}` to the entry", p.key),
                        )
                        .at(entry.line),
                    );
                    continue;
                }
                findings.push(
                    Finding::warning(
                        file,
                        format!(
                            "{both}; check that they are the same person and add `key: {}` to the entry to make it \
                             certain (schedule.refuse_name_only_matches: true refuses such matches)",
                            p.key
                        ),
                    )
                    .at(entry.line),
                );
                i
            }
            Ok(None) => {
                let Some(key) = entry
                    .key
                    .clone()
                    .or_else(|| entry.emails.first().map(|e| format!("email:{}", e.to_lowercase())))
                else {
                    findings.push(
                        Finding::warning(
                            file,
                            format!(
                                "{} matches no one in the schedule and has neither key nor e-mail; skipped",
                                entry.name.as_deref().unwrap_or("an entry")
                            ),
                        )
                        .at(entry.line),
                    );
                    continue;
                };
                conf.people.push(Person {
                    key,
                    name: entry.name.as_deref().map(clean_text).unwrap_or_default(),
                    ..Person::default()
                });
                index.add_person(conf, conf.people.len() - 1);
                conf.people.len() - 1
            }
            Err(msg) => {
                findings.push(Finding::warning(file, msg).at(entry.line));
                continue;
            }
        };
        let person = &mut conf.people[idx];
        for m in &entry.matrix_ids {
            if !person.matrix_ids.contains(m) {
                person.matrix_ids.push(m.clone());
            }
        }
        for e in &entry.emails {
            if !person.emails.iter().any(|x| x.eq_ignore_ascii_case(e)) {
                person.emails.push(e.clone());
                index.by_email.entry(e.to_lowercase()).or_insert(idx);
            }
        }
        if person.name.is_empty()
            && let Some(n) = &entry.name
        {
            person.name = clean_text(n);
            index.by_name.entry(person.name.clone()).or_default().push(idx);
        }
        let pkey = person.key.clone();
        for (role, track, talk) in &entry.roles {
            if let Some(t) = talk {
                match index.talks.get(t.as_str()).copied() {
                    Some(ti) => {
                        if index.in_talks.insert((ti, pkey.clone(), *role)) {
                            conf.talks[ti].people.push(TalkPerson { person: pkey.clone(), role: *role });
                        }
                    }
                    None => findings.push(
                        Finding::warning(file, format!("person {pkey}: no talk {t:?} in the schedule")).at(entry.line),
                    ),
                }
            }
            if let Some(tr) = track {
                let found = [index.tracks.get(tr.as_str()), index.tracks.get(&tr.to_lowercase())].into_iter().flatten().min().copied();
                match found {
                    Some(ti) => {
                        if *role == Role::Coordinator && index.coordinating.insert((ti, pkey.clone())) {
                            conf.tracks[ti].coordinators.push(pkey.clone());
                        }
                    }
                    None => findings.push(
                        Finding::warning(file, format!("person {pkey}: no track {tr:?} in the schedule")).at(entry.line),
                    ),
                }
            }
        }
    }
    findings
}

/// The conference's people, talks and tracks by what people files name them with, built once and kept up to date
/// (a scan per entry was quadratic in a file of tens of thousands of entries). Each name maps to the first in
/// schedule order, as a scan would find it.
struct Index {
    by_key: HashMap<String, usize>,
    /// Lower-cased e-mail address.
    by_email: HashMap<String, usize>,
    by_name: HashMap<String, Vec<usize>>,
    /// Talk key, id or guid.
    talks: HashMap<String, usize>,
    /// Track key, or lower-cased track name.
    tracks: HashMap<String, usize>,
    /// (talk, person, role) and (track, coordinator) already there.
    in_talks: HashSet<(usize, String, Role)>,
    coordinating: HashSet<(usize, String)>,
}

impl Index {
    fn new(conf: &Conference) -> Index {
        let mut index = Index {
            by_key: HashMap::new(),
            by_email: HashMap::new(),
            by_name: HashMap::new(),
            talks: HashMap::new(),
            tracks: HashMap::new(),
            in_talks: HashSet::new(),
            coordinating: HashSet::new(),
        };
        for i in 0..conf.people.len() {
            index.add_person(conf, i);
        }
        for (i, t) in conf.talks.iter().enumerate() {
            for name in [Some(&t.key), t.id.as_ref(), t.guid.as_ref()].into_iter().flatten() {
                index.talks.entry(name.clone()).or_insert(i);
            }
            index.in_talks.extend(t.people.iter().map(|p| (i, p.person.clone(), p.role)));
        }
        for (i, t) in conf.tracks.iter().enumerate() {
            index.tracks.entry(t.key.clone()).or_insert(i);
            index.tracks.entry(t.name.to_lowercase()).or_insert(i);
            index.coordinating.extend(t.coordinators.iter().map(|c| (i, c.clone())));
        }
        index
    }

    fn add_person(&mut self, conf: &Conference, i: usize) {
        let p = &conf.people[i];
        self.by_key.entry(p.key.clone()).or_insert(i);
        for e in &p.emails {
            self.by_email.entry(e.to_lowercase()).or_insert(i);
        }
        self.by_name.entry(p.name.clone()).or_default().push(i);
    }

    /// Person key first, then e-mail, then a unique exact name. Never a guess between several.
    fn find_person(&self, e: &PeopleEntry) -> Result<Option<(usize, Match)>, String> {
        if let Some(&i) = e.key.as_ref().and_then(|k| self.by_key.get(k)) {
            return Ok(Some((i, Match::KeyOrEmail)));
        }
        if let Some(&i) = e.emails.iter().find_map(|m| self.by_email.get(&m.to_lowercase())) {
            return Ok(Some((i, Match::KeyOrEmail)));
        }
        let Some(n) = e.name.as_ref().filter(|_| e.key.is_none()) else { return Ok(None) };
        let n = clean_text(n);
        let hits: &[usize] = self.by_name.get(&n).map_or(&[], Vec::as_slice);
        match hits {
            [i] => Ok(Some((*i, Match::NameOnly))),
            [] => Ok(None),
            _ => Err(format!("{n:?} is the name of {} people in the schedule; give a key or e-mail to say which", hits.len())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_several_matrix_ids() {
        let e = read("p.csv", "key,name,email,matrix,role,track\n7,Ann,ann@x.org,@ann:x.org;@ann:y.org,coordinator,rust\n")
            .unwrap();
        assert_eq!(e[0].matrix_ids, vec!["@ann:x.org", "@ann:y.org"]);
        assert_eq!(e[0].roles, vec![(Role::Coordinator, Some("rust".into()), None)]);
        assert_eq!(e[0].line, Some(2));
    }

    #[test]
    fn csv_unknown_role_names_the_line() {
        let err = read("p.csv", "key,role\n1,speaker\n2,boss\n").unwrap_err();
        assert_eq!(err.line, Some(3));
    }

    #[test]
    fn yaml_people() {
        let e = read("p.yaml", "people:\n  - key: \"7\"\n    matrix: [\"@a:x.org\", \"@b:x.org\"]\n    roles: [{role: host, talk: t1}]\n")
            .unwrap();
        assert_eq!(e[0].matrix_ids.len(), 2);
        assert_eq!(e[0].roles[0].0, Role::Host);
    }
}
