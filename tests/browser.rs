//! The widget pages in a real headless Chromium (Debian's `chromium`, installed by scripts/test): each page renders
//! its content, the countdown reaches zero and flips to LIVE under a controlled clock, a `<script>` title shows as
//! text. Screenshots are kept in target/test-artifacts/ for a person to look at.

mod common;
#[path = "common/cdp.rs"]
mod cdp;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use stagehand::config::{Config, WidgetsConfig};
use stagehand::plan::widgets::{WidgetContext, widgets};
use stagehand::plan;
use stagehand::schedule::{self, ReadOptions};
use stagehand::web::{Site, serve};

fn chromium() -> PathBuf {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("Chromium is not installed: run scripts/test (it installs Debian's chromium package)");
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs headless Chromium on a URL; returns the DOM after `budget_ms` of virtual time, and saves a screenshot.
fn browse(url: &str, budget_ms: u32, shot: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let common = [
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        format!("--user-data-dir={}", profile.path().display()),
        format!("--virtual-time-budget={budget_ms}"),
        "--window-size=900,600".into(),
    ];
    let limit = Duration::from_secs(60);
    let dom = common::output_within(Command::new(chromium()).args(&common).arg("--dump-dom").arg(url), limit, "chromium --dump-dom");
    assert!(dom.status.success(), "chromium failed: {}", String::from_utf8_lossy(&dom.stderr));
    let png = artifacts().join(format!("{shot}.png"));
    let out = common::output_within(Command::new(chromium()).args(&common).arg(format!("--screenshot={}", png.display())).arg(url), limit, "chromium --screenshot");
    assert!(out.status.success() && png.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(dom.stdout).unwrap()
}

async fn start() -> (String, Arc<Site>) {
    let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/schedules/example.yaml")).unwrap();
    let mut conf = schedule::read("example.yaml", &text, &ReadOptions::default()).unwrap().conference;
    conf.talks.iter_mut().find(|t| t.key == "rust-async").unwrap().title = "<script>document.title='pwned'</script>Async".into();
    let (config, _) = Config::parse("c.yaml", "conference: {id: matrixcamp-2026}\nhomeserver: {server_name: example.org}\n").unwrap();
    let plan = plan::plan(&conf, &config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut wc = WidgetsConfig::default();
    wc.web_url = base.clone();
    wc.livestream_url = Some(format!("{base}/healthz"));
    let widgets = WidgetContext { conference: "matrixcamp-2026".into(), bot: "@bot:example.org".into(), config: wc, secret: b"s3cret".to_vec() };
    let now = chrono_tz::Europe::Brussels.with_ymd_and_hms(2026, 3, 14, 10, 10, 0).unwrap().with_timezone(&chrono::Utc);
    let site = Arc::new(Site { conference: conf, plan, widgets, clock: Arc::new(move || now) });
    tokio::spawn(serve(site.clone(), listener, std::future::pending()));
    (base, site)
}

fn widget_url(site: &Site, key: &str, kind: &str, theme: &str) -> String {
    let room = site.plan.rooms.iter().find(|r| r.key == key).unwrap();
    let w = widgets(room, &site.widgets).into_iter().find(|w| w.state_key.starts_with(&format!("stagehand-{kind}-"))).unwrap();
    w.content["url"].as_str().unwrap().replace("$theme", theme)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn countdown_reaches_zero_and_flips_to_live() {
    let (_, site) = start().await;
    let url = widget_url(&site, "talk/welcome", "countdown", "dark");
    let go_live = chrono_tz::Europe::Brussels.with_ymd_and_hms(2026, 3, 14, 9, 30, 0).unwrap().timestamp_millis();
    let before = tokio::task::spawn_blocking({
        let url = format!("{url}&now={}", go_live - 65_000);
        move || browse(&url, 500, "countdown-before")
    })
    .await
    .unwrap();
    assert!(before.contains(">1:04<") || before.contains(">1:05<"), "65 s before: {before}");
    assert!(before.contains("until Welcome to Matrix Camp"));
    let after = tokio::task::spawn_blocking({
        let url = format!("{url}&now={}", go_live - 3_000);
        move || browse(&url, 6_000, "countdown-live")
    })
    .await
    .unwrap();
    assert!(after.contains(">LIVE<"), "after the go-live instant: {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_and_show_markup_as_text() {
    let (base, site) = start().await;
    let pages = [
        (widget_url(&site, "track/rust", "schedule", "light"), "schedule", "Rust devroom"),
        (widget_url(&site, "talk/rust-async", "qa", "dark"), "qa", "No questions yet"),
        (widget_url(&site, "backstage/rust", "countdown", "light"), "countdown-backstage", "Rust devroom (backstage)"),
        (widget_url(&site, "track/rust", "livestream", "dark"), "livestream", "<video"),
        (format!("{base}/?theme=dark"), "home", "Main tracks"),
    ];
    for (url, shot, expect) in pages {
        let dom = tokio::task::spawn_blocking(move || browse(&url, 1_000, shot)).await.unwrap();
        assert!(dom.contains(expect), "{shot}: {dom}");
        assert!(!dom.contains("<title>pwned</title>"), "{shot}: a title from the schedule ran as script");
    }
    // The talk whose title holds a script tag: shown as text, the script never ran.
    let url = widget_url(&site, "track/rust", "schedule", "light");
    let dom = tokio::task::spawn_blocking(move || browse(&url, 1_000, "schedule-script-title")).await.unwrap();
    assert!(dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;Async"), "{dom}");
    assert!(dom.contains("<title>Rust devroom: now and next</title>"));
}

/// The Q&A page of a talk room over live boards: questions already asked show at once, and a vote cast while the page
/// is open reorders it through the event stream, with no reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qa_page_shows_the_ranking_and_follows_votes_live() {
    use stagehand::qa::{Qa, QaOptions, Scope};
    use stagehand::timeline::{Clock, Store};
    use stagehand::web::{Pages, serve_pages};

    let (_, site) = start().await;
    let talk = site.conference.talks.iter().find(|t| t.key == "rust-async").unwrap();
    let track_room = site.plan.rooms.iter().find(|r| r.key == "track/rust").unwrap();
    let ids = std::collections::HashMap::from([(track_room.key.clone(), "!rust:example.org".to_string())]);
    let scope = Scope::new(&site.conference, &site.plan, &ids, 5, Clock::system());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("day.sqlite")).unwrap();
    let qa = Arc::new(Qa::open(store, scope, QaOptions::default(), "@bot:example.org".into()).await.unwrap());
    let at = talk.start.timestamp_millis() + 60_000;
    let event = |id: &str, sender: &str, kind: &str, content: serde_json::Value| {
        ("!rust:example.org".to_string(), serde_json::json!({"event_id": id, "sender": sender, "origin_server_ts": at, "type": kind, "content": content}))
    };
    let text = |body: &str| serde_json::json!({"msgtype": "m.text", "body": body});
    let vote = |target: &str| serde_json::json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": "👍"}});
    qa.deliver(vec![
        event("$q1", "@ann:example.org", "m.room.message", text("Is <b>async</b> hard?")),
        event("$q2", "@bob:example.org", "m.room.message", text("Which runtime?")),
        event("$v1", "@cy:example.org", "m.reaction", vote("$q1")),
    ])
    .await
    .unwrap();
    let pages = Arc::new(Pages::new(site.clone(), None).with_qa(qa.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve_pages(pages, listener, std::future::pending()));
    let url = widget_url(&site, "talk/rust-async", "qa", "light").replace(&site.widgets.config.web_url, &base);

    // The page keeps its event stream open, so it is read over the DevTools protocol rather than dumped.
    let mut page = cdp::Browser::open(&chromium(), &url).await;
    let cards = "Array.from(document.querySelectorAll('#questions .q')).map(c => c.innerText.replace(/\\s+/g, ' ')).join(' | ')";
    let (first, _) = page.wait_for(cards, Duration::from_secs(10), |v| v.as_str().is_some_and(|s| s.contains("Which runtime?"))).await;
    let first = first.as_str().unwrap_or_default().to_string();
    let (a, b) = (first.find("Is <b>async</b> hard?"), first.find("Which runtime?"));
    assert!(a.is_some() && b.is_some() && a < b, "the voted question first, its markup as text: {first}");
    assert!(first.contains("▲ 1") && first.contains("@bob:example.org"), "{first}");
    assert_eq!(page.eval("document.title").await, "Q&A: <script>document.title='pwned'</script>Async");
    page.screenshot(&artifacts().join("qa-board.png")).await;

    // Two votes for the second question while the page is open: it moves up without a reload.
    let reloads = page.eval("performance.getEntriesByType('navigation').length").await;
    qa.deliver(vec![event("$v2", "@dee:example.org", "m.reaction", vote("$q2")), event("$v3", "@eve:example.org", "m.reaction", vote("$q2"))])
        .await
        .unwrap();
    let (after, took) = page.wait_for(cards, Duration::from_secs(5), |v| v.as_str().is_some_and(|s| s.starts_with("▲ 2 Which runtime?"))).await;
    assert!(after.as_str().unwrap_or_default().starts_with("▲ 2 Which runtime?"), "the question with two votes first: {after} after {took:?}");
    assert_eq!(page.eval("performance.getEntriesByType('navigation').length").await, reloads, "no reload");
    page.screenshot(&artifacts().join("qa-board-live.png")).await;
}
