//! Room events as Q&A reads them: messages, edits, reactions, redactions, members' display names and power levels,
//! from the client-server API's event JSON. Pure; anything else (or anything malformed) is `None`.

use std::collections::HashMap;

use serde_json::Value;

/// What one event says, for Q&A.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Message(Message),
    /// A new text for an earlier message (`m.replace`).
    Edit { id: String, sender: String, ts: i64, target: String, body: String },
    /// An `m.annotation` on an event.
    Reaction { id: String, sender: String, ts: i64, target: String, key: String },
    Redaction { id: String, sender: String, redacts: String },
    /// A member's display name (`None`: none set, or left).
    Member { user: String, name: Option<String>, ts: i64 },
    Power(Power),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: String,
    pub sender: String,
    pub ts: i64,
    pub msgtype: String,
    /// The body without a reply fallback.
    pub body: String,
    /// The event this one replies to (not a thread's fallback reply).
    pub reply_to: Option<String>,
    /// Inside a thread (not its root).
    pub in_thread: bool,
}

/// A room's power levels.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Power {
    pub ts: i64,
    pub users: HashMap<String, i64>,
    pub users_default: i64,
}

impl Power {
    /// Power levels from an `m.room.power_levels` content.
    pub fn from_content(content: &Value, ts: i64) -> Power {
        let users = content
            .get("users")
            .and_then(Value::as_object)
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_i64()?))).collect())
            .unwrap_or_default();
        let users_default = content.get("users_default").and_then(Value::as_i64).unwrap_or(0);
        Power { ts, users, users_default }
    }

    pub fn of(&self, user: &str) -> i64 {
        self.users.get(user).copied().unwrap_or(self.users_default)
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Strips the `> ` quoted lines a client puts before a reply's own text.
pub fn strip_reply_fallback(body: &str) -> &str {
    if !body.starts_with("> ") {
        return body;
    }
    let mut rest = body;
    while rest.starts_with('>') {
        match rest.find('\n') {
            Some(i) => rest = &rest[i + 1..],
            None => return "",
        }
    }
    rest.trim_start_matches('\n')
}

/// Reads one event.
pub fn read(event: &Value) -> Option<Fact> {
    let id = text(event, "event_id")?.to_string();
    let sender = text(event, "sender")?.to_string();
    let ts = event.get("origin_server_ts").and_then(Value::as_i64).unwrap_or(0);
    let content = event.get("content")?;
    let relates = content.get("m.relates_to");
    let rel_type = relates.and_then(|r| text(r, "rel_type"));
    match text(event, "type")? {
        "m.room.message" => {
            let body = text(content, "body")?;
            if rel_type == Some("m.replace") {
                let target = text(relates?, "event_id")?.to_string();
                let new = content.get("m.new_content").and_then(|n| text(n, "body")).unwrap_or(body);
                return Some(Fact::Edit { id, sender, ts, target, body: new.to_string() });
            }
            let in_thread = rel_type == Some("m.thread");
            let falling_back = relates.and_then(|r| r.get("is_falling_back")).and_then(Value::as_bool).unwrap_or(false);
            let reply_to = relates
                .and_then(|r| r.get("m.in_reply_to"))
                .and_then(|r| text(r, "event_id"))
                .filter(|_| !(in_thread && falling_back))
                .map(str::to_string);
            let body = if reply_to.is_some() { strip_reply_fallback(body) } else { body };
            Some(Fact::Message(Message {
                id,
                sender,
                ts,
                msgtype: text(content, "msgtype").unwrap_or("m.text").to_string(),
                body: body.to_string(),
                reply_to,
                in_thread,
            }))
        }
        "m.reaction" if rel_type == Some("m.annotation") => {
            let r = relates?;
            Some(Fact::Reaction { id, sender, ts, target: text(r, "event_id")?.to_string(), key: text(r, "key")?.to_string() })
        }
        "m.room.redaction" => {
            // Room versions up to 10 carry `redacts` at the top; 11 and later in the content.
            let redacts = text(content, "redacts").or_else(|| text(event, "redacts"))?.to_string();
            Some(Fact::Redaction { id, sender, redacts })
        }
        "m.room.member" => {
            let user = text(event, "state_key")?.to_string();
            let joined = matches!(text(content, "membership"), Some("join") | Some("invite"));
            let name = text(content, "displayname").filter(|n| joined && !n.trim().is_empty()).map(str::to_string);
            Some(Fact::Member { user, name, ts })
        }
        "m.room.power_levels" => Some(Fact::Power(Power::from_content(content, ts))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(kind: &str, content: Value) -> Value {
        json!({"event_id": "$e", "sender": "@a:x", "origin_server_ts": 5, "type": kind, "content": content})
    }

    #[test]
    fn messages_edits_replies_and_threads() {
        let Some(Fact::Message(m)) = read(&ev("m.room.message", json!({"msgtype": "m.text", "body": "Why?"}))) else { panic!() };
        assert_eq!((m.body.as_str(), m.reply_to, m.in_thread, m.ts), ("Why?", None, false, 5));
        let reply = json!({"msgtype": "m.text", "body": "> <@b:x> Why?\n> more\n\n!hide", "m.relates_to": {"m.in_reply_to": {"event_id": "$q"}}});
        let Some(Fact::Message(m)) = read(&ev("m.room.message", reply)) else { panic!() };
        assert_eq!((m.body.as_str(), m.reply_to.as_deref()), ("!hide", Some("$q")));
        let thread = json!({"body": "me too", "m.relates_to": {"rel_type": "m.thread", "event_id": "$q", "is_falling_back": true, "m.in_reply_to": {"event_id": "$q"}}});
        let Some(Fact::Message(m)) = read(&ev("m.room.message", thread)) else { panic!() };
        assert!(m.in_thread && m.reply_to.is_none());
        let edit = json!({"body": "* Why not?", "m.new_content": {"body": "Why not?"}, "m.relates_to": {"rel_type": "m.replace", "event_id": "$q"}});
        assert_eq!(read(&ev("m.room.message", edit)), Some(Fact::Edit { id: "$e".into(), sender: "@a:x".into(), ts: 5, target: "$q".into(), body: "Why not?".into() }));
    }

    #[test]
    fn reactions_redactions_members_and_power() {
        let r = json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": "$q", "key": "👍"}});
        assert!(matches!(read(&ev("m.reaction", r)), Some(Fact::Reaction { ref target, ref key, .. }) if target == "$q" && key == "👍"));
        assert!(matches!(read(&ev("m.room.redaction", json!({"redacts": "$r"}))), Some(Fact::Redaction { ref redacts, .. }) if redacts == "$r"));
        let mut old = ev("m.room.redaction", json!({}));
        old["redacts"] = json!("$r");
        assert!(matches!(read(&old), Some(Fact::Redaction { .. })));
        let mut m = ev("m.room.member", json!({"membership": "join", "displayname": "Ann"}));
        m["state_key"] = json!("@ann:x");
        assert_eq!(read(&m), Some(Fact::Member { user: "@ann:x".into(), name: Some("Ann".into()), ts: 5 }));
        let Some(Fact::Power(p)) = read(&ev("m.room.power_levels", json!({"users": {"@h:x": 50}}))) else { panic!() };
        assert_eq!((p.of("@h:x"), p.of("@z:x")), (50, 0));
        // A redacted reaction has no relation left: not a vote.
        assert_eq!(read(&ev("m.reaction", json!({}))), None);
        assert_eq!(read(&json!({"type": "m.room.message"})), None);
    }
}
