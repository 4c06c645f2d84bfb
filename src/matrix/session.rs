//! Authentication: an access token, a user and password with the session kept on disk (so a restart reuses the
//! device), or an application service token; and the application service registration Stagehand can write.
//! Secrets are read by `crate::secrets`; nothing here logs them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use matrix_sdk::authentication::SessionTokens;
use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::{Client, SessionMeta};
use serde_json::Value;

use super::client::{MatrixError, user_id_of};

/// How Stagehand authenticates. Its `Debug` shows the kind and the user, never a token or password.
#[derive(Clone)]
pub enum Credentials {
    /// An access token (from the environment or a file).
    AccessToken(String),
    /// User and password; the session is kept in `session_file` so a restart reuses the device.
    Password { user: String, password: String, session_file: PathBuf },
    /// An application service's `as_token`: requests act as the registration's `sender_localpart` user and are
    /// not rate-limited when the registration says `rate_limited: false`.
    AppService { as_token: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::AccessToken(_) => f.write_str("AccessToken(..)"),
            Credentials::Password { user, session_file, .. } => {
                f.debug_struct("Password").field("user", user).field("session_file", session_file).finish_non_exhaustive()
            }
            Credentials::AppService { .. } => f.write_str("AppService { .. }"),
        }
    }
}

/// An application service registration for Stagehand, with fresh random tokens. `rate_limited: false` exempts the
/// bot from Synapse's rate limits; the bot's user is in the appservice's exclusive namespace. `url` is where the
/// homeserver pushes the rooms' events (Stagehand's web server); without it (`url: null`) nothing is pushed and the
/// bot syncs.
pub fn appservice_registration(server_name: &str, localpart: &str, conference: &str, url: Option<&str>) -> String {
    use rand::Rng;
    let token = || -> String {
        rand::rng().sample_iter(rand::distr::Alphanumeric).take(48).map(char::from).collect()
    };
    let esc = |s: &str| s.replace('.', "\\\\.");
    format!(
        "# Stagehand application service registration. Keep this file secret: it holds the tokens.\n\
         # Add its path to app_service_config_files in homeserver.yaml and to homeserver.appservice_registration.\n\
         id: stagehand-{conference}\n\
         url: {url}\n\
         as_token: {as_token}\n\
         hs_token: {hs_token}\n\
         sender_localpart: {localpart}\n\
         rate_limited: false\n\
         namespaces:\n\
         \x20 users:\n\
         \x20   - exclusive: true\n\
         \x20     regex: \"@{user_re}:{server_re}\"\n\
         \x20 aliases:\n\
         \x20   - exclusive: false\n\
         \x20     regex: \"#{conf_re}.*:{server_re}\"\n\
         \x20 rooms: []\n",
        as_token = token(),
        hs_token = token(),
        user_re = esc(localpart),
        server_re = esc(server_name),
        conf_re = esc(conference),
        url = url.map_or_else(|| "null".to_string(), |u| Value::String(u.to_string()).to_string()),
    )
}

/// Logs the client in with the credentials.
pub(super) async fn login(client: &Client, url: &str, credentials: &Credentials) -> Result<(), MatrixError> {
    let setup = |e: &dyn std::fmt::Display| MatrixError::Setup(format!("{url}: {e}"));
    match credentials {
        Credentials::AccessToken(token) | Credentials::AppService { as_token: token } => {
            let (user_id, device_id) = whoami(url, token).await?;
            restore(client, &user_id, device_id.as_deref().unwrap_or("STAGEHAND"), token).await?;
        }
        Credentials::Password { user, password, session_file } => {
            // A kept session whose token the server no longer accepts (logged out, expired, another server):
            // forget it and log in again, rather than failing every request of the run.
            let kept = match read_session(session_file) {
                Some(session) => match whoami(url, &session.tokens.access_token).await {
                    Err(MatrixError::Api { status: 401, .. }) => {
                        tracing::warn!(file = %session_file.display(), "the kept session is no longer valid; logging in again");
                        None
                    }
                    _ => Some(session),
                },
                None => None,
            };
            match kept {
                Some(session) => client.restore_session(session).await.map_err(|e| setup(&e))?,
                None => {
                    client
                        .matrix_auth()
                        .login_username(user, password)
                        .initial_device_display_name("Stagehand")
                        .send()
                        .await
                        .map_err(|e| MatrixError::Setup(format!("login as {user} failed: {e}")))?;
                    if let Some(session) = client.matrix_auth().session() {
                        write_session(session_file, &session)?;
                    }
                }
            }
        }
    }
    Ok(())
}

async fn whoami(url: &str, token: &str) -> Result<(String, Option<String>), MatrixError> {
    let what = "who am I (check the access token)";
    let resp = reqwest::Client::new()
        .get(format!("{}/_matrix/client/v3/account/whoami", url.trim_end_matches('/')))
        .bearer_auth(token)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| MatrixError::Transport { what: what.into(), message: e.to_string() })?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status != 200 {
        return Err(MatrixError::Api {
            what: what.into(),
            status,
            errcode: body["errcode"].as_str().unwrap_or_default().to_string(),
            message: body["error"].as_str().unwrap_or_default().to_string(),
        });
    }
    let user = body["user_id"].as_str().ok_or_else(|| MatrixError::Setup("whoami without user_id".into()))?;
    Ok((user.to_string(), body["device_id"].as_str().map(str::to_string)))
}

async fn restore(client: &Client, user_id: &str, device_id: &str, token: &str) -> Result<(), MatrixError> {
    let user_id = user_id_of(user_id)?;
    let session = MatrixSession {
        meta: SessionMeta { user_id, device_id: device_id.into() },
        tokens: SessionTokens { access_token: token.to_string(), refresh_token: None },
    };
    client.restore_session(session).await.map_err(|e| MatrixError::Setup(format!("cannot use the access token: {e}")))
}

fn read_session(path: &Path) -> Option<MatrixSession> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_session(path: &Path, session: &MatrixSession) -> Result<(), MatrixError> {
    let io = |e: std::io::Error| MatrixError::Setup(format!("cannot keep the session in {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let json = serde_json::to_string(session).map_err(|e| MatrixError::Setup(e.to_string()))?;
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new();
        f.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
        let mut file = f.open(&tmp).map_err(io)?;
        file.write_all(json.as_bytes()).map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_has_a_url_only_when_given_one() {
        let read = |url| -> Value { yaml_serde::from_str(&appservice_registration("e.org", "stagehand", "camp", url)).unwrap() };
        let without = read(None);
        assert_eq!(without["url"], Value::Null);
        assert_eq!(without["sender_localpart"], "stagehand");
        assert_eq!(without["namespaces"]["users"][0]["regex"], "@stagehand:e\\.org");
        let with = read(Some("http://127.0.0.1:8080"));
        assert_eq!(with["url"], "http://127.0.0.1:8080");
        assert_ne!(with["hs_token"], with["as_token"]);
    }

    #[test]
    fn credentials_never_show_their_secrets() {
        let shown = [
            Credentials::AccessToken("syt_secret_token".into()),
            Credentials::Password { user: "bot".into(), password: "hunter2-secret".into(), session_file: "s.json".into() },
            Credentials::AppService { as_token: "as_secret_token".into() },
        ]
        .map(|c| format!("{c:?}"));
        for s in &shown {
            assert!(!s.contains("secret"), "{s}");
        }
        assert!(shown[1].contains("bot"));
    }
}
