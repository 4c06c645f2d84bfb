//! The track classifier: sorts tracks into kinds (main track, devroom, stand, other) by rules the organiser writes in
//! the config's `tracks` section. Pure; applied while a schedule is assembled ([`super::assemble`]).
//!
//! Owns the rules' shape and their FOSDEM defaults. Must not import the config: the config imports this module and
//! checks the rules there.

use serde::Deserialize;

use super::model::TrackKind;

/// How tracks are sorted into kinds (main track, devroom, stand, other). The first matching rule wins.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrackRules {
    #[serde(default = "default_rules")]
    pub rules: Vec<TrackRule>,
    #[serde(default = "default_kind")]
    pub default_kind: TrackKind,
}

fn default_kind() -> TrackKind {
    TrackKind::Other
}

/// One classification rule: every condition given must hold.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrackRule {
    pub kind: TrackKind,
    /// The event type most talks of the track carry (`maintrack`, `devroom`, `stand`), case-insensitive.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// Prefix of the room most talks of the track are in (`D.`, `S.`).
    pub room_prefix: Option<String>,
    /// Prefix of the track name, case-insensitive.
    pub name_prefix: Option<String>,
    /// Exact track key.
    pub key: Option<String>,
}

impl TrackRule {
    /// Whether the rule has no condition at all (it would match every track).
    pub fn is_unconditional(&self) -> bool {
        self.event_type.is_none() && self.room_prefix.is_none() && self.name_prefix.is_none() && self.key.is_none()
    }
}

fn rule(kind: TrackKind, event_type: &str) -> TrackRule {
    TrackRule { kind, event_type: Some(event_type.into()), room_prefix: None, name_prefix: None, key: None }
}

/// The FOSDEM shape: event types as Pentabarf and pretalx export them.
fn default_rules() -> Vec<TrackRule> {
    vec![
        rule(TrackKind::MainTrack, "maintrack"),
        rule(TrackKind::MainTrack, "keynote"),
        rule(TrackKind::MainTrack, "lightningtalk"),
        rule(TrackKind::Devroom, "devroom"),
        rule(TrackKind::Stand, "stand"),
        rule(TrackKind::Stand, "standtrack"),
    ]
}

impl Default for TrackRules {
    fn default() -> Self {
        TrackRules { rules: default_rules(), default_kind: default_kind() }
    }
}

impl TrackRules {
    pub fn classify(&self, key: &str, name: &str, event_type: Option<&str>, room: Option<&str>) -> TrackKind {
        let lower_name = name.to_lowercase();
        for r in &self.rules {
            let ok = r.event_type.as_ref().is_none_or(|t| event_type.is_some_and(|e| e.eq_ignore_ascii_case(t)))
                && r.room_prefix.as_ref().is_none_or(|p| room.is_some_and(|room| room.starts_with(p.as_str())))
                && r.name_prefix.as_ref().is_none_or(|p| lower_name.starts_with(&p.to_lowercase()))
                && r.key.as_ref().is_none_or(|k| k == key);
            if ok {
                return r.kind;
            }
        }
        self.default_kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_take_fosdem_event_types() {
        let rules = TrackRules::default();
        assert_eq!(rules.classify("x", "X", Some("devroom"), None), TrackKind::Devroom);
        assert_eq!(rules.classify("x", "X", Some("MainTrack"), None), TrackKind::MainTrack);
        assert_eq!(rules.classify("x", "X", Some("Talk"), None), TrackKind::Other);
    }

    #[test]
    fn rules_match_in_order() {
        let stand = TrackRule { kind: TrackKind::Stand, event_type: None, room_prefix: Some("S.".into()), name_prefix: None, key: None };
        let keynote = TrackRule { kind: TrackKind::MainTrack, name_prefix: Some("keynote".into()), room_prefix: None, ..stand.clone() };
        let rules = TrackRules { rules: vec![stand, keynote], default_kind: TrackKind::Devroom };
        assert_eq!(rules.classify("a", "Anything", None, Some("S.1")), TrackKind::Stand);
        assert_eq!(rules.classify("k", "Keynotes", None, Some("Janson")), TrackKind::MainTrack);
        assert_eq!(rules.classify("r", "Rust", None, Some("H.1")), TrackKind::Devroom);
    }
}
