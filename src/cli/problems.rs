//! Problems told to the organisers in the management room while `stagehand run` runs: failed actions (from the
//! store), a refresh that brought a broken schedule, a homeserver outage and its end (a health check every
//! [`CHECK_EVERY`]), and what a refresh changed in the talks. Grouped and rate-limited by
//! [`stagehand::commands::problems::Reporter`]; without a management room they are only logged.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use stagehand::commands::problems::Reporter;
use stagehand::matrix::client::Homeserver;
use stagehand::schedule::model::stable_hash;
use stagehand::timeline::{RecordState, RunnerStatus, Store};
use tokio::sync::{mpsc, watch};

/// How often the homeserver is checked.
const CHECK_EVERY: Duration = Duration::from_secs(10);

/// Where the run's parts send problems and news.
#[derive(Clone)]
pub struct Problems(mpsc::UnboundedSender<Report>);

pub enum Report {
    Problem { kind: &'static str, text: String },
    Notice(String),
}

impl Problems {
    pub fn problem(&self, kind: &'static str, text: String) {
        tracing::warn!(kind, %text, "problem");
        let _ = self.0.send(Report::Problem { kind, text });
    }

    pub fn notice(&self, text: String) {
        tracing::info!(%text, "notice");
        let _ = self.0.send(Report::Notice(text));
    }
}

pub fn channel() -> (Problems, mpsc::UnboundedReceiver<Report>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Problems(tx), rx)
}

/// Reports until `stop`.
pub async fn report(
    hs: &Homeserver,
    interval_seconds: u64,
    management: watch::Receiver<Option<String>>,
    mut reports: mpsc::UnboundedReceiver<Report>,
    mut runner: watch::Receiver<RunnerStatus>,
    store: Store,
    mut stop: watch::Receiver<bool>,
) {
    let mut reporter = Reporter::new(interval_seconds);
    let mut told: HashSet<String> = HashSet::new();
    let mut failed_seen = runner.borrow().failed;
    let mut check = tokio::time::interval(CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            Some(r) = reports.recv() => match r {
                Report::Problem { kind, text } => reporter.problem(kind, text, Utc::now().timestamp_millis()),
                Report::Notice(text) => reporter.notice(text),
            },
            changed = runner.changed() => {
                if changed.is_err() {
                    continue;
                }
                let failed = runner.borrow_and_update().failed;
                if failed > failed_seen {
                    let records = match store.load().await {
                        Ok(r) => r,
                        Err(e) => {
                            // Not counted as seen: the next change of the runner's status tries again.
                            tracing::warn!(error = %e, "cannot read the store for the failed actions");
                            continue;
                        }
                    };
                    failed_seen = failed;
                    for r in records.into_values().filter(|r| r.state == RecordState::Failed) {
                        if told.insert(r.id.clone()) {
                            let text = format!("{} of talk {} in {}: {}", r.kind, r.talk, r.room, r.detail.unwrap_or_default());
                            reporter.problem("action failed", text, Utc::now().timestamp_millis());
                        }
                    }
                }
            }
            _ = check.tick() => {
                let outcome = tokio::time::timeout(Duration::from_secs(5), hs.ping()).await;
                let (ok, error) = match outcome {
                    Ok(Ok(())) => (true, String::new()),
                    Ok(Err(e)) => (false, e.to_string()),
                    Err(_) => (false, "no answer within 5 s".to_string()),
                };
                reporter.health(ok, &error, Utc::now().timestamp_millis());
            }
        }
        let posts = reporter.take(Utc::now().timestamp_millis());
        if posts.is_empty() {
            continue;
        }
        // Nothing can be posted during an outage: its notice and what failed meanwhile go out when it is over.
        if reporter.in_outage() {
            reporter.retry(posts);
            continue;
        }
        let room = management.borrow().clone();
        let Some(room) = room else { continue };
        let mut unsent = Vec::new();
        for text in posts {
            // The same post retried keeps its transaction id: the homeserver takes it once.
            let txn = format!("stagehand.problem.{}.{:016x}", std::process::id(), stable_hash(text.bytes()));
            let content = serde_json::json!({"msgtype": "m.notice", "body": text, "m.mentions": {}});
            if unsent.is_empty() {
                match hs.send_message(&room, &txn, "m.room.message", &content, false).await {
                    Ok(_) => continue,
                    Err(e) => tracing::warn!(error = %e, "cannot post to the management room yet"),
                }
            }
            unsent.push(text);
        }
        reporter.retry(unsent);
    }
}
