//! Where the Pentabarf reader is in the file: line numbers in a streaming read, and parse errors placed and
//! explained (a truncated file, a git merge conflict marker).

use super::super::{ScheduleError, to_u32};

pub(super) struct Lines<'a> {
    pub(super) text: &'a [u8],
    pub(super) offset: usize,
    pub(super) line: usize,
}

impl Lines<'_> {
    /// Line of `offset`; offsets must not go backwards (they do not in a streaming read).
    pub(super) fn line_at(&mut self, offset: usize) -> u32 {
        let offset = offset.min(self.text.len());
        if offset > self.offset {
            self.line += count_newlines(&self.text[self.offset..offset]);
            self.offset = offset;
        }
        to_u32(self.line)
    }
}

/// Counts `\n` bytes. Sums in `u8` over chunks of 255 so the compiler vectorises it (a `usize` count does not, well).
pub(super) fn count_newlines(bytes: &[u8]) -> usize {
    bytes
        .chunks(255)
        .map(|chunk| usize::from(chunk.iter().fold(0u8, |n, &b| n + u8::from(b == b'\n'))))
        .sum()
}

/// A parse error with a hint for the damage we have seen in real exports.
pub(super) fn xml_error(file: &str, bytes: &[u8], offset: usize, detail: &str) -> ScheduleError {
    let mut err = ScheduleError::at_offset(file, bytes, offset, format!("the XML is not well-formed: {detail}"));
    if let Some(line) = conflict_marker_near(bytes, offset) {
        err.line = Some(line);
        err.column = Some(1);
        err.message = format!(
            "the file contains a git merge conflict marker (<<<<<<<) at line {line}; the export was committed \
             mid-merge. Resolve the conflict or export the schedule again ({detail})"
        );
    } else if offset >= bytes.len().saturating_sub(1) {
        err.message = format!("the file ends in the middle of the XML: it is truncated ({detail})");
    }
    err
}

/// Line of a conflict marker at or shortly before `offset`.
fn conflict_marker_near(bytes: &[u8], offset: usize) -> Option<u32> {
    let start = offset.saturating_sub(4096);
    let end = (offset + 256).min(bytes.len());
    let window = &bytes[start..end];
    let mut found = None;
    let mut i = 0;
    while i + 7 <= window.len() {
        let at_line_start = start + i == 0 || bytes[start + i - 1] == b'\n';
        if at_line_start && &window[i..i + 7] == b"<<<<<<<" {
            found = Some(start + i);
        }
        i += 1;
    }
    found.map(|o| super::super::line_col(bytes, o).0)
}

