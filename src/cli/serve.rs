//! `stagehand serve`: the widget pages, their JSON, the conference home page and /healthz, until Ctrl-C or SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use stagehand::plan;
use stagehand::web::{self, Site};

use super::{ScheduleArgs, load_and_report, widget_context};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: ScheduleArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.input.required_config()?;
    let req = args.input.request(Some(&config))?;
    let parsed = load_and_report(&req, &config).await?;
    let plan = plan::plan(&parsed.conference, &config);
    // The pages need no bot: widget content is only sent by `apply`.
    let widgets = widget_context(&config, "")?;
    let site = Arc::new(Site { conference: parsed.conference, plan, widgets, clock: Arc::new(chrono::Utc::now) });
    let listen = &args.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("serving on http://{listen} (home page /, health /healthz); Ctrl-C stops");
    web::serve(site, listener, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
