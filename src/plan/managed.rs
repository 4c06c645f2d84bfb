//! Whom Stagehand manages in a room: the record `org.stagehand.managed`, e-mail invites and remembered identities.
//! Pure: the record is read from observed state and written as content; nothing here talks to a server.
//!
//! Each managed room carries the record: the Matrix IDs Stagehand invited and empowered there, and its e-mail
//! invites keyed by a hash of the address (never the address itself) with the invite's token and, once someone took
//! the invite up, their Matrix ID. That record is how a person known only by e-mail is recognised later: the member
//! event of whoever accepted carries the invite's token (`third_party_invite.signed.token`), and from then on their
//! Matrix ID is used like one from the schedule (power, attendance, invites to new rooms). Those links are data
//! ([`Links`]) handed to the desired state; the plan itself is never changed.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::PlannedRoom;
use super::members::PlannedMember;
use super::state::{MANAGED, StateMap};

/// E-mail key ([`email_key`]) -> the Matrix ID that took the invite up, across the conference.
pub type Links = BTreeMap<String, String>;

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

/// E-mail key -> Matrix ID, from every room's record and what was taken up since.
pub fn links<'a>(rooms: impl Iterator<Item = (&'a Managed, &'a HashMap<String, String>)>) -> Links {
    let mut out = Links::new();
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

/// A room as the desired state sees it: members known only by e-mail carry the Matrix ID they took an invite up
/// with. Rooms without such members are borrowed as they are.
pub fn linked<'a>(room: &'a PlannedRoom, links: &Links) -> Cow<'a, PlannedRoom> {
    let link = |m: &PlannedMember| if m.user_ids.is_empty() { m.emails.iter().find_map(|e| links.get(&email_key(e))) } else { None };
    if links.is_empty() || !room.members.iter().any(|m| link(m).is_some()) {
        return Cow::Borrowed(room);
    }
    let mut out = room.clone();
    for m in &mut out.members {
        if let Some(user) = link(m) {
            m.user_ids.push(user.clone());
        }
    }
    Cow::Owned(out)
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
    use crate::schedule::model::Role;

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
    fn linked_people_count_by_their_matrix_id_and_schedule_ids_win() {
        let links: Links = [(email_key("eve@x.org"), "@eve:x".to_string())].into_iter().collect();
        let eve = super::super::members::fixture("Eve", Role::Speaker, &[], &["eve@x.org"]);
        let ann = super::super::members::fixture("Ann", Role::Speaker, &["@ann:x"], &["eve@x.org"]);
        let room = super::super::talk_room_fixture(vec![eve, ann]);
        let seen = linked(&room, &links);
        assert!(matches!(seen, Cow::Owned(_)));
        assert_eq!(seen.members[0].user_ids, vec!["@eve:x".to_string()]);
        assert_eq!(seen.members[1].user_ids, vec!["@ann:x".to_string()], "a Matrix ID from the schedule is kept as it is");
        assert!(matches!(linked(&room, &Links::new()), Cow::Borrowed(_)));
        assert_eq!(room.members[0].user_ids.len(), 0, "the plan itself is not changed");
    }

    #[test]
    fn invite_token_is_read_from_the_signed_block() {
        let c = json!({"membership": "invite", "third_party_invite": {"display_name": "a...", "signed": {"mxid": "@a:x", "token": "abc", "signatures": {}}}});
        assert_eq!(invite_token(&c), Some("abc"));
        assert_eq!(invite_token(&json!({"membership": "join"})), None);
    }
}
