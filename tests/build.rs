//! Building a conference on a real Synapse (relaxed rate limits), checked by an independent plain HTTP client:
//! the space hierarchy, names, aliases, join rules, power levels and order; a rerun that writes nothing; room
//! versions 11 and 12; schedule changes between FOSDEM 2026 snapshots; a bot killed mid-build.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};

use common::proxy::Proxy;
use common::{Api, User, enc, synapse};
use serde_json::Value;
use stagehand::config::Config;
use stagehand::matrix::client::{Credentials, Homeserver};
use stagehand::matrix::reconcile::{Options, Report, Status, reconcile};
use stagehand::plan::{self, ObjectKind, Plan};
use stagehand::schedule::{self, Conference, ReadOptions};

fn config(id: &str, version: &str, extra: &str) -> Config {
    let yaml = format!(
        "conference: {{id: {id}, timezone: Europe/Brussels}}\nhomeserver: {{server_name: localhost, room_version: \"{version}\", concurrency: 4}}\n{extra}"
    );
    Config::parse("test.yaml", &yaml).unwrap().0
}

fn example() -> Conference {
    let text = std::fs::read(common::root().join("schedules/example.yaml")).unwrap();
    schedule::read("example.yaml", &text, &ReadOptions::default()).unwrap().conference
}

/// A bot user and its connection, through a counting proxy of its own.
async fn bot(name: &str) -> (User, Homeserver, Proxy) {
    let s = synapse();
    let user = s.register(name, false);
    let proxy = Proxy::start(&s.url);
    let hs = Homeserver::connect(&proxy.url, &Credentials::AccessToken(user.token.clone())).await.unwrap();
    (user, hs, proxy)
}

async fn build(hs: &Homeserver, plan: &Plan, version: &str) -> Report {
    let report = reconcile(hs, plan, &Options { room_version: version.into(), concurrency: 4, dry_run: false, kick_removed: false, widgets: None, invite: false, max_cancel: None, identity_server: None, scope: Default::default() }).await;
    let failed: Vec<_> = report.objects.iter().filter(|o| matches!(o.status, Status::Failed { .. } | Status::Foreign { .. })).collect();
    assert!(failed.is_empty(), "{failed:?}");
    report
}

/// Walks the hierarchy from the root space with a plain HTTP client, following `next_batch`.
async fn walk(api: &Api, root: &str) -> (Vec<Value>, usize) {
    let mut rooms = Vec::new();
    let mut from: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/_matrix/client/v1/rooms/{}/hierarchy?limit=5", enc(root));
        if let Some(f) = &from {
            path.push_str(&format!("&from={}", enc(f)));
        }
        let (status, body) = api.get(&path).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        rooms.extend(body["rooms"].as_array().cloned().unwrap_or_default());
        match body["next_batch"].as_str() {
            Some(n) => from = Some(n.to_string()),
            None => break,
        }
    }
    (rooms, pages)
}

async fn resolve(api: &Api, alias: &str) -> Option<String> {
    let (status, body) = api.get(&format!("/_matrix/client/v3/directory/room/{}", enc(alias))).await;
    (status == 200).then(|| body["room_id"].as_str().unwrap().to_string())
}

/// (type, state_key) -> event id of every state event of every room: equal before and after means no writes.
async fn state_ids(api: &Api, room_ids: &[String]) -> BTreeMap<(String, String, String), String> {
    let mut out = BTreeMap::new();
    for id in room_ids {
        let (status, body) = api.get(&format!("/_matrix/client/v3/rooms/{}/state", enc(id))).await;
        assert_eq!(status, 200);
        for ev in body.as_array().unwrap() {
            out.insert(
                (id.clone(), ev["type"].as_str().unwrap().into(), ev["state_key"].as_str().unwrap().into()),
                ev["event_id"].as_str().unwrap().into(),
            );
        }
    }
    out
}

/// Rooms the user is in that carry this conference's locator, by locator key.
async fn rooms_by_locator(api: &Api, conference: &str) -> HashMap<String, Vec<String>> {
    let (_, joined) = api.get("/_matrix/client/v3/joined_rooms").await;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for id in joined["joined_rooms"].as_array().unwrap() {
        let id = id.as_str().unwrap();
        let (status, loc) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/org.stagehand.locator/", enc(id))).await;
        if status == 200 && loc["conference"] == conference {
            out.entry(loc["key"].as_str().unwrap().to_string()).or_default().push(id.to_string());
        }
    }
    out
}

async fn check_against_plan(api: &Api, plan: &Plan, version: &str, bot: &str) {
    let root_id = resolve(api, &plan.rooms[0].alias).await.expect("root alias");
    let (rooms, pages) = walk(api, &root_id).await;
    assert!(pages > 1, "the walk must page (limit=5)");
    let by_id: HashMap<&str, &Value> = rooms.iter().map(|r| (r["room_id"].as_str().unwrap(), r)).collect();
    assert_eq!(by_id.len(), rooms.len(), "a room listed twice in the hierarchy");
    assert_eq!(rooms.len(), plan.rooms.len(), "hierarchy has {} rooms, plan {}", rooms.len(), plan.rooms.len());
    let mut ids: HashMap<&str, String> = HashMap::new();
    for planned in &plan.rooms {
        let id = resolve(api, &planned.alias).await.unwrap_or_else(|| panic!("{} missing", planned.alias));
        let r = by_id.get(id.as_str()).unwrap_or_else(|| panic!("{} not in the hierarchy", planned.key));
        assert_eq!(r["name"], planned.name.as_str(), "{}", planned.key);
        assert_eq!(r["canonical_alias"], planned.alias.as_str());
        assert_eq!(r["join_rule"], if planned.public { "public" } else { "invite" }, "{}", planned.key);
        assert_eq!(r["room_type"].as_str() == Some("m.space"), planned.kind.is_space(), "{}", planned.key);
        let (_, create) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.create/", enc(&id))).await;
        assert_eq!(create["room_version"], version);
        let (_, pl) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.power_levels/", enc(&id))).await;
        assert_eq!(pl["events"]["im.vector.modular.widgets"], 100, "moderators cannot touch widgets");
        // Room version 12: the creator has unlimited power and must not be listed.
        assert_eq!(pl["users"].get(bot).is_some(), version != "12", "{}: {pl}", planned.key);
        same_power_levels(&pl, &stagehand::plan::state::power_levels(planned, version, bot), &planned.key);
        ids.insert(planned.key.as_str(), id);
    }
    // Order and parent links, as the spaces list them.
    for space in plan.rooms.iter().filter(|r| r.kind.is_space()) {
        let children = &by_id[ids[space.key.as_str()].as_str()]["children_state"];
        let listed: HashMap<&str, &str> = children
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["state_key"].as_str().unwrap(), c["content"]["order"].as_str().unwrap_or("")))
            .collect();
        let planned: Vec<_> = plan.children(&space.key).collect();
        assert_eq!(listed.len(), planned.len(), "children of {}", space.key);
        for child in planned {
            assert_eq!(listed.get(ids[child.key.as_str()].as_str()), Some(&child.order.as_str()), "{}", child.key);
            let (status, parent) = api
                .get(&format!("/_matrix/client/v3/rooms/{}/state/m.space.parent/{}", enc(&ids[child.key.as_str()]), enc(&ids[space.key.as_str()])))
                .await;
            // Subspaces name the root; rooms in a space do not (`rooms.parent_links: spaces`, the default).
            if plan.carries_parent_link(child) {
                assert_eq!(status, 200, "{} has no parent link", child.key);
                assert_eq!(parent["canonical"], true);
            } else {
                assert_eq!(status, 404, "{} names its space: {parent}", child.key);
            }
        }
    }
}

/// The power levels on the server are the plan's, in full: every planned key and event level, and exactly the
/// planned users; Synapse may add only what the plan leaves to it (an event type the plan does not name, the
/// `notifications` and `historical` levels), never a different value.
fn same_power_levels(server: &Value, planned: &Value, room: &str) {
    let (Some(server), Some(planned)) = (server.as_object(), planned.as_object()) else { panic!("{room}: {server}") };
    for (key, want) in planned {
        match key.as_str() {
            "events" => {
                for (event, level) in want.as_object().unwrap() {
                    assert_eq!(server["events"].get(event), Some(level), "{room}: events.{event}");
                }
            }
            _ => assert_eq!(server.get(key), Some(want), "{room}: {key}"),
        }
    }
    let users = server.get("users").and_then(Value::as_object).map(|u| u.len()).unwrap_or(0);
    let planned_users = planned.get("users").and_then(Value::as_object).map(|u| u.len()).unwrap_or(0);
    assert_eq!(users, planned_users, "{room}: users {:?} against {:?}", server.get("users"), planned.get("users"));
    let left_to_synapse: Vec<&String> = server.keys().filter(|k| !planned.contains_key(*k) && *k != "users").collect();
    assert!(left_to_synapse.iter().all(|k| *k == "notifications" || *k == "historical"), "{room}: {left_to_synapse:?}");
}

async fn build_twice(version: &str) {
    let conf_id = format!("camp-v{version}");
    let (user, hs, proxy) = bot(&format!("bot-v{version}")).await;
    let api = Api::new(&synapse().url, &user.token);
    let plan = plan::plan(&example(), &config(&conf_id, version, ""));
    let first = build(&hs, &plan, version).await;
    assert_eq!(first.created, plan.rooms.len());
    check_against_plan(&api, &plan, version, &user.user_id).await;

    let ids: Vec<String> = rooms_by_locator(&api, &conf_id).await.into_values().flatten().collect();
    let before = state_ids(&api, &ids).await;
    assert_eq!(proxy.succeeded("createRoom"), plan.rooms.len(), "{:?}", proxy.counts());
    let hs2 = Homeserver::connect(&proxy.url, &Credentials::AccessToken(user.token.clone())).await.unwrap();
    proxy.reset();
    let second = build(&hs2, &plan, version).await;
    proxy.assert_no_writes("a rerun");
    assert_eq!(second.unchanged, plan.rooms.len());
    assert_eq!(state_ids(&api, &ids).await, before, "the rerun changed state");
    // The config's room version changes later: existing rooms keep their own version's power levels.
    let other = if version == "12" { "11" } else { "12" };
    build(&hs2, &plan, other).await;
    proxy.assert_no_writes("a rerun with another configured room version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_on_room_version_12_and_rerun_writes_nothing() {
    build_twice("12").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_on_room_version_11_and_rerun_writes_nothing() {
    build_twice("11").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_lists_what_would_change_and_writes_nothing() {
    let (user, hs, proxy) = bot("bot-dry").await;
    let conf = example();
    let cfg = config("camp-dry", "12", "");
    let plan = plan::plan(&conf, &cfg);
    let dry = reconcile(&hs, &plan, &Options { room_version: "12".into(), concurrency: 4, dry_run: true, kick_removed: false, widgets: None, invite: false, max_cancel: None, identity_server: None, scope: Default::default() }).await;
    assert_eq!(dry.created, plan.rooms.len());
    proxy.assert_no_writes("a dry run on an empty server");
    build(&hs, &plan, "12").await;
    proxy.reset();
    // Retitle a talk: the dry run shows exactly the fields that differ.
    let mut changed = conf.clone();
    changed.talks.iter_mut().find(|t| t.key == "rust-async").unwrap().title = "Async Rust, tears included".into();
    let plan2 = plan::plan(&changed, &cfg);
    let dry = reconcile(&hs, &plan2, &Options { room_version: "12".into(), concurrency: 4, dry_run: true, kick_removed: false, widgets: None, invite: false, max_cancel: None, identity_server: None, scope: Default::default() }).await;
    let updated: Vec<_> = dry.objects.iter().filter(|o| matches!(o.status, Status::Update { .. })).collect();
    assert_eq!(updated.len(), 1, "{updated:?}");
    let Status::Update { changes } = &updated[0].status else { unreachable!() };
    let types: HashSet<&str> = changes.iter().map(|c| c.event_type.as_str()).collect();
    assert_eq!(types, HashSet::from(["m.room.name", "m.room.topic"]));
    proxy.assert_no_writes("a dry run with a retitled talk");
    let api = Api::new(&synapse().url, &user.token);
    let id = resolve(&api, &updated[0].alias).await.unwrap();
    let (_, name) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.name/", enc(&id))).await;
    assert_eq!(name["name"], "Async Rust without tears", "a dry run must not write");

    // Someone takes the public root space out of the room directory: the next run lists it again, once.
    let root = plan.rooms.iter().find(|r| r.parent.is_none()).unwrap();
    assert!(root.public);
    let root_id = resolve(&api, &root.alias).await.unwrap();
    let path = format!("/_matrix/client/v3/directory/list/room/{}", enc(&root_id));
    assert_eq!(api.get(&path).await.1["visibility"], "public");
    let (status, _) = api.put(&path, &serde_json::json!({"visibility": "private"})).await;
    assert_eq!(status, 200);
    let report = build(&hs, &plan, "12").await;
    let fixed = report.objects.iter().find(|o| o.key == root.key).unwrap();
    assert!(matches!(&fixed.status, Status::Update { changes } if changes.iter().any(|c| c.event_type == "directory")), "{fixed:?}");
    assert_eq!(api.get(&path).await.1["visibility"], "public");
    proxy.reset();
    build(&hs, &plan, "12").await;
    proxy.assert_no_writes("the run after the directory was fixed");
}

/// A subset of a FOSDEM 2026 snapshot: the tracks of the talks that change between the last two exports.
fn fosdem_subset(file: &str, tracks: &[&str]) -> Conference {
    let path = common::root().join("../shared/schedules/fosdem").join(file);
    let bytes = std::fs::read(path).unwrap();
    subset(schedule::read(file, &bytes, &ReadOptions::default()).unwrap().conference, tracks)
}

/// Only these tracks (by key) and their talks; all of them when `tracks` is empty.
fn subset(mut c: Conference, tracks: &[&str]) -> Conference {
    if tracks.is_empty() {
        return c;
    }
    c.tracks.retain(|t| tracks.contains(&t.key.as_str()));
    c.talks.retain(|t| t.track.as_deref().is_some_and(|k| tracks.contains(&k)));
    c
}

/// FOSDEM changed every event id between two 2024 exports and kept the guids. A derived pair (two small tracks of a
/// 2026 snapshot, then the same with every id rewritten) builds onto the same rooms: nothing created, nothing
/// cancelled, nothing written, as counted by the requests that reached Synapse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talk_identity_survives_every_id_changing() {
    let (user, hs, proxy) = bot("bot-ids").await;
    let api = Api::new(&synapse().url, &user.token);
    let file = "fosdem-2026.snapshot-2026-02-02.xml";
    let text = std::fs::read_to_string(common::root().join("../shared/schedules/fosdem").join(file)).unwrap();
    let read = |t: &str| schedule::read(file, t.as_bytes(), &ReadOptions::default()).unwrap().conference;
    let full = read(&text);
    let tracks: Vec<String> = full.tracks.iter().filter(|t| t.name == "Plan 9" || t.name == "FPGA and VLSI").map(|t| t.key.clone()).collect();
    let tracks: Vec<&str> = tracks.iter().map(String::as_str).collect();
    let before = subset(full.clone(), &tracks);
    let after = subset(read(&common::with_event_ids_rewritten(&text)), &tracks);
    assert_eq!(before.talks.len(), 8);
    assert!(before.talks.iter().zip(&after.talks).all(|(t, u)| t.id != u.id && t.guid == u.guid), "every id changes, no guid");
    let cfg = config("fosdem-ids", "12", "");
    let (plan_a, plan_b) = (plan::plan(&before, &cfg), plan::plan(&after, &cfg));
    build(&hs, &plan_a, "12").await;
    assert_eq!(proxy.succeeded("createRoom"), plan_a.rooms.len());
    let rooms = rooms_by_locator(&api, "fosdem-ids").await;
    proxy.reset();
    let report = build(&hs, &plan_b, "12").await;
    proxy.assert_no_writes("the build after every id changed");
    assert_eq!((report.created, report.cancelled, report.unchanged), (0, 0, plan_b.rooms.len()), "{}", report.summary());
    assert_eq!(rooms_by_locator(&api, "fosdem-ids").await, rooms, "the same rooms, each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_change_between_fosdem_2026_snapshots() {
    let (user, hs, proxy) = bot("bot-fosdem").await;
    let api = Api::new(&synapse().url, &user.token);
    let a_conf = fosdem_subset("fosdem-2026.snapshot-2026-01-30.xml", &[]);
    // The tracks holding a moved, a retimed, a retitled and a removed talk.
    let keys = ["3df399d4-f52c-5829-81af-55ae81916987", "2ddceb2a-a68a-581d-9452-b818964e53f2", "0403cd6c-a161-5dbd-9092-bb7ba43c1024", "25c0ccd5-b2a6-551c-98ee-4fca07c078a8"];
    let tracks: Vec<String> = keys.iter().filter_map(|k| a_conf.talks.iter().find(|t| t.key == *k)?.track.clone()).collect();
    let tracks: Vec<&str> = tracks.iter().map(String::as_str).collect();
    assert_eq!(tracks.len(), 4, "{tracks:?}");
    let a = fosdem_subset("fosdem-2026.snapshot-2026-01-30.xml", &tracks);
    let b = fosdem_subset("fosdem-2026.snapshot-2026-02-02.xml", &tracks);
    let cfg = config("fosdem-2026-sub", "12", "");
    let (plan_a, plan_b) = (plan::plan(&a, &cfg), plan::plan(&b, &cfg));
    build(&hs, &plan_a, "12").await;
    let talk_alias = |p: &Plan, key: &str| p.rooms.iter().find(|r| r.key == format!("talk/{key}")).map(|r| r.alias.clone());
    let mut before: HashMap<&str, String> = HashMap::new();
    for k in keys {
        before.insert(k, resolve(&api, &talk_alias(&plan_a, k).unwrap()).await.unwrap());
    }

    let report = build(&hs, &plan_b, "12").await;
    assert!(report.updated > 0 && report.cancelled >= 1, "{}", report.summary());
    check_against_plan(&api, &plan_b, "12", &user.user_id).await;
    // Moved, retimed and retitled talks keep their room: updated in place.
    for k in &keys[..3] {
        assert_eq!(resolve(&api, &talk_alias(&plan_b, k).unwrap()).await.as_ref(), Some(&before[k]), "{k}");
    }
    let retitled = &before[keys[2]];
    let (_, name) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.name/", enc(retitled))).await;
    assert_eq!(name["name"], "Self-hosting a student radio station");
    let moved = &before[keys[0]];
    let (_, topic) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.topic/", enc(moved))).await;
    assert!(topic["topic"].as_str().unwrap().contains("UD2.119"), "{topic}");
    // The removed talk's room is kept, marked and out of the space.
    let gone = &before[keys[3]];
    let (status, loc) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/org.stagehand.locator/", enc(gone))).await;
    assert_eq!((status, &loc["cancelled"]), (200, &Value::Bool(true)));
    let (_, name) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.name/", enc(gone))).await;
    assert!(name["name"].as_str().unwrap().starts_with("Cancelled: "));
    // And the next run has nothing to do.
    proxy.reset();
    build(&hs, &plan_b, "12").await;
    proxy.assert_no_writes("the run after the schedule change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_build_converges_without_duplicates() {
    let s = synapse();
    let user = s.register("bot-kill", false);
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = common::write(
        dir.path(),
        "c.yaml",
        // The sample's talks are over by now; with rooms never opened after a talk, the plan is the pre-event one.
        "conference: {id: camp-kill}\nhomeserver: {server_name: localhost, concurrency: 1}\nschedule: {source: schedules/example.yaml}\npeople: {invite: false}\ntimeline: {actions: {open_room: {enabled: false}}}\n",
    );
    let proxy = Proxy::start(&s.url);
    // Right after a createRoom (before any state event that follows it), after more rooms, right after the first
    // subspace was made (the 14 rooms in spaces and the support rooms come first, then the root that lists the
    // support rooms, then the subspaces that list their rooms; concurrency 1): its link into the root not yet
    // written; then after a state write.
    for point in ["create:1", "create:4", "create:11", "state:1"] {
        common::apply_killed_at(point, &cfg_path, &user.token, &proxy.url);
    }
    let apply = || common::stagehand_json(&["apply", "--json"], &cfg_path, &proxy.url, &user.token);
    apply();
    let api = Api::new(&s.url, &user.token);
    let found = rooms_by_locator(&api, "camp-kill").await;
    let plan = plan::plan(&example(), &Config::from_file(&cfg_path).unwrap().0);
    assert_eq!(found.len(), plan.rooms.len());
    for (key, ids) in &found {
        assert_eq!(ids.len(), 1, "{key} exists {} times", ids.len());
    }
    // Over the four killed runs and the last one, Synapse made each planned room once.
    assert_eq!(proxy.succeeded("createRoom"), plan.rooms.len(), "{:?}", proxy.counts());
    check_against_plan(&api, &plan, "12", &user.user_id).await;
    proxy.reset();
    apply();
    proxy.assert_no_writes("the run after the killed ones converged");
    assert!(plan.rooms.iter().any(|r| r.kind == ObjectKind::TalkRoom));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_login_keeps_its_session_and_reuses_the_device() {
    let s = synapse();
    s.register("bot-pw", false);
    let dir = tempfile::tempdir().unwrap();
    let session_file = dir.path().join("session.json");
    let creds = Credentials::Password { user: "bot-pw".into(), password: "pw-bot-pw".into(), session_file: session_file.clone() };
    let first = Homeserver::connect(&s.url, &creds).await.unwrap();
    assert_eq!(first.user_id, "@bot-pw:localhost");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&session_file).unwrap()).unwrap();
    let device = saved["device_id"].as_str().unwrap().to_string();
    // A restart: same session file, no new login, the same device.
    let _second = Homeserver::connect(&s.url, &creds).await.unwrap();
    let api = Api::new(&s.url, saved["access_token"].as_str().unwrap());
    let (_, devices) = api.get("/_matrix/client/v3/devices").await;
    let ids: Vec<&str> = devices["devices"].as_array().unwrap().iter().map(|d| d["device_id"].as_str().unwrap()).collect();
    assert!(ids.contains(&device.as_str()), "{ids:?}");
    let (_, who) = api.get("/_matrix/client/v3/account/whoami").await;
    assert_eq!(who["device_id"], device.as_str());
    // Only the test harness's registration login and ours: the restart did not log in again.
    assert!(ids.len() <= 2, "{ids:?}");
    // The session is logged out elsewhere: the next start notices, logs in again and keeps the new session.
    let (status, _) = api.post("/_matrix/client/v3/logout", &serde_json::json!({})).await;
    assert_eq!(status, 200);
    let third = Homeserver::connect(&s.url, &creds).await.unwrap();
    assert!(third.resolve_alias("#nothing-here:localhost").await.is_ok(), "the new session works");
    let renewed: Value = serde_json::from_str(&std::fs::read_to_string(&session_file).unwrap()).unwrap();
    assert_ne!(renewed["access_token"], saved["access_token"]);
}

fn widget_ctx(conference: &str, bot: &str) -> stagehand::plan::widgets::WidgetContext {
    let mut config = stagehand::config::WidgetsConfig::default();
    config.jitsi_domain = "jitsi.example.org".into();
    config.jitsi_auth = Some("openidtoken-jwt".into());
    config.livestream_url = Some("https://stream.example.org/{conference}/{track}.m3u8".into());
    stagehand::plan::widgets::WidgetContext { conference: conference.into(), bot: bot.into(), config, secret: b"test-secret".to_vec() }
}

/// Widget state events (type -> content) of a room, and its layout.
async fn widgets_of(api: &Api, room_id: &str) -> (HashMap<String, Value>, Value) {
    let (_, state) = api.get(&format!("/_matrix/client/v3/rooms/{}/state", enc(room_id))).await;
    let mut widgets = HashMap::new();
    let mut layout = Value::Null;
    for ev in state.as_array().unwrap() {
        match ev["type"].as_str().unwrap() {
            "im.vector.modular.widgets" if ev["content"].as_object().is_some_and(|o| !o.is_empty()) => {
                widgets.insert(ev["state_key"].as_str().unwrap().to_string(), ev["content"].clone());
            }
            "io.element.widgets.layout" => layout = ev["content"].clone(),
            _ => {}
        }
    }
    (widgets, layout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widgets_and_layouts_are_planned_reconciled_and_updated_in_place() {
    let (user, hs, proxy) = bot("bot-widgets").await;
    let api = Api::new(&synapse().url, &user.token);
    let conf = example();
    let cfg = config("camp-widgets", "12", "");
    let opts = Options {
        room_version: "12".into(),
        concurrency: 4,
        dry_run: false,
        kick_removed: false,
        widgets: Some(widget_ctx("camp-widgets", &user.user_id)),
        invite: false,
        max_cancel: None,
        identity_server: None,
        scope: Default::default(),
    };
    let plan = plan::plan(&conf, &cfg);
    let first = reconcile(&hs, &plan, &opts).await;
    assert_eq!(first.failed, 0, "{}", first.summary());
    let ctx = widget_ctx("camp-widgets", &user.user_id);
    for room in &plan.rooms {
        let id = resolve(&api, &room.alias).await.unwrap();
        let (widgets, layout) = widgets_of(&api, &id).await;
        let planned: Vec<_> = stagehand::plan::widgets::widgets(room, &ctx);
        let planned_ids: HashSet<&str> =
            planned.iter().filter(|w| w.event_type == "im.vector.modular.widgets").map(|w| w.state_key.as_str()).collect();
        let got: HashSet<&str> = widgets.keys().map(String::as_str).collect();
        assert_eq!(got, planned_ids, "{}", room.key);
        match room.kind {
            ObjectKind::TalkRoom | ObjectKind::Backstage => {
                let jitsi = widgets.values().find(|w| w["type"] == "jitsi").expect("a jitsi widget");
                assert_eq!(jitsi["data"]["domain"], "jitsi.example.org");
                assert_eq!(jitsi["data"]["auth"], "openidtoken-jwt");
                let cid = jitsi["data"]["conferenceId"].as_str().unwrap();
                assert!(cid.len() >= 32 && !cid.contains(&room.key), "unguessable: {cid}");
                // Jitsi on top, the others beside it.
                assert_eq!(layout["widgets"][jitsi["id"].as_str().unwrap()]["container"], "top");
                assert_eq!(layout["widgets"][jitsi["id"].as_str().unwrap()]["index"], 0);
                assert_eq!(layout["widgets"].as_object().unwrap().len(), 3);
                let qa = widgets.values().find(|w| w["url"].as_str().unwrap().contains("/qa/")).unwrap();
                assert!(qa["url"].as_str().unwrap().contains("token="), "backstage pages carry a token");
            }
            ObjectKind::TrackRoom => {
                assert_eq!(widgets.len(), 2, "schedule and livestream");
                assert!(widgets.values().any(|w| w["data"]["hls"] == format!("https://stream.example.org/camp-widgets/{}.m3u8", room.track.as_deref().unwrap())));
            }
            _ => assert!(widgets.is_empty() && layout.is_null(), "{}", room.key),
        }
        let (_, pl) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.power_levels/", enc(&id))).await;
        assert_eq!(pl["events"]["im.vector.modular.widgets"], 100);
        assert_eq!(pl["events"]["io.element.widgets.layout"], 100);
    }
    proxy.reset();
    reconcile(&hs, &plan, &opts).await;
    proxy.assert_no_writes("a rerun with widgets");

    // Rename a talk: its widgets change in place, same ids, none added.
    let mut renamed = conf.clone();
    renamed.talks.iter_mut().find(|t| t.key == "rust-async").unwrap().title = "Async Rust, tears included".into();
    let plan2 = plan::plan(&renamed, &cfg);
    let room = plan2.rooms.iter().find(|r| r.key == "talk/rust-async").unwrap();
    let id = resolve(&api, &room.alias).await.unwrap();
    let (before, _) = widgets_of(&api, &id).await;
    let report = reconcile(&hs, &plan2, &opts).await;
    assert_eq!(report.failed, 0);
    let (after, _) = widgets_of(&api, &id).await;
    assert_eq!(before.keys().collect::<HashSet<_>>(), after.keys().collect::<HashSet<_>>(), "same widget ids");
    let qa = after.values().find(|w| w["url"].as_str().unwrap().contains("/qa/")).unwrap();
    assert_eq!(qa["name"], "Q&A: Async Rust, tears included");
    let jitsi = after.values().find(|w| w["type"] == "jitsi").unwrap();
    let jitsi_before = before.values().find(|w| w["type"] == "jitsi").unwrap();
    assert_eq!(jitsi["data"]["conferenceId"], jitsi_before["data"]["conferenceId"], "the call stays where it is");
    // Livestream switched off: its widget is removed, the schedule stays.
    let mut no_stream = opts.clone();
    if let Some(w) = no_stream.widgets.as_mut() {
        w.config.livestream_url = None;
    }
    reconcile(&hs, &plan2, &no_stream).await;
    let track = resolve(&api, &plan2.rooms.iter().find(|r| r.key == "track/rust").unwrap().alias).await.unwrap();
    let (widgets, layout) = widgets_of(&api, &track).await;
    assert_eq!(widgets.len(), 1);
    assert_eq!(layout["widgets"].as_object().unwrap().len(), 1);
    proxy.reset();
    reconcile(&hs, &plan2, &no_stream).await;
    proxy.assert_no_writes("a rerun without the livestream");
    // A key the config drops goes away (widget content is compared exactly).
    let mut no_auth = no_stream.clone();
    if let Some(w) = no_auth.widgets.as_mut() {
        w.config.jitsi_auth = None;
    }
    reconcile(&hs, &plan2, &no_auth).await;
    let (after, _) = widgets_of(&api, &id).await;
    assert!(after.values().find(|w| w["type"] == "jitsi").unwrap()["data"].get("auth").is_none());
    // Widgets switched off: ours and the layout are removed.
    let mut off = no_auth.clone();
    if let Some(w) = off.widgets.as_mut() {
        w.config.enabled = false;
    }
    reconcile(&hs, &plan2, &off).await;
    let (widgets, layout) = widgets_of(&api, &id).await;
    assert!(widgets.is_empty(), "{widgets:?}");
    assert!(layout.as_object().is_none_or(|o| o.is_empty()), "{layout}");
    proxy.reset();
    reconcile(&hs, &plan2, &off).await;
    proxy.assert_no_writes("a rerun with widgets off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_schedule_does_not_cancel_the_conference() {
    let (user, hs, _proxy) = bot("bot-mass").await;
    let api = Api::new(&synapse().url, &user.token);
    let conf = example();
    let cfg = config("camp-mass", "12", "");
    let plan = plan::plan(&conf, &cfg);
    build(&hs, &plan, "12").await;
    // The export came back with its tracks but without talks (a server in maintenance).
    let mut empty = conf.clone();
    empty.talks.clear();
    let plan_empty = plan::plan(&empty, &cfg);
    let opts = Options { room_version: "12".into(), concurrency: 4, dry_run: false, kick_removed: false, widgets: None, invite: false, max_cancel: Some(2), identity_server: None, scope: Default::default() };
    let report = reconcile(&hs, &plan_empty, &opts).await;
    assert_eq!(report.cancelled, 0, "{}", report.summary());
    assert!(report.failed >= 6, "each refused cancellation is reported: {}", report.summary());
    let talk = resolve(&api, &plan.rooms.iter().find(|r| r.key == "talk/welcome").unwrap().alias).await.unwrap();
    let (_, name) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.name/", enc(&talk))).await;
    assert_eq!(name["name"], "Welcome to Matrix Camp", "not renamed Cancelled");
    // Nor taken out of its space: a refused (or failed) cancellation leaves the room where the next run finds it.
    let room = plan.rooms.iter().find(|r| r.key == "talk/welcome").unwrap();
    let space = resolve(&api, &plan.rooms.iter().find(|r| Some(&r.key) == room.parent.as_ref()).unwrap().alias).await.unwrap();
    let (status, link) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/m.space.child/{}", enc(&space), enc(&talk))).await;
    assert_eq!(status, 200);
    assert!(link.as_object().is_some_and(|o| !o.is_empty()), "still linked: {link}");
    // With the limit raised (the organiser confirms), the same run marks and unlinks them.
    let report = reconcile(&hs, &plan_empty, &Options { max_cancel: Some(100), ..opts }).await;
    assert!(report.cancelled >= 6, "{}", report.summary());
    let (_, name) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.name/", enc(&talk))).await;
    assert!(name["name"].as_str().unwrap().starts_with("Cancelled: "), "{name}");
    let (_, link) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/m.space.child/{}", enc(&space), enc(&talk))).await;
    assert!(link.as_object().is_some_and(|o| o.is_empty()), "unlinked: {link}");
}

/// A reconcile during the event (an organiser's `apply`, the runner's refresh) asks for the moment only once it has
/// read the rooms: a talk room the runner opened (or a call it maximised) while the reconcile was reading is judged
/// by a moment that includes it, never taken back by a moment from before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_takes_the_moment_after_reading_the_rooms_and_keeps_what_the_runner_did() {
    use stagehand::matrix::reconcile::{Moment, reconcile_at};
    let (user, hs, proxy) = bot("bot-moment").await;
    let api = Api::new(&synapse().url, &user.token);
    let conf = example();
    let plan = plan::plan(&conf, &config("camp-moment", "12", ""));
    build(&hs, &plan, "12").await;
    let talk = plan.rooms.iter().find(|r| r.kind == ObjectKind::TalkRoom).expect("a talk room");
    let id = resolve(&api, &talk.alias).await.unwrap();
    // The runner opens the talk room (its join rule and history) while the reconcile below is under way.
    for (ty, content) in [("m.room.join_rules", serde_json::json!({"join_rule": "public"})), ("m.room.history_visibility", serde_json::json!({"history_visibility": "shared"}))] {
        let (status, body) = api.put(&format!("/_matrix/client/v3/rooms/{}/state/{ty}/", enc(&id)), &content).await;
        assert_eq!(status, 200, "{body}");
    }
    proxy.reset();
    let reads = |p: &Proxy| p.seen().iter().filter(|s| s.kind == "GET room").count();
    let asked = std::sync::Mutex::new(None);
    let report = reconcile_at(&hs, &plan, &Options { room_version: "12".into(), concurrency: 4, dry_run: false, kick_removed: false, widgets: None, invite: false, max_cancel: None, identity_server: None, scope: Default::default() }, || {
        *asked.lock().unwrap() = Some(reads(&proxy));
        Moment { open: [talk.key.clone()].into(), open_join_rule: "public".into(), open_history: "shared".into(), ..Moment::default() }
    })
    .await;
    assert_eq!(report.failed, 0, "{}", report.summary());
    let at_moment = asked.lock().unwrap().expect("the moment was asked for");
    assert!(at_moment > 0 && at_moment == reads(&proxy), "rooms read after the moment was taken: {at_moment} of {}", reads(&proxy));
    proxy.assert_no_writes("a reconcile whose moment includes the opened room");
    let (_, rule) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.join_rules/", enc(&id))).await;
    assert_eq!(rule["join_rule"], "public");
}
