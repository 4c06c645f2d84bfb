//! `stagehand diff`: talks added, removed, moved, retimed, retitled and re-speakered between two schedules.

use std::path::PathBuf;
use std::process::ExitCode;

use stagehand::load::LoadRequest;
use stagehand::schedule::diff;

use super::{FormatArg, load_schedule, parse_tz, print, read_config};

#[derive(clap::Args)]
pub struct Args {
    old: String,
    new: String,
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    people: Vec<PathBuf>,
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    #[arg(long)]
    timezone: Option<String>,
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.config.as_deref().map(read_config).transpose()?;
    let timezone = parse_tz(args.timezone.as_deref())?;
    let request = |source: &str| LoadRequest {
        source: source.to_string(),
        people: args.people.clone(),
        format: args.format.map(Into::into),
        timezone,
    };
    let old = load_schedule(&request(&args.old), config.as_ref()).await?;
    let new = load_schedule(&request(&args.new), config.as_ref()).await?;
    let changes = diff::diff(&old.conference, &new.conference);
    if args.json {
        print!("{}", print::json_pretty(&changes)?);
    } else {
        print!("{}", print::diff(&changes, old.conference.talks.len(), new.conference.talks.len()));
    }
    Ok(ExitCode::SUCCESS)
}
