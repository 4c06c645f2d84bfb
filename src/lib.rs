//! Stagehand runs conferences on Matrix: it reads a schedule, plans the spaces and rooms, builds them on a homeserver
//! and runs the live timeline.
//!
//! The map (data flows one way):
//! - [`schedule`]: pure readers (Pentabarf/frab XML, frab/pretalx JSON, our YAML, people files), the model, the track
//!   classifier ([`schedule::classify`]), validation and the schedule diff;
//! - [`config`]: the config file, one module per section with its defaults and checks (pure parse, separate load);
//! - [`plan`]: pure desired state: the spaces and rooms with names, aliases, order, members and widgets
//!   ([`plan::plan`], naming templates in [`plan::naming`]); what one observed room must get written
//!   ([`plan::desired`]: state, power levels, space links, cancellations, typed membership work, time as an
//!   input); whom Stagehand manages where ([`plan::managed`]);
//! - [`secrets`]: the bot's credentials and the widget secret, from the environment or files the config names;
//! - [`source`]: the edge that reads files and URLs (with a cache of the last good copy);
//! - [`load`]: the pipeline the CLI calls: source, reader, people, validation;
//! - [`matrix`]: the only code that talks to the homeserver: the connection ([`matrix::client`]), the reconcile by
//!   phase ([`matrix::reconcile`]: locate, create, update, spaces, retire, members, e-mail, report) over one bounded
//!   fan-out ([`matrix::fanout`]), the identity server ([`matrix::identity`]), attendance, the live side the
//!   timeline's runner sends through ([`matrix::live`], reading rooms ahead of their actions: [`matrix::prefetch`]),
//!   and the event intake ([`matrix::intake`]: a filtered `/sync` or an application service's pushed transactions,
//!   behind one inbox);
//! - [`metrics`]: the Prometheus registry (`/metrics`) and its typed recording methods: homeserver requests, timeline
//!   actions and lateness, invites, planned rooms, Q&A;
//! - [`qa`]: the audience's questions and upvotes per talk, moderation and ranking, kept in the day's store;
//! - [`status`]: the conference at a glance for the organisers (live talks, next and late actions, missing speakers,
//!   rooms, Q&A, homeserver, intake and runner health, the last problems), gathered in one place and shown as text
//!   (`stagehand status`, the management room) and on the `/status` page;
//! - [`web`]: the widget pages, their JSON, the conference home page and the organisers' `/status` page.
//!
//! The command line (`src/main.rs` and `src/cli/`, one file per command) lives in the binary, not here.

pub mod commands;
pub mod config;
pub mod load;
pub mod matrix;
pub mod metrics;
pub mod plan;
pub mod qa;
pub mod schedule;
pub mod secrets;
pub mod source;
pub mod status;
pub mod timeline;
pub mod web;
