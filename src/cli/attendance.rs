//! `stagehand attendance`: who joined their talk rooms and backstages, who is invited, who cannot be reached.

use std::process::ExitCode;

use stagehand::matrix::attendance;
use stagehand::plan;

use super::{ServerArgs, connect, homeserver_url, load_and_report, print};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// One CSV row per person and room on stdout.
    #[arg(long)]
    csv: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.server.input.required_config()?;
    let req = args.server.input.request(Some(&config))?;
    let parsed = load_and_report(&req, &config).await?;
    let url = homeserver_url(args.server.homeserver.as_deref(), &config)?;
    let p = plan::plan(&parsed.conference, &config);
    let hs = connect(&url, &config).await?;
    let seen = attendance::read(&hs, &p).await?;
    let rows = attendance::rows(&p, &seen);
    if args.csv {
        print!("{}", attendance::csv(&rows)?);
    } else {
        print!("{}", print::attendance(&rows));
    }
    Ok(ExitCode::SUCCESS)
}
