//! `stagehand run`: the one process on the day. Brings the rooms to the plan as it stands now (what the timeline has
//! done by now included), runs the timeline (reminders, countdowns, go-live, the end) recorded in its SQLite store,
//! serves the widget pages and the home page, re-reads the schedule on the `timeline.refresh` cron and on SIGHUP,
//! and stops cleanly on Ctrl-C or SIGTERM. `--rehearse` runs the same flow on a clock that starts shortly before the
//! first talk (optionally faster), on a store of its own, so organisers and speakers can try it on a test server.
//! Keeps the organisers' status ([`status::Sources`]) and serves it at `/status` when an organisers' token is set.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde_json::json;
use stagehand::config::Config;
use stagehand::matrix::client::Homeserver;
use stagehand::matrix::live::{self, Live};
use stagehand::matrix::reconcile::{Moment, Options, Scope, reconcile_at};
use stagehand::plan::{self, Plan};
use stagehand::schedule::{Conference, Parsed};
use stagehand::source::shown;
use stagehand::{secrets, status};
use stagehand::timeline::{self, Action, Clock, Runner, Store};
use stagehand::web::{self, Pages, Site};
use tokio::sync::{Notify, watch};

use super::build::{BuildOptions, moment_of, reconcile_options};
use super::listen::{self, Listening};
use super::manage::Manager;
use super::problems::{self, Problems};
use super::{ServerArgs, connect, load_and_report, load_schedule, print, widget_context};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Address the widget pages are served on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Rehearse on a test server: the conference clock starts shortly before the first talk, on a fresh store of its
    /// own (`rehearsal.sqlite` beside timeline.store).
    #[arg(long)]
    rehearse: bool,
    /// With --rehearse: how long from now (real time) until the first talk starts (`90s`, `2m`, `1h`).
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    start_in: Duration,
    /// With --rehearse: run the conference clock this many times faster.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// With --rehearse: only the first N talks (by start) get their timeline.
    #[arg(long)]
    talks: Option<usize>,
}

/// `90s`, `2m`, `1h`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.trim().split_at(s.trim().find(|c: char| !c.is_ascii_digit()).unwrap_or(s.trim().len()));
    let n: u64 = n.parse().map_err(|_| format!("{s:?}: a number with s, m or h, like 2m"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{s:?}: a number with s, m or h, like 2m")),
    }
}

/// What the run works from; replaced when the schedule is re-read.
struct Current {
    conference: Conference,
    plan: Arc<Plan>,
    actions: Arc<Vec<Action>>,
}

/// The run's fixed parts, decided before any work starts.
struct Run {
    build: BuildOptions,
    opts: Options,
    hs: Homeserver,
    clock: Clock,
    rehearse: bool,
    talks: Option<usize>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.rehearse && (args.talks.is_some() || args.speed != 1.0) {
        bail!("--talks and --speed are for rehearsals: add --rehearse");
    }
    if !(args.speed.is_finite() && args.speed >= 1.0) {
        bail!("--speed must be 1 or more");
    }
    let build = BuildOptions::new(&args.server.input, args.server.homeserver.as_deref(), false, Scope::All, false)?;
    let parsed = load_and_report(&build.request, &build.config).await?;
    if parsed.errors().count() > 0 {
        bail!("the schedule has errors (see above); fix them before running");
    }
    let hs = connect(&build.homeserver_url, &build.config).await?;
    let widgets = if build.config.widgets.enabled { Some(widget_context(&build.config, &hs.user_id)?) } else { None };
    let opts = reconcile_options(&build, widgets);
    let first = rehearsed(&parsed.conference, args.talks).talks.iter().map(|t| t.start.with_timezone(&Utc)).min();
    let clock = match (args.rehearse, first) {
        (true, Some(first)) => {
            // The first talk starts `start_in` from now in real time: the conference clock is that much earlier,
            // times the speed, so the reminders before it happen too.
            let ahead = chrono::Duration::from_std(args.start_in.mul_f64(args.speed)).unwrap_or_default();
            let start = first - ahead;
            eprintln!("rehearsal: the conference clock reads {start} now, running {}x", args.speed);
            Clock::starting_at(start).with_speed(args.speed)
        }
        (true, None) => bail!("nothing to rehearse: the schedule has no talks"),
        (false, _) => Clock::system(),
    };
    let run = Run { build, opts, hs, clock, rehearse: args.rehearse, talks: args.talks };
    let config = &run.build.config;
    let store_path = if run.rehearse { fresh_rehearsal_store(&config.timeline.store)? } else { config.timeline.store.clone() };
    let store = Store::open(&store_path).with_context(|| format!("cannot open the timeline store {}", store_path.display()))?;

    let current = prepare(&run, parsed.conference);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut listening =
        listen::start(config, &run.hs, &current.conference, &current.plan, store.clone(), run.clock, run.rehearse, stop_rx.clone()).await?;
    let txn_prefix = if run.rehearse { format!("rehearsal{}.", Utc::now().timestamp()) } else { String::new() };
    let (actions_tx, actions_rx) = watch::channel(current.actions.clone());
    let opened = (config.timeline.opened.join_rule.clone(), config.timeline.opened.history_visibility.clone());
    let live = Live::new(run.hs.clone(), current.plan.clone(), run.opts.clone());
    let mut sender = live::Sender::new(live, actions_rx.clone(), run.clock, opened, txn_prefix);
    if let Some(l) = listening.as_ref().filter(|_| config.qa.enabled) {
        sender = sender.with_questions(l.qa.clone());
    }
    let sender = Arc::new(sender);
    let runner = Runner::new(sender.clone(), store.clone(), run.clock, config.timeline.actions.retry);
    let status = runner.status();
    let sources = Arc::new(status::Sources::new(
        status::Running {
            source: shown(&run.build.request.source),
            refresh: config.timeline.refresh_schedule().ok(),
            clock: run.clock,
            rehearsal: run.rehearse,
            hs: Some(run.hs.clone()),
            hs_error: None,
            store: Some(store.clone()),
            runner: Some(status.clone()),
            intake: listening.as_ref().map(|l| l.status.clone()),
            qa: listening.as_ref().map(|l| l.qa.clone()),
        },
        current.conference.clone(),
        current.plan.clone(),
        current.actions.clone(),
    ));

    let clock = run.clock;
    let health_status = status.clone();
    let health: web::Health = Arc::new(move || {
        let s = health_status.borrow().clone();
        let behind = s.behind_ms(clock.now());
        let ok = s.alive && behind < 60_000;
        (ok, json!({"alive": s.alive, "behind_ms": behind, "lateness_ms": s.lateness_ms, "max_lateness_ms": s.max_lateness_ms,
                     "next": s.next, "sent": s.sent, "skipped": s.skipped, "failed": s.failed}))
    });
    let mut pages = Pages::new(site(&run, &current)?, Some(health));
    let mut routes = None;
    if let Some(l) = &listening {
        let status = l.status.clone();
        let intake: web::Health = Arc::new(move || {
            let s = status.borrow().clone();
            // A sync that failed several times in a row (the homeserver is down) is not healthy; pushes are.
            let ok = s.alive && s.failures < 3;
            (ok, serde_json::to_value(&s).unwrap_or_default())
        });
        pages = pages.with_check("intake", intake);
        if config.qa.enabled {
            pages = pages.with_qa(l.qa.clone());
        }
        routes = l.routes.clone();
    }
    let pages = Arc::new(pages);
    let token = secrets::organiser_token(&config.operations, |k| std::env::var(k).ok())?;
    let organisers = token.is_some();
    let for_page = sources.clone();
    let status_page: web::status::StatusFn = Arc::new(move || {
        let s = for_page.clone();
        Box::pin(async move { s.status().await })
    });
    let extra = web::status::router(token, status_page);
    let extra = match routes {
        Some(routes) => extra.merge(routes),
        None => extra,
    };
    let listener = tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("serving on http://{} (home page /, health /healthz); Ctrl-C stops", args.listen);
    if organisers {
        eprintln!("organisers' status on http://{}/status?token=... (the organisers' token)", args.listen);
    }

    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server = tokio::spawn(web::serve_pages_with(pages.clone(), extra, listener, stopped(stop_rx.clone())));
    let commands = listening.as_mut().and_then(|l| l.commands.take()).filter(|_| config.operations.has_management_room());
    let refresh = Arc::new(Notify::new());
    let (problems, reports) = problems::channel();
    let reporting = async {
        if let Some(l) = listening.as_ref().filter(|_| config.operations.has_management_room()) {
            problems::report(&run.hs, config.operations.problem_interval_seconds, l.management.clone(), reports, status.clone(), store.clone(), stop_rx.clone()).await;
        }
    };
    let (snapshot_tx, snapshot_rx) = watch::channel(current.plan.clone());
    let manager = listening.as_ref().map(|l| Manager {
        hs: &run.hs,
        config,
        opts: &run.opts,
        clock: run.clock,
        store: store.clone(),
        sender: sender.clone(),
        actions: &actions_tx,
        current: snapshot_rx,
        refresh: refresh.clone(),
        management: l.management.clone(),
        rehearsal_args: rehearsal_args(),
        sources: sources.clone(),
    });
    let managing = async {
        if let (Some(m), Some(c)) = (&manager, commands) {
            tokio::select! {
                () = m.run(c) => {},
                () = stopped(stop_rx.clone()) => {},
            }
        }
    };
    let refresher = refresh_loop(&run, current, &sender, &actions_tx, &pages, &sources, listening.as_ref(), Hooks { refresh: &refresh, snapshot: &snapshot_tx, problems: &problems }, stop_rx.clone());
    let runner = runner.run(actions_rx, stopped(stop_rx.clone()));
    let signals = async {
        shutdown_signal().await;
        eprintln!("stopping: recording what fired");
        let _ = stop_tx.send(true);
    };
    let reading = sender.read_ahead(stop_rx.clone());
    let (summary, (), (), (), (), ()) = tokio::join!(runner, refresher, signals, managing, reporting, reading);
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("error: the web pages stopped: {e}"),
        Err(e) => eprintln!("error: the web server task failed: {e}"),
    }
    let summary = summary?;
    eprintln!(
        "timeline stopped: {} sent, {} skipped, {} failed, {} interrupted (resent by the next run), {} not recorded",
        summary.sent, summary.skipped, summary.failed, summary.interrupted, summary.store_errors
    );
    Ok(super::exit_code(summary.failed > 0 || summary.store_errors > 0))
}

/// The talks a rehearsal covers: all, or the first N by start.
fn rehearsed(conf: &Conference, talks: Option<usize>) -> Conference {
    let Some(n) = talks else { return conf.clone() };
    let mut out = conf.clone();
    out.talks.sort_by(|a, b| (a.start, &a.key).cmp(&(b.start, &b.key)));
    out.talks.truncate(n);
    out
}

/// A rehearsal's store: beside the event's, started afresh each time (a rehearsal must never mark the event's
/// actions as done).
fn fresh_rehearsal_store(store: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let path = store.with_file_name("rehearsal.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot start the rehearsal afresh: {}", file.display())),
        }
    }
    Ok(path)
}

/// The plan and the actions for a schedule.
fn prepare(run: &Run, conference: Conference) -> Current {
    let plan = Arc::new(plan::plan(&conference, &run.build.config));
    stagehand::metrics::global().rooms_planned(&plan);
    let actions = Arc::new(timeline::timeline(&rehearsed(&conference, run.talks), &plan, &run.build.config.timeline.actions));
    eprintln!("timeline: {} actions for {} talks", actions.len(), conference.talks.len());
    Current { conference, plan, actions }
}

/// The rooms brought to the plan as it stands now (beside the runner, which starts at once). Not in a rehearsal: it
/// touches only the rooms of the talks it rehearses, through their actions, and leaves every other room alone.
async fn converge_rooms(run: &Run, current: &Current) {
    if run.rehearse {
        return;
    }
    let report = reconcile_at(&run.hs, &current.plan, &run.opts, || moment_now(run, &current.actions)).await;
    eprintln!("rooms: {}", report.summary());
    if report.failed > 0 {
        eprint!("{}", print::report(&report, false));
    }
}

/// What the timeline has done to the rooms by now, as the desired state takes it.
fn moment_now(run: &Run, actions: &[Action]) -> Moment {
    moment_of(&run.build.config, actions, run.clock.now())
}

/// The widget pages for a schedule, on the run's clock (a rehearsal's countdowns follow it).
fn site(run: &Run, current: &Current) -> anyhow::Result<Arc<Site>> {
    let clock = run.clock;
    let widgets = widget_context(&run.build.config, "")?;
    Ok(Arc::new(Site { conference: current.conference.clone(), plan: (*current.plan).clone(), widgets, clock: Arc::new(move || clock.now()) }))
}

/// Re-reads the schedule on the refresh cron and on SIGHUP until stopped: reconciles the rooms, recomputes the
/// timeline (a moved talk's room is told), and shows the new schedule on the pages. A schedule that does not read
/// or has errors is reported and the running one kept.
async fn refresh_loop(
    run: &Run,
    mut current: Current,
    sender: &live::Sender,
    actions: &watch::Sender<Arc<Vec<Action>>>,
    pages: &Pages,
    sources: &status::Sources,
    listening: Option<&Listening>,
    hooks: Hooks<'_>,
    mut stop: watch::Receiver<bool>,
) {
    let Hooks { refresh, snapshot, problems } = hooks;
    let config: &Config = &run.build.config;
    let cron = match config.timeline.refresh_schedule() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no schedule refresh");
            return;
        }
    };
    let mut hup = hangup();
    // A stop request does not wait for a long reconcile (invites under rate limits): it is cut short, and the next
    // start converges again.
    tokio::select! {
        _ = converge_rooms(run, &current) => {},
        _ = stop.wait_for(|s| *s) => return,
    }
    sender.reread_rooms();
    follow(run, listening, &current).await;
    loop {
        let next: Option<DateTime<Utc>> = cron.upcoming(Utc).next();
        let wait = next.map_or(Duration::from_secs(3600), |n| (n - Utc::now()).to_std().unwrap_or_default());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {},
            _ = hup.recv() => tracing::info!("SIGHUP: re-reading the schedule"),
            _ = refresh.notified() => tracing::info!("an organiser's command: re-reading the schedule"),
            _ = stop.wait_for(|s| *s) => return,
        }
        let parsed: Parsed = match load_schedule(&run.build.request, Some(config)).await {
            Ok(p) if p.errors().count() == 0 => p,
            Ok(p) => {
                tracing::error!(errors = p.errors().count(), "the schedule now has errors; keeping the one running");
                let first = p.errors().next().map(|e| e.to_string()).unwrap_or_default();
                problems.problem("schedule", format!("the schedule now has {} errors; the one running is kept. First: {first}", p.errors().count()));
                continue;
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot re-read the schedule; keeping the one running");
                problems.problem("schedule", format!("cannot re-read the schedule ({e:#}); the one running is kept"));
                continue;
            }
        };
        let old = std::mem::replace(&mut current.conference, parsed.conference.clone());
        if let Some(text) = stagehand::commands::problems::schedule_changes(&old, &parsed.conference) {
            problems.notice(text);
        }
        let fresh = prepare(run, parsed.conference);
        // What the reconcile writes is read again by the timeline's converges (the plan's change clears the rest).
        sender.reread_rooms();
        tokio::select! {
            _ = converge_rooms(run, &fresh) => {},
            _ = stop.wait_for(|s| *s) => return,
        }
        let mut list: Vec<Action> = (*fresh.actions).clone();
        list.extend(timeline::moved_notices(&old, &fresh.conference, &fresh.plan, &config.timeline.actions, run.clock.now()));
        list.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        current = Current { actions: Arc::new(list), ..fresh };
        sender.replan(current.plan.clone());
        snapshot.send_replace(current.plan.clone());
        sources.schedule_read(&current.conference, current.plan.clone(), current.actions.clone());
        follow(run, listening, &current).await;
        let _ = actions.send(current.actions.clone());
        match site(run, &current) {
            Ok(site) => pages.replace(site),
            Err(e) => tracing::error!(error = %format!("{e:#}"), "the pages keep the old schedule"),
        }
    }
}

/// What the refresh loop shares with the rest of the run: the organisers' `refresh`, the schedule in force, and
/// where problems go.
struct Hooks<'a> {
    refresh: &'a Notify,
    snapshot: &'a watch::Sender<Arc<Plan>>,
    problems: &'a Problems,
}

/// This process's command line for a rehearsal started from the management room: its arguments without `--listen`
/// (the rehearsal adds its own).
fn rehearsal_args() -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        let text = a.to_string_lossy();
        if text == "--listen" {
            args.next();
        } else if !text.starts_with("--listen=") {
            out.push(a);
        }
    }
    out
}

/// Q&A listens to the rooms of the plan in force, and assigns questions by its schedule.
async fn follow(run: &Run, listening: Option<&Listening>, current: &Current) {
    if let Some(l) = listening {
        let live = Live::new(run.hs.clone(), current.plan.clone(), run.opts.clone());
        l.follow(&live, &rehearsed(&current.conference, run.talks), &current.plan).await;
    }
}

/// SIGHUP as a stream of wake-ups (never, where there is no SIGHUP).
fn hangup() -> Hangup {
    #[cfg(unix)]
    {
        Hangup(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok())
    }
    #[cfg(not(unix))]
    {
        Hangup(None)
    }
}

struct Hangup(#[cfg(unix)] Option<tokio::signal::unix::Signal>, #[cfg(not(unix))] Option<()>);

impl Hangup {
    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.0 {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await
    }
}

use super::serve::shutdown_signal;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_seconds_minutes_and_hours() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("m").is_err());
    }
}
