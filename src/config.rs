//! Stagehand's configuration: a YAML file with unknown keys refused.
//!
//! [`Config::parse`] is pure and returns warnings as data; [`Config::from_file`] does the I/O. Secrets (API tokens
//! for a schedule URL) never live in this file: header values name environment variables as `${NAME}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;

use crate::schedule::model::TrackKind;

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
    pub naming: Naming,
    #[serde(default)]
    pub rooms: RoomKinds,
    #[serde(default)]
    pub people: PeopleConfig,
    #[serde(default)]
    pub widgets: WidgetsConfig,
}

/// Widgets: Jitsi in talk rooms and backstages, Q&A and countdown beside it, schedule and livestream in track rooms.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WidgetsConfig {
    pub enabled: bool,
    /// Jitsi server of the calls.
    pub jitsi_domain: String,
    /// `openidtoken-jwt` when the Jitsi server checks Matrix OpenID tokens.
    pub jitsi_auth: Option<String>,
    /// Element instance whose Jitsi wrapper page the widget URL names (Element renders Jitsi natively anyway).
    pub element_url: String,
    /// Base URL of Stagehand's web server (Q&A, countdown, schedule and livestream pages).
    pub web_url: String,
    /// HLS URL of a track's livestream, with `{track}` and `{conference}`; no livestream widget without it.
    pub livestream_url: Option<String>,
    /// Let moderators (power 50) add, change and remove widgets; by default only the bot (100) may.
    pub moderators_can_edit: bool,
    /// File with the secret that Jitsi conference ids and backstage page tokens derive from (created with a random
    /// secret if missing; STAGEHAND_WIDGET_SECRET overrides it).
    pub secret_file: Option<PathBuf>,
}

impl Default for WidgetsConfig {
    fn default() -> Self {
        WidgetsConfig {
            enabled: true,
            jitsi_domain: "meet.jit.si".into(),
            jitsi_auth: None,
            element_url: "https://app.element.io".into(),
            web_url: "http://127.0.0.1:8080".into(),
            livestream_url: None,
            moderators_can_edit: false,
            secret_file: None,
        }
    }
}

/// Invites and power by role.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PeopleConfig {
    /// Power of a speaker in their own talk room (50: moderator).
    pub speaker_power: i64,
    /// Power of a host where they host.
    pub host_power: i64,
    /// Power of a track's coordinators in its backstage and talk rooms.
    pub coordinator_power: i64,
    /// Kick people who joined a room the schedule no longer puts them in (default: only lower their power).
    pub kick_removed: bool,
    /// Key of the support room every speaker is invited to (`rooms.support`), if any.
    pub lounge: Option<String>,
    /// Send invites as part of `apply` (off: build the rooms now, invite later with `stagehand invite`).
    pub invite: bool,
    /// Identity server for e-mail invites to people without a Matrix ID; without one they are reported as
    /// uncontactable.
    pub identity_server: Option<IdentityServerConfig>,
}

/// The identity server that e-mail invites go through (the homeserver's third-party invite flow).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdentityServerConfig {
    /// Host (and port) as the homeserver should reach it, `https://` implied: `vector.im`.
    pub server: String,
    /// Where Stagehand itself reaches it, if not `https://<server>` (a local identity server behind a proxy).
    pub url: Option<String>,
    /// Accept the identity server's terms of service on the bot's behalf (read them first; Stagehand lists them
    /// and stops when they are not accepted).
    #[serde(default)]
    pub accept_terms: bool,
}

impl Default for PeopleConfig {
    fn default() -> Self {
        PeopleConfig { speaker_power: 50, host_power: 50, coordinator_power: 50, kick_removed: false, lounge: Some("speakers".into()), invite: true, identity_server: None }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConferenceConfig {
    /// Short id used in aliases and locators (`fosdem-2026`).
    pub id: String,
    /// Display title; defaults to the schedule's.
    pub title: Option<String>,
    /// IANA timezone for schedules that carry none (FOSDEM before 2024).
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeserverConfig {
    /// The server name in user IDs and aliases (`fosdem.org`).
    pub server_name: String,
    /// Client-server API base URL (`https://matrix.fosdem.org`).
    pub url: Option<String>,
    /// Room version for new rooms ("12" is Synapse's default; "11" works too).
    #[serde(default = "default_room_version")]
    pub room_version: String,
    /// Requests in flight at once while building.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// File holding the bot's access token (or set STAGEHAND_ACCESS_TOKEN).
    pub access_token_file: Option<PathBuf>,
    /// Application service registration file: the bot acts with its `as_token` (how FOSDEM runs it).
    pub appservice_registration: Option<PathBuf>,
    /// Where a password login keeps its session (default `.stagehand/session.json`).
    pub session_file: Option<PathBuf>,
    /// Localpart of the bot user (default `stagehand`), used when generating an appservice registration.
    pub bot_localpart: Option<String>,
}

fn default_room_version() -> String {
    "12".to_string()
}

fn default_concurrency() -> usize {
    4
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// File path or http(s) URL of the schedule.
    pub source: Option<String>,
    /// A people file adding Matrix IDs, e-mails and roles.
    pub people: Option<PathBuf>,
    /// Request headers for a schedule URL; `${NAME}` in a value is read from the environment.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Where the last good copy of a fetched schedule is kept.
    pub cache_dir: Option<PathBuf>,
    /// A people-file entry with no key and no known e-mail matches a schedule person by display name only, with a
    /// warning naming both; `true` refuses such a match (an error) instead.
    #[serde(default)]
    pub refuse_name_only_matches: bool,
}

fn default_timeout() -> u64 {
    30
}

fn default_max_bytes() -> usize {
    64 * 1024 * 1024
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            source: None,
            people: None,
            headers: BTreeMap::new(),
            timeout_seconds: default_timeout(),
            max_bytes: default_max_bytes(),
            cache_dir: None,
            refuse_name_only_matches: false,
        }
    }
}

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

    fn check(&self) -> Result<(), String> {
        for (i, r) in self.rules.iter().enumerate() {
            if r.event_type.is_none() && r.room_prefix.is_none() && r.name_prefix.is_none() && r.key.is_none() {
                return Err(format!(
                    "tracks.rules[{i}] has no condition (type, room_prefix, name_prefix or key); it would match \
                     every track. Use tracks.default_kind for that"
                ));
            }
        }
        Ok(())
    }
}

/// Alias localpart and name templates. Variables: `{conference}`, `{kind}`, `{track}`, `{talk}`; names also
/// `{conference_title}`, `{track_name}`, `{talk_title}`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Naming {
    pub root_alias: String,
    pub subspace_alias: String,
    pub track_alias: String,
    pub backstage_alias: String,
    pub talk_alias: String,
    pub stand_alias: String,
    pub root_name: String,
    pub track_name: String,
    pub backstage_name: String,
    pub talk_name: String,
}

impl Default for Naming {
    fn default() -> Self {
        Naming {
            root_alias: "{conference}".into(),
            subspace_alias: "{conference}-{kind}".into(),
            track_alias: "{conference}-{track}".into(),
            backstage_alias: "{conference}-{track}-backstage".into(),
            talk_alias: "{conference}-talk-{talk}".into(),
            stand_alias: "{conference}-stand-{track}".into(),
            root_name: "{conference_title}".into(),
            track_name: "{track_name}".into(),
            backstage_name: "{track_name} (backstage)".into(),
            talk_name: "{talk_title}".into(),
        }
    }
}

const TEMPLATE_VARS: [&str; 7] =
    ["conference", "kind", "track", "talk", "conference_title", "track_name", "talk_title"];

/// Fills `{name}` placeholders; unknown names were refused when the config was parsed.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match vars.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn check_template(field: &str, template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("naming.{field}: an unclosed '{{' in {template:?}"));
        };
        let name = &after[..close];
        if !TEMPLATE_VARS.contains(&name) {
            return Err(format!(
                "naming.{field}: unknown variable {{{name}}} in {template:?}; known: {}",
                TEMPLATE_VARS.map(|v| format!("{{{v}}}")).join(" ")
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Which objects to create. The FOSDEM 2022 shape is the default.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RoomKinds {
    pub subspaces: bool,
    pub track_rooms: bool,
    pub backstages: bool,
    pub talk_rooms: bool,
    /// Stand tracks get a stand room (alias from `naming.stand_alias`) in place of a track room.
    pub stands: bool,
    /// Support rooms (speakers' lounge, info desk), each a child of the root space.
    pub support: Vec<SupportRoom>,
}

impl Default for RoomKinds {
    fn default() -> Self {
        RoomKinds {
            subspaces: true,
            track_rooms: true,
            backstages: true,
            talk_rooms: true,
            stands: true,
            support: vec![
                SupportRoom { key: "speakers".into(), name: "Speakers' lounge".into(), topic: None, public: false },
                SupportRoom { key: "info".into(), name: "Info desk".into(), topic: None, public: true },
            ],
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SupportRoom {
    pub key: String,
    pub name: String,
    pub topic: Option<String>,
    #[serde(default)]
    pub public: bool,
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
        let mut warnings = Vec::new();
        if !is_alias_safe(&config.conference.id) {
            return Err(invalid(format!(
                "conference.id {:?} must be lower-case letters, digits, '-', '_' or '.' (it goes into room aliases)",
                config.conference.id
            )));
        }
        if let Some(tz) = &config.conference.timezone
            && tz.parse::<Tz>().is_err()
        {
            return Err(invalid(format!("conference.timezone {tz:?} is not an IANA timezone (e.g. Europe/Brussels)")));
        }
        if config.homeserver.server_name.trim().is_empty() || config.homeserver.server_name.contains('/') {
            return Err(invalid(format!(
                "homeserver.server_name {:?} must be a server name such as example.org (no scheme, no path)",
                config.homeserver.server_name
            )));
        }
        if let Some(url) = &config.homeserver.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid(format!("homeserver.url {url:?} needs a scheme (https://...)")));
        }
        config.tracks.check().map_err(invalid)?;
        if !["10", "11", "12"].contains(&config.homeserver.room_version.as_str()) {
            return Err(invalid(format!(
                "homeserver.room_version {:?}: Stagehand builds on room versions 10, 11 and 12",
                config.homeserver.room_version
            )));
        }
        if config.homeserver.concurrency == 0 || config.homeserver.concurrency > 64 {
            return Err(invalid("homeserver.concurrency must be between 1 and 64".into()));
        }
        let n = &config.naming;
        for (field, t) in [
            ("root_alias", &n.root_alias),
            ("subspace_alias", &n.subspace_alias),
            ("track_alias", &n.track_alias),
            ("backstage_alias", &n.backstage_alias),
            ("talk_alias", &n.talk_alias),
            ("stand_alias", &n.stand_alias),
            ("root_name", &n.root_name),
            ("track_name", &n.track_name),
            ("backstage_name", &n.backstage_name),
            ("talk_name", &n.talk_name),
        ] {
            check_template(field, t).map_err(invalid)?;
        }
        if !n.talk_alias.contains("{talk}") {
            return Err(invalid("naming.talk_alias must contain {talk}, or every talk would share one alias".into()));
        }
        for (field, t) in [("track_alias", &n.track_alias), ("backstage_alias", &n.backstage_alias)] {
            if !t.contains("{track}") {
                return Err(invalid(format!("naming.{field} must contain {{track}}")));
            }
        }
        if n.track_alias == n.backstage_alias {
            return Err(invalid("naming.track_alias and naming.backstage_alias must differ".into()));
        }
        for (name, _) in &config.schedule.headers {
            if name.to_ascii_lowercase().contains("authorization") && !config.schedule.headers[name].contains("${") {
                warnings.push(format!(
                    "schedule.headers.{name} holds a literal secret; write \"Token ${{PRETALX_TOKEN}}\" and set the \
                     variable in the environment instead"
                ));
            }
        }
        for (field, p) in [
            ("speaker_power", config.people.speaker_power),
            ("host_power", config.people.host_power),
            ("coordinator_power", config.people.coordinator_power),
        ] {
            if !(0..100).contains(&p) {
                return Err(invalid(format!("people.{field} must be between 0 and 99 (100 is the bot's)")));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for s in &config.rooms.support {
            if !seen.insert(&s.key) {
                return Err(invalid(format!("rooms.support: key {:?} is used twice", s.key)));
            }
        }
        Ok((config, warnings))
    }

    pub fn from_file(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { file: file.clone(), source })?;
        Config::parse(&file, &text)
    }

    pub fn timezone(&self) -> Option<Tz> {
        self.conference.timezone.as_deref().and_then(|t| t.parse().ok())
    }
}

/// Characters we allow in alias localparts we generate.
pub fn is_alias_safe(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Expands `${NAME}` from the environment; a missing variable is an error naming it.
pub fn expand_env(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unclosed ${{ in {value:?}"));
        };
        let name = &after[..end];
        match lookup(name) {
            Some(v) => out.push_str(&v),
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "conference: {id: democon}\nhomeserver: {server_name: example.org}\n";

    #[test]
    fn minimal_config_takes_fosdem_defaults() {
        let (c, w) = Config::parse("c.yaml", MINIMAL).unwrap();
        assert!(w.is_empty());
        assert_eq!(c.naming.track_alias, "{conference}-{track}");
        assert_eq!(c.tracks.classify("x", "X", Some("devroom"), None), TrackKind::Devroom);
        assert_eq!(c.tracks.classify("x", "X", Some("Talk"), None), TrackKind::Other);
        assert!(c.rooms.talk_rooms);
    }

    #[test]
    fn unknown_key_is_an_error_with_its_line() {
        let err = Config::parse("c.yaml", &format!("{MINIMAL}naming:\n  talk_alais: x\n")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("talk_alais") && msg.contains("c.yaml:4"), "{msg}");
    }

    #[test]
    fn template_variables_are_checked() {
        let err = Config::parse("c.yaml", &format!("{MINIMAL}naming:\n  talk_alias: \"{{conference}}-{{tlak}}\"\n"))
            .unwrap_err();
        assert!(err.to_string().contains("{tlak}"), "{err}");
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
    fn bad_timezone_and_bad_id_are_refused() {
        assert!(Config::parse("c", "conference: {id: x, timezone: Europe/Bruxelles}\nhomeserver: {server_name: e.org}").is_err());
        assert!(Config::parse("c", "conference: {id: Big Conf}\nhomeserver: {server_name: e.org}").is_err());
    }

    #[test]
    fn env_expansion() {
        let env = |k: &str| (k == "TOKEN").then(|| "s3cret".to_string());
        assert_eq!(expand_env("Token ${TOKEN}", env).unwrap(), "Token s3cret");
        assert!(expand_env("${MISSING}", env).unwrap_err().contains("MISSING"));
    }

    #[test]
    fn render_fills_known_and_keeps_unknown() {
        assert_eq!(render("{conference}-{track}", &[("conference", "c"), ("track", "rust")]), "c-rust");
        assert_eq!(render("a{b", &[]), "a{b");
    }
}
