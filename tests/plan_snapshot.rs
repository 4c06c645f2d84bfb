//! The plan of a small hand-written conference, with each room's full planned state, as a reviewed snapshot.

use stagehand::config::Config;
use stagehand::plan::{self, state};
use stagehand::schedule::{self, ReadOptions};

#[derive(serde::Serialize)]
struct RoomSnapshot {
    key: String,
    kind: plan::ObjectKind,
    alias: String,
    parent: Option<String>,
    order: String,
    state: Vec<(String, String, serde_json::Value)>,
    power_levels: serde_json::Value,
}

#[test]
fn plan_of_the_example_conference() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schedules/example.yaml")).unwrap();
    let parsed = schedule::read("example.yaml", text.as_bytes(), &ReadOptions::default()).unwrap();
    let (config, _) = Config::parse(
        "c.yaml",
        "conference: {id: matrixcamp-2026}\nhomeserver: {server_name: example.org, room_version: \"12\"}\n",
    )
    .unwrap();
    let p = plan::plan(&parsed.conference, &config);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let rooms: Vec<RoomSnapshot> = p
        .rooms
        .iter()
        .map(|r| RoomSnapshot {
            key: r.key.clone(),
            kind: r.kind,
            alias: r.alias.clone(),
            parent: r.parent.clone(),
            order: r.order.clone(),
            state: state::room_state(&p.conference, r)
                .into_iter()
                .map(|s| (s.event_type, s.state_key, s.content))
                .collect(),
            power_levels: state::power_levels(r, "12", "@stagehand:example.org"),
        })
        .collect();
    insta::assert_yaml_snapshot!(rooms);
}
