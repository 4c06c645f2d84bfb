//! A counting reverse proxy on loopback, between Stagehand and the real Synapse: the evidence from outside the bot.
//! Synapse deduplicates an identical state event and a repeated invite, so its state cannot show that a client
//! repeated itself; the requests that reached it can. Each request is recorded with its endpoint kind
//! (`createRoom`, `state m.room.name`, `invite`, ...), its room, its target user and the status Synapse answered.
//! Faults are injected per endpoint kind: a status answered by the proxy itself (429 with `retry_after_ms`, 502,
//! ...; the request never reaches Synapse), or the answer dropped after Synapse did the work.
//!
//! One request per connection: the proxy asks Synapse to close, and tells the client to close too.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

/// What the proxy does to a request a rule matches.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Answered by the proxy with this status (429 carries `M_LIMIT_EXCEEDED` and `retry_after_ms: 50`); the request
    /// does not reach Synapse.
    Status(u16),
    /// Forwarded to Synapse, then the client's connection is closed without the answer.
    DropAnswer,
}

/// One request that reached Synapse.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Endpoint kind, see [`kind`].
    pub kind: String,
    /// The room id or alias in the path, percent-decoded, if any.
    pub room: Option<String>,
    /// `user_id` of an invite, kick or ban.
    pub user: Option<String>,
    /// What Synapse answered (0: no answer).
    pub status: u16,
}

impl Seen {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

struct Rule {
    kind: String,
    /// 1-based occurrences of this kind (counted from when the rule was added) the fault applies to.
    from: usize,
    to: usize,
    fault: Fault,
    matched: usize,
}

#[derive(Default)]
struct Log {
    seen: Vec<Seen>,
    rules: Vec<Rule>,
    /// Requests answered by an injected status, by kind.
    injected: BTreeMap<String, usize>,
    /// The homeserver is "down": every request is answered 502 by the proxy.
    down: bool,
}

pub struct Proxy {
    pub url: String,
    log: Arc<Mutex<Log>>,
}

/// Requests that change nothing on the server, though not sent with GET.
const NOT_WRITES: &[&str] = &["login", "filter", "keys", "user_directory", "logout"];

impl Proxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = log.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let (upstream, log) = (upstream.clone(), shared.clone());
                std::thread::spawn(move || serve(client, &upstream, &log));
            }
        });
        Proxy { url, log }
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `fault` to occurrences `from..=to` (1-based) of `kind` seen from now on.
    pub fn inject(&self, kind: &str, from: usize, to: usize, fault: Fault) {
        self.lock().rules.push(Rule { kind: kind.to_string(), from, to, fault, matched: 0 });
    }

    /// Takes the homeserver down (every request answered 502, none reaches Synapse) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Every request that reached Synapse so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Forgets what was seen and injected (rules stay).
    pub fn reset(&self) {
        let mut log = self.lock();
        log.seen.clear();
        log.injected.clear();
    }

    /// Requests answered by an injected fault status, by kind.
    pub fn injected(&self) -> BTreeMap<String, usize> {
        self.lock().injected.clone()
    }

    /// Requests that reached Synapse, by kind.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in self.lock().seen.iter() {
            *out.entry(s.kind.clone()).or_insert(0) += 1;
        }
        out
    }

    /// Requests that reached Synapse and could change something there (anything but reads, logins, filters and
    /// key uploads), by kind: empty after a run that writes nothing.
    pub fn writes(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in self.lock().seen.iter().filter(|s| s.method != "GET" && !NOT_WRITES.contains(&s.kind.as_str())) {
            *out.entry(s.kind.clone()).or_insert(0) += 1;
        }
        out
    }

    /// Fails, naming what was written, if anything since the last [`Proxy::reset`] could change the server; then
    /// resets. `what` names the run, for the message.
    pub fn assert_no_writes(&self, what: &str) {
        let writes = self.writes();
        assert!(writes.is_empty(), "{what}: requests that reached Synapse and write: {writes:?}");
        self.reset();
    }

    /// How many requests of `kind` Synapse answered with success.
    pub fn succeeded(&self, kind: &str) -> usize {
        self.lock().seen.iter().filter(|s| s.kind == kind && s.ok()).count()
    }

    /// (room, user) of every invite Synapse accepted, in order (a pair twice means a person invited twice).
    pub fn invites(&self) -> Vec<(String, String)> {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.kind == "invite" && s.ok())
            .map(|s| (s.room.clone().unwrap_or_default(), s.user.clone().unwrap_or_default()))
            .collect()
    }

    /// Pairs that [`Proxy::invites`] holds more than once.
    pub fn repeated_invites(&self) -> Vec<(String, String)> {
        let mut count: BTreeMap<(String, String), usize> = BTreeMap::new();
        for pair in self.invites() {
            *count.entry(pair).or_insert(0) += 1;
        }
        count.into_iter().filter(|(_, n)| *n > 1).map(|(p, _)| p).collect()
    }
}

fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The endpoint kind of a request and the room in its path: `createRoom`, `state TYPE`, `send TYPE`, `invite`,
/// `kick`, `ban`, `join`, `leave`, `alias` (PUT/DELETE of a room alias), `directory` (room directory visibility),
/// `login`, `filter`, `sync`, `messages` (a room's history), ...; other reads of rooms and the directory are
/// `GET room` and `GET directory`; otherwise the method and the last path segment.
pub fn kind(method: &str, path: &str) -> (String, Option<String>) {
    let path = path.split('?').next().unwrap_or_default();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // /_matrix/client/{v3,r0,v1}/...
    let rest: &[&str] = if segs.len() > 3 && segs[0] == "_matrix" { &segs[3..] } else { &segs };
    let room = |i: usize| rest.get(i).map(|s| decode(s));
    let k = match rest {
        ["createRoom"] => ("createRoom".to_string(), None),
        ["rooms", _, "state", ty, ..] if method == "PUT" => (format!("state {}", decode(ty)), room(1)),
        ["rooms", _, "send", ty, ..] => (format!("send {}", decode(ty)), room(1)),
        ["rooms", _, action] if method == "POST" => (action.to_string(), room(1)),
        ["directory", "room", _] if method != "GET" => ("alias".to_string(), room(2)),
        ["directory", "list", "room", _] if method != "GET" => ("directory".to_string(), room(3)),
        ["directory", ..] => (format!("{method} directory"), None),
        ["rooms", _, "messages"] => ("messages".to_string(), room(1)),
        ["rooms", _, ..] => (format!("{method} room"), room(1)),
        ["user", _, "filter", ..] => ("filter".to_string(), None),
        ["keys", ..] => ("keys".to_string(), None),
        [first, ..] if *first == "user_directory" || *first == "login" || *first == "logout" || *first == "sync" => (first.to_string(), None),
        _ => (format!("{method} {}", rest.last().copied().unwrap_or_default()), None),
    };
    (k.0, k.1)
}

fn read_request(stream: &mut TcpStream) -> Option<(Vec<u8>, usize)> {
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
            return Some((buf, end));
        }
    }
}

/// The head without its `Connection` header, with `Connection: close` added.
fn closing(head: &str) -> String {
    let kept: Vec<&str> = head.lines().filter(|l| !l.to_lowercase().starts_with("connection:")).collect();
    format!("{}\r\nConnection: close\r\n\r\n", kept.join("\r\n"))
}

fn serve(mut client: TcpStream, upstream: &str, log: &Mutex<Log>) {
    let Some((request, head_end)) = read_request(&mut client) else { return };
    let head = String::from_utf8_lossy(&request[..head_end]).to_string();
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    let (kind, room) = kind(&method, &path);
    let body = &request[head_end + 4..];
    let user = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|b| b["user_id"].as_str().map(String::from));
    let fault = {
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        let mut fault = None;
        for rule in log.rules.iter_mut().filter(|r| r.kind == kind) {
            rule.matched += 1;
            if fault.is_none() && (rule.from..=rule.to).contains(&rule.matched) {
                fault = Some(rule.fault);
            }
        }
        if log.down {
            fault = Some(Fault::Status(502));
        }
        if let Some(Fault::Status(_)) = fault {
            *log.injected.entry(kind.clone()).or_insert(0) += 1;
        }
        fault
    };
    if let Some(Fault::Status(code)) = fault {
        let body = if code == 429 {
            r#"{"errcode":"M_LIMIT_EXCEEDED","error":"injected by the test proxy","retry_after_ms":50}"#
        } else {
            r#"{"errcode":"M_UNKNOWN","error":"injected by the test proxy"}"#
        };
        let answer = format!("HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        let _ = client.write_all(answer.as_bytes());
        return;
    }
    let mut answer = Vec::new();
    if let Ok(mut up) = TcpStream::connect(upstream) {
        let _ = up.write_all(closing(&head).as_bytes());
        let _ = up.write_all(body);
        let _ = up.read_to_end(&mut answer);
    }
    let status = String::from_utf8_lossy(answer.get(..answer.len().min(16)).unwrap_or_default())
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    log.lock().unwrap_or_else(|e| e.into_inner()).seen.push(Seen { method, kind, room, user, status });
    if let Some(Fault::DropAnswer) = fault {
        return; // Synapse did the work; the client never hears of it.
    }
    match answer.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => {
            let _ = client.write_all(closing(&String::from_utf8_lossy(&answer[..end])).as_bytes());
            let _ = client.write_all(&answer[end + 4..]);
        }
        None => {
            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    }
}
