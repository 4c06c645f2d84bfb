//! A status as plain text: [`text`] is a few lines for a reply in the management room (live, next, missing,
//! trouble, the rest in one line), [`details`] everything for the reply's thread or a terminal. Times in the
//! conference's timezone. Pure. The text carries titles and names from the schedule as they are: whoever puts it
//! into HTML escapes it.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{ActionLine, Status};

/// How many items one line of [`text`] names before "and N more".
const IN_A_LINE: usize = 3;

fn tz(s: &Status) -> Tz {
    s.timezone.parse().unwrap_or(Tz::UTC)
}

pub(crate) fn hm(s: &Status, t: DateTime<Utc>) -> String {
    t.with_timezone(&tz(s)).format("%H:%M").to_string()
}

pub(crate) fn hms(s: &Status, t: DateTime<Utc>) -> String {
    t.with_timezone(&tz(s)).format("%H:%M:%S").to_string()
}

/// `a; b; c and 2 more`.
fn some(items: Vec<String>, total: usize) -> String {
    let mut out = items.into_iter().take(IN_A_LINE).collect::<Vec<_>>().join("; ");
    if total > IN_A_LINE {
        let _ = write!(out, " and {} more", total - IN_A_LINE);
    }
    out
}

fn action(s: &Status, a: &ActionLine) -> String {
    let what = if a.title.is_empty() { a.talk.as_str() } else { a.title.as_str() };
    format!("{} {} {what}", hm(s, a.at), a.kind)
}

pub(crate) fn presence(p: &str) -> &str {
    match p {
        "invited" => "invited, not joined",
        "email_invited" => "invited by e-mail",
        "declined" => "left or declined",
        "not_invited" => "not invited",
        "email_only" => "e-mail only, not invited",
        "uncontactable" => "no Matrix ID or e-mail",
        other => other,
    }
}

/// What is wrong, in one line; empty when nothing is.
pub fn trouble(s: &Status) -> String {
    let mut parts = Vec::new();
    if s.actions.failed_count > 0 {
        parts.push(format!("{} failed", s.actions.failed_count));
    }
    if s.actions.late_count > 0 {
        parts.push(format!("{} late", s.actions.late_count));
    }
    match (s.homeserver.reachable, s.homeserver.last_error) {
        (Some(false), Some(t)) => parts.push(format!("homeserver not answering since {}", hms(s, t))),
        (Some(false), None) => parts.push("homeserver not reachable".to_string()),
        _ => {}
    }
    if let Some(r) = s.runner.as_ref().filter(|r| !r.ok()) {
        parts.push(if r.runner.alive { format!("runner {} s behind", r.behind_ms / 1000) } else { "runner stopped".to_string() });
    }
    if let Some(i) = s.intake.as_ref().filter(|i| !i.ok()) {
        parts.push(if i.alive { format!("intake failing ({} in a row)", i.failures) } else { "intake stopped".to_string() });
    }
    parts.join(", ")
}

/// The status in a few lines.
pub fn text(s: &Status) -> String {
    let mut out = String::new();
    let rehearsal = if s.rehearsal { " (rehearsal)" } else { "" };
    let _ = writeln!(out, "{} at {} {}{rehearsal}", s.title, hm(s, s.now), s.timezone);

    let live: Vec<String> = s
        .live
        .iter()
        .map(|l| match l.questions {
            Some(q) => format!("{}: {} ({q} questions)", l.track_name, l.title),
            None => format!("{}: {}", l.track_name, l.title),
        })
        .collect();
    let n = live.len();
    let _ = writeln!(out, "Live: {}", if live.is_empty() { "nothing".to_string() } else { some(live, n) });

    let next: Vec<String> = s.actions.next.iter().map(|a| action(s, a)).collect();
    let n = next.len();
    let _ = writeln!(out, "Next: {}", if next.is_empty() { "no more actions".to_string() } else { some(next, n) });

    let missing = match &s.attendance {
        None => "not checked yet".to_string(),
        Some(a) => {
            let people: Vec<String> = a
                .missing
                .iter()
                .flat_map(|t| t.people.iter().map(move |p| format!("{} ({}, {}, {})", p.name, t.title, hm(s, t.start), presence(&p.presence))))
                .collect();
            let n = people.len();
            match (people.is_empty(), a.unchecked) {
                (true, 0) => "nobody".to_string(),
                (true, u) => format!("nobody so far ({u} talk rooms not checked yet)"),
                (false, _) => some(people, n),
            }
        }
    };
    let _ = writeln!(out, "Missing in the next hour: {missing}");

    let trouble = trouble(s);
    let _ = writeln!(out, "Trouble: {}", if trouble.is_empty() { "none" } else { &trouble });

    let mut rest = Vec::new();
    let planned: usize = s.rooms.kinds.iter().map(|k| k.planned).sum();
    match s.rooms.kinds.iter().map(|k| k.existing).sum::<Option<usize>>() {
        Some(existing) => rest.push(format!("rooms {existing}/{planned}")),
        None => rest.push(format!("rooms {planned} planned")),
    }
    if let Some(i) = s.attendance.as_ref().and_then(|a| a.invites.as_ref()) {
        rest.push(format!("invites outstanding: {}", i.invited));
    }
    let refreshed = s.schedule.refreshed_at.map(|t| format!(", refreshed {}", hm(s, t))).unwrap_or_default();
    rest.push(format!("schedule read {}{refreshed}", hm(s, s.schedule.read_at)));
    if let Some(q) = &s.qa {
        rest.push(format!("Q&A {} boards, {} questions, {} votes", q.boards, q.questions, q.votes));
    }
    let _ = writeln!(out, "{}", capitalise(&rest.join(" · ")));
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// Everything, section by section.
pub fn details(s: &Status) -> String {
    let mut out = String::new();
    let w = &mut out;
    let when = |t: Option<DateTime<Utc>>| t.map_or_else(|| "never".to_string(), |t| hms(s, t));

    let _ = writeln!(w, "Schedule: {} ({} talks), read {}, refreshed {}, next re-read {}", s.schedule.source, s.schedule.talks,
        hms(s, s.schedule.read_at), when(s.schedule.refreshed_at), when(s.schedule.next_refresh));

    let kinds: Vec<String> = s
        .rooms
        .kinds
        .iter()
        .map(|k| match k.existing {
            Some(e) => format!("{} {e}/{}", k.kind, k.planned),
            None => format!("{} {}", k.kind, k.planned),
        })
        .collect();
    let as_of = s.rooms.observed_at.map_or_else(|| " (not looked up yet)".to_string(), |t| format!(" (existing/planned, as of {})", hms(s, t)));
    let _ = writeln!(w, "Rooms{as_of}: {}", kinds.join(", "));

    let _ = writeln!(w, "\nLive now:");
    if s.live.is_empty() {
        let _ = writeln!(w, "  nothing");
    }
    for l in &s.live {
        let board = l.questions.map(|q| format!(", {q} questions, {} votes", l.votes.unwrap_or(0))).unwrap_or_default();
        let _ = writeln!(w, "  {}: {} ({}–{}{board})", l.track_name, l.title, hm(s, l.start), hm(s, l.end));
    }

    let _ = writeln!(w, "\nNext actions ({} in the timeline, {} sent):", s.actions.total, s.actions.sent);
    if s.actions.next.is_empty() {
        let _ = writeln!(w, "  none");
    }
    for a in &s.actions.next {
        let _ = writeln!(w, "  {} in {}", action(s, a), a.room);
    }
    if s.actions.late_count > 0 {
        let _ = writeln!(w, "\nLate ({}, latest first):", s.actions.late_count);
        for a in &s.actions.late {
            let _ = writeln!(w, "  {} in {}: {}", action(s, a), a.room, a.state);
        }
    }
    if !s.actions.failed.is_empty() {
        let _ = writeln!(w, "\nFailed ({}) and skipped ({}), latest first:", s.actions.failed_count, s.actions.skipped_count);
        for a in &s.actions.failed {
            let _ = writeln!(w, "  {} in {}: {}: {}", action(s, a), a.room, a.state, a.detail.as_deref().unwrap_or("no reason recorded"));
        }
    }

    match &s.attendance {
        None => {
            let _ = writeln!(w, "\nMissing in the next hour: not checked yet");
        }
        Some(a) => {
            let _ = writeln!(w, "\nMissing in the next hour (as of {}):", hms(s, a.observed_at));
            if a.missing.is_empty() {
                let _ = writeln!(w, "  nobody");
            }
            for t in &a.missing {
                let live = if t.live { ", live now" } else { "" };
                let _ = writeln!(w, "  {} {} ({}{live}):", hm(s, t.start), t.title, t.track_name);
                for p in &t.people {
                    let ids = if p.user_ids.is_empty() { String::new() } else { format!(" {}", p.user_ids.join(" ")) };
                    let _ = writeln!(w, "    {} ({}){ids}: {}", p.name, p.role, presence(&p.presence));
                }
            }
            if a.unchecked > 0 {
                let _ = writeln!(w, "  {} talk rooms not checked yet", a.unchecked);
            }
            if let Some(i) = &a.invites {
                let _ = writeln!(w, "Invites to talk rooms and backstages: {} people-rooms, {} joined, {} invited and not joined, {} left or declined, {} not invited, {} unreachable",
                    i.total, i.joined, i.invited, i.declined, i.not_invited, i.uncontactable);
            }
        }
    }

    let _ = writeln!(w);
    if let Some(q) = &s.qa {
        let _ = writeln!(w, "Q&A: {} boards with questions, {} questions, {} votes", q.boards, q.questions, q.votes);
    }
    let h = &s.homeserver;
    let reach = match h.reachable {
        Some(true) => "answering",
        Some(false) => "NOT answering",
        None => "not asked yet",
    };
    let error = h.error.as_deref().map(|e| format!("; last error: {e}")).unwrap_or_default();
    let _ = writeln!(w, "Homeserver: {reach} (last answer {}, last failure {}){error}", when(h.last_ok), when(h.last_error));
    match &s.runner {
        Some(health) => {
            let r = &health.runner;
            let state = if health.ok() { "alive" } else if r.alive { "BEHIND" } else { "STOPPED" };
            let _ = writeln!(w, "Runner: {state}, {} sent, {} skipped, {} failed, {} in flight, last lateness {} ms (most {} ms)",
                r.sent, r.skipped, r.failed, r.in_flight, r.lateness_ms, r.max_lateness_ms);
        }
        None => {
            let _ = writeln!(w, "Runner: not running here");
        }
    }
    match &s.intake {
        Some(i) => {
            let state = if i.ok() { "alive" } else if i.alive { "FAILING" } else { "STOPPED" };
            let error = i.last_error.as_deref().filter(|_| i.failures > 0).map(|e| format!("; {e}")).unwrap_or_default();
            let _ = writeln!(w, "Intake ({}): {state}, last taken in {}, {} events{error}", i.mode, when(i.last_ok), i.delivered);
        }
        None => {
            let _ = writeln!(w, "Intake: not running here");
        }
    }
    if !s.problems.is_empty() {
        let _ = writeln!(w, "\nRecent problems (oldest first):");
        for p in &s.problems {
            let times = if p.count > 1 { format!(" (×{})", p.count) } else { String::new() };
            let fields = if p.fields.is_empty() { String::new() } else { format!(" [{}]", p.fields) };
            let _ = writeln!(w, "  {} {} {}{fields}{times}", hms(s, p.at), p.level, p.message);
        }
    }
    out
}
