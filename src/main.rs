//! The command line: a thin shell over the library. Prints, sets exit codes, nothing else.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use stagehand::config::Config;
use stagehand::load::{LoadRequest, load};
use stagehand::matrix::attendance;
use stagehand::matrix::client::{Credentials, Homeserver};
use stagehand::matrix::identity::IdentityOptions;
use stagehand::matrix::reconcile::{MemberAction, Options, Report, Scope, Status, reconcile};
use stagehand::plan;
use stagehand::plan::widgets::WidgetContext;
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
    /// Show the spaces and rooms the schedule will produce; with --homeserver, what would change on the live
    /// server (create / update / unchanged, with the fields that differ), without writing.
    Plan {
        #[command(flatten)]
        input: Input,
        /// Compare with this homeserver (or homeserver.url from the config) instead of printing the offline tree.
        #[arg(long, num_args = 0..=1, default_missing_value = "")]
        homeserver: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Build or update the conference on the homeserver: create what is missing, change what differs.
    Apply {
        #[command(flatten)]
        input: Input,
        /// Homeserver URL; defaults to homeserver.url from the config.
        #[arg(long)]
        homeserver: Option<String>,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Invite the people the schedule puts in each existing room (by Matrix ID, or by e-mail through the identity
    /// server), set their power, withdraw what the schedule no longer wants. Builds nothing; `apply` does this too.
    Invite {
        #[command(flatten)]
        input: Input,
        /// Homeserver URL; defaults to homeserver.url from the config.
        #[arg(long)]
        homeserver: Option<String>,
        /// Say what would be sent, send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Who joined their talk rooms and backstages, who is invited, who cannot be reached: per talk and per track.
    Attendance {
        #[command(flatten)]
        input: Input,
        #[arg(long)]
        homeserver: Option<String>,
        /// One CSV row per person and room on stdout.
        #[arg(long)]
        csv: bool,
    },
    /// Serve the widget pages, their JSON, the conference home page and /healthz.
    Serve {
        #[command(flatten)]
        input: Input,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Print an application service registration (with fresh tokens) for the config's homeserver.
    AppserviceRegistration {
        #[arg(long)]
        config: PathBuf,
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
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("stagehand=info,matrix_sdk=off,warn"));
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

async fn load_with_config(input: &Input) -> anyhow::Result<(Parsed, Config)> {
    let config = load_config(input.config.as_ref())?
        .context("building on a homeserver needs a config (--config): conference id, server name, credentials")?;
    let req = request(input, Some(&config))?;
    let parsed = load(&req, Some(&config)).await.with_context(|| format!("cannot read {}", stagehand::source::shown(&req.source)))?;
    print_findings(&parsed);
    Ok((parsed, config))
}

/// `plan --homeserver` (dry run) and `apply`: load, plan, reconcile, report.
async fn build(input: &Input, url: &str, json: bool, dry_run: bool, scope: Scope) -> anyhow::Result<ExitCode> {
    let (parsed, config) = load_with_config(input).await?;
    if !dry_run && parsed.errors().count() > 0 {
        bail!("the schedule has errors (see above); fix them before building");
    }
    let url = homeserver_url(url, &config)?;
    let p = plan::plan(&parsed.conference, &config);
    let hs = connect(&url, &config).await?;
    let mut opts = options(&config, dry_run);
    opts.scope = scope;
    if scope == Scope::Members {
        opts.invite = true;
    }
    if config.widgets.enabled {
        opts.widgets = Some(WidgetContext {
            conference: config.conference.id.clone(),
            bot: hs.user_id.clone(),
            config: config.widgets.clone(),
            secret: widget_secret(&config)?,
        });
    }
    let report = reconcile(&hs, &p, &opts).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, dry_run);
    }
    Ok(if report.failed > 0 || report.membership_failures > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The widget secret: STAGEHAND_WIDGET_SECRET, else `widgets.secret_file` (default `.stagehand/widget-secret`),
/// created with 32 random bytes the first time. Keep it: Jitsi rooms and page tokens derive from it.
fn widget_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    let strong = |s: &str, from: &str| -> anyhow::Result<Vec<u8>> {
        if s.trim().len() < 16 {
            bail!("the widget secret from {from} is shorter than 16 characters; Jitsi rooms and page tokens would be guessable");
        }
        Ok(s.trim().as_bytes().to_vec())
    };
    if let Ok(s) = std::env::var("STAGEHAND_WIDGET_SECRET") {
        return strong(&s, "STAGEHAND_WIDGET_SECRET");
    }
    let path = config.widgets.secret_file.clone().unwrap_or_else(|| PathBuf::from(".stagehand/widget-secret"));
    if let Ok(s) = std::fs::read_to_string(&path) {
        return strong(&s, &path.display().to_string());
    }
    use rand::Rng;
    let secret: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(48).map(char::from).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(&path) {
        Ok(f) => f,
        // Another run created it a moment ago: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Give the other run a moment to finish writing it.
            for _ in 0..20 {
                let s = std::fs::read_to_string(&path)?;
                if s.trim().len() >= 16 {
                    return Ok(s.trim().as_bytes().to_vec());
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            return strong(&std::fs::read_to_string(&path)?, &path.display().to_string());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create the widget secret {}", path.display())),
    };
    std::io::Write::write_all(&mut file, secret.as_bytes())?;
    eprintln!("created the widget secret {} (keep it: Jitsi rooms and page tokens derive from it)", path.display());
    Ok(secret.into_bytes())
}

fn homeserver_url(given: &str, config: &Config) -> anyhow::Result<String> {
    if !given.is_empty() {
        return Ok(given.to_string());
    }
    config.homeserver.url.clone().context("no homeserver URL: pass --homeserver URL or set homeserver.url")
}

async fn connect(url: &str, config: &Config) -> anyhow::Result<Homeserver> {
    let credentials = Credentials::from_config(&config.homeserver, |k| std::env::var(k).ok())?;
    let hs = Homeserver::connect(url, &credentials).await?;
    if hs.server_name != config.homeserver.server_name {
        eprintln!(
            "warning: the bot is {} but homeserver.server_name is {}; aliases use the config's server name",
            hs.user_id, config.homeserver.server_name
        );
    }
    Ok(hs)
}

fn options(config: &Config, dry_run: bool) -> Options {
    Options {
        room_version: config.homeserver.room_version.clone(),
        concurrency: config.homeserver.concurrency,
        dry_run,
        kick_removed: config.people.kick_removed,
        widgets: None,
        invite: config.people.invite,
        max_cancel: None,
        identity_server: config.people.identity_server.as_ref().map(|i| IdentityOptions { server: i.server.clone(), url: i.url.clone(), accept_terms: i.accept_terms }),
        scope: Scope::All,
    }
}

fn print_report(report: &Report, dry_run: bool) {
    for o in &report.objects {
        let id = o.room_id.as_deref().unwrap_or("-");
        match &o.status {
            Status::Unchanged => {}
            Status::Create => println!("{:<10} {} {}", if dry_run { "create" } else { "created" }, o.key, o.alias),
            Status::Update { changes } => {
                println!("{:<10} {} {} {id}", if dry_run { "update" } else { "updated" }, o.key, o.alias);
                for c in changes {
                    let from = c.from.as_ref().map_or("(none)".to_string(), |v| v.to_string());
                    println!("           {} [{}]: {from} -> {}", c.event_type, c.state_key, c.to);
                }
            }
            Status::Cancelled => println!("{:<10} {} {id}", "cancelled", o.key),
            Status::Foreign { reason } => println!("{:<10} {} {reason}", "foreign", o.key),
            Status::Failed { error } => println!("{:<10} {} {error}", "FAILED", o.key),
        }
    }
    for m in &report.memberships {
        let action = if dry_run && m.action != MemberAction::Declined { format!("{} (dry run)", m.action.label()) } else { m.action.label().to_string() };
        println!("{action:<10} {} {}{}", m.user_id, m.room, m.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default());
    }
    println!("{}{}", if dry_run { "dry run: " } else { "" }, report.summary());
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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
                            stagehand::source::shown(&req.source),
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
        Command::Plan { input, homeserver: Some(url), json } => build(&input, &url, json, true, Scope::All).await,
        Command::Apply { input, homeserver, json } => build(&input, homeserver.as_deref().unwrap_or(""), json, false, Scope::All).await,
        Command::Invite { input, homeserver, dry_run, json } => {
            build(&input, homeserver.as_deref().unwrap_or(""), json, dry_run, Scope::Members).await
        }
        Command::Attendance { input, homeserver, csv } => {
            let (parsed, config) = load_with_config(&input).await?;
            let url = homeserver_url(homeserver.as_deref().unwrap_or(""), &config)?;
            let p = plan::plan(&parsed.conference, &config);
            let hs = connect(&url, &config).await?;
            let seen = attendance::read(&hs, &p).await?;
            let rows = attendance::rows(&p, &seen);
            if csv {
                print!("{}", attendance::csv(&rows)?);
                return Ok(ExitCode::SUCCESS);
            }
            let line = |s: &attendance::Summary| {
                format!(
                    "{}/{} joined ({:.0}%), {} invited, {} e-mail invited, {} declined, {} not invited, {} uncontactable",
                    s.joined,
                    s.total,
                    s.percent(s.joined),
                    s.invited,
                    s.email_invited,
                    s.declined,
                    s.not_invited,
                    s.uncontactable
                )
            };
            for s in attendance::summarise(&rows, |r| r.room.as_str()) {
                let missing: Vec<String> = rows
                    .iter()
                    .filter(|r| r.room == s.group && r.presence != attendance::Presence::Joined)
                    .map(|r| format!("{} ({})", r.name, r.presence.label()))
                    .collect();
                println!("{:<50} {}{}", s.group, line(&s), if missing.is_empty() { String::new() } else { format!(": missing {}", missing.join(", ")) });
            }
            for s in attendance::summarise(&rows, |r| r.track.as_str()) {
                println!("track {:<44} {}", s.group, line(&s));
            }
            if let Some(s) = attendance::summarise(&rows, |_| "all").first() {
                println!("all: {}", line(s));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { input, listen } => {
            let (parsed, config) = load_with_config(&input).await?;
            let plan = plan::plan(&parsed.conference, &config);
            let widgets = WidgetContext {
                conference: config.conference.id.clone(),
                bot: String::new(),
                config: config.widgets.clone(),
                secret: widget_secret(&config)?,
            };
            let site = std::sync::Arc::new(stagehand::web::Site {
                conference: parsed.conference,
                plan,
                widgets,
                clock: std::sync::Arc::new(chrono::Utc::now),
            });
            let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
            eprintln!("serving on http://{listen} (home page /, health /healthz); Ctrl-C stops");
            stagehand::web::serve(site, listener, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::AppserviceRegistration { config } => {
            let config = load_config(Some(&config))?.context("no config")?;
            let localpart = config.homeserver.bot_localpart.clone().unwrap_or_else(|| "stagehand".into());
            print!(
                "{}",
                stagehand::matrix::client::appservice_registration(
                    &config.homeserver.server_name,
                    &localpart,
                    &config.conference.id
                )
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { input, homeserver: None, json } => {
            let config = load_config(input.config.as_ref())?;
            let req = request(&input, config.as_ref())?;
            let parsed = load(&req, config.as_ref()).await.with_context(|| format!("cannot read {}", stagehand::source::shown(&req.source)))?;
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
            let a = load(&mk(&old), config.as_ref()).await.with_context(|| format!("cannot read {}", stagehand::source::shown(&old)))?;
            let b = load(&mk(&new), config.as_ref()).await.with_context(|| format!("cannot read {}", stagehand::source::shown(&new)))?;
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
