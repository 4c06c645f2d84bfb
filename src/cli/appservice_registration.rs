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
    /// Where the homeserver pushes the rooms' events: the address `stagehand run` serves on, as the homeserver
    /// reaches it (e.g. `http://127.0.0.1:8080`). Without it the registration says `url: null` and the bot syncs.
    #[arg(long, value_parser = http_url)]
    url: Option<String>,
}

fn http_url(s: &str) -> Result<String, String> {
    if (s.starts_with("http://") || s.starts_with("https://")) && !s.contains(char::is_whitespace) {
        Ok(s.trim_end_matches('/').to_string())
    } else {
        Err(format!("{s:?}: an http:// or https:// address, like http://127.0.0.1:8080"))
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = read_config(&args.config)?;
    let hs = &config.homeserver;
    print!("{}", appservice_registration(&hs.server_name, hs.bot_localpart(), &config.conference.id, args.url.as_deref()));
    Ok(ExitCode::SUCCESS)
}
