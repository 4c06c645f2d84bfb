//! Secrets: the bot's credentials, the widget secret and the organisers' token (for `/status`), read from the environment or from files the config names,
//! never from the config file itself.
//!
//! Owns where each secret comes from and in what order, and the creation of the widget secret on first use. It
//! must not log or print a secret (the values' `Debug` hides them), talk to the homeserver, or decide what a secret
//! is used for: [`Credentials`] belong to the matrix layer, the widget secret to the plan's widgets.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::Rng;

use crate::config::{HomeserverConfig, OperationsConfig, WidgetsConfig};
use crate::matrix::client::Credentials;

/// The environment variable that overrides `widgets.secret_file`.
pub const WIDGET_SECRET_ENV: &str = "STAGEHAND_WIDGET_SECRET";

/// The environment variable that overrides `operations.organiser_token_file`.
pub const ORGANISER_TOKEN_ENV: &str = "STAGEHAND_ORGANISER_TOKEN";

/// Fewer characters than this and Jitsi rooms and page tokens would be guessable.
const MIN_WIDGET_SECRET: usize = 16;

/// Characters of a widget secret Stagehand creates (alphanumeric: about 285 bits).
const NEW_WIDGET_SECRET: usize = 48;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "no credentials: set STAGEHAND_ACCESS_TOKEN, or STAGEHAND_USER and STAGEHAND_PASSWORD, or \
         homeserver.access_token_file or homeserver.appservice_registration in the config"
    )]
    NoCredentials,
    #[error("{}: cannot read the {what}: {error}", path.display())]
    Unreadable { path: PathBuf, what: &'static str, error: std::io::Error },
    #[error("{}: not a registration file: {error}", path.display())]
    NotARegistration { path: PathBuf, error: String },
    #[error("{}: no as_token", path.display())]
    NoAsToken { path: PathBuf },
    #[error("{}: no hs_token (the application service cannot check who pushes transactions)", path.display())]
    NoHsToken { path: PathBuf },
    #[error(
        "the widget secret from {from} is shorter than {MIN_WIDGET_SECRET} characters; Jitsi rooms and page tokens \
         would be guessable"
    )]
    WeakWidgetSecret { from: String },
    #[error(
        "the organisers' token from {from} is shorter than {MIN_WIDGET_SECRET} characters; the status page would be \
         guessable"
    )]
    WeakOrganiserToken { from: String },
    #[error("cannot create {}: {error}", dir.display())]
    CreateDir { dir: PathBuf, error: std::io::Error },
    #[error("cannot create the widget secret {}: {error}", path.display())]
    CreateWidgetSecret { path: PathBuf, error: std::io::Error },
}

/// Credentials from the config and the environment, in this order: an appservice registration, an access token
/// (STAGEHAND_ACCESS_TOKEN or `homeserver.access_token_file`), a user and password (STAGEHAND_USER,
/// STAGEHAND_PASSWORD).
pub fn credentials(hs: &HomeserverConfig, env: impl Fn(&str) -> Option<String>) -> Result<Credentials, SecretError> {
    if let Some(path) = &hs.appservice_registration {
        return appservice_token(path).map(|as_token| Credentials::AppService { as_token });
    }
    if let Some(token) = env("STAGEHAND_ACCESS_TOKEN").filter(|t| !t.is_empty()) {
        return Ok(Credentials::AccessToken(token));
    }
    if let Some(path) = &hs.access_token_file {
        let token = read(path, "access token")?;
        return Ok(Credentials::AccessToken(token.trim().to_string()));
    }
    if let (Some(user), Some(password)) = (env("STAGEHAND_USER"), env("STAGEHAND_PASSWORD")) {
        return Ok(Credentials::Password { user, password, session_file: hs.session_path() });
    }
    Err(SecretError::NoCredentials)
}

fn read(path: &Path, what: &'static str) -> Result<String, SecretError> {
    std::fs::read_to_string(path).map_err(|error| SecretError::Unreadable { path: path.to_path_buf(), what, error })
}

/// The `as_token` of an application service registration file.
fn appservice_token(path: &Path) -> Result<String, SecretError> {
    registration(path)?["as_token"].as_str().map(str::to_string).ok_or_else(|| SecretError::NoAsToken { path: path.to_path_buf() })
}

/// The `hs_token` of the configured application service registration (what the homeserver shows when it pushes
/// transactions), or `None` when Stagehand does not run as an application service.
pub fn appservice_hs_token(hs: &HomeserverConfig) -> Result<Option<String>, SecretError> {
    let Some(path) = &hs.appservice_registration else { return Ok(None) };
    let token = registration(path)?["hs_token"].as_str().map(str::to_string);
    token.map(Some).ok_or_else(|| SecretError::NoHsToken { path: path.to_path_buf() })
}

fn registration(path: &Path) -> Result<serde_json::Value, SecretError> {
    let text = read(path, "registration")?;
    yaml_serde::from_str(&text).map_err(|e| SecretError::NotARegistration { path: path.to_path_buf(), error: e.to_string() })
}

/// Compares a secret someone presented with the expected one in constant time, so that it cannot be found byte by
/// byte from response times.
pub fn same_secret(presented: &str, expected: &str) -> bool {
    presented.len() == expected.len() && presented.bytes().zip(expected.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The organisers' token that opens `/status`. Its `Debug` does not show it.
#[derive(Clone)]
pub struct OrganiserToken(String);

impl OrganiserToken {
    /// Whether someone presented this token (compared in constant time).
    pub fn matches(&self, presented: &str) -> bool {
        same_secret(presented, &self.0)
    }

    /// The token itself, to present it (`stagehand status --url`); never print it.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OrganiserToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OrganiserToken(hidden)")
    }
}

/// The organisers' token: STAGEHAND_ORGANISER_TOKEN, else the file `operations.organiser_token_file`; `None` when
/// neither is set (then there is no `/status` page). At least 16 characters.
pub fn organiser_token(ops: &OperationsConfig, env: impl Fn(&str) -> Option<String>) -> Result<Option<OrganiserToken>, SecretError> {
    let (value, from) = match (env(ORGANISER_TOKEN_ENV).filter(|t| !t.trim().is_empty()), &ops.organiser_token_file) {
        (Some(value), _) => (value, ORGANISER_TOKEN_ENV.to_string()),
        (None, Some(path)) => (read(path, "organisers' token")?, path.display().to_string()),
        (None, None) => return Ok(None),
    };
    let value = value.trim();
    if value.len() < MIN_WIDGET_SECRET {
        return Err(SecretError::WeakOrganiserToken { from });
    }
    Ok(Some(OrganiserToken(value.to_string())))
}

/// The secret that Jitsi conference ids and backstage page tokens derive from. Its `Debug` does not show it.
pub struct WidgetSecret {
    bytes: Vec<u8>,
    /// The file this run created it in, if it did (tell the organiser to keep it).
    created: Option<PathBuf>,
}

impl WidgetSecret {
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The file this run created the secret in; `None` when it came from the environment or an existing file.
    pub fn created(&self) -> Option<&Path> {
        self.created.as_deref()
    }
}

impl fmt::Debug for WidgetSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WidgetSecret").field("bytes", &"(hidden)").field("created", &self.created).finish()
    }
}

/// The widget secret: STAGEHAND_WIDGET_SECRET, else the file `widgets.secret_file` (default
/// `.stagehand/widget-secret`), created with a random secret the first time. Keep it: Jitsi rooms and page tokens
/// derive from it.
pub fn widget_secret(widgets: &WidgetsConfig, env: impl Fn(&str) -> Option<String>) -> Result<WidgetSecret, SecretError> {
    match env(WIDGET_SECRET_ENV) {
        Some(value) => Ok(WidgetSecret { bytes: strong(&value, WIDGET_SECRET_ENV)?, created: None }),
        None => widget_secret_file(&widgets.secret_path()),
    }
}

/// Reads the widget secret at `path`, or creates it there. Runs that start at once on a fresh directory all end up
/// with the same, complete secret: the new secret is written to a temp file of its own and then hard-linked to
/// `path`, which fails if another run linked first (then theirs is read). An existing secret is never replaced.
pub fn widget_secret_file(path: &Path) -> Result<WidgetSecret, SecretError> {
    if let Some(existing) = read_widget_secret(path)? {
        return Ok(WidgetSecret { bytes: existing, created: None });
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    std::fs::create_dir_all(dir).map_err(|error| SecretError::CreateDir { dir: dir.to_path_buf(), error })?;
    let secret: String =
        rand::rng().sample_iter(rand::distr::Alphanumeric).take(NEW_WIDGET_SECRET).map(char::from).collect();
    let create_error = |error| SecretError::CreateWidgetSecret { path: path.to_path_buf(), error };
    let temp = temp_name(path);
    let linked = write_private(&temp, secret.as_bytes()).and_then(|()| std::fs::hard_link(&temp, path));
    // The temp file is only a name for the inode `path` now has (or for nothing, when another run won).
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(WidgetSecret { bytes: secret.into_bytes(), created: Some(path.to_path_buf()) }),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read_widget_secret(path)? {
            Some(theirs) => Ok(WidgetSecret { bytes: theirs, created: None }),
            None => Err(create_error(e)),
        },
        Err(e) => Err(create_error(e)),
    }
}

/// The secret in `path`, `None` if there is no such file. A file is only ever complete (see
/// [`widget_secret_file`]), so a short one is refused, not waited for.
fn read_widget_secret(path: &Path) -> Result<Option<Vec<u8>>, SecretError> {
    match std::fs::read_to_string(path) {
        Ok(text) => strong(&text, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(SecretError::Unreadable { path: path.to_path_buf(), what: "widget secret", error }),
    }
}

fn strong(value: &str, from: &str) -> Result<Vec<u8>, SecretError> {
    let value = value.trim();
    if value.len() < MIN_WIDGET_SECRET {
        return Err(SecretError::WeakWidgetSecret { from: from.to_string() });
    }
    Ok(value.as_bytes().to_vec())
}

/// A name next to `path` that no other run uses.
fn temp_name(path: &Path) -> PathBuf {
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let nonce: u64 = rand::rng().random();
    path.with_file_name(format!(".{file}.{}-{nonce:016x}.tmp", std::process::id()))
}

/// Writes a new file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};
    use std::time::{Duration, Instant};

    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// Regression: two runs on a fresh clone created the secret at once; the second could read the first's empty
    /// file (between its `create_new` and `write_all`) and stop with "shorter than 16 characters". Many runs arrive
    /// a little apart (so that some come while another is creating the file, and the spinning ones preempt it), on a
    /// fresh directory, round after round: every run gets the same complete secret, one of them created it.
    #[test]
    fn runs_at_once_on_a_fresh_directory_share_one_complete_secret() {
        const RUNS: usize = 16;
        const APART: Duration = Duration::from_micros(50);
        for round in 0..300 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(".stagehand/widget-secret");
            let start = Arc::new(Barrier::new(RUNS));
            let runs: Vec<_> = (0..RUNS as u32)
                .map(|i| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        let arrive = Instant::now() + APART * i;
                        while Instant::now() < arrive {
                            std::hint::spin_loop();
                        }
                        widget_secret_file(&path)
                    })
                })
                .collect();
            let secrets: Vec<WidgetSecret> =
                runs.into_iter().map(|r| r.join().unwrap().unwrap_or_else(|e| panic!("round {round}: {e}"))).collect();
            let on_disk = std::fs::read(&path).unwrap();
            assert_eq!(on_disk.len(), NEW_WIDGET_SECRET, "round {round}");
            assert!(secrets.iter().all(|s| s.bytes == on_disk), "round {round}: runs disagree on the secret");
            assert_eq!(secrets.iter().filter(|s| s.created().is_some()).count(), 1, "round {round}: one run creates it");
            let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
            assert_eq!(left.len(), 1, "round {round}: temp files left behind");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_created_secret_is_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let first = widget_secret_file(&path).unwrap();
        assert_eq!(first.created(), Some(path.as_path()));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let again = widget_secret_file(&path).unwrap();
        assert_eq!(again.created(), None);
        assert_eq!(again.bytes, first.bytes);
    }

    #[test]
    fn the_environment_overrides_the_file_and_short_secrets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let widgets = WidgetsConfig { secret_file: Some(dir.path().join("s")), ..WidgetsConfig::default() };
        let env = |v: &'static str| move |k: &str| (k == WIDGET_SECRET_ENV).then(|| v.to_string());
        assert_eq!(widget_secret(&widgets, env(" 0123456789abcdef\n")).unwrap().into_bytes(), b"0123456789abcdef");
        assert!(!dir.path().join("s").exists(), "no file when the environment gives the secret");
        let err = widget_secret(&widgets, env("short")).unwrap_err().to_string();
        assert_eq!(err, "the widget secret from STAGEHAND_WIDGET_SECRET is shorter than 16 characters; Jitsi rooms and page tokens would be guessable");
        std::fs::write(dir.path().join("s"), "").unwrap();
        assert!(matches!(widget_secret(&widgets, no_env), Err(SecretError::WeakWidgetSecret { .. })));
        assert!(!format!("{:?}", widget_secret(&widgets, env("0123456789abcdef")).unwrap()).contains("0123"));
    }

    #[test]
    fn credentials_in_order_registration_token_file_password() {
        let dir = tempfile::tempdir().unwrap();
        let reg = dir.path().join("reg.yaml");
        std::fs::write(&reg, "as_token: as-secret\nhs_token: x\n").unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "file-token\n").unwrap();
        let hs: HomeserverConfig =
            yaml_serde::from_str(&format!("{{server_name: e.org, access_token_file: {}}}", token.display())).unwrap();
        let env = |k: &str| match k {
            "STAGEHAND_USER" => Some("bot".to_string()),
            "STAGEHAND_PASSWORD" => Some("pw".to_string()),
            _ => None,
        };
        assert!(matches!(credentials(&hs, env), Ok(Credentials::AccessToken(t)) if t == "file-token"));
        let with_env_token = |k: &str| (k == "STAGEHAND_ACCESS_TOKEN").then(|| "env-token".to_string());
        assert!(matches!(credentials(&hs, with_env_token), Ok(Credentials::AccessToken(t)) if t == "env-token"));
        let as_hs = HomeserverConfig { appservice_registration: Some(reg), ..hs.clone() };
        assert!(matches!(credentials(&as_hs, with_env_token), Ok(Credentials::AppService { as_token }) if as_token == "as-secret"));
        let bare = HomeserverConfig { access_token_file: None, ..hs };
        assert!(matches!(credentials(&bare, env), Ok(Credentials::Password { session_file, .. }) if session_file == Path::new(".stagehand/session.json")));
        assert!(matches!(credentials(&bare, no_env), Err(SecretError::NoCredentials)));
    }

    #[test]
    fn the_hs_token_comes_from_the_registration() {
        let dir = tempfile::tempdir().unwrap();
        let reg = dir.path().join("reg.yaml");
        std::fs::write(&reg, "as_token: a\nhs_token: hs-secret\n").unwrap();
        let hs: HomeserverConfig = yaml_serde::from_str("{server_name: e.org}").unwrap();
        assert_eq!(appservice_hs_token(&hs).unwrap(), None);
        let as_hs = HomeserverConfig { appservice_registration: Some(reg.clone()), ..hs };
        assert_eq!(appservice_hs_token(&as_hs).unwrap().as_deref(), Some("hs-secret"));
        std::fs::write(&reg, "as_token: a\n").unwrap();
        let err = appservice_hs_token(&as_hs).unwrap_err().to_string();
        assert!(err.ends_with("no hs_token (the application service cannot check who pushes transactions)"), "{err}");
    }

    #[test]
    fn the_organisers_token_comes_from_the_environment_or_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("organisers");
        std::fs::write(&file, "from-the-file-0123456789\n").unwrap();
        let ops = OperationsConfig { organiser_token_file: Some(file.clone()), ..OperationsConfig::default() };
        let env = |v: &'static str| move |k: &str| (k == ORGANISER_TOKEN_ENV).then(|| v.to_string());
        assert!(organiser_token(&OperationsConfig::default(), no_env).unwrap().is_none(), "no token: no page");
        let from_file = organiser_token(&ops, no_env).unwrap().unwrap();
        assert!(from_file.matches("from-the-file-0123456789") && !from_file.matches("from-the-file-012345678"));
        assert_eq!(organiser_token(&ops, env("from-the-environment-01")).unwrap().unwrap().reveal(), "from-the-environment-01");
        assert_eq!(format!("{from_file:?}"), "OrganiserToken(hidden)");
        let err = organiser_token(&ops, env("short")).unwrap_err().to_string();
        assert!(err.starts_with("the organisers' token from STAGEHAND_ORGANISER_TOKEN is shorter than 16"), "{err}");
        std::fs::remove_file(&file).unwrap();
        assert!(matches!(organiser_token(&ops, no_env), Err(SecretError::Unreadable { .. })));
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "abc"));
    }
}
