//! `stagehand validate`: read a schedule and report what is wrong with it (exit status 1 on errors).

use std::process::ExitCode;

use stagehand::load::load;
use stagehand::source::shown;

use super::{ScheduleArgs, exit_code, print};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: ScheduleArgs,
    /// One JSON object on stdout: format, counts, errors and warnings.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.input.config()?;
    let req = args.input.request(config.as_ref())?;
    let result = load(&req, config.as_ref()).await;
    if args.json {
        println!("{}", serde_json::to_string(&print::validate_json(&result))?);
    }
    match result {
        Ok(parsed) => {
            if !args.json {
                eprint!("{}", print::findings(&parsed));
                print!("{}", print::validate_summary(&shown(&req.source), &parsed));
            }
            Ok(exit_code(parsed.errors().count() > 0))
        }
        Err(e) => {
            if !args.json {
                eprintln!("error: {e}");
            }
            Ok(ExitCode::from(1))
        }
    }
}
