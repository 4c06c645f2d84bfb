//! Fuzzes the people-file reader (YAML list, CSV table or FOSDEM speaker feed, chosen from the content).
//! Must not panic, hang or blow up memory on any input; errors are fine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stagehand::schedule::people_file;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = people_file::read("f", text);
    }
});
