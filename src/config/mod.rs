//! Stagehand's configuration: a YAML file with unknown keys refused, one module per section, each owning its
//! defaults and its checks ([`conference`], [`homeserver`], [`schedule`], [`tracks`], [`naming`], [`rooms`],
//! [`people`], [`widgets`], [`timeline`], [`operations`]; `qa` is [`crate::qa::QaOptions`]).
//!
//! [`Config::parse`] is pure and returns warnings as data; [`Config::from_file`] does the I/O. Secrets (tokens,
//! passwords, the widget secret) never live in this file: header values name environment variables as `${NAME}`,
//! and credentials are files or variables read by [`crate::secrets`]. Nothing here reads the environment, a
//! credential or the network.

use std::path::Path;

use chrono_tz::Tz;
use serde::Deserialize;

pub mod conference;
pub mod homeserver;
pub mod naming;
pub mod operations;
pub mod people;
#[cfg(test)]
mod reference;
pub mod rooms;
pub mod schedule;
pub mod timeline;
pub mod tracks;
pub mod widgets;

pub use conference::{ConferenceConfig, is_alias_safe};
pub use homeserver::HomeserverConfig;
pub use naming::NamingConfig;
pub use operations::OperationsConfig;
pub use people::{IdentityServerConfig, PeopleConfig};
pub use rooms::{ParentLinks, RoomsConfig, SupportRoom};
pub use schedule::{ScheduleConfig, expand_env};
pub use timeline::TimelineConfig;
pub use tracks::{TrackRule, TrackRules};
pub use widgets::WidgetsConfig;
/// The naming template engine lives in [`crate::plan::naming`]; this path is kept for callers that used it here.
pub use crate::plan::naming::render;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read the config: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{file}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid { file: String, line: Option<usize>, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub conference: ConferenceConfig,
    pub homeserver: HomeserverConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    #[serde(default)]
    pub tracks: TrackRules,
    #[serde(default)]
    pub naming: NamingConfig,
    #[serde(default)]
    pub rooms: RoomsConfig,
    #[serde(default)]
    pub people: PeopleConfig,
    #[serde(default)]
    pub widgets: WidgetsConfig,
    #[serde(default)]
    pub timeline: TimelineConfig,
    /// Questions and upvotes (owned by [`crate::qa`]).
    #[serde(default)]
    pub qa: crate::qa::QaOptions,
    #[serde(default)]
    pub operations: OperationsConfig,
}

impl Config {
    /// Parses and checks a config. Returns the config and warnings.
    pub fn parse(file: &str, text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        let config: Config = yaml_serde::from_str(text).map_err(|e| ConfigError::Invalid {
            file: file.to_string(),
            line: e.location().map(|l| l.line()),
            message: e.to_string(),
        })?;
        let invalid = |message: String| ConfigError::Invalid { file: file.to_string(), line: None, message };
        config.conference.check().map_err(invalid)?;
        config.homeserver.check().map_err(invalid)?;
        tracks::check(&config.tracks).map_err(invalid)?;
        config.naming.check().map_err(invalid)?;
        config.people.check().map_err(invalid)?;
        config.rooms.check().map_err(invalid)?;
        config.timeline.check().map_err(invalid)?;
        config.qa.check().map_err(invalid)?;
        config.operations.check().map_err(invalid)?;
        let warnings = config.schedule.warnings();
        Ok((config, warnings))
    }

    pub fn from_file(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { file: file.clone(), source })?;
        Config::parse(&file, &text)
    }

    pub fn timezone(&self) -> Option<Tz> {
        self.conference.tz()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::model::TrackKind;

    const MINIMAL: &str = "conference: {id: democon}\nhomeserver: {server_name: example.org}\n";

    fn refused(extra: &str) -> String {
        Config::parse("c.yaml", &format!("{MINIMAL}{extra}")).unwrap_err().to_string()
    }

    #[test]
    fn minimal_config_takes_fosdem_defaults() {
        let (c, w) = Config::parse("c.yaml", MINIMAL).unwrap();
        assert!(w.is_empty());
        assert_eq!(c.naming.track_alias, "{conference}-{track}");
        assert_eq!(c.tracks.classify("x", "X", Some("devroom"), None), TrackKind::Devroom);
        assert_eq!(c.tracks.classify("x", "X", Some("Talk"), None), TrackKind::Other);
        assert!(c.rooms.talk_rooms);
        assert_eq!(c.widgets.secret_path(), Path::new(".stagehand/widget-secret"));
    }

    #[test]
    fn unknown_key_is_an_error_with_its_line() {
        let msg = refused("naming:\n  talk_alais: x\n");
        assert!(msg.contains("talk_alais") && msg.contains("c.yaml:4"), "{msg}");
    }

    #[test]
    fn template_variables_are_checked() {
        let msg = refused("naming:\n  talk_alias: \"{conference}-{tlak}\"\n");
        assert!(msg.starts_with("c.yaml: naming.talk_alias: unknown variable {tlak} in"), "{msg}");
    }

    #[test]
    fn rules_match_in_order() {
        let yaml = format!(
            "{MINIMAL}tracks:\n  default_kind: devroom\n  rules:\n    - {{kind: stand, room_prefix: \"S.\"}}\n    - {{kind: main_track, name_prefix: keynote}}\n"
        );
        let (c, _) = Config::parse("c.yaml", &yaml).unwrap();
        assert_eq!(c.tracks.classify("a", "Anything", None, Some("S.1")), TrackKind::Stand);
        assert_eq!(c.tracks.classify("k", "Keynotes", None, Some("Janson")), TrackKind::MainTrack);
        assert_eq!(c.tracks.classify("r", "Rust", None, Some("H.1")), TrackKind::Devroom);
    }

    #[test]
    fn each_section_checks_its_own() {
        assert!(refused("tracks:\n  rules:\n    - {kind: stand}\n").contains("tracks.rules[0] has no condition"));
        assert!(refused("people: {host_power: 100}\n").contains("people.host_power must be between 0 and 99"));
        assert!(refused("rooms:\n  support: [{key: a, name: A}, {key: a, name: B}]\n").contains("key \"a\" is used twice"));
        assert!(refused("naming: {backstage_alias: \"{conference}-{track}\"}\n").contains("must differ"));
        let bad_version = "conference: {id: x}\nhomeserver: {server_name: e.org, room_version: \"9\"}";
        assert!(Config::parse("c", bad_version).unwrap_err().to_string().contains("room versions 10, 11 and 12"));
    }

    #[test]
    fn a_literal_token_in_headers_is_a_warning() {
        let (_, w) = Config::parse("c.yaml", &format!("{MINIMAL}schedule:\n  headers: {{Authorization: Token abc}}\n")).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
    }

    #[test]
    fn bad_timezone_and_bad_id_are_refused() {
        assert!(Config::parse("c", "conference: {id: x, timezone: Europe/Bruxelles}\nhomeserver: {server_name: e.org}").is_err());
        assert!(Config::parse("c", "conference: {id: Big Conf}\nhomeserver: {server_name: e.org}").is_err());
    }
}
