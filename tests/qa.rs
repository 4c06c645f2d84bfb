//! Q&A end to end on a real Synapse: `stagehand run` listens to a conference it built, independent users ask, vote,
//! vote twice, take a vote back, edit, delete, and a host hides and marks answered while an attendee's attempt does
//! nothing; the Q&A JSON of the talk equals the expected ranking exactly. Restarted, the ranking is intact; with the
//! store deleted it is rebuilt from the rooms' history and comes out the same. Once over `/sync` (a bot logged in as
//! a user) and once as an application service (the homeserver pushes transactions to `run`'s web server).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DurationRound, Utc};
use common::{Api, Synapse, User, enc, free_port, stop, synapse};
use serde_json::{Value, json};

fn txn() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("qa{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// How the bot authenticates and how events reach it.
enum Mode {
    Sync,
    AppService,
}

struct Event {
    id: String,
    dir: tempfile::TempDir,
    synapse_url: String,
    /// The bot's access token (sync) or none (the registration's as_token is used).
    bot_token: Option<String>,
    /// A token to read rooms with, as an independent client (the bot's own: it is in every room).
    reader: String,
    config: PathBuf,
    schedule: PathBuf,
    port: u16,
    users: Users,
}

struct Users {
    ann: User,
    bob: User,
    cy: User,
    dee: User,
}

/// The application service's Synapse: started once for this binary, with a registration pushing to a port kept
/// for `stagehand run`.
fn appservice_synapse() -> &'static (Synapse, String, u16, tempfile::TempDir) {
    static S: std::sync::OnceLock<(Synapse, String, u16, tempfile::TempDir)> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let cfg = common::write(dir.path(), "as.yaml", "conference: {id: qaas}\nhomeserver: {server_name: localhost}\n");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stagehand"));
        cmd.args(["appservice-registration", "--url", &format!("http://127.0.0.1:{port}"), "--config"]).arg(&cfg);
        let out = common::output_within(&mut cmd, common::CLI_LIMIT, "appservice-registration");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let registration = String::from_utf8(out.stdout).expect("UTF-8");
        let path = common::write(dir.path(), "registration.yaml", &registration);
        let synapse = Synapse::start("relaxed", &[("stagehand", registration)]);
        (synapse, path.display().to_string(), port, dir)
    })
}

impl Event {
    fn new(id: &str, mode: Mode) -> Event {
        // The first talk is live now (it started ten minutes ago and lasts an hour); the second follows it.
        let start = Utc::now().duration_trunc(chrono::Duration::minutes(1)).expect("a minute") - chrono::Duration::minutes(10);
        let at = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%d %H:%M").to_string();
        let talks = format!(
            "  - {{key: t1, title: Live talk, track: rust, room: R1, start: \"{}\", duration: 60, speakers: [bob], hosts: [ann]}}\n\
             \x20 - {{key: t2, title: Next talk, track: rust, room: R1, start: \"{}\", duration: 30, speakers: [bob]}}\n",
            at(start),
            at(start + chrono::Duration::minutes(60)),
        );
        Event::with(id, mode, &talks, "")
    }

    /// A conference with the given talks (YAML list items; Ann and Bob are its people) and more config.
    fn with(id: &str, mode: Mode, talks: &str, extra_config: &str) -> Event {
        let (s, registration, port) = match mode {
            Mode::Sync => (synapse(), None, free_port()),
            Mode::AppService => {
                let (s, reg, port, _) = appservice_synapse();
                (s, Some(reg.clone()), *port)
            }
        };
        let users = Users {
            ann: s.register(&format!("{id}-ann"), false),
            bob: s.register(&format!("{id}-bob"), false),
            cy: s.register(&format!("{id}-cy"), false),
            dee: s.register(&format!("{id}-dee"), false),
        };
        let bot = s.register(&format!("{id}-bot"), false);
        let dir = tempfile::tempdir().expect("temp dir");
        let schedule = common::write(
            dir.path(),
            "schedule.yaml",
            &format!(
                "conference: {{id: {id}, title: QA camp, timezone: UTC}}\n\
                 tracks:\n  - {{key: rust, name: Rust, kind: devroom}}\n\
                 people:\n  - {{key: ann, name: Ann, matrix: \"{ann}\"}}\n  - {{key: bob, name: Bob, matrix: \"{bob}\"}}\n\
                 talks:\n{talks}",
                ann = users.ann.user_id,
                bob = users.bob.user_id,
            ),
        );
        let auth = match &registration {
            Some(path) => format!(", appservice_registration: \"{path}\""),
            None => String::new(),
        };
        let config = common::write(
            dir.path(),
            "config.yaml",
            &format!(
                "conference: {{id: {id}, timezone: UTC}}\n\
                 homeserver: {{server_name: {server}, url: \"{url}\"{auth}}}\n\
                 widgets: {{secret_file: \"{d}/secret\", web_url: \"http://127.0.0.1:{port}\"}}\n\
                 timeline: {{store: \"{d}/day.sqlite\", actions: {{spread_seconds: 0}}}}\n{extra_config}",
                server = s.server_name,
                url = s.url,
                d = dir.path().display(),
            ),
        );
        let bot_token = registration.is_none().then(|| bot.token.clone());
        let reader = match &registration {
            // As an application service the bot is the registration's user; read as Ann, who joins every room here.
            Some(_) => users.ann.token.clone(),
            None => bot.token.clone(),
        };
        Event { id: id.to_string(), dir, synapse_url: s.url.clone(), bot_token, reader, config, schedule, port, users }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_stagehand"));
        c.args(args).arg("--config").arg(&self.config).arg(&self.schedule).current_dir(self.dir.path());
        c.env_remove("STAGEHAND_ACCESS_TOKEN").env("RUST_LOG", "stagehand=info");
        if let Some(t) = &self.bot_token {
            c.env("STAGEHAND_ACCESS_TOKEN", t);
        }
        c
    }

    fn apply(&self) {
        let out = common::output_within(&mut self.command(&["apply", "--json"]), common::CLI_LIMIT, "stagehand apply");
        assert!(out.status.success(), "apply: {}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    }

    fn run(&self) -> Child {
        self.run_with(&[])
    }

    fn run_with(&self, extra: &[&str]) -> Child {
        let listen = format!("127.0.0.1:{}", self.port);
        let mut args = vec!["run", "--listen", &listen];
        args.extend_from_slice(extra);
        self.command(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("stagehand run")
    }

    fn api(&self, user: &User) -> Api {
        Api::new(&self.synapse_url, &user.token)
    }

    async fn room(&self, key: &str) -> String {
        let alias = format!("#{}-{key}:{}", self.id, server_of(&self.users.ann.user_id));
        let (status, body) = Api::new(&self.synapse_url, &self.reader).get(&format!("/_matrix/client/v3/directory/room/{}", enc(&alias))).await;
        assert_eq!(status, 200, "{alias}: {body}");
        body["room_id"].as_str().expect("room id").to_string()
    }

    /// The Q&A JSON URL of a room, with the token its widget carries (read from the room's state).
    async fn qa_url(&self, room: &str) -> String {
        let (status, state) = Api::new(&self.synapse_url, &self.reader).get(&format!("/_matrix/client/v3/rooms/{}/state", enc(room))).await;
        assert_eq!(status, 200, "{state}");
        let widget = state
            .as_array()
            .expect("state")
            .iter()
            .find(|e| e["type"] == "im.vector.modular.widgets" && e["state_key"].as_str().is_some_and(|k| k.starts_with("stagehand-qa-")))
            .expect("a Q&A widget in the room");
        let url = widget["content"]["url"].as_str().expect("widget url");
        let token = url.split("token=").nth(1).expect("token").split('&').next().expect("token");
        let path = url.split("/qa/").nth(1).expect("qa path").split('?').next().expect("path");
        format!("http://127.0.0.1:{}/qa/{path}/json?token={token}", self.port)
    }
}

/// Synapse's default display name: the localpart.
fn localpart(user_id: &str) -> &str {
    user_id.trim_start_matches('@').split(':').next().expect("localpart")
}

fn server_of(user_id: &str) -> &str {
    user_id.split(':').nth(1).expect("server name")
}

async fn send(api: &Api, room: &str, kind: &str, content: Value) -> String {
    let (status, body) = api.put(&format!("/_matrix/client/v3/rooms/{}/send/{kind}/{}", enc(room), txn()), &content).await;
    assert_eq!(status, 200, "send {kind}: {body}");
    body["event_id"].as_str().expect("event id").to_string()
}

async fn ask(api: &Api, room: &str, text: &str) -> String {
    send(api, room, "m.room.message", json!({"msgtype": "m.text", "body": text})).await
}

async fn react(api: &Api, room: &str, on: &str, key: &str) -> String {
    send(api, room, "m.reaction", json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": on, "key": key}})).await
}

async fn redact(api: &Api, room: &str, event: &str) {
    let (status, body) = api.put(&format!("/_matrix/client/v3/rooms/{}/redact/{}/{}", enc(room), enc(event), txn()), &json!({})).await;
    assert_eq!(status, 200, "redact: {body}");
}

async fn join(api: &Api, room: &str) {
    let (status, body) = api.post(&format!("/_matrix/client/v3/join/{}", enc(room)), &json!({})).await;
    assert_eq!(status, 200, "join: {body}");
}

/// The ranking as (text, asker name, votes, answered), and how many are hidden.
fn ranking(board: &Value) -> (Vec<(String, String, u64, bool)>, u64) {
    let list = board["questions"].as_array().cloned().unwrap_or_default();
    let rows = list
        .iter()
        .map(|q| {
            (
                q["text"].as_str().unwrap_or_default().to_string(),
                q["asker_name"].as_str().unwrap_or_default().to_string(),
                q["votes"].as_u64().unwrap_or(99),
                q["answered"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    (rows, board["hidden"].as_u64().unwrap_or(99))
}

async fn scenario(id: &str, mode: Mode) {
    let ev = Event::new(id, mode);
    ev.apply();
    let track = ev.room("rust").await;
    let talk_room = ev.room("talk-t1").await;
    let (ann, bob, cy, dee) = (ev.api(&ev.users.ann), ev.api(&ev.users.bob), ev.api(&ev.users.cy), ev.api(&ev.users.dee));
    for who in [&ann, &bob, &cy, &dee] {
        join(who, &track).await;
    }
    // Ann is invited to the talk room as its host: she reads it (as the reader, for the application service).
    join(&ann, &talk_room).await;
    let (status, body) = dee.put(&format!("/_matrix/client/v3/profile/{}/displayname", enc(&ev.users.dee.user_id)), &json!({"displayname": "Dee <i>"})).await;
    assert_eq!(status, 200, "{body}");

    let mut run = ev.run();
    let url = ev.qa_url(&talk_room).await;

    let q1 = ask(&bob, &track, "How does it scale?").await;
    let q2 = ask(&cy, &track, "Is it <b>safe</b>?").await;
    let q3 = ask(&dee, &track, "Typo questoin").await;
    let q4 = ask(&cy, &track, "To be deleted").await;
    let q5 = ask(&bob, &track, "Buy my product").await;
    react(&cy, &track, &q1, "👍").await;
    react(&dee, &track, &q1, "👍").await;
    react(&dee, &track, &q1, "👍\u{FE0F}").await; // the same person again, with the variation selector: one vote
    let undo = react(&bob, &track, &q1, "👍").await; // the asker's own vote, taken back anyway
    redact(&bob, &track, &undo).await;
    react(&bob, &track, &q2, "👍").await;
    react(&cy, &track, &q2, "👍").await; // cy asked q2: the asker's own vote does not count
    let taken_back = react(&ann, &track, &q2, "👍").await;
    redact(&ann, &track, &taken_back).await;
    send(&dee, &track, "m.room.message", json!({"msgtype": "m.text", "body": "* Typo question", "m.new_content": {"msgtype": "m.text", "body": "Typo question"}, "m.relates_to": {"rel_type": "m.replace", "event_id": q3}})).await;
    redact(&cy, &track, &q4).await;
    react(&ann, &track, &q5, "❌").await; // Ann hosts the talk: hidden
    react(&dee, &track, &q2, "✅").await; // an attendee: nothing
    react(&dee, &track, &q3, "❌").await; // an attendee: nothing
    react(&ann, &track, &q1, "✅").await; // the host: answered

    let want = json!({
        "questions": [
            {"id": q1, "text": "How does it scale?", "asker": ev.users.bob.user_id, "asker_name": localpart(&ev.users.bob.user_id), "votes": 2, "answered": true},
            {"id": q2, "text": "Is it <b>safe</b>?", "asker": ev.users.cy.user_id, "asker_name": localpart(&ev.users.cy.user_id), "votes": 1, "answered": false},
            {"id": q3, "text": "Typo question", "asker": ev.users.dee.user_id, "asker_name": "Dee <i>", "votes": 0, "answered": false},
        ],
        "hidden": 1,
    });
    // asked_at comes from the server: compared apart.
    let strip = |mut v: Value| {
        for q in v["questions"].as_array_mut().into_iter().flatten() {
            assert!(q["asked_at"].as_i64().is_some_and(|t| t > 0), "{q}");
            q.as_object_mut().expect("object").remove("asked_at");
        }
        v
    };
    let live = strip(board_until_stripped(&url, &want).await);
    assert_eq!(live["talk"]["key"], "t1");
    assert_eq!(ranking(&live).1, 1);
    // The metrics moved with what the bot took in: at least the four questions and five upvotes still standing, at
    // most all five and seven cast (a question or vote deleted before the bot read it arrives without its content).
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", ev.port)).await.expect("metrics").text().await.expect("text");
    let value = |name: &str| {
        metrics.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok())).unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    let (questions, votes) = (value("stagehand_qa_questions_total "), value("stagehand_qa_votes_total "));
    assert!((4.0..=5.0).contains(&questions) && (5.0..=7.0).contains(&votes), "questions {questions}, votes {votes}");
    assert_eq!(value("stagehand_qa_boards "), 1.0);

    // Restarted: the ranking is intact.
    let log = stop(&mut run);
    assert!(log.contains("questions: taken from"), "{log}");
    let mut run = ev.run();
    assert_eq!(strip(board_until_stripped(&url, &want).await)["questions"], want["questions"]);
    stop(&mut run);

    // The store deleted: rebuilt from the rooms' history, the same.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(ev.dir.path().join(format!("day.sqlite{suffix}")));
    }
    let mut run = ev.run();
    let rebuilt = strip(board_until_stripped(&url, &want).await);
    assert_eq!(rebuilt["questions"], want["questions"]);
    stop(&mut run);

    /// Reads the board until its questions (without `asked_at`) and hidden count equal `want` (the bot takes events
    /// in as they come), at most a minute.
    async fn board_until_stripped(url: &str, want: &Value) -> Value {
        let started = Instant::now();
        let mut last = Value::Null;
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(resp) = reqwest::get(url).await
                && let Ok(v) = resp.json::<Value>().await
            {
                let mut cmp = v.clone();
                for q in cmp["questions"].as_array_mut().into_iter().flatten() {
                    q.as_object_mut().map(|o| o.remove("asked_at"));
                }
                if cmp["questions"] == want["questions"] && cmp["hidden"] == want["hidden"] {
                    return v;
                }
                last = v;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the board never became\n{want:#}\nlast seen:\n{last:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn questions_votes_and_moderation_over_sync_survive_restarts_and_a_lost_store() {
    scenario("qasync", Mode::Sync).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_as_an_application_service() {
    scenario("qaas", Mode::AppService).await;
}

/// What a URL's JSON says, at most a minute of tries until `ok` holds; the last answer otherwise.
async fn json_until(url: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    let mut last = Value::Null;
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(resp) = reqwest::get(url).await
            && let Ok(v) = resp.json::<Value>().await
        {
            if ok(&v) {
                return v;
            }
            last = v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// The bot's notices in a room, as a plain client reads them.
async fn notices(ev: &Event, room: &str) -> Vec<String> {
    let (status, body) = Api::new(&ev.synapse_url, &ev.reader).get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=200", enc(room))).await;
    assert_eq!(status, 200, "{body}");
    let mut out: Vec<String> = body["chunk"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["content"]["msgtype"] == "m.notice")
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_string))
        .collect();
    out.reverse();
    out
}

/// Waits (at most a minute) for a notice of the bot starting with `start` in a room.
async fn notice_until(ev: &Event, room: &str, start: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if notices(ev, room).await.iter().any(|n| n.starts_with(start)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no notice {start:?} in {:?}", notices(ev, room).await);
}

/// Two talks back to back in one track room, rehearsed at 20x: a question asked during each lands on its own talk;
/// at the second (pre-recorded) talk's Q&A start its top question is posted to its talk room for the host, and after
/// the first talk its unanswered question is posted to its talk room for the speaker.
#[tokio::test(flavor = "multi_thread")]
async fn back_to_back_talks_in_a_rehearsal_each_get_their_questions_and_the_lists_are_posted() {
    let talks = "  - {key: t1, title: First, track: rust, room: R1, start: \"2026-03-14 10:00\", duration: 10, speakers: [bob], hosts: [ann]}\n\
                 \x20 - {key: t2, title: Second, track: rust, room: R1, start: \"2026-03-14 10:10\", end: \"2026-03-14 10:20\", qa_start: \"2026-03-14 10:15\", speakers: [bob], hosts: [ann]}\n";
    let ev = Event::with("qab2b", Mode::Sync, talks, "qa: {margin_minutes: 1}\n");
    ev.apply();
    let track = ev.room("rust").await;
    let (room1, room2, backstage) = (ev.room("talk-t1").await, ev.room("talk-t2").await, ev.room("rust-backstage").await);
    let (ann, cy, dee) = (ev.api(&ev.users.ann), ev.api(&ev.users.cy), ev.api(&ev.users.dee));
    for who in [&ann, &cy, &dee] {
        join(who, &track).await;
    }
    // 10 conference minutes are 30 s: the first talk starts 5 s after the run does.
    let mut run = ev.run_with(&["--rehearse", "--start-in", "5s", "--speed", "20"]);
    let live = ev.qa_url(&backstage).await;
    let (url1, url2) = (ev.qa_url(&room1).await, ev.qa_url(&room2).await);
    // The track room's notices tell where the conference clock is: the first talk's go-live, then its end (the
    // second talk's start).
    notice_until(&ev, &track, "Now live: “First”").await;
    assert_eq!(json_until(&live, |v| v["talk"]["key"] == "t1").await["talk"]["key"], "t1", "the backstage's board follows the talk of the moment");
    let q1 = ask(&cy, &track, "For the first talk?").await;
    react(&dee, &track, &q1, "👍").await;
    notice_until(&ev, &track, "“First” has ended").await;
    assert_eq!(json_until(&live, |v| v["talk"]["key"] == "t2").await["talk"]["key"], "t2");
    let q2 = ask(&dee, &track, "For the second talk?").await;
    react(&cy, &track, &q2, "👍").await;
    let texts = |v: &Value| v["questions"].as_array().into_iter().flatten().map(|q| q["text"].as_str().unwrap_or_default().to_string()).collect::<Vec<_>>();
    let one = json_until(&url1, |v| !texts(v).is_empty()).await;
    let two = json_until(&url2, |v| v["questions"][0]["votes"] == 1).await;
    assert_eq!(texts(&one), ["For the first talk?"], "{one}");
    assert_eq!(texts(&two), ["For the second talk?"], "{two}");
    // The second talk's Q&A starts 5 conference minutes in (15 s); the first talk's summary comes 5 minutes after its
    // end. Both in the talk rooms, read back by a plain client.
    let started = Instant::now();
    let (mut said1, mut said2) = (Vec::new(), Vec::new());
    while started.elapsed() < Duration::from_secs(60) {
        said1 = notices(&ev, &room1).await;
        said2 = notices(&ev, &room2).await;
        if said1.iter().any(|n| n.starts_with("Questions left unanswered")) && said2.iter().any(|n| n.starts_with("Top questions")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let top = said2.iter().find(|n| n.starts_with("Top questions")).unwrap_or_else(|| panic!("no top questions in {said2:?}"));
    assert!(top.contains("1. For the second talk? (1 vote, ") && !top.contains("first talk"), "{top}");
    let summary = said1.iter().find(|n| n.starts_with("Questions left unanswered")).unwrap_or_else(|| panic!("no summary in {said1:?}"));
    assert!(summary.contains("1. For the first talk? (1 vote, ") && !summary.contains("second talk"), "{summary}");
    stop(&mut run);
}
