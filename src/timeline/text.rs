//! What the timeline says in rooms: plain text and HTML (everything from the schedule escaped), and the user ids to
//! mention. Pure; the roll calls ([`Roll`]) are completed at fire time with who has not joined.

use serde::Serialize;

use crate::schedule::model::Role;

/// One message, ready for an `m.notice`: `body`, `formatted_body` (`org.matrix.custom.html`) and `m.mentions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub body: String,
    pub html: String,
    /// User ids to put in `m.mentions.user_ids` (they get a highlight).
    pub mentions: Vec<String>,
}

impl Message {
    fn plain(body: String, html: String) -> Message {
        Message { body, html, mentions: Vec::new() }
    }
}

/// A speaker or host a roll call looks for, as the plan invites them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invitee {
    pub person: String,
    pub name: String,
    pub role: Role,
    pub user_ids: Vec<String>,
}

/// Where a roll call is posted: the talk room itself (mentions the missing) or the track's backstage (names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RollPlace {
    TalkRoom,
    Backstage,
}

/// A reminder naming who has not joined the talk room, completed at fire time by [`Roll::render`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Roll {
    pub place: RollPlace,
    pub title: String,
    /// Minutes from the reminder to the start.
    pub minutes: i64,
    /// The start as the conference's local wall time (`10:30`).
    pub local_start: String,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// "in 5 minutes", "in 1 minute", "in 1 hour", "now".
pub fn in_minutes(minutes: i64) -> String {
    match minutes {
        i64::MIN..=0 => "now".into(),
        1 => "in 1 minute".into(),
        60 => "in 1 hour".into(),
        m => format!("in {m} minutes"),
    }
}

fn pill(user_id: &str, name: &str) -> String {
    format!("<a href=\"https://matrix.to/#/{}\">{}</a>", escape(user_id), escape(name))
}

fn names(people: &[&Invitee]) -> String {
    people.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
}

impl Roll {
    /// The message, given who of the planned people has not joined the talk room.
    pub fn render(&self, missing: &[&Invitee]) -> Message {
        let (title, when) = (&self.title, in_minutes(self.minutes));
        let at = &self.local_start;
        let (t, h) = (format!("“{title}”"), format!("“{}”", escape(title)));
        match (self.place, missing.is_empty()) {
            (RollPlace::TalkRoom, true) => Message::plain(
                format!("{t} starts {when} (at {at}). Everyone is here: thank you!"),
                format!("{h} starts {when} (at {}). Everyone is here: thank you!", escape(at)),
            ),
            (RollPlace::TalkRoom, false) => {
                let mut html_names = Vec::new();
                let mut mentions = Vec::new();
                for p in missing {
                    match p.user_ids.first() {
                        Some(id) => html_names.push(pill(id, &p.name)),
                        None => html_names.push(escape(&p.name)),
                    }
                    mentions.extend(p.user_ids.iter().cloned());
                }
                Message {
                    body: format!(
                        "{}: {t} starts {when} (at {at}). Please join this room and check the video call.",
                        names(missing)
                    ),
                    html: format!(
                        "{}: {h} starts {when} (at {}). Please join this room and check the video call.",
                        html_names.join(", "),
                        escape(at)
                    ),
                    mentions,
                }
            }
            (RollPlace::Backstage, true) => Message::plain(
                format!("{t} starts {when}: all speakers and hosts are in the talk room."),
                format!("{h} starts {when}: all speakers and hosts are in the talk room."),
            ),
            (RollPlace::Backstage, false) => Message::plain(
                format!("{t} starts {when}; not yet in the talk room: {}.", names(missing)),
                format!("{h} starts {when}; not yet in the talk room: {}.", escape(&names(missing))),
            ),
        }
    }
}

/// "“Title” goes live in 5 minutes."
pub fn countdown(title: &str, minutes: i64) -> Message {
    let when = in_minutes(minutes);
    Message::plain(format!("“{title}” goes live {when}."), format!("“{}” goes live <strong>{when}</strong>.", escape(title)))
}

/// The go-live notice in the track room.
pub fn live_notice(title: &str, speakers: &[String], how_to_ask: &str) -> Message {
    let by = if speakers.is_empty() { String::new() } else { format!(" by {}", speakers.join(", ")) };
    Message::plain(
        format!("Now live: “{title}”{by}. {how_to_ask}"),
        format!("Now live: <strong>{}</strong>{}. {}", escape(title), escape(&by), escape(how_to_ask)),
    )
}

/// "5 minutes left for “Title”."
pub fn ending_soon(title: &str, minutes: i64) -> Message {
    let left = if minutes == 1 { "1 minute".to_string() } else { format!("{minutes} minutes") };
    Message::plain(format!("{left} left for “{title}”."), format!("<strong>{left}</strong> left for “{}”.", escape(title)))
}

/// The end-of-talk notice in the track room, pointing to the talk room.
pub fn hallway(title: &str, talk_alias: &str) -> Message {
    Message::plain(
        format!("“{title}” has ended. The discussion continues in {talk_alias}"),
        format!(
            "“{}” has ended. The discussion continues in <a href=\"https://matrix.to/#/{}\">{}</a>",
            escape(title),
            escape(talk_alias),
            escape(talk_alias)
        ),
    )
}

/// A question as a list of questions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    pub text: String,
    pub asker: String,
    pub votes: usize,
}

/// The top questions at go-live (`summary: false`) or the unanswered ones after the talk (`summary: true`), numbered,
/// with their votes and askers. `None` when there are none.
pub fn questions(title: &str, list: &[Asked], summary: bool) -> Option<Message> {
    if list.is_empty() {
        return None;
    }
    let head = if summary {
        format!("Questions left unanswered in “{title}”; you can answer them here in writing:")
    } else {
        format!("Top questions for “{title}” so far:")
    };
    let votes = |n: usize| if n == 1 { "1 vote".to_string() } else { format!("{n} votes") };
    let mut body = head.clone();
    let mut html = format!("{}<ol>", escape(&head));
    for (i, q) in list.iter().enumerate() {
        body.push_str(&format!("\n{}. {} ({}, {})", i + 1, q.text, votes(q.votes), q.asker));
        html.push_str(&format!("<li>{} <em>({}, {})</em></li>", escape(&q.text), votes(q.votes), escape(&q.asker)));
    }
    html.push_str("</ol>");
    Some(Message::plain(body, html))
}

/// A moved talk's new time, told in its talk room.
pub fn moved(title: &str, now_starts: &str, was: &str) -> Message {
    Message::plain(
        format!("“{title}” has moved: it now starts {now_starts} (was {was})."),
        format!("“{}” has moved: it now starts <strong>{}</strong> (was {}).", escape(title), escape(now_starts), escape(was)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invitee(name: &str, ids: &[&str]) -> Invitee {
        Invitee { person: name.into(), name: name.into(), role: Role::Speaker, user_ids: ids.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn roll_in_the_talk_room_mentions_the_missing_and_escapes_the_schedule() {
        let roll = Roll { place: RollPlace::TalkRoom, title: "<b>Rust</b> & you".into(), minutes: 15, local_start: "10:30".into() };
        let (a, b) = (invitee("Ann <script>", &["@ann:x"]), invitee("Bob", &[]));
        let m = roll.render(&[&a, &b]);
        assert_eq!(m.mentions, vec!["@ann:x".to_string()]);
        assert_eq!(m.body, "Ann <script>, Bob: “<b>Rust</b> & you” starts in 15 minutes (at 10:30). Please join this room and check the video call.");
        assert!(m.html.starts_with("<a href=\"https://matrix.to/#/@ann:x\">Ann &lt;script&gt;</a>, Bob: “&lt;b&gt;Rust&lt;/b&gt; &amp; you”"), "{}", m.html);
        let all_here = roll.render(&[]);
        assert!(all_here.mentions.is_empty() && all_here.body.contains("Everyone is here"), "{all_here:?}");
    }

    #[test]
    fn roll_in_the_backstage_names_without_mentioning() {
        let roll = Roll { place: RollPlace::Backstage, title: "T".into(), minutes: 15, local_start: "10:30".into() };
        let a = invitee("Ann & Co", &["@ann:x"]);
        let m = roll.render(&[&a]);
        assert!(m.mentions.is_empty());
        assert_eq!(m.body, "“T” starts in 15 minutes; not yet in the talk room: Ann & Co.");
        assert!(m.html.ends_with("not yet in the talk room: Ann &amp; Co."), "{}", m.html);
    }

    #[test]
    fn question_lists_number_escape_and_stay_silent_when_empty() {
        let list = [
            Asked { text: "Why <b>?".into(), asker: "Ann & co".into(), votes: 3 },
            Asked { text: "How?".into(), asker: "@b:x".into(), votes: 1 },
        ];
        let m = questions("T", &list, false).unwrap();
        assert_eq!(m.body, "Top questions for “T” so far:\n1. Why <b>? (3 votes, Ann & co)\n2. How? (1 vote, @b:x)");
        assert!(m.html.contains("<li>Why &lt;b&gt;? <em>(3 votes, Ann &amp; co)</em></li>"), "{}", m.html);
        assert!(questions("T", &list, true).unwrap().body.starts_with("Questions left unanswered in “T”"));
        assert_eq!(questions("T", &[], false), None);
    }

    #[test]
    fn fixed_messages_escape_and_count() {
        assert_eq!(countdown("A<B", 1).body, "“A<B” goes live in 1 minute.");
        assert_eq!(countdown("A<B", 5).html, "“A&lt;B” goes live <strong>in 5 minutes</strong>.");
        let live = live_notice("T", &["Ann".into(), "<i>Bob</i>".into()], "Ask here.");
        assert_eq!(live.body, "Now live: “T” by Ann, <i>Bob</i>. Ask here.");
        assert!(live.html.contains("by Ann, &lt;i&gt;Bob&lt;/i&gt;."), "{}", live.html);
        assert_eq!(ending_soon("T", 5).body, "5 minutes left for “T”.");
        let h = hallway("T", "#c-talk-1:x");
        assert!(h.html.contains("href=\"https://matrix.to/#/#c-talk-1:x\""), "{}", h.html);
        assert_eq!(in_minutes(60), "in 1 hour");
        assert_eq!(in_minutes(0), "now");
    }
}
