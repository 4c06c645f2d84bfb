//! The build that `apply`, `invite` and `plan --homeserver` share: load, plan, connect, reconcile, report.
//!
//! Flags and config become one [`BuildOptions`] before any work starts, and the reconcile's options are made from
//! it in one place, [`reconcile_options`]; neither is changed afterwards.

use std::process::ExitCode;

use anyhow::bail;
use stagehand::config::Config;
use stagehand::load::LoadRequest;
use stagehand::matrix::identity::IdentityOptions;
use stagehand::matrix::live;
use stagehand::matrix::reconcile::{Moment, Options, Scope, reconcile_at};
use stagehand::schedule::Conference;
use stagehand::timeline;
use stagehand::plan;
use stagehand::plan::widgets::WidgetContext;

use super::{ScheduleArgs, connect, exit_code, homeserver_url, load_and_report, print, widget_context};

/// What a build does: decided from the flags and the config before any work starts.
pub struct BuildOptions {
    pub config: Config,
    pub request: LoadRequest,
    pub homeserver_url: String,
    /// Compare only, write nothing.
    pub dry_run: bool,
    pub scope: Scope,
    /// Print the report as JSON.
    pub json: bool,
}

impl BuildOptions {
    pub fn new(
        input: &ScheduleArgs,
        homeserver: Option<&str>,
        dry_run: bool,
        scope: Scope,
        json: bool,
    ) -> anyhow::Result<BuildOptions> {
        let config = input.required_config()?;
        let request = input.request(Some(&config))?;
        let homeserver_url = homeserver_url(homeserver, &config)?;
        Ok(BuildOptions { config, request, homeserver_url, dry_run, scope, json })
    }
}

/// The reconcile's options, made once from the build's options and, when widgets are on, their context (which needs
/// the bot's user id, known after login).
pub fn reconcile_options(build: &BuildOptions, widgets: Option<WidgetContext>) -> Options {
    let config = &build.config;
    Options {
        room_version: config.homeserver.room_version.clone(),
        concurrency: config.homeserver.concurrency,
        dry_run: build.dry_run,
        kick_removed: config.people.kick_removed,
        widgets,
        // `invite` is the command that invites: it does so whatever people.invite says.
        invite: build.scope == Scope::Members || config.people.invite,
        max_cancel: None,
        identity_server: config.people.identity_server.as_ref().map(|i| IdentityOptions { server: i.server.clone(), url: i.url.clone(), accept_terms: i.accept_terms }),
        scope: build.scope,
    }
}

/// What the timeline has done to the rooms by `at`, as the desired state takes it.
pub fn moment_at(config: &Config, conference: &Conference, plan: &plan::Plan, at: chrono::DateTime<chrono::Utc>) -> Moment {
    moment_of(config, &timeline::timeline(conference, plan, &config.timeline.actions), at)
}

/// What these actions have done to the rooms by `at`, with how the config opens a room.
pub fn moment_of(config: &Config, actions: &[timeline::Action], at: chrono::DateTime<chrono::Utc>) -> Moment {
    let opened = &config.timeline.opened;
    live::moment(&timeline::state_at(actions, at), &opened.join_rule, &opened.history_visibility)
}

pub async fn run(build: BuildOptions) -> anyhow::Result<ExitCode> {
    let config = &build.config;
    let parsed = load_and_report(&build.request, config).await?;
    if !build.dry_run && parsed.errors().count() > 0 {
        bail!("the schedule has errors (see above); fix them before building");
    }
    let plan = plan::plan(&parsed.conference, config);
    let hs = connect(&build.homeserver_url, config).await?;
    let widgets = if config.widgets.enabled { Some(widget_context(config, &hs.user_id)?) } else { None };
    let options = reconcile_options(&build, widgets);
    // During and after the event, what the timeline has done by now is part of the plan: an apply keeps talk rooms
    // opened and the live talk suggested instead of undoing them.
    let report = reconcile_at(&hs, &plan, &options, || moment_at(config, &parsed.conference, &plan, chrono::Utc::now())).await;
    if build.json {
        print!("{}", print::json_pretty(&report)?);
    } else {
        print!("{}", print::report(&report, build.dry_run));
    }
    Ok(exit_code(report.failed > 0 || report.membership_failures > 0))
}
