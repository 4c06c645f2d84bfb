//! A schedule that yields no talks never passes silently: a warning when the file holds nothing that looks like a
//! talk (a real export before the programme is out), and an error naming the structure the reader expected and what
//! the file holds instead when it holds talk-like records the reader did not understand (a format we do not know, or
//! a known one nested differently).
//!
//! Pure and linear in the input; only called when the reader found no talks.

use super::{Finding, Format};

/// Where a reader looks for talks, as the organiser would say it.
fn expected(format: Format) -> &'static str {
    match format {
        Format::PentabarfXml => "talks as <event> elements inside <schedule><day><room>",
        Format::FrabJson => "talks under schedule.conference.days[].rooms (frab, pretalx) or in schedule.events (the CCC hub)",
        Format::Yaml => "talks in a top-level talks: list",
    }
}

/// Largest JSON text searched for talk-like records.
const MAX_JSON_LOOK: usize = 16 * 1024 * 1024;

/// Keys that make a JSON object look like a talk: one naming it and one placing it in time.
const TITLE_KEYS: &[&str] = &["title", "name"];
const TIME_KEYS: &[&str] = &["start", "date", "start_time", "starts_at", "schedule_start", "begin", "start_date"];

/// The list of talk-like objects with the most members: (its path, how many).
fn json_records(v: &serde_json::Value, path: &mut Vec<String>, best: &mut Option<(String, usize)>) {
    match v {
        serde_json::Value::Array(items) => {
            let n = items
                .iter()
                .filter(|i| {
                    i.as_object().is_some_and(|o| TITLE_KEYS.iter().any(|k| o.contains_key(*k)) && TIME_KEYS.iter().any(|k| o.contains_key(*k)))
                })
                .count();
            if n > 0 && best.as_ref().is_none_or(|(_, m)| n > *m) {
                *best = Some((if path.is_empty() { "the top-level list".to_string() } else { path.join(".") }, n));
            }
            path.push("[]".to_string());
            for i in items {
                json_records(i, path, best);
            }
            path.pop();
        }
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                path.push(k.clone());
                json_records(child, path, best);
                path.pop();
            }
        }
        _ => {}
    }
}

/// `<event` start tags in an XML text (lexical: the reader found none where it looks).
fn xml_events(text: &str) -> usize {
    text.match_indices("<event").filter(|(i, _)| text[i + 6..].starts_with([' ', '>', '/', '\t', '\n', '\r'])).count()
}

/// Adds the finding for a schedule that yielded no talks.
pub(crate) fn check(file: &str, format: Format, text: &str, findings: &mut Vec<Finding>) {
    let holds = match format {
        Format::FrabJson => {
            let mut best = None;
            // A parsed tree takes several times the text's size: larger files get the warning only.
            if text.len() <= MAX_JSON_LOOK
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(text)
            {
                json_records(&v, &mut Vec::new(), &mut best);
            }
            best.map(|(path, n)| format!("{n} talk-like records (objects with a title and a start) in {path}"))
        }
        Format::PentabarfXml => match xml_events(text) {
            0 => None,
            n => Some(format!("{n} <event> elements, none of them inside <schedule><day><room>")),
        },
        Format::Yaml => None,
    };
    findings.push(match holds {
        Some(holds) => Finding::error(
            file,
            format!(
                "no talks read, but the file holds {holds}; expected {}. This is not a layout Stagehand reads: export \
                 the schedule as Pentabarf XML or frab JSON, or convert it to Stagehand's YAML (schedules/example.yaml)",
                expected(format)
            ),
        ),
        None => Finding::warning(
            file,
            format!(
                "the schedule holds no talks (expected {}); only tracks and rooms will be planned. Check that this is \
                 the export you meant",
                expected(format)
            ),
        ),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{ReadOptions, Severity, read};

    fn no_talk_findings(file: &str, text: &str) -> Vec<Finding> {
        let parsed = read(file, text.as_bytes(), &ReadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(parsed.conference.talks.is_empty());
        parsed.findings.into_iter().filter(|f| f.message.contains("no talks")).collect()
    }

    #[test]
    fn records_the_reader_did_not_understand_are_an_error_that_says_what_it_expected() {
        let json = r#"{"schedule": {"conference": {"title": "X", "days": [{"index": 1, "date": "2026-03-14"}]},
                       "sessions": [{"title": "A", "start": "2026-03-14T10:00:00Z"}, {"title": "B", "start": "2026-03-14T11:00:00Z"}]}}"#;
        let found = no_talk_findings("s.json", json);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].severity, Severity::Error);
        assert!(found[0].message.contains("2 talk-like records") && found[0].message.contains("in schedule.sessions"), "{}", found[0]);
        assert!(found[0].message.contains("schedule.events (the CCC hub)"), "{}", found[0]);

        let xml = "<schedule><conference><title>X</title></conference><events><event id=\"1\"><title>A</title></event></events></schedule>";
        let found = no_talk_findings("s.xml", xml);
        assert_eq!(found[0].severity, Severity::Error);
        assert!(found[0].message.contains("1 <event> elements"), "{}", found[0]);
    }

    #[test]
    fn a_schedule_without_talks_is_a_warning() {
        let found = no_talk_findings("s.yaml", "conference: {title: X, timezone: Europe/Berlin}\ntracks:\n  - {key: a, name: A}\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].severity, Severity::Warning);
        let found = no_talk_findings("s.json", r#"{"schedule": {"conference": {"title": "X", "days": [{"index": 1, "date": "2026-03-14", "rooms": {}}]}}}"#);
        assert_eq!(found[0].severity, Severity::Warning);
    }
}
