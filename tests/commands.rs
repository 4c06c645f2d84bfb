//! Management-room commands on a real Synapse, through `stagehand run` (sync intake): an organiser runs `help`,
//! `status`, `timeline`, `plan`, `skip`, and `apply` with its `confirm`; an unauthorised member of the management
//! room and a user in a track room get a short refusal and nothing changes on the server; `apply` without `confirm`
//! changes nothing; someone else's `confirm` does nothing; a command sent while the bot was down is not run.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DurationRound, Utc};
use common::{Api, enc, stop, synapse};
use serde_json::{Value, json};

fn txn() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("cmd{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

async fn say(api: &Api, room: &str, body: &str) -> String {
    let (status, resp) = api.put(&format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{}", enc(room), txn()), &json!({"msgtype": "m.text", "body": body})).await;
    assert_eq!(status, 200, "send: {resp}");
    resp["event_id"].as_str().expect("event id").to_string()
}

async fn room_id(api: &Api, alias: &str) -> String {
    let (status, body) = api.get(&format!("/_matrix/client/v3/directory/room/{}", enc(alias))).await;
    assert_eq!(status, 200, "{alias}: {body}");
    body["room_id"].as_str().expect("room id").to_string()
}

/// The bot's notices in a room replying to (or threaded under) `command`, oldest first.
async fn answers(reader: &Api, room: &str, command: &str) -> Vec<String> {
    let (status, body) = reader.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=300", enc(room))).await;
    assert_eq!(status, 200, "{body}");
    let mut out: Vec<String> = body["chunk"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["content"]["msgtype"] == "m.notice")
        .filter(|e| {
            let r = &e["content"]["m.relates_to"];
            r["m.in_reply_to"]["event_id"] == command || r["event_id"] == command
        })
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_string))
        .collect();
    out.reverse();
    out
}

/// Waits (at most a minute) until the bot has answered `command` with `n` notices.
async fn answered(reader: &Api, room: &str, command: &str, n: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let got = answers(reader, room, command).await;
        if got.len() >= n || started.elapsed() > Duration::from_secs(60) {
            assert!(got.len() >= n, "no answer to {command} after a minute: {got:?}");
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn topic(reader: &Api, room: &str) -> String {
    let (_, body) = reader.get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.topic/", enc(room))).await;
    body["topic"].as_str().unwrap_or_default().to_string()
}

/// A small conference with a management room for `org`, built (`stagehand apply`); `stagehand` makes commands
/// against it with the bot's token.
struct Camp {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    schedule: std::path::PathBuf,
    bot: common::User,
}

impl Camp {
    /// `talk_start`: when its one talk starts; `timeline`, `operations`: the inside of those config sections;
    /// `url`: the homeserver (or a proxy in front of it).
    /// `speaker`: the Matrix ID of the talk's speaker.
    fn build(id: &str, bot: common::User, talk_start: chrono::DateTime<Utc>, speaker: &str, timeline: &str, operations: &str, url: &str) -> Camp {
        let s = synapse();
        let dir = tempfile::tempdir().expect("temp dir");
        let schedule = common::write(
            dir.path(),
            "schedule.yaml",
            &format!(
                "conference: {{id: {id}, title: Command camp, timezone: UTC}}\n\
                 tracks:\n  - {{key: rust, name: Rust, kind: devroom}}\n\
                 people:\n  - {{key: sp, name: Speaker, matrix: \"{speaker}\"}}\n\
                 talks:\n  - {{key: t1, title: The talk, track: rust, room: R1, start: \"{}\", duration: 30, speakers: [sp]}}\n",
                talk_start.format("%Y-%m-%d %H:%M")
            ),
        );
        let config = common::write(
            dir.path(),
            "config.yaml",
            &format!(
                "conference: {{id: {id}, timezone: UTC}}\n\
                 homeserver: {{server_name: {server}, url: \"{url}\"}}\n\
                 widgets: {{enabled: false}}\n\
                 timeline: {{store: \"{d}/day.sqlite\"{timeline}}}\n\
                 operations: {{management_room: management{operations}}}\n",
                server = s.server_name,
                d = dir.path().display(),
            ),
        );
        let camp = Camp { dir, config, schedule, bot };
        let out = common::output_within(&mut camp.stagehand(&["apply"]), common::CLI_LIMIT, "stagehand apply");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        camp
    }

    fn stagehand(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_stagehand"));
        c.args(args).arg("--config").arg(&self.config).arg(&self.schedule).current_dir(self.dir.path());
        c.env("STAGEHAND_ACCESS_TOKEN", &self.bot.token).env("RUST_LOG", "stagehand=info");
        c
    }

    fn run(&self) -> Child {
        let listen = format!("127.0.0.1:{}", common::free_port());
        self.stagehand(&["run", "--listen", &listen]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("stagehand run")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn organisers_command_and_everyone_else_is_refused() {
    let s = synapse();
    let id = "cmds";
    let (bot, org, mallory, eve) = (s.register("cmds-bot", false), s.register("cmds-org", false), s.register("cmds-mallory", false), s.register("cmds-eve", false));
    let start = Utc::now().duration_trunc(chrono::Duration::minutes(1)).expect("a minute") + chrono::Duration::hours(2);
    let camp = Camp::build(id, bot.clone(), start, &eve.user_id, "", &format!(", organisers: [\"{}\"], confirm_seconds: 60", org.user_id), &s.url);
    let (as_bot, as_org, as_mallory, as_eve) = (Api::new(&s.url, &bot.token), Api::new(&s.url, &org.token), Api::new(&s.url, &mallory.token), Api::new(&s.url, &eve.token));
    let management = room_id(&as_bot, &format!("#{id}-management:{}", s.server_name)).await;
    let track = room_id(&as_bot, &format!("#{id}-rust:{}", s.server_name)).await;
    // The organiser was invited by the build; Mallory is let in by hand (a member who is not an organiser).
    let (status, body) = as_bot.post(&format!("/_matrix/client/v3/rooms/{}/invite", enc(&management)), &json!({"user_id": mallory.user_id})).await;
    assert_eq!(status, 200, "{body}");
    for (who, room) in [(&as_org, &management), (&as_mallory, &management), (&as_eve, &track)] {
        let (status, body) = who.post(&format!("/_matrix/client/v3/join/{}", enc(room)), &json!({})).await;
        assert_eq!(status, 200, "join: {body}");
    }
    let while_down = say(&as_org, &management, "!sh status").await;
    // Drift on the server that an apply would undo: the track room's topic.
    let planned_topic = topic(&as_bot, &track).await;
    let (status, _) = as_bot.put(&format!("/_matrix/client/v3/rooms/{}/state/m.room.topic/", enc(&track)), &json!({"topic": "drifted"})).await;
    assert_eq!(status, 200);

    let mut run = camp.run();
    // The run's own converge restores the topic at start: drift again once it has (so `apply` has work to do).
    let started = Instant::now();
    while topic(&as_bot, &track).await != planned_topic && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = as_bot.put(&format!("/_matrix/client/v3/rooms/{}/state/m.room.topic/", enc(&track)), &json!({"topic": "drifted again"})).await;
    assert_eq!(status, 200);

    let help = say(&as_org, &management, "!sh help").await;
    let got = answered(&as_bot, &management, &help, 2).await;
    assert!(got[1].contains("!sh apply") && got[1].contains("!sh confirm"), "{got:?}");

    let status_cmd = say(&as_org, &management, "!sh status").await;
    let got = answered(&as_bot, &management, &status_cmd, 2).await;
    assert!(got[0].starts_with("Command camp at ") && got[0].contains("\nNext: ") && got[0].contains("The talk"), "{got:?}");

    let timeline = say(&as_org, &management, "!sh timeline t1").await;
    let got = answered(&as_bot, &management, &timeline, 2).await;
    let first_reminder = got[1].lines().find(|l| l.contains("first-reminder")).expect("the first reminder listed").to_string();
    assert!(first_reminder.contains("(pending)"), "{first_reminder}");
    let action_id = first_reminder.rsplit("id ").next().expect("an id").to_string();

    let plan = say(&as_org, &management, "!sh plan").await;
    let got = answered(&as_bot, &management, &plan, 1).await;
    assert!(got[0].starts_with("plan: ") && got[0].contains("1 updated"), "{got:?}");

    // Mallory is in the room but no organiser; Eve types a command in a track room: refused, nothing happens.
    let refused = say(&as_mallory, &management, "!sh apply").await;
    assert_eq!(answered(&as_bot, &management, &refused, 1).await, ["Sorry, only the organisers may run commands."]);
    let elsewhere = say(&as_eve, &track, "!sh apply").await;
    assert_eq!(answered(&as_bot, &track, &elsewhere, 1).await, ["Sorry, commands are taken only from organisers in the management room."]);

    let apply = say(&as_org, &management, "!sh apply").await;
    let got = answered(&as_bot, &management, &apply, 1).await;
    assert!(got[0].starts_with("apply would: ") && got[0].contains("!sh confirm"), "{got:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(topic(&as_bot, &track).await, "drifted again", "apply without confirm changes nothing");
    let not_hers = say(&as_mallory, &management, "!sh confirm").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(answers(&as_bot, &management, &not_hers).await.is_empty(), "a second refusal to Mallory within minutes is not posted");
    assert_eq!(topic(&as_bot, &track).await, "drifted again", "someone else's confirm changes nothing");
    let confirm = say(&as_org, &management, "!sh confirm").await;
    let got = answered(&as_bot, &management, &confirm, 1).await;
    assert!(got[0].starts_with("apply: ") && got[0].contains("1 updated"), "{got:?}");
    assert_eq!(topic(&as_bot, &track).await, planned_topic, "the confirmed apply restored the topic");

    let skip = say(&as_org, &management, &format!("!sh skip {action_id}")).await;
    let got = answered(&as_bot, &management, &skip, 1).await;
    assert!(got[0].starts_with("Skipped: first-reminder"), "{got:?}");
    let again = say(&as_org, &management, "!sh timeline t1").await;
    let got = answered(&as_bot, &management, &again, 2).await;
    assert!(got[1].lines().any(|l| l.contains("first-reminder") && l.contains("(skipped)")), "{got:?}");

    let attendance = say(&as_org, &management, "!sh attendance").await;
    let got = answered(&as_bot, &management, &attendance, 2).await;
    assert!(got[0].starts_with("Attendance: 0 of 1 joined (0%), 1 invited"), "Eve, the speaker, is invited to the talk room: {got:?}");
    assert!(got[1].contains("Speaker"), "who is missing, in the thread: {got:?}");

    // Replay the "live in five minutes" of the talk (two hours early): shown first, sent on confirm, once.
    let live_soon = got_action(&as_bot, &as_org, &management, "live-soon").await;
    let replay = say(&as_org, &management, &format!("!sh replay {live_soon}")).await;
    let got = answered(&as_bot, &management, &replay, 1).await;
    assert!(got[0].starts_with("replay would send live-soon of talk t1 again in talk/t1."), "{got:?}");
    let confirm = say(&as_org, &management, "!sh confirm").await;
    let got = answered(&as_bot, &management, &confirm, 1).await;
    assert!(got[0].starts_with("Sent again: live-soon of talk t1"), "{got:?}");
    let talk_room = room_id(&as_bot, &format!("#{id}-talk-t1:{}", s.server_name)).await;
    let (_, chunk) = as_bot.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100", enc(&talk_room))).await;
    let sent: Vec<&Value> = chunk["chunk"].as_array().into_iter().flatten().filter(|e| e["content"]["body"].as_str().is_some_and(|b| b.contains("goes live in 5 minutes"))).collect();
    assert_eq!(sent.len(), 1, "{chunk}");

    // invite and rehearse wait for a confirm; cancel drops them.
    for (cmd, preview) in [("!sh invite", "invite would: "), ("!sh rehearse 1", "rehearse would run the first 1 talks")] {
        let asked = say(&as_org, &management, cmd).await;
        let got = answered(&as_bot, &management, &asked, 1).await;
        assert!(got[0].starts_with(preview), "{got:?}");
        let cancel = say(&as_org, &management, "!sh cancel").await;
        assert_eq!(answered(&as_bot, &management, &cancel, 1).await, ["Cancelled."]);
    }

    // refresh re-reads the schedule now: a renamed talk is told in the management room.
    let text = std::fs::read_to_string(&camp.schedule).expect("schedule").replace("The talk", "The renamed talk");
    std::fs::write(&camp.schedule, text).expect("schedule");
    let refresh = say(&as_org, &management, "!sh refresh").await;
    assert!(answered(&as_bot, &management, &refresh, 1).await[0].starts_with("Re-reading the schedule now"));
    let started = Instant::now();
    let mut told = false;
    while !told && started.elapsed() < Duration::from_secs(60) {
        let (_, chunk) = as_bot.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100", enc(&management))).await;
        told = chunk["chunk"].as_array().into_iter().flatten().any(|e| e["content"]["body"] == "📅 The schedule changed: 1 renamed (“The talk” → “The renamed talk”).");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(told, "the refresh's change was told in the management room");

    assert!(answers(&as_bot, &management, &while_down).await.is_empty(), "a command sent while the bot was down is not run");
    stop(&mut run);
}

/// The id of t1's action of `kind`, as `!sh timeline t1` lists it.
async fn got_action(reader: &Api, org: &Api, management: &str, kind: &str) -> String {
    let asked = say(org, management, "!sh timeline t1").await;
    let got = answered(reader, management, &asked, 2).await;
    let line = got[1].lines().find(|l| l.contains(&format!(" {kind} "))).unwrap_or_else(|| panic!("no {kind} in {got:?}")).to_string();
    line.rsplit("id ").next().expect("an id").to_string()
}

/// A homeserver outage of a minute during `run` (every request answered 502 by a proxy in front of Synapse): the
/// management room gets one grouped problem report and one recovery notice, nothing else; the reminder that fell
/// due during the outage is sent once, late but within its grace.
#[tokio::test(flavor = "multi_thread")]
async fn an_outage_is_reported_once_and_its_end_once_and_nothing_due_is_lost() {
    let s = synapse();
    let id = "outage";
    let (bot, org) = (s.register("outage-bot", false), s.register("outage-org", false));
    let proxy = common::proxy::Proxy::start(&s.url);
    // The talk starts at the first whole minute at least 90 s away; its only action, a reminder, a minute before.
    let start = (Utc::now() + chrono::Duration::seconds(90)).duration_trunc(chrono::Duration::minutes(1)).expect("a minute") + chrono::Duration::minutes(1);
    let reminder_at = start - chrono::Duration::minutes(1);
    let off = ["first_reminder", "backstage_roll", "live_soon", "backstage_live_soon", "last_minute", "maximise", "live_notice", "suggest", "top_questions", "ending_soon", "restore_layout", "open_room", "unsuggest", "hallway_notice", "question_summary"]
        .iter()
        .map(|k| format!("{k}: {{enabled: false}}"))
        .collect::<Vec<_>>()
        .join(", ");
    let timeline = format!(", actions: {{spread_seconds: 0, last_reminder: {{minutes_before: 1}}, {off}}}");
    let camp = Camp::build(id, bot.clone(), start, &org.user_id, &timeline, &format!(", organisers: [\"{}\"]", org.user_id), &proxy.url);
    let as_bot = Api::new(&s.url, &bot.token);
    let management = room_id(&as_bot, &format!("#{id}-management:{}", s.server_name)).await;
    let talk_room = room_id(&as_bot, &format!("#{id}-talk-t1:{}", s.server_name)).await;

    let mut run = camp.run();
    // Down from 20 s before the reminder is due to 40 s after.
    let until = |t: chrono::DateTime<Utc>| (t - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(until(reminder_at - chrono::Duration::seconds(20))).await;
    proxy.set_down(true);
    tokio::time::sleep(until(reminder_at + chrono::Duration::seconds(40))).await;
    proxy.set_down(false);

    let notices = |chunk: &Value| -> Vec<String> {
        let mut out: Vec<String> = chunk["chunk"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["sender"] == bot.user_id.as_str() && e["content"]["msgtype"] == "m.notice")
            .filter_map(|e| e["content"]["body"].as_str().map(str::to_string))
            .collect();
        out.reverse();
        out
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(90) {
        let (_, chunk) = as_bot.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100", enc(&management))).await;
        if notices(&chunk).iter().any(|t| t.starts_with("✅")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A little longer: anything more that would come (a flood) has time to arrive.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let (_, chunk) = as_bot.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100", enc(&management))).await;
    let told = notices(&chunk);
    assert_eq!(told.len(), 2, "one report and one recovery notice: {told:?}");
    assert!(told[0].starts_with("⚠️ The homeserver is not answering since"), "{told:?}");
    assert!(told[1].starts_with("✅ The homeserver answers again"), "{told:?}");
    let (_, chunk) = as_bot.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100", enc(&talk_room))).await;
    let reminders: Vec<String> = notices(&chunk).into_iter().filter(|t| t.contains("starts in 1 minute")).collect();
    assert_eq!(reminders.len(), 1, "the reminder due during the outage, sent once: {reminders:?}");
    stop(&mut run);
}
