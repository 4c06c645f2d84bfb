use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::*;
use crate::timeline::Clock;
use crate::timeline::fixtures;

/// The small conference's room ids: `!<plan key>`.
fn scope() -> Scope {
    let (conf, plan) = fixtures::small();
    let ids: HashMap<String, String> = plan.rooms.iter().map(|r| (r.key.clone(), format!("!{}", r.key))).collect();
    Scope::new(&conf, &plan, &ids, 5, Clock::system())
}

fn ms(utc: &str) -> i64 {
    DateTime::parse_from_rfc3339(utc).map(|t| t.with_timezone(&Utc).timestamp_millis()).unwrap()
}

/// The room id of a plan key (which must exist).
fn room_of(key: &str) -> String {
    let (_, plan) = fixtures::small();
    assert!(plan.rooms.iter().any(|r| r.key == key), "no room {key}");
    format!("!{key}")
}

struct Events {
    room: String,
    n: usize,
    out: Vec<(String, Value)>,
}

impl Events {
    fn new(room: &str) -> Events {
        Events { room: room.to_string(), n: 0, out: Vec::new() }
    }
    fn push(&mut self, sender: &str, ts: i64, kind: &str, content: Value) -> String {
        self.n += 1;
        let id = format!("$e{}", self.n);
        self.out.push((self.room.clone(), json!({"event_id": id, "sender": sender, "origin_server_ts": ts, "type": kind, "content": content})));
        id
    }
    fn ask(&mut self, sender: &str, ts: i64, body: &str) -> String {
        self.push(sender, ts, "m.room.message", json!({"msgtype": "m.text", "body": body}))
    }
    fn react(&mut self, sender: &str, ts: i64, target: &str, key: &str) -> String {
        self.push(sender, ts, "m.reaction", json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}}))
    }
    fn redact(&mut self, sender: &str, ts: i64, target: &str) -> String {
        self.push(sender, ts, "m.room.redaction", json!({"redacts": target}))
    }
    fn edit(&mut self, sender: &str, ts: i64, target: &str, body: &str) -> String {
        self.push(sender, ts, "m.room.message", json!({"msgtype": "m.text", "body": format!("* {body}"), "m.new_content": {"msgtype": "m.text", "body": body}, "m.relates_to": {"rel_type": "m.replace", "event_id": target}}))
    }
    fn reply(&mut self, sender: &str, ts: i64, target: &str, body: &str) -> String {
        self.push(sender, ts, "m.room.message", json!({"msgtype": "m.text", "body": body, "m.relates_to": {"m.in_reply_to": {"event_id": target}}}))
    }
    fn name(&mut self, user: &str, ts: i64, name: &str) {
        self.n += 1;
        self.out.push((self.room.clone(), json!({"event_id": format!("$m{}", self.n), "sender": user, "state_key": user, "origin_server_ts": ts, "type": "m.room.member", "content": {"membership": "join", "displayname": name}})));
    }
}

async fn qa_with(events: &[(String, Value)], opts: QaOptions) -> (Qa, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sqlite")).unwrap();
    let qa = Qa::open(store, scope(), opts, "@bot:example.org".into()).await.unwrap();
    qa.deliver(events.to_vec()).await.unwrap();
    (qa, dir)
}

fn ranking(b: &Board) -> Vec<(String, usize, bool)> {
    b.questions.iter().map(|q| (q.text.clone(), q.votes, q.answered)).collect()
}

/// 10:00-10:40 Brussels: 09:00-09:40 UTC.
const DURING_ASYNC: &str = "2026-03-14T09:10:00Z";

#[tokio::test]
async fn votes_edits_and_redactions_rank_exactly() {
    let t = ms(DURING_ASYNC);
    let mut e = Events::new(&room_of("track/rust"));
    e.name("@ann:x", t - 1, "Ann <b>");
    let q1 = e.ask("@ann:x", t, "Why async?");
    let q2 = e.ask("@bob:x", t + 1, "What about Send?");
    let q3 = e.ask("@cy:x", t + 2, "To be deleted");
    let q4 = e.ask("@dee:x", t + 3, "Typo questoin");
    e.react("@bob:x", t + 10, &q1, "👍");
    e.react("@bob:x", t + 11, &q1, "👍\u{FE0F}"); // the same person twice: one vote
    e.react("@cy:x", t + 12, &q1, "👍");
    let undo = e.react("@dee:x", t + 13, &q1, "👍");
    e.redact("@dee:x", t + 14, &undo);
    e.react("@ann:x", t + 15, &q2, "👍🏽");
    e.react("@bob:x", t + 16, &q2, "👍"); // own vote: not counted
    e.react("@ann:x", t + 17, &q3, "👍");
    e.redact("@cy:x", t + 18, &q3);
    e.edit("@dee:x", t + 20, &q4, "Typo question");
    e.edit("@bob:x", t + 21, &q4, "hijacked"); // someone else's edit: ignored
    e.react("@eve:x", t + 22, &q4, "👎"); // not a vote
    let (qa, _dir) = qa_with(&e.out, QaOptions::default()).await;
    let b = qa.board("async");
    assert_eq!(
        ranking(&b),
        vec![("Why async?".into(), 2, false), ("What about Send?".into(), 1, false), ("Typo question".into(), 0, false)]
    );
    assert_eq!(b.questions[0].asker_name, "Ann <b>");
    assert_eq!(b.questions[1].asker_name, "@bob:x", "no display name: the user id");
    assert_eq!(b.questions[0].id, q1);
}

#[tokio::test]
async fn back_to_back_talks_each_get_their_questions() {
    let mut e = Events::new(&room_of("track/rust"));
    // async ends 09:40 UTC (+5 min margin); recorded starts 09:45.
    e.ask("@a:x", ms("2026-03-14T09:39:00Z"), "late for async");
    e.ask("@a:x", ms("2026-03-14T09:44:00Z"), "in async's margin");
    e.ask("@a:x", ms("2026-03-14T09:46:00Z"), "for recorded");
    e.ask("@a:x", ms("2026-03-14T08:59:00Z"), "before anything");
    e.ask("@a:x", ms("2026-03-14T10:25:00Z"), "after everything");
    let (qa, _dir) = qa_with(&e.out, QaOptions::default()).await;
    let texts = |t: &str| qa.board(t).questions.iter().map(|q| q.text.clone()).collect::<Vec<_>>();
    assert_eq!(texts("async"), vec!["late for async", "in async's margin"]);
    assert_eq!(texts("recorded"), vec!["for recorded"]);
    assert!(texts("welcome").is_empty());
}

#[tokio::test]
async fn hosts_and_moderators_hide_and_answer_attendees_cannot() {
    let t = ms(DURING_ASYNC);
    let mut e = Events::new(&room_of("track/rust"));
    let spam = e.ask("@a:x", t, "spam");
    let done = e.ask("@a:x", t + 1, "answered one");
    let kept = e.ask("@a:x", t + 2, "attendee tried to hide");
    let by_reply = e.ask("@a:x", t + 3, "hidden by reply");
    let power = e.ask("@a:x", t + 4, "hidden by a moderator");
    e.react("@ada:example.org", t + 10, &spam, "❌"); // ada hosts async
    e.react("@ada:example.org", t + 11, &done, "✅");
    e.react("@mallory:x", t + 12, &kept, "❌");
    e.react("@mallory:x", t + 13, &kept, "✅");
    e.reply("@mallory:x", t + 14, &kept, "!hide");
    e.reply("@ada:example.org", t + 15, &by_reply, "> <@a:x> hidden by reply\n\n!HIDE");
    e.react("@mod:x", t + 16, &power, "❌");
    e.push("@bot:example.org", t - 5, "m.room.power_levels", json!({"users": {"@mod:x": 50, "@bot:example.org": 100}}));
    let (qa, _dir) = qa_with(&e.out, QaOptions::default()).await;
    let b = qa.board("async");
    assert_eq!(ranking(&b), vec![("answered one".into(), 0, true), ("attendee tried to hide".into(), 0, false)]);
    assert_eq!(b.hidden, 3);
}

#[tokio::test]
async fn boards_do_not_depend_on_order_and_survive_a_restart() {
    let t = ms(DURING_ASYNC);
    let mut e = Events::new(&room_of("track/rust"));
    let q = e.ask("@a:x", t, "first");
    let r = e.react("@b:x", t + 1, &q, "👍");
    e.redact("@b:x", t + 2, &r);
    e.react("@c:x", t + 3, &q, "👍");
    let q2 = e.ask("@b:x", t + 4, "second");
    e.react("@a:x", t + 5, &q2, "✅");
    e.edit("@a:x", t + 6, &q, "first, edited");
    let (live, dir) = qa_with(&e.out, QaOptions::default()).await;
    let expected = live.board("async");
    assert_eq!(ranking(&expected), vec![("first, edited".into(), 1, false), ("second".into(), 0, false)]);
    let mut reversed = e.out.clone();
    reversed.reverse();
    let (backwards, _d) = qa_with(&reversed, QaOptions::default()).await;
    assert_eq!(backwards.board("async"), expected);
    drop(live);
    let store = Store::open(&dir.path().join("s.sqlite")).unwrap();
    let again = Qa::open(store, scope(), QaOptions::default(), "@bot:example.org".into()).await.unwrap();
    assert_eq!(again.board("async"), expected);
}

#[tokio::test]
async fn the_talk_room_takes_questions_once_open_and_modes_choose_messages() {
    let talk_room = room_of("talk/async");
    let mut e = Events::new(&talk_room);
    e.ask("@a:x", ms(DURING_ASYNC), "speakers chatting during the talk");
    let q = e.ask("@a:x", ms("2026-03-14T09:50:00Z"), "hallway question");
    e.reply("@b:x", ms("2026-03-14T09:51:00Z"), &q, "a reply is discussion");
    e.push("@b:x", ms("2026-03-14T09:52:00Z"), "m.room.message", json!({"msgtype": "m.text", "body": "in a thread", "m.relates_to": {"rel_type": "m.thread", "event_id": q}}));
    e.push("@b:x", ms("2026-03-14T09:53:00Z"), "m.room.message", json!({"msgtype": "m.notice", "body": "a notice"}));
    e.ask("@bot:example.org", ms("2026-03-14T09:54:00Z"), "the bot's own");
    e.ask("@c:x", ms("2026-03-14T09:55:00Z"), "q: with a prefix");
    let (qa, _dir) = qa_with(&e.out, QaOptions::default()).await;
    let texts = |qa: &Qa| qa.board("async").questions.iter().map(|q| q.text.clone()).collect::<Vec<_>>();
    assert_eq!(texts(&qa), vec!["hallway question", "q: with a prefix"]);
    let (every, _d1) = qa_with(&e.out, QaOptions { questions: QuestionMode::Every, ..QaOptions::default() }).await;
    assert_eq!(texts(&every), vec!["hallway question", "a reply is discussion", "in a thread", "q: with a prefix"]);
    let (prefix, _d2) = qa_with(&e.out, QaOptions { questions: QuestionMode::Prefix, ..QaOptions::default() }).await;
    assert_eq!(texts(&prefix), vec!["with a prefix"]);
}

#[tokio::test]
async fn own_votes_count_when_configured_and_subscribers_hear_each_change() {
    let t = ms(DURING_ASYNC);
    let mut e = Events::new(&room_of("track/rust"));
    let q = e.ask("@a:x", t, "mine");
    let (qa, _dir) = qa_with(&e.out, QaOptions { own_vote_counts: true, ..QaOptions::default() }).await;
    let mut rx = qa.subscribe();
    let mut more = Events { n: 100, ..Events::new(&room_of("track/rust")) };
    more.react("@a:x", t + 1, &q, "👍");
    qa.deliver(more.out.clone()).await.unwrap();
    let b = rx.try_recv().unwrap();
    assert_eq!((b.talk.as_str(), b.questions[0].votes), ("async", 1));
    qa.deliver(more.out).await.unwrap();
    assert!(rx.try_recv().is_err(), "the same event again changes nothing and says nothing");
}
