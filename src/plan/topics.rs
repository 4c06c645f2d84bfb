//! Room topics: what a room is for, when and where its talks are, and how to ask questions. Plain text; clients
//! escape it.

use std::collections::HashMap;

use chrono::DateTime;
use chrono_tz::Tz;

use super::{ObjectKind, PlannedRoom};
use crate::config::Config;
use crate::schedule::model::{Conference, Role, Talk};

fn span(start: DateTime<Tz>, end: DateTime<Tz>) -> String {
    if start.date_naive() == end.date_naive() {
        format!("{}–{} ({})", start.format("%a %-d %b %H:%M"), end.format("%H:%M"), start.timezone().name())
    } else {
        format!("{} – {} ({})", start.format("%a %-d %b %H:%M"), end.format("%a %-d %b %H:%M"), start.timezone().name())
    }
}

fn venue(conf: &Conference, t: &Talk) -> String {
    t.room.as_deref().and_then(|r| conf.venue(r)).map_or_else(String::new, |v| format!(" in {}", v.name))
}

fn plural(n: usize, one: &str) -> String {
    format!("{n} {one}{}", if n == 1 { "" } else { "s" })
}

pub(super) fn topic(room: &PlannedRoom, conf: &Conference, config: &Config, track_alias: &HashMap<String, String>) -> String {
    let title = config.conference.title.clone().unwrap_or_else(|| conf.title.clone());
    let track = room.track.as_deref().and_then(|k| conf.track(k));
    let talks: Vec<&Talk> = room.track.as_deref().map(|k| conf.talks_of(k).collect()).unwrap_or_default();
    let when = || {
        let first = talks.iter().map(|t| t.start).min()?;
        let last = talks.iter().map(|t| t.end).max()?;
        Some(span(first, last))
    };
    match room.kind {
        ObjectKind::RootSpace => {
            let days = match (conf.days.first(), conf.days.last()) {
                (Some(a), Some(b)) if a.date != b.date => format!(", {} – {}", a.date.format("%-d %b"), b.date.format("%-d %b %Y")),
                (Some(a), _) => format!(", {}", a.date.format("%-d %b %Y")),
                _ => String::new(),
            };
            format!(
                "{title}: {}, {}{days}. Join a track's room to follow its talks and ask questions.",
                plural(conf.tracks.len(), "track"),
                plural(conf.talks.len(), "talk")
            )
        }
        ObjectKind::Subspace => format!("{} of {title}.", room.name.split(" (").next().unwrap_or(&room.name)),
        ObjectKind::TrackRoom => {
            let name = track.map_or(room.name.as_str(), |t| t.name.as_str());
            format!(
                "{name}: {}{}. During a talk, ask your questions here and upvote the ones you like with 👍.",
                plural(talks.len(), "talk"),
                when().map(|w| format!(", {w}")).unwrap_or_default()
            )
        }
        ObjectKind::Stand => {
            let name = track.map_or(room.name.as_str(), |t| t.name.as_str());
            format!("{name}: the stand's room{}. Come and talk to the people behind it.", when().map(|w| format!(", {w}")).unwrap_or_default())
        }
        ObjectKind::Backstage => {
            let name = track.map_or(room.name.as_str(), |t| t.name.as_str());
            format!("Backstage of {name}: for its coordinators, hosts and speakers. Not public.")
        }
        ObjectKind::TalkRoom => {
            let Some(t) = room.talk.as_deref().and_then(|k| conf.talks.iter().find(|t| t.key == k)) else {
                return room.name.clone();
            };
            let speakers: Vec<&str> =
                t.people_with(Role::Speaker).filter_map(|p| conf.person(p)).map(|p| p.name.as_str()).collect();
            let by = if speakers.is_empty() { String::new() } else { format!(" · {}", speakers.join(", ")) };
            let ask = t
                .track
                .as_deref()
                .and_then(|k| track_alias.get(k))
                .map(|a| format!(" · Watch and ask questions in {a}"))
                .unwrap_or_default();
            format!("{}{by} · {}{}{ask}", t.title, span(t.start, t.end), venue(conf, t))
        }
        ObjectKind::Management => format!(
            "Stagehand's management room for {title}: `{} help` lists the commands. Only organisers may run them.",
            config.operations.prefix
        ),
        ObjectKind::Support => config
            .rooms
            .support
            .iter()
            .find(|s| room.key == format!("support/{}", s.key))
            .and_then(|s| s.topic.clone())
            .unwrap_or_else(|| format!("{} of {title}.", room.name)),
    }
}
