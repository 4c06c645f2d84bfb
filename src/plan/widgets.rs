//! Widgets and their layout, as state events: Jitsi (Element-native), Q&A and countdown in talk rooms and
//! backstages; the schedule's now/next and the livestream in track rooms. Pure.
//!
//! Widget ids are derived from the conference, the room's key and the widget's kind, never from content that
//! changes, so a changed widget is updated in place. Jitsi conference ids and the tokens of backstage pages are
//! derived from a secret: stable across runs, not guessable from the schedule.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::state::StateItem;
use super::{ObjectKind, PlannedRoom};
use crate::config::WidgetsConfig;

pub const WIDGET: &str = "im.vector.modular.widgets";
pub const LAYOUT: &str = "io.element.widgets.layout";
/// Prefix of every widget id Stagehand makes; widgets without it are never touched.
pub const ID_PREFIX: &str = "stagehand-";

/// What widget content depends on besides the room. Its `Debug` leaves the secret out.
#[derive(Clone)]
pub struct WidgetContext {
    pub conference: String,
    pub bot: String,
    pub config: WidgetsConfig,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for WidgetContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WidgetContext").field("conference", &self.conference).field("bot", &self.bot).finish_non_exhaustive()
    }
}

fn mac_hex(secret: &[u8], parts: &[&str]) -> String {
    // HMAC accepts keys of any length, so this cannot fail; an empty MAC would only weaken, never break, ids.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return String::new() };
    for p in parts {
        mac.update(p.as_bytes());
        mac.update(&[0]);
    }
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Stable widget id: kind plus a hash of conference and room key (FNV-1a, stable across Rust versions).
pub fn widget_id(conference: &str, room_key: &str, kind: &str) -> String {
    let h = crate::schedule::model::stable_hash(conference.bytes().chain([0]).chain(room_key.bytes()));
    format!("{ID_PREFIX}{kind}-{h:016x}")
}

/// Token that a backstage page's URL carries; the web server checks it.
pub fn room_token(ctx: &WidgetContext, room_key: &str) -> String {
    mac_hex(&ctx.secret, &["page", &ctx.conference, room_key])[..32].to_string()
}

/// Jitsi conference id: letters only (Jitsi room names are case-folded), 128 bits from the secret.
pub fn jitsi_conference_id(ctx: &WidgetContext, room_key: &str) -> String {
    let hex = mac_hex(&ctx.secret, &["jitsi", &ctx.conference, room_key]);
    let letters: String = hex.bytes().take(32).map(|b| (b'a' + (if b.is_ascii_digit() { b - b'0' } else { b - b'a' + 10 })) as char).collect();
    format!("stagehand{letters}")
}

/// Percent-encodes a URL path segment or query value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn widget(ctx: &WidgetContext, room: &PlannedRoom, kind: &str, wtype: &str, name: &str, url: String, data: Value) -> StateItem {
    let id = widget_id(&ctx.conference, &room.key, kind);
    StateItem::new(
        WIDGET,
        &id,
        json!({
            "type": wtype,
            "url": url,
            "name": name,
            "data": data,
            "id": id,
            "creatorUserId": ctx.bot,
            "waitForIframeLoad": wtype != "jitsi",
        }),
    )
}

fn slot(container: &str, index: u32, width: u32, height: u32) -> Value {
    json!({"container": container, "index": index, "width": width, "height": height})
}

/// The widgets of a room and, when it has any, its layout (last).
pub fn widgets(room: &PlannedRoom, ctx: &WidgetContext) -> Vec<StateItem> {
    if !ctx.config.enabled {
        return Vec::new();
    }
    let web = ctx.config.web_url.trim_end_matches('/');
    let conf = enc(&ctx.conference);
    let key = enc(&room.key);
    let mut items = Vec::new();
    let mut layout = serde_json::Map::new();
    match room.kind {
        ObjectKind::TalkRoom | ObjectKind::Backstage => {
            let token = room_token(ctx, &room.key);
            let mut data = json!({
                "domain": ctx.config.jitsi_domain,
                "conferenceId": jitsi_conference_id(ctx, &room.key),
                "isAudioOnly": false,
                "roomName": room.name,
            });
            if let (Some(auth), Some(d)) = (&ctx.config.jitsi_auth, data.as_object_mut()) {
                d.insert("auth".into(), json!(auth));
            }
            let jitsi_url = format!(
                "{}/jitsi.html#conferenceDomain=$domain&conferenceId=$conferenceId&isAudioOnly=$isAudioOnly\
                 &displayName=$matrix_display_name&avatarUrl=$matrix_avatar_url&userId=$matrix_user_id\
                 &roomId=$matrix_room_id&theme=$theme&roomName=$roomName",
                ctx.config.element_url.trim_end_matches('/')
            );
            let parts = [
                widget(ctx, room, "jitsi", "jitsi", "Video call", jitsi_url, data),
                widget(
                    ctx,
                    room,
                    "qa",
                    "m.custom",
                    &format!("Q&A: {}", room.name),
                    format!("{web}/qa/{conf}/{key}?token={token}&theme=$theme"),
                    json!({"title": room.name}),
                ),
                widget(
                    ctx,
                    room,
                    "countdown",
                    "m.custom",
                    "Countdown",
                    format!("{web}/countdown/{conf}/{key}?token={token}&theme=$theme"),
                    json!({"title": room.name}),
                ),
            ];
            for (i, (w, width)) in parts.into_iter().zip([60, 25, 15]).enumerate() {
                layout.insert(w.state_key.clone(), slot("top", i as u32, width, 60));
                items.push(w);
            }
        }
        ObjectKind::TrackRoom => {
            let track = enc(room.track.as_deref().unwrap_or_default());
            let mut index = 0;
            if let Some(template) = &ctx.config.livestream_url {
                let hls = template
                    .replace("{track}", room.track.as_deref().unwrap_or_default())
                    .replace("{conference}", &ctx.conference);
                let w = widget(
                    ctx,
                    room,
                    "livestream",
                    "m.custom",
                    &format!("Livestream: {}", room.name),
                    format!("{web}/stream/{conf}/{track}?theme=$theme"),
                    json!({"hls": hls}),
                );
                layout.insert(w.state_key.clone(), slot("top", index, 70, 60));
                index += 1;
                items.push(w);
            }
            let w = widget(
                ctx,
                room,
                "schedule",
                "m.custom",
                &format!("Now and next: {}", room.name),
                format!("{web}/schedule/{conf}/{track}?theme=$theme"),
                json!({"title": room.name}),
            );
            layout.insert(w.state_key.clone(), slot("top", index, if index == 0 { 100 } else { 30 }, 60));
            items.push(w);
        }
        _ => {}
    }
    if !items.is_empty() {
        items.push(StateItem::new(LAYOUT, "", json!({ "widgets": layout })));
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(secret: &[u8]) -> WidgetContext {
        WidgetContext { conference: "c".into(), bot: "@bot:x".into(), config: WidgetsConfig::default(), secret: secret.to_vec() }
    }

    #[test]
    fn ids_are_stable_and_secrets_differ() {
        assert_eq!(widget_id("c", "talk/1", "qa"), widget_id("c", "talk/1", "qa"));
        assert_ne!(widget_id("c", "talk/1", "qa"), widget_id("c", "talk/2", "qa"));
        assert_ne!(widget_id("c", "talk/1", "qa"), widget_id("d", "talk/1", "qa"));
        let (a, b) = (ctx(b"one"), ctx(b"two"));
        assert_eq!(jitsi_conference_id(&a, "talk/1"), jitsi_conference_id(&a, "talk/1"));
        assert_ne!(jitsi_conference_id(&a, "talk/1"), jitsi_conference_id(&b, "talk/1"));
        assert_ne!(room_token(&a, "talk/1"), room_token(&a, "talk/2"));
        let id = jitsi_conference_id(&a, "talk/1");
        assert!(id.len() == 41 && id.chars().all(|c| c.is_ascii_lowercase()), "{id}");
    }
}
