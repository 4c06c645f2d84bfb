//! What `stagehand run` listens to: the rooms' events through the intake (a filtered `/sync`, or the transactions
//! the homeserver pushes to an application service), taken in by Q&A, and commands for the management room's
//! executor (messages starting with the command prefix, wherever they are said). Starts Q&A on the day's store, finds the
//! rooms questions are asked in (track rooms, stands, talk rooms) and follows a new plan after a schedule refresh.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use stagehand::config::Config;
use stagehand::matrix::client::Homeserver;
use stagehand::matrix::fanout;
use stagehand::matrix::intake::{self, Delivery, IntakeStatus};
use stagehand::matrix::live::Live;
use stagehand::plan::{ObjectKind, Plan};
use stagehand::qa::{Qa, Scope};
use stagehand::schedule::Conference;
use stagehand::secrets;
use stagehand::timeline::{Clock, Store};
use tokio::sync::{mpsc, watch};

/// Q&A and the intake feeding it.
pub struct Listening {
    pub qa: Arc<Qa>,
    pub status: watch::Receiver<IntakeStatus>,
    /// The application service's routes, to be served beside the pages (none: the bot syncs).
    pub routes: Option<axum::Router>,
    /// Messages that may be commands (the prefix, any listened room), for the executor to take.
    pub commands: Option<mpsc::Receiver<intake::RoomEvent>>,
    /// The management room's id, once found.
    pub management: watch::Receiver<Option<String>>,
    management_tx: watch::Sender<Option<String>>,
    rooms: watch::Sender<Arc<Vec<String>>>,
    margin: i64,
    clock: Clock,
}

/// Starts Q&A and its intake, unless `qa.enabled` is off. The intake runs until `stop`.
pub async fn start(
    config: &Config,
    hs: &Homeserver,
    conference: &Conference,
    plan: &Plan,
    store: Store,
    clock: Clock,
    rehearse: bool,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<Listening>> {
    if !config.qa.enabled && !config.operations.has_management_room() {
        return Ok(None);
    }
    let margin = config.qa.margin_minutes;
    let scope = Scope::new(conference, plan, &HashMap::new(), margin, clock);
    let qa = Arc::new(
        Qa::open(store.clone(), scope, config.qa.clone(), hs.user_id.clone())
            .await
            .with_context(|| format!("cannot open Q&A in {}", store.path().display()))?,
    );
    let (inbox, deliveries) = mpsc::channel::<Delivery>(64);
    let (commands_tx, commands) = mpsc::channel(64);
    let (management_tx, management) = watch::channel(None);
    let route = Route { qa: config.qa.enabled.then(|| qa.clone()), commands: commands_tx, prefix: config.operations.prefix.clone(), bot: hs.user_id.clone(), management: management.clone() };
    tokio::spawn(consume(route, deliveries));
    let (status_tx, status) = watch::channel(IntakeStatus::default());
    let (rooms, rooms_rx) = watch::channel(Arc::new(Vec::new()));
    // History older than this cannot hold a question: an hour before the first talk, or for a rehearsal (whose
    // clock is shifted) a little before it started.
    let not_before = if rehearse {
        Some(Utc::now() - Duration::minutes(10))
    } else {
        conference.talks.iter().map(|t| t.start.to_utc()).min().map(|t: DateTime<Utc>| t - Duration::hours(1))
    };
    let routes = match secrets::appservice_hs_token(&config.homeserver)? {
        Some(hs_token) => {
            eprintln!("questions: taken from the transactions the homeserver pushes to the application service");
            let (hs, read_store, read_inbox) = (hs.clone(), store.clone(), inbox.clone());
            tokio::spawn(async move { intake::appservice::catch_up(&hs, rooms_rx, read_store, read_inbox, not_before, stop).await });
            Some(intake::appservice::router(hs_token, store, inbox, status_tx))
        }
        None => {
            let hs = hs.clone();
            tokio::spawn(async move { intake::sync::sync(&hs, rooms_rx, store, inbox, not_before, status_tx, stop).await });
            eprintln!("questions: taken from a filtered /sync of the track and talk rooms");
            None
        }
    };
    Ok(Some(Listening { qa, status, routes, commands: Some(commands), management, management_tx, rooms, margin, clock }))
}

/// Where delivered events go.
struct Route {
    qa: Option<Arc<Qa>>,
    commands: mpsc::Sender<intake::RoomEvent>,
    prefix: String,
    bot: String,
    management: watch::Receiver<Option<String>>,
}

impl Route {
    /// Whether an event may be a command: a message of someone else starting with the prefix.
    fn command(&self, e: &intake::RoomEvent) -> bool {
        e.event_type() == Some("m.room.message")
            && e.event.get("sender").and_then(|s| s.as_str()) != Some(self.bot.as_str())
            && e.event.pointer("/content/body").and_then(|b| b.as_str()).is_some_and(|b| {
                b.split_whitespace().next().is_some_and(|w| w.eq_ignore_ascii_case(&self.prefix))
            })
    }
}

/// Takes deliveries: commands to the executor, the rest into Q&A; a batch is acknowledged only once stored (else
/// the intake delivers it again).
async fn consume(route: Route, mut deliveries: mpsc::Receiver<Delivery>) {
    while let Some(d) = deliveries.recv().await {
        let management = route.management.borrow().clone();
        let mut events = Vec::new();
        for e in d.events {
            if route.command(&e) && route.commands.try_send(e.clone()).is_err() {
                tracing::warn!("commands: the executor is busy; a command was dropped");
            }
            // The management room's talk is not Q&A's business.
            if management.as_deref() != Some(e.room_id.as_str()) {
                events.push((e.room_id, e.event));
            }
        }
        let Some(qa) = &route.qa else {
            if let Some(done) = d.done {
                let _ = done.send(());
            }
            continue;
        };
        match qa.deliver(events).await {
            Ok(()) => {
                if let Some(done) = d.done {
                    let _ = done.send(());
                }
            }
            Err(e) => tracing::error!(error = %e, "questions: cannot store events; they come again"),
        }
    }
}

impl Listening {
    /// Finds the rooms of a plan (track rooms, stands, talk rooms) and listens to them; questions are assigned by
    /// the new schedule from now on.
    pub async fn follow(&self, live: &Live, conference: &Conference, plan: &Plan) {
        let keys: Vec<String> = plan
            .rooms
            .iter()
            .filter(|r| matches!(r.kind, ObjectKind::TrackRoom | ObjectKind::Stand | ObjectKind::TalkRoom | ObjectKind::Management))
            .map(|r| r.key.clone())
            .collect();
        let found = fanout::all(keys, 8, |key| async move {
            let id = live.room_id(&key).await;
            (key, id)
        })
        .await;
        let mut ids = HashMap::new();
        let mut missing = 0;
        for (key, id) in found {
            match id {
                Ok(id) => {
                    ids.insert(key, id);
                }
                Err(e) => {
                    missing += 1;
                    tracing::debug!(room = %key, error = %e, "questions: room not found");
                }
            }
        }
        if missing > 0 {
            tracing::warn!(missing, "questions: some track or talk rooms do not exist yet; they are listened to after the next refresh");
        }
        let scope = Scope::new(conference, plan, &ids, self.margin, self.clock);
        let management = plan.rooms.iter().find(|r| r.kind == ObjectKind::Management).and_then(|r| ids.get(&r.key)).cloned();
        self.management_tx.send_if_modified(|m| {
            let changed = *m != management;
            *m = management.clone();
            changed
        });
        let mut list = scope.room_ids();
        list.extend(management);
        list.sort();
        self.qa.rescope(scope);
        self.rooms.send_if_modified(|old| {
            let changed = **old != list;
            if changed {
                *old = Arc::new(list);
            }
            changed
        });
    }
}
