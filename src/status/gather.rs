//! Gathering a status: the only IO of [`crate::status`]. Reads the timeline store's records, asks the homeserver
//! which rooms exist and who joined the talk rooms ([`Observation`]), and takes the running parts (the runner's and
//! the intake's status, the Q&A boards, the journal of problems); [`super::build`] makes the status from them.
//!
//! [`Sources`] holds what a process has to take a status from: `stagehand run` keeps one for its `/status` page and
//! the management room, `stagehand status` makes one for a single reading. The homeserver is asked only as often as
//! it must be: the talk rooms of the next hour at most once a [`SOON_EVERY`], every room at most once an
//! [`EVERYTHING_EVERY`], one reading at a time, in the background for the page.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Duration, Utc};
use tokio::sync::watch;

use super::{BoardSize, HomeserverStatus, Inputs, IntakeHealth, Problem, RunnerHealth, ScheduleStatus, Status, build, journal, soon};
use crate::matrix::attendance::{self, RoomSeen};
use crate::matrix::client::Homeserver;
use crate::matrix::fanout;
use crate::matrix::intake::IntakeStatus;
use crate::plan::{ObjectKind, Plan, PlannedRoom};
use crate::qa::Qa;
use crate::schedule::model::Conference;
use crate::timeline::{Action, Clock, Record, RunnerStatus, Store};

/// How old a reading of the next hour's talk rooms may get before the page asks again.
pub const SOON_EVERY: Duration = Duration::seconds(60);
/// How old a reading of every room may get before the page asks again.
pub const EVERYTHING_EVERY: Duration = Duration::minutes(10);

/// What the homeserver showed of some planned rooms.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// When it was read (wall clock).
    pub at: DateTime<Utc>,
    /// Whether every planned room was looked up (else: the talk rooms of the next hour).
    pub everything: bool,
    /// The plan keys of the rooms looked up.
    pub checked: HashSet<String>,
    /// Of those, the ones that exist.
    pub existing: HashSet<String>,
    /// Membership and records of the talk rooms and backstages read, by plan key.
    pub attendance: HashMap<String, RoomSeen>,
    /// What went wrong, when something did (the rest of the reading stands).
    pub error: Option<String>,
}

fn attended(room: &PlannedRoom) -> bool {
    matches!(room.kind, ObjectKind::TalkRoom | ObjectKind::Backstage)
}

/// Reads some talk rooms or backstages: who is in them, and whether they exist.
pub async fn observe_rooms(hs: &Homeserver, rooms: &[&PlannedRoom]) -> Observation {
    let mut o = Observation { at: Utc::now(), checked: rooms.iter().map(|r| r.key.clone()).collect(), ..Observation::default() };
    let attended_rooms: Vec<&PlannedRoom> = rooms.iter().copied().filter(|r| attended(r)).collect();
    match attendance::read_rooms(hs, attended_rooms).await {
        Ok(seen) => {
            o.existing.extend(seen.keys().cloned());
            o.attendance = seen;
        }
        Err(e) => o.error = Some(e.to_string()),
    }
    o
}

/// Reads every planned room: the talk rooms and backstages with their members, the others by alias.
pub async fn observe_everything(hs: &Homeserver, plan: &Plan) -> Observation {
    let attended_rooms: Vec<&PlannedRoom> = plan.rooms.iter().filter(|r| attended(r)).collect();
    let mut o = observe_rooms(hs, &attended_rooms).await;
    o.everything = true;
    let others: Vec<(String, String)> = plan.rooms.iter().filter(|r| !attended(r)).map(|r| (r.key.clone(), r.alias.clone())).collect();
    let found = fanout::all(others, 8, |(key, alias)| async move { (key, hs.resolve_alias(&alias).await) }).await;
    for (key, found) in found {
        match found {
            Ok(Some(_)) => {
                o.existing.insert(key.clone());
            }
            Ok(None) => {}
            Err(e) => {
                o.error.get_or_insert_with(|| e.to_string());
            }
        }
        o.checked.insert(key);
    }
    o
}

/// What a process has to take a status from (fixed for its life).
pub struct Running {
    /// The schedule's file or URL, as shown (no credentials: [`crate::source::shown`]).
    pub source: String,
    /// `timeline.refresh`, for the next re-read.
    pub refresh: Option<cron::Schedule>,
    /// The conference clock (a rehearsal's).
    pub clock: Clock,
    pub rehearsal: bool,
    /// The homeserver, when logged in.
    pub hs: Option<Homeserver>,
    /// Why there is no homeserver (the login failed).
    pub hs_error: Option<String>,
    /// The timeline's store, where there is one.
    pub store: Option<Store>,
    pub runner: Option<watch::Receiver<RunnerStatus>>,
    pub intake: Option<watch::Receiver<IntakeStatus>>,
    pub qa: Option<Arc<Qa>>,
}

/// The schedule in force.
#[derive(Clone)]
struct Current {
    conference: Arc<Conference>,
    plan: Arc<Plan>,
    actions: Arc<Vec<Action>>,
    read_at: DateTime<Utc>,
    refreshed_at: Option<DateTime<Utc>>,
}

#[derive(Default, Clone)]
struct Seen {
    everything: Option<Arc<Observation>>,
    soon: Option<Arc<Observation>>,
}

/// Everything a status is taken from, shared by the `/status` page and the management room's `status` command.
pub struct Sources {
    running: Running,
    current: RwLock<Current>,
    seen: Mutex<Seen>,
    /// A reading of the homeserver is under way (one at a time).
    observing: AtomicBool,
}

/// How fresh the homeserver's part of a status must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    /// What was read before; stale readings are renewed in the background.
    Cached,
    /// The talk rooms of the next hour read now.
    Soon,
    /// Every room read now.
    Everything,
}

impl Sources {
    /// Sources for a schedule just read.
    pub fn new(running: Running, conference: Conference, plan: Arc<Plan>, actions: Arc<Vec<Action>>) -> Sources {
        let current = Current { conference: Arc::new(conference), plan, actions, read_at: Utc::now(), refreshed_at: None };
        Sources { running, current: RwLock::new(current), seen: Mutex::new(Seen::default()), observing: AtomicBool::new(false) }
    }

    /// A re-read schedule is in force from now on.
    pub fn schedule_read(&self, conference: &Conference, plan: Arc<Plan>, actions: Arc<Vec<Action>>) {
        let now = Utc::now();
        let mut current = self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *current = Current { conference: Arc::new(conference.clone()), plan, actions, read_at: now, refreshed_at: Some(now) };
    }

    fn current(&self) -> Current {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The status now, from the homeserver's last readings; readings older than [`SOON_EVERY`] or
    /// [`EVERYTHING_EVERY`] are renewed in the background (the next status has them). For a page that refreshes
    /// itself.
    pub async fn status(self: &Arc<Self>) -> Status {
        let status = self.take(Fresh::Cached).await;
        self.renew_stale();
        status
    }

    /// The status with the talk rooms of the next hour read now (every room as last read, renewed in the
    /// background when stale): for the management room's `status` command.
    pub async fn status_now(self: &Arc<Self>) -> Status {
        let status = self.take(Fresh::Soon).await;
        self.renew_stale();
        status
    }

    /// Renews stale readings in the background, unless a reading is under way.
    fn renew_stale(self: &Arc<Self>) {
        let seen = self.seen().clone();
        let stale = |o: &Option<Arc<Observation>>, every: Duration| o.as_ref().is_none_or(|o| Utc::now() - o.at > every);
        let (soon_stale, all_stale) = (stale(&seen.soon, SOON_EVERY), stale(&seen.everything, EVERYTHING_EVERY));
        if !(soon_stale || all_stale) || self.running.hs.is_none() || self.observing.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let current = this.current();
            this.observe(&current, if all_stale { Fresh::Everything } else { Fresh::Soon }).await;
            this.observing.store(false, Ordering::Release);
        });
    }

    /// The status with every room read now: for `stagehand status`, once.
    pub async fn status_everything(&self) -> Status {
        self.take(Fresh::Everything).await
    }

    /// Reads the homeserver as `fresh` asks and keeps the reading.
    async fn observe(&self, current: &Current, fresh: Fresh) {
        let Some(hs) = &self.running.hs else { return };
        match fresh {
            Fresh::Cached => {}
            Fresh::Soon => {
                let rooms = soon(&current.conference, &current.plan, self.running.clock.now());
                let o = Arc::new(observe_rooms(hs, &rooms).await);
                self.seen().soon = Some(o);
            }
            Fresh::Everything => {
                let o = Arc::new(observe_everything(hs, &current.plan).await);
                let mut seen = self.seen();
                seen.soon = Some(o.clone());
                seen.everything = Some(o);
            }
        }
    }

    async fn take(&self, fresh: Fresh) -> Status {
        let current = self.current();
        self.observe(&current, fresh).await;
        let mut problems = journal::global().recent();
        let records: HashMap<String, Record> = match &self.running.store {
            Some(store) => store.load().await.unwrap_or_else(|e| {
                problems.push(Problem {
                    at: Utc::now(),
                    level: "error".into(),
                    message: "cannot read the timeline store".into(),
                    fields: format!("error={e}"),
                    count: 1,
                });
                HashMap::new()
            }),
            None => HashMap::new(),
        };
        let now = self.running.clock.now();
        let seen = self.seen().clone();
        let observations: Vec<&Observation> = [&seen.everything, &seen.soon].into_iter().flatten().map(|o| o.as_ref()).collect();
        let boards = self.running.qa.as_ref().map(|qa| boards(qa, &current.conference));
        let intake = self.running.intake.as_ref().map(|i| IntakeHealth::of(&i.borrow()));
        build(Inputs {
            conference: &current.conference,
            plan: &current.plan,
            actions: &current.actions,
            records: &records,
            now,
            taken_at: Utc::now(),
            rehearsal: self.running.rehearsal,
            schedule: ScheduleStatus {
                source: self.running.source.clone(),
                talks: current.conference.talks.len(),
                read_at: current.read_at,
                refreshed_at: current.refreshed_at,
                next_refresh: self.running.refresh.as_ref().and_then(|c| c.upcoming(Utc).next()),
            },
            observations: &observations,
            boards: boards.as_ref(),
            homeserver: self.homeserver(&observations, intake.as_ref()),
            runner: self.running.runner.as_ref().map(|r| RunnerHealth::of(&r.borrow(), now)),
            intake,
            problems,
        })
    }

    /// Whether the homeserver answers: the last requests of this process, a failed login, the last reading.
    fn homeserver(&self, observations: &[&Observation], intake: Option<&IntakeHealth>) -> HomeserverStatus {
        let contact = crate::metrics::global().contact();
        let newest = observations.iter().max_by_key(|o| o.at);
        let error = self
            .running
            .hs_error
            .clone()
            .or_else(|| newest.and_then(|o| o.error.clone()))
            .or_else(|| intake.filter(|i| i.failures > 0).and_then(|i| i.last_error.clone()));
        let reachable = if self.running.hs_error.is_some() { Some(false) } else { contact.reachable() };
        HomeserverStatus { reachable, last_ok: contact.last_ok, last_error: contact.last_error, error }
    }
}

/// The size of every talk's board.
fn boards(qa: &Qa, conf: &Conference) -> HashMap<String, BoardSize> {
    conf.talks
        .iter()
        .map(|t| {
            let b = qa.board(&t.key);
            (t.key.clone(), BoardSize { questions: b.questions.len(), votes: b.questions.iter().map(|q| q.votes).sum() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{RecordState, TimelineOptions, fixtures, timeline};

    #[tokio::test]
    async fn without_a_homeserver_the_status_says_so_and_still_reads_the_store_and_the_runner() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("day.sqlite")).unwrap();
        let (conf, plan) = fixtures::small();
        let actions = Arc::new(timeline(&conf, &plan, &TimelineOptions::default()));
        let first = &actions[0];
        store.begin(first, first.fire_at).await.unwrap();
        store.finish(first, RecordState::Failed, None, Some("M_FORBIDDEN".into()), first.fire_at, Default::default()).await.unwrap();
        let (_runner_tx, runner) = watch::channel(RunnerStatus { alive: true, ..RunnerStatus::default() });
        let running = Running {
            source: "small.yaml".into(),
            refresh: None,
            clock: Clock::starting_at(first.fire_at + Duration::hours(1)),
            rehearsal: true,
            hs: None,
            hs_error: Some("cannot log in".into()),
            store: Some(store),
            runner: Some(runner),
            intake: None,
            qa: None,
        };
        let sources = Arc::new(Sources::new(running, conf.clone(), Arc::new(plan.clone()), actions.clone()));
        let s = sources.status().await;
        assert_eq!((s.homeserver.reachable, s.homeserver.error.as_deref()), (Some(false), Some("cannot log in")));
        assert!(s.attendance.is_none() && s.rooms.observed_at.is_none(), "nothing read: unknown");
        assert_eq!((s.actions.failed_count, s.actions.failed[0].detail.as_deref()), (1, Some("M_FORBIDDEN")));
        assert!(s.runner.as_ref().is_some_and(|r| r.runner.alive) && s.intake.is_none() && s.qa.is_none() && s.rehearsal);
        assert_eq!((s.schedule.source.as_str(), s.schedule.refreshed_at), ("small.yaml", None));

        let mut fewer = conf.clone();
        fewer.talks.truncate(1);
        sources.schedule_read(&fewer, Arc::new(plan), Arc::new(Vec::new()));
        let s = sources.status_now().await;
        assert_eq!((s.schedule.talks, s.actions.total), (1, 0));
        assert!(s.schedule.refreshed_at.is_some());
    }
}
