//! The process's Prometheus metrics: one registry and typed recording methods, so a label can only take the values
//! listed here. `/metrics` ([`crate::web::metrics`]) renders [`global`]; the homeserver connection, the timeline's
//! runner, `stagehand run` and Q&A record into it.
//!
//! Series (all prefixed `stagehand_`):
//! - `homeserver_requests_total{kind, outcome}`: every request attempt by [`RequestKind`] and [`RequestOutcome`];
//! - `homeserver_rate_limit_waits_total{kind}` and `homeserver_rate_limit_wait_seconds_total{kind}`: 429s waited out;
//! - `invites_sent_total{medium}`: invites the homeserver took (`matrix` or `email`);
//! - `timeline_actions_total{kind, outcome}`: actions by kind (the action slugs) and [`ActionOutcome`];
//! - `timeline_lateness_seconds{priority}`: for each action sent, from its fire time to the homeserver's answer;
//! - `rooms_planned{kind}`: rooms and spaces in the current plan, by kind;
//! - `qa_questions_total`, `qa_votes_total`, `qa_boards`: Q&A activity.
//!
//! Beside the registry, [`Metrics::contact`] keeps when the homeserver last answered and last failed to (for the
//! status: is it reachable now).
//!
//! Recording never fails and never panics: a metric that could not be built (names are constants, so only a
//! programming error, caught by the tests below) is logged once and its recordings are dropped. Owns no I/O.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};

use prometheus::{CounterVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::plan::{ObjectKind, Plan};
use crate::timeline::{ActionKind, Priority};

/// What kind of request Stagehand made to the homeserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Reads: aliases, room state, events, directory visibility, OpenID tokens, history pages.
    Read,
    /// `/sync` (long polls: one a wait, so these say how often the bot hears from the server).
    Sync,
    /// Writes not listed below (the room directory).
    Write,
    CreateRoom,
    State,
    Invite,
    Kick,
    Message,
}

impl RequestKind {
    pub const ALL: [RequestKind; 8] = [
        RequestKind::Read,
        RequestKind::Sync,
        RequestKind::Write,
        RequestKind::CreateRoom,
        RequestKind::State,
        RequestKind::Invite,
        RequestKind::Kick,
        RequestKind::Message,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RequestKind::Read => "read",
            RequestKind::Sync => "sync",
            RequestKind::Write => "write",
            RequestKind::CreateRoom => "create_room",
            RequestKind::State => "state",
            RequestKind::Invite => "invite",
            RequestKind::Kick => "kick",
            RequestKind::Message => "message",
        }
    }

    /// Whether the request changes something on the server.
    pub fn is_write(self) -> bool {
        !matches!(self, RequestKind::Read | RequestKind::Sync)
    }
}

/// `false` is a read and `true` a write: callers that only say whether they write still count.
impl From<bool> for RequestKind {
    fn from(write: bool) -> RequestKind {
        if write { RequestKind::Write } else { RequestKind::Read }
    }
}

/// How one request attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    Ok,
    /// Any error but a 429 (a retried 5xx counts once per attempt).
    Error,
    /// 429 `M_LIMIT_EXCEEDED`.
    RateLimited,
}

impl RequestOutcome {
    pub const ALL: [RequestOutcome; 3] = [RequestOutcome::Ok, RequestOutcome::Error, RequestOutcome::RateLimited];

    pub fn label(self) -> &'static str {
        match self {
            RequestOutcome::Ok => "ok",
            RequestOutcome::Error => "error",
            RequestOutcome::RateLimited => "rate_limited",
        }
    }
}

/// How a timeline action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionOutcome {
    Sent,
    Skipped,
    Failed,
}

impl ActionOutcome {
    pub const ALL: [ActionOutcome; 3] = [ActionOutcome::Sent, ActionOutcome::Skipped, ActionOutcome::Failed];

    pub fn label(self) -> &'static str {
        match self {
            ActionOutcome::Sent => "sent",
            ActionOutcome::Skipped => "skipped",
            ActionOutcome::Failed => "failed",
        }
    }
}

/// How an invite was addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteMedium {
    Matrix,
    Email,
}

impl InviteMedium {
    pub fn label(self) -> &'static str {
        match self {
            InviteMedium::Matrix => "matrix",
            InviteMedium::Email => "email",
        }
    }
}

/// Lateness buckets, in seconds: 10 ms to a minute.
const LATENESS_BUCKETS: [f64; 12] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Every kind of planned object, for the `rooms_planned` gauge (a kind the plan no longer has reads 0).
const OBJECT_KINDS: [ObjectKind; 8] = [
    ObjectKind::RootSpace,
    ObjectKind::Subspace,
    ObjectKind::TrackRoom,
    ObjectKind::Backstage,
    ObjectKind::TalkRoom,
    ObjectKind::Stand,
    ObjectKind::Support,
    ObjectKind::Management,
];

fn object_label(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::RootSpace => "root_space",
        ObjectKind::Subspace => "subspace",
        ObjectKind::TrackRoom => "track_room",
        ObjectKind::Backstage => "backstage",
        ObjectKind::TalkRoom => "talk_room",
        ObjectKind::Stand => "stand",
        ObjectKind::Support => "support",
        ObjectKind::Management => "management",
    }
}

fn priority_label(priority: Priority) -> &'static str {
    match priority {
        Priority::Critical => "critical",
        Priority::Routine => "routine",
    }
}

/// The metric handles, registered in one registry.
struct Handles {
    requests: IntCounterVec,
    rate_limit_waits: IntCounterVec,
    rate_limit_wait_seconds: CounterVec,
    invites: IntCounterVec,
    actions: IntCounterVec,
    lateness: HistogramVec,
    rooms_planned: IntGaugeVec,
    qa_questions: IntCounter,
    qa_votes: IntCounter,
    qa_boards: IntGauge,
}

impl Handles {
    fn new(registry: &Registry) -> prometheus::Result<Handles> {
        let opts = |name: &str, help: &str| Opts::new(name, help).namespace("stagehand");
        let h = Handles {
            requests: IntCounterVec::new(
                opts("homeserver_requests_total", "Requests to the homeserver, each attempt, by kind and outcome."),
                &["kind", "outcome"],
            )?,
            rate_limit_waits: IntCounterVec::new(
                opts("homeserver_rate_limit_waits_total", "Rate limits (429) the homeserver answered and Stagehand waited out."),
                &["kind"],
            )?,
            rate_limit_wait_seconds: CounterVec::new(
                opts("homeserver_rate_limit_wait_seconds_total", "Time spent waiting out the homeserver's rate limits."),
                &["kind"],
            )?,
            invites: IntCounterVec::new(opts("invites_sent_total", "Invites the homeserver took, by medium."), &["medium"])?,
            actions: IntCounterVec::new(
                opts("timeline_actions_total", "Timeline actions by kind and how they ended (sent, skipped, failed)."),
                &["kind", "outcome"],
            )?,
            lateness: HistogramVec::new(
                HistogramOpts::new(
                    "timeline_lateness_seconds",
                    "For each action sent: seconds from its fire time to the homeserver's answer (conference clock).",
                )
                .namespace("stagehand")
                .buckets(LATENESS_BUCKETS.to_vec()),
                &["priority"],
            )?,
            rooms_planned: IntGaugeVec::new(opts("rooms_planned", "Rooms and spaces in the current plan, by kind."), &["kind"])?,
            qa_questions: IntCounter::with_opts(opts("qa_questions_total", "Questions asked."))?,
            qa_votes: IntCounter::with_opts(opts("qa_votes_total", "Votes on questions."))?,
            qa_boards: IntGauge::with_opts(opts("qa_boards", "Q&A boards (talks with questions) kept."))?,
        };
        registry.register(Box::new(h.requests.clone()))?;
        registry.register(Box::new(h.rate_limit_waits.clone()))?;
        registry.register(Box::new(h.rate_limit_wait_seconds.clone()))?;
        registry.register(Box::new(h.invites.clone()))?;
        registry.register(Box::new(h.actions.clone()))?;
        registry.register(Box::new(h.lateness.clone()))?;
        registry.register(Box::new(h.rooms_planned.clone()))?;
        registry.register(Box::new(h.qa_questions.clone()))?;
        registry.register(Box::new(h.qa_votes.clone()))?;
        registry.register(Box::new(h.qa_boards.clone()))?;
        // Series that exist from the start read 0 rather than missing, so rates work from the first event.
        for kind in RequestKind::ALL {
            for outcome in RequestOutcome::ALL {
                h.requests.get_metric_with_label_values(&[kind.label(), outcome.label()])?;
            }
        }
        for kind in ActionKind::ALL {
            for outcome in ActionOutcome::ALL {
                h.actions.get_metric_with_label_values(&[kind.slug(), outcome.label()])?;
            }
        }
        Ok(h)
    }
}

/// A registry and its metrics. Use [`global`] in the program; tests make their own with [`Metrics::new`].
pub struct Metrics {
    registry: Registry,
    handles: Option<Handles>,
    /// Milliseconds since the epoch of the last answer and the last failure (0: none yet).
    last_ok_ms: AtomicI64,
    last_error_ms: AtomicI64,
}

/// When the homeserver last answered a request (a rate limit is an answer too) and when one last failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Contact {
    pub last_ok: Option<DateTime<Utc>>,
    pub last_error: Option<DateTime<Utc>>,
}

impl Contact {
    /// Whether the homeserver answered last; `None` before any request.
    pub fn reachable(&self) -> Option<bool> {
        match (self.last_ok, self.last_error) {
            (None, None) => None,
            (ok, error) => Some(ok >= error),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let handles = match Handles::new(&registry) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::error!(error = %e, "the metrics cannot be registered; /metrics stays empty");
                None
            }
        };
        Metrics { registry, handles, last_ok_ms: AtomicI64::new(0), last_error_ms: AtomicI64::new(0) }
    }

    /// Whether every metric is registered (always, unless a name above is malformed).
    pub fn is_complete(&self) -> bool {
        self.handles.is_some()
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        TextEncoder::new().encode_to_string(&self.registry.gather())
    }

    /// One request attempt to the homeserver.
    pub fn request(&self, kind: RequestKind, outcome: RequestOutcome) {
        let last = if outcome == RequestOutcome::Error { &self.last_error_ms } else { &self.last_ok_ms };
        last.fetch_max(Utc::now().timestamp_millis(), Ordering::Relaxed);
        if let Some(c) = self.handles.as_ref().and_then(|h| h.requests.get_metric_with_label_values(&[kind.label(), outcome.label()]).ok()) {
            c.inc();
        }
    }

    /// When the homeserver last answered and last failed.
    pub fn contact(&self) -> Contact {
        let at = |ms: &AtomicI64| Some(ms.load(Ordering::Relaxed)).filter(|ms| *ms > 0).and_then(DateTime::from_timestamp_millis);
        Contact { last_ok: at(&self.last_ok_ms), last_error: at(&self.last_error_ms) }
    }

    /// A rate limit waited out.
    pub fn rate_limit_wait(&self, kind: RequestKind, wait: std::time::Duration) {
        let Some(h) = &self.handles else { return };
        if let Ok(c) = h.rate_limit_waits.get_metric_with_label_values(&[kind.label()]) {
            c.inc();
        }
        if let Ok(c) = h.rate_limit_wait_seconds.get_metric_with_label_values(&[kind.label()]) {
            c.inc_by(wait.as_secs_f64());
        }
    }

    /// An invite the homeserver took.
    pub fn invite_sent(&self, medium: InviteMedium) {
        if let Some(c) = self.handles.as_ref().and_then(|h| h.invites.get_metric_with_label_values(&[medium.label()]).ok()) {
            c.inc();
        }
    }

    /// How a timeline action ended.
    pub fn action(&self, kind: ActionKind, outcome: ActionOutcome) {
        if let Some(c) = self.handles.as_ref().and_then(|h| h.actions.get_metric_with_label_values(&[kind.slug(), outcome.label()]).ok()) {
            c.inc();
        }
    }

    /// How late an action was sent, in seconds (negative values count as on time).
    pub fn action_lateness(&self, priority: Priority, seconds: f64) {
        if let Some(h) = self.handles.as_ref().and_then(|h| h.lateness.get_metric_with_label_values(&[priority_label(priority)]).ok()) {
            h.observe(seconds.max(0.0));
        }
    }

    /// The rooms of a plan just made, by kind.
    pub fn rooms_planned(&self, plan: &Plan) {
        let Some(h) = &self.handles else { return };
        for kind in OBJECT_KINDS {
            let n = plan.rooms.iter().filter(|r| r.kind == kind).count();
            if let Ok(g) = h.rooms_planned.get_metric_with_label_values(&[object_label(kind)]) {
                g.set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }

    /// A question asked (Q&A).
    pub fn qa_question(&self) {
        if let Some(h) = &self.handles {
            h.qa_questions.inc();
        }
    }

    /// A vote cast on a question (Q&A).
    pub fn qa_vote(&self) {
        if let Some(h) = &self.handles {
            h.qa_votes.inc();
        }
    }

    /// How many Q&A boards are kept now.
    pub fn qa_boards(&self, boards: usize) {
        if let Some(h) = &self.handles {
            h.qa_boards.set(i64::try_from(boards).unwrap_or(i64::MAX));
        }
    }
}

/// The process's metrics, the ones `/metrics` serves.
pub fn global() -> &'static Arc<Metrics> {
    static GLOBAL: LazyLock<Arc<Metrics>> = LazyLock::new(|| Arc::new(Metrics::new()));
    &GLOBAL
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of one series in a rendering: `name` with exactly these labels (in any order).
    fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
            let (series, v) = line.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            let mut found: Vec<(String, String)> = rest
                .trim_end_matches('}')
                .split(',')
                .filter(|p| !p.is_empty())
                .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string())))
                .collect();
            let mut want: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            found.sort();
            want.sort();
            (n == name && found == want).then(|| v.parse().ok()).flatten()
        })
    }

    #[test]
    fn contact_says_whether_the_homeserver_answered_last() {
        let m = Metrics::new();
        assert_eq!(m.contact().reachable(), None);
        m.request(RequestKind::Read, RequestOutcome::RateLimited);
        assert_eq!(m.contact().reachable(), Some(true), "a rate limit is an answer");
        std::thread::sleep(std::time::Duration::from_millis(2));
        m.request(RequestKind::Sync, RequestOutcome::Error);
        assert_eq!(m.contact().reachable(), Some(false));
        std::thread::sleep(std::time::Duration::from_millis(2));
        m.request(RequestKind::Message, RequestOutcome::Ok);
        let c = m.contact();
        assert_eq!(c.reachable(), Some(true));
        assert!(c.last_error.is_some() && c.last_ok > c.last_error);
    }

    #[test]
    fn every_metric_registers_and_starts_at_zero() {
        let m = Metrics::new();
        assert!(m.is_complete());
        let text = m.render().unwrap();
        assert_eq!(value(&text, "stagehand_qa_questions_total", &[]), Some(0.0), "{text}");
        assert_eq!(value(&text, "stagehand_qa_votes_total", &[]), Some(0.0));
        assert_eq!(value(&text, "stagehand_qa_boards", &[]), Some(0.0));
        assert_eq!(value(&text, "stagehand_homeserver_requests_total", &[("kind", "create_room"), ("outcome", "rate_limited")]), Some(0.0));
        assert_eq!(value(&text, "stagehand_timeline_actions_total", &[("kind", "live-notice"), ("outcome", "skipped")]), Some(0.0));
        assert!(text.contains("# TYPE stagehand_timeline_actions_total counter"), "{text}");
    }

    #[test]
    fn recordings_show_under_their_labels() {
        let m = Metrics::new();
        m.request(RequestKind::Message, RequestOutcome::Ok);
        m.request(RequestKind::Message, RequestOutcome::Ok);
        m.request(RequestKind::CreateRoom, RequestOutcome::RateLimited);
        m.rate_limit_wait(RequestKind::CreateRoom, std::time::Duration::from_millis(1500));
        m.invite_sent(InviteMedium::Email);
        m.action(ActionKind::LiveNotice, ActionOutcome::Sent);
        m.action(ActionKind::FirstReminder, ActionOutcome::Skipped);
        m.action_lateness(Priority::Critical, 0.02);
        m.action_lateness(Priority::Critical, 45.0);
        m.action_lateness(Priority::Routine, -3.0);
        m.qa_question();
        m.qa_vote();
        m.qa_vote();
        m.qa_boards(4);
        let text = m.render().unwrap();
        let v = |name: &str, labels: &[(&str, &str)]| value(&text, name, labels).unwrap_or_else(|| panic!("{name} {labels:?} missing:\n{text}"));
        assert_eq!(v("stagehand_homeserver_requests_total", &[("kind", "message"), ("outcome", "ok")]), 2.0);
        assert_eq!(v("stagehand_homeserver_requests_total", &[("kind", "create_room"), ("outcome", "rate_limited")]), 1.0);
        assert_eq!(v("stagehand_homeserver_rate_limit_waits_total", &[("kind", "create_room")]), 1.0);
        assert_eq!(v("stagehand_homeserver_rate_limit_wait_seconds_total", &[("kind", "create_room")]), 1.5);
        assert_eq!(v("stagehand_invites_sent_total", &[("medium", "email")]), 1.0);
        assert_eq!(v("stagehand_timeline_actions_total", &[("kind", "live-notice"), ("outcome", "sent")]), 1.0);
        assert_eq!(v("stagehand_timeline_actions_total", &[("kind", "first-reminder"), ("outcome", "skipped")]), 1.0);
        assert_eq!(v("stagehand_timeline_lateness_seconds_count", &[("priority", "critical")]), 2.0);
        assert_eq!(v("stagehand_timeline_lateness_seconds_bucket", &[("priority", "critical"), ("le", "0.025")]), 1.0);
        assert_eq!(v("stagehand_timeline_lateness_seconds_bucket", &[("priority", "critical"), ("le", "60")]), 2.0);
        assert_eq!(v("stagehand_timeline_lateness_seconds_bucket", &[("priority", "routine"), ("le", "0.01")]), 1.0, "early is on time");
        assert_eq!(v("stagehand_qa_questions_total", &[]), 1.0);
        assert_eq!(v("stagehand_qa_votes_total", &[]), 2.0);
        assert_eq!(v("stagehand_qa_boards", &[]), 4.0);
    }

    #[test]
    fn rooms_planned_counts_each_kind_and_zeroes_kinds_gone() {
        let (conf, plan) = crate::timeline::fixtures::small();
        let m = Metrics::new();
        m.rooms_planned(&plan);
        let text = m.render().unwrap();
        let talks = plan.rooms.iter().filter(|r| r.kind == ObjectKind::TalkRoom).count();
        assert!(talks > 0 && talks == conf.talks.len(), "{talks}");
        assert_eq!(value(&text, "stagehand_rooms_planned", &[("kind", "talk_room")]), Some(talks as f64));
        assert_eq!(value(&text, "stagehand_rooms_planned", &[("kind", "root_space")]), Some(1.0));
        let mut fewer = plan.clone();
        fewer.rooms.retain(|r| r.kind != ObjectKind::TalkRoom);
        m.rooms_planned(&fewer);
        assert_eq!(value(&m.render().unwrap(), "stagehand_rooms_planned", &[("kind", "talk_room")]), Some(0.0));
    }

    #[test]
    fn registries_are_independent() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.qa_question();
        assert_eq!(value(&b.render().unwrap(), "stagehand_qa_questions_total", &[]), Some(0.0));
        assert!(global().is_complete());
    }
}
