//! Conferences and plans for the timeline's tests: a small hand-written one and the real FOSDEM 2022 schedule.

use std::path::PathBuf;

use crate::config::Config;
use crate::load::{LoadRequest, read_options};
use crate::plan::{self, Plan};
use crate::schedule::{self, Conference};

const CONFIG: &str = r#"
conference: {id: camp, timezone: Europe/Brussels}
homeserver: {server_name: example.org}
tracks:
  default_kind: other
  rules:
    - {kind: main_track, type: maintrack}
    - {kind: main_track, type: keynote}
    - {kind: devroom, type: devroom}
    - {kind: stand, type: standtrack}
    - {kind: stand, type: stand}
"#;

/// Two tracks: a live talk with a speaker and a host, a pre-recorded talk (Q&A at 11:05) right after it, and a
/// keynote in another track.
pub const SMALL: &str = r#"
conference: {id: camp, title: Camp, timezone: Europe/Brussels}
tracks:
  - {key: keynotes, name: Keynotes, kind: main_track}
  - {key: rust, name: Rust devroom, kind: devroom}
people:
  - {key: ada, name: Ada <Lovelace>, matrix: "@ada:example.org"}
  - {key: grace, name: Grace Hopper, matrix: "@grace:example.org"}
  - {key: linus, name: Linus}
talks:
  - {key: welcome, title: Welcome, track: keynotes, room: Janson, start: "2026-03-14 09:30", duration: 20m, speakers: [ada]}
  - {key: async, title: "Async & <Rust>", track: rust, room: H.1302, start: "2026-03-14 10:00", duration: 40m, speakers: [grace, linus], hosts: [ada]}
  - {key: recorded, title: Recorded, track: rust, room: H.1302, start: "2026-03-14 10:45", end: "2026-03-14 11:15", qa_start: "2026-03-14 11:05", speakers: [grace]}
"#;

pub fn config() -> Config {
    match Config::parse("t.yaml", CONFIG) {
        Ok((c, _)) => c,
        Err(e) => panic!("{e}"),
    }
}

fn read(name: &str, bytes: &[u8]) -> Conference {
    let config = config();
    let opts = read_options(&LoadRequest::default(), Some(&config), &config.schedule);
    let mut parsed = schedule::read(name, bytes, &opts).unwrap_or_else(|e| panic!("{e}"));
    parsed.validate(name);
    assert_eq!(parsed.errors().count(), 0, "{:?}", parsed.errors().collect::<Vec<_>>());
    parsed.conference
}

pub fn small() -> (Conference, Plan) {
    let conf = read("small.yaml", SMALL.as_bytes());
    let plan = plan::plan(&conf, &config());
    (conf, plan)
}

pub fn fosdem_2022() -> (Conference, Plan) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/schedules/fosdem/fosdem-2022.xml");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let conf = read("fosdem-2022.xml", &bytes);
    let plan = plan::plan(&conf, &config());
    (conf, plan)
}

/// A plan for a changed conference, with the same config.
pub fn replan(conf: &Conference) -> Plan {
    plan::plan(conf, &config())
}
