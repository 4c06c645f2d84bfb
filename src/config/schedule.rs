//! `schedule`: where the schedule and people files come from, request headers for a schedule URL, limits and the
//! cache of the last good copy. Owns their defaults, the warning about literal secrets in headers, and `${NAME}`
//! expansion of header values from the environment.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// File path or http(s) URL of the schedule.
    pub source: Option<String>,
    /// A people file adding Matrix IDs, e-mails and roles.
    pub people: Option<PathBuf>,
    /// Request headers for a schedule URL; `${NAME}` in a value is read from the environment.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Where the last good copy of a fetched schedule is kept.
    pub cache_dir: Option<PathBuf>,
    /// A people-file entry with no key and no known e-mail matches a schedule person by display name only, with a
    /// warning naming both; `true` refuses such a match (an error) instead.
    #[serde(default)]
    pub refuse_name_only_matches: bool,
}

fn default_timeout() -> u64 {
    30
}

fn default_max_bytes() -> usize {
    64 * 1024 * 1024
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            source: None,
            people: None,
            headers: BTreeMap::new(),
            timeout_seconds: default_timeout(),
            max_bytes: default_max_bytes(),
            cache_dir: None,
            refuse_name_only_matches: false,
        }
    }
}

impl ScheduleConfig {
    /// Headers that look like credentials written into the file itself.
    pub(super) fn warnings(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(name, value)| name.to_ascii_lowercase().contains("authorization") && !value.contains("${"))
            .map(|(name, _)| {
                format!(
                    "schedule.headers.{name} holds a literal secret; write \"Token ${{PRETALX_TOKEN}}\" and set the \
                     variable in the environment instead"
                )
            })
            .collect()
    }
}

/// Expands `${NAME}` from the environment; a missing variable is an error naming it.
pub fn expand_env(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unclosed ${{ in {value:?}"));
        };
        let name = &after[..end];
        match lookup(name) {
            Some(v) => out.push_str(&v),
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_expansion() {
        let env = |k: &str| (k == "TOKEN").then(|| "s3cret".to_string());
        assert_eq!(expand_env("Token ${TOKEN}", env).unwrap(), "Token s3cret");
        assert!(expand_env("${MISSING}", env).unwrap_err().contains("MISSING"));
    }

    #[test]
    fn a_literal_authorization_header_is_a_warning() {
        let mut s = ScheduleConfig::default();
        s.headers.insert("Authorization".into(), "Token abc".into());
        s.headers.insert("X-Authorization".into(), "Token ${T}".into());
        assert_eq!(s.warnings().len(), 1);
        assert!(s.warnings()[0].starts_with("schedule.headers.Authorization holds a literal secret"));
    }
}
