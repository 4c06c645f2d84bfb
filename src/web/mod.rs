//! The web server: widget pages (countdown, Q&A, schedule now/next, livestream), their JSON, the conference home
//! page for Element's home screen, and `/healthz`; beside them `/metrics` ([`metrics`]) and the organisers' `/status`
//! ([`status`], behind the organisers' token). Askama templates from `templates/` escape everything from the
//! schedule. Pages of talk rooms and backstages need the per-room token their widget URL carries; without it: 403.
//!
//! Reads the plan and the conference it is given; never talks to the homeserver.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

mod qa;

use crate::plan::widgets::{WidgetContext, enc, room_token};
use crate::plan::{ObjectKind, Plan, PlannedRoom};
use crate::schedule::model::{Conference, Role, Talk, TrackKind};
use crate::secrets::same_secret;

pub mod metrics;
pub mod status;

/// A clock the pages ask for "now" (tests pass a fixed one).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What the server shows.
pub struct Site {
    pub conference: Conference,
    pub plan: Plan,
    pub widgets: WidgetContext,
    pub clock: Clock,
}

#[derive(Deserialize)]
struct PageQuery {
    token: Option<String>,
    theme: Option<String>,
}

fn theme(q: &PageQuery) -> &'static str {
    match q.theme.as_deref() {
        Some("dark") => "dark",
        _ => "light",
    }
}

enum Denied {
    NotFound,
    Forbidden,
    Render,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::NotFound => (StatusCode::NOT_FOUND, "not found").into_response(),
            Denied::Forbidden => (StatusCode::FORBIDDEN, "this page needs the link from its widget").into_response(),
            Denied::Render => (StatusCode::INTERNAL_SERVER_ERROR, "cannot render the page").into_response(),
        }
    }
}

fn render(t: &impl Template) -> Result<Html<String>, Denied> {
    t.render().map(Html).map_err(|_| Denied::Render)
}

impl Site {
    /// A talk room or backstage, if the conference matches and the token is right.
    fn backstage_room(&self, conf: &str, key: &str, token: Option<&str>) -> Result<&PlannedRoom, Denied> {
        if conf != self.widgets.conference {
            return Err(Denied::NotFound);
        }
        let room = self
            .plan
            .rooms
            .iter()
            .find(|r| r.key == key && matches!(r.kind, ObjectKind::TalkRoom | ObjectKind::Backstage))
            .ok_or(Denied::NotFound)?;
        match token {
            Some(t) if same_secret(t, &room_token(&self.widgets, &room.key)) => Ok(room),
            _ => Err(Denied::Forbidden),
        }
    }

    /// The talks a room's countdown and Q&A follow: its talk, or its track's talks for a backstage.
    fn talks_of<'a>(&'a self, room: &'a PlannedRoom) -> Vec<&'a Talk> {
        let mut talks: Vec<&Talk> = match (&room.talk, &room.track) {
            (Some(k), _) => self.conference.talks.iter().filter(|t| &t.key == k).collect(),
            (None, Some(track)) => self.conference.talks_of(track).collect(),
            _ => Vec::new(),
        };
        talks.sort_by_key(|t| t.start);
        talks
    }

    fn speakers(&self, t: &Talk) -> String {
        t.people_with(Role::Speaker).filter_map(|p| self.conference.person(p)).map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

#[derive(Template)]
#[template(path = "countdown.html")]
struct CountdownPage<'a> {
    theme: &'a str,
    title: &'a str,
    talks_json: String,
}

#[derive(Template)]
#[template(path = "qa.html")]
struct QaPage<'a> {
    theme: &'a str,
    title: &'a str,
    json_url: String,
    events_url: String,
}

struct Line {
    time: String,
    title: String,
    speakers: String,
}

#[derive(Template)]
#[template(path = "schedule.html")]
struct SchedulePage<'a> {
    theme: &'a str,
    track: &'a str,
    now: Vec<Line>,
    next: Vec<Line>,
}

#[derive(Template)]
#[template(path = "stream.html")]
struct StreamPage<'a> {
    theme: &'a str,
    track: &'a str,
    hls: String,
}

struct HomeTrack {
    name: String,
    link: String,
    talks: usize,
}

struct HomeGroup {
    title: &'static str,
    tracks: Vec<HomeTrack>,
}

struct LiveTalk {
    title: String,
    track: String,
    link: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    theme: &'a str,
    title: &'a str,
    root_link: String,
    live: Vec<LiveTalk>,
    groups: Vec<HomeGroup>,
}

#[derive(Serialize)]
struct CountdownTalk<'a> {
    title: &'a str,
    live_ms: i64,
    end_ms: i64,
}

fn matrix_to(alias: &str) -> String {
    format!("https://matrix.to/#/{}", alias.replace('#', "%23"))
}

async fn countdown(
    State(pages): State<Arc<Pages>>,
    Path((conf, key)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, Denied> {
    let site = pages.site();
    let room = site.backstage_room(&conf, &key, q.token.as_deref())?;
    let talks: Vec<CountdownTalk> = site
        .talks_of(room)
        .into_iter()
        .map(|t| CountdownTalk {
            title: &t.title,
            // Pre-recorded talks go live for Q&A at qa_start; the countdown counts to that.
            live_ms: t.qa_start.unwrap_or(t.start).timestamp_millis(),
            end_ms: t.end.timestamp_millis(),
        })
        .collect();
    let talks_json = serde_json::to_string(&talks).map_err(|_| Denied::Render)?;
    render(&CountdownPage { theme: theme(&q), title: &room.name, talks_json })
}

async fn qa(
    State(pages): State<Arc<Pages>>,
    Path((conf, key)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, Denied> {
    let site = pages.site();
    let room = site.backstage_room(&conf, &key, q.token.as_deref())?;
    let base = format!("/qa/{}/{}", enc(&conf), enc(&room.key));
    let token = enc(q.token.as_deref().unwrap_or_default());
    let json_url = format!("{base}/json?token={token}");
    // Without Q&A (`stagehand serve`) the board never changes: no stream to hold open.
    let events_url = if pages.qa.is_some() { format!("{base}/events?token={token}") } else { String::new() };
    render(&QaPage { theme: theme(&q), title: &room.name, json_url, events_url })
}

fn track_room<'a>(site: &'a Site, conf: &str, track: &str) -> Result<&'a PlannedRoom, Denied> {
    if conf != site.widgets.conference {
        return Err(Denied::NotFound);
    }
    site.plan
        .rooms
        .iter()
        .find(|r| matches!(r.kind, ObjectKind::TrackRoom | ObjectKind::Stand) && r.track.as_deref() == Some(track))
        .ok_or(Denied::NotFound)
}

fn now_next<'a>(site: &'a Site, track: &'a str) -> (Vec<&'a Talk>, Vec<&'a Talk>) {
    let now = (site.clock)();
    let mut talks: Vec<&Talk> = site.conference.talks_of(track).collect();
    talks.sort_by_key(|t| t.start);
    let live: Vec<&Talk> = talks.iter().copied().filter(|t| t.start <= now && now < t.end).collect();
    let next: Vec<&Talk> = talks.into_iter().filter(|t| t.start > now).take(3).collect();
    (live, next)
}

async fn schedule(
    State(pages): State<Arc<Pages>>,
    Path((conf, track)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, Denied> {
    let site = pages.site();
    let room = track_room(&site, &conf, &track)?;
    let (live, next) = now_next(&site, &track);
    let line = |t: &Talk| Line {
        time: format!("{}–{}", t.start.format("%a %H:%M"), t.end.format("%H:%M")),
        title: t.title.clone(),
        speakers: site.speakers(t),
    };
    render(&SchedulePage {
        theme: theme(&q),
        track: &room.name,
        now: live.into_iter().map(line).collect(),
        next: next.into_iter().map(line).collect(),
    })
}

async fn schedule_json(
    State(pages): State<Arc<Pages>>,
    Path((conf, track)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, Denied> {
    let site = pages.site();
    track_room(&site, &conf, &track)?;
    let (live, next) = now_next(&site, &track);
    let item = |t: &Talk| json!({"key": t.key, "title": t.title, "start": t.start.to_rfc3339(), "end": t.end.to_rfc3339(), "speakers": site.speakers(t)});
    Ok(Json(json!({"now": live.into_iter().map(item).collect::<Vec<_>>(), "next": next.into_iter().map(item).collect::<Vec<_>>()})))
}

async fn stream(
    State(pages): State<Arc<Pages>>,
    Path((conf, track)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, Denied> {
    let site = pages.site();
    let room = track_room(&site, &conf, &track)?;
    let template = site.widgets.config.livestream_url.as_deref().ok_or(Denied::NotFound)?;
    let hls = template.replace("{track}", &track).replace("{conference}", &conf);
    render(&StreamPage { theme: theme(&q), track: &room.name, hls })
}

async fn home(State(pages): State<Arc<Pages>>, Query(q): Query<PageQuery>) -> Result<Html<String>, Denied> {
    let site = pages.site();
    let now = (site.clock)();
    let link_of = |track: &str| {
        site.plan
            .rooms
            .iter()
            .find(|r| matches!(r.kind, ObjectKind::TrackRoom | ObjectKind::Stand) && r.track.as_deref() == Some(track))
            .map(|r| matrix_to(&r.alias))
            .unwrap_or_default()
    };
    let mut groups = Vec::new();
    for kind in TrackKind::ALL {
        let mut tracks: Vec<HomeTrack> = site
            .conference
            .tracks
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| HomeTrack { name: t.name.clone(), link: link_of(&t.key), talks: site.conference.talks_of(&t.key).count() })
            .collect();
        if tracks.is_empty() {
            continue;
        }
        tracks.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()));
        groups.push(HomeGroup { title: kind.title(), tracks });
    }
    let mut live: Vec<&Talk> = site.conference.talks.iter().filter(|t| t.start <= now && now < t.end).collect();
    live.sort_by_key(|t| t.start);
    let live = live
        .into_iter()
        .map(|t| {
            let track = t.track.as_deref().unwrap_or_default();
            LiveTalk {
                title: t.title.clone(),
                track: site.conference.track(track).map(|x| x.name.clone()).unwrap_or_default(),
                link: link_of(track),
            }
        })
        .collect();
    let root_link = site.plan.rooms.first().map(|r| matrix_to(&r.alias)).unwrap_or_default();
    let title = if site.conference.title.is_empty() { site.plan.conference.as_str() } else { site.conference.title.as_str() };
    render(&HomePage { theme: theme(&q), title, root_link, live, groups })
}

/// Whether the process behind the pages is healthy, and its details (the runner's liveness and lateness).
pub type Health = Arc<dyn Fn() -> (bool, serde_json::Value) + Send + Sync>;

/// What the server shows, replaceable while it runs (a schedule refresh brings a new [`Site`]).
pub struct Pages {
    site: std::sync::RwLock<Arc<Site>>,
    health: Option<Health>,
    /// Further named parts of the health (the intake), each with its own verdict.
    checks: Vec<(&'static str, Health)>,
    /// The questions, when the process listens to the rooms (`stagehand run`).
    qa: Option<Arc<crate::qa::Qa>>,
}

impl Pages {
    pub fn new(site: Arc<Site>, health: Option<Health>) -> Pages {
        Pages { site: std::sync::RwLock::new(site), health, checks: Vec::new(), qa: None }
    }

    /// The same pages with one more part in `/healthz` (under `name`); the whole is healthy when every part is.
    pub fn with_check(mut self, name: &'static str, check: Health) -> Pages {
        self.checks.push((name, check));
        self
    }

    /// The same pages showing the questions of `qa`.
    pub fn with_qa(mut self, qa: Arc<crate::qa::Qa>) -> Pages {
        self.qa = Some(qa);
        self
    }

    /// The site as it is now.
    pub fn site(&self) -> Arc<Site> {
        match self.site.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Shows a new site from now on.
    pub fn replace(&self, site: Arc<Site>) {
        match self.site.write() {
            Ok(mut s) => *s = site,
            Err(poisoned) => *poisoned.into_inner() = site,
        }
    }
}

async fn healthz(State(pages): State<Arc<Pages>>) -> Response {
    let Some(health) = &pages.health else { return "ok".into_response() };
    let (mut ok, details) = health();
    let mut body = json!({"runner": details});
    for (name, check) in &pages.checks {
        let (part_ok, part) = check();
        ok &= part_ok;
        body[*name] = part;
    }
    body["ok"] = json!(ok);
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// The routes.
pub fn router(site: Arc<Site>) -> Router {
    pages_router(Arc::new(Pages::new(site, None)))
}

/// The routes over replaceable pages.
pub fn pages_router(pages: Arc<Pages>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/healthz", get(healthz))
        .route("/countdown/{conf}/{key}", get(countdown))
        .route("/qa/{conf}/{key}", get(qa))
        .route("/qa/{conf}/{key}/json", get(qa::qa_json))
        .route("/qa/{conf}/{key}/events", get(qa::qa_events))
        .route("/schedule/{conf}/{track}", get(schedule))
        .route("/schedule/{conf}/{track}/json", get(schedule_json))
        .route("/stream/{conf}/{track}", get(stream))
        .with_state(pages)
        .merge(metrics::router())
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    site: Arc<Site>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(site)).with_graceful_shutdown(shutdown).await
}

/// Serves replaceable pages until `shutdown` resolves.
pub async fn serve_pages(
    pages: Arc<Pages>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, pages_router(pages)).with_graceful_shutdown(shutdown).await
}

/// [`serve_pages`] with more routes beside the pages (the organisers' status, the application service's
/// transactions).
pub async fn serve_pages_with(
    pages: Arc<Pages>,
    extra: Router,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, pages_router(pages).merge(extra)).with_graceful_shutdown(shutdown).await
}
