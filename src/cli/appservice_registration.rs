//! `stagehand appservice-registration`: an application service registration, with fresh tokens, for the config's
//! homeserver.

use std::path::PathBuf;
use std::process::ExitCode;

use stagehand::matrix::client::appservice_registration;

use super::read_config;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = read_config(&args.config)?;
    let hs = &config.homeserver;
    print!("{}", appservice_registration(&hs.server_name, hs.bot_localpart(), &config.conference.id));
    Ok(ExitCode::SUCCESS)
}
