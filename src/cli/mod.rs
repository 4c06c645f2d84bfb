//! The commands, one module each: every command parses its own flags (a clap `Args` struct), turns flags and config
//! into its options once, calls the library and prints through [`print`]. This module holds what several commands
//! share: the schedule arguments, reading the config, loading the schedule, connecting, the widget context.
//!
//! Lives in the binary, not the library: `anyhow`, clap and printing stop here. It must not decide anything the
//! library decides (what to build, invite or send), nor read secrets itself ([`stagehand::secrets`] does).

pub mod appservice_registration;
pub mod apply;
pub mod attendance;
pub mod build;
pub mod diff;
pub mod invite;
pub mod listen;
pub mod manage;
pub mod plan;
pub mod problems;
pub mod print;
pub mod run;
pub mod serve;
pub mod status;
pub mod validate;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ValueEnum;
use stagehand::config::Config;
use stagehand::load::{LoadRequest, load};
use stagehand::matrix::client::Homeserver;
use stagehand::plan::widgets::WidgetContext;
use stagehand::schedule::{Format, Parsed};
use stagehand::secrets;
use stagehand::source::shown;

/// The schedule a command reads, and how.
#[derive(clap::Args)]
pub struct ScheduleArgs {
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

/// The schedule and the homeserver a command works on.
#[derive(clap::Args)]
pub struct ServerArgs {
    #[command(flatten)]
    pub input: ScheduleArgs,
    /// Homeserver URL; defaults to homeserver.url from the config.
    #[arg(long)]
    pub homeserver: Option<String>,
}

/// `--format`: the schedule readers by the names the flag has always taken.
#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
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

impl ScheduleArgs {
    /// The config named by `--config`, if any.
    pub fn config(&self) -> anyhow::Result<Option<Config>> {
        self.config.as_deref().map(read_config).transpose()
    }

    /// The config, required: commands that work on a homeserver or serve its widgets need one.
    pub fn required_config(&self) -> anyhow::Result<Config> {
        self.config()?
            .context("building on a homeserver needs a config (--config): conference id, server name, credentials")
    }

    /// What to load: flags first, then the config's `schedule.source`.
    pub fn request(&self, config: Option<&Config>) -> anyhow::Result<LoadRequest> {
        let source = match (&self.schedule, config.and_then(|c| c.schedule.source.clone())) {
            (Some(s), _) => s.clone(),
            (None, Some(s)) => s,
            (None, None) => bail!("no schedule given: pass a file or URL, or set schedule.source in the config"),
        };
        Ok(LoadRequest {
            source,
            people: self.people.clone(),
            format: self.format.map(Into::into),
            timezone: parse_tz(self.timezone.as_deref())?,
        })
    }
}

/// Reads a config file; its warnings go to stderr.
pub fn read_config(path: &Path) -> anyhow::Result<Config> {
    let (config, warnings) = Config::from_file(path)?;
    for w in warnings {
        eprintln!("warning: {}: {w}", path.display());
    }
    Ok(config)
}

pub fn parse_tz(tz: Option<&str>) -> anyhow::Result<Option<chrono_tz::Tz>> {
    tz.map(|t| t.parse::<chrono_tz::Tz>().map_err(|_| anyhow::anyhow!("--timezone {t:?} is not an IANA timezone")))
        .transpose()
}

/// Loads the schedule; a schedule that cannot be read at all is an error naming its source.
pub async fn load_schedule(req: &LoadRequest, config: Option<&Config>) -> anyhow::Result<Parsed> {
    load(req, config).await.with_context(|| format!("cannot read {}", shown(&req.source)))
}

/// Loads the schedule and prints what validation found.
pub async fn load_and_report(req: &LoadRequest, config: &Config) -> anyhow::Result<Parsed> {
    let parsed = load_schedule(req, Some(config)).await?;
    eprint!("{}", print::findings(&parsed));
    Ok(parsed)
}

/// The homeserver URL: `--homeserver`, else `homeserver.url`.
pub fn homeserver_url(given: Option<&str>, config: &Config) -> anyhow::Result<String> {
    match given.filter(|g| !g.is_empty()) {
        Some(url) => Ok(url.to_string()),
        None => config.homeserver.url.clone().context("no homeserver URL: pass --homeserver URL or set homeserver.url"),
    }
}

/// Logs in with the credentials the environment and config give.
pub async fn connect(url: &str, config: &Config) -> anyhow::Result<Homeserver> {
    let credentials = secrets::credentials(&config.homeserver, |k| std::env::var(k).ok())?;
    let hs = Homeserver::connect(url, &credentials).await?;
    if hs.server_name != config.homeserver.server_name {
        eprintln!(
            "warning: the bot is {} but homeserver.server_name is {}; aliases use the config's server name",
            hs.user_id, config.homeserver.server_name
        );
    }
    Ok(hs)
}

/// What widget content depends on: the conference, the bot and the widget secret (created on first use).
pub fn widget_context(config: &Config, bot: &str) -> anyhow::Result<WidgetContext> {
    let secret = secrets::widget_secret(&config.widgets, |k| std::env::var(k).ok())?;
    if let Some(path) = secret.created() {
        eprintln!("created the widget secret {} (keep it: Jitsi rooms and page tokens derive from it)", path.display());
    }
    Ok(WidgetContext {
        conference: config.conference.id.clone(),
        bot: bot.to_string(),
        config: config.widgets.clone(),
        secret: secret.into_bytes(),
    })
}

/// Exit status 1 when something failed, else success.
pub fn exit_code(failed: bool) -> std::process::ExitCode {
    if failed { std::process::ExitCode::from(1) } else { std::process::ExitCode::SUCCESS }
}
