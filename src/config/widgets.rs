//! `widgets`: Jitsi, Q&A, countdown, schedule and livestream widgets, where their pages are served, who may edit
//! them, and where the widget secret is kept (the file is read and created by [`crate::secrets`]). Owns the defaults.

use std::path::PathBuf;

use serde::Deserialize;

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

impl WidgetsConfig {
    /// Where the widget secret is kept: `secret_file`, default `.stagehand/widget-secret`.
    pub fn secret_path(&self) -> PathBuf {
        self.secret_file.clone().unwrap_or_else(|| PathBuf::from(".stagehand/widget-secret"))
    }
}
