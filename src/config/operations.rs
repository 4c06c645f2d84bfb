//! `operations`: running the event from a Matrix room and a browser: the management room, who may command the bot
//! there, how long a write waits for `confirm`, where the organisers' token for the `/status` page is kept (the
//! token itself is read by [`crate::secrets`]), and how often problems may be posted. Owns the defaults and checks.

use std::path::PathBuf;

use serde::Deserialize;

/// Operating the event.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OperationsConfig {
    /// The management room, a private room the reconcile creates and keeps (`#{conference}-{management_room}`, for
    /// example `management`); empty (the default): no management room.
    pub management_room: String,
    /// What a command starts with (`!sh status`).
    pub prefix: String,
    /// Matrix IDs allowed to run commands (they are invited to the management room at power 50).
    pub organisers: Vec<String>,
    /// Anyone at this power or more in the management room may run commands too (none: only `organisers`).
    pub organiser_power: Option<i64>,
    /// Seconds a command that writes (`apply`, `invite`, `replay`) waits for `confirm` from the same user.
    pub confirm_seconds: u64,
    /// File with the organisers' token for `/status` (or set STAGEHAND_ORGANISER_TOKEN); no token: no `/status`.
    pub organiser_token_file: Option<PathBuf>,
    /// Problems of one kind are posted to the management room at most once per this many seconds (the rest are
    /// counted into the next post).
    pub problem_interval_seconds: u64,
}

impl Default for OperationsConfig {
    fn default() -> Self {
        OperationsConfig {
            management_room: String::new(),
            prefix: "!sh".into(),
            organisers: Vec::new(),
            organiser_power: Some(100),
            confirm_seconds: 120,
            organiser_token_file: None,
            problem_interval_seconds: 300,
        }
    }
}

impl OperationsConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        if !self.management_room.is_empty() && !super::is_alias_safe(&self.management_room) {
            return Err(format!(
                "operations.management_room {:?}: use letters, digits, '-', '_' and '.' (it becomes part of the room's alias)",
                self.management_room
            ));
        }
        if self.prefix.trim().is_empty() || self.prefix.contains(char::is_whitespace) {
            return Err(format!("operations.prefix {:?} must be one word, such as !sh", self.prefix));
        }
        if let Some(bad) = self.organisers.iter().find(|u| !(u.starts_with('@') && u.contains(':'))) {
            return Err(format!("operations.organisers: {bad:?} is not a Matrix ID (@user:server)"));
        }
        if !(10..=3600).contains(&self.confirm_seconds) {
            return Err("operations.confirm_seconds must be between 10 and 3600".into());
        }
        if self.problem_interval_seconds > 24 * 3600 {
            return Err("operations.problem_interval_seconds must be at most 86400".into());
        }
        Ok(())
    }

    /// Whether there is a management room.
    pub fn has_management_room(&self) -> bool {
        !self.management_room.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_mistakes_are_named() {
        assert!(OperationsConfig::default().check().is_ok());
        let bad = |c: OperationsConfig| c.check().unwrap_err();
        assert!(bad(OperationsConfig { organisers: vec!["alice".into()], ..Default::default() }).contains("\"alice\""));
        assert!(bad(OperationsConfig { prefix: "! sh".into(), ..Default::default() }).contains("operations.prefix"));
        assert!(bad(OperationsConfig { management_room: "a b".into(), ..Default::default() }).contains("management_room"));
        assert!(bad(OperationsConfig { confirm_seconds: 1, ..Default::default() }).contains("confirm_seconds"));
    }
}
