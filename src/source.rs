//! Where schedule bytes come from: a file path or an http(s) URL (pretalx serves its export there).
//!
//! URLs are fetched with a timeout, a size limit and optional request headers whose `${VAR}`s come from the
//! environment. The last copy that parsed is kept in a cache and used, with a loud warning, when the server is
//! down or serves something broken. Header values are never logged.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{ScheduleConfig, expand_env};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}: cannot read: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: the file is larger than the limit of {1} bytes; raise schedule.max_bytes if it really is a schedule")]
    TooLarge(String, usize),
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("schedule.headers: {0}")]
    Header(String),
}

/// Bytes of a schedule and where they came from.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The name used in messages: the path or URL.
    pub name: String,
    pub bytes: Vec<u8>,
    /// Where a good copy of a URL's content is kept.
    pub cache_path: Option<PathBuf>,
    /// Set when the bytes are the cached copy because the server failed.
    pub stale_because: Option<String>,
}

pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// A source as it may be shown in messages, logs and file names: a URL's query values and password hidden (API
/// tokens travel there: `?token=...`); paths unchanged.
pub fn shown(source: &str) -> String {
    if !is_url(source) {
        return source.to_string();
    }
    let Ok(mut url) = reqwest::Url::parse(source) else { return source.split('?').next().unwrap_or_default().to_string() };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    let keys: Vec<String> = url.query_pairs().map(|(k, _)| format!("{k}=***")).collect();
    url.set_query(None);
    url.set_fragment(None);
    if keys.is_empty() { url.to_string() } else { format!("{url}?{}", keys.join("&")) }
}

/// Reads a file, refusing one over `max_bytes` without reading it whole.
pub fn read_file(path: &Path, max_bytes: usize) -> Result<Vec<u8>, SourceError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| SourceError::Io(name.clone(), e))?;
    if let Ok(meta) = file.metadata()
        && meta.len() > max_bytes as u64
    {
        return Err(SourceError::TooLarge(name, max_bytes));
    }
    let mut bytes = Vec::new();
    file.take(max_bytes as u64 + 1).read_to_end(&mut bytes).map_err(|e| SourceError::Io(name.clone(), e))?;
    if bytes.len() > max_bytes {
        return Err(SourceError::TooLarge(name, max_bytes));
    }
    Ok(bytes)
}

/// The cache file for a URL: a readable prefix and a hash, so two URLs never share one.
pub fn cache_path(cache_dir: &Path, url: &str) -> PathBuf {
    let h = crate::schedule::model::stable_hash(url.bytes());
    let readable: String = crate::schedule::model::slugify(shown(url).split('?').next().unwrap_or_default()).chars().take(60).collect();
    cache_dir.join(format!("{readable}-{h:016x}"))
}

/// Loads a schedule from a path or URL.
pub async fn load(source: &str, cfg: &ScheduleConfig) -> Result<Fetched, SourceError> {
    if !is_url(source) {
        let bytes = read_file(Path::new(source), cfg.max_bytes)?;
        return Ok(Fetched { name: source.to_string(), bytes, cache_path: None, stale_because: None });
    }
    let cache_dir = cfg.cache_dir.clone().unwrap_or_else(|| PathBuf::from(".stagehand/cache"));
    let cache = cache_path(&cache_dir, source);
    match fetch(source, cfg).await {
        Ok(bytes) => Ok(Fetched { name: shown(source), bytes, cache_path: Some(cache), stale_because: None }),
        Err(err) => match read_file(&cache, cfg.max_bytes) {
            Ok(bytes) => {
                tracing::warn!(url = %shown(source), error = %err, cache = %cache.display(), "SCHEDULE SERVER FAILED: using the last good copy");
                Ok(Fetched {
                    name: shown(source),
                    bytes,
                    cache_path: Some(cache),
                    stale_because: Some(err.to_string()),
                })
            }
            Err(_) => Err(err),
        },
    }
}

/// Reads the cached copy of a URL, if there is one.
pub fn cached(fetched: &Fetched, max_bytes: usize) -> Option<Vec<u8>> {
    fetched.cache_path.as_deref().and_then(|p| read_file(p, max_bytes).ok())
}

/// Remembers bytes that parsed as the last good copy (write to a temporary file, then rename).
pub fn remember(fetched: &Fetched) -> std::io::Result<()> {
    let Some(path) = &fetched.cache_path else { return Ok(()) };
    if fetched.stale_because.is_some() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &fetched.bytes)?;
    std::fs::rename(&tmp, path)
}

async fn fetch(url: &str, cfg: &ScheduleConfig) -> Result<Vec<u8>, SourceError> {
    let http = |message: String| SourceError::Http { url: shown(url), message };
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &cfg.headers {
        let value = expand_env(value, |k| std::env::var(k).ok()).map_err(|e| SourceError::Header(format!("{name}: {e}")))?;
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| SourceError::Header(format!("{name:?} is not a valid header name")))?;
        let mut value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|_| SourceError::Header(format!("the value of {name} is not a valid header value")))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(cfg.timeout_seconds.max(1)))
        .connect_timeout(Duration::from_secs(cfg.timeout_seconds.clamp(1, 10)))
        .user_agent(concat!("stagehand/", env!("CARGO_PKG_VERSION")))
        .default_headers(headers)
        // Follow redirects on the same host only: custom headers (API tokens) must not travel to another one.
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let same = attempt.previous().first().is_some_and(|first| {
                first.host_str() == attempt.url().host_str() && first.scheme() == attempt.url().scheme()
            });
            if !same || attempt.previous().len() > 5 { attempt.stop() } else { attempt.follow() }
        }))
        .build()
        .map_err(|e| http(format!("cannot build an HTTP client: {e}")))?;
    let mut resp = client.get(url).send().await.map_err(|e| http(describe(&e)))?;
    if !resp.status().is_success() {
        return Err(http(format!("the server answered {}", resp.status())));
    }
    if let Some(len) = resp.content_length()
        && len > cfg.max_bytes as u64
    {
        return Err(http(format!("the schedule is {len} bytes, over the limit of {} (schedule.max_bytes)", cfg.max_bytes)));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| http(describe(&e)))? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > cfg.max_bytes {
            return Err(http(format!("the schedule is over the limit of {} bytes (schedule.max_bytes)", cfg.max_bytes)));
        }
    }
    Ok(bytes)
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the server did not answer in time (schedule.timeout_seconds)".to_string()
    } else if e.is_connect() {
        "cannot connect to the server".to_string()
    } else {
        format!("request failed: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_urls_are_not_shown() {
        assert_eq!(shown("https://pretalx.example/api/schedule.xml?token=s3cret&lang=en"), "https://pretalx.example/api/schedule.xml?token=***&lang=***");
        assert_eq!(shown("https://user:pa55@example.org/s.xml"), "https://user:***@example.org/s.xml");
        assert_eq!(shown("schedules/example.yaml"), "schedules/example.yaml");
        let cache = cache_path(Path::new("c"), "https://pretalx.example/api/schedule.xml?token=s3cret");
        assert!(!cache.display().to_string().contains("s3cret"), "{}", cache.display());
        assert_ne!(cache, cache_path(Path::new("c"), "https://pretalx.example/api/schedule.xml?token=other"));
    }

    #[test]
    fn cache_paths_differ_per_url() {
        let d = Path::new("/c");
        assert_ne!(cache_path(d, "https://a/x"), cache_path(d, "https://a/y"));
        assert_eq!(cache_path(d, "https://a/x"), cache_path(d, "https://a/x"));
    }

    #[test]
    fn big_file_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.xml");
        std::fs::write(&p, vec![b' '; 1000]).unwrap();
        assert!(matches!(read_file(&p, 999), Err(SourceError::TooLarge(..))));
        assert_eq!(read_file(&p, 1000).unwrap().len(), 1000);
    }
}
