//! `conference`: the conference's id (it goes into aliases and locators), title and timezone. Owns their checks.

use chrono_tz::Tz;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConferenceConfig {
    /// Short id used in aliases and locators (`fosdem-2026`).
    pub id: String,
    /// Display title; defaults to the schedule's.
    pub title: Option<String>,
    /// IANA timezone for schedules that carry none (FOSDEM before 2024).
    pub timezone: Option<String>,
}

impl ConferenceConfig {
    pub(super) fn check(&self) -> Result<(), String> {
        if !is_alias_safe(&self.id) {
            return Err(format!(
                "conference.id {:?} must be lower-case letters, digits, '-', '_' or '.' (it goes into room aliases)",
                self.id
            ));
        }
        if let Some(tz) = &self.timezone
            && tz.parse::<Tz>().is_err()
        {
            return Err(format!("conference.timezone {tz:?} is not an IANA timezone (e.g. Europe/Brussels)"));
        }
        Ok(())
    }

    /// The configured timezone, once checked.
    pub fn tz(&self) -> Option<Tz> {
        self.timezone.as_deref().and_then(|t| t.parse().ok())
    }
}

/// Characters we allow in alias localparts we generate.
pub fn is_alias_safe(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}
