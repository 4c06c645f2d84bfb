//! `stagehand invite`: invitations, power levels and withdrawals in rooms that exist; builds nothing
//! ([`super::build`] does the work, with the members scope).

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
    /// Say what would be sent, send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = BuildOptions::new(&args.input, args.homeserver.as_deref(), args.dry_run, Scope::Members, args.json)?;
    build::run(options).await
}
