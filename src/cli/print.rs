//! Printers: the human, JSON and CSV forms of what the commands produce. Pure: each takes a finished result and
//! returns text (or a JSON value); the commands decide where it goes. Nothing here loads, decides or sends.

use std::fmt::Write;

use serde_json::{Value, json};
use stagehand::load::LoadError;
use stagehand::matrix::attendance::{self, Presence, Row, Summary};
use stagehand::matrix::reconcile::{MemberAction, Report, Status};
use stagehand::schedule::Parsed;
use stagehand::schedule::diff::{self, Change};

/// One line per error and warning, errors first.
pub fn findings(parsed: &Parsed) -> String {
    parsed.errors().chain(parsed.warnings()).map(|f| format!("{f}\n")).collect()
}

/// `validate --json`: one object with the format, counts, errors and warnings (a schedule that could not be read
/// is one error and zero counts).
pub fn validate_json(result: &Result<Parsed, LoadError>) -> Value {
    match result {
        Ok(p) => json!({
            "format": p.format.name(),
            "days": p.conference.days.len(),
            "rooms": p.conference.rooms.len(),
            "tracks": p.conference.tracks.len(),
            "talks": p.conference.talks.len(),
            "people": p.conference.people.len(),
            "errors": p.errors().collect::<Vec<_>>(),
            "warnings": p.warnings().collect::<Vec<_>>(),
        }),
        Err(e) => json!({
            "format": null, "days": 0, "rooms": 0, "tracks": 0, "talks": 0, "people": 0,
            "errors": [e.to_finding()], "warnings": [],
        }),
    }
}

/// `validate`: the one-line summary of a schedule that was read.
pub fn validate_summary(source: &str, p: &Parsed) -> String {
    let c = &p.conference;
    format!(
        "{}: {} ({}), {} days, {} rooms, {} tracks, {} talks, {} people: {} errors, {} warnings\n",
        source,
        c.title,
        p.format.name(),
        c.days.len(),
        c.rooms.len(),
        c.tracks.len(),
        c.talks.len(),
        c.people.len(),
        p.errors().count(),
        p.warnings().count()
    )
}

/// `apply`, `invite`, `plan --homeserver`: each object that changed, each membership action, then the summary.
pub fn report(report: &Report, dry_run: bool) -> String {
    let mut out = String::new();
    for o in &report.objects {
        let id = o.room_id.as_deref().unwrap_or("-");
        match &o.status {
            Status::Unchanged => {}
            Status::Create => line(&mut out, format_args!("{:<10} {} {}", if dry_run { "create" } else { "created" }, o.key, o.alias)),
            Status::Update { changes } => {
                line(&mut out, format_args!("{:<10} {} {} {id}", if dry_run { "update" } else { "updated" }, o.key, o.alias));
                for c in changes {
                    let from = c.from.as_ref().map_or("(none)".to_string(), |v| v.to_string());
                    line(&mut out, format_args!("           {} [{}]: {from} -> {}", c.event_type, c.state_key, c.to));
                }
            }
            Status::Cancelled => line(&mut out, format_args!("{:<10} {} {id}", "cancelled", o.key)),
            Status::Foreign { reason } => line(&mut out, format_args!("{:<10} {} {reason}", "foreign", o.key)),
            Status::Failed { error } => line(&mut out, format_args!("{:<10} {} {error}", "FAILED", o.key)),
        }
    }
    for m in &report.memberships {
        let action = if dry_run && m.action != MemberAction::Declined { format!("{} (dry run)", m.action.label()) } else { m.action.label().to_string() };
        let error = m.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default();
        line(&mut out, format_args!("{action:<10} {} {}{error}", m.user_id, m.room));
    }
    line(&mut out, format_args!("{}{}", if dry_run { "dry run: " } else { "" }, report.summary()));
    out
}

fn line(out: &mut String, args: std::fmt::Arguments) {
    // Writing to a String cannot fail.
    let _ = out.write_fmt(args);
    out.push('\n');
}

/// `attendance`: a line per room with who is missing, a line per track, one for all.
pub fn attendance(rows: &[Row]) -> String {
    let mut out = String::new();
    for s in attendance::summarise(rows, |r| r.room.as_str()) {
        let missing: Vec<String> = rows
            .iter()
            .filter(|r| r.room == s.group && r.presence != Presence::Joined)
            .map(|r| format!("{} ({})", r.name, r.presence.label()))
            .collect();
        let missing = if missing.is_empty() { String::new() } else { format!(": missing {}", missing.join(", ")) };
        line(&mut out, format_args!("{:<50} {}{missing}", s.group, summary_counts(&s)));
    }
    for s in attendance::summarise(rows, |r| r.track.as_str()) {
        line(&mut out, format_args!("track {:<44} {}", s.group, summary_counts(&s)));
    }
    if let Some(s) = attendance::summarise(rows, |_| "all").first() {
        line(&mut out, format_args!("all: {}", summary_counts(s)));
    }
    out
}

fn summary_counts(s: &Summary) -> String {
    format!(
        "{}/{} joined ({:.0}%), {} invited, {} e-mail invited, {} declined, {} not invited, {} uncontactable",
        s.joined,
        s.total,
        s.percent(s.joined),
        s.invited,
        s.email_invited,
        s.declined,
        s.not_invited,
        s.uncontactable
    )
}

/// `diff`: a line per change, then the talk counts and a summary by kind.
pub fn diff(changes: &[Change], old_talks: usize, new_talks: usize) -> String {
    let mut out = String::new();
    for c in changes {
        let arrow = match (&c.from, &c.to) {
            (Some(f), Some(t)) => format!(": {f} -> {t}"),
            (Some(f), None) => format!(": was {f}"),
            (None, Some(t)) => format!(": {t}"),
            (None, None) => String::new(),
        };
        line(&mut out, format_args!("{:<13} {} {:?}{arrow}", c.kind.label(), c.talk, c.title));
    }
    let summary: Vec<String> = diff::summary(changes).iter().map(|(k, n)| format!("{n} {}", k.label())).collect();
    let summary = if summary.is_empty() { "no changes".to_string() } else { summary.join(", ") };
    line(&mut out, format_args!("{old_talks} talks -> {new_talks} talks: {summary}"));
    out
}

/// Pretty JSON for `--json` outputs that are one serialised value.
pub fn json_pretty(value: &impl serde::Serialize) -> anyhow::Result<String> {
    Ok(format!("{}\n", serde_json::to_string_pretty(value)?))
}

#[cfg(test)]
mod tests {
    use stagehand::matrix::reconcile::{FieldChange, ObjectReport};
    use stagehand::schedule::diff::ChangeKind;

    use super::*;

    #[test]
    fn diff_lists_each_change_then_the_counts() {
        let change = |kind, talk: &str, from: Option<&str>, to: Option<&str>| Change {
            talk: talk.into(),
            kind,
            title: "T".into(),
            from: from.map(Into::into),
            to: to.map(Into::into),
        };
        let changes = [change(ChangeKind::Retimed, "a", Some("10:00"), Some("10:30")), change(ChangeKind::Removed, "b", Some("R"), None)];
        assert_eq!(
            diff(&changes, 2, 1),
            "retimed       a \"T\": 10:00 -> 10:30\nremoved       b \"T\": was R\n2 talks -> 1 talks: 1 retimed, 1 removed\n"
        );
        assert_eq!(diff(&[], 3, 3), "3 talks -> 3 talks: no changes\n");
    }

    #[test]
    fn report_says_what_a_dry_run_would_do() {
        let object = |key: &str, status| ObjectReport { key: key.into(), alias: format!("#{key}:e.org"), room_id: Some("!r:e.org".into()), status };
        let report = Report {
            objects: vec![
                object("new", Status::Create),
                object("same", Status::Unchanged),
                object(
                    "old",
                    Status::Update { changes: vec![FieldChange { event_type: "m.room.name".into(), state_key: String::new(), from: None, to: json!("N") }] },
                ),
            ],
            ..Report::default()
        };
        let text = super::report(&report, true);
        assert!(text.starts_with("create     new #new:e.org\nupdate     old #old:e.org !r:e.org\n           m.room.name []: (none) -> \"N\"\ndry run: "), "{text}");
    }
}
