//! Stagehand runs conferences on Matrix: it reads a schedule, plans the spaces and rooms, builds them on a homeserver
//! and runs the live timeline.
//!
//! The map (data flows one way):
//! - [`schedule`]: pure readers (Pentabarf/frab XML, frab/pretalx JSON, our YAML, people files), the model, validation
//!   and the schedule diff;
//! - [`config`]: the config file (pure parse, separate load);
//! - [`plan`]: pure desired state (spaces, rooms, aliases, order);
//! - [`source`]: the edge that reads files and URLs (with a cache of the last good copy);
//! - [`load`]: the pipeline the CLI calls: source, reader, people, validation.

pub mod config;
pub mod load;
pub mod matrix;
pub mod plan;
pub mod schedule;
pub mod source;
pub mod timeline;
pub mod web;
