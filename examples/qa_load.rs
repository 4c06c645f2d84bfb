//! The audience for `scripts/bench-qa`: users made on the homeserver, joined to the track rooms, asking questions
//! and then casting 👍 votes at an even pace, while the Q&A event stream of every talk room is read. Plain HTTP only
//! (the Matrix client-server and Synapse admin APIs, the pages' server-sent events), nothing of Stagehand's code, so
//! what it measures is what a user and a widget see.
//!
//! Latency of a vote: the server's `origin_server_ts` of the reaction (read back from `/messages` afterwards) to the
//! first board on the talk's stream whose count for that question includes it (the k-th vote on a question, in
//! server time order, is seen when the board says at least k). Server, bot and this program share one clock.
//!
//! Usage: qa_load --homeserver URL --admin-token TOKEN --conference ID --web URL [--users 200] [--rooms 10]
//!        [--votes 2000] [--seconds 60] [--questions 10] [--joins 3]
//!
//! Beside the bot, a plain client (the admin, joined to every track room) syncs the reactions: when they reach a
//! client of the homeserver at all, the floor under the bot's figure.
//!
//! Prints the phases on stderr and one line on stdout:
//!   users=N votes=N seen=N p50_ms=X p90_ms=X p99_ms=X max_ms=X send_p50_ms=X send_p99_ms=X floor_p50_ms=X
//!   floor_p99_ms=X boards=N

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    homeserver: String,
    /// A homeserver admin's token: makes the users and reads the talk rooms' widgets.
    #[arg(long)]
    admin_token: String,
    /// The conference id (room aliases are `#{id}-{track}` and `#{id}-talk-{talk}`).
    #[arg(long)]
    conference: String,
    /// Where `stagehand run` serves its pages.
    #[arg(long)]
    web: String,
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Track rooms, `t00`.. (one live talk each, `k00`..).
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    #[arg(long, default_value_t = 2000)]
    votes: usize,
    /// Over how many seconds the votes are spread evenly.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Questions asked in each track room before the votes.
    #[arg(long, default_value_t = 10)]
    questions: usize,
    /// Track rooms each user joins.
    #[arg(long, default_value_t = 3)]
    joins: usize,
    /// Requests in flight at once while setting up.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn txn() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("qaload{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Plain client-server calls.
#[derive(Clone)]
struct Hs {
    http: reqwest::Client,
    url: String,
}

impl Hs {
    async fn call(&self, method: reqwest::Method, path: &str, token: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let mut wait = Duration::from_millis(200);
        for attempt in 0.. {
            let mut req = self.http.request(method.clone(), format!("{}{path}", self.url)).bearer_auth(token);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.with_context(|| format!("{method} {path}"))?;
            let status = resp.status();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(v);
            }
            if status.as_u16() == 429 && attempt < 10 {
                let after = v["retry_after_ms"].as_u64().map_or(wait, Duration::from_millis);
                tokio::time::sleep(after).await;
                wait *= 2;
                continue;
            }
            bail!("{method} {path}: {status} {v}");
        }
        unreachable!()
    }

    async fn get(&self, path: &str, token: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    async fn room_id(&self, alias: &str, token: &str) -> anyhow::Result<String> {
        let v = self.get(&format!("/_matrix/client/v3/directory/room/{}", enc(alias)), token).await?;
        v["room_id"].as_str().map(str::to_string).context("no room_id")
    }

    async fn send(&self, room: &str, kind: &str, token: &str, content: &Value) -> anyhow::Result<String> {
        let path = format!("/_matrix/client/v3/rooms/{}/send/{kind}/{}", enc(room), txn());
        let v = self.call(reqwest::Method::PUT, &path, token, Some(content)).await?;
        v["event_id"].as_str().map(str::to_string).context("no event_id")
    }
}

/// Runs `f` over `items` with at most `n` at once; the results in order.
async fn each<T, R, F, Fut>(items: Vec<T>, n: usize, f: F) -> anyhow::Result<Vec<R>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<R>> + Send + 'static,
{
    let sem = Arc::new(Semaphore::new(n));
    let f = Arc::new(f);
    let mut tasks = Vec::new();
    for item in items {
        let (sem, f) = (sem.clone(), f.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            f(item).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await??);
    }
    Ok(out)
}

struct User {
    token: String,
}

struct Room {
    track_id: String,
    talk: String,
    /// The talk room's Q&A event stream.
    events_url: String,
    members: Vec<usize>,
    /// (event id, asker index)
    questions: Vec<(String, usize)>,
}

/// One board as the stream delivered it.
struct Seen {
    at_ms: i64,
    talk: String,
    votes: Vec<(String, u64)>,
}

/// The Q&A event stream of a room's page: every `board` event, stamped on arrival.
async fn watch(http: reqwest::Client, url: String, tx: mpsc::UnboundedSender<Seen>) -> anyhow::Result<()> {
    let mut resp = http.get(&url).send().await?.error_for_status()?;
    let mut buf = String::new();
    while let Some(chunk) = resp.chunk().await? {
        let at_ms = now_ms();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut name = "";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if name != "board" {
                continue;
            }
            let board: Value = serde_json::from_str(&data)?;
            let votes = board["questions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|q| Some((q["id"].as_str()?.to_string(), q["votes"].as_u64()?)))
                .collect();
            let talk = board["talk"]["key"].as_str().unwrap_or_default().to_string();
            if tx.send(Seen { at_ms, talk, votes }).is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A plain client's `/sync` of the track rooms (reactions only): when each reaction reached a client of the
/// homeserver, the floor under what the bot can do.
async fn observe(hs: Hs, token: String, rooms: Vec<String>, tx: mpsc::UnboundedSender<(String, i64)>, ready: tokio::sync::oneshot::Sender<()>) -> anyhow::Result<()> {
    let none = json!({"not_types": ["*"]});
    let filter = json!({
        "presence": none, "account_data": none,
        "room": {"rooms": rooms, "timeline": {"types": ["m.reaction"], "limit": 1000}, "state": none, "ephemeral": none, "account_data": none},
    });
    let filter = enc(&filter.to_string());
    let first = hs.get(&format!("/_matrix/client/v3/sync?filter={filter}&timeout=0"), &token).await?;
    let mut since = first["next_batch"].as_str().context("next_batch")?.to_string();
    let _ = ready.send(());
    loop {
        let v = hs.get(&format!("/_matrix/client/v3/sync?filter={filter}&timeout=30000&since={}", enc(&since)), &token).await?;
        let at = now_ms();
        for room in v["rooms"]["join"].as_object().into_iter().flat_map(|o| o.values()) {
            for e in room["timeline"]["events"].as_array().into_iter().flatten() {
                if let Some(id) = e["event_id"].as_str()
                    && tx.send((id.to_string(), at)).is_err()
                {
                    return Ok(());
                }
            }
        }
        since = v["next_batch"].as_str().context("next_batch")?.to_string();
    }
}

/// p50, p90, p99 and the maximum of sorted milliseconds, for people.
fn spread(sorted: &[i64]) -> String {
    let max = sorted.last().copied().unwrap_or(0);
    format!("p50 {} ms, p90 {} ms, p99 {} ms, max {max} ms", pct(sorted, 50.0), pct(sorted, 90.0), pct(sorted, 99.0))
}

/// Nearest-rank percentile.
fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if a.joins > a.rooms || a.joins == 0 {
        bail!("--joins must be between 1 and --rooms");
    }
    if a.users * a.joins < a.rooms {
        bail!("every room needs a member: --users times --joins must be at least --rooms");
    }
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let hs = Hs { http: http.clone(), url: a.homeserver.trim_end_matches('/').to_string() };
    let server = {
        let who = hs.get("/_matrix/client/v3/account/whoami", &a.admin_token).await?;
        let id = who["user_id"].as_str().context("whoami")?.to_string();
        id.split_once(':').map(|(_, s)| s.to_string()).context("server name")?
    };

    // Users, made and logged in through the admin API.
    let started = Instant::now();
    let users = {
        let (hs, admin) = (hs.clone(), a.admin_token.clone());
        let ids: Vec<String> = (0..a.users).map(|i| format!("@qa{i:04}:{server}")).collect();
        each(ids, a.concurrency, move |id| {
            let (hs, admin) = (hs.clone(), admin.clone());
            async move {
                let path = format!("/_synapse/admin/v2/users/{}", enc(&id));
                hs.call(reqwest::Method::PUT, &path, &admin, Some(&json!({"password": "qa-bench", "displayname": format!("Attendee {}", id.trim_start_matches("@qa").split(':').next().unwrap_or_default())}))).await?;
                let login = hs.call(reqwest::Method::POST, &format!("/_synapse/admin/v1/users/{}/login", enc(&id)), &admin, Some(&json!({}))).await?;
                let token = login["access_token"].as_str().context("no access_token")?.to_string();
                Ok(User { token })
            }
        })
        .await?
    };
    let users = Arc::new(users);
    eprintln!("users:     {} made in {:.1} s", users.len(), started.elapsed().as_secs_f64());

    // The rooms: the track room's id, the talk room's Q&A stream (its widget's URL, token included).
    let mut rooms = Vec::new();
    for r in 0..a.rooms {
        let track_id = hs.room_id(&format!("#{}-t{r:02}:{server}", a.conference), &a.admin_token).await?;
        let talk_room = hs.room_id(&format!("#{}-talk-k{r:02}:{server}", a.conference), &a.admin_token).await?;
        let state = hs.get(&format!("/_synapse/admin/v1/rooms/{}/state", enc(&talk_room)), &a.admin_token).await?;
        let widget = state["state"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["type"] == "im.vector.modular.widgets" && e["state_key"].as_str().is_some_and(|k| k.starts_with("stagehand-qa-")))
            .with_context(|| format!("no Q&A widget in the talk room of k{r:02}"))?;
        let url = widget["content"]["url"].as_str().context("widget url")?;
        let token = url.split("token=").nth(1).context("token")?.split('&').next().context("token")?;
        let path = url.split("/qa/").nth(1).context("qa path")?.split('?').next().context("path")?;
        let events_url = format!("{}/qa/{path}/events?token={token}", a.web.trim_end_matches('/'));
        rooms.push(Room { track_id, talk: format!("k{r:02}"), events_url, members: Vec::new(), questions: Vec::new() });
    }
    // User i joins rooms i, i+step, ... spread so that every room gets about users * joins / rooms members.
    let mut joins = Vec::new();
    for u in 0..a.users {
        for j in 0..a.joins {
            let r = (u + j * a.rooms / a.joins) % a.rooms;
            rooms[r].members.push(u);
            joins.push((u, rooms[r].track_id.clone()));
        }
    }
    let started = Instant::now();
    let n_joins = joins.len();
    {
        let (hs, users) = (hs.clone(), users.clone());
        each(joins, a.concurrency, move |(u, room)| {
            let (hs, users) = (hs.clone(), users.clone());
            async move { hs.call(reqwest::Method::POST, &format!("/_matrix/client/v3/join/{}", enc(&room)), &users[u].token, Some(&json!({}))).await.map(drop) }
        })
        .await?;
    }
    eprintln!("joins:     {n_joins} in {:.1} s", started.elapsed().as_secs_f64());

    // The streams, open before the first question.
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<Seen>();
    let mut streams = Vec::new();
    for room in &rooms {
        let (http, url, tx) = (http.clone(), room.events_url.clone(), seen_tx.clone());
        streams.push(tokio::spawn(async move {
            if let Err(e) = watch(http, url, tx).await {
                eprintln!("stream ended: {e:#}");
            }
        }));
    }
    drop(seen_tx);

    // Questions: askers in turn among each room's members.
    let started = Instant::now();
    let mut asks = Vec::new();
    for (r, room) in rooms.iter().enumerate() {
        for q in 0..a.questions {
            let asker = room.members[q * 7 % room.members.len()];
            asks.push((r, q, asker, room.track_id.clone(), users[asker].token.clone()));
        }
    }
    let asked = {
        let hs = hs.clone();
        each(asks, a.concurrency, move |(r, q, asker, room, token)| {
            let hs = hs.clone();
            async move {
                let text = format!("Question {q} for talk {r}: how does it scale?");
                let id = hs.send(&room, "m.room.message", &token, &json!({"msgtype": "m.text", "body": text})).await?;
                Ok((r, id, asker))
            }
        })
        .await?
    };
    for (r, id, asker) in asked {
        rooms[r].questions.push((id, asker));
    }
    eprintln!("questions: {} in {:.1} s", a.rooms * a.questions, started.elapsed().as_secs_f64());

    // Every board shows its questions before the votes start.
    let started = Instant::now();
    let mut shown: HashMap<String, HashSet<String>> = HashMap::new();
    let mut log: Vec<Seen> = Vec::new();
    let want: HashMap<&str, HashSet<&str>> = rooms.iter().map(|r| (r.talk.as_str(), r.questions.iter().map(|(q, _)| q.as_str()).collect())).collect();
    let ready = |shown: &HashMap<String, HashSet<String>>| {
        want.iter().all(|(talk, qs)| shown.get(*talk).is_some_and(|s| qs.iter().all(|q| s.contains(*q))))
    };
    while !ready(&shown) {
        match tokio::time::timeout(Duration::from_secs(120).saturating_sub(started.elapsed()), seen_rx.recv()).await {
            Ok(Some(s)) => {
                shown.entry(s.talk.clone()).or_default().extend(s.votes.iter().map(|(q, _)| q.clone()));
                log.push(s);
            }
            Ok(None) => bail!("every stream ended before the questions showed"),
            Err(_) => bail!("the questions did not all show on the boards within 120 s"),
        }
    }
    eprintln!("boards:    every question shown {:.1} s after the last was asked", started.elapsed().as_secs_f64());
    log.clear();

    // The observer: the admin joins every track room and syncs its reactions.
    for room in &rooms {
        hs.call(reqwest::Method::POST, &format!("/_matrix/client/v3/join/{}", enc(&room.track_id)), &a.admin_token, Some(&json!({}))).await?;
    }
    let (obs_tx, mut obs_rx) = mpsc::unbounded_channel::<(String, i64)>();
    let (obs_ready, obs_started) = tokio::sync::oneshot::channel();
    let observer = {
        let (hs, token, ids) = (hs.clone(), a.admin_token.clone(), rooms.iter().map(|r| r.track_id.clone()).collect());
        tokio::spawn(async move {
            if let Err(e) = observe(hs, token, ids, obs_tx, obs_ready).await {
                eprintln!("the plain /sync observer stopped: {e:#}");
            }
        })
    };
    obs_started.await.context("the plain /sync observer did not start")?;

    // The votes: every (voter, question) pair at most once, never the asker's own, spread evenly over the rooms.
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let mut plan: Vec<(usize, usize, usize)> = Vec::new(); // (room, question, user)
    for (r, room) in rooms.iter().enumerate() {
        let share = a.votes / a.rooms + usize::from(r < a.votes % a.rooms);
        let mut pairs: Vec<(usize, usize, usize)> = room
            .questions
            .iter()
            .enumerate()
            .flat_map(|(q, (_, asker))| room.members.iter().filter(move |u| *u != asker).map(move |u| (r, q, *u)))
            .collect();
        if pairs.len() < share {
            bail!("room {r} has {} possible votes, fewer than {share}: more users, joins or questions", pairs.len());
        }
        pairs.shuffle(&mut rng);
        plan.extend(pairs.into_iter().take(share));
    }
    plan.shuffle(&mut rng);
    let interval = Duration::from_secs_f64(a.seconds / plan.len().max(1) as f64);
    let t0 = tokio::time::Instant::now();
    let started = Instant::now();
    let mut sends = Vec::new();
    for (i, (r, q, u)) in plan.iter().copied().enumerate() {
        let (hs, users) = (hs.clone(), users.clone());
        let (room, target) = (rooms[r].track_id.clone(), rooms[r].questions[q].0.clone());
        sends.push(tokio::spawn(async move {
            tokio::time::sleep_until(t0 + interval * i as u32).await;
            let before = now_ms();
            let content = json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": "👍"}});
            let sent = hs.send(&room, "m.reaction", &users[u].token, &content).await;
            (r, q, sent, before, now_ms())
        }));
    }
    // The boards as they come, while the votes go out.
    let mut votes = Vec::new(); // (room, question, event id, sent at, answered at)
    let mut failed = 0;
    let mut pending = sends.into_iter();
    let mut next = pending.next();
    while let Some(task) = next.as_mut() {
        tokio::select! {
            done = task => {
                match done? {
                    (r, q, Ok(id), before, after) => votes.push((r, q, id, before, after)),
                    (_, _, Err(e), _, _) => { failed += 1; eprintln!("vote failed: {e:#}"); }
                }
                next = pending.next();
            }
            Some(s) = seen_rx.recv() => log.push(s),
        }
    }
    eprintln!("votes:     {} sent in {:.1} s ({failed} failed)", votes.len(), started.elapsed().as_secs_f64());

    // Until every board counts every vote (at most 60 s more).
    let mut expected: HashMap<&str, u64> = HashMap::new();
    for (r, q, ..) in &votes {
        *expected.entry(rooms[*r].questions[*q].0.as_str()).or_default() += 1;
    }
    let mut latest: HashMap<String, u64> = HashMap::new();
    for s in &log {
        latest.extend(s.votes.iter().cloned());
    }
    let complete = |latest: &HashMap<String, u64>| expected.iter().all(|(q, n)| latest.get(*q).is_some_and(|v| v >= n));
    let drain = Instant::now();
    while !complete(&latest) {
        match tokio::time::timeout(Duration::from_secs(60).saturating_sub(drain.elapsed()), seen_rx.recv()).await {
            Ok(Some(s)) => {
                latest.extend(s.votes.iter().cloned());
                log.push(s);
            }
            _ => {
                eprintln!("not every vote showed within 60 s of the last one");
                break;
            }
        }
    }
    for s in streams {
        s.abort();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    observer.abort();
    let mut synced: HashMap<String, i64> = HashMap::new();
    while let Ok((id, at)) = obs_rx.try_recv() {
        synced.entry(id).or_insert(at);
    }

    // The reactions' server times, read back from each track room (as one of its members).
    let mut ts: HashMap<String, i64> = HashMap::new();
    let mine: HashSet<&str> = votes.iter().map(|v| v.2.as_str()).collect();
    for room in &rooms {
        let reader = &users[room.members[0]].token;
        let filter = enc(&json!({"types": ["m.reaction"]}).to_string());
        let mut from: Option<String> = None;
        loop {
            let mut path = format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=1000&filter={filter}", enc(&room.track_id));
            if let Some(f) = &from {
                path.push_str(&format!("&from={}", enc(f)));
            }
            let page = hs.get(&path, reader).await?;
            let chunk = page["chunk"].as_array().cloned().unwrap_or_default();
            for e in &chunk {
                if let (Some(id), Some(t)) = (e["event_id"].as_str(), e["origin_server_ts"].as_i64())
                    && mine.contains(id)
                {
                    ts.insert(id.to_string(), t);
                }
            }
            match page["end"].as_str() {
                Some(end) if !chunk.is_empty() => from = Some(end.to_string()),
                _ => break,
            }
        }
    }

    // Latency: the k-th vote on a question (by server time) is seen on the first board counting at least k.
    let mut by_question: HashMap<&str, Vec<(i64, &str)>> = HashMap::new();
    let mut send_ms = Vec::new();
    let mut to_server = Vec::new();
    let mut floor = Vec::new();
    for (r, q, id, before, after) in &votes {
        let Some(t) = ts.get(id) else { continue };
        by_question.entry(rooms[*r].questions[*q].0.as_str()).or_default().push((*t, id.as_str()));
        send_ms.push(after - before);
        to_server.push(t - before);
        if let Some(at) = synced.get(id) {
            floor.push(at - t);
        }
    }
    let mut boards_of: HashMap<&str, Vec<(i64, u64)>> = HashMap::new(); // question -> (arrival, votes), arrival order
    for s in &log {
        for (q, v) in &s.votes {
            boards_of.entry(q.as_str()).or_default().push((s.at_ms, *v));
        }
    }
    let mut lat = Vec::new();
    let mut behind = Vec::new(); // the board's arrival after the plain client's sync, per vote
    let mut unseen = 0;
    for (q, times) in &mut by_question {
        times.sort();
        let boards = boards_of.get(q).map(Vec::as_slice).unwrap_or_default();
        for (k, (t, id)) in times.iter().enumerate() {
            match boards.iter().find(|(_, v)| *v as usize > k) {
                Some((at, _)) => {
                    lat.push(at - t);
                    behind.extend(synced.get(*id).map(|s| at - s));
                }
                None => unseen += 1,
            }
        }
    }
    for xs in [&mut lat, &mut send_ms, &mut to_server, &mut floor, &mut behind] {
        xs.sort();
    }
    eprintln!("send:      request {}; origin_server_ts after the request began {}", spread(&send_ms), spread(&to_server));
    eprintln!("floor:     a plain /sync client got {} of the reactions, {} after origin_server_ts", floor.len(), spread(&floor));
    eprintln!("bot:       the board on the stream after the plain client's sync: {}", spread(&behind));
    eprintln!(
        "seen:      {} of {} votes on a board ({unseen} never, {} without a server time); {} board events",
        lat.len(),
        votes.len(),
        votes.len() - ts.len().min(votes.len()),
        log.len()
    );
    println!(
        "users={} votes={} seen={} p50_ms={} p90_ms={} p99_ms={} max_ms={} send_p50_ms={} send_p99_ms={} floor_p50_ms={} floor_p99_ms={} boards={}",
        users.len(),
        votes.len(),
        lat.len(),
        pct(&lat, 50.0),
        pct(&lat, 90.0),
        pct(&lat, 99.0),
        lat.last().copied().unwrap_or(0),
        pct(&send_ms, 50.0),
        pct(&send_ms, 99.0),
        pct(&floor, 50.0),
        pct(&floor, 99.0),
        log.len()
    );
    Ok(())
}
