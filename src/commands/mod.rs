//! Management-room commands: what an organiser types (`!sh status`), who may, and the confirmation that every command
//! which writes waits for. Pure: the binary's `run` carries them out with the same operations as the CLI.
//!
//! Owns: the command language, authorisation, pending confirmations, reply shapes. Must not touch: the homeserver,
//! the store, the plan (the executor does).

use std::collections::HashMap;

pub mod problems;

use serde_json::{Value, json};

use crate::config::OperationsConfig;
use crate::qa::facts::Power;

/// What the `timeline` command shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineQuery {
    /// The next N actions.
    Next(usize),
    /// One talk's actions.
    Talk(String),
}

/// A command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Status,
    /// The differences between the plan and the server (nothing written).
    Plan,
    Apply,
    Invite,
    Attendance(Option<String>),
    /// Re-read the schedule now.
    Refresh,
    Timeline(TimelineQuery),
    /// Do not send an action (by id).
    Skip(String),
    /// Send an action again (by id).
    Replay(String),
    /// Rehearse the first N talks on a clock of their own.
    Rehearse(usize),
    Confirm,
    Cancel,
}

impl Command {
    /// Whether the command writes to the homeserver, and so waits for `confirm`.
    pub fn writes(&self) -> bool {
        matches!(self, Command::Apply | Command::Invite | Command::Replay(_) | Command::Rehearse(_))
    }

    /// The command as typed, for messages.
    pub fn describe(&self) -> String {
        match self {
            Command::Help => "help".into(),
            Command::Status => "status".into(),
            Command::Plan => "plan".into(),
            Command::Apply => "apply".into(),
            Command::Invite => "invite".into(),
            Command::Attendance(None) => "attendance".into(),
            Command::Attendance(Some(t)) => format!("attendance {t}"),
            Command::Refresh => "refresh".into(),
            Command::Timeline(TimelineQuery::Next(n)) => format!("timeline next {n}"),
            Command::Timeline(TimelineQuery::Talk(t)) => format!("timeline {t}"),
            Command::Skip(id) => format!("skip {id}"),
            Command::Replay(id) => format!("replay {id}"),
            Command::Rehearse(n) => format!("rehearse {n}"),
            Command::Confirm => "confirm".into(),
            Command::Cancel => "cancel".into(),
        }
    }
}

/// Reads a message body: `None` when it is not a command (no prefix), else the command or what is wrong with it.
pub fn parse(prefix: &str, body: &str) -> Option<Result<Command, String>> {
    let mut words = body.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let verb = words.next().map(str::to_ascii_lowercase);
    let rest: Vec<&str> = words.collect();
    let one = |what: &str| -> Result<String, String> {
        match rest.as_slice() {
            [x] => Ok(x.to_string()),
            _ => Err(format!("`{prefix} {} <{what}>` takes one {what}", verb.as_deref().unwrap_or_default())),
        }
    };
    let none = |c: Command| if rest.is_empty() { Ok(c) } else { Err(format!("`{prefix} {}` takes no arguments", c.describe())) };
    Some(match verb.as_deref() {
        None | Some("help") => none(Command::Help),
        Some("status") => none(Command::Status),
        Some("plan") => none(Command::Plan),
        Some("apply") => none(Command::Apply),
        Some("invite") => none(Command::Invite),
        Some("refresh") => none(Command::Refresh),
        Some("confirm") => none(Command::Confirm),
        Some("cancel") => none(Command::Cancel),
        Some("attendance") => match rest.as_slice() {
            [] => Ok(Command::Attendance(None)),
            [t] => Ok(Command::Attendance(Some(t.to_string()))),
            _ => Err(format!("`{prefix} attendance [track]` takes at most one track")),
        },
        Some("timeline") => match rest.as_slice() {
            [] => Ok(Command::Timeline(TimelineQuery::Next(10))),
            ["next"] => Ok(Command::Timeline(TimelineQuery::Next(10))),
            ["next", n] => n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .map(|n| Command::Timeline(TimelineQuery::Next(n)))
                .ok_or_else(|| format!("`{prefix} timeline next N`: N from 1 to 100")),
            [talk] => Ok(Command::Timeline(TimelineQuery::Talk(talk.to_string()))),
            _ => Err(format!("`{prefix} timeline [next N | talk]`")),
        },
        Some("skip") => one("action id").map(Command::Skip),
        Some("replay") => one("action id").map(Command::Replay),
        Some("rehearse") => match rest.as_slice() {
            [] => Ok(Command::Rehearse(3)),
            [n] => n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=50).contains(n))
                .map(Command::Rehearse)
                .ok_or_else(|| format!("`{prefix} rehearse [N]`: N talks, from 1 to 50")),
            _ => Err(format!("`{prefix} rehearse [N]`")),
        },
        Some(other) => Err(format!("unknown command {other:?}; `{prefix} help` lists them")),
    })
}

/// The `help` text.
pub fn help(prefix: &str) -> String {
    [
        ("help", "this list"),
        ("status", "what the bot is doing: schedule, rooms, next and late actions, missing speakers, Q&A, health"),
        ("plan", "what an apply would change on the server (writes nothing)"),
        ("apply", "bring the rooms to the plan (asks for confirm)"),
        ("invite", "invite the people the schedule names (asks for confirm)"),
        ("attendance [track]", "who has joined their rooms"),
        ("refresh", "re-read the schedule now"),
        ("timeline [next N | talk]", "the next actions, or one talk's"),
        ("skip ID", "do not send an action"),
        ("replay ID", "send an action again (asks for confirm)"),
        ("rehearse [N]", "rehearse the first N talks on a clock of their own (asks for confirm; for test servers)"),
        ("confirm / cancel", "go ahead with, or drop, the command waiting for you"),
    ]
    .iter()
    .map(|(c, what)| format!("{prefix} {c}: {what}"))
    .collect::<Vec<_>>()
    .join("\n")
}

/// Whether `user` may run commands: listed as an organiser, or at `organiser_power` in the management room.
pub fn authorised(user: &str, opts: &OperationsConfig, power: Option<&Power>) -> bool {
    opts.organisers.iter().any(|o| o == user) || opts.organiser_power.zip(power).is_some_and(|(needed, p)| p.of(user) >= needed)
}

/// Commands waiting for `confirm`, one per person.
#[derive(Debug, Default)]
pub struct Pending {
    waiting: HashMap<String, (Command, i64)>,
}

impl Pending {
    /// `user` asked for `command` at `now_ms`; it waits until `now_ms + seconds`. Replaces what the user had waiting.
    pub fn ask(&mut self, user: &str, command: Command, now_ms: i64, seconds: u64) {
        let until = now_ms.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX / 2).saturating_mul(1000));
        self.waiting.insert(user.to_string(), (command, until));
    }

    /// The command `user` confirms at `now_ms`, if one is waiting and not expired (it is taken either way).
    pub fn confirm(&mut self, user: &str, now_ms: i64) -> Option<Command> {
        let (command, until) = self.waiting.remove(user)?;
        (now_ms <= until).then_some(command)
    }

    /// Drops what `user` had waiting; whether there was something.
    pub fn cancel(&mut self, user: &str) -> bool {
        self.waiting.remove(user).is_some()
    }
}

/// A reply to a command as an `m.notice`: a short line replying to it, or (with `details`) the line with the details
/// in a thread under the command.
pub fn reply(command_event: &str, text: &str, in_thread: bool) -> Value {
    let relates = if in_thread {
        json!({"rel_type": "m.thread", "event_id": command_event, "is_falling_back": true, "m.in_reply_to": {"event_id": command_event}})
    } else {
        json!({"m.in_reply_to": {"event_id": command_event}})
    };
    json!({"msgtype": "m.notice", "body": text, "m.relates_to": relates, "m.mentions": {}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_their_arguments_and_mistakes_are_explained() {
        let p = |s: &str| parse("!sh", s);
        assert_eq!(p("hello"), None);
        assert_eq!(p("!shh status"), None);
        assert_eq!(p("!sh"), Some(Ok(Command::Help)));
        assert_eq!(p("!SH Status"), Some(Ok(Command::Status)));
        assert_eq!(p("!sh attendance rust"), Some(Ok(Command::Attendance(Some("rust".into())))));
        assert_eq!(p("!sh timeline next 5"), Some(Ok(Command::Timeline(TimelineQuery::Next(5)))));
        assert_eq!(p("!sh timeline t1"), Some(Ok(Command::Timeline(TimelineQuery::Talk("t1".into())))));
        assert_eq!(p("!sh skip t1|live-soon|2026-03-14T09:55:00Z"), Some(Ok(Command::Skip("t1|live-soon|2026-03-14T09:55:00Z".into()))));
        assert!(p("!sh timeline next 0").unwrap().unwrap_err().contains("1 to 100"));
        assert!(p("!sh skip").unwrap().unwrap_err().contains("takes one action id"));
        assert!(p("!sh apply now").unwrap().unwrap_err().contains("takes no arguments"));
        assert!(p("!sh frobnicate").unwrap().unwrap_err().contains("unknown command"));
        assert!(Command::Apply.writes() && Command::Replay("x".into()).writes() && !Command::Plan.writes() && !Command::Skip("x".into()).writes());
    }

    #[test]
    fn organisers_or_enough_power_and_nobody_else() {
        let opts = OperationsConfig { organisers: vec!["@org:x".into()], organiser_power: Some(100), ..Default::default() };
        let power = Power { ts: 0, users: [("@admin:x".to_string(), 100), ("@mod:x".to_string(), 50)].into(), users_default: 0 };
        assert!(authorised("@org:x", &opts, None));
        assert!(authorised("@admin:x", &opts, Some(&power)));
        assert!(!authorised("@mod:x", &opts, Some(&power)));
        assert!(!authorised("@admin:x", &opts, None), "power unknown: only the list");
        let list_only = OperationsConfig { organiser_power: None, ..opts };
        assert!(!authorised("@admin:x", &list_only, Some(&power)));
    }

    #[test]
    fn a_confirmation_is_the_same_persons_and_expires() {
        let mut p = Pending::default();
        p.ask("@a:x", Command::Apply, 1_000, 120);
        assert_eq!(p.confirm("@b:x", 2_000), None, "someone else cannot confirm");
        assert_eq!(p.confirm("@a:x", 2_000), Some(Command::Apply));
        assert_eq!(p.confirm("@a:x", 2_000), None, "once");
        p.ask("@a:x", Command::Invite, 1_000, 120);
        assert_eq!(p.confirm("@a:x", 1_000 + 121_000), None, "too late");
        p.ask("@a:x", Command::Invite, 1_000, 120);
        assert!(p.cancel("@a:x") && !p.cancel("@a:x"));
    }

    #[test]
    fn long_replies_go_into_a_thread() {
        let r = reply("$cmd", "3 rooms differ", true);
        assert_eq!(r["m.relates_to"]["rel_type"], "m.thread");
        assert_eq!(reply("$cmd", "ok", false)["m.relates_to"]["m.in_reply_to"]["event_id"], "$cmd");
    }
}
