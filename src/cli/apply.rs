//! `stagehand apply`: build or update the conference on the homeserver ([`super::build`] does the work).

use std::process::ExitCode;

use stagehand::matrix::reconcile::Scope;

use super::ServerArgs;
use super::build::{self, BuildOptions};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    build::run(BuildOptions::new(&args.server.input, args.server.homeserver.as_deref(), false, Scope::All, args.json)?).await
}
