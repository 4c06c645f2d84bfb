//! Stagehand runs conferences on Matrix: it reads a schedule, plans the spaces and rooms, builds them on a homeserver
//! and runs the live timeline.
//!
//! The map (data flows one way):
//! - [`schedule`]: pure readers (Pentabarf/frab XML, frab/pretalx JSON, our YAML, people files), the model, the track
//!   classifier ([`schedule::classify`]), validation and the schedule diff;
//! - [`config`]: the config file, one module per section with its defaults and checks (pure parse, separate load);
//! - [`plan`]: pure desired state (spaces, rooms, aliases, order, widgets), with the naming templates
//!   ([`plan::naming`]);
//! - [`secrets`]: the bot's credentials and the widget secret, from the environment or files the config names;
//! - [`source`]: the edge that reads files and URLs (with a cache of the last good copy);
//! - [`load`]: the pipeline the CLI calls: source, reader, people, validation;
//! - [`matrix`]: the homeserver side; [`web`]: the widget pages.
//!
//! The command line (`src/main.rs` and `src/cli/`, one file per command) lives in the binary, not here.

pub mod config;
pub mod load;
pub mod matrix;
pub mod plan;
pub mod schedule;
pub mod secrets;
pub mod source;
pub mod web;
