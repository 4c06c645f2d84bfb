//! The organisers' status against a real Synapse. During a rehearsal (the first talk a few seconds ahead, the clock
//! at 20x) the `/status` page in headless Chromium, refreshing itself, shows the live talk and the speaker who never
//! joined (and not the one who did); without the organisers' token, or with a wrong one, it answers 403, and
//! `/status.json` takes the token as a bearer too. `stagehand status` against the same server prints the missing
//! speaker and the next action, and with `--url` adds the running bot's runner and intake.

mod common;
#[path = "common/cdp.rs"]
mod cdp;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DurationRound, Utc};
use common::{Api, User, chromium, enc, free_port, stop, synapse};
use serde_json::{Value, json};

const TOKEN: &str = "organisers-only-4f9c2a7e1b3d5f60";

struct Camp {
    id: String,
    dir: tempfile::TempDir,
    bot: User,
    ann: User,
    config: PathBuf,
    schedule: PathBuf,
}

impl Camp {
    /// A devroom with two talks on the real clock: the first 40 minutes from now (Ann and Bob speak), the second
    /// half an hour later (Ann). The organisers' token is in a file the config names.
    fn new(id: &str) -> Camp {
        let s = synapse();
        let (bot, ann, bob) = (s.register(&format!("{id}-bot"), false), s.register(&format!("{id}-ann"), false), s.register(&format!("{id}-bob"), false));
        let dir = tempfile::tempdir().expect("temp dir");
        let first = Utc::now().duration_trunc(chrono::Duration::minutes(1)).expect("a minute") + chrono::Duration::minutes(40);
        let at = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%d %H:%M").to_string();
        let schedule = common::write(
            dir.path(),
            "schedule.yaml",
            &format!(
                "conference: {{id: {id}, title: Status camp, timezone: UTC}}\n\
                 tracks:\n  - {{key: rust, name: Rust, kind: devroom}}\n\
                 people:\n  - {{key: ann, name: Ann Lee, matrix: \"{a}\"}}\n  - {{key: bob, name: Bob Ray, matrix: \"{b}\"}}\n\
                 talks:\n\
                 \x20 - {{key: t1, title: First talk, track: rust, room: R1, start: \"{t1}\", duration: 30, speakers: [ann, bob]}}\n\
                 \x20 - {{key: t2, title: Second talk, track: rust, room: R1, start: \"{t2}\", duration: 30, speakers: [ann]}}\n",
                a = ann.user_id,
                b = bob.user_id,
                t1 = at(first),
                t2 = at(first + chrono::Duration::minutes(30)),
            ),
        );
        let token = common::write(dir.path(), "organisers", &format!("{TOKEN}\n"));
        let config = common::write(
            dir.path(),
            "config.yaml",
            &format!(
                "conference: {{id: {id}, timezone: UTC}}\n\
                 homeserver: {{server_name: {server}, url: \"{url}\"}}\n\
                 widgets: {{secret_file: \"{d}/secret\"}}\n\
                 timeline: {{store: \"{d}/store.sqlite\", actions: {{spread_seconds: 0}}}}\n\
                 operations: {{organiser_token_file: \"{token}\"}}\n",
                server = s.server_name,
                url = s.url,
                d = dir.path().display(),
                token = token.display(),
            ),
        );
        Camp { id: id.to_string(), dir, bot, ann, config, schedule }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_stagehand"));
        c.args(args).arg("--config").arg(&self.config).arg(&self.schedule);
        c.env("STAGEHAND_ACCESS_TOKEN", &self.bot.token).env_remove("STAGEHAND_ORGANISER_TOKEN").env("RUST_LOG", "stagehand=info");
        c.current_dir(self.dir.path());
        c
    }

    fn apply(&self) {
        let out = common::output_within(&mut self.command(&["apply", "--json"]), common::CLI_LIMIT, "stagehand apply");
        assert!(out.status.success(), "apply: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `stagehand status` with more arguments: its stdout.
    fn status(&self, extra: &[&str]) -> String {
        let mut args = vec!["status"];
        args.extend_from_slice(extra);
        let out = common::output_within(&mut self.command(&args), common::CLI_LIMIT, "stagehand status");
        assert!(out.status.success(), "status: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("UTF-8")
    }

    async fn room(&self, key: &str) -> String {
        let alias = format!("#{}-{key}:{}", self.id, synapse().server_name);
        let (status, body) = Api::new(&synapse().url, &self.bot.token).get(&format!("/_matrix/client/v3/directory/room/{}", enc(&alias))).await;
        assert_eq!(status, 200, "{alias}: {body}");
        body["room_id"].as_str().expect("room id").to_string()
    }
}

async fn get(url: &str, bearer: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    match req.send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_shows_the_live_talk_and_a_missing_speaker_during_a_rehearsal() {
    let camp = Camp::new("stat");
    camp.apply();
    // Ann joins both her talk rooms; Bob never joins his.
    let ann = Api::new(&synapse().url, &camp.ann.token);
    for key in ["talk-t1", "talk-t2"] {
        let room = camp.room(key).await;
        let (status, body) = ann.post(&format!("/_matrix/client/v3/join/{}", enc(&room)), &json!({})).await;
        assert_eq!(status, 200, "{body}");
    }

    // On the real clock, before anything runs: Bob is missing from the first talk, within the hour; its last reminder
    // is among the next actions (its first, an hour before it, is late: nothing runs yet).
    let text = camp.status(&[]);
    let line = |start: &str| text.lines().find(|l| l.starts_with(start)).unwrap_or_default().to_string();
    assert!(line("Missing in the next hour:").contains("Bob Ray (First talk"), "{text}");
    assert!(!line("Missing in the next hour:").contains("Ann Lee"), "{text}");
    assert!(line("Next:").contains("last-reminder First talk"), "{text}");
    assert!(line("Trouble:").contains("1 late"), "{text}");
    assert!(text.contains("Homeserver: answering"), "{text}");
    let json: Value = serde_json::from_str(&camp.status(&["--json"])).expect("the status as JSON");
    let next = json["actions"]["next"].as_array().cloned().unwrap_or_default();
    assert!(next.iter().any(|a| a["kind"] == "last-reminder" && a["talk"] == "t1" && a["state"] == "pending"), "{json:#}");
    assert_eq!(json["attendance"]["missing"][0]["people"][0]["name"], "Bob Ray", "{json:#}");
    assert_eq!(json["attendance"]["missing"][0]["people"][0]["presence"], "invited", "{json:#}");
    assert_eq!(json["rooms"]["kinds"].as_array().map(|k| k.iter().all(|k| k["existing"] == k["planned"])), Some(true), "{json:#}");

    // The rehearsal: the first talk starts 5 s from now and lasts 90 s of real time.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut run = camp
        .command(&["run", "--listen", &listen, "--rehearse", "--start-in", "5s", "--speed", "20", "--talks", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("stagehand run");
    let base = format!("http://{listen}");
    let started = Instant::now();
    while get(&format!("{base}/healthz"), None).await.0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(60), "stagehand run never served: {}", stop(&mut run));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Only the organisers.
    assert_eq!(get(&format!("{base}/status"), None).await.0, 403);
    assert_eq!(get(&format!("{base}/status?token=organisers-only-4f9c2a7e1b3d5f6X"), None).await.0, 403);
    assert_eq!(get(&format!("{base}/status.json"), Some("not-the-token")).await.0, 403);
    assert_eq!(get(&format!("{base}/status.json"), Some(TOKEN)).await.0, 200);

    let mut browser = cdp::Browser::open(&chromium(), &format!("{base}/status?token={TOKEN}")).await;
    let section = |id: &str| format!("(document.getElementById('{id}') || {{innerText: ''}}).innerText");
    let (live, took) = browser.wait_for(&section("live"), Duration::from_secs(60), |v| v.as_str().is_some_and(|t| t.contains("First talk"))).await;
    assert!(live.as_str().unwrap_or_default().contains("First talk"), "the live talk never showed ({took:?}): {live}");
    let (missing, took) =
        browser.wait_for(&section("missing"), Duration::from_secs(60), |v| v.as_str().is_some_and(|t| t.contains("Bob Ray"))).await;
    let missing = missing.as_str().unwrap_or_default().to_string();
    assert!(missing.contains("Bob Ray") && missing.contains("invited, not joined"), "Bob never showed as missing ({took:?}): {missing}");
    assert!(!missing.contains("Ann Lee"), "Ann joined: {missing}");
    let health = browser.eval(&section("health")).await;
    assert!(health.as_str().unwrap_or_default().contains("Runner"), "{health}");
    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&shot).expect("artifacts");
    browser.screenshot(&shot.join("status.png")).await;
    drop(browser);

    // The same from the command line, with the running bot's live parts.
    let text = camp.status(&["--url", &base]);
    assert!(text.contains("Runner: alive"), "{text}");
    assert!(text.contains("Intake (sync): alive"), "{text}");

    let err = stop(&mut run);
    assert!(err.contains("organisers' status on"), "{err}");
    assert!(!err.contains(TOKEN), "the token is never logged: {err}");
}
