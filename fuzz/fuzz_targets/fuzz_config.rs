//! Fuzzes the config parser (YAML with unknown keys refused, then the checks on ids, timezones and templates).
//! Must not panic, hang or blow up memory on any input; errors are fine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stagehand::config::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse("f", text);
    }
});
