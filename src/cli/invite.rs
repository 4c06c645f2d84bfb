//! `stagehand invite`: invitations, power levels and withdrawals in rooms that exist; builds nothing
//! ([`super::build`] does the work, with the members scope).

use std::process::ExitCode;

use stagehand::matrix::reconcile::Scope;

use super::ServerArgs;
use super::build::{self, BuildOptions};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Say what would be sent, send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = BuildOptions::new(&args.server.input, args.server.homeserver.as_deref(), args.dry_run, Scope::Members, args.json)?;
    build::run(options).await
}
