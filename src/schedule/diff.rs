//! Schedule diff: what changed between two versions of a schedule, talk by talk, keyed by stable identity.
//! This is what re-planning rests on.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::model::{Conference, Role, Talk};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    Moved,
    Retimed,
    Retracked,
    Retitled,
    Respeakered,
}

impl ChangeKind {
    pub fn label(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Moved => "moved",
            ChangeKind::Retimed => "retimed",
            ChangeKind::Retracked => "retracked",
            ChangeKind::Retitled => "retitled",
            ChangeKind::Respeakered => "re-speakered",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub talk: String,
    pub kind: ChangeKind,
    pub title: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The changes from `old` to `new`, sorted by kind, then talk key.
pub fn diff(old: &Conference, new: &Conference) -> Vec<Change> {
    let old_by: HashMap<&str, &Talk> = old.talks.iter().map(|t| (t.key.as_str(), t)).collect();
    let new_by: HashMap<&str, &Talk> = new.talks.iter().map(|t| (t.key.as_str(), t)).collect();
    let mut out = Vec::new();
    let change = |t: &Talk, kind, from: Option<String>, to: Option<String>| Change {
        talk: t.key.clone(),
        kind,
        title: t.title.clone(),
        from,
        to,
    };
    for t in &new.talks {
        let Some(o) = old_by.get(t.key.as_str()) else {
            out.push(change(t, ChangeKind::Added, None, Some(when_where(new, t))));
            continue;
        };
        if o.room != t.room {
            out.push(change(t, ChangeKind::Moved, Some(when_where(old, o)), Some(when_where(new, t))));
        } else if o.start != t.start || o.end != t.end {
            out.push(change(t, ChangeKind::Retimed, Some(when_where(old, o)), Some(when_where(new, t))));
        }
        if o.track != t.track {
            out.push(change(t, ChangeKind::Retracked, track_name(old, o), track_name(new, t)));
        }
        if o.title != t.title {
            out.push(change(t, ChangeKind::Retitled, Some(o.title.clone()), Some(t.title.clone())));
        }
        let (os, ns) = (speakers(old, o), speakers(new, t));
        if os != ns {
            out.push(change(
                t,
                ChangeKind::Respeakered,
                Some(os.into_iter().collect::<Vec<_>>().join(", ")),
                Some(ns.into_iter().collect::<Vec<_>>().join(", ")),
            ));
        }
    }
    for o in &old.talks {
        if !new_by.contains_key(o.key.as_str()) {
            out.push(change(o, ChangeKind::Removed, Some(when_where(old, o)), None));
        }
    }
    out.sort_by(|a, b| (a.kind, &a.talk).cmp(&(b.kind, &b.talk)));
    out
}

fn when_where(conf: &Conference, t: &Talk) -> String {
    let room = t.room.as_deref().and_then(|r| conf.venue(r)).map_or("no room", |v| v.name.as_str());
    format!("{} {}-{} in {room}", t.start.format("%a %Y-%m-%d"), t.start.format("%H:%M"), t.end.format("%H:%M"))
}

fn track_name(conf: &Conference, t: &Talk) -> Option<String> {
    t.track.as_deref().map(|k| conf.track(k).map_or(k.to_string(), |tr| tr.name.clone()))
}

fn speakers(conf: &Conference, t: &Talk) -> BTreeSet<String> {
    t.people
        .iter()
        .filter(|p| p.role == Role::Speaker)
        .map(|p| conf.person(&p.person).map_or(p.person.clone(), |x| x.name.clone()))
        .collect()
}

/// Counts per kind, for summaries.
pub fn summary(changes: &[Change]) -> Vec<(ChangeKind, usize)> {
    let mut counts: Vec<(ChangeKind, usize)> = Vec::new();
    for c in changes {
        match counts.iter_mut().find(|(k, _)| *k == c.kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((c.kind, 1)),
        }
    }
    counts
}
