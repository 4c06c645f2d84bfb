//! The command line: a thin shell over the library. Prints, sets exit codes, nothing else.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use stagehand::config::Config;
use stagehand::load::{LoadRequest, load};
use stagehand::plan;
use stagehand::schedule::{Format, Parsed, diff};

#[derive(Parser)]
#[command(name = "stagehand", version, about = "Runs conferences on Matrix: schedule in, spaces and rooms out")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read a schedule and report what is wrong with it (exit status 1 on errors).
    Validate {
        #[command(flatten)]
        input: Input,
        /// One JSON object on stdout: format, counts, errors and warnings.
        #[arg(long)]
        json: bool,
    },
    /// Show the spaces and rooms the schedule will produce (offline).
    Plan {
        #[command(flatten)]
        input: Input,
        #[arg(long)]
        json: bool,
    },
    /// List talks added, removed, moved, retimed, retitled and re-speakered between two schedules.
    Diff {
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
    },
}

#[derive(Args)]
struct Input {
    /// Schedule file or http(s) URL; defaults to schedule.source from the config.
    schedule: Option<String>,
    /// People file(s): YAML, CSV or FOSDEM's speaker feed JSON. May be repeated.
    #[arg(long)]
    people: Vec<PathBuf>,
    /// Config file (YAML).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Force a format instead of detecting it.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Timezone for schedules that carry none (overrides conference.timezone).
    #[arg(long)]
    timezone: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Xml,
    Json,
    Yaml,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Xml => Format::PentabarfXml,
            FormatArg::Json => Format::FrabJson,
            FormatArg::Yaml => Format::Yaml,
        }
    }
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("stagehand=info,warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Option<Config>> {
    let Some(path) = path else { return Ok(None) };
    let (config, warnings) = Config::from_file(path)?;
    for w in warnings {
        eprintln!("warning: {}: {w}", path.display());
    }
    Ok(Some(config))
}

fn parse_tz(tz: Option<&str>) -> anyhow::Result<Option<chrono_tz::Tz>> {
    tz.map(|t| t.parse::<chrono_tz::Tz>().map_err(|_| anyhow::anyhow!("--timezone {t:?} is not an IANA timezone")))
        .transpose()
}

fn request(input: &Input, config: Option<&Config>) -> anyhow::Result<LoadRequest> {
    let source = match (&input.schedule, config.and_then(|c| c.schedule.source.clone())) {
        (Some(s), _) => s.clone(),
        (None, Some(s)) => s,
        (None, None) => bail!("no schedule given: pass a file or URL, or set schedule.source in the config"),
    };
    Ok(LoadRequest {
        source,
        people: input.people.clone(),
        format: input.format.map(Into::into),
        timezone: parse_tz(input.timezone.as_deref())?,
    })
}

/// A config for commands run without one: the conference's own id and a placeholder server name.
fn fallback_config(parsed: &Parsed) -> anyhow::Result<Config> {
    let yaml = format!(
        "conference: {{id: {:?}}}\nhomeserver: {{server_name: example.org}}\n",
        stagehand::plan::alias_safe(&parsed.conference.id)
    );
    Ok(Config::parse("(built-in)", &yaml)?.0)
}

fn print_findings(parsed: &Parsed) {
    for f in parsed.errors().chain(parsed.warnings()) {
        eprintln!("{f}");
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { input, json } => {
            let config = load_config(input.config.as_ref())?;
            let req = request(&input, config.as_ref())?;
            let result = load(&req, config.as_ref()).await;
            if json {
                let report = match &result {
                    Ok(p) => serde_json::json!({
                        "format": p.format.name(),
                        "days": p.conference.days.len(),
                        "rooms": p.conference.rooms.len(),
                        "tracks": p.conference.tracks.len(),
                        "talks": p.conference.talks.len(),
                        "people": p.conference.people.len(),
                        "errors": p.errors().collect::<Vec<_>>(),
                        "warnings": p.warnings().collect::<Vec<_>>(),
                    }),
                    Err(e) => serde_json::json!({
                        "format": null, "days": 0, "rooms": 0, "tracks": 0, "talks": 0, "people": 0,
                        "errors": [e.to_finding()], "warnings": [],
                    }),
                };
                println!("{}", serde_json::to_string(&report)?);
            }
            match result {
                Ok(p) => {
                    let errors = p.errors().count();
                    if !json {
                        print_findings(&p);
                        let c = &p.conference;
                        println!(
                            "{}: {} ({}), {} days, {} rooms, {} tracks, {} talks, {} people: {} errors, {} warnings",
                            req.source,
                            c.title,
                            p.format.name(),
                            c.days.len(),
                            c.rooms.len(),
                            c.tracks.len(),
                            c.talks.len(),
                            c.people.len(),
                            errors,
                            p.warnings().count()
                        );
                    }
                    Ok(if errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
                }
                Err(e) => {
                    if !json {
                        eprintln!("error: {e}");
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Plan { input, json } => {
            let config = load_config(input.config.as_ref())?;
            let req = request(&input, config.as_ref())?;
            let parsed = load(&req, config.as_ref()).await.with_context(|| format!("cannot read {}", req.source))?;
            let config = match config {
                Some(c) => c,
                None => fallback_config(&parsed)?,
            };
            let errors = parsed.errors().count();
            print_findings(&parsed);
            let p = plan::plan(&parsed.conference, &config);
            for w in &p.warnings {
                eprintln!("warning: plan: {w}");
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                print!("{}", plan::render_tree(&p));
            }
            Ok(if errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::Diff { old, new, config, people, format, timezone, json } => {
            let config = load_config(config.as_ref())?;
            let tz = parse_tz(timezone.as_deref())?;
            let mk = |source: &str| LoadRequest {
                source: source.to_string(),
                people: people.clone(),
                format: format.map(Into::into),
                timezone: tz,
            };
            let a = load(&mk(&old), config.as_ref()).await.with_context(|| format!("cannot read {old}"))?;
            let b = load(&mk(&new), config.as_ref()).await.with_context(|| format!("cannot read {new}"))?;
            let changes = diff::diff(&a.conference, &b.conference);
            if json {
                println!("{}", serde_json::to_string_pretty(&changes)?);
            } else {
                for c in &changes {
                    let arrow = match (&c.from, &c.to) {
                        (Some(f), Some(t)) => format!(": {f} -> {t}"),
                        (Some(f), None) => format!(": was {f}"),
                        (None, Some(t)) => format!(": {t}"),
                        (None, None) => String::new(),
                    };
                    println!("{:<13} {} {:?}{arrow}", c.kind.label(), c.talk, c.title);
                }
                let summary: Vec<String> =
                    diff::summary(&changes).iter().map(|(k, n)| format!("{n} {}", k.label())).collect();
                println!(
                    "{} talks -> {} talks: {}",
                    a.conference.talks.len(),
                    b.conference.talks.len(),
                    if summary.is_empty() { "no changes".to_string() } else { summary.join(", ") }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
