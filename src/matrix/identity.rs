//! The identity server, for e-mail invites: registers the bot there (with an OpenID token from the homeserver),
//! accepts its terms when the organiser said so, and hands the homeserver what `/invite` needs. IO only; which
//! addresses to invite is decided in `plan::desired`.

use std::time::Duration;

use serde_json::{Value, json};

use super::client::Homeserver;

/// Where e-mail invites go: the identity server's name (as the homeserver reaches it), its base URL when it is not
/// `https://{server}`, and whether its terms may be accepted on the organiser's behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityOptions {
    pub server: String,
    pub url: Option<String>,
    pub accept_terms: bool,
}

/// What `/invite` needs to reach an e-mail address: the identity server and the bot's token there.
#[derive(Debug, Clone)]
pub struct IdentityServer {
    pub server: String,
    pub token: String,
}

/// Registers the bot with the identity server (OpenID token from the homeserver) and accepts its terms if the
/// config says so; otherwise lists them and refuses.
pub async fn register(hs: &Homeserver, config: &IdentityOptions) -> Result<IdentityServer, String> {
    let base = config.url.clone().unwrap_or_else(|| format!("https://{}", config.server));
    let base = base.trim_end_matches('/');
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("identity server {}: {e}", config.server))?;
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("identity server {} ({base}): {what}: {e}", config.server);
    let openid = hs.openid_token().await.map_err(|e| fail("no OpenID token from the homeserver", &e))?;
    let answer = http
        .post(format!("{base}/_matrix/identity/v2/account/register"))
        .json(&openid)
        .send()
        .await
        .map_err(|e| fail("registration failed", &e))?;
    let status = answer.status();
    let body: Value = answer.json().await.map_err(|e| fail("registration answer unreadable", &e))?;
    let token = match body["token"].as_str().or_else(|| body["access_token"].as_str()) {
        Some(t) if status.is_success() => t.to_string(),
        _ => return Err(fail("registration refused", &format!("{status} {body}"))),
    };
    let terms: Value = http
        .get(format!("{base}/_matrix/identity/v2/terms"))
        .send()
        .await
        .map_err(|e| fail("cannot read the terms", &e))?
        .json()
        .await
        .unwrap_or(Value::Null);
    let urls = policy_urls(&terms);
    if !urls.is_empty() {
        if !config.accept_terms {
            return Err(format!(
                "the identity server {} asks to accept its terms before e-mail invites: {}; read them, then set people.identity_server.accept_terms: true",
                config.server,
                urls.join(", ")
            ));
        }
        let answer = http
            .post(format!("{base}/_matrix/identity/v2/terms"))
            .bearer_auth(&token)
            .json(&json!({ "user_accepts": urls }))
            .send()
            .await
            .map_err(|e| fail("accepting the terms failed", &e))?;
        if !answer.status().is_success() {
            return Err(fail("accepting the terms was refused", &answer.status()));
        }
    }
    Ok(IdentityServer { server: config.server.clone(), token })
}

/// The URLs of every policy in an identity server's `/terms` answer (English where offered, else every language).
fn policy_urls(terms: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for policy in terms["policies"].as_object().into_iter().flat_map(|p| p.values()) {
        let Some(langs) = policy.as_object() else { continue };
        let english = langs.get("en").and_then(|l| l["url"].as_str());
        match english {
            Some(u) => out.push(u.to_string()),
            None => out.extend(langs.values().filter_map(|l| l["url"].as_str().map(str::to_string))),
        }
    }
    out.sort();
    out.dedup();
    out
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_urls_prefer_english() {
        let terms = json!({"policies": {"privacy": {"version": "1", "en": {"name": "P", "url": "https://x/p-en"}, "fr": {"name": "P", "url": "https://x/p-fr"}}, "tos": {"version": "2", "de": {"name": "T", "url": "https://x/t-de"}}}});
        assert_eq!(policy_urls(&terms), vec!["https://x/p-en".to_string(), "https://x/t-de".to_string()]);
        assert!(policy_urls(&json!({"policies": {}})).is_empty());
    }
}
