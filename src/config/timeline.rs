//! `timeline`: the live timeline of `stagehand run`: where its durable record lives, how often the schedule is
//! re-read (a cron expression), how a talk room is opened after its talk, and the actions themselves (offsets,
//! switches, grace windows, retry budgets: [`TimelineOptions`], owned by the timeline). Owns their defaults and checks.

use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;

use crate::timeline::TimelineOptions;

/// The live timeline's settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TimelineConfig {
    /// The SQLite file that records every action (fired, skipped, failed), so a restart neither repeats nor loses
    /// one. Keep it for the whole event.
    pub store: PathBuf,
    /// When to re-read the schedule and reconcile (cron, seconds first). The default, every five minutes at 2:30
    /// past, keeps the full reconcile away from :00 and :30, when talks go live. SIGHUP re-reads at once.
    pub refresh: String,
    /// How a talk room opens to the audience after its talk.
    pub opened: OpenedRoom,
    /// The actions: each kind's offset, switch and grace window, the spread of routine actions, retry budgets.
    pub actions: TimelineOptions,
}

/// Join rule and history visibility of a talk room once its talk is over.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OpenedRoom {
    /// `public` (anyone may join) or `knock` (anyone may ask).
    pub join_rule: String,
    /// `shared` (newcomers read what was said during the talk), `world_readable`, `invited` or `joined`.
    pub history_visibility: String,
}

impl Default for TimelineConfig {
    fn default() -> Self {
        TimelineConfig {
            store: PathBuf::from(".stagehand/stagehand.sqlite"),
            refresh: "30 2-59/5 * * * *".into(),
            opened: OpenedRoom::default(),
            actions: TimelineOptions::default(),
        }
    }
}

impl Default for OpenedRoom {
    fn default() -> Self {
        OpenedRoom { join_rule: "public".into(), history_visibility: "shared".into() }
    }
}

impl TimelineConfig {
    /// The refresh schedule, parsed.
    pub fn refresh_schedule(&self) -> Result<cron::Schedule, String> {
        cron::Schedule::from_str(&self.refresh).map_err(|e| {
            format!("timeline.refresh {:?} is not a cron expression ({e}); six fields, seconds first: \"30 2-59/5 * * * *\" is every five minutes at 2:30 past", self.refresh)
        })
    }

    pub(super) fn check(&self) -> Result<(), String> {
        self.refresh_schedule()?;
        if !["public", "knock"].contains(&self.opened.join_rule.as_str()) {
            return Err(format!("timeline.opened.join_rule {:?}: use public or knock", self.opened.join_rule));
        }
        if !["shared", "world_readable", "invited", "joined"].contains(&self.opened.history_visibility.as_str()) {
            return Err(format!(
                "timeline.opened.history_visibility {:?}: use shared, world_readable, invited or joined",
                self.opened.history_visibility
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<TimelineConfig, String> {
        let c: TimelineConfig = yaml_serde::from_str(yaml).map_err(|e| e.to_string())?;
        c.check().map(|_| c)
    }

    #[test]
    fn defaults_refresh_every_five_minutes_and_open_rooms_publicly() {
        let c = parse("{}").unwrap();
        assert_eq!(c, TimelineConfig::default());
        assert_eq!(c.refresh_schedule().unwrap().upcoming(chrono::Utc).take(2).count(), 2);
        assert_eq!(c.opened.join_rule, "public");
    }

    #[test]
    fn bad_cron_join_rule_and_unknown_keys_are_refused() {
        assert!(parse("refresh: every five minutes").unwrap_err().contains("seconds first"));
        assert!(parse("opened: {join_rule: invite}").unwrap_err().contains("public or knock"));
        assert!(parse("opened: {history_visibility: everyone}").is_err());
        assert!(parse("refesh: \"0 * * * * *\"").is_err());
        assert!(parse("actions: {live_soon: {minutes_bfore: 3}}").is_err());
        let c = parse("actions: {live_soon: {minutes_before: 3}}").unwrap();
        assert_eq!(c.actions.live_soon.minutes_before, 3);
    }
}
