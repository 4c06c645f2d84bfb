//! Semantic checks on an assembled conference: overlaps in one room, talks outside every day, zero or negative
//! durations, malformed Matrix IDs and e-mail addresses, markup in titles, Q&A starts outside their talk.

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDate, Timelike};
use chrono_tz::Tz;

use super::Finding;
use super::model::Conference;

/// Checks a conference; the readers and the assembly already reported what they saw.
pub fn check(file: &str, conf: &Conference) -> Vec<Finding> {
    let mut out = Vec::new();
    let days = DaySpans::new(conf);
    for t in &conf.talks {
        let d = t.end - t.start;
        if d < Duration::zero() {
            out.push(Finding::error(file, "the talk ends before it starts (negative duration)").at(t.line).talk(&t.key));
        } else if d == Duration::zero() {
            out.push(Finding::warning(file, "the talk has zero duration").at(t.line).talk(&t.key));
        } else if d > Duration::hours(12) {
            out.push(
                Finding::warning(file, format!("the talk lasts {} hours; is the duration right?", d.num_hours()))
                    .at(t.line)
                    .talk(&t.key),
            );
        }
        if !conf.days.is_empty() && !days.hold(t) {
            out.push(
                Finding::warning(
                    file,
                    format!("the talk starts at {} and lies outside every conference day", t.start.to_rfc3339()),
                )
                .at(t.line)
                .talk(&t.key),
            );
        }
        if let Some(qa) = t.qa_start
            && (qa < t.start || qa > t.end)
        {
            out.push(Finding::warning(file, "the Q&A start lies outside the talk").at(t.line).talk(&t.key));
        }
        if looks_like_markup(&t.title) {
            out.push(
                Finding::warning(file, "the title contains markup; it will be shown as plain text").at(t.line).talk(&t.key),
            );
        }
    }

    // Overlaps in one room.
    let mut by_room: Vec<&super::model::Talk> = conf.talks.iter().filter(|t| t.room.is_some()).collect();
    by_room.sort_by(|a, b| (&a.room, a.start, &a.key).cmp(&(&b.room, b.start, &b.key)));
    for pair in by_room.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.room == b.room && b.start < a.end && a.end > a.start && b.end > b.start {
            out.push(
                Finding::warning(
                    file,
                    format!(
                        "overlaps talk {} in room {} ({} to {})",
                        a.key,
                        a.room.as_deref().and_then(|r| conf.venue(r)).map_or("?", |v| v.name.as_str()),
                        a.start.format("%a %H:%M"),
                        a.end.format("%H:%M")
                    ),
                )
                .at(b.line)
                .talk(&b.key),
            );
        }
    }

    for p in &conf.people {
        for m in &p.matrix_ids {
            if let Err(why) = check_matrix_id(m) {
                out.push(Finding::error(file, format!("person {} ({}): Matrix ID {m:?} {why}", p.key, p.name)));
            }
        }
        for e in &p.emails {
            if !is_email(e) {
                out.push(Finding::error(
                    file,
                    format!("person {} ({}): {e:?} is not an e-mail address", p.key, p.name),
                ));
            }
        }
    }
    out
}

/// The conference days as the "outside every day" check needs them, built once (a scan of every day per talk was
/// quadratic in a file listing tens of thousands of days).
struct DaySpans {
    /// Days with a start and an end, sorted by start, each with the latest end among it and the days before it.
    spans: Vec<(DateTime<Tz>, DateTime<Tz>)>,
    /// Dates of days without a start and end.
    dates: HashSet<NaiveDate>,
}

impl DaySpans {
    fn new(conf: &Conference) -> DaySpans {
        let mut spans: Vec<(DateTime<Tz>, DateTime<Tz>)> = conf.days.iter().filter_map(|d| Some((d.start?, d.end?))).collect();
        spans.sort_by_key(|&(s, _)| s);
        let mut latest: Option<DateTime<Tz>> = None;
        for span in &mut spans {
            let end = latest.map_or(span.1, |l| l.max(span.1));
            latest = Some(end);
            span.1 = end;
        }
        let dates = conf.days.iter().filter(|d| d.start.is_none() || d.end.is_none()).map(|d| d.date).collect();
        DaySpans { spans, dates }
    }

    /// Within a day's start and end (both included), or on a day without them (until 06:00 the next morning).
    fn hold(&self, t: &super::model::Talk) -> bool {
        let before = self.spans.partition_point(|&(s, _)| s <= t.start);
        if before > 0 && t.start <= self.spans[before - 1].1 {
            return true;
        }
        let local = t.start.naive_local();
        self.dates.contains(&local.date()) || (local.hour() < 6 && local.date().pred_opt().is_some_and(|d| self.dates.contains(&d)))
    }
}

fn looks_like_markup(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(2).any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'))
}

/// Checks a user ID against the Matrix grammar: `@localpart:server.name[:port]`.
pub fn check_matrix_id(id: &str) -> Result<(), &'static str> {
    let Some(rest) = id.strip_prefix('@') else {
        return Err("must start with '@' (e.g. @alice:example.org)");
    };
    let Some((local, server)) = rest.split_once(':') else {
        return Err("has no server part (e.g. @alice:example.org)");
    };
    if local.is_empty() {
        return Err("has an empty localpart");
    }
    if !local.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._=-/+".contains(c)) {
        return Err("has characters a localpart may not hold (lower-case a-z, 0-9 and ._=-/+ only)");
    }
    if id.len() > 255 {
        return Err("is longer than 255 bytes");
    }
    if !is_server_name(server) {
        return Err("has a malformed server name");
    }
    Ok(())
}

fn is_server_name(s: &str) -> bool {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, rest)) => {
                if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.') {
                    return false;
                }
                ("v6", rest.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    let host_ok = host == "v6"
        || (!host.is_empty()
            && host.len() <= 255
            && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            && !host.starts_with('.')
            && !host.ends_with('.'));
    port_ok && host_ok
}

/// A pragmatic e-mail check: one `@`, a local part, a domain, no white space or markup.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"".contains(c))
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{ReadOptions, Severity, read};

    /// Reads and validates a schedule; every finding, reader's and checks' alike.
    fn findings(file: &str, text: &str) -> Vec<Finding> {
        let mut parsed = read(file, text.as_bytes(), &ReadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        parsed.validate(file);
        parsed.findings
    }

    /// The one finding about `talk` whose message contains `needle`.
    fn the<'a>(all: &'a [Finding], talk: Option<&str>, needle: &str) -> &'a Finding {
        let found: Vec<&Finding> = all.iter().filter(|f| f.talk.as_deref() == talk && f.message.contains(needle)).collect();
        assert_eq!(found.len(), 1, "{needle:?} in {all:#?}");
        found[0]
    }

    const HEAD: &str = "conference: {title: T, timezone: Europe/Brussels}\ntracks:\n  - {key: rust, name: Rust}\npeople:\n  - {key: ann, name: Ann, email: ann@example.org}\ntalks:\n";

    const ONE_TALK: &str = "  - {key: t, title: T, track: rust, room: A, start: \"2026-03-14 10:00\", duration: 30, speakers: [ann]}\n";

    fn yaml(talks: &str) -> String {
        format!("{HEAD}{talks}")
    }

    #[test]
    fn a_talk_outside_every_day_is_named_with_its_line() {
        let xml = "<schedule><day index=\"1\" date=\"2026-03-14\" start=\"2026-03-14T09:00:00+01:00\" end=\"2026-03-14T18:00:00+01:00\">\n<room name=\"A\">\n\
                   <event guid=\"in\"><date>2026-03-14T10:00:00+01:00</date><start>10:00</start><duration>0:30</duration><title>In</title></event>\n\
                   <event guid=\"out\"><date>2026-03-20T10:00:00+01:00</date><start>10:00</start><duration>0:30</duration><title>Out</title></event>\n\
                   </room></day></schedule>";
        let all = findings("s.xml", xml);
        let f = the(&all, Some("out"), "outside every conference day");
        assert_eq!((f.talk.as_deref(), f.line, f.severity), (Some("out"), Some(4), Severity::Warning));
    }

    #[test]
    fn zero_and_negative_durations() {
        let all = findings(
            "s.yaml",
            &yaml(concat!(
                "  - {key: zero, title: Z, track: rust, room: A, start: \"2026-03-14 10:00\", duration: 0}\n",
                "  - {key: back, title: B, track: rust, room: B, start: \"2026-03-14 10:00\", end: \"2026-03-14 09:00\"}\n",
                "  - {key: minus, title: M, track: rust, room: C, start: \"2026-03-14 10:00\", duration: -5}\n",
            )),
        );
        let zero = the(&all, Some("zero"), "zero duration");
        assert_eq!((zero.talk.as_deref(), zero.line, zero.severity), (Some("zero"), Some(7), Severity::Warning));
        let back = the(&all, Some("back"), "ends before it starts");
        assert_eq!((back.talk.as_deref(), back.line, back.severity), (Some("back"), Some(8), Severity::Error));
        let minus = the(&all, Some("minus"), "duration -5 minutes is negative");
        assert_eq!((minus.talk.as_deref(), minus.line, minus.severity), (Some("minus"), Some(9), Severity::Error));
    }

    #[test]
    fn a_malformed_email_names_the_person() {
        let text = yaml(ONE_TALK).replace("ann@example.org", "ann at example.org");
        let all = findings("s.yaml", &text);
        let f = the(&all, None, "is not an e-mail address");
        assert!(f.message.contains("person ann (Ann)") && f.message.contains("\"ann at example.org\""), "{f}");
        assert_eq!(f.severity, Severity::Error);
    }

    #[test]
    fn an_unknown_yaml_track_is_an_error_at_the_talk() {
        let all = findings(
            "s.yaml",
            &yaml(concat!(
                "  - key: t1\n    title: Fine\n    track: rust\n    room: A\n    start: \"2026-03-14 10:00\"\n    duration: 30\n",
                "  - key: t2\n    title: Lost\n    track: go\n    room: A\n    start: \"2026-03-14 11:00\"\n    duration: 30\n",
            )),
        );
        let f = the(&all, Some("t2"), "unknown track \"go\"");
        assert_eq!((f.talk.as_deref(), f.line, f.severity), (Some("t2"), Some(13), Severity::Error));
        assert!(f.message.contains("declare it under tracks:"), "{f}");
    }

    #[test]
    fn an_invalid_day_change_is_an_error_with_its_line() {
        let text = yaml(ONE_TALK).replace("timezone: Europe/Brussels}", "timezone: Europe/Brussels,\n  day_change: \"25:00\"}");
        let all = findings("s.yaml", &text);
        let f = the(&all, None, "day_change");
        assert_eq!((f.line, f.severity), (Some(2), Severity::Error));
        assert!(f.message.contains("\"25:00\"") && f.message.contains("HH:MM"), "{f}");
    }


    #[test]
    fn matrix_ids() {
        assert!(check_matrix_id("@alice:example.org").is_ok());
        assert!(check_matrix_id("@a.b_c=d-e/f+g:matrix.example.org:8448").is_ok());
        assert!(check_matrix_id("@bob:[::1]:8008").is_ok());
        assert!(check_matrix_id("alice:example.org").is_err());
        assert!(check_matrix_id("@alice").is_err());
        assert!(check_matrix_id("@Alice:example.org").is_err());
        assert!(check_matrix_id("@:example.org").is_err());
        assert!(check_matrix_id("@a:exa mple.org").is_err());
        assert!(check_matrix_id("@a:example.org:port").is_err());
    }

    #[test]
    fn emails() {
        assert!(is_email("niamh@localhost"));
        assert!(is_email("a.b+c@example.org"));
        assert!(!is_email("a@@b"));
        assert!(!is_email("no at sign"));
        assert!(!is_email("<a@b.c>"));
        assert!(!is_email("@example.org"));
    }

    #[test]
    fn markup() {
        assert!(looks_like_markup("Hello <script>alert(1)</script>"));
        assert!(!looks_like_markup("a < b and c > d"));
    }
}
