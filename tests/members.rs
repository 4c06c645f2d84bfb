//! Speakers, hosts and coordinators against a real Synapse: one invite per person and room, power by role, nothing
//! sent on a rerun, people added and removed by a new schedule, a person with two Matrix IDs, a person known only by
//! e-mail, a bot killed mid-invite, and the attendance report against the server's member lists.

mod common;

use std::collections::{HashMap, HashSet};

use common::proxy::Proxy;
use common::{Api, User, enc, synapse};
use serde_json::Value;

/// The cast of one test: users registered with a prefix so tests do not meet.
struct Cast {
    prefix: String,
    users: HashMap<&'static str, User>,
    dir: tempfile::TempDir,
    /// Stagehand reaches Synapse through it: what it sent, counted outside the bot.
    proxy: Proxy,
}

impl Cast {
    fn new(prefix: &str, names: &[&'static str]) -> Cast {
        let s = synapse();
        let mut users = HashMap::new();
        for n in names {
            users.insert(*n, s.register(&format!("{prefix}-{n}"), false));
        }
        users.insert("bot", s.register(&format!("{prefix}-bot"), false));
        Cast { prefix: prefix.to_string(), users, dir: tempfile::tempdir().unwrap(), proxy: Proxy::start(&s.url) }
    }

    fn id(&self, n: &str) -> String {
        self.users[n].user_id.clone()
    }

    fn api(&self, n: &str) -> Api {
        Api::new(&synapse().url, &self.users[n].token)
    }

    /// Writes schedule and config; `talks` is the YAML of the talks list.
    fn files(&self, talks: &str) -> std::path::PathBuf {
        self.files_with(talks, "")
    }

    /// [`Self::files`] with more config lines (`people: {...}`).
    fn files_with(&self, talks: &str, extra_config: &str) -> std::path::PathBuf {
        let id = |n: &str| self.id(n);
        let schedule = format!(
            "conference: {{id: {p}, title: Members test, timezone: Europe/Brussels}}\n\
             tracks:\n  - {{key: rust, name: Rust, kind: devroom, coordinators: [carol]}}\n\
             people:\n\
             \x20 - {{key: alice, name: Alice, matrix: [\"{a1}\", \"{a2}\"]}}\n\
             \x20 - {{key: bob, name: Bob, matrix: \"{b}\"}}\n\
             \x20 - {{key: carol, name: Carol, matrix: \"{c}\"}}\n\
             \x20 - {{key: dave, name: Dave, matrix: \"{d}\"}}\n\
             \x20 - {{key: erin, name: Erin, email: erin@example.org}}\n\
             \x20 - {{key: frank, name: Frank, matrix: \"{f}\"}}\n\
             talks:\n{talks}",
            p = self.prefix,
            a1 = id("alice"),
            a2 = id("alice2"),
            b = id("bob"),
            c = id("carol"),
            d = id("dave"),
            f = id("frank"),
        );
        common::write(self.dir.path(), "schedule.yaml", &schedule);
        common::write(
            self.dir.path(),
            "config.yaml",
            &format!(
                "conference: {{id: {p}}}\nhomeserver: {{server_name: localhost}}\nschedule: {{source: {s:?}}}\n{extra_config}",
                p = self.prefix,
                s = self.dir.path().join("schedule.yaml")
            ),
        )
    }

    fn stagehand(&self, args: &[&str], config: &std::path::Path) -> std::process::Output {
        let mut cmd = common::stagehand(args, config, &self.proxy.url, &self.users["bot"].token);
        let out = common::output_within(&mut cmd, common::CLI_LIMIT, &format!("stagehand {}", args.join(" ")));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// `stagehand plan --json` without a homeserver: the plan's rooms, aliases and members.
    fn offline_plan(&self, config: &std::path::Path) -> Value {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stagehand"));
        cmd.args(["plan", "--json", "--config"]).arg(config).current_dir(common::root());
        let out = common::output_within(&mut cmd, common::CLI_LIMIT, "stagehand plan --json");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn json(&self, args: &[&str], config: &std::path::Path) -> Value {
        common::stagehand_json(args, config, &self.proxy.url, &self.users["bot"].token)
    }

    fn apply(&self, config: &std::path::Path) -> Value {
        self.json(&["apply", "--json"], config)
    }

    /// Runs `args` and fails if any request that reached Synapse could have changed something.
    fn writes_nothing(&self, args: &[&str], config: &std::path::Path) {
        self.proxy.reset();
        self.json(args, config);
        self.proxy.assert_no_writes(&format!("stagehand {}", args.join(" ")));
    }

    /// The (room id, user) pairs Synapse accepted invites for since the last reset, failing if one came twice.
    fn invited_once(&self) -> HashSet<(String, String)> {
        let repeated = self.proxy.repeated_invites();
        assert!(repeated.is_empty(), "invited more than once: {repeated:?}");
        self.proxy.invites().into_iter().collect()
    }

    async fn room_by_alias(&self, alias: &str) -> String {
        let (status, body) = self.api("bot").get(&format!("/_matrix/client/v3/directory/room/{}", enc(alias))).await;
        assert_eq!(status, 200, "{alias}: {body}");
        body["room_id"].as_str().unwrap().to_string()
    }

    async fn room(&self, alias_local: &str) -> String {
        self.room_by_alias(&format!("#{}-{alias_local}:localhost", self.prefix)).await
    }

    /// user id -> membership, from the server.
    async fn members(&self, room_id: &str) -> HashMap<String, String> {
        let (_, state) = self.api("bot").get(&format!("/_matrix/client/v3/rooms/{}/state", enc(room_id))).await;
        state
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "m.room.member")
            .map(|e| (e["state_key"].as_str().unwrap().to_string(), e["content"]["membership"].as_str().unwrap().to_string()))
            .collect()
    }

    async fn power(&self, room_id: &str) -> Value {
        self.api("bot").get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.power_levels/", enc(room_id))).await.1["users"].clone()
    }

    async fn join(&self, who: &str, room_id: &str) {
        let (status, body) = self.api(who).post(&format!("/_matrix/client/v3/rooms/{}/join", enc(room_id)), &serde_json::json!({})).await;
        assert_eq!(status, 200, "{who} join: {body}");
    }
}

const TALKS_V1: &str = concat!(
    "  - {key: t1, title: One, track: rust, room: H1, start: \"2026-03-14 10:00\", duration: 30, speakers: [alice, bob, erin], hosts: [dave]}\n",
    "  - {key: t2, title: Two, track: rust, room: H1, start: \"2026-03-14 11:00\", duration: 30, speakers: [bob]}\n",
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_once_with_power_by_role_and_rerun_sends_none() {
    let cast = Cast::new("mem1", &["alice", "alice2", "bob", "carol", "dave", "frank"]);
    let cfg = cast.files(TALKS_V1);
    let report = cast.apply(&cfg);
    // t1: alice x2, bob, dave, carol = 5; t2: bob, carol = 2; backstage: carol, dave = 2; lounge: alice x2, bob = 3.
    assert_eq!(cast.invited_once().len(), 12, "{:?}", cast.proxy.invites());
    // Erin has only an e-mail address and no identity server is configured: said, for each of her rooms.
    assert_eq!(report["uncontactable"], 2, "{report}");
    let erin: Vec<&Value> = report["memberships"].as_array().unwrap().iter().filter(|m| m["action"] == "uncontactable").collect();
    assert!(erin.iter().all(|m| m["user_id"].as_str().unwrap().starts_with("Erin <e…@example.org>")), "{erin:?}");
    assert!(erin[0]["error"].as_str().unwrap().contains("people.identity_server"), "{erin:?}");
    let t1 = cast.room("talk-t1").await;
    let t2 = cast.room("talk-t2").await;
    let backstage = cast.room("rust-backstage").await;
    let lounge = cast.room("speakers").await;
    let m1 = cast.members(&t1).await;
    for who in ["alice", "alice2", "bob", "dave", "carol"] {
        assert_eq!(m1.get(&cast.id(who)).map(String::as_str), Some("invite"), "{who} in t1: {m1:?}");
    }
    assert!(!m1.contains_key(&cast.id("frank")));
    let m2 = cast.members(&t2).await;
    assert_eq!(m2.len(), 3, "bot, bob, carol: {m2:?}");
    let mb = cast.members(&backstage).await;
    assert!(mb.contains_key(&cast.id("carol")) && mb.contains_key(&cast.id("dave")) && !mb.contains_key(&cast.id("bob")));
    // Power by role: speakers and hosts moderate their talk room, coordinators everywhere in the track; nobody in the
    // lounge.
    let p1 = cast.power(&t1).await;
    for who in ["alice", "alice2", "bob", "dave", "carol"] {
        assert_eq!(p1[cast.id(who)], 50, "{who}: {p1}");
    }
    assert_eq!(cast.power(&t2).await.get(cast.id("alice")), None);
    assert!(cast.power(&lounge).await.get(cast.id("bob")).is_none());
    // Once joined, the power is there.
    cast.join("alice", &t1).await;
    cast.join("bob", &t1).await;
    assert_eq!(cast.members(&t1).await[&cast.id("alice")], "join");
    // A rerun invites nobody and writes nothing.
    cast.writes_nothing(&["apply", "--json"], &cfg);

    // A later schedule: frank joins t1, bob (joined) and dave (invited, never joined) are taken off it.
    let talks_v2 = TALKS_V1.replace("speakers: [alice, bob, erin], hosts: [dave]", "speakers: [alice, frank, erin]");
    cast.files(&talks_v2);
    cast.apply(&cfg);
    let m1 = cast.members(&t1).await;
    assert_eq!(m1[&cast.id("frank")], "invite", "the new speaker is invited");
    assert_eq!(m1[&cast.id("dave")], "leave", "the open invite is withdrawn");
    assert_eq!(m1[&cast.id("bob")], "join", "a member who joined is not kicked unless config says so");
    let p1 = cast.power(&t1).await;
    assert!(p1.get(cast.id("bob")).is_none() && p1.get(cast.id("dave")).is_none(), "removed people lose power: {p1}");
    assert_eq!(p1[cast.id("frank")], 50);
    // Bob is still a speaker of t2, and dave still hosts nothing: out of the backstage's list too.
    assert_eq!(cast.power(&t2).await[cast.id("bob")], 50);
    // Frank: his talk room and the speakers' lounge, and nobody else.
    let frank: HashSet<(String, String)> = [(t1.clone(), cast.id("frank")), (lounge.clone(), cast.id("frank"))].into();
    assert_eq!(cast.invited_once(), frank);
    // Dave's open invites are withdrawn, once each: t1 and the backstage (he hosts nothing now); nobody else's.
    let mut kicked: Vec<_> = cast.proxy.seen().into_iter().filter(|r| r.kind == "kick").map(|r| (r.room.unwrap_or_default(), r.user.unwrap_or_default())).collect();
    kicked.sort();
    let mut expected = vec![(t1.clone(), cast.id("dave")), (backstage.clone(), cast.id("dave"))];
    expected.sort();
    assert_eq!(kicked, expected);
    cast.writes_nothing(&["apply", "--json"], &cfg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attendance_matches_the_server_and_names_who_cannot_be_reached() {
    let cast = Cast::new("mem2", &["alice", "alice2", "bob", "carol", "dave", "frank"]);
    let cfg = cast.files(TALKS_V1);
    cast.apply(&cfg);
    let t1 = cast.room("talk-t1").await;
    cast.join("alice2", &t1).await;
    cast.join("carol", &t1).await;
    let (status, _) = cast.api("dave").post(&format!("/_matrix/client/v3/rooms/{}/leave", enc(&t1)), &serde_json::json!({})).await;
    assert_eq!(status, 200);
    // Another room with someone joined and someone who left: the backstage.
    let backstage = cast.room("rust-backstage").await;
    cast.join("carol", &backstage).await;
    let (status, _) = cast.api("dave").post(&format!("/_matrix/client/v3/rooms/{}/leave", enc(&backstage)), &serde_json::json!({})).await;
    assert_eq!(status, 200);
    let out = cast.stagehand(&["attendance", "--csv"], &cfg);
    let mut rdr = csv::Reader::from_reader(out.stdout.as_slice());
    let rows: Vec<HashMap<String, String>> = rdr.deserialize().map(|r| r.unwrap()).collect();
    // Every row of every room against that room's members on the server, and every planned (room, person) of the
    // talk rooms and backstages (what attendance covers) has a row.
    let plan = cast.offline_plan(&cfg);
    let mut planned_pairs = Vec::new();
    let covered = |key: &str| key.starts_with("talk/") || key.starts_with("backstage/");
    for room in plan["rooms"].as_array().unwrap().iter().filter(|r| covered(r["key"].as_str().unwrap())) {
        for m in room["members"].as_array().unwrap() {
            planned_pairs.push((room["key"].as_str().unwrap().to_string(), m["person"].as_str().unwrap().to_string()));
        }
    }
    let mut row_pairs: Vec<(String, String)> = rows.iter().map(|r| (r["room"].clone(), r["person"].clone())).collect();
    planned_pairs.sort();
    row_pairs.sort();
    assert_eq!(row_pairs, planned_pairs);
    let alias_of = |key: &str| plan["rooms"].as_array().unwrap().iter().find(|r| r["key"] == key).unwrap()["alias"].as_str().unwrap().to_string();
    let mut servers: HashMap<String, HashMap<String, String>> = HashMap::new();
    for r in &rows {
        if !servers.contains_key(&r["room"]) {
            let id = cast.room_by_alias(&alias_of(&r["room"])).await;
            servers.insert(r["room"].clone(), cast.members(&id).await);
        }
        let server = &servers[&r["room"]];
        let expected = match r["person"].as_str() {
            "erin" => "email_only".to_string(),
            _ => {
                // The person's best membership on the server.
                let states: Vec<&str> = r["user_ids"].split(' ').filter_map(|u| server.get(u).map(String::as_str)).collect();
                if states.contains(&"join") { "joined" } else if states.contains(&"invite") { "invited" } else { "declined" }.to_string()
            }
        };
        assert_eq!(r["presence"], expected, "{r:?}");
    }
    assert_eq!(servers.len(), 3, "rooms checked: {:?}", servers.keys());
    let t1_rows: Vec<_> = rows.iter().filter(|r| r["room"] == "talk/t1").collect();
    assert_eq!(t1_rows.len(), 5, "alice, bob, erin, dave, carol: {t1_rows:?}");
    let backstage: HashMap<&str, &str> = rows.iter().filter(|r| r["room"] == "backstage/rust").map(|r| (r["person"].as_str(), r["presence"].as_str())).collect();
    assert_eq!((backstage["carol"], backstage["dave"]), ("joined", "declined"), "{backstage:?}");
    let presence: HashMap<&str, &str> = t1_rows.iter().map(|r| (r["person"].as_str(), r["presence"].as_str())).collect();
    assert_eq!(presence["alice"], "joined", "one of her two IDs joined");
    assert_eq!(presence["dave"], "declined");
    assert_eq!(presence["bob"], "invited");
    // The summary counts the same.
    let text = String::from_utf8(cast.stagehand(&["attendance"], &cfg).stdout).unwrap();
    assert!(text.contains("talk/t1") && text.contains("2/5 joined (40%)"), "{text}");
    // Dave declined: he is not invited again.
    cast.proxy.reset();
    cast.apply(&cfg);
    assert_eq!(cast.proxy.invites(), Vec::new(), "{:?}", cast.proxy.counts());

    // Power on the server, every room, is the plan's: each planned Matrix ID at its role's level, nobody else but
    // the bot (room version 12 lists no creator).
    for room in plan["rooms"].as_array().unwrap() {
        let mut planned = serde_json::Map::new();
        for m in room["members"].as_array().unwrap().iter().filter(|m| m["power"].as_i64() > Some(0)) {
            for uid in m["user_ids"].as_array().unwrap() {
                planned.insert(uid.as_str().unwrap().to_string(), m["power"].clone());
            }
        }
        let id = cast.room_by_alias(room["alias"].as_str().unwrap()).await;
        let server = cast.power(&id).await;
        let server = server.as_object().cloned().unwrap_or_default();
        assert_eq!(server, planned, "{}", room["key"]);
    }

    // `plan --homeserver` on a retitled talk: the update with the field's old and new value, and nothing written.
    cast.files(&TALKS_V1.replace("title: Two,", "title: Two revised,"));
    cast.proxy.reset();
    let shown = String::from_utf8(cast.stagehand(&["plan"], &cfg).stdout).unwrap();
    cast.proxy.assert_no_writes("plan --homeserver");
    let line = shown.lines().find(|l| l.contains("m.room.name")).unwrap_or_else(|| panic!("{shown}"));
    assert!(line.contains("Two") && line.contains("Two revised"), "{shown}");
    assert!(shown.contains("talk/t2"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_invites_resumes_without_duplicates() {
    let cast = Cast::new("mem3", &["alice", "alice2", "bob", "carol", "dave", "frank"]);
    let cfg = cast.files(TALKS_V1);
    common::apply_killed_at("invite:5", &cfg, &cast.users["bot"].token, &cast.proxy.url);
    // The rest, and only the rest. Sends in flight may complete between the pause and the kill (even after it, on
    // the server's side), so the check is by pair: nothing invited before the rerun is sent again, and afterwards all
    // 12 planned (room, person) pairs are invited.
    let rooms = [("talk/t1", "talk-t1"), ("talk/t2", "talk-t2"), ("backstage/rust", "rust-backstage"), ("support/speakers", "speakers")];
    let mut before = std::collections::HashSet::new();
    for (key, alias) in rooms {
        let id = cast.room(alias).await;
        before.extend(cast.members(&id).await.into_iter().filter(|(_, m)| m == "invite").map(|(u, _)| (key.to_string(), u)));
    }
    assert!(before.len() >= 5, "{before:?}");
    let report = cast.apply(&cfg);
    // Counted on the way to Synapse, over the killed run and the rerun: each planned pair invited exactly once.
    assert_eq!(cast.invited_once().len(), 12, "{:?}", cast.proxy.invites());
    let mut after = 0;
    for (_, alias) in rooms {
        let id = cast.room(alias).await;
        after += cast.members(&id).await.values().filter(|m| *m == "invite").count();
    }
    assert_eq!(after, 12, "{report}");
    // Every planned person is invited now, each once (membership state holds one invite per user).
    let t1 = cast.room("talk-t1").await;
    let m1 = cast.members(&t1).await;
    for who in ["alice", "alice2", "bob", "dave", "carol"] {
        assert_eq!(m1.get(&cast.id(who)).map(String::as_str), Some("invite"), "{who}");
    }
    cast.writes_nothing(&["apply", "--json"], &cfg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_command_sends_what_apply_left_and_power_follows_the_config() {
    let cast = Cast::new("mem4", &["alice", "alice2", "bob", "carol", "dave", "frank"]);
    // Rooms first, invites later.
    let cfg = cast.files_with(TALKS_V1, "people: {invite: false}\n");
    cast.apply(&cfg);
    assert_eq!(cast.proxy.invites(), Vec::new());
    let t1 = cast.room("talk-t1").await;
    assert_eq!(cast.members(&t1).await.len(), 1, "only the bot");
    // Power is set either way.
    assert_eq!(cast.power(&t1).await[cast.id("bob")], 50);
    cast.proxy.reset();
    let dry = cast.json(&["invite", "--dry-run", "--json"], &cfg);
    let planned = dry["memberships"].as_array().unwrap().iter().filter(|m| m["action"] == "invite").count();
    assert_eq!(planned, 12, "{dry}");
    cast.proxy.assert_no_writes("invite --dry-run");
    assert_eq!(cast.members(&t1).await.len(), 1, "a dry run sends nothing");
    cast.json(&["invite", "--json"], &cfg);
    assert_eq!(cast.invited_once().len(), 12, "{:?}", cast.proxy.invites());
    assert_eq!(cast.proxy.counts().get("createRoom"), None, "invite builds nothing");
    cast.writes_nothing(&["invite", "--json"], &cfg);

    // Dave is taken off t1 while invites are off: apply lowers his power but leaves his invite for later; the
    // record keeps him, and the next `invite` withdraws it.
    cast.files_with(&TALKS_V1.replace(", hosts: [dave]", ""), "people: {invite: false}\n");
    cast.apply(&cfg);
    assert!(cast.power(&t1).await.get(cast.id("dave")).is_none());
    assert_eq!(cast.members(&t1).await[&cast.id("dave")], "invite");
    let revoked = cast.json(&["invite", "--json"], &cfg);
    assert!(revoked["memberships"].as_array().unwrap().iter().any(|m| m["action"] == "revoke" && m["user_id"] == cast.id("dave")), "{revoked}");
    assert_eq!(cast.members(&t1).await[&cast.id("dave")], "leave");
    cast.writes_nothing(&["invite", "--json"], &cfg);

    // Speakers at power 0 by config: those who had 50 lose it; the coordinator keeps hers.
    cast.files_with(&TALKS_V1.replace(", hosts: [dave]", ""), "people: {invite: false, speaker_power: 0}\n");
    cast.apply(&cfg);
    let p1 = cast.power(&t1).await;
    for who in ["alice", "alice2", "bob"] {
        assert!(p1.get(cast.id(who)).is_none(), "{who}: {p1}");
    }
    assert_eq!(p1[cast.id("carol")], 50, "{p1}");
    cast.writes_nothing(&["apply", "--json"], &cfg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_invite_run_killed_midway_resumes_without_duplicates_or_gaps() {
    const N: usize = 40;
    let s = synapse();
    let bot = s.register("mem5-bot", false);
    // Registered four at a time: each registration is a short Python process.
    let names: Vec<String> = (0..N).map(|i| format!("mem5-s{i:02}")).collect();
    let users: Vec<User> = names
        .chunks(4)
        .flat_map(|chunk| {
            let handles: Vec<_> = chunk.iter().map(|n| std::thread::spawn({
                let n = n.clone();
                move || synapse().register(&n, false)
            })).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut schedule = String::from(
        "conference: {id: mem5, title: Large, timezone: Europe/Brussels}\ntracks:\n  - {key: big, name: Big, kind: devroom}\npeople:\n",
    );
    for (i, u) in users.iter().enumerate() {
        schedule.push_str(&format!("  - {{key: p{i}, name: P{i}, matrix: \"{}\"}}\n", u.user_id));
    }
    schedule.push_str("talks:\n");
    for i in 0..N {
        schedule.push_str(&format!(
            "  - {{key: t{i}, title: T{i}, track: big, room: H{r}, start: \"2026-03-14 {h:02}:{m:02}\", duration: 10, speakers: [p{i}]}}\n",
            r = i % 4,
            h = 9 + i / 24,
            m = (i % 24) / 4 * 10,
        ));
    }
    common::write(dir.path(), "schedule.yaml", &schedule);
    let cfg = common::write(
        dir.path(),
        "config.yaml",
        &format!("conference: {{id: mem5}}\nhomeserver: {{server_name: localhost}}\nschedule: {{source: {:?}}}\n", dir.path().join("schedule.yaml")),
    );
    // Each speaker: their talk room and the lounge.
    let planned = 2 * N as u64;
    let proxy = Proxy::start(&s.url);
    common::apply_killed_at("invite:30", &cfg, &bot.token, &proxy.url);
    let run = |args: &[&str]| common::stagehand_json(args, &cfg, &proxy.url, &bot.token);
    let api = Api::new(&s.url, &bot.token);
    let room = |alias: String| {
        let api = &api;
        async move { api.get(&format!("/_matrix/client/v3/directory/room/{}", enc(&alias))).await.1["room_id"].as_str().unwrap().to_string() }
    };
    // What went out before the kill, by (room, user), read on the server: at least 30 (sends in flight may
    // complete after the pause, even after the kill on the server's side).
    let mut keys = vec!["support/speakers".to_string()];
    let mut rooms = vec![room("#mem5-speakers:localhost".into()).await];
    for i in 0..N {
        keys.push(format!("talk/t{i}"));
        rooms.push(room(format!("#mem5-talk-t{i}:localhost")).await);
    }
    let invited = |api: &Api, rooms: Vec<String>, keys: Vec<String>| {
        let api = Api::new(&api.base, &api.token);
        async move {
            let mut pairs = std::collections::HashSet::new();
            for (key, id) in keys.iter().zip(&rooms) {
                let (_, state) = api.get(&format!("/_matrix/client/v3/rooms/{}/state", enc(id))).await;
                for e in state.as_array().unwrap() {
                    if e["type"] == "m.room.member" && e["content"]["membership"] == "invite" {
                        pairs.insert((key.clone(), e["state_key"].as_str().unwrap().to_string()));
                    }
                }
            }
            pairs
        }
    };
    let before = invited(&api, rooms.clone(), keys.clone()).await;
    assert!((30..planned as usize).contains(&before.len()), "{}", before.len());
    run(&["invite", "--json"]);
    // Counted on the way to Synapse, over the killed run and the rerun: every pair once, none missing.
    let repeated = proxy.repeated_invites();
    assert!(repeated.is_empty(), "invited more than once: {repeated:?}");
    assert_eq!(proxy.invites().len(), planned as usize, "{:?}", proxy.counts());
    assert_eq!(invited(&api, rooms.clone(), keys.clone()).await.len(), planned as usize, "none missing");
    let lounge = rooms[0].clone();
    let (_, lounge_state) = api.get(&format!("/_matrix/client/v3/rooms/{}/state", enc(&lounge))).await;
    let invited_in_lounge = lounge_state.as_array().unwrap().iter().filter(|e| e["type"] == "m.room.member" && e["content"]["membership"] == "invite").count();
    assert_eq!(invited_in_lounge, N, "everyone invited to the lounge");
    for (i, u) in users.iter().enumerate().step_by(7) {
        let talk = room(format!("#mem5-talk-t{i}:localhost")).await;
        let (_, m) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.member/{}", enc(&talk), enc(&u.user_id))).await;
        assert_eq!(m["membership"], "invite", "t{i}");
    }
    proxy.reset();
    run(&["invite", "--json"]);
    proxy.assert_no_writes("invite after the resumed run");
}
