//! The timeline's options: one [`Step`] per action kind (switch, offset, grace window), the spread of routine
//! reminders and the runner's retry budget. Deserialisable with unknown keys refused, so it can become the `timeline`
//! section of the config file as it is; [`Default`] is the FOSDEM 2022 flow.

use serde::Deserialize;

use super::actions::ActionKind;

/// One action kind: whether it happens, when (minutes before its anchor: the start for reminders, the go-live for the
/// countdown and go-live, the end for the end; negative is after) and how late it may still be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub enabled: bool,
    pub minutes_before: i64,
    /// Seconds after its instant that a missed action is still sent; later it is skipped and logged. Actions before
    /// the go-live are never sent after the go-live, whatever this says.
    pub grace_seconds: u64,
}

/// A step as written in the config: what is left out keeps the kind's default.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepPatch {
    enabled: Option<bool>,
    minutes_before: Option<i64>,
    grace_seconds: Option<u64>,
}

impl Step {
    const fn new(minutes_before: i64, grace_seconds: u64) -> Step {
        Step { enabled: true, minutes_before, grace_seconds }
    }

    fn patched(self, patch: Option<StepPatch>) -> Step {
        let Some(p) = patch else { return self };
        Step {
            enabled: p.enabled.unwrap_or(self.enabled),
            minutes_before: p.minutes_before.unwrap_or(self.minutes_before),
            grace_seconds: p.grace_seconds.unwrap_or(self.grace_seconds),
        }
    }
}

const HOUR: u64 = 3600;
const WEEK: u64 = 7 * 24 * HOUR;

/// How the runner retries a send that failed with a transient error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryOptions {
    /// Seconds a time-critical action is retried for after its first attempt (then recorded `failed`).
    pub critical_seconds: u64,
    /// Seconds a routine action is retried for (bounded by its grace window too).
    pub routine_seconds: u64,
    /// First pause between attempts, in milliseconds; doubles each time.
    pub first_backoff_ms: u64,
    /// Sends in flight at once; routine sends hold at most half of them.
    pub max_in_flight: usize,
}

impl Default for RetryOptions {
    fn default() -> RetryOptions {
        RetryOptions { critical_seconds: 20, routine_seconds: 300, first_backoff_ms: 500, max_in_flight: 16 }
    }
}

/// How the time-critical actions due together are sent: a homeserver persists events one after another (about 45 a
/// second for one Synapse process with SQLite on two cores, fewer beside other work), so dozens of go-lives in one second would land seconds
/// apart, the last ones late. Instead they are started ahead of their instant, at most `rate` a second and at most
/// `max_lead_seconds` early, so that the last of them goes out at its instant; the go-live ones go last, closest to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BurstOptions {
    /// Time-critical sends started per second when many are due together; 0 sends each at its instant.
    pub rate: u32,
    /// The most seconds a time-critical action is started before its instant.
    pub max_lead_seconds: u64,
}

impl Default for BurstOptions {
    fn default() -> BurstOptions {
        BurstOptions { rate: 20, max_lead_seconds: 10 }
    }
}

/// Declares the steps once: the options' fields, their defaults, the config's patch fields and [`TimelineOptions::step`].
macro_rules! steps {
    ($($(#[doc = $doc:literal])* $field:ident: $kind:ident = ($minutes:expr, $grace:expr);)*) => {
        /// The `timeline` config section.
        #[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
        #[serde(from = "RawOptions")]
        pub struct TimelineOptions {
            $($(#[doc = $doc])* pub $field: Step,)*
            /// Routine actions are spread by their id over this many seconds: reminders before their instant, the end
            /// of a talk after it, so the second of the go-lives carries only what must be exact. 0 sends them at
            /// their instant; at most 3600.
            pub spread_seconds: u64,
            /// How the audience asks and upvotes, said in the go-live notice.
            pub how_to_ask: String,
            /// How many questions `top_questions` posts at go-live.
            pub top_questions_count: usize,
            pub retry: RetryOptions,
            pub burst: BurstOptions,
        }

        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawOptions {
            $($field: Option<StepPatch>,)*
            spread_seconds: Option<u64>,
            how_to_ask: Option<String>,
            top_questions_count: Option<usize>,
            #[serde(default)]
            retry: RetryOptions,
            #[serde(default)]
            burst: BurstOptions,
        }

        impl Default for TimelineOptions {
            fn default() -> TimelineOptions {
                TimelineOptions {
                    $($field: Step::new($minutes, $grace),)*
                    spread_seconds: 60,
                    how_to_ask: "Ask your questions in this room; upvote the ones you want answered with 👍.".into(),
                    top_questions_count: 3,
                    retry: RetryOptions::default(),
                    burst: BurstOptions::default(),
                }
            }
        }

        impl From<RawOptions> for TimelineOptions {
            fn from(raw: RawOptions) -> TimelineOptions {
                let d = TimelineOptions::default();
                TimelineOptions {
                    $($field: d.$field.patched(raw.$field),)*
                    spread_seconds: raw.spread_seconds.unwrap_or(d.spread_seconds),
                    how_to_ask: raw.how_to_ask.unwrap_or(d.how_to_ask),
                    top_questions_count: raw.top_questions_count.unwrap_or(d.top_questions_count),
                    retry: raw.retry,
                    burst: raw.burst,
                }
            }
        }

        impl TimelineOptions {
            /// The step of one action kind.
            pub fn step(&self, kind: ActionKind) -> Step {
                match kind {
                    $(ActionKind::$kind => self.$field,)*
                }
            }
        }
    };
}

steps! {
    /// T-60: reminder in the talk room, mentioning the speakers and hosts who have not joined.
    first_reminder: FirstReminder = (60, 30 * 60);
    /// T-15: the same reminder again.
    last_reminder: LastReminder = (15, 10 * 60);
    /// T-15: a line in the track's backstage naming who is missing.
    backstage_roll: BackstageRoll = (15, 10 * 60);
    /// T-5: "live in five minutes" in the talk room.
    live_soon: LiveSoon = (5, 120);
    /// T-5: the same in the track's backstage.
    backstage_live_soon: BackstageLiveSoon = (5, 120);
    /// T-1: "live in one minute" in the talk room.
    last_minute: LastMinute = (1, 60);
    /// Go-live: the Jitsi widget maximised in the talk room.
    maximise: Maximise = (0, HOUR);
    /// Go-live: notice in the track room (title, speakers, how to ask and upvote).
    live_notice: LiveNotice = (0, 5 * 60);
    /// Go-live: the talk room `suggested` in its space.
    suggest: Suggest = (0, HOUR);
    /// Go-live: the `top_questions_count` most upvoted questions so far, for the host, in the talk room (a
    /// pre-recorded talk has had its audience asking during the recording).
    top_questions: TopQuestions = (0, 10 * 60);
    /// End-5: "five minutes left" in the talk room.
    ending_soon: EndingSoon = (5, 120);
    /// End: the talk room's planned layout back.
    restore_layout: RestoreLayout = (0, WEEK);
    /// End: the talk room opened to the audience.
    open_room: OpenRoom = (0, WEEK);
    /// End: `suggested` taken off the talk room.
    unsuggest: Unsuggest = (0, WEEK);
    /// End: notice in the track room pointing to the talk room.
    hallway_notice: HallwayNotice = (0, 15 * 60);
    /// Five minutes after the end (when the track room's questions stop counting for the talk): the unanswered
    /// questions in the talk room, for the speaker to answer in writing.
    question_summary: QuestionSummary = (-5, HOUR);
    /// When a new schedule moves a talk: a notice in its talk room with the new time (`minutes_before` is not used).
    moved_notice: Moved = (0, HOUR);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_section_keeps_the_other_defaults_and_typos_are_refused() {
        let o: TimelineOptions =
            yaml_serde::from_str("last_minute: {enabled: false}\nfirst_reminder: {minutes_before: 30}\n").unwrap();
        assert!(!o.last_minute.enabled);
        assert_eq!(o.first_reminder, Step { enabled: true, minutes_before: 30, grace_seconds: 30 * 60 });
        assert_eq!(yaml_serde::from_str::<TimelineOptions>("{}").unwrap(), TimelineOptions::default());
        assert_eq!(o.live_soon, TimelineOptions::default().live_soon);
        assert!(yaml_serde::from_str::<TimelineOptions>("last_minut: {enabled: false}\n").is_err());
        assert!(yaml_serde::from_str::<TimelineOptions>("live_soon: {minutes: 3}\n").is_err());
    }
}
