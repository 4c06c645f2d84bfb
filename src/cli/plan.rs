//! `stagehand plan`: the spaces and rooms the schedule produces, offline; with `--homeserver`, what would change on
//! the live server (a dry-run build, [`super::build`]).

use std::process::ExitCode;

use stagehand::config::Config;
use stagehand::matrix::reconcile::Scope;
use stagehand::plan;
use stagehand::schedule::Parsed;

use super::build::{self, BuildOptions};
use super::{ScheduleArgs, exit_code, load_schedule, print};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: ScheduleArgs,
    /// Compare with this homeserver (or homeserver.url from the config) instead of printing the offline tree.
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    homeserver: Option<String>,
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match &args.homeserver {
        Some(url) => build::run(BuildOptions::new(&args.input, Some(url), true, Scope::All, args.json)?).await,
        None => offline(&args).await,
    }
}

async fn offline(args: &Args) -> anyhow::Result<ExitCode> {
    let config = args.input.config()?;
    let req = args.input.request(config.as_ref())?;
    let parsed = load_schedule(&req, config.as_ref()).await?;
    let config = match config {
        Some(c) => c,
        None => fallback_config(&parsed)?,
    };
    eprint!("{}", print::findings(&parsed));
    let p = plan::plan(&parsed.conference, &config);
    for w in &p.warnings {
        eprintln!("warning: plan: {w}");
    }
    if args.json {
        print!("{}", print::json_pretty(&p)?);
    } else {
        print!("{}", plan::render_tree(&p));
    }
    Ok(exit_code(parsed.errors().count() > 0))
}

/// A config for a plan without one: the conference's own id and a placeholder server name.
fn fallback_config(parsed: &Parsed) -> anyhow::Result<Config> {
    let yaml = format!(
        "conference: {{id: {:?}}}\nhomeserver: {{server_name: example.org}}\n",
        plan::alias_safe(&parsed.conference.id)
    );
    Ok(Config::parse("(built-in)", &yaml)?.0)
}
