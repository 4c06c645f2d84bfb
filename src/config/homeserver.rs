//! `homeserver`: the server name, its URL, the room version and concurrency of a build, and where credentials are
//! (files named here; the secrets themselves are read by [`crate::secrets`], never from the config). Owns their
//! defaults and checks.

use std::path::PathBuf;

use serde::Deserialize;

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

/// Room versions Stagehand builds on.
const ROOM_VERSIONS: [&str; 3] = ["10", "11", "12"];

impl HomeserverConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        if self.server_name.trim().is_empty() || self.server_name.contains('/') {
            return Err(format!(
                "homeserver.server_name {:?} must be a server name such as example.org (no scheme, no path)",
                self.server_name
            ));
        }
        if let Some(url) = &self.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!("homeserver.url {url:?} needs a scheme (https://...)"));
        }
        if !ROOM_VERSIONS.contains(&self.room_version.as_str()) {
            return Err(format!(
                "homeserver.room_version {:?}: Stagehand builds on room versions 10, 11 and 12",
                self.room_version
            ));
        }
        if self.concurrency == 0 || self.concurrency > 64 {
            return Err("homeserver.concurrency must be between 1 and 64".into());
        }
        Ok(())
    }

    /// Where a password login keeps its session: `session_file`, default `.stagehand/session.json`.
    pub fn session_path(&self) -> PathBuf {
        self.session_file.clone().unwrap_or_else(|| PathBuf::from(".stagehand/session.json"))
    }

    /// The bot's localpart in a generated appservice registration.
    pub fn bot_localpart(&self) -> &str {
        self.bot_localpart.as_deref().unwrap_or("stagehand")
    }
}
