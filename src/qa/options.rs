//! The `qa` config section: which messages are questions, which reactions are votes and moderation, the window
//! around a talk, and what the timeline posts about questions. Deserialisable with unknown keys refused; [`Default`]
//! is the FOSDEM 2022 flow. What the timeline posts about questions (the top ones at go-live, the unanswered ones
//! after the talk) is switched in the `timeline` section (`top_questions`, `question_summary`). The default (top-level messages are questions, 👍 votes, ❌ hides, ✅ marks answered).

use serde::Deserialize;

/// Which messages in a talk's window count as questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuestionMode {
    /// Every text message (replies included; moderation commands never).
    Every,
    /// Top-level messages only: a reply or a message inside a thread is discussion, not a new question.
    ThreadRoots,
    /// Messages starting with `prefix` (case-insensitive); the prefix is not shown.
    Prefix,
}

/// The `qa` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QaOptions {
    /// Listen for questions at all (`stagehand run` syncs or takes pushed transactions only when on).
    pub enabled: bool,
    /// `every`, `thread-roots` or `prefix`.
    pub questions: QuestionMode,
    /// With `questions: prefix`: what a question starts with.
    pub prefix: String,
    /// Minutes after a talk's end that questions in its track room still count for it (unless the next talk of the
    /// track has started).
    pub margin_minutes: i64,
    /// Reactions that count as an upvote. Variation selectors and skin tones are ignored (👍, 👍️ and 👍🏽 are one).
    pub votes: Vec<String>,
    /// Whether the asker's own upvote counts.
    pub own_vote_counts: bool,
    /// Reactions by a moderator that hide a question.
    pub hide: Vec<String>,
    /// Reactions by a moderator that mark a question answered.
    pub answered: Vec<String>,
    /// A moderator's reply to a question that hides it.
    pub hide_command: String,
    /// A moderator's reply to a question that marks it answered.
    pub answered_command: String,
    /// Power level in the room at which anyone may moderate (besides the talk's hosts and the track's coordinators).
    pub moderator_power: i64,
}

impl Default for QaOptions {
    fn default() -> QaOptions {
        QaOptions {
            enabled: true,
            questions: QuestionMode::ThreadRoots,
            prefix: "Q:".into(),
            margin_minutes: 5,
            votes: vec!["👍".into()],
            own_vote_counts: false,
            hide: vec!["❌".into()],
            answered: vec!["✅".into()],
            hide_command: "!hide".into(),
            answered_command: "!answered".into(),
            moderator_power: 50,
        }
    }
}

/// A reaction key without variation selectors (U+FE0E, U+FE0F) and skin tone modifiers (U+1F3FB..U+1F3FF).
pub fn normalise_key(key: &str) -> String {
    key.chars().filter(|c| !matches!(*c, '\u{FE0E}' | '\u{FE0F}' | '\u{1F3FB}'..='\u{1F3FF}')).collect()
}

impl QaOptions {
    pub fn check(&self) -> Result<(), String> {
        if self.questions == QuestionMode::Prefix && self.prefix.trim().is_empty() {
            return Err("qa.prefix must not be empty with questions: prefix".into());
        }
        if !(0..=24 * 60).contains(&self.margin_minutes) {
            return Err("qa.margin_minutes must be between 0 and 1440".into());
        }
        for (name, keys) in [("votes", &self.votes), ("hide", &self.hide), ("answered", &self.answered)] {
            if keys.iter().any(|k| normalise_key(k).trim().is_empty()) {
                return Err(format!("qa.{name}: a reaction key must not be empty"));
            }
        }
        let clash = self.votes.iter().map(|k| normalise_key(k)).find(|k| {
            self.hide.iter().chain(&self.answered).any(|m| normalise_key(m) == *k)
        });
        if let Some(k) = clash {
            return Err(format!("qa: {k} is both a vote and a moderation reaction; pick different ones"));
        }
        if self.hide_command.trim().is_empty() || self.answered_command.trim().is_empty() {
            return Err("qa.hide_command and qa.answered_command must not be empty".into());
        }
        Ok(())
    }

    pub(crate) fn is_vote(&self, key: &str) -> bool {
        let k = normalise_key(key);
        self.votes.iter().any(|v| normalise_key(v) == k)
    }

    pub(crate) fn is_hide(&self, key: &str) -> bool {
        let k = normalise_key(key);
        self.hide.iter().any(|v| normalise_key(v) == k)
    }

    pub(crate) fn is_answered(&self, key: &str) -> bool {
        let k = normalise_key(key);
        self.answered.iter().any(|v| normalise_key(v) == k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbs_up_with_and_without_selector_and_skin_tone_is_one_vote() {
        let o = QaOptions::default();
        assert!(o.is_vote("👍") && o.is_vote("👍\u{FE0F}") && o.is_vote("👍🏽"));
        assert!(!o.is_vote("👎") && !o.is_vote("❌"));
        assert!(o.is_hide("❌") && o.is_answered("✅\u{FE0F}") && !o.is_answered("👍"));
    }

    #[test]
    fn clashing_and_empty_keys_are_refused() {
        let o = QaOptions { hide: vec!["👍\u{FE0F}".into()], ..QaOptions::default() };
        assert!(o.check().unwrap_err().contains("both a vote and a moderation"));
        let o = QaOptions { votes: vec!["\u{FE0F}".into()], ..QaOptions::default() };
        assert!(o.check().unwrap_err().contains("qa.votes"));
        let o = QaOptions { questions: QuestionMode::Prefix, prefix: " ".into(), ..QaOptions::default() };
        assert!(o.check().is_err());
        assert!(QaOptions::default().check().is_ok());
    }

    #[test]
    fn the_section_reads_from_yaml_with_unknown_keys_refused() {
        let o: QaOptions = yaml_serde::from_str("questions: prefix\nprefix: \"Q:\"\nvotes: [\"👍\", \"+1\"]\n").unwrap();
        assert_eq!((o.questions, o.votes.len(), o.margin_minutes), (QuestionMode::Prefix, 2, 5));
        assert!(yaml_serde::from_str::<QaOptions>("vote: [x]\n").is_err());
    }
}
