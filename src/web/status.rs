//! `/status`: the organisers' page for their screens (what is live in each track and its board, the next actions,
//! who is missing for the next hour, late or failed actions, the health of the homeserver, the runner and the
//! intake, the last problems), which refreshes itself every few seconds from `/status/view.json` (the same sections
//! as data, put in with `textContent`); `/status.json` is the [`Status`] itself. All three need the organisers'
//! token, as `?token=` or `Authorization: Bearer`, compared in constant time; without a configured token they answer
//! 404, with a wrong or missing one 403. Responses are never cached and send no referrer (the token is in the URL).
//!
//! The status comes from a function the caller gives ([`StatusFn`]; in `stagehand run`,
//! [`crate::status::Sources::status`]): this module never talks to the homeserver.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, REFERRER_POLICY};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::secrets::OrganiserToken;
use crate::status::{Status, text};

/// Takes a status now.
pub type StatusFn = Arc<dyn Fn() -> BoxFuture<'static, Status> + Send + Sync>;

struct Organisers {
    token: Option<OrganiserToken>,
    status: StatusFn,
}

/// How often the page asks for a new view, in milliseconds.
const REFRESH_MS: u32 = 5000;

/// The routes `/status`, `/status.json` and `/status/view.json`, to merge into the pages' router. `token`: the
/// organisers' token (none: the routes answer 404).
pub fn router(token: Option<OrganiserToken>, status: StatusFn) -> Router {
    Router::new()
        .route("/status", get(page))
        .route("/status.json", get(json))
        .route("/status/view.json", get(view_json))
        .with_state(Arc::new(Organisers { token, status }))
}

#[derive(Deserialize)]
struct StatusQuery {
    token: Option<String>,
    theme: Option<String>,
}

/// Why a request gets no status.
enum Refused {
    NoPage,
    Forbidden,
    Render,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::NoPage => (StatusCode::NOT_FOUND, "not found").into_response(),
            Refused::Forbidden => (StatusCode::FORBIDDEN, "this page needs the organisers' token").into_response(),
            Refused::Render => (StatusCode::INTERNAL_SERVER_ERROR, "cannot render the page").into_response(),
        }
    }
}

impl Organisers {
    /// The status, for a request that presents the organisers' token.
    async fn status_for(&self, q: &StatusQuery, headers: &HeaderMap) -> Result<Status, Refused> {
        let Some(token) = &self.token else { return Err(Refused::NoPage) };
        let bearer = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        match q.token.as_deref().or(bearer) {
            Some(presented) if token.matches(presented.trim()) => Ok((self.status)().await),
            _ => Err(Refused::Forbidden),
        }
    }
}

/// Never cached, no referrer.
fn private(r: impl IntoResponse) -> Response {
    ([(CACHE_CONTROL, "no-store"), (REFERRER_POLICY, "no-referrer")], r).into_response()
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage<'a> {
    theme: &'a str,
    view: View,
    refresh_ms: u32,
}

async fn page(State(o): State<Arc<Organisers>>, Query(q): Query<StatusQuery>, headers: HeaderMap) -> Result<Response, Refused> {
    let status = o.status_for(&q, &headers).await?;
    let theme = if q.theme.as_deref() == Some("dark") { "dark" } else { "light" };
    let html = StatusPage { theme, view: view(&status), refresh_ms: REFRESH_MS }.render().map_err(|_| Refused::Render)?;
    Ok(private(Html(html)))
}

async fn json(State(o): State<Arc<Organisers>>, Query(q): Query<StatusQuery>, headers: HeaderMap) -> Result<Response, Refused> {
    Ok(private(Json(o.status_for(&q, &headers).await?)))
}

async fn view_json(State(o): State<Arc<Organisers>>, Query(q): Query<StatusQuery>, headers: HeaderMap) -> Result<Response, Refused> {
    Ok(private(Json(view(&o.status_for(&q, &headers).await?))))
}

/// What the page shows: a heading, a verdict and sections of rows of cells (text and a CSS class). The template
/// renders it, and the page's script puts a new one in place.
#[derive(Debug, Serialize)]
struct View {
    heading: String,
    clock: String,
    verdict: String,
    verdict_class: &'static str,
    sections: Vec<Section>,
}

#[derive(Debug, Serialize)]
struct Section {
    id: &'static str,
    title: String,
    empty: String,
    rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Serialize)]
struct Cell {
    text: String,
    class: &'static str,
}

fn cell(text: impl Into<String>, class: &'static str) -> Cell {
    Cell { text: text.into(), class }
}

fn view(s: &Status) -> View {
    let mut trouble = text::trouble(s);
    let absent: usize = s.attendance.as_ref().map_or(0, |a| a.missing.iter().map(|t| t.people.len()).sum());
    if absent > 0 {
        let sep = if trouble.is_empty() { "" } else { ", " };
        trouble = format!("{trouble}{sep}{absent} missing for the next hour");
    }
    let rehearsal = if s.rehearsal { " (rehearsal)" } else { "" };
    View {
        heading: s.title.clone(),
        clock: format!("{} {}{rehearsal}", text::hms(s, s.now), s.timezone),
        verdict: if trouble.is_empty() { "All well".to_string() } else { format!("Needs attention: {trouble}") },
        verdict_class: if trouble.is_empty() { "ok" } else { "bad" },
        sections: vec![live(s), missing(s), trouble_section(s), next(s), health(s), problems(s)],
    }
}

fn live(s: &Status) -> Section {
    let rows = s
        .live
        .iter()
        .map(|l| {
            let mut row = vec![
                cell(l.track_name.clone(), "muted"),
                cell(l.title.clone(), "strong"),
                cell(format!("{}–{}", text::hm(s, l.start), text::hm(s, l.end)), "muted"),
            ];
            if let Some(q) = l.questions {
                row.push(cell(format!("{q} questions, {} votes", l.votes.unwrap_or(0)), ""));
            }
            row
        })
        .collect();
    Section { id: "live", title: format!("Live now ({})", s.live.len()), empty: "Nothing is live.".into(), rows }
}

fn missing(s: &Status) -> Section {
    let (rows, empty) = match &s.attendance {
        None => (Vec::new(), "Not checked yet.".to_string()),
        Some(a) => {
            let rows = a
                .missing
                .iter()
                .flat_map(|t| {
                    t.people.iter().map(move |p| {
                        let when = if t.live { format!("{} live", text::hm(s, t.start)) } else { text::hm(s, t.start) };
                        vec![
                            cell(when, if t.live { "live" } else { "muted" }),
                            cell(t.title.clone(), ""),
                            cell(p.name.clone(), "strong"),
                            cell(p.user_ids.join(" "), "muted"),
                            cell(text::presence(&p.presence), "bad"),
                        ]
                    })
                })
                .collect();
            let empty = if a.unchecked > 0 { format!("Nobody so far; {} talk rooms not checked yet.", a.unchecked) } else { "Nobody.".into() };
            (rows, empty)
        }
    };
    Section { id: "missing", title: format!("Missing for the next hour ({})", rows.len()), empty, rows }
}

fn trouble_section(s: &Status) -> Section {
    let a = &s.actions;
    let rows = a
        .late
        .iter()
        .chain(&a.failed)
        .map(|l| {
            vec![
                cell(text::hm(s, l.at), "muted"),
                cell(l.kind.clone(), ""),
                cell(if l.title.is_empty() { l.talk.clone() } else { l.title.clone() }, "strong"),
                cell(l.state.clone(), "bad"),
                cell(l.detail.clone().unwrap_or_default(), "muted"),
            ]
        })
        .collect();
    Section {
        id: "trouble",
        title: format!("Late ({}), failed ({}) or skipped ({}) actions", a.late_count, a.failed_count, a.skipped_count),
        empty: "None.".into(),
        rows,
    }
}

fn next(s: &Status) -> Section {
    let rows = s
        .actions
        .next
        .iter()
        .map(|l| {
            vec![
                cell(text::hm(s, l.at), "muted"),
                cell(l.kind.clone(), ""),
                cell(if l.title.is_empty() { l.talk.clone() } else { l.title.clone() }, "strong"),
                cell(l.room.clone(), "muted"),
            ]
        })
        .collect();
    Section { id: "next", title: format!("Next actions ({} in the timeline, {} sent)", s.actions.total, s.actions.sent), empty: "No more actions.".into(), rows }
}

fn health(s: &Status) -> Section {
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or_else(|| "never".to_string(), |t| text::hms(s, t));
    let verdict = |ok: bool, good: &str, bad: &str| if ok { cell(good, "ok") } else { cell(bad, "bad") };
    let mut rows = Vec::new();
    let h = &s.homeserver;
    rows.push(vec![
        cell("Homeserver", "strong"),
        match h.reachable {
            Some(ok) => verdict(ok, "answering", "not answering"),
            None => cell("not asked yet", "muted"),
        },
        cell(format!("last answer {}, last failure {}", when(h.last_ok), when(h.last_error)), "muted"),
        cell(h.error.clone().unwrap_or_default(), "muted"),
    ]);
    if let Some(health) = &s.runner {
        let r = &health.runner;
        rows.push(vec![
            cell("Runner", "strong"),
            verdict(health.ok(), "alive", if r.alive { "behind" } else { "stopped" }),
            cell(format!("{} sent, {} skipped, {} failed, {} in flight; lateness {} ms (most {} ms)", r.sent, r.skipped, r.failed, r.in_flight, r.lateness_ms, r.max_lateness_ms), "muted"),
        ]);
    }
    if let Some(i) = &s.intake {
        rows.push(vec![
            cell(format!("Intake ({})", i.mode), "strong"),
            verdict(i.ok(), "alive", if i.alive { "failing" } else { "stopped" }),
            cell(format!("last taken in {}, {} events", when(i.last_ok), i.delivered), "muted"),
            cell(i.last_error.clone().filter(|_| i.failures > 0).unwrap_or_default(), "muted"),
        ]);
    }
    let refreshed = s.schedule.refreshed_at.map(|t| format!(", refreshed {}", text::hms(s, t))).unwrap_or_default();
    rows.push(vec![
        cell("Schedule", "strong"),
        cell(format!("{} talks", s.schedule.talks), ""),
        cell(format!("{}, read {}{refreshed}, next re-read {}", s.schedule.source, text::hms(s, s.schedule.read_at), when(s.schedule.next_refresh)), "muted"),
    ]);
    let kinds: Vec<String> = s
        .rooms
        .kinds
        .iter()
        .map(|k| k.existing.map_or_else(|| format!("{} {}", k.kind, k.planned), |e| format!("{} {e}/{}", k.kind, k.planned)))
        .collect();
    let complete = s.rooms.kinds.iter().all(|k| k.existing.is_none_or(|e| e == k.planned));
    rows.push(vec![
        cell("Rooms", "strong"),
        match s.rooms.observed_at {
            Some(_) => verdict(complete, "all there", "some missing"),
            None => cell("not looked up yet", "muted"),
        },
        cell(kinds.join(", "), "muted"),
    ]);
    if let Some(i) = s.attendance.as_ref().and_then(|a| a.invites.as_ref()) {
        rows.push(vec![
            cell("Invites", "strong"),
            cell(format!("{} outstanding", i.invited), ""),
            cell(format!("{} joined, {} left or declined, {} not invited, {} unreachable", i.joined, i.declined, i.not_invited, i.uncontactable), "muted"),
        ]);
    }
    if let Some(q) = &s.qa {
        rows.push(vec![cell("Q&A", "strong"), cell(format!("{} questions, {} votes", q.questions, q.votes), ""), cell(format!("{} boards", q.boards), "muted")]);
    }
    Section { id: "health", title: "Health".into(), empty: String::new(), rows }
}

fn problems(s: &Status) -> Section {
    let rows = s
        .problems
        .iter()
        .rev()
        .map(|p| {
            let times = if p.count > 1 { format!("×{}", p.count) } else { String::new() };
            vec![
                cell(text::hms(s, p.at), "muted"),
                cell(p.level.clone(), if p.level == "error" { "bad" } else { "" }),
                cell(p.message.clone(), "strong"),
                cell(p.fields.clone(), "muted"),
                cell(times, "muted"),
            ]
        })
        .collect();
    Section { id: "problems", title: "Recent problems (newest first)".into(), empty: "None logged.".into(), rows }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OperationsConfig;
    use crate::secrets::organiser_token;

    const TOKEN: &str = "organisers-token-0123456789";

    fn sample_fn() -> StatusFn {
        Arc::new(|| Box::pin(async { crate::status::tests::sample() }))
    }

    /// Serves the status routes; their base URL.
    async fn serve(token: Option<&'static str>) -> String {
        let token = token.and_then(|t| organiser_token(&OperationsConfig::default(), move |_| Some(t.to_string())).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(token, sample_fn())).await });
        base
    }

    async fn get(url: &str, bearer: Option<&str>) -> reqwest::Response {
        let mut req = reqwest::Client::new().get(url);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send().await.unwrap()
    }

    #[tokio::test]
    async fn without_a_configured_token_there_is_no_status_page() {
        let base = serve(None).await;
        for path in ["/status", "/status.json", "/status/view.json"] {
            assert_eq!(get(&format!("{base}{path}?token={TOKEN}"), None).await.status(), 404, "{path}");
        }
    }

    #[tokio::test]
    async fn the_status_needs_the_organisers_token() {
        let base = serve(Some(TOKEN)).await;
        for path in ["/status", "/status.json", "/status/view.json"] {
            assert_eq!(get(&format!("{base}{path}"), None).await.status(), 403, "{path} without a token");
            assert_eq!(get(&format!("{base}{path}?token=organisers-token-012345678X"), None).await.status(), 403, "{path}: wrong");
            assert_eq!(get(&format!("{base}{path}"), Some("wrong")).await.status(), 403, "{path}: wrong bearer");
            let ok = get(&format!("{base}{path}?token={TOKEN}"), None).await;
            assert_eq!(ok.status(), 200, "{path}");
            assert_eq!(ok.headers().get(CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
            assert_eq!(ok.headers().get(REFERRER_POLICY).and_then(|v| v.to_str().ok()), Some("no-referrer"));
            assert_eq!(get(&format!("{base}{path}"), Some(TOKEN)).await.status(), 200, "{path} with a bearer token");
        }
        let status: Status = get(&format!("{base}/status.json"), Some(TOKEN)).await.json().await.unwrap();
        assert_eq!(status, crate::status::tests::sample());
    }

    #[tokio::test]
    async fn the_page_shows_the_sections_escaped_and_its_view_matches() {
        let base = serve(Some(TOKEN)).await;
        let html = get(&format!("{base}/status?token={TOKEN}&theme=dark"), None).await.text().await.unwrap();
        assert!(html.contains("Async &amp; &lt;Rust&gt;") || html.contains("Async &#38; &#60;Rust&#62;"), "{html}");
        assert!(!html.contains("<Rust>") && !html.contains("<Lovelace>"), "schedule text is escaped: {html}");
        assert!(html.contains("class=\"theme-dark\""));
        for id in ["live", "missing", "trouble", "next", "health", "problems"] {
            assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
        }
        let view: serde_json::Value = get(&format!("{base}/status/view.json?token={TOKEN}"), None).await.json().await.unwrap();
        let section = |id: &str| view["sections"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap().clone();
        let live = section("live");
        assert_eq!(live["rows"][0][1]["text"], "Async & <Rust>");
        assert_eq!(live["rows"][0][3]["text"], "2 questions, 3 votes");
        let missing = section("missing");
        let names: Vec<&str> = missing["rows"].as_array().unwrap().iter().map(|r| r[2]["text"].as_str().unwrap()).collect();
        assert_eq!(names, ["Ada <Lovelace>", "Linus", "Grace Hopper"]);
        assert_eq!(view["verdict_class"], "bad");
        assert_eq!(view["verdict"], "Needs attention: 1 failed, 3 late, intake failing (3 in a row), 3 missing for the next hour");
    }
}
