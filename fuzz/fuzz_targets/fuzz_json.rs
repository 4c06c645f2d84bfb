//! Fuzzes the schedule reader with the format forced to `FrabJson`, then the semantic checks on what it read.
//! Must not panic, hang or blow up memory on any input; errors are fine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stagehand::schedule::{self, Format, ReadOptions};

fuzz_target!(|data: &[u8]| {
    let opts = ReadOptions { format: Some(Format::FrabJson), ..ReadOptions::default() };
    if let Ok(mut parsed) = schedule::read("f", data, &opts) {
        parsed.validate("f");
    }
});
