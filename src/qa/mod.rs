//! Q&A: the audience's questions and upvotes, per talk, from the room events the intake delivers.
//!
//! - [`options`]: the `qa` config section (which messages are questions, which reactions vote and moderate).
//! - [`facts`] (pure): room events read as messages, edits, reactions, redactions, names and power levels.
//! - [`scope`] (pure): which talk a message asks (the track room during the talk's window, the talk room once open)
//!   and who may moderate.
//! - [`board`] (pure): the facts of each room and the ranking of a talk's questions (by votes, then time asked).
//! - [`store`]: the events taken in, kept in the day's SQLite file; boards are rebuilt from them after a restart.
//! - [`Qa`]: all of it together: takes deliveries, keeps them, updates the boards of the talks they touch and tells
//!   subscribers (the page's event stream) at once.
//!
//! Owns: questions, votes and moderation. Must not touch: the homeserver (the intake reads it), the timeline.

pub mod board;
pub mod facts;
pub mod options;
pub mod scope;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::broadcast;

pub use board::{Board, Question};
pub use options::{QaOptions, QuestionMode};
pub use scope::Scope;

use crate::timeline::{Store, StoreError};
use board::{RoomFacts, Touched};

struct Inner {
    scope: Scope,
    rooms: HashMap<String, RoomFacts>,
    boards: HashMap<String, Arc<Board>>,
}

/// The boards of a conference, kept current.
pub struct Qa {
    inner: Mutex<Inner>,
    opts: QaOptions,
    bot: String,
    store: Store,
    changes: broadcast::Sender<Arc<Board>>,
}

impl Inner {
    /// The talks a touched fact may have changed.
    fn talks_touched(&self, room_id: &str, touched: &Touched, out: &mut HashSet<String>) {
        let Some(facts) = self.rooms.get(room_id) else { return };
        let mut add = |ts: i64| {
            if let Some(t) = self.scope.talk_of(room_id, ts) {
                out.insert(t.to_string());
            }
        };
        match touched {
            Touched::Messages(ids) => ids.iter().filter_map(|id| facts.message_ts(id)).for_each(&mut add),
            Touched::Sender(user) => facts.sent_by(user).for_each(&mut add),
            Touched::Room => facts.message_ids().for_each(|(_, ts)| add(ts)),
            Touched::Nothing => {}
        }
    }
}

impl Qa {
    /// Opens Q&A on the day's store: its table made if needed, and every kept event taken in again.
    pub async fn open(store: Store, scope: Scope, opts: QaOptions, bot: String) -> Result<Qa, StoreError> {
        store::prepare(&store).await?;
        let kept = store::load(&store).await?;
        let (changes, _) = broadcast::channel(1024);
        let qa = Qa { inner: Mutex::new(Inner { scope, rooms: HashMap::new(), boards: HashMap::new() }), opts, bot, store, changes };
        qa.take(&kept);
        qa.rebuild();
        Ok(qa)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The boards are recomputed from the facts on demand: a panic mid-update loses nothing that matters.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes in events; returns the talks whose boards may have changed.
    fn take(&self, events: &[(String, Value)]) -> HashSet<String> {
        let mut inner = self.lock();
        let mut talks = HashSet::new();
        let metrics = crate::metrics::global();
        for (room_id, event) in events {
            let Some(fact) = facts::read(event) else { continue };
            let room = inner.rooms.entry(room_id.clone()).or_default();
            match &fact {
                facts::Fact::Message(m) if !room.knows(&m.id) && m.msgtype == "m.text" && m.sender != self.bot => metrics.qa_question(),
                facts::Fact::Reaction { id, key, .. } if !room.knows(id) && self.opts.is_vote(key) => metrics.qa_vote(),
                _ => {}
            }
            let touched = room.add(fact);
            inner.talks_touched(room_id, &touched, &mut talks);
        }
        talks
    }

    /// Recomputes the given talks' boards; tells subscribers about those that changed.
    fn update(&self, talks: impl IntoIterator<Item = String>) {
        let changed: Vec<Arc<Board>> = {
            let mut inner = self.lock();
            let mut changed = Vec::new();
            for talk in talks {
                let b = Arc::new(board::board(&talk, &inner.rooms, &inner.scope, &self.opts, &self.bot));
                if inner.boards.get(&talk).is_none_or(|old| **old != *b) {
                    inner.boards.insert(talk, b.clone());
                    changed.push(b);
                }
            }
            crate::metrics::global().qa_boards(inner.boards.values().filter(|b| !b.questions.is_empty() || b.hidden > 0).count());
            changed
        };
        for b in changed {
            // Nobody listening is fine.
            let _ = self.changes.send(b);
        }
    }

    /// Recomputes every board (after a new scope).
    fn rebuild(&self) {
        let talks: HashSet<String> = {
            let inner = self.lock();
            let mut talks = HashSet::new();
            for room_id in inner.rooms.keys() {
                inner.talks_touched(room_id, &Touched::Room, &mut talks);
            }
            talks.extend(inner.boards.keys().cloned());
            talks
        };
        self.update(talks);
    }

    /// Keeps a delivery's events in the store, then updates the boards they touch. Once this returns `Ok`, the
    /// events survive a restart.
    pub async fn deliver(&self, events: Vec<(String, Value)>) -> Result<(), StoreError> {
        let relevant: Vec<(String, Value)> = events.into_iter().filter(|(_, e)| facts::read(e).is_some()).collect();
        if relevant.is_empty() {
            return Ok(());
        }
        store::keep(&self.store, relevant.clone()).await?;
        let talks = self.take(&relevant);
        self.update(talks);
        Ok(())
    }

    /// Follows a new schedule or new room ids: questions are assigned again and every board recomputed.
    pub fn rescope(&self, scope: Scope) {
        self.lock().scope = scope;
        self.rebuild();
    }

    /// A talk's board as it is now.
    pub fn board(&self, talk: &str) -> Arc<Board> {
        let inner = self.lock();
        inner.boards.get(talk).cloned().unwrap_or_else(|| Arc::new(Board { talk: talk.to_string(), ..Board::default() }))
    }

    /// Boards as they change.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Board>> {
        self.changes.subscribe()
    }

    /// The scope in force.
    pub fn scope(&self) -> Scope {
        self.lock().scope.clone()
    }

    /// How many boards have questions (shown or hidden).
    pub fn active_boards(&self) -> usize {
        self.lock().boards.values().filter(|b| !b.questions.is_empty() || b.hidden > 0).count()
    }

    pub fn options(&self) -> &QaOptions {
        &self.opts
    }
}

#[cfg(test)]
mod tests;
