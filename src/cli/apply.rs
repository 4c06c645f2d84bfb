//! `stagehand apply`: build or update the conference on the homeserver ([`super::build`] does the work).

use std::process::ExitCode;

use stagehand::matrix::reconcile::Scope;

use super::ScheduleArgs;
use super::build::{self, BuildOptions};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: ScheduleArgs,
    /// Homeserver URL; defaults to homeserver.url from the config.
    #[arg(long)]
    homeserver: Option<String>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    build::run(BuildOptions::new(&args.input, args.homeserver.as_deref(), false, Scope::All, args.json)?).await
}
