//! The runner: sleeps until the next action's instant (`sleep_until`, no polling), fires what is due in instant and
//! priority order through a [`Sender`], records each action in the [`Store`] before and after sending, sends late
//! actions within their grace window and skips (records, logs) the others, takes a new action list at any time, and
//! stops on a shutdown signal with everything recorded, counting each outcome and the lateness of each send in its
//! [`Metrics`]. Owns no Matrix code: the sender does the sending.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{info, instrument, warn};

use super::actions::{Action, Priority, seconds};
use super::clock::Clock;
use super::options::RetryOptions;
use super::store::{RecordState, SendTimes, Store, StoreError};
use crate::metrics::{self, ActionOutcome, Metrics};

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth another try (a timeout, a 5xx, a 429): retried within the action's budget.
    #[error("transient: {0}")]
    Transient(String),
    /// Will not get better (the room is gone, no permission): recorded `failed` at once.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// What one send did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The id of the event that carries the action, or why there is none (`unchanged`, `no questions`).
    pub event: String,
    /// When the request that carries the action went out (none when nothing was written): what came before it is
    /// the bot's part of the lateness, what comes after the homeserver's.
    pub requested: Option<tokio::time::Instant>,
}

impl Sent {
    /// An event written by a request that went out at `requested`.
    pub fn event(event: String, requested: tokio::time::Instant) -> Sent {
        Sent { event, requested: Some(requested) }
    }

    /// Nothing written, for the reason given.
    pub fn nothing(why: &str) -> Sent {
        Sent { event: why.to_string(), requested: None }
    }
}

/// Performs one action against the homeserver. The Matrix implementation lives in the matrix layer.
pub trait Sender: Send + Sync + 'static {
    /// Does what `action.effect` says and returns the id of the event it sent. A message must be sent with `txn_id`
    /// as its transaction id (`PUT /rooms/{id}/send/{type}/{txnId}`), so a send repeated after a crash is
    /// deduplicated by the homeserver. One attempt, bounded in time: the runner retries.
    fn perform(&self, action: &Action, txn_id: &str) -> impl Future<Output = Result<Sent, SendError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("the timeline runner cannot read its store: {0}")]
    Store(#[from] StoreError),
}

/// What `/healthz` shows: whether the runner runs and how late it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerStatus {
    pub alive: bool,
    /// The runner's clock when the status last changed.
    pub now: Option<DateTime<Utc>>,
    /// How late the runner started the last action it fired (its start minus its fire time), in milliseconds.
    pub lateness_ms: i64,
    /// The most of that so far.
    pub max_lateness_ms: i64,
    /// The next instant the runner wakes for.
    pub next: Option<DateTime<Utc>>,
    pub in_flight: usize,
    pub sent: usize,
    pub skipped: usize,
    pub failed: usize,
}

impl RunnerStatus {
    /// How far past its next wake-up the runner is at `now`, in milliseconds (0 on time): a runner that is alive but
    /// stuck shows here, for `/healthz`.
    pub fn behind_ms(&self, now: DateTime<Utc>) -> i64 {
        self.next.map_or(0, |next| (now - next).num_milliseconds().max(0))
    }
}

/// What a run did, once it has stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    pub sent: usize,
    pub skipped: usize,
    pub failed: usize,
    /// Sends stopped by the shutdown between two attempts: left `sending`, resent with the same transaction id by the
    /// next run if still within grace.
    pub interrupted: usize,
    /// Actions whose record could not be written (logged); they are not sent.
    pub store_errors: usize,
}

/// How one action ended.
#[derive(Debug)]
enum Outcome {
    Done(RecordState),
    Interrupted,
    StoreError,
}

/// What a run keeps track of: the actions done and in flight, the send tasks, the counts.
#[derive(Default)]
struct Books {
    done: HashSet<String>,
    in_flight: HashSet<String>,
    tasks: JoinSet<(String, Outcome)>,
    summary: RunSummary,
}

impl Books {
    fn finished(&mut self, id: String, outcome: &Outcome) {
        self.in_flight.remove(&id);
        self.done.insert(id);
        count(&mut self.summary, outcome);
    }
}

/// Fires the timeline through `S`.
pub struct Runner<S: Sender> {
    sender: Arc<S>,
    store: Store,
    clock: Clock,
    retry: RetryOptions,
    status: watch::Sender<RunnerStatus>,
    permits: Permits,
    /// Tells the send tasks to stop retrying: the run is stopping.
    stop: watch::Sender<bool>,
    metrics: Arc<Metrics>,
}

impl<S: Sender> Runner<S> {
    pub fn new(sender: Arc<S>, store: Store, clock: Clock, retry: RetryOptions) -> Runner<S> {
        let (status, _) = watch::channel(RunnerStatus::default());
        let permits = Permits::new(retry.max_in_flight);
        let (stop, _) = watch::channel(false);
        Runner { sender, store, clock, retry, status, permits, stop, metrics: metrics::global().clone() }
    }

    /// Counts into `metrics` instead of the process's ([`metrics::global`]).
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Runner<S> {
        Runner { metrics, ..self }
    }

    /// The runner's status, updated as it goes (`alive` false once it has stopped; a closed channel means it died).
    pub fn status(&self) -> watch::Receiver<RunnerStatus> {
        self.status.subscribe()
    }

    /// Runs until `shutdown` completes. `actions` carries the current action list (sorted by [`Action::sort_key`]);
    /// a new list replaces it at once: dropped actions never fire, moved ones fire at their new instant. Actions
    /// already recorded in the store are not sent again; one found `sending` (a crash mid-send) is resent with the
    /// same transaction id if within grace.
    #[instrument(name = "timeline_run", skip_all)]
    pub async fn run(
        self,
        mut actions: watch::Receiver<Arc<Vec<Action>>>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<RunSummary, RunnerError> {
        let mut books = Books::default();
        let mut resend: HashSet<String> = HashSet::new();
        for (id, rec) in self.store.load().await? {
            if rec.state == RecordState::Sending {
                resend.insert(id);
            } else {
                books.done.insert(id);
            }
        }
        info!(recorded = books.done.len(), unfinished = resend.len(), store = %self.store.path().display(), "timeline runner starts");
        let mut list = sorted(actions.borrow_and_update().clone());
        let mut next = 0usize;
        let mut listening = true;
        let mut due: Vec<Action> = Vec::new();
        tokio::pin!(shutdown);
        self.status.send_modify(|s| s.alive = true);
        loop {
            let now = self.clock.now();
            while let Some(action) = list.get(next).filter(|a| a.fire_at <= now) {
                next += 1;
                if books.done.contains(&action.id) || books.in_flight.contains(&action.id) {
                    continue;
                }
                if now > action.deadline {
                    let why = if resend.contains(&action.id) {
                        "was being sent when the runner stopped, beyond its grace window now (it may have arrived)"
                    } else {
                        "missed: beyond its grace window"
                    };
                    let outcome = self.skip(action, now, why).await;
                    books.finished(action.id.clone(), &outcome);
                    continue;
                }
                due.push(action.clone());
            }
            if !due.is_empty() {
                self.launch(std::mem::take(&mut due), now, &mut books).await;
            }
            let wake = list.get(next).map(|a| a.fire_at);
            self.status.send_modify(|s| {
                s.now = Some(now);
                s.next = wake;
                s.in_flight = books.in_flight.len();
                (s.sent, s.skipped, s.failed) = (books.summary.sent, books.summary.skipped, books.summary.failed);
            });
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(joined) = books.tasks.join_next(), if !books.tasks.is_empty() => match joined {
                    Ok((id, outcome)) => books.finished(id, &outcome),
                    // Its action stays in flight (never sent again by this run) and `sending` in the store.
                    Err(e) => warn!(error = %e, "a send task ended abnormally"),
                },
                changed = actions.changed(), if listening => match changed {
                    Ok(()) => {
                        list = sorted(actions.borrow_and_update().clone());
                        next = 0;
                        // Actions recorded since (skipped by an organiser's command) are not sent.
                        match self.store.load().await {
                            Ok(records) => books.done.extend(
                                records.into_values().filter(|r| r.state != RecordState::Sending && !books.in_flight.contains(&r.id)).map(|r| r.id),
                            ),
                            Err(e) => warn!(error = %e, "cannot read the store for actions recorded meanwhile"),
                        }
                        info!(actions = list.len(), "timeline runner takes a new action list");
                    }
                    Err(_) => listening = false,
                },
                () = sleep_until(&self.clock, wake) => {}
            }
        }
        let Books { mut tasks, mut summary, .. } = books;
        info!(in_flight = tasks.len(), "timeline runner stops: waiting for the sends in flight");
        self.stop.send_replace(true);
        let drain = async {
            while let Some(joined) = tasks.join_next().await {
                if let Ok((_, outcome)) = joined {
                    count(&mut summary, &outcome);
                }
            }
        };
        if tokio::time::timeout(std::time::Duration::from_secs(30), drain).await.is_err() {
            warn!(left = tasks.len(), "sends still running after 30 s: left `sending`, resent by the next run");
            summary.interrupted += tasks.len();
            tasks.abort_all();
        }
        self.status.send_modify(|s| {
            s.alive = false;
            s.in_flight = 0;
            (s.sent, s.skipped, s.failed) = (summary.sent, summary.skipped, summary.failed);
        });
        info!(sent = summary.sent, skipped = summary.skipped, failed = summary.failed, "timeline runner stopped");
        Ok(summary)
    }

    /// Records the due actions `sending` (one transaction, in order), then starts their sends in that order.
    #[instrument(skip_all, fields(actions = due.len()))]
    async fn launch(&self, due: Vec<Action>, now: DateTime<Utc>, books: &mut Books) {
        if let Err(e) = self.store.begin_all(&due, now).await {
            warn!(error = %e, actions = due.len(), "cannot record the due actions before sending them: not sent");
            for a in due {
                books.finished(a.id, &Outcome::StoreError);
            }
            return;
        }
        let lateness = due.iter().map(|a| (now - a.fire_at).num_milliseconds()).max().unwrap_or(0);
        self.status.send_modify(|s| {
            s.lateness_ms = lateness;
            s.max_lateness_ms = s.max_lateness_ms.max(lateness);
        });
        for action in due {
            books.in_flight.insert(action.id.clone());
            let fire = Fire {
                sender: self.sender.clone(),
                store: self.store.clone(),
                clock: self.clock,
                retry: self.retry,
                permits: self.permits.clone(),
                stop: self.stop.subscribe(),
                metrics: self.metrics.clone(),
            };
            books.tasks.spawn(async move { (action.id.clone(), fire.fire(action).await) });
        }
    }

    #[instrument(skip_all, fields(talk = %action.talk, action = action.kind.slug(), room = action.room()))]
    async fn skip(&self, action: &Action, now: DateTime<Utc>, why: &str) -> Outcome {
        let late = (now - action.instant).num_seconds();
        info!(late_s = late, id = %action.id, "skipped: {why}");
        self.metrics.action(action.kind, ActionOutcome::Skipped);
        match self.store.finish(action, RecordState::Skipped, None, Some(why.to_string()), now, SendTimes::default()).await {
            Ok(()) => Outcome::Done(RecordState::Skipped),
            Err(e) => {
                warn!(error = %e, "cannot record a skipped action");
                Outcome::StoreError
            }
        }
    }
}

fn sorted(list: Arc<Vec<Action>>) -> Arc<Vec<Action>> {
    if list.is_sorted_by(|a, b| a.sort_key() <= b.sort_key()) {
        return list;
    }
    let mut v = (*list).clone();
    v.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    Arc::new(v)
}

fn count(summary: &mut RunSummary, outcome: &Outcome) {
    match outcome {
        Outcome::Done(RecordState::Sent) => summary.sent += 1,
        Outcome::Done(RecordState::Skipped) => summary.skipped += 1,
        Outcome::Done(RecordState::Failed) => summary.failed += 1,
        Outcome::Done(RecordState::Sending) | Outcome::Interrupted => summary.interrupted += 1,
        Outcome::StoreError => summary.store_errors += 1,
    }
}

async fn sleep_until(clock: &Clock, wake: Option<DateTime<Utc>>) {
    match wake {
        Some(at) => tokio::time::sleep_until(clock.instant_at(at)).await,
        None => std::future::pending().await,
    }
}

/// The send slots: `max_in_flight` in all, of which routine sends hold at most half (rounded up), so a burst of time-critical
/// sends always finds slots free, whatever routine work (the end of the last talk, reminders) is under way.
#[derive(Clone)]
struct Permits {
    all: Arc<Semaphore>,
    routine: Arc<Semaphore>,
}

/// A send slot, held while the send lasts.
struct Permit {
    _slot: tokio::sync::OwnedSemaphorePermit,
    _routine: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Permits {
    fn new(max_in_flight: usize) -> Permits {
        let all = max_in_flight.max(1);
        Permits { all: Arc::new(Semaphore::new(all)), routine: Arc::new(Semaphore::new(all.div_ceil(2))) }
    }

    /// A slot for a send of this priority (none once the semaphores are closed).
    async fn acquire(&self, priority: Priority) -> Option<Permit> {
        let routine = match priority {
            Priority::Critical => None,
            Priority::Routine => Some(self.routine.clone().acquire_owned().await.ok()?),
        };
        let slot = self.all.clone().acquire_owned().await.ok()?;
        Some(Permit { _slot: slot, _routine: routine })
    }
}

/// What one send task needs.
struct Fire<S> {
    sender: Arc<S>,
    store: Store,
    clock: Clock,
    retry: RetryOptions,
    permits: Permits,
    stop: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
}

impl<S: Sender> Fire<S> {
    /// Sends (the first attempt is recorded by the caller), retries transient failures within the budget, recording
    /// each further attempt, and records the end.
    #[instrument(skip_all, fields(talk = %action.talk, action = action.kind.slug(), room = action.room()))]
    async fn fire(mut self, action: Action) -> Outcome {
        let Some(_permit) = self.permits.acquire(action.priority).await else { return Outcome::Interrupted };
        let budget = match action.priority {
            Priority::Critical => self.retry.critical_seconds,
            Priority::Routine => self.retry.routine_seconds,
        };
        let start = self.clock.now();
        let give_up = (start + seconds(budget)).min(action.deadline.max(start));
        let txn = action.txn_id();
        let mut backoff = Duration::milliseconds(i64::try_from(self.retry.first_backoff_ms.max(1)).unwrap_or(i64::MAX / 2));
        let mut attempt = 1u32;
        loop {
            if attempt > 1
                && let Err(e) = self.store.begin(&action, self.clock.now()).await
            {
                warn!(error = %e, "cannot record the attempt before sending it: not sent");
                return Outcome::StoreError;
            }
            let mut requested = None;
            let (state, event, detail) = match self.sender.perform(&action, &txn).await {
                Ok(sent) => {
                    requested = sent.requested.map(|at| self.clock.wall_at(at));
                    (RecordState::Sent, Some(sent.event), None)
                }
                Err(SendError::Permanent(e)) => (RecordState::Failed, None, Some(e)),
                Err(SendError::Transient(e)) => {
                    let retry_at = self.clock.now() + backoff;
                    if retry_at <= give_up {
                        warn!(error = %e, attempt, retry_in_ms = backoff.num_milliseconds(), "send failed, retrying");
                        tokio::select! {
                            () = tokio::time::sleep_until(self.clock.instant_at(retry_at)) => {}
                            _ = self.stop.wait_for(|stop| *stop) => return Outcome::Interrupted,
                        }
                        backoff = backoff * 2;
                        attempt += 1;
                        continue;
                    }
                    (RecordState::Failed, None, Some(format!("gave up retrying after {attempt} attempts: {e}")))
                }
            };
            let now = self.clock.now();
            match &detail {
                None => {
                    let ms = |t: DateTime<Utc>| (t - action.fire_at).num_milliseconds();
                    info!(
                        event = event.as_deref().unwrap_or_default(),
                        late_ms = (now - action.instant).num_milliseconds(),
                        started_ms = ms(start),
                        requested_ms = requested.map(ms),
                        "sent"
                    );
                    self.metrics.action(action.kind, ActionOutcome::Sent);
                    self.metrics.action_lateness(action.priority, (now - action.fire_at).num_milliseconds() as f64 / 1000.0);
                }
                Some(why) => {
                    warn!(error = %why, "failed");
                    self.metrics.action(action.kind, ActionOutcome::Failed);
                }
            }
            let times = SendTimes { started: Some(start), requested };
            return match self.store.finish(&action, state, event, detail, now, times).await {
                Ok(()) => Outcome::Done(state),
                Err(e) => {
                    warn!(error = %e, "cannot record how the action ended: it stays `sending` and is resent (deduplicated) by the next run");
                    Outcome::StoreError
                }
            };
        }
    }
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
