//! Whom Stagehand manages in a room, e-mail invites, and remembered identities.
//!
//! Each managed room carries `org.stagehand.managed`: the Matrix IDs Stagehand invited and empowered there, and its
//! e-mail invites keyed by a hash of the address (never the address itself) with the invite's token and, once
//! someone took the invite up, their Matrix ID. That record is how a person known only by e-mail is recognised
//! later: the member event of whoever accepted carries the invite's token (`third_party_invite.signed.token`), and
//! from then on their Matrix ID is used like one from the schedule (power, attendance, invites to new rooms).
//!
//! The identity server part registers the bot (an OpenID token from the homeserver), accepts the terms when the
//! organiser said so, and hands the homeserver what `/invite` needs. Only this module and the reconcile use it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::client::{Homeserver, StateEvent, StateMap};
use crate::config::IdentityServerConfig;
use crate::plan::Plan;
use crate::plan::state::MANAGED;

/// State type of a pending third-party (e-mail) invite; its state key is the invite's token.
pub const THIRD_PARTY_INVITE: &str = "m.room.third_party_invite";

/// One e-mail invite, or the Matrix ID a person known by e-mail turned out to have.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// The content of `org.stagehand.managed`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Managed {
    pub users: Vec<String>,
    /// By [`email_key`].
    pub emails: BTreeMap<String, EmailRecord>,
}

impl Managed {
    pub fn from_state(state: &StateMap) -> Managed {
        let Some(content) = state.get(&(MANAGED.to_string(), String::new())) else { return Managed::default() };
        let users = content["users"].as_array().map(|a| a.iter().filter_map(|u| u.as_str().map(str::to_string)).collect()).unwrap_or_default();
        let emails = content.get("emails").and_then(|e| serde_json::from_value(e.clone()).ok()).unwrap_or_default();
        Managed { users, emails }
    }

    /// The state content; rooms without e-mail invites keep the plain `{"users": [...]}` shape.
    pub fn to_content(&self) -> Value {
        let mut users = self.users.clone();
        users.sort();
        users.dedup();
        if self.emails.is_empty() {
            json!({ "users": users })
        } else {
            json!({ "users": users, "emails": self.emails })
        }
    }
}

/// A stable, non-reversible key for an e-mail address (case and surrounding spaces ignored).
pub fn email_key(email: &str) -> String {
    let digest = Sha256::digest(format!("stagehand-email:{}", email.trim().to_lowercase()).as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Live third-party invites in a room: (token, display name), revoked ones (empty content) left out.
pub fn third_party_invites(state: &StateMap) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = state
        .iter()
        .filter(|((t, _), c)| t == THIRD_PARTY_INVITE && c.as_object().is_some_and(|o| !o.is_empty()))
        .map(|((_, token), c)| (token.clone(), c["display_name"].as_str().unwrap_or_default().to_string()))
        .collect();
    out.sort();
    out
}

/// The token of the third-party invite a membership content was made from, if any.
pub fn invite_token(content: &Value) -> Option<&str> {
    content.get("third_party_invite")?.get("signed")?.get("token")?.as_str()
}

/// Whether an identity server's display name for an invite (`ali...@exa...`: each side a prefix of the address's,
/// with `...` where it was cut) fits an address. Used only to re-find an invite whose record a crash lost.
pub fn display_fits(display: &str, email: &str) -> bool {
    let (Some((dl, dd)), Some((el, ed))) = (display.to_lowercase().split_once('@').map(|(a, b)| (a.to_string(), b.to_string())), email.trim().to_lowercase().split_once('@').map(|(a, b)| (a.to_string(), b.to_string()))) else {
        return false;
    };
    let part = |shown: &str, full: &str| match shown.strip_suffix("...").or_else(|| shown.strip_suffix('…')) {
        Some(prefix) => full.starts_with(prefix),
        None => shown == full,
    };
    part(&dl, &el) && part(&dd, &ed)
}

/// Who took up which invite in one room: token -> Matrix ID, from the member events (or, for members who joined
/// since, the invite their join replaced). Only rooms with invites not yet linked are looked at, and only members
/// Stagehand does not manage yet; walking back through replaced memberships stops once every pending invite is
/// found, and after a bounded number of reads (a room opened to the audience has many members).
pub async fn taken_up(hs: &Homeserver, room_id: &str, events: &[StateEvent], managed: &Managed) -> HashMap<String, String> {
    const MAX_READS: usize = 64;
    let mut out = HashMap::new();
    let pending: Vec<&str> = managed.emails.values().filter(|r| r.user_id.is_none()).filter_map(|r| r.token.as_deref()).collect();
    if pending.is_empty() {
        return out;
    }
    let candidates: Vec<&StateEvent> = events
        .iter()
        .filter(|e| e.event_type == "m.room.member" && e.state_key != hs.user_id && !managed.users.contains(&e.state_key))
        .collect();
    let mut walk = Vec::new();
    for e in &candidates {
        match invite_token(&e.content).or_else(|| e.prev_content.as_ref().and_then(invite_token)) {
            Some(token) if pending.contains(&token) => {
                out.insert(token.to_string(), e.state_key.clone());
            }
            Some(_) => {}
            None if e.content["membership"] != "invite" => walk.push(*e),
            None => {}
        }
    }
    // The server did not say what these memberships replaced, or it was not the invite: walk back a few events.
    let mut reads = 0;
    for e in walk {
        let mut next = e.replaces_state.clone();
        for _ in 0..4 {
            if out.len() == pending.len() || reads >= MAX_READS {
                return out;
            }
            let Some(id) = next.take() else { break };
            reads += 1;
            let Ok(v) = hs.event(room_id, &id).await else { break };
            if let Some(token) = invite_token(&v["content"]) {
                if pending.contains(&token) {
                    out.insert(token.to_string(), e.state_key.clone());
                }
                break;
            }
            next = v["unsigned"]["replaces_state"].as_str().map(str::to_string);
        }
    }
    out
}

/// E-mail key -> Matrix ID, from every room's record and what was taken up since.
pub fn links<'a>(rooms: impl Iterator<Item = (&'a Managed, &'a HashMap<String, String>)>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (managed, taken) in rooms {
        for (key, record) in &managed.emails {
            let user = record.user_id.clone().or_else(|| record.token.as_ref().and_then(|t| taken.get(t).cloned()));
            if let Some(user) = user {
                match out.get(key) {
                    Some(known) if *known != user => {
                        tracing::warn!(known = %known, other = %user, "one e-mail address was taken up by two Matrix IDs; keeping the first")
                    }
                    _ => {
                        out.entry(key.clone()).or_insert(user);
                    }
                }
            }
        }
    }
    out
}

/// Gives people known only by e-mail the Matrix ID they turned out to have, everywhere in the plan.
pub fn apply_links(plan: &mut Plan, links: &BTreeMap<String, String>) {
    if links.is_empty() {
        return;
    }
    for room in &mut plan.rooms {
        for m in room.members.iter_mut().filter(|m| m.user_ids.is_empty()) {
            if let Some(user) = m.emails.iter().find_map(|e| links.get(&email_key(e))) {
                m.user_ids.push(user.clone());
            }
        }
    }
}

/// What `/invite` needs to reach an e-mail address: the identity server and the bot's token there.
#[derive(Debug, Clone)]
pub struct IdentityServer {
    pub server: String,
    pub token: String,
}

/// Registers the bot with the identity server (OpenID token from the homeserver) and accepts its terms if the
/// config says so; otherwise lists them and refuses.
pub async fn register(hs: &Homeserver, config: &IdentityServerConfig) -> Result<IdentityServer, String> {
    let base = config.url.clone().unwrap_or_else(|| format!("https://{}", config.server));
    let base = base.trim_end_matches('/');
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("identity server {}: {e}", config.server))?;
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("identity server {} ({base}): {what}: {e}", config.server);
    let openid = hs.openid_token().await.map_err(|e| fail("no OpenID token from the homeserver", &e))?;
    let answer = http
        .post(format!("{base}/_matrix/identity/v2/account/register"))
        .json(&openid)
        .send()
        .await
        .map_err(|e| fail("registration failed", &e))?;
    let status = answer.status();
    let body: Value = answer.json().await.map_err(|e| fail("registration answer unreadable", &e))?;
    let token = match body["token"].as_str().or_else(|| body["access_token"].as_str()) {
        Some(t) if status.is_success() => t.to_string(),
        _ => return Err(fail("registration refused", &format!("{status} {body}"))),
    };
    let terms: Value = http
        .get(format!("{base}/_matrix/identity/v2/terms"))
        .send()
        .await
        .map_err(|e| fail("cannot read the terms", &e))?
        .json()
        .await
        .unwrap_or(Value::Null);
    let urls = policy_urls(&terms);
    if !urls.is_empty() {
        if !config.accept_terms {
            return Err(format!(
                "the identity server {} asks to accept its terms before e-mail invites: {}; read them, then set people.identity_server.accept_terms: true",
                config.server,
                urls.join(", ")
            ));
        }
        let answer = http
            .post(format!("{base}/_matrix/identity/v2/terms"))
            .bearer_auth(&token)
            .json(&json!({ "user_accepts": urls }))
            .send()
            .await
            .map_err(|e| fail("accepting the terms failed", &e))?;
        if !answer.status().is_success() {
            return Err(fail("accepting the terms was refused", &answer.status()));
        }
    }
    Ok(IdentityServer { server: config.server.clone(), token })
}

/// The URLs of every policy in an identity server's `/terms` answer (English where offered, else every language).
fn policy_urls(terms: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for policy in terms["policies"].as_object().into_iter().flat_map(|p| p.values()) {
        let Some(langs) = policy.as_object() else { continue };
        let english = langs.get("en").and_then(|l| l["url"].as_str());
        match english {
            Some(u) => out.push(u.to_string()),
            None => out.extend(langs.values().filter_map(|l| l["url"].as_str().map(str::to_string))),
        }
    }
    out.sort();
    out.dedup();
    out
}

/// An address shown in logs and reports: `a…@example.org`.
pub fn masked(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}…@{domain}", local.chars().next().unwrap_or('?')),
        None => "…".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_keys_ignore_case_and_do_not_show_the_address() {
        assert_eq!(email_key("Alice@Example.org "), email_key("alice@example.org"));
        assert_ne!(email_key("alice@example.org"), email_key("alice@example.com"));
        assert!(!email_key("alice@example.org").contains("alice"));
        assert_eq!(email_key("a@b").len(), 32);
    }

    #[test]
    fn redacted_display_names_fit_their_address_only() {
        assert!(display_fits("ali...@exa...", "alice@example.org"));
        assert!(display_fits("alice@example.org", "Alice@Example.org"));
        assert!(!display_fits("bob...@exa...", "alice@example.org"));
        assert!(!display_fits("ali...@foo...", "alice@example.org"));
        assert!(!display_fits("no at sign", "alice@example.org"));
    }

    #[test]
    fn managed_round_trips_and_keeps_the_old_shape_without_emails() {
        let plain = Managed { users: vec!["@b:x".into(), "@a:x".into()], emails: BTreeMap::new() };
        assert_eq!(plain.to_content(), json!({"users": ["@a:x", "@b:x"]}));
        let mut with = plain.clone();
        with.emails.insert("k".into(), EmailRecord { token: Some("t".into()), user_id: None });
        let content = with.to_content();
        assert_eq!(content["emails"], json!({"k": {"token": "t"}}));
        let state: StateMap = [((MANAGED.to_string(), String::new()), content)].into_iter().collect();
        let back = Managed::from_state(&state);
        assert_eq!(back.emails, with.emails);
    }

    #[test]
    fn links_come_from_records_and_taken_up_tokens() {
        let mut a = Managed::default();
        a.emails.insert("k1".into(), EmailRecord { token: Some("t1".into()), user_id: None });
        a.emails.insert("k2".into(), EmailRecord { token: Some("t2".into()), user_id: None });
        let mut b = Managed::default();
        b.emails.insert("k3".into(), EmailRecord { token: None, user_id: Some("@c:x".into()) });
        let taken_a: HashMap<String, String> = [("t1".to_string(), "@a:x".to_string())].into_iter().collect();
        let none = HashMap::new();
        let l = links([(&a, &taken_a), (&b, &none)].into_iter());
        assert_eq!(l.get("k1").map(String::as_str), Some("@a:x"));
        assert_eq!(l.get("k2"), None);
        assert_eq!(l.get("k3").map(String::as_str), Some("@c:x"));
    }

    #[test]
    fn invite_token_is_read_from_the_signed_block() {
        let c = json!({"membership": "invite", "third_party_invite": {"display_name": "a...", "signed": {"mxid": "@a:x", "token": "abc", "signatures": {}}}});
        assert_eq!(invite_token(&c), Some("abc"));
        assert_eq!(invite_token(&json!({"membership": "join"})), None);
    }

    #[test]
    fn policy_urls_prefer_english() {
        let terms = json!({"policies": {"privacy": {"version": "1", "en": {"name": "P", "url": "https://x/p-en"}, "fr": {"name": "P", "url": "https://x/p-fr"}}, "tos": {"version": "2", "de": {"name": "T", "url": "https://x/t-de"}}}});
        assert_eq!(policy_urls(&terms), vec!["https://x/p-en".to_string(), "https://x/t-de".to_string()]);
        assert!(policy_urls(&json!({"policies": {}})).is_empty());
    }
}
