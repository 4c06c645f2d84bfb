//! The boards: every fact Q&A has seen, room by room, and the ranking of a talk's questions computed from them.
//! A board is a function of the set of facts (not of the order they came in), so boards rebuilt from the rooms'
//! history equal the ones built live. Pure.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::facts::{Fact, Message, Power};
use super::options::{QaOptions, QuestionMode};
use super::scope::Scope;

/// One question on a board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Question {
    /// The event id of the message.
    pub id: String,
    pub text: String,
    pub asker: String,
    /// The asker's display name in the room, else their user id.
    pub asker_name: String,
    pub votes: usize,
    pub answered: bool,
    /// When it was asked (the server's milliseconds since the epoch).
    pub asked_at: i64,
}

/// A talk's questions, ranked: by votes, then by time asked. Hidden questions are left out (and counted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Board {
    pub talk: String,
    pub questions: Vec<Question>,
    pub hidden: usize,
}

#[derive(Debug, Clone)]
struct Reaction {
    sender: String,
    target: String,
    key: String,
}

#[derive(Debug, Clone)]
struct Edit {
    ts: i64,
    id: String,
    sender: String,
    target: String,
    body: String,
}

/// Everything seen in one room.
#[derive(Debug, Default)]
pub struct RoomFacts {
    messages: HashMap<String, Message>,
    edits: HashMap<String, Edit>,
    edits_of: HashMap<String, Vec<String>>,
    reactions: HashMap<String, Reaction>,
    reactions_on: HashMap<String, Vec<String>>,
    replies_to: HashMap<String, Vec<String>>,
    redacted: HashSet<String>,
    names: HashMap<String, (i64, Option<String>)>,
    power: Option<Power>,
}

/// What a fact touched: the messages whose board may have changed, or the whole room (names, power).
#[derive(Debug, PartialEq, Eq)]
pub enum Touched {
    Messages(Vec<String>),
    /// The messages of one sender (their display name changed).
    Sender(String),
    Room,
    Nothing,
}

impl RoomFacts {
    /// Takes in a fact (idempotent) and says what it may have changed.
    pub fn add(&mut self, fact: Fact) -> Touched {
        match fact {
            Fact::Message(m) => {
                let id = m.id.clone();
                if let Some(target) = &m.reply_to {
                    push_once(self.replies_to.entry(target.clone()).or_default(), &id);
                }
                // A reply may be a moderation command on its target.
                let touched = m.reply_to.iter().cloned().chain([id.clone()]).collect();
                self.messages.insert(id, m);
                Touched::Messages(touched)
            }
            Fact::Edit { id, sender, ts, target, body } => {
                push_once(self.edits_of.entry(target.clone()).or_default(), &id);
                self.edits.insert(id.clone(), Edit { ts, id, sender, target: target.clone(), body });
                Touched::Messages(vec![target])
            }
            Fact::Reaction { id, sender, target, key, .. } => {
                push_once(self.reactions_on.entry(target.clone()).or_default(), &id);
                self.reactions.insert(id, Reaction { sender, target: target.clone(), key });
                Touched::Messages(vec![target])
            }
            Fact::Redaction { redacts, .. } => {
                self.redacted.insert(redacts.clone());
                let target = if let Some(r) = self.reactions.get(&redacts) {
                    Some(r.target.clone())
                } else if let Some(e) = self.edits.get(&redacts) {
                    Some(e.target.clone())
                } else {
                    self.messages.get(&redacts).and_then(|m| m.reply_to.clone())
                };
                Touched::Messages(target.into_iter().chain([redacts]).collect())
            }
            Fact::Member { user, name, ts } => {
                let newer = self.names.get(&user).is_none_or(|(t, _)| ts >= *t);
                if newer {
                    self.names.insert(user.clone(), (ts, name));
                    Touched::Sender(user)
                } else {
                    Touched::Nothing
                }
            }
            Fact::Power(p) => {
                if self.power.as_ref().is_none_or(|old| p.ts >= old.ts) {
                    self.power = Some(p);
                    Touched::Room
                } else {
                    Touched::Nothing
                }
            }
        }
    }

    /// Whether an event was taken in already (a message, edit or reaction).
    pub fn knows(&self, id: &str) -> bool {
        self.messages.contains_key(id) || self.reactions.contains_key(id) || self.edits.contains_key(id)
    }

    /// The message ids of this room, for indexing.
    pub fn message_ids(&self) -> impl Iterator<Item = (&String, i64)> {
        self.messages.iter().map(|(id, m)| (id, m.ts))
    }

    pub fn message_ts(&self, id: &str) -> Option<i64> {
        self.messages.get(id).map(|m| m.ts)
    }

    /// The times of one sender's messages.
    pub fn sent_by<'a>(&'a self, user: &'a str) -> impl Iterator<Item = i64> + 'a {
        self.messages.values().filter(move |m| m.sender == user).map(|m| m.ts)
    }

    fn live(&self, id: &str) -> bool {
        !self.redacted.contains(id)
    }

    fn name(&self, user: &str) -> String {
        self.names.get(user).and_then(|(_, n)| n.clone()).unwrap_or_else(|| user.to_string())
    }

    fn power_of(&self, user: &str) -> i64 {
        self.power.as_ref().map_or(0, |p| p.of(user))
    }

    /// Whether a message is a moderation command (a reply naming a command), which is never a question.
    fn command(&self, m: &Message, opts: &QaOptions) -> Option<Command> {
        m.reply_to.as_ref()?;
        let body = m.body.trim();
        if body.eq_ignore_ascii_case(opts.hide_command.trim()) {
            Some(Command::Hide)
        } else if body.eq_ignore_ascii_case(opts.answered_command.trim()) {
            Some(Command::Answered)
        } else {
            None
        }
    }

    /// The question a message is, if it is one: its text (edited, prefix removed).
    fn question_text(&self, m: &Message, opts: &QaOptions, bot: &str) -> Option<String> {
        if m.sender == bot || m.msgtype != "m.text" || !self.live(&m.id) || self.command(m, opts).is_some() {
            return None;
        }
        let text = self.latest_text(m);
        let text = match opts.questions {
            QuestionMode::Every => text,
            QuestionMode::ThreadRoots if m.reply_to.is_none() && !m.in_thread => text,
            QuestionMode::ThreadRoots => return None,
            QuestionMode::Prefix => {
                let t = text.trim_start();
                let p = opts.prefix.trim();
                match t.get(..p.len()) {
                    Some(head) if head.eq_ignore_ascii_case(p) => t[p.len()..].to_string(),
                    _ => return None,
                }
            }
        };
        let text = text.trim().to_string();
        (!text.is_empty()).then_some(text)
    }

    /// The text after the asker's latest edit (by time, then id; edits by anyone else are ignored).
    fn latest_text(&self, m: &Message) -> String {
        let latest = self
            .edits_of
            .get(&m.id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.edits.get(id))
            .filter(|e| e.sender == m.sender && self.live(&e.id))
            .max_by(|a, b| (a.ts, &a.id).cmp(&(b.ts, &b.id)));
        latest.map_or_else(|| m.body.clone(), |e| e.body.clone())
    }

    /// The question for a message, with its votes and moderation, unless it is no question; `Err(())` when hidden.
    pub fn question(&self, id: &str, opts: &QaOptions, bot: &str, may_moderate: &dyn Fn(&str, i64) -> bool) -> Option<Result<Question, ()>> {
        let m = self.messages.get(id)?;
        let text = self.question_text(m, opts, bot)?;
        let mut voters = HashSet::new();
        let (mut hidden, mut answered) = (false, false);
        for r in self.reactions_on.get(id).into_iter().flatten().filter(|r| self.live(r)).filter_map(|r| self.reactions.get(r)) {
            if opts.is_vote(&r.key) {
                if r.sender != m.sender || opts.own_vote_counts {
                    voters.insert(r.sender.as_str());
                }
            } else if opts.is_hide(&r.key) && may_moderate(&r.sender, self.power_of(&r.sender)) {
                hidden = true;
            } else if opts.is_answered(&r.key) && may_moderate(&r.sender, self.power_of(&r.sender)) {
                answered = true;
            }
        }
        for reply in self.replies_to.get(id).into_iter().flatten().filter(|r| self.live(r)).filter_map(|r| self.messages.get(r)) {
            match self.command(reply, opts) {
                Some(Command::Hide) if may_moderate(&reply.sender, self.power_of(&reply.sender)) => hidden = true,
                Some(Command::Answered) if may_moderate(&reply.sender, self.power_of(&reply.sender)) => answered = true,
                _ => {}
            }
        }
        if hidden {
            return Some(Err(()));
        }
        Some(Ok(Question {
            id: m.id.clone(),
            text,
            asker: m.sender.clone(),
            asker_name: self.name(&m.sender),
            votes: voters.len(),
            answered,
            asked_at: m.ts,
        }))
    }
}

enum Command {
    Hide,
    Answered,
}

fn push_once(list: &mut Vec<String>, id: &str) {
    if !list.iter().any(|x| x == id) {
        list.push(id.to_string());
    }
}

/// The board of a talk: every message of its rooms that its scope assigns to it.
pub fn board(talk: &str, rooms: &HashMap<String, RoomFacts>, scope: &Scope, opts: &QaOptions, bot: &str) -> Board {
    let moderators = scope.talk(talk).map(|t| &t.moderators);
    let may_moderate = |user: &str, power: i64| power >= opts.moderator_power || moderators.is_some_and(|m| m.contains(user));
    let mut out = Board { talk: talk.to_string(), ..Board::default() };
    for room_id in scope.room_ids_of(talk) {
        let Some(facts) = rooms.get(room_id) else { continue };
        for (id, ts) in facts.message_ids() {
            if scope.talk_of(room_id, ts) != Some(talk) {
                continue;
            }
            match facts.question(id, opts, bot, &may_moderate) {
                Some(Ok(q)) => out.questions.push(q),
                Some(Err(())) => out.hidden += 1,
                None => {}
            }
        }
    }
    out.questions.sort_by(|a, b| b.votes.cmp(&a.votes).then(a.asked_at.cmp(&b.asked_at)).then(a.id.cmp(&b.id)));
    out
}
