//! The ingestion pipeline the CLI and later the bot call: fetch or read the schedule, parse it (falling back to the
//! last good copy when a server serves something broken), apply people files, validate.

use std::path::{Path, PathBuf};

use chrono_tz::Tz;

use crate::config::{Config, ScheduleConfig};
use crate::schedule::people_file::NameOnly;
use crate::schedule::{self, Finding, Format, Parsed, ReadOptions, ScheduleError};
use crate::source::{self, SourceError};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

impl LoadError {
    /// The error as a finding, for JSON output.
    pub fn to_finding(&self) -> Finding {
        match self {
            LoadError::Schedule(e) => e.to_finding(),
            LoadError::Source(e) => Finding::error("", e.to_string()),
        }
    }
}

/// What to load.
#[derive(Debug, Clone, Default)]
pub struct LoadRequest {
    pub source: String,
    pub people: Vec<PathBuf>,
    pub format: Option<Format>,
    pub timezone: Option<Tz>,
}

/// Loads, parses, applies people and validates.
pub async fn load(req: &LoadRequest, config: Option<&Config>) -> Result<Parsed, LoadError> {
    let sched_cfg = config.map(|c| c.schedule.clone()).unwrap_or_default();
    let opts = read_options(req, config, &sched_cfg);
    let fetched = source::load(&req.source, &sched_cfg).await?;
    let mut parsed = match schedule::read(&fetched.name, &fetched.bytes, &opts) {
        // A schedule without talks is never remembered as the last good copy (a server in maintenance serves that).
        Ok(p) if p.conference.talks.is_empty() => p,
        Ok(p) => {
            if let Err(e) = source::remember(&fetched) {
                tracing::warn!(error = %e, "cannot keep a copy of the schedule in the cache");
            }
            p
        }
        Err(err) => match (fetched.stale_because.is_none(), source::cached(&fetched, sched_cfg.max_bytes)) {
            (true, Some(bytes)) => {
                tracing::warn!(error = %err, "THE SERVER SERVED A BROKEN SCHEDULE: using the last good copy");
                let mut p = schedule::read(&fetched.name, &bytes, &opts)?;
                p.findings.push(Finding::warning(
                    &fetched.name,
                    format!("the server served a broken schedule ({err}); the last good copy is used"),
                ));
                p
            }
            _ => return Err(err.into()),
        },
    };
    if let Some(why) = &fetched.stale_because {
        parsed.findings.push(Finding::warning(
            &fetched.name,
            format!("THE SCHEDULE SERVER FAILED ({why}); the last good copy is used and may be out of date"),
        ));
    }
    let mut people_files: Vec<PathBuf> = config.and_then(|c| c.schedule.people.clone()).into_iter().collect();
    people_files.extend(req.people.iter().cloned());
    for path in &people_files {
        apply_people(&mut parsed, path, &sched_cfg)?;
    }
    parsed.validate(&fetched.name);
    Ok(parsed)
}

fn apply_people(parsed: &mut Parsed, path: &Path, sched: &ScheduleConfig) -> Result<(), LoadError> {
    let name = path.display().to_string();
    let bytes = source::read_file(path, sched.max_bytes)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        ScheduleError::at_offset(&name, &bytes, e.valid_up_to(), "the people file is not valid UTF-8")
    })?;
    let entries = schedule::people_file::read(&name, text)?;
    let by_name = if sched.refuse_name_only_matches { NameOnly::Refuse } else { NameOnly::Warn };
    let findings = schedule::people_file::apply(&name, &mut parsed.conference, entries, by_name);
    parsed.findings.extend(findings);
    Ok(())
}

/// Reader options from the request and the config.
pub fn read_options(req: &LoadRequest, config: Option<&Config>, sched: &ScheduleConfig) -> ReadOptions {
    ReadOptions {
        format: req.format,
        timezone: req.timezone.or_else(|| config.and_then(Config::timezone)),
        conference_id: config.map(|c| c.conference.id.clone()),
        max_bytes: sched.max_bytes,
        track_rules: config.map(|c| c.tracks.clone()).unwrap_or_default(),
        ..ReadOptions::default()
    }
}
