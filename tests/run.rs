//! `stagehand run` against a real Synapse, read back by an independent client (plain HTTP `/messages` and `/state`):
//! a talk rehearsed a few seconds ahead at speed, whose reminders, roll calls, countdowns, go-live (call maximised,
//! talk suggested), end (layout restored, room opened, hallway notice) land in the right rooms in the right order;
//! and, on the real clock, a talk that has just ended: the runner opens its room, and an `apply` afterwards leaves it
//! as the runner left it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Api, User, enc, synapse};
use serde_json::Value;

/// A free loopback port for the pages.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

struct Camp {
    id: String,
    dir: tempfile::TempDir,
    bot: User,
    ann: User,
    bob: User,
    config: PathBuf,
    /// The same config with rooms never opened after their talk.
    closed: PathBuf,
    schedule: PathBuf,
}

impl Camp {
    /// A conference `id` with one devroom and two talks at `start` (UTC, `YYYY-MM-DD HH:MM`) and 30 minutes later;
    /// Ann and Bob speak in the first.
    fn new(id: &str, start: &str, second: &str) -> Camp {
        let s = synapse();
        let (bot, ann, bob) = (s.register(&format!("{id}-bot"), false), s.register(&format!("{id}-ann"), false), s.register(&format!("{id}-bob"), false));
        let dir = tempfile::tempdir().expect("temp dir");
        let schedule = common::write(
            dir.path(),
            "schedule.yaml",
            &format!(
                "conference: {{id: {id}, title: Run camp, timezone: UTC}}\n\
                 tracks:\n  - {{key: rust, name: Rust, kind: devroom}}\n\
                 people:\n  - {{key: ann, name: Ann <b>Lee</b>, matrix: \"{a}\"}}\n  - {{key: bob, name: Bob Ray, matrix: \"{b}\"}}\n\
                 talks:\n\
                 \x20 - {{key: t1, title: First talk, track: rust, room: R1, start: \"{start}\", duration: 30, speakers: [ann, bob]}}\n\
                 \x20 - {{key: t2, title: Second talk, track: rust, room: R1, start: \"{second}\", duration: 30, speakers: [ann]}}\n",
                a = ann.user_id,
                b = bob.user_id,
            ),
        );
        let config_with = |name: &str, actions: &str| {
            common::write(
                dir.path(),
                name,
                &format!(
                    "conference: {{id: {id}, timezone: UTC}}\n\
                     homeserver: {{server_name: {server}, url: \"{url}\"}}\n\
                     widgets: {{secret_file: \"{d}/secret\"}}\n\
                     timeline: {{store: \"{d}/store.sqlite\", actions: {{spread_seconds: 0{actions}}}}}\n",
                    server = s.server_name,
                    url = s.url,
                    d = dir.path().display(),
                ),
            )
        };
        let config = config_with("config.yaml", "");
        let closed = config_with("closed.yaml", ", open_room: {enabled: false}");
        Camp { id: id.to_string(), dir, bot, ann, bob, config, closed, schedule }
    }

    fn command(&self, args: &[&str]) -> Command {
        self.command_with(args, &self.config)
    }

    fn command_with(&self, args: &[&str], config: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_stagehand"));
        c.args(args).arg("--config").arg(config).arg(&self.schedule);
        c.env("STAGEHAND_ACCESS_TOKEN", &self.bot.token).env("RUST_LOG", "stagehand=info").current_dir(self.dir.path());
        c
    }

    /// `stagehand apply --json`, bounded.
    fn apply(&self) -> Value {
        self.apply_with(&self.config)
    }

    fn apply_with(&self, config: &Path) -> Value {
        self.apply_through(config, &synapse().url)
    }

    /// `stagehand apply --json` against `url` (a counting proxy in front of Synapse, or Synapse itself).
    fn apply_through(&self, config: &Path, url: &str) -> Value {
        let mut cmd = self.command_with(&["apply", "--json", "--homeserver", url], config);
        let out = common::output_within(&mut cmd, common::CLI_LIMIT, "stagehand apply");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("the report")
    }

    fn run(&self, extra: &[&str], port: u16) -> Child {
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["run", "--listen", &listen];
        args.extend_from_slice(extra);
        self.command(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("stagehand run")
    }

    async fn room(&self, alias_key: &str) -> String {
        let alias = format!("#{}-{alias_key}:{}", self.id, synapse().server_name);
        let (status, body) = Api::new(&synapse().url, &self.bot.token).get(&format!("/_matrix/client/v3/directory/room/{}", enc(&alias))).await;
        assert_eq!(status, 200, "{alias}: {body}");
        body["room_id"].as_str().expect("room id").to_string()
    }
}

/// Waits for a child to end, at most `limit`; kills it and fails with what it was doing otherwise.
fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> std::process::Output {
    let started = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = read_all(child);
            panic!("{what} did not end within {limit:?}; stderr:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    read_all(child)
}

fn read_all(child: &mut Child) -> std::process::Output {
    use std::io::Read;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_end(&mut stdout);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_end(&mut stderr);
    }
    let status = child.wait().expect("wait");
    std::process::Output { status, stdout, stderr }
}

fn terminate(child: &mut Child) -> std::process::Output {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    wait_bounded(child, Duration::from_secs(40), "stagehand run after SIGTERM")
}

/// The room's events, oldest first, as a plain client sees them.
async fn events(api: &Api, room: &str) -> Vec<Value> {
    let (status, body) = api.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=500", enc(room))).await;
    assert_eq!(status, 200, "{body}");
    let mut out: Vec<Value> = body["chunk"].as_array().cloned().unwrap_or_default();
    out.reverse();
    out
}

fn notices<'a>(events: &'a [Value], bot: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == "m.room.message" && e["sender"] == bot && e["content"]["msgtype"] == "m.notice").collect()
}

async fn state(api: &Api, room: &str, event_type: &str, key: &str) -> Value {
    api.get(&format!("/_matrix/client/v3/rooms/{}/state/{event_type}/{}", enc(room), enc(key))).await.1
}

async fn health(port: u16) -> Option<Value> {
    let resp = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.ok()?;
    resp.json().await.ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rehearsed_talk_runs_its_timeline_in_the_right_rooms_in_order() {
    // A year ahead: nothing of it has happened on the real clock, so the rehearsal's changes are its own.
    let camp = Camp::new("runreh", "2027-06-01 10:00", "2027-06-01 10:30");
    let built = camp.apply();
    assert_eq!(built["failed"], 0, "{built}");
    let (talk, backstage, track, space) =
        (camp.room("talk-t1").await, camp.room("rust-backstage").await, camp.room("rust").await, camp.room("devrooms").await);
    // Ann joins her talk room; Bob does not.
    let ann = Api::new(&synapse().url, &camp.ann.token);
    let (status, _) = ann.post(&format!("/_matrix/client/v3/join/{}", enc(&talk)), &serde_json::json!({})).await;
    assert_eq!(status, 200);

    // The first talk starts 20 s from now; the conference clock runs 60x: its last 20 minutes before the talk, the
    // talk and its end take about 55 s.
    let port = free_port();
    let mut run = camp.run(&["--rehearse", "--start-in", "20s", "--speed", "60", "--talks", "1"], port);
    let bot = Api::new(&synapse().url, &camp.bot.token);
    let started = Instant::now();
    let mut seen_alive = false;
    loop {
        if let Some(h) = health(port).await {
            seen_alive |= h["runner"]["alive"] == true;
        }
        let hallway = notices(&events(&bot, &track).await, &camp.bot.user_id).len() >= 2;
        if hallway {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(150), "the hallway notice never came");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let out = terminate(&mut run);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(seen_alive, "/healthz never said the runner was alive");
    assert!(stderr.contains("timeline stopped:"), "{stderr}");

    // The talk room: the T-15 reminder mentions Bob (who has not joined), not Ann; then five minutes, one minute,
    // five minutes left. Everything from the schedule escaped.
    let talk_events = events(&bot, &talk).await;
    let said = notices(&talk_events, &camp.bot.user_id);
    assert_eq!(said.len(), 4, "{said:#?}");
    assert_eq!(said[0]["content"]["m.mentions"]["user_ids"], serde_json::json!([camp.bob.user_id]), "{}", said[0]);
    assert!(said[0]["content"]["body"].as_str().unwrap().contains("Bob Ray"));
    let bodies: Vec<&str> = said.iter().map(|e| e["content"]["body"].as_str().unwrap_or_default()).collect();
    assert!(bodies[1].contains("5 minutes") && bodies[2].contains("1 minute") && bodies[3].contains("5 minutes"), "{bodies:#?}");
    // The backstage: the roll call names Bob without mentioning him, then the five-minute countdown.
    let back = events(&bot, &backstage).await;
    let back_said = notices(&back, &camp.bot.user_id);
    assert_eq!(back_said.len(), 2, "{back_said:#?}");
    assert!(back_said[0]["content"]["body"].as_str().unwrap().contains("Bob Ray"));
    assert!(!back_said[0]["content"]["body"].as_str().unwrap().contains("Ann"));
    // The track room: the live notice (title, speakers, how to ask), then the hallway pointing to the talk room.
    let track_said = notices(&events(&bot, &track).await, &camp.bot.user_id).into_iter().cloned().collect::<Vec<_>>();
    assert_eq!(track_said.len(), 2);
    assert!(track_said[0]["content"]["body"].as_str().unwrap().contains("First talk"));
    let html = track_said[0]["content"]["formatted_body"].as_str().unwrap();
    assert!(html.contains("&lt;b&gt;Lee&lt;/b&gt;") && !html.contains("<b>Lee</b>"), "schedule text escaped: {html}");
    assert!(track_said[1]["content"]["body"].as_str().unwrap().contains(&format!("#runreh-talk-t1:{}", synapse().server_name)));

    // State, in order: the layout maximised at go-live, then restored; the join rule opened after the talk; the talk
    // suggested in its space while live, then not.
    let layouts: Vec<bool> = talk_events
        .iter()
        .filter(|e| e["type"] == "io.element.widgets.layout")
        .map(|e| e["content"]["widgets"].as_object().is_some_and(|w| w.values().any(|s| s["container"] == "center")))
        .collect();
    assert!(layouts.ends_with(&[true, false]), "layout history: {layouts:?}");
    assert_eq!(state(&bot, &talk, "m.room.join_rules", "").await["join_rule"], "public");
    let flags: Vec<bool> = events(&bot, &space)
        .await
        .iter()
        .filter(|e| e["type"] == "m.space.child" && e["state_key"] == talk.as_str())
        .map(|e| e["content"]["suggested"] == true)
        .collect();
    assert!(flags.ends_with(&[true, false]), "suggested history: {flags:?}");
    // The order across rooms: go-live notice after the last minute, hallway after five minutes left.
    let ts = |e: &Value| e["origin_server_ts"].as_i64().unwrap_or_default();
    assert!(ts(said[2]) <= ts(&track_said[0]) && ts(said[3]) <= ts(&track_said[1]));
    // The second talk was not rehearsed: its room is untouched.
    let t2 = camp.room("talk-t2").await;
    assert_eq!(state(&bot, &t2, "m.room.join_rules", "").await["join_rule"], "invite");
    assert!(notices(&events(&bot, &t2).await, &camp.bot.user_id).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_talk_the_runner_opens_its_room_and_apply_keeps_it_open() {
    // On the real clock: the first talk ended five minutes ago, the second ends in 25 minutes.
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M").to_string();
    let camp = Camp::new("runlive", &fmt(now - chrono::Duration::minutes(35)), &fmt(now - chrono::Duration::minutes(5)));
    // Built with rooms never opened (`open_room` switched off), so that what opens the room here is the runner.
    let built = camp.apply_with(&camp.closed);
    assert_eq!(built["failed"], 0, "{built}");
    let port = free_port();
    let mut run = camp.run(&[], port);
    let bot = Api::new(&synapse().url, &camp.bot.token);
    let started = Instant::now();
    let talk = loop {
        let alias = format!("#runlive-talk-t1:{}", synapse().server_name);
        let (status, body) = bot.get(&format!("/_matrix/client/v3/directory/room/{}", enc(&alias))).await;
        if status == 200 {
            let id = body["room_id"].as_str().unwrap().to_string();
            if state(&bot, &id, "m.room.join_rules", "").await["join_rule"] == "public" {
                break id;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the ended talk's room was never opened");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Let the runner settle, then stop it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = terminate(&mut run);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let hallway = notices(&events(&bot, &camp.room("rust").await).await, &camp.bot.user_id).len();
    // An apply now takes the timeline into account: the room stays open, nothing is written (counted by a proxy
    // between Stagehand and Synapse, not by Stagehand).
    let proxy = common::proxy::Proxy::start(&synapse().url);
    let report = camp.apply_through(&camp.config, &proxy.url);
    assert_eq!(report["failed"], 0, "{report}");
    proxy.assert_no_writes("an apply after the talk");
    assert_eq!(state(&bot, &talk, "m.room.join_rules", "").await["join_rule"], "public");
    // A restart sends nothing again: every action is on record.
    let mut again = camp.run(&[], free_port());
    tokio::time::sleep(Duration::from_secs(8)).await;
    let out = terminate(&mut again);
    assert!(out.status.success());
    assert_eq!(notices(&events(&bot, &camp.room("rust").await).await, &camp.bot.user_id).len(), hallway, "nothing said twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_right_after_a_send_the_restarted_runner_says_nothing_twice_and_skips_what_is_too_late() {
    use std::io::BufRead;
    // On the real clock: the first talk went live three minutes ago. At start the runner sends what is still worth
    // sending (the live notice, within its five minutes) and skips the reminders and countdowns (too late).
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M").to_string();
    let camp = Camp::new("runkill", &fmt(now - chrono::Duration::minutes(3)), &fmt(now + chrono::Duration::minutes(27)));
    let built = camp.apply();
    assert_eq!(built["failed"], 0, "{built}");
    let track = camp.room("rust").await;
    let bot = Api::new(&synapse().url, &camp.bot.token);
    // The bot stops right after the homeserver took its first message, before it could record it as sent: SIGKILL.
    let mut first = camp
        .command(&["run", "--listen", &format!("127.0.0.1:{}", free_port())])
        .env("STAGEHAND_TEST_PAUSE_AFTER", "message:1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("stagehand run");
    let stderr = std::io::BufReader::new(first.stderr.take().expect("stderr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in stderr.lines().map_while(Result::ok) {
            let reached = line.starts_with("STAGEHAND_TEST_POINT");
            lines.push(line);
            if reached {
                let _ = tx.send(lines.clone());
            }
        }
        let _ = tx.send(lines);
    });
    let before_kill = rx.recv_timeout(Duration::from_secs(120)).expect("the runner never sent its first message");
    assert!(before_kill.last().is_some_and(|l| l.starts_with("STAGEHAND_TEST_POINT")), "{before_kill:#?}");
    let _ = Command::new("kill").arg("-9").arg(first.id().to_string()).status();
    let _ = first.wait();
    let said = notices(&events(&bot, &track).await, &camp.bot.user_id).len();
    assert_eq!(said, 1, "the live notice reached the server before the kill");

    // Restart: the notice found `sending` is sent again under the same transaction id, which the homeserver takes as
    // the same message; nothing is said twice.
    let mut again = camp.run(&[], free_port());
    let started = Instant::now();
    let stderr = loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        if started.elapsed() > Duration::from_secs(10) {
            break String::from_utf8_lossy(&terminate(&mut again).stderr).to_string();
        }
    };
    assert_eq!(notices(&events(&bot, &track).await, &camp.bot.user_id).len(), 1, "said twice: {stderr}");
    // The restart found the interrupted sends (the notice, and a state change sent beside it) and finished them: the
    // notice's event is the one already on the server.
    let unfinished: usize = stderr.split("unfinished=").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(unfinished >= 1, "the restart did not find the interrupted send: {stderr}");
    let on_server = notices(&events(&bot, &track).await, &camp.bot.user_id)[0]["event_id"].as_str().unwrap_or_default().to_string();
    assert!(stderr.lines().any(|l| l.contains("action=\"live-notice\"") && l.contains(&on_server)), "{stderr}");
    // The countdowns of the first talk were too late by then: skipped and logged, never sent.
    let talk = camp.room("talk-t1").await;
    assert!(notices(&events(&bot, &talk).await, &camp.bot.user_id).is_empty(), "a late countdown was sent");
    let logged: Vec<String> = before_kill.iter().filter(|l| l.contains("beyond its grace")).cloned().collect();
    assert!(logged.iter().any(|l| l.contains("live-soon")) && logged.iter().any(|l| l.contains("last-minute")), "{before_kill:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_changed_while_running_is_followed_on_sighup() {
    // On the real clock: the first talk starts in 20 minutes. While the bot runs, the organisers move it by an hour
    // and send SIGHUP: the talk room is told the new time once, and the pages show the new schedule.
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M").to_string();
    let (start, later) = (now + chrono::Duration::minutes(20), now + chrono::Duration::minutes(80));
    let camp = Camp::new("runhup", &fmt(start), &fmt(start + chrono::Duration::minutes(30)));
    assert_eq!(camp.apply()["failed"], 0);
    let port = free_port();
    let mut run = camp.run(&[], port);
    let started = Instant::now();
    while health(port).await.is_none_or(|h| h["runner"]["alive"] != true) {
        assert!(started.elapsed() < Duration::from_secs(60), "the runner never came up");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let schedule = std::fs::read_to_string(&camp.schedule).expect("schedule");
    std::fs::write(&camp.schedule, schedule.replacen(&fmt(start), &fmt(later), 1)).expect("write the new schedule");
    let _ = Command::new("kill").arg("-HUP").arg(run.id().to_string()).status();
    let bot = Api::new(&synapse().url, &camp.bot.token);
    let talk = camp.room("talk-t1").await;
    let started = Instant::now();
    let moved = loop {
        let said: Vec<Value> = notices(&events(&bot, &talk).await, &camp.bot.user_id).into_iter().cloned().collect();
        if !said.is_empty() {
            break said;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the talk room was never told it moved");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(moved[0]["content"]["body"].as_str().unwrap_or_default().contains("has moved"), "{moved:#?}");
    let page: Value = reqwest::get(format!("http://127.0.0.1:{port}/schedule/runhup/rust/json")).await.unwrap().json().await.unwrap();
    let shown = page.to_string();
    assert!(shown.contains(&later.format("%H:%M").to_string()) || shown.contains(&later.format("%Y-%m-%dT%H:%M").to_string()), "{page}");
    // A second SIGHUP with nothing changed tells nobody anything.
    let _ = Command::new("kill").arg("-HUP").arg(run.id().to_string()).status();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let out = terminate(&mut run);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(notices(&events(&bot, &talk).await, &camp.bot.user_id).len(), 1, "told twice");
}
