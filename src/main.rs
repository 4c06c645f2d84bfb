//! The command line: parses the arguments and hands each command to its module in `cli/`. Sets up logging and the
//! async runtime, prints a top-level error and sets the exit code; nothing else.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

#[derive(Parser)]
#[command(name = "stagehand", version, about = "Runs conferences on Matrix: schedule in, spaces and rooms out")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read a schedule and report what is wrong with it (exit status 1 on errors).
    Validate(cli::validate::Args),
    /// Show the spaces and rooms the schedule will produce; with --homeserver, what would change on the live
    /// server (create / update / unchanged, with the fields that differ), without writing.
    Plan(cli::plan::Args),
    /// Build or update the conference on the homeserver: create what is missing, change what differs.
    Apply(cli::apply::Args),
    /// Invite the people the schedule puts in each existing room (by Matrix ID, or by e-mail through the identity
    /// server), set their power, withdraw what the schedule no longer wants. Builds nothing; `apply` does this too.
    Invite(cli::invite::Args),
    /// Who joined their talk rooms and backstages, who is invited, who cannot be reached: per talk and per track.
    Attendance(cli::attendance::Args),
    /// Serve the widget pages, their JSON, the conference home page and /healthz.
    Serve(cli::serve::Args),
    /// The event day: keep the rooms to the plan, run the live timeline (reminders, countdowns, go-live, the end),
    /// serve the widget pages, re-read the schedule on its cron and on SIGHUP. --rehearse tries it on a test server.
    Run(cli::run::Args),
    /// The conference at a glance: live talks, the next and the late or failed actions, who is missing from the
    /// talks of the next hour, rooms, the homeserver; --url adds the running bot's runner, intake and Q&A.
    Status(cli::status::Args),
    /// Print an application service registration (with fresh tokens) for the config's homeserver.
    AppserviceRegistration(cli::appservice_registration::Args),
    /// List talks added, removed, moved, retimed, retitled and re-speakered between two schedules.
    Diff(cli::diff::Args),
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("stagehand=info,matrix_sdk=off,warn"));
    // Colours only on a terminal: logs kept in files and read by tools stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let printer = tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(std::io::stderr).with_filter(filter);
    // The last warnings and errors are kept for the status too, whatever RUST_LOG prints.
    let journal = stagehand::status::journal::layer(stagehand::status::journal::global());
    tracing_subscriber::registry().with(printer).with(journal).init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Validate(args) => cli::validate::run(args).await,
        Command::Plan(args) => cli::plan::run(args).await,
        Command::Apply(args) => cli::apply::run(args).await,
        Command::Invite(args) => cli::invite::run(args).await,
        Command::Attendance(args) => cli::attendance::run(args).await,
        Command::Serve(args) => cli::serve::run(args).await,
        Command::Run(args) => cli::run::run(args).await,
        Command::Status(args) => cli::status::run(args).await,
        Command::AppserviceRegistration(args) => cli::appservice_registration::run(args),
        Command::Diff(args) => cli::diff::run(args).await,
    }
}
