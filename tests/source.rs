//! Schedules from an http(s) URL, against a real HTTP server on loopback: request headers from the environment,
//! the size limit, the timeout, and the last good copy used (loudly) when the server is down or serves garbage.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stagehand::config::Config;
use stagehand::load::{LoadError, LoadRequest, load};

/// What the test server answers next: status line and body, and an optional delay.
#[derive(Clone)]
struct Reply {
    status: &'static str,
    body: Vec<u8>,
    delay: Duration,
}

struct Server {
    url: String,
    reply: Arc<Mutex<Reply>>,
    seen_headers: Arc<Mutex<Vec<String>>>,
}

fn serve() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/schedule.xml", listener.local_addr().unwrap());
    let reply = Arc::new(Mutex::new(Reply { status: "200 OK", body: Vec::new(), delay: Duration::ZERO }));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (r, s) = (reply.clone(), seen.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            s.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).to_string());
            let reply = r.lock().unwrap().clone();
            std::thread::sleep(reply.delay);
            let head = format!(
                "HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                reply.status,
                reply.body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&reply.body);
        }
    });
    Server { url, reply, seen_headers: seen }
}

fn config(cache: &std::path::Path, extra: &str) -> Config {
    let yaml = format!(
        "conference: {{id: t, timezone: Europe/Brussels}}\nhomeserver: {{server_name: example.org}}\n\
         schedule:\n  cache_dir: {:?}\n  timeout_seconds: 2\n{extra}",
        cache.display()
    );
    Config::parse("t.yaml", &yaml).unwrap().0
}

fn sample() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/schedules/conference-bot/pentabarf02_withqa.xml"))
        .unwrap()
}

#[tokio::test]
async fn url_fetch_with_token_then_fallback_to_the_last_good_copy() {
    if !common::with_env("url_fetch_with_token_then_fallback_to_the_last_good_copy", &[("STAGEHAND_TEST_TOKEN", "s3cret-token")]) {
        return;
    }
    let server = serve();
    let cache = tempfile::tempdir().unwrap();
    let cfg = config(cache.path(), "  headers:\n    Authorization: \"Token ${STAGEHAND_TEST_TOKEN}\"\n");
    let req = LoadRequest { source: server.url.clone(), ..LoadRequest::default() };

    server.reply.lock().unwrap().body = sample();
    let fresh = load(&req, Some(&cfg)).await.unwrap();
    assert_eq!(fresh.conference.talks.len(), 2);
    assert!(!fresh.warnings().any(|w| w.message.contains("last good copy")));
    let request = server.seen_headers.lock().unwrap().last().cloned().unwrap();
    assert!(request.to_lowercase().contains("authorization: token s3cret-token"), "{request}");

    // The server fails: the cached copy is used, with a loud warning.
    *server.reply.lock().unwrap() = Reply { status: "503 Service Unavailable", body: b"down".to_vec(), delay: Duration::ZERO };
    let stale = load(&req, Some(&cfg)).await.unwrap();
    assert_eq!(stale.conference.talks.len(), 2);
    let w = stale.warnings().find(|w| w.message.contains("SCHEDULE SERVER FAILED")).expect("a loud warning");
    assert!(w.message.contains("503"), "{}", w.message);

    // The server serves a broken export: also the last good copy.
    *server.reply.lock().unwrap() = Reply { status: "200 OK", body: b"<schedule><day>".to_vec(), delay: Duration::ZERO };
    let broken = load(&req, Some(&cfg)).await.unwrap();
    assert_eq!(broken.conference.talks.len(), 2);
    assert!(broken.warnings().any(|w| w.message.contains("broken schedule")));

    // The server is too slow: the timeout fires and the cache answers.
    *server.reply.lock().unwrap() = Reply { status: "200 OK", body: sample(), delay: Duration::from_secs(4) };
    let slow = load(&req, Some(&cfg)).await.unwrap();
    assert!(slow.warnings().any(|w| w.message.contains("did not answer in time")));
}

#[tokio::test]
async fn without_a_cached_copy_the_failure_is_an_error() {
    let server = serve();
    let cache = tempfile::tempdir().unwrap();
    let cfg = config(cache.path(), "  max_bytes: 100\n");
    server.reply.lock().unwrap().body = sample();
    let req = LoadRequest { source: server.url.clone(), ..LoadRequest::default() };
    match load(&req, Some(&cfg)).await {
        Err(LoadError::Source(e)) => assert!(e.to_string().contains("limit"), "{e}"),
        other => panic!("expected a size error, got {:?}", other.map(|p| p.conference.talks.len())),
    }
    let missing = LoadRequest { source: "http://127.0.0.1:9/nothing.xml".into(), ..LoadRequest::default() };
    let err = load(&missing, Some(&cfg)).await.map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err}");
}

#[tokio::test]
async fn a_missing_environment_variable_is_named() {
    let server = serve();
    let cache = tempfile::tempdir().unwrap();
    let cfg = config(cache.path(), "  headers:\n    Authorization: \"Token ${STAGEHAND_UNSET_VARIABLE}\"\n");
    let req = LoadRequest { source: server.url.clone(), ..LoadRequest::default() };
    let err = load(&req, Some(&cfg)).await.map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("STAGEHAND_UNSET_VARIABLE"), "{err}");
}
