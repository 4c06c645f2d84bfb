//! The live timeline: what happens in which room at which instant during the event, and the runner that makes it
//! happen on time, once, across restarts and schedule changes.
//!
//! - [`actions`] (pure): from the schedule, the plan and [`TimelineOptions`], every [`Action`] with its instant, room
//!   (by plan key), kind, priority, grace window and stable id; [`state_at`] gives what the actions imply for the
//!   rooms at an instant (open, suggested, live), for a reconcile that takes time as an input; [`moved_notices`]
//!   tells the talk rooms of talks a new schedule moved.
//! - [`burst`] (pure): when the time-critical actions due together fire, paced just ahead of their instant.
//! - [`text`] (pure): the messages, plain and HTML, with everything from the schedule escaped.
//! - [`store`]: the durable record of every action (SQLite, one file), written before each send.
//! - [`runner`]: sleeps until the next instant, fires through a [`Sender`], records, follows new action lists.
//! - [`clock`]: the mapping between tokio's clock and wall-clock UTC that the runner reads (paused in tests).
//!
//! Owns: the action list, its texts, the store's file and the runner. Must not touch: the homeserver (a [`Sender`]
//! does, implemented in the matrix layer), the config file (the caller deserialises [`TimelineOptions`]), the plan and
//! the schedule (read only), the system clock outside [`Clock::system`].

pub mod actions;
pub mod burst;
pub mod clock;
pub mod options;
pub mod runner;
pub mod store;
pub mod text;

#[cfg(test)]
pub(crate) mod fixtures;

pub use actions::{Action, ActionKind, Effect, LiveState, Priority, go_live, moved_notices, state_at, timeline};
pub use clock::Clock;
pub use options::{BurstOptions, RetryOptions, Step, TimelineOptions};
pub use runner::{RunSummary, Runner, RunnerError, RunnerStatus, SendError, Sent, Sender};
pub use store::{Record, RecordState, SendTimes, Store, StoreError};
pub use text::{Invitee, Message, Roll, RollPlace};
