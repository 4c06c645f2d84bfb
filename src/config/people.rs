//! `people`: invites and power by role, removal policy, the speakers' lounge and the identity server for e-mail
//! invites. Owns their defaults and the check that nobody gets the bot's power.

use serde::Deserialize;

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

impl PeopleConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        for (field, p) in
            [("speaker_power", self.speaker_power), ("host_power", self.host_power), ("coordinator_power", self.coordinator_power)]
        {
            if !(0..100).contains(&p) {
                return Err(format!("people.{field} must be between 0 and 99 (100 is the bot's)"));
            }
        }
        Ok(())
    }
}
