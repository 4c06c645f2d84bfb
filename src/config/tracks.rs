//! `tracks`: the rules that sort tracks into kinds. The rules and the classifier are the schedule's
//! ([`crate::schedule::classify`]); this section owns the check of what an organiser wrote.

pub use crate::schedule::classify::{TrackRule, TrackRules};

pub(super) fn check(tracks: &TrackRules) -> Result<(), String> {
    match tracks.rules.iter().position(TrackRule::is_unconditional) {
        Some(i) => Err(format!(
            "tracks.rules[{i}] has no condition (type, room_prefix, name_prefix or key); it would match \
             every track. Use tracks.default_kind for that"
        )),
        None => Ok(()),
    }
}
