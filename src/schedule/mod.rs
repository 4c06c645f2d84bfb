//! Schedule ingestion: readers for Pentabarf/frab XML, frab/pretalx JSON and our YAML, a people file, the shared
//! assembly that gives talks their stable identity, semantic validation and the schedule diff.
//!
//! Pure: takes bytes and options, returns a [`Conference`] and [`Finding`]s. Fetching files and URLs lives in
//! [`crate::source`]; nothing here touches the network, the clock or Matrix.

pub mod assemble;
mod days;
pub mod raw;
pub mod classify;
pub mod diff;
mod empty;
pub mod frab_json;
pub mod model;
pub mod pentabarf;
pub mod people_file;
pub mod validate;
pub mod yaml;

use chrono_tz::Tz;
use serde::Serialize;

pub use model::*;

use classify::TrackRules;

/// Severity of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One thing validation noticed, with where it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    #[serde(skip)]
    pub severity: Severity,
    pub file: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub talk: Option<String>,
    pub message: String,
}

impl Finding {
    pub fn error(file: &str, message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Error,
            file: file.to_string(),
            line: None,
            column: None,
            talk: None,
            message: message.into(),
        }
    }

    pub fn warning(file: &str, message: impl Into<String>) -> Finding {
        Finding { severity: Severity::Warning, ..Finding::error(file, message) }
    }

    pub fn at(mut self, line: Option<u32>) -> Finding {
        self.line = line;
        self
    }

    pub fn talk(mut self, key: &str) -> Finding {
        self.talk = Some(key.to_string());
        self
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {sev}: ")?;
        if let Some(talk) = &self.talk {
            write!(f, "talk {talk}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// A schedule that could not be read at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}{}: {message}", location(*.line, *.column))]
pub struct ScheduleError {
    pub file: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// What is wrong and what to do about it.
    pub message: String,
}

fn location(line: Option<u32>, column: Option<u32>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

impl ScheduleError {
    pub fn new(file: &str, message: impl Into<String>) -> ScheduleError {
        ScheduleError { file: file.to_string(), line: None, column: None, message: message.into() }
    }

    /// An error at a byte offset of `text`.
    pub fn at_offset(file: &str, text: &[u8], offset: usize, message: impl Into<String>) -> ScheduleError {
        let (line, column) = line_col(text, offset);
        ScheduleError { file: file.to_string(), line: Some(line), column: Some(column), message: message.into() }
    }

    /// The error as a finding, for `validate --json`.
    pub fn to_finding(&self) -> Finding {
        Finding {
            severity: Severity::Error,
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            talk: None,
            message: self.message.clone(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &[u8], offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    (to_u32(line), to_u32(column))
}

pub(crate) fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// How to read a schedule.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Force a format instead of detecting it from the content.
    pub format: Option<Format>,
    /// Timezone for files that carry none (from config).
    pub timezone: Option<Tz>,
    /// Conference id to use when the file has none (from config).
    pub conference_id: Option<String>,
    /// Largest input accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest element nesting accepted.
    pub max_depth: usize,
    /// How tracks are classified into kinds.
    pub track_rules: TrackRules,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            format: None,
            timezone: None,
            conference_id: None,
            max_bytes: 64 * 1024 * 1024,
            max_depth: 64,
            track_rules: TrackRules::default(),
        }
    }
}

/// A conference and what was noticed while reading it.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub format: Format,
    pub conference: Conference,
    pub findings: Vec<Finding>,
}

impl Parsed {
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Warning)
    }

    /// Runs the semantic checks and adds their findings.
    pub fn validate(&mut self, file: &str) {
        let more = validate::check(file, &self.conference);
        self.findings.extend(more);
    }
}

/// Detects the format from the first meaningful bytes.
pub fn detect_format(bytes: &[u8]) -> Option<Format> {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = text.iter().position(|b| !b.is_ascii_whitespace()).map(|i| text[i])?;
    match first {
        b'<' => Some(Format::PentabarfXml),
        b'{' | b'[' => Some(Format::FrabJson),
        _ => Some(Format::Yaml),
    }
}

/// Reads a schedule from bytes: checks size and encoding, picks the reader and assembles the model. Call
/// [`Parsed::validate`] once people files are applied.
pub fn read(file: &str, bytes: &[u8], opts: &ReadOptions) -> Result<Parsed, ScheduleError> {
    if bytes.len() > opts.max_bytes {
        return Err(ScheduleError::new(
            file,
            format!(
                "the file is {} bytes, more than the limit of {} bytes; if it really is a schedule, raise \
                 schedule.max_bytes in the config",
                bytes.len(),
                opts.max_bytes
            ),
        ));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return Err(ScheduleError::at_offset(
                file,
                bytes,
                e.valid_up_to(),
                "the file is not valid UTF-8 here; save it as UTF-8 and try again",
            ));
        }
    };
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let format = match opts.format.or_else(|| detect_format(text.as_bytes())) {
        Some(f) => f,
        None => return Err(ScheduleError::new(file, "the file is empty; expected a schedule (XML, JSON or YAML)")),
    };
    let raw = match format {
        Format::PentabarfXml => pentabarf::read(file, text, opts)?,
        Format::FrabJson => frab_json::read(file, text, opts.max_depth)?,
        Format::Yaml => yaml::read(file, text, opts.max_depth)?,
    };
    let (conference, mut findings) = assemble::assemble(file, raw, opts);
    if conference.talks.is_empty() {
        empty::check(file, format, text, &mut findings);
    }
    Ok(Parsed { format, conference, findings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_characters() {
        let text = "ab\ncdé\nf".as_bytes();
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        // after "cdé" (é is two bytes)
        assert_eq!(line_col(text, 7), (2, 4));
        assert_eq!(line_col(text, 999), (3, 2));
    }

    #[test]
    fn detect_format_by_first_byte() {
        assert_eq!(detect_format(b"  <?xml"), Some(Format::PentabarfXml));
        assert_eq!(detect_format(b"\xEF\xBB\xBF{\"schedule\""), Some(Format::FrabJson));
        assert_eq!(detect_format(b"conference:\n"), Some(Format::Yaml));
        assert_eq!(detect_format(b"   \n"), None);
    }

    #[test]
    fn invalid_utf8_is_reported_with_line() {
        let err = read("x.xml", b"<schedule>\n<a>\xff</a>", &ReadOptions::default()).unwrap_err();
        assert_eq!((err.line, err.column), (Some(2), Some(4)));
        assert!(err.message.contains("UTF-8"));
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let opts = ReadOptions { max_bytes: 10, ..ReadOptions::default() };
        let err = read("big.xml", &[b' '; 11], &opts).unwrap_err();
        assert!(err.message.contains("max_bytes"), "{err}");
    }
}
