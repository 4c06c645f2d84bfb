//! `stagehand status`: the conference at a glance, whether or not `stagehand run` is up. Reads the schedule, the
//! plan and the timeline store (what fired, what is late, what failed), asks the homeserver which rooms exist and who
//! is missing from the talks of the next hour (a homeserver that does not answer is reported, not fatal), and prints
//! the status as text, or `--json`. With `--url`, the running bot's runner, intake, Q&A and problems are added from
//! its `/status.json` (with the organisers' token).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use stagehand::plan;
use stagehand::secrets;
use stagehand::source::shown;
use stagehand::status::{self, Running, Sources, Status};
use stagehand::timeline::{self, Clock, Store};

use super::{ServerArgs, connect, homeserver_url, load_and_report};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
    /// The running bot's web address (`http://127.0.0.1:8080`): its runner, intake, Q&A and problems are added from
    /// its /status.json, with the organisers' token.
    #[arg(long)]
    url: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.server.input.required_config()?;
    let req = args.server.input.request(Some(&config))?;
    let parsed = load_and_report(&req, &config).await?;
    let plan = Arc::new(plan::plan(&parsed.conference, &config));
    let actions = Arc::new(timeline::timeline(&parsed.conference, &plan, &config.timeline.actions));
    // The event's store as the running bot keeps it; none yet is fine (nothing has fired), and is not created here.
    let path = &config.timeline.store;
    let store = match path.exists() {
        true => Some(Store::open(path).with_context(|| format!("cannot open the timeline store {}", path.display()))?),
        false => None,
    };
    let connected = match homeserver_url(args.server.homeserver.as_deref(), &config) {
        Ok(url) => connect(&url, &config).await,
        Err(e) => Err(e),
    };
    let (hs, hs_error) = match connected {
        Ok(hs) => (Some(hs), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let running = Running {
        source: shown(&req.source),
        refresh: config.timeline.refresh_schedule().ok(),
        clock: Clock::system(),
        rehearsal: false,
        hs,
        hs_error,
        store,
        runner: None,
        intake: None,
        qa: None,
    };
    let mut status = Sources::new(running, parsed.conference, plan, actions).status_everything().await;
    if let Some(url) = &args.url {
        let token = secrets::organiser_token(&config.operations, |k| std::env::var(k).ok())?
            .context("--url needs the organisers' token: set STAGEHAND_ORGANISER_TOKEN or operations.organiser_token_file")?;
        match running_status(url, token.reveal()).await {
            Ok(theirs) => status.add_running(theirs),
            Err(e) => eprintln!("warning: the running bot's status: {e:#}"),
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}\n{}", status::text(&status), status::details(&status));
    }
    Ok(ExitCode::SUCCESS)
}

/// The running bot's `/status.json`.
async fn running_status(url: &str, token: &str) -> anyhow::Result<Status> {
    let url = format!("{}/status.json", url.trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build()?;
    let resp = client.get(&url).bearer_auth(token).send().await.with_context(|| format!("cannot reach {url}"))?;
    let code = resp.status();
    anyhow::ensure!(code.is_success(), "{url} answered {code}");
    resp.json().await.with_context(|| format!("{url}: not a status"))
}
