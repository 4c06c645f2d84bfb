//! The web server over real HTTP on loopback: widget URLs from the plan lead to their pages, backstage pages and
//! JSON refuse requests without the room's token, schedule text is escaped, now/next and the home page follow a
//! controlled clock.

use std::sync::Arc;

use chrono::TimeZone;
use stagehand::config::{Config, WidgetsConfig};
use stagehand::plan::widgets::{WidgetContext, room_token, widgets};
use stagehand::plan::{self};
use stagehand::schedule::{self, ReadOptions};
use stagehand::web::{Site, serve};

struct Server {
    base: String,
    site: Arc<Site>,
    http: reqwest::Client,
}

async fn start(livestream: bool) -> Server {
    let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/schedules/example.yaml")).unwrap();
    let mut conf = schedule::read("example.yaml", &text, &ReadOptions::default()).unwrap().conference;
    conf.talks.iter_mut().find(|t| t.key == "late-night").unwrap().title = "<script>alert(1)</script> hacking".into();
    let (config, _) = Config::parse("c.yaml", "conference: {id: matrixcamp-2026}\nhomeserver: {server_name: example.org}\n").unwrap();
    let plan = plan::plan(&conf, &config);
    let mut wc = WidgetsConfig::default();
    if livestream {
        wc.livestream_url = Some("https://stream.example.org/{conference}/{track}.m3u8".into());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    wc.web_url = base.clone();
    let widgets = WidgetContext { conference: "matrixcamp-2026".into(), bot: "@bot:example.org".into(), config: wc, secret: b"s3cret".to_vec() };
    // Saturday 14 March 2026, 10:10 in Brussels: "Async Rust without tears" is live.
    let now = chrono_tz::Europe::Brussels.with_ymd_and_hms(2026, 3, 14, 10, 10, 0).unwrap().with_timezone(&chrono::Utc);
    let site = Arc::new(Site { conference: conf, plan, widgets, clock: Arc::new(move || now) });
    tokio::spawn(serve(site.clone(), listener, std::future::pending()));
    Server { base, site, http: reqwest::Client::new() }
}

impl Server {
    async fn get(&self, path: &str) -> (u16, String) {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}{}", self.base, path) };
        let r = self.http.get(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    fn room(&self, key: &str) -> &stagehand::plan::PlannedRoom {
        self.site.plan.rooms.iter().find(|r| r.key == key).unwrap()
    }

    /// The URL of a room's widget of this kind, with `$theme` filled in.
    fn widget_url(&self, key: &str, kind: &str) -> String {
        let id = format!("stagehand-{kind}-");
        let w = widgets(self.room(key), &self.site.widgets).into_iter().find(|w| w.state_key.starts_with(&id)).unwrap();
        w.content["url"].as_str().unwrap().replace("$theme", "dark")
    }
}

#[tokio::test]
async fn widget_urls_open_their_pages_and_guessed_urls_get_403() {
    let s = start(false).await;
    assert_eq!(s.get("/healthz").await, (200, "ok".to_string()));
    for key in ["talk/rust-async", "backstage/rust"] {
        for kind in ["qa", "countdown"] {
            let url = s.widget_url(key, kind);
            let (status, body) = s.get(&url).await;
            assert_eq!(status, 200, "{url}");
            assert!(body.contains("class=\"theme-dark\""), "the theme follows $theme");
            let bare = url.split('?').next().unwrap();
            assert_eq!(s.get(bare).await.0, 403, "no token: {bare}");
            assert_eq!(s.get(&format!("{bare}?token=0123456789abcdef0123456789abcdef")).await.0, 403, "guessed token");
            // Another room's token does not open this room.
            let other = room_token(&s.site.widgets, "talk/welcome");
            assert_eq!(s.get(&format!("{bare}?token={other}")).await.0, 403);
        }
    }
    let token = room_token(&s.site.widgets, "talk/rust-async");
    assert_eq!(s.get("/qa/matrixcamp-2026/talk%2Frust-async/json").await.0, 403);
    let (status, body) = s.get(&format!("/qa/matrixcamp-2026/talk%2Frust-async/json?token={token}")).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["talk"]["title"], "Async Rust without tears");
    assert_eq!(v["questions"], serde_json::json!([]));
    assert_eq!(s.get("/qa/other-conf/talk%2Frust-async?token=x").await.0, 404);
}

#[tokio::test]
async fn schedule_text_is_escaped_and_now_next_follow_the_clock() {
    let s = start(true).await;
    let (status, page) = s.get(&s.widget_url("track/rust", "schedule")).await;
    assert_eq!(status, 200);
    assert!(page.contains("&#60;script&#62;alert(1)&#60;/script&#62; hacking"), "escaped as text: {page}");
    assert!(!page.contains("<script>alert(1)"), "raw markup from the schedule");
    let now_section = page.split("<h2>Next</h2>").next().unwrap();
    assert!(now_section.contains("Async Rust without tears") && now_section.contains("LIVE"));
    let (_, json) = s.get("/schedule/matrixcamp-2026/rust/json").await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["now"][0]["key"], "rust-async");
    assert_eq!(v["next"][0]["key"], "rust-prerecorded");
    // The countdown of a talk room carries its go-live instant (a pre-recorded talk: its Q&A start).
    let (_, countdown) = s.get(&s.widget_url("talk/rust-prerecorded", "countdown")).await;
    let qa_start = chrono_tz::Europe::Brussels.with_ymd_and_hms(2026, 3, 14, 11, 5, 0).unwrap().timestamp_millis();
    assert!(countdown.contains(&format!("&#34;live_ms&#34;:{qa_start}")), "{countdown}");
    // Livestream page with the track's HLS URL; the home page lists tracks by kind with matrix.to links.
    let (status, stream) = s.get(&s.widget_url("track/rust", "livestream")).await;
    assert_eq!(status, 200);
    assert!(stream.contains("https://stream.example.org/matrixcamp-2026/rust.m3u8"));
    let (_, home) = s.get("/").await;
    assert!(home.contains("Devrooms") && home.contains("Rust devroom"));
    assert!(home.contains("https://matrix.to/#/%23matrixcamp-2026-rust:example.org"), "{home}");
    assert!(home.split("<h2>Live now</h2>").nth(1).unwrap().contains("Async Rust without tears"));
}
