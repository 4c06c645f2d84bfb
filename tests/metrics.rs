//! `/metrics` of `stagehand run` against a real Synapse: scraped twice during a short rehearsal, the homeserver
//! requests and the timeline's actions move, the plan's rooms are counted, Q&A's series are there at zero, and
//! `/healthz` keeps its shape beside them. Values are read from the text format, never matched as whole strings.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::synapse;

/// The sum of every series called `name` whose labels include `labels` (a histogram's `_count` and `_bucket` are
/// series of their own).
fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut total = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let (series_name, rest) = series.split_once('{').unwrap_or((series, ""));
        let pairs: Vec<(&str, &str)> =
            rest.trim_end_matches('}').split(',').filter_map(|p| p.split_once('=')).map(|(k, v)| (k, v.trim_matches('"'))).collect();
        if series_name == name && labels.iter().all(|l| pairs.contains(l)) {
            total += value.parse::<f64>().unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }
    total
}

async fn scrape(base: &str) -> Option<String> {
    let resp = reqwest::get(format!("{base}/metrics")).await.ok()?;
    (resp.status() == 200).then_some(())?;
    resp.text().await.ok()
}

/// Stops `stagehand run` with SIGTERM and waits (bounded) for it to end cleanly.
fn stop(child: &mut Child, log: &std::path::Path) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(40) {
            let _ = child.kill();
            panic!("stagehand run did not stop after SIGTERM:\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{}", std::fs::read_to_string(log).unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_move_as_a_rehearsal_sends_its_actions() {
    let s = synapse();
    let (bot, ann) = (s.register("metrics-bot", false), s.register("metrics-ann", false));
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().display();
    let schedule = common::write(
        dir.path(),
        "schedule.yaml",
        &format!(
            "conference: {{id: metrics, title: Metrics camp, timezone: UTC}}\n\
             tracks:\n  - {{key: rust, name: Rust, kind: devroom}}\n\
             people:\n  - {{key: ann, name: Ann, matrix: \"{}\"}}\n\
             talks:\n\
             \x20 - {{key: t1, title: First, track: rust, room: R1, start: \"2027-06-01 10:00\", duration: 30, speakers: [ann]}}\n\
             \x20 - {{key: t2, title: Second, track: rust, room: R1, start: \"2027-06-01 10:30\", duration: 30, speakers: [ann]}}\n",
            ann.user_id
        ),
    );
    let config = common::write(
        dir.path(),
        "config.yaml",
        &format!(
            "conference: {{id: metrics, timezone: UTC}}\n\
             homeserver: {{server_name: {}, url: \"{}\"}}\n\
             schedule: {{source: \"{}\"}}\n\
             widgets: {{secret_file: \"{d}/secret\"}}\n\
             timeline: {{store: \"{d}/store.sqlite\", actions: {{spread_seconds: 0}}}}\n",
            s.server_name,
            s.url,
            schedule.display()
        ),
    );
    let built = common::stagehand_json(&["apply", "--json"], &config, &s.url, &bot.token);
    assert_eq!(built["failed"], 0, "{built}");

    // The first talk goes live 10 s from now, the conference clock running 60x: the countdowns at +5 s and +9 s,
    // the go-live at +10 s.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port");
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("run.log");
    let mut run = common::stagehand(
        &["run", "--listen", &format!("127.0.0.1:{port}"), "--rehearse", "--start-in", "10s", "--speed", "60", "--talks", "1"],
        &config,
        &s.url,
        &bot.token,
    )
    .env("RUST_LOG", "stagehand=info")
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).expect("the log file"))
    .spawn()
    .expect("stagehand run");

    let started = Instant::now();
    let first = loop {
        if let Some(text) = scrape(&base).await {
            break text;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "/metrics never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let requests = |t: &str| sum(t, "stagehand_homeserver_requests_total", &[("outcome", "ok")]);
    let sent = |t: &str| sum(t, "stagehand_timeline_actions_total", &[("outcome", "sent")]);
    let second = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let text = scrape(&base).await.expect("/metrics answers while the bot runs");
        let live = sum(&text, "stagehand_timeline_actions_total", &[("kind", "live-notice"), ("outcome", "sent")]);
        if live >= 1.0 && sent(&text) > sent(&first) {
            break text;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the go-live notice never showed in /metrics:\n{text}");
    };
    let health: serde_json::Value = reqwest::get(format!("{base}/healthz")).await.expect("/healthz").json().await.expect("JSON");
    stop(&mut run, &log);

    assert!(requests(&second) > requests(&first), "requests: {} then {}", requests(&first), requests(&second));
    assert!(sum(&second, "stagehand_homeserver_requests_total", &[("kind", "message"), ("outcome", "ok")]) >= 3.0, "{second}");
    assert!(sent(&second) > sent(&first), "actions sent: {} then {}", sent(&first), sent(&second));
    let lateness = |t: &str| sum(t, "stagehand_timeline_lateness_seconds_count", &[]);
    assert_eq!(lateness(&second), sent(&second), "one lateness per action sent");
    // The plan of the whole conference: a talk room per talk, one backstage, one track room.
    assert_eq!(sum(&second, "stagehand_rooms_planned", &[("kind", "talk_room")]), 2.0);
    assert_eq!(sum(&second, "stagehand_rooms_planned", &[("kind", "backstage")]), 1.0);
    for qa in ["stagehand_qa_questions_total", "stagehand_qa_votes_total", "stagehand_qa_boards"] {
        assert!(second.lines().any(|l| l.starts_with(&format!("{qa} "))), "{qa} missing");
    }
    assert_eq!(health["ok"], true, "{health}");
    assert_eq!(health["runner"]["alive"], true, "{health}");
}
