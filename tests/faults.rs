//! Faults the real Synapse does not produce on demand, injected by a small proxy in front of it: 502s and
//! connections dropped after Synapse has done the work (the classic non-atomic createRoom). The build retries,
//! adopts what the lost answers created, and ends with exactly the planned rooms.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Api, synapse};
use stagehand::config::Config;
use stagehand::matrix::client::{Credentials, Homeserver};
use stagehand::matrix::reconcile::{Options, reconcile};
use stagehand::plan;
use stagehand::schedule::{self, ReadOptions};

/// What the proxy does to the n-th createRoom (1-based); every other request passes.
#[derive(Clone, Copy)]
enum Fault {
    BadGateway,
    /// Forward to Synapse, then close the client's connection without the answer.
    DropAnswer,
}

fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf);
        }
    }
}

/// Starts the proxy; returns its URL and the count of createRoom requests it saw.
fn proxy(upstream: &str, faults: Vec<(usize, Fault)>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.trim_start_matches("http://").to_string();
    let creates = Arc::new(AtomicUsize::new(0));
    let seen = creates.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let (upstream, faults, seen) = (upstream.clone(), faults.clone(), seen.clone());
            std::thread::spawn(move || {
                // One request per connection: the proxy asks Synapse to close, then closes the client.
                while let Some(request) = read_request(&mut client) {
                    let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
                    let first_line = String::from_utf8_lossy(&request[..head_end]).lines().next().unwrap_or_default().to_string();
                    let fault = if first_line.starts_with("POST") && first_line.contains("/createRoom") {
                        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                        faults.iter().find(|(at, _)| *at == n).map(|(_, f)| *f)
                    } else {
                        None
                    };
                    if let Some(Fault::BadGateway) = fault {
                        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        return;
                    }
                    let head = String::from_utf8_lossy(&request[..head_end])
                        .lines()
                        .filter(|l| !l.to_lowercase().starts_with("connection:"))
                        .collect::<Vec<_>>()
                        .join("\r\n");
                    let Ok(mut up) = TcpStream::connect(&upstream) else { return };
                    let _ = up.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes());
                    let _ = up.write_all(&request[head_end + 4..]);
                    let mut answer = Vec::new();
                    let _ = up.read_to_end(&mut answer);
                    if let Some(Fault::DropAnswer) = fault {
                        return; // Synapse made the room; the client never hears of it.
                    }
                    let _ = client.write_all(&answer);
                    return;
                }
            });
        }
    });
    (url, creates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_and_bad_gateways_end_in_exactly_the_planned_rooms() {
    let s = synapse();
    let user = s.register("bot-faults", false);
    let (url, creates) = proxy(&s.url, vec![(2, Fault::BadGateway), (3, Fault::DropAnswer), (7, Fault::DropAnswer), (9, Fault::BadGateway)]);
    let text = std::fs::read(common::root().join("schedules/example.yaml")).unwrap();
    let conf = schedule::read("example.yaml", &text, &ReadOptions::default()).unwrap().conference;
    let cfg = Config::parse("t.yaml", "conference: {id: camp-faults}\nhomeserver: {server_name: localhost, concurrency: 2}\n").unwrap().0;
    let plan = plan::plan(&conf, &cfg);
    let hs = Homeserver::connect(&url, &Credentials::AccessToken(user.token.clone())).await.unwrap();
    let opts = Options { room_version: "12".into(), concurrency: 2, dry_run: false, kick_removed: false, widgets: None, invite: false, max_cancel: None, identity_server: None, scope: Default::default() };
    let report = reconcile(&hs, &plan, &opts).await;
    assert_eq!(report.failed, 0, "{}", report.summary());
    assert!(creates.load(Ordering::SeqCst) > plan.rooms.len(), "the faults made the bot retry");
    // Exactly one room per planned object: the rooms whose answers were lost were adopted, not made twice.
    let api = Api::new(&s.url, &user.token);
    let (_, joined) = api.get("/_matrix/client/v3/joined_rooms").await;
    let mut keys = Vec::new();
    for id in joined["joined_rooms"].as_array().unwrap() {
        let (status, loc) = api.get(&format!("/_matrix/client/v3/rooms/{}/state/org.stagehand.locator/", common::enc(id.as_str().unwrap()))).await;
        if status == 200 && loc["conference"] == "camp-faults" {
            keys.push(loc["key"].as_str().unwrap().to_string());
        }
    }
    keys.sort();
    let mut planned: Vec<String> = plan.rooms.iter().map(|r| r.key.clone()).collect();
    planned.sort();
    assert_eq!(keys, planned);
    let again = reconcile(&hs, &plan, &opts).await;
    assert_eq!(again.writes, 0, "{}", again.summary());
}
