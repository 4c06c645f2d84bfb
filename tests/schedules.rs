//! Every real schedule in ../shared/schedules is read, and its counts match the table in that folder's README
//! (days, rooms, events). Track and people counts were checked against an independent count with Python's
//! ElementTree (distinct `<track>` texts plus declared tracks; distinct person ids).

mod common;

use std::path::PathBuf;

use stagehand::schedule::{self, Conference, Format, ReadOptions, diff};

fn shared(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/schedules").join(rel)
}

fn read(rel: &str) -> schedule::Parsed {
    let path = shared(rel);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let opts = ReadOptions { timezone: Some(chrono_tz::Europe::Brussels), ..ReadOptions::default() };
    let mut p = schedule::read(rel, &bytes, &opts).unwrap_or_else(|e| panic!("{e}"));
    p.validate(rel);
    p
}

fn counts(c: &Conference) -> (usize, usize, usize, usize, usize) {
    (c.days.len(), c.rooms.len(), c.tracks.len(), c.talks.len(), c.people.len())
}

#[test]
fn fosdem_files_match_the_readme_table() {
    // (file, days, rooms, tracks, talks, people)
    let table = [
        ("fosdem/fosdem-2021.xml", 2, 108, 109, 773, 684),
        ("fosdem/fosdem-2022.xml", 2, 102, 100, 730, 655),
        ("fosdem/fosdem-2024.xml", 2, 35, 67, 874, 948),
        ("fosdem/fosdem-2025.xml", 2, 35, 79, 1105, 1193),
        ("fosdem/fosdem-2026.snapshot-2025-12-21.xml", 2, 30, 70, 828, 870),
        ("fosdem/fosdem-2026.snapshot-2025-12-30.xml", 2, 30, 70, 883, 927),
        ("fosdem/fosdem-2026.snapshot-2026-01-30.xml", 2, 37, 71, 1070, 1185),
        ("fosdem/fosdem-2026.snapshot-2026-02-02.xml", 2, 37, 71, 1079, 1196),
    ];
    for (file, days, rooms, tracks, talks, people) in table {
        let p = read(file);
        assert_eq!(p.format, Format::PentabarfXml);
        assert_eq!(counts(&p.conference), (days, rooms, tracks, talks, people), "{file}");
        assert_eq!(p.errors().count(), 0, "{file}: {:?}", p.errors().collect::<Vec<_>>());
    }
}

#[test]
fn ccc_and_pretalx_files_match_in_xml_and_json() {
    for (stem, days, rooms, talks, people) in [
        ("frab/39c3-himmel.schedule", 4, 5, 186, 274),
        ("frab/39c3-himmel3-empty.schedule", 4, 0, 0, 0),
        ("pretalx/democon.schedule", 3, 2, 35, 31),
    ] {
        let x = read(&format!("{stem}.xml"));
        let j = read(&format!("{stem}.json"));
        assert_eq!(x.format, Format::PentabarfXml);
        assert_eq!(j.format, Format::FrabJson);
        let (xc, jc) = (&x.conference, &j.conference);
        assert_eq!((xc.days.len(), xc.rooms.len(), xc.talks.len(), xc.people.len()), (days, rooms, talks, people), "{stem}.xml");
        assert_eq!(counts(xc), counts(jc), "{stem}: XML and JSON disagree");
        // Same talks, same instants, same titles, whichever format.
        let mut xs: Vec<_> = xc.talks.iter().map(|t| (&t.key, t.start, t.end, &t.title, &t.room)).collect();
        let mut js: Vec<_> = jc.talks.iter().map(|t| (&t.key, t.start, t.end, &t.title, &t.room)).collect();
        xs.sort();
        js.sort();
        assert_eq!(xs, js, "{stem}");
        assert_eq!(x.errors().count() + j.errors().count(), 0);
    }
}

#[test]
fn ccc_timezone_comes_from_the_file_and_after_midnight_stays_on_its_day() {
    let p = read("frab/39c3-himmel.schedule.xml");
    assert_eq!(p.conference.timezone, chrono_tz::Europe::Berlin);
    // Some talks start after midnight; they stay on the conference day they are listed under.
    let late: Vec<_> = p
        .conference
        .talks
        .iter()
        .filter(|t| chrono::Timelike::hour(&t.start.naive_local()) < 4)
        .collect();
    assert!(!late.is_empty(), "the 39C3 file has talks after midnight");
    for t in late {
        let day = p.conference.days.iter().find(|d| d.index == t.day).unwrap();
        assert_eq!(t.start.date_naive(), day.date.succ_opt().unwrap(), "{} is on day {}", t.key, t.day);
    }
}

#[test]
fn fosdem_2022_without_timezone_takes_the_configured_one() {
    let p = read("fosdem/fosdem-2022.xml");
    let welcome = p.conference.talks.iter().find(|t| t.key == "13549").unwrap();
    assert_eq!(welcome.title, "Welcome to FOSDEM 2022");
    assert_eq!(welcome.start.to_rfc3339(), "2022-02-05T09:00:00+01:00");
    assert_eq!(welcome.duration_minutes(), 20);
    let track = p.conference.track(welcome.track.as_deref().unwrap()).unwrap();
    assert_eq!(track.kind, stagehand::schedule::TrackKind::MainTrack);
    // Speakers keep their Pentabarf ids.
    assert_eq!(welcome.people.iter().map(|p| p.person.as_str()).collect::<Vec<_>>(), ["6", "497"]);
}

#[test]
fn malformed_conflict_markers_give_the_line() {
    let path = shared("fosdem/fosdem-2026.malformed-conflict-markers.xml");
    let bytes = std::fs::read(path).unwrap();
    let err = schedule::read("m.xml", &bytes, &ReadOptions::default()).unwrap_err();
    assert_eq!(err.line, Some(4053), "{err}");
    assert!(err.message.contains("conflict marker"), "{err}");
}

#[test]
fn conference_bot_fixtures_parse() {
    for f in [
        "conference-bot/fosdemformat.xml",
        "conference-bot/pentabarf01_overview.xml",
        "conference-bot/pentabarf02_withqa.xml",
        "conference-bot/pentabarf03_duplicate_talk.xml",
        "conference-bot/pentabarf04_unrecognised_prefix.xml",
        "conference-bot/pentabarf05_online_qa.xml",
        "conference-bot/physical-conf.xml",
    ] {
        let p = read(f);
        assert!(!p.conference.talks.is_empty(), "{f}");
        assert_eq!(p.errors().count(), 0, "{f}");
    }
}

#[test]
fn duplicate_talk_ids_are_kept_apart_and_reported() {
    let p = read("conference-bot/pentabarf03_duplicate_talk.xml");
    let keys: Vec<_> = p.conference.talks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["E001", "E001~2"]);
    let w = p.warnings().find(|w| w.message.contains("duplicate talk key")).expect("a warning");
    assert_eq!(w.talk.as_deref(), Some("E001~2"));
    assert_eq!(w.line, Some(30));
}

#[test]
fn online_qa_flag_from_the_tracks_list() {
    let p = read("conference-bot/pentabarf05_online_qa.xml");
    let qa: Vec<_> = p.conference.tracks.iter().map(|t| (t.name.as_str(), t.online_qa)).collect();
    assert!(qa.contains(&("TrackWithQA", Some(true))));
    assert!(qa.contains(&("TrackWithoutQA", Some(false))));
    assert!(p.warnings().any(|w| w.message.contains("UnspecifiedTrack")));
}

#[test]
fn inline_html_abstract_is_kept_as_text() {
    let p = read("conference-bot/physical-conf.xml");
    let t = &p.conference.talks[0];
    assert_eq!(t.abstract_text.as_deref(), Some("AnyConf welcome and opening talk."));
}

fn snapshots() -> Vec<schedule::Parsed> {
    ["2025-12-21", "2025-12-30", "2026-01-30", "2026-02-02"]
        .iter()
        .map(|d| read(&format!("fosdem/fosdem-2026.snapshot-{d}.xml")))
        .collect()
}

#[test]
fn talk_identity_is_stable_across_the_2026_snapshots() {
    let s = snapshots();
    for pair in s.windows(2) {
        let (a, b) = (&pair[0].conference, &pair[1].conference);
        // A talk present in both exports under the same Pentabarf id has the same key.
        for t in &a.talks {
            if let Some(u) = b.talks.iter().find(|u| u.id.is_some() && u.id == t.id) {
                assert_eq!(t.key, u.key, "talk id {:?} changed key", t.id);
            }
        }
    }
    let welcome: Vec<_> = s
        .iter()
        .map(|p| p.conference.talks.iter().find(|t| t.title == "Welcome to FOSDEM 2026").map(|t| t.key.clone()))
        .collect();
    assert!(welcome.iter().all(|k| k.is_some() && *k == welcome[0]), "{welcome:?}");
}

/// FOSDEM changed every event id between two 2024 exports and kept the guids: a derived pair (one 2026 snapshot with
/// every id rewritten) keeps every talk's key, and the diff sees no change.
#[test]
fn talk_identity_survives_every_id_changing() {
    let text = std::fs::read_to_string(shared("fosdem/fosdem-2026.snapshot-2026-02-02.xml")).unwrap();
    let rewritten = common::with_event_ids_rewritten(&text);
    let read = |t: &str| schedule::read("f.xml", t.as_bytes(), &ReadOptions::default()).unwrap().conference;
    let (a, b) = (read(&text), read(&rewritten));
    assert_eq!(a.talks.len(), b.talks.len());
    for (t, u) in a.talks.iter().zip(&b.talks) {
        assert_ne!(t.id, u.id, "the derived export changes every id");
        assert_eq!((&t.guid, &t.key), (&u.guid, &u.key), "talk {:?} -> {:?}", t.id, u.id);
    }
    assert_eq!(diff::diff(&a, &b), Vec::new());
}

#[test]
fn diff_reports_every_kind_of_change_on_consecutive_snapshots() {
    use diff::ChangeKind::*;
    let s = snapshots();
    let all: Vec<Vec<diff::Change>> = s.windows(2).map(|p| diff::diff(&p[0].conference, &p[1].conference)).collect();
    let count = |i: usize, k| all[i].iter().filter(|c| c.kind == k).count();
    // Numbers from running `stagehand diff` on the snapshots; each kind is checked on a real example below.
    assert_eq!((count(0, Added), count(0, Removed), count(0, Retitled)), (56, 1, 3));
    assert_eq!((count(2, Added), count(2, Removed), count(2, Moved)), (14, 5, 12));
    // Talk counts add up: old + added - removed = new.
    for (i, pair) in s.windows(2).enumerate() {
        assert_eq!(
            pair[0].conference.talks.len() + count(i, Added) - count(i, Removed),
            pair[1].conference.talks.len()
        );
    }
    let find = |i: usize, key: &str, k| {
        all[i].iter().find(|c| c.talk == key && c.kind == k).unwrap_or_else(|| panic!("{key} {k:?}")).clone()
    };
    let added = find(2, "06ce0ad4-d07f-5025-bf25-13386e06ec20", Added);
    assert_eq!(added.title, "SlimeVR Full Body Tracking BoF");
    let removed = find(2, "25c0ccd5-b2a6-551c-98ee-4fca07c078a8", Removed);
    assert!(removed.from.unwrap().contains("H.2215"));
    let moved = find(2, "3df399d4-f52c-5829-81af-55ae81916987", Moved);
    assert!(moved.from.unwrap().contains("UA4.228") && moved.to.unwrap().contains("UD2.119"));
    let retimed = find(2, "2ddceb2a-a68a-581d-9452-b818964e53f2", Retimed);
    assert!(retimed.from.unwrap().contains("12:20-12:35") && retimed.to.unwrap().contains("13:35-14:00"));
    let retitled = find(2, "0403cd6c-a161-5dbd-9092-bb7ba43c1024", Retitled);
    assert_eq!(retitled.to.as_deref(), Some("Self-hosting a student radio station"));
    let resp = find(2, "1fadaf9b-3cf1-58eb-8580-7874f47c9455", Respeakered);
    assert!(resp.to.unwrap().contains("Deleted User"));
    assert!(count(1, Retracked) > 0);
    // No change against itself.
    assert!(diff::diff(&s[3].conference, &s[3].conference).is_empty());
}
