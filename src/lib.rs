//! Stagehand runs conferences on Matrix: it reads a schedule, plans the spaces and rooms, builds them on a homeserver
//! and runs the live timeline.
//!
//! The map (data flows one way):
//! - [`schedule`]: pure readers (Pentabarf/frab XML, frab/pretalx JSON, our YAML, people files), the model, validation
//!   and the schedule diff;
//! - [`config`]: the config file (pure parse, separate load);
//! - [`plan`]: pure desired state: the spaces and rooms with names, aliases, order, members and widgets
//!   ([`plan::plan`]); what one observed room must get written ([`plan::desired`]: state, power levels, space
//!   links, cancellations, typed membership work, time as an input); whom Stagehand manages where
//!   ([`plan::managed`]);
//! - [`source`]: the edge that reads files and URLs (with a cache of the last good copy);
//! - [`load`]: the pipeline the CLI calls: source, reader, people, validation;
//! - [`matrix`]: the only code that talks to the homeserver: the connection ([`matrix::client`]), the reconcile by
//!   phase ([`matrix::reconcile`]: locate, create, update, spaces, retire, members, e-mail, report) over one bounded
//!   fan-out ([`matrix::fanout`]), the identity server ([`matrix::identity`]), attendance, and the live side the
//!   timeline's runner sends through ([`matrix::live`]);
//! - [`web`]: the widget pages, their JSON and the conference home page.

pub mod config;
pub mod load;
pub mod matrix;
pub mod plan;
pub mod schedule;
pub mod source;
pub mod web;
