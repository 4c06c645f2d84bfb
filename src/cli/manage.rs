//! The management room's executor for `stagehand run`: takes the messages that start with the command prefix, runs
//! those of authorised organisers in the management room (the same operations as the CLI: a dry-run or real
//! reconcile, attendance, the timeline and its store), asks for `confirm` before anything that writes, and answers
//! briefly, with long output in a thread. Commands sent before this process started are not run; a refusal is short
//! and changes nothing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use stagehand::commands::{self, Command, Pending, TimelineQuery};
use stagehand::config::Config;
use stagehand::matrix::attendance;
use stagehand::matrix::client::Homeserver;
use stagehand::matrix::intake::RoomEvent;
use stagehand::matrix::live;
use stagehand::matrix::reconcile::{Options, Scope, reconcile_at};
use stagehand::plan::Plan;
use stagehand::qa::facts::Power;
use stagehand::schedule::model::stable_hash;
use stagehand::timeline::{Action, Clock, RecordState, SendTimes, Sender as _, Store};
use tokio::sync::{Notify, mpsc, watch};

use super::build::moment_of;
use super::print;


/// What the executor works with: the run's own parts.
pub struct Manager<'a> {
    pub hs: &'a Homeserver,
    pub config: &'a Config,
    pub opts: &'a Options,
    pub clock: Clock,
    pub store: Store,
    pub sender: Arc<live::Sender>,
    pub actions: &'a watch::Sender<Arc<Vec<Action>>>,
    /// The plan in force (replaced by a refresh).
    pub current: watch::Receiver<Arc<Plan>>,
    pub refresh: Arc<Notify>,
    pub management: watch::Receiver<Option<String>>,
    /// The command line to start a rehearsal with (this process's, with `--rehearse` options instead of `--listen`).
    pub rehearsal_args: Vec<std::ffi::OsString>,
    /// What `status` reports from (the same as `/status` and `stagehand status`).
    pub sources: Arc<stagehand::status::Sources>,
}

/// How often one person is told that they may not run commands (a refusal per message would let anyone flood a room).
const REFUSAL_EVERY_MS: i64 = 10 * 60 * 1000;

impl Manager<'_> {
    /// Takes commands until the intake stops.
    pub async fn run(&self, mut commands: mpsc::Receiver<RoomEvent>) {
        let started_ms = Utc::now().timestamp_millis();
        let mut pending = Pending::default();
        let mut seen: HashSet<String> = HashSet::new();
        let mut refused: HashMap<String, i64> = HashMap::new();
        while let Some(e) = commands.recv().await {
            let (Some(id), Some(sender)) = (e.event_id().map(str::to_string), e.event["sender"].as_str().map(str::to_string)) else {
                continue;
            };
            let ts = e.event["origin_server_ts"].as_i64().unwrap_or(0);
            if ts < started_ms {
                tracing::info!(event = %id, sender = %sender, "commands: sent before this process started; not run");
                continue;
            }
            if !seen.insert(id.clone()) {
                continue;
            }
            let body = e.event.pointer("/content/body").and_then(|b| b.as_str()).unwrap_or_default();
            let Some(parsed) = commands::parse(&self.config.operations.prefix, body) else { continue };
            let management = self.management.borrow().clone();
            let now = Utc::now().timestamp_millis();
            let authorised = management.as_deref() == Some(e.room_id.as_str()) && commands::authorised(&sender, &self.config.operations, self.power(&e.room_id).await.as_ref());
            if !authorised {
                tracing::warn!(sender = %sender, room = %e.room_id, command = %body.chars().take(80).collect::<String>(), "commands: refused");
                let last = refused.get(&sender).copied().unwrap_or(i64::MIN / 2);
                if now - last >= REFUSAL_EVERY_MS {
                    refused.insert(sender.clone(), now);
                    let why = if management.as_deref() == Some(e.room_id.as_str()) {
                        "Sorry, only the organisers may run commands."
                    } else {
                        "Sorry, commands are taken only from organisers in the management room."
                    };
                    self.say(&e.room_id, &id, why, None).await;
                }
                continue;
            }
            let command = match parsed {
                Ok(c) => c,
                Err(why) => {
                    self.say(&e.room_id, &id, &why, None).await;
                    continue;
                }
            };
            tracing::info!(sender = %sender, command = %command.describe(), "commands: run");
            let (line, details) = match command {
                Command::Confirm => match pending.confirm(&sender, now) {
                    Some(c) => self.execute(&c, &id).await,
                    None => ("Nothing is waiting for your confirm (or it expired).".to_string(), None),
                },
                Command::Cancel => {
                    let t = if pending.cancel(&sender) { "Cancelled." } else { "Nothing was waiting." };
                    (t.to_string(), None)
                }
                c if c.writes() => {
                    let (preview, details) = self.preview(&c).await;
                    pending.ask(&sender, c.clone(), now, self.config.operations.confirm_seconds);
                    let line = format!(
                        "{preview} Reply `{} confirm` within {} s to go ahead, or `{} cancel`.",
                        self.config.operations.prefix, self.config.operations.confirm_seconds, self.config.operations.prefix
                    );
                    (line, details)
                }
                c => self.execute(&c, &id).await,
            };
            self.say(&e.room_id, &id, &line, details.as_deref()).await;
        }
    }

    /// The management room's power levels, as the server has them now.
    async fn power(&self, room: &str) -> Option<Power> {
        let content = self.hs.state_event(room, "m.room.power_levels", "").await.ok()??;
        Some(Power::from_content(&content, 0))
    }

    /// Posts the answer: a short line replying to the command, and the details in a thread under it.
    async fn say(&self, room: &str, command_event: &str, line: &str, details: Option<&str>) {
        let txn = |n: u8| format!("stagehand.cmd.{:016x}.{n}", stable_hash(command_event.bytes()));
        if let Err(e) = self.hs.send_message(room, &txn(0), "m.room.message", &commands::reply(command_event, line, false), false).await {
            tracing::error!(error = %e, "commands: cannot answer");
            return;
        }
        if let Some(d) = details.filter(|d| !d.trim().is_empty()) {
            if let Err(e) = self.hs.send_message(room, &txn(1), "m.room.message", &commands::reply(command_event, d, true), false).await {
                tracing::error!(error = %e, "commands: cannot post the details");
            }
        }
    }

    /// What a writing command would do, before `confirm`.
    async fn preview(&self, c: &Command) -> (String, Option<String>) {
        match c {
            Command::Apply | Command::Invite => {
                let scope = if *c == Command::Invite { Scope::Members } else { Scope::All };
                let report = self.reconcile(true, scope).await;
                (format!("{} would: {}.", c.describe(), report.0), report.1)
            }
            Command::Replay(id) => match self.action(id) {
                Some(a) => (format!("replay would send {} of talk {} again in {}.", a.kind.slug(), a.talk, a.room()), None),
                None => (format!("No action {id} in the timeline (`{} timeline` lists them).", self.config.operations.prefix), None),
            },
            Command::Rehearse(n) => (
                format!("rehearse would run the first {n} talks' timeline on a clock of their own, starting in a minute, in their real rooms (meant for a test server)."),
                None,
            ),
            other => (other.describe(), None),
        }
    }

    /// Runs a command; the line to answer and the details for a thread.
    async fn execute(&self, c: &Command, command_event: &str) -> (String, Option<String>) {
        let prefix = &self.config.operations.prefix;
        match c {
            Command::Help => ("Commands (details in the thread).".into(), Some(commands::help(prefix))),
            Command::Status => {
                let s = self.sources.status_now().await;
                (stagehand::status::text(&s), Some(stagehand::status::details(&s)))
            }
            Command::Plan => {
                let (line, details) = self.reconcile(true, Scope::All).await;
                (format!("plan: {line}."), details)
            }
            Command::Apply | Command::Invite => {
                let scope = if *c == Command::Invite { Scope::Members } else { Scope::All };
                let (line, details) = self.reconcile(false, scope).await;
                (format!("{}: {line}.", c.describe()), details)
            }
            Command::Attendance(track) => self.attendance(track.as_deref()).await,
            Command::Refresh => {
                self.refresh.notify_one();
                ("Re-reading the schedule now; the rooms follow.".into(), None)
            }
            Command::Timeline(q) => self.timeline(q).await,
            Command::Skip(id) => match self.action(id) {
                Some(a) => {
                    let detail = format!("skipped by an organiser's command {command_event}");
                    match self.store.finish(&a, RecordState::Skipped, None, Some(detail), self.clock.now(), SendTimes::default()).await {
                        Ok(()) => {
                            // The runner reads the store again when its list changes: it will not send it.
                            self.actions.send_modify(|_| {});
                            (format!("Skipped: {} of talk {}.", a.kind.slug(), a.talk), None)
                        }
                        Err(e) => (format!("Cannot record the skip: {e}"), None),
                    }
                }
                None => (format!("No action {id} in the timeline (`{prefix} timeline` lists them)."), None),
            },
            Command::Replay(id) => match self.action(id) {
                Some(a) => {
                    let txn = format!("{}.replay.{:016x}", a.txn_id(), stable_hash(command_event.bytes()));
                    match self.sender.perform(&a, &txn).await {
                        Ok(sent) => (format!("Sent again: {} of talk {} ({}).", a.kind.slug(), a.talk, sent.event), None),
                        Err(e) => (format!("Could not send it again: {e}"), None),
                    }
                }
                None => (format!("No action {id} in the timeline."), None),
            },
            Command::Rehearse(n) => self.rehearse(*n),
            Command::Confirm | Command::Cancel => ("Nothing to do.".into(), None),
        }
    }

    fn action(&self, id: &str) -> Option<Action> {
        self.actions.borrow().iter().find(|a| a.id == id).cloned()
    }

    /// A reconcile of the plan in force at the run's moment: the summary and, when anything differs, the report.
    async fn reconcile(&self, dry_run: bool, scope: Scope) -> (String, Option<String>) {
        let plan = self.current.borrow().clone();
        let actions = self.actions.borrow().clone();
        let mut opts = self.opts.clone();
        opts.dry_run = dry_run;
        opts.scope = scope;
        if scope == Scope::Members {
            opts.invite = true;
        }
        let report = reconcile_at(self.hs, &plan, &opts, || moment_of(self.config, &actions, self.clock.now())).await;
        let details = print::report(&report, dry_run);
        (report.summary(), Some(details))
    }

    async fn attendance(&self, track: Option<&str>) -> (String, Option<String>) {
        let plan = self.current.borrow().clone();
        let seen = match attendance::read(self.hs, &plan).await {
            Ok(s) => s,
            Err(e) => return (format!("Cannot read the rooms: {e}"), None),
        };
        let rows: Vec<attendance::Row> = attendance::rows(&plan, &seen).into_iter().filter(|r| track.is_none_or(|t| r.track == t)).collect();
        if rows.is_empty() {
            return (format!("No planned members{}.", track.map(|t| format!(" in track {t}")).unwrap_or_default()), None);
        }
        let all = attendance::summarise(&rows, |_| "all");
        let line = all
            .first()
            .map(|s| format!("{} of {} joined ({:.0}%), {} invited, {} not reachable.", s.joined, s.total, s.percent(s.joined), s.invited + s.email_invited, s.uncontactable))
            .unwrap_or_default();
        (format!("Attendance{}: {line}", track.map(|t| format!(" of {t}")).unwrap_or_default()), Some(print::attendance(&rows)))
    }

    async fn timeline(&self, q: &TimelineQuery) -> (String, Option<String>) {
        let actions = self.actions.borrow().clone();
        let records = match self.store.load().await {
            Ok(r) => r,
            Err(e) => return (format!("Cannot read the timeline store: {e}"), None),
        };
        let now = self.clock.now();
        let chosen: Vec<&Action> = match q {
            TimelineQuery::Next(n) => actions.iter().filter(|a| a.fire_at >= now && !records.contains_key(&a.id)).take(*n).collect(),
            TimelineQuery::Talk(t) => actions.iter().filter(|a| &a.talk == t).collect(),
        };
        if chosen.is_empty() {
            return ("No such actions.".into(), None);
        }
        let lines: Vec<String> = chosen
            .iter()
            .map(|a| {
                let state = records.get(&a.id).map_or("pending", |r| match r.state {
                    RecordState::Sent => "sent",
                    RecordState::Skipped => "skipped",
                    RecordState::Failed => "failed",
                    RecordState::Sending => "sending",
                });
                format!("{} {} {} in {} ({state}) id {}", a.instant.format("%a %H:%M:%S"), a.kind.slug(), a.talk, a.room(), a.id)
            })
            .collect();
        (format!("{} actions (in the thread).", lines.len()), Some(lines.join("\n")))
    }

    fn rehearse(&self, n: usize) -> (String, Option<String>) {
        let Ok(exe) = std::env::current_exe() else { return ("Cannot find this program to start a rehearsal.".into(), None) };
        let log_path = self.config.timeline.store.with_file_name("rehearsal.log");
        let log = match std::fs::File::create(&log_path) {
            Ok(f) => f,
            Err(e) => return (format!("Cannot write {}: {e}", log_path.display()), None),
        };
        let mut cmd = std::process::Command::new(exe);
        cmd.args(&self.rehearsal_args).args(["--rehearse", "--start-in", "1m", "--listen", "127.0.0.1:0", "--talks"]).arg(n.to_string());
        cmd.stdout(std::process::Stdio::null()).stderr(log);
        match cmd.spawn() {
            Ok(child) => (format!("Rehearsal of {n} talks started (process {}), first talk in a minute; its log: {}.", child.id(), log_path.display()), None),
            Err(e) => (format!("Cannot start the rehearsal: {e}"), None),
        }
    }
}
