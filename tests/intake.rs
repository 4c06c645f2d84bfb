//! The event intake against a real Synapse. Two independent users (Ann and Bob) make and join a room, the bot joins,
//! and they ask, vote, edit and take a vote back. Over `/sync`: each of those events reaches the inbox once and in
//! order; a restart after the consumer stored them delivers none again (more than a sync's timeline since then:
//! the gap comes from `/messages`); a batch the consumer never stored is delivered again; a fresh store gets the
//! room's whole history from `/messages` (from `not_before` on, when given), also after a failed sync; a room listed
//! later, or joined later, gets its history then. As an application service (Synapse
//! started with a registration whose `url` is the test's own server): the same events arrive pushed, a transaction
//! is accepted only with the `hs_token`, one id is taken in once, and one the bot failed on is retried by Synapse.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{Api, Synapse, User, enc};
use serde_json::{Value, json};
use stagehand::matrix::client::{Credentials, Homeserver};
use stagehand::matrix::intake::{self, Delivery, IntakeStatus, RoomEvent};
use stagehand::timeline::Store;
use tokio::sync::{mpsc, watch};

/// How long the test waits for events it expects.
const WAIT: Duration = Duration::from_secs(60);

struct Env {
    synapse: Synapse,
    /// Where Synapse pushes the application service's transactions; taken by the test that serves it.
    pushed_to: Mutex<Option<std::net::TcpListener>>,
    hs_token: String,
    as_token: String,
    _dir: tempfile::TempDir,
}

/// One Synapse for the binary, with Stagehand's application service registered (made by `stagehand
/// appservice-registration --url`, pointing at a port this process holds).
fn env() -> &'static Env {
    static E: OnceLock<Env> = OnceLock::new();
    E.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port for the pushed transactions");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let cfg = common::write(dir.path(), "as.yaml", "conference: {id: intake-as}\nhomeserver: {server_name: localhost}\n");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stagehand"));
        cmd.args(["appservice-registration", "--url", &url, "--config"]).arg(&cfg);
        let out = common::output_within(&mut cmd, common::CLI_LIMIT, "appservice-registration");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let registration = String::from_utf8(out.stdout).expect("UTF-8");
        let field = |k: &str| {
            registration.lines().find_map(|l| l.strip_prefix(&format!("{k}: ")).map(str::to_string)).unwrap_or_else(|| panic!("no {k}"))
        };
        assert_eq!(field("url"), format!("{url:?}"), "the registration names the address to push to");
        let (hs_token, as_token) = (field("hs_token"), field("as_token"));
        let synapse = Synapse::start("relaxed", &[("stagehand", registration)]);
        Env { synapse, pushed_to: Mutex::new(Some(listener)), hs_token, as_token, _dir: dir }
    })
}

fn api(user: &User) -> Api {
    Api::new(&env().synapse.url, &user.token)
}

/// Ann, Bob and a bot, fresh for each test.
fn people(test: &str) -> (User, User, User) {
    let s = &env().synapse;
    (s.register(&format!("{test}-ann"), false), s.register(&format!("{test}-bob"), false), s.register(&format!("{test}-bot"), false))
}

async fn create_room(by: &Api) -> String {
    let (status, body) = by.post("/_matrix/client/v3/createRoom", &json!({"preset": "public_chat"})).await;
    assert_eq!(status, 200, "createRoom: {body}");
    body["room_id"].as_str().expect("room id").to_string()
}

async fn join(who: &Api, room: &str) {
    let (status, body) = who.post(&format!("/_matrix/client/v3/rooms/{}/join", enc(room)), &json!({})).await;
    assert_eq!(status, 200, "join {room}: {body}");
}

fn txn() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("t{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

async fn send(who: &Api, room: &str, kind: &str, content: Value) -> String {
    let (status, body) = who.put(&format!("/_matrix/client/v3/rooms/{}/send/{kind}/{}", enc(room), txn()), &content).await;
    assert_eq!(status, 200, "send {kind}: {body}");
    body["event_id"].as_str().expect("event id").to_string()
}

async fn say(who: &Api, room: &str, text: &str) -> String {
    send(who, room, "m.room.message", json!({"msgtype": "m.text", "body": text})).await
}

/// Ann and Bob ask, vote, edit and take a vote back. Returns the event ids in the order they were sent.
async fn conversation(room: &str, ann: &Api, bob: &Api) -> Vec<String> {
    let vote = |on: &str| json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": on, "key": "👍"}});
    let q1 = say(ann, room, "Q: how fast is it?").await;
    let q2 = say(bob, room, "Q: does it scale?").await;
    let v1 = send(bob, room, "m.reaction", vote(&q1)).await;
    let v2 = send(ann, room, "m.reaction", vote(&q2)).await;
    let edit = send(
        ann,
        room,
        "m.room.message",
        json!({"msgtype": "m.text", "body": "* Q: how fast is it, really?",
               "m.new_content": {"msgtype": "m.text", "body": "Q: how fast is it, really?"},
               "m.relates_to": {"rel_type": "m.replace", "event_id": q1}}),
    )
    .await;
    let (status, body) = bob.put(&format!("/_matrix/client/v3/rooms/{}/redact/{}/{}", enc(room), enc(&v1), txn()), &json!({})).await;
    assert_eq!(status, 200, "redact: {body}");
    let unvote = body["event_id"].as_str().expect("event id").to_string();
    vec![q1, q2, v1, v2, edit, unvote]
}

fn ids(events: &[RoomEvent]) -> Vec<String> {
    events.iter().map(|e| e.event_id().expect("an event id").to_string()).collect()
}

fn has_all(want: &[String]) -> impl Fn(&[RoomEvent]) -> bool + '_ {
    move |got| {
        let got = ids(got);
        want.iter().all(|w| got.contains(w))
    }
}

fn joined(user: &User) -> impl Fn(&[RoomEvent]) -> bool + '_ {
    move |got| {
        got.iter().any(|e| e.event["type"] == "m.room.member" && e.event["state_key"] == user.user_id && e.event["content"]["membership"] == "join")
    }
}

/// Takes deliveries (storing each: `done` answered) until `enough` holds for all taken so far; fails after [`WAIT`].
async fn take_until(inbox: &mut mpsc::Receiver<Delivery>, taken: &mut Vec<RoomEvent>, enough: impl Fn(&[RoomEvent]) -> bool, what: &str) {
    let deadline = Instant::now() + WAIT;
    while !enough(taken) {
        let delivery = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), inbox.recv()).await;
        let Ok(Some(delivery)) = delivery else { panic!("{what}: not delivered within {WAIT:?}; got {:?}", ids(taken)) };
        taken.extend(delivery.events);
        if let Some(done) = delivery.done {
            let _ = done.send(());
        }
    }
}

/// Each of `sent` once in `taken`, in the order sent.
fn once_in_order(taken: &[RoomEvent], sent: &[String]) {
    let got = ids(taken);
    let positions: Vec<usize> = sent
        .iter()
        .map(|id| {
            let at: Vec<usize> = got.iter().enumerate().filter(|(_, g)| *g == id).map(|(i, _)| i).collect();
            assert_eq!(at.len(), 1, "{id} delivered {} times: {got:?}", at.len());
            at[0]
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "out of order: positions {positions:?} in {got:?}");
}

fn no_repeats(taken: &[RoomEvent]) {
    let got = ids(taken);
    let unique: std::collections::HashSet<_> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "an event delivered twice: {got:?}");
}

/// A sync intake running in the background.
struct Running {
    stop: watch::Sender<bool>,
    status: watch::Receiver<IntakeStatus>,
    task: tokio::task::JoinHandle<()>,
    rooms: watch::Sender<Arc<Vec<String>>>,
}

impl Running {
    fn start(hs: &Homeserver, rooms: &[&str], store: &Store, not_before: Option<chrono::DateTime<chrono::Utc>>) -> (Running, mpsc::Receiver<Delivery>) {
        let (inbox, rx) = mpsc::channel(8);
        let (rooms_tx, rooms_rx) = watch::channel(Arc::new(rooms.iter().map(|r| r.to_string()).collect::<Vec<_>>()));
        let (status_tx, status) = watch::channel(IntakeStatus::default());
        let (stop, stop_rx) = watch::channel(false);
        let (hs, store) = (hs.clone(), store.clone());
        let task = tokio::spawn(async move { intake::sync::sync(&hs, rooms_rx, store, inbox, not_before, status_tx, stop_rx).await });
        (Running { stop, status, task, rooms: rooms_tx }, rx)
    }

    /// Its status once `ready` holds (fails after [`WAIT`]).
    async fn settled(&self, ready: impl Fn(&IntakeStatus) -> bool) -> IntakeStatus {
        settled(self.status.clone(), ready).await
    }

    /// Stops it; it must end promptly, even in the middle of a long poll.
    async fn stop(self) -> IntakeStatus {
        let asked = Instant::now();
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(5), self.task).await.expect("the sync stops within 5 s").expect("the sync task");
        assert!(asked.elapsed() < Duration::from_secs(2), "stopping took {:?}", asked.elapsed());
        let status = self.status.borrow().clone();
        assert!(!status.alive);
        status
    }
}

async fn settled(mut status: watch::Receiver<IntakeStatus>, ready: impl Fn(&IntakeStatus) -> bool) -> IntakeStatus {
    let reached = tokio::time::timeout(WAIT, status.wait_for(|s| ready(s))).await.is_ok();
    let now = status.borrow().clone();
    assert!(reached, "the status never got there: {now:?}");
    now
}

async fn connect(url: &str, bot: &User) -> Homeserver {
    Homeserver::connect(url, &Credentials::AccessToken(bot.token.clone())).await.expect("the bot connects")
}

fn store_in(dir: &tempfile::TempDir, name: &str) -> Store {
    Store::open(&dir.path().join(name)).expect("a store")
}

/// A room Ann made, with Bob and the bot in it.
async fn room_with(ann: &Api, bob: &Api, bot: &Api) -> String {
    let room = create_room(ann).await;
    join(bob, &room).await;
    join(bot, &room).await;
    room
}

/// Ann and Bob in a room of Ann's with the bot, the bot connected, an empty store.
struct Scene {
    ann: User,
    bob: User,
    bot: User,
    a: Api,
    b: Api,
    room: String,
    hs: Homeserver,
    store: Store,
    _dir: tempfile::TempDir,
}

impl Scene {
    async fn new(test: &str) -> Scene {
        let (ann, bob, bot) = people(test);
        let (a, b) = (api(&ann), api(&bob));
        let room = room_with(&a, &b, &api(&bot)).await;
        let hs = connect(&env().synapse.url, &bot).await;
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir, "store.sqlite");
        Scene { ann, bob, bot, a, b, room, hs, store, _dir: dir }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_delivers_each_event_once_in_order_and_a_restart_repeats_nothing_stored() {
    let Scene { bot, a, b, room, hs, store, _dir, .. } = Scene::new("once").await;

    let (running, mut inbox) = Running::start(&hs, &[&room], &store, None);
    let mut taken = Vec::new();
    take_until(&mut inbox, &mut taken, joined(&bot), "the room's history up to the bot's join").await;
    let sent = conversation(&room, &a, &b).await;
    take_until(&mut inbox, &mut taken, has_all(&sent), "the conversation").await;
    once_in_order(&taken, &sent);
    no_repeats(&taken);
    assert!(taken.iter().all(|e| e.room_id == room && e.event["room_id"] == room.as_str()));
    let edit = taken.iter().find(|e| e.event_id() == Some(&sent[4])).unwrap();
    assert_eq!(edit.event["content"]["m.new_content"]["body"], "Q: how fast is it, really?");
    assert_eq!(taken.iter().find(|e| e.event_id() == Some(&sent[5])).unwrap().event["type"], "m.room.redaction");
    let status = running.settled(|s| s.delivered == taken.len() as u64).await;
    assert_eq!((status.mode, status.alive, status.failures), ("sync", true, 0), "{status:?}");
    assert!(status.last_ok.is_some());
    running.stop().await;

    // Stopped, more than a sync's timeline is said: the restart's sync is limited and the gap comes from /messages.
    let mut more = Vec::new();
    for i in 0..intake::sync::TIMELINE_LIMIT + 5 {
        more.push(say(&a, &room, &format!("filler {i}")).await);
    }
    let (running, mut inbox) = Running::start(&hs, &[&room], &store, None);
    let mut again = Vec::new();
    take_until(&mut inbox, &mut again, has_all(&more), "what was said while stopped").await;
    once_in_order(&again, &more);
    // Nothing of the timeline comes again. A gappy sync restates the memberships of its senders (a snapshot of the
    // room's state, which a consumer applies idempotently); that is all that may repeat.
    let before = ids(&taken);
    let repeated: Vec<&RoomEvent> = again.iter().filter(|e| before.iter().any(|b| e.event_id() == Some(b))).collect();
    assert!(repeated.iter().all(|e| e.event["type"] == "m.room.member"), "delivered again after it was stored: {repeated:#?}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_delivers_a_batch_again_when_the_consumer_never_stored_it() {
    let Scene { bot, a, b, room, hs, store, _dir, .. } = Scene::new("unstored").await;

    let (running, mut inbox) = Running::start(&hs, &[&room], &store, None);
    let mut taken = Vec::new();
    take_until(&mut inbox, &mut taken, joined(&bot), "the room's history").await;
    let question = say(&a, &room, "Q: stored?").await;
    // The batch with the question arrives; the consumer "crashes" before storing it: no answer, then a stop.
    let held = tokio::time::timeout(WAIT, inbox.recv()).await.expect("a delivery").expect("the inbox is open");
    assert!(held.events.iter().any(|e| e.event_id() == Some(&question)), "{:?}", ids(&held.events));
    running.stop().await;
    drop(held);

    let (running, mut inbox) = Running::start(&hs, &[&room], &store, None);
    let mut again = Vec::new();
    take_until(&mut inbox, &mut again, has_all(std::slice::from_ref(&question)), "the unstored batch, again").await;
    assert!(!ids(&again).iter().any(|id| ids(&taken).contains(id)), "only what was not stored comes again: {:?}", ids(&again));
    running.stop().await;

    // Stored this time: a third run says nothing of it.
    let (running, mut inbox) = Running::start(&hs, &[&room], &store, None);
    let next = say(&b, &room, "Q: and now?").await;
    let mut third = Vec::new();
    take_until(&mut inbox, &mut third, has_all(std::slice::from_ref(&next)), "the next question").await;
    assert_eq!(ids(&third), [next]);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_store_gets_the_whole_history_from_messages() {
    let Scene { ann, bob, bot, a, b, room, _dir: dir, .. } = Scene::new("fresh").await;
    let sent = conversation(&room, &a, &b).await;
    let later = say(&b, &room, "Q: one more?").await;
    let proxy = common::proxy::Proxy::start(&env().synapse.url);
    let hs = connect(&proxy.url, &bot).await;

    // The first sync fails (a gateway error): reported, retried after a second.
    proxy.inject("sync", 1, 1, common::proxy::Fault::Status(502));
    let (running, mut inbox) = Running::start(&hs, &[&room], &store_in(&dir, "fresh.sqlite"), None);
    let mut history = Vec::new();
    let everything: Vec<String> = sent.iter().cloned().chain([later.clone()]).collect();
    take_until(&mut inbox, &mut history, has_all(&everything), "the room's history").await;
    let status = running.settled(|s| s.last_ok.is_some()).await;
    assert_eq!(status.failures, 0, "{status:?}");
    assert!(status.last_error.as_deref().is_some_and(|e| e.contains("502")), "{status:?}");
    assert_eq!(proxy.injected().get("sync"), Some(&1));
    running.stop().await;
    once_in_order(&history, &everything);
    no_repeats(&history);
    assert!(proxy.counts().get("messages").is_some_and(|n| *n >= 1), "read through /messages: {:?}", proxy.counts());
    // From the room's creation: its first power levels and every join, before the first question.
    let first_question = ids(&history).iter().position(|id| *id == sent[0]).unwrap();
    let before = &history[..first_question];
    assert_eq!(before.iter().filter(|e| e.event["type"] == "m.room.power_levels").count(), 1, "{:?}", ids(before));
    for who in [&ann, &bob, &bot] {
        assert!(joined(who)(before), "{} joined before the first question", who.user_id);
    }

    // From a given instant on: what was said from then, after the room's current power levels (so moderators are
    // known although the room's creation is cut off).
    let at = |id: &str| history.iter().find(|e| e.event_id() == Some(id)).and_then(|e| e.event["origin_server_ts"].as_i64()).unwrap();
    let not_before = chrono::DateTime::from_timestamp_millis(at(&sent[2])).unwrap();
    let (running, mut inbox) = Running::start(&hs, &[&room], &store_in(&dir, "from.sqlite"), Some(not_before));
    let mut since = Vec::new();
    take_until(&mut inbox, &mut since, has_all(std::slice::from_ref(&later)), "the history from an instant").await;
    running.stop().await;
    let expected: Vec<String> = everything.iter().filter(|id| at(id) >= at(&sent[2])).cloned().collect();
    let said: Vec<String> = ids(&since.iter().filter(|e| e.event.get("state_key").is_none()).cloned().collect::<Vec<_>>());
    assert_eq!(said, expected);
    assert_eq!(since[0].event["type"], "m.room.power_levels", "{:?}", ids(&since));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_listed_or_joined_later_get_their_history() {
    let (ann, bob, bot) = people("later");
    let (a, b, me) = (api(&ann), api(&bob), api(&bot));
    let first = room_with(&a, &b, &me).await;
    let second = room_with(&a, &b, &me).await;
    let in_second = conversation(&second, &a, &b).await;
    // A private room the bot is not in yet: its history cannot be read until it joins.
    let (status, body) = a.post("/_matrix/client/v3/createRoom", &json!({"preset": "private_chat"})).await;
    assert_eq!(status, 200, "{body}");
    let third = body["room_id"].as_str().unwrap().to_string();
    let in_third = say(&a, &third, "Q: anyone here?").await;
    let hs = connect(&env().synapse.url, &bot).await;
    let dir = tempfile::tempdir().unwrap();

    let (running, mut inbox) = Running::start(&hs, &[&first], &store_in(&dir, "store.sqlite"), None);
    let mut taken = Vec::new();
    take_until(&mut inbox, &mut taken, joined(&bot), "the first room's history").await;
    assert!(taken.iter().all(|e| e.room_id == first));

    // Listed later: the second room's history comes, the first room's events do not come again.
    running.rooms.send_replace(Arc::new(vec![first.clone(), second.clone(), third.clone()]));
    let mut more = Vec::new();
    take_until(&mut inbox, &mut more, has_all(&in_second), "the second room's history").await;
    once_in_order(&more, &in_second);
    assert!(more.iter().all(|e| e.room_id == second), "only the newly listed room: {:?}", ids(&more));
    let news = say(&b, &first, "Q: still listening?").await;
    take_until(&mut inbox, &mut more, has_all(std::slice::from_ref(&news)), "news of the first room").await;
    assert!(!ids(&more).contains(&in_third), "the third room is not readable yet");

    // The bot is invited and joins the third room: its history comes.
    let (status, body) = a.post(&format!("/_matrix/client/v3/rooms/{}/invite", enc(&third)), &json!({"user_id": bot.user_id})).await;
    assert_eq!(status, 200, "{body}");
    join(&me, &third).await;
    take_until(&mut inbox, &mut more, has_all(std::slice::from_ref(&in_third)), "the joined room's history").await;
    no_repeats(&more);
    let everything: Vec<String> = ids(&taken).into_iter().chain(ids(&more)).collect();
    let unique: std::collections::HashSet<_> = everything.iter().collect();
    assert_eq!(unique.len(), everything.len(), "nothing twice over the room list's change");
    running.stop().await;
}

/// A PUT of a transaction by hand, as Synapse would send it.
async fn put_transaction(url: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = reqwest::Client::new().put(url).json(body).timeout(WAIT);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let resp = request.send().await.expect("PUT");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_transactions_arrive_once_in_order_and_need_the_hs_token() {
    let e = env();
    let listener = e.pushed_to.lock().unwrap().take().expect("the pushed-to port, once");
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir, "store.sqlite");
    let (inbox, mut rx) = mpsc::channel(8);
    let (status_tx, status) = watch::channel(IntakeStatus::default());
    let router = intake::appservice::router(e.hs_token.clone(), store, inbox, status_tx);
    tokio::spawn(async move { axum::serve(listener, router).await });

    let (ann, bob, _) = people("pushed");
    let (a, b) = (api(&ann), api(&bob));
    let bot = Api::new(&e.synapse.url, &e.as_token);
    let room = room_with(&a, &b, &bot).await;
    let sent = conversation(&room, &a, &b).await;
    let mut taken = Vec::new();
    take_until(&mut rx, &mut taken, has_all(&sent), "the pushed conversation").await;
    once_in_order(&taken, &sent);
    no_repeats(&taken);
    assert!(taken.iter().all(|e| e.room_id == room));

    // A batch the bot fails to store: the transaction is answered 500 and Synapse sends it again.
    let question = say(&a, &room, "Q: pushed twice?").await;
    let first = tokio::time::timeout(WAIT, rx.recv()).await.expect("a delivery").expect("open");
    assert!(first.events.iter().any(|e| e.event_id() == Some(&question)));
    drop(first);
    let mut again = Vec::new();
    take_until(&mut rx, &mut again, has_all(std::slice::from_ref(&question)), "the transaction, retried by Synapse").await;
    let s = settled(status.clone(), |s| s.failures == 0).await;
    assert_eq!((s.mode, s.alive), ("appservice", true), "{s:?}");
    assert!(s.last_error.is_some_and(|m| m.contains("without storing")), "the failure is reported until the next one");

    // By hand: no token, a wrong one (header or query): refused, nothing delivered.
    let event = json!({"type": "m.room.message", "event_id": "$by-hand", "room_id": room, "sender": ann.user_id,
                       "origin_server_ts": 1, "content": {"msgtype": "m.text", "body": "Q: by hand?"}});
    let body = json!({"events": [event]});
    let txn_url = format!("{base}/_matrix/app/v1/transactions/by-hand-1");
    assert_eq!(put_transaction(&txn_url, None, &body).await, (401, json!({"errcode": "M_UNAUTHORIZED", "error": "no token: send the registration's hs_token"})));
    let (status_code, answer) = put_transaction(&txn_url, Some("not-the-token"), &body).await;
    assert_eq!((status_code, &answer["errcode"]), (403, &json!("M_FORBIDDEN")));
    let (status_code, _) = put_transaction(&format!("{txn_url}?access_token=not-the-token"), None, &body).await;
    assert_eq!(status_code, 403);
    assert!(rx.try_recv().is_err(), "a refused transaction delivers nothing");

    // The same transaction twice: delivered once.
    let put = tokio::spawn({
        let (url, token, body) = (txn_url.clone(), e.hs_token.clone(), body.clone());
        async move { put_transaction(&url, Some(&token), &body).await }
    });
    let mut by_hand = Vec::new();
    take_until(&mut rx, &mut by_hand, has_all(&["$by-hand".to_string()]), "the transaction by hand").await;
    assert_eq!(put.await.unwrap(), (200, json!({})));
    assert_eq!(put_transaction(&txn_url, Some(&e.hs_token), &body).await, (200, json!({})));
    assert!(rx.try_recv().is_err(), "a transaction taken in already delivers nothing");
    // The legacy path, with the token in the query.
    let put = tokio::spawn({
        let (url, body) = (format!("{base}/transactions/by-hand-2?access_token={}", e.hs_token), json!({"events": [{"type": "m.reaction", "event_id": "$legacy", "room_id": room, "content": {}}]}));
        async move { put_transaction(&url, None, &body).await }
    });
    take_until(&mut rx, &mut by_hand, has_all(&["$legacy".to_string()]), "the legacy transaction").await;
    assert_eq!(put.await.unwrap().0, 200);

    // The rest of the API: nobody and no room is made on demand; a ping is answered.
    let http = reqwest::Client::new();
    let ask = |req: reqwest::RequestBuilder| async move {
        let resp = req.send().await.expect("request");
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or(Value::Null))
    };
    let user = format!("{base}/_matrix/app/v1/users/{}", enc("@someone:localhost"));
    assert_eq!(ask(http.get(&user).bearer_auth(&e.hs_token)).await.1["errcode"], "M_NOT_FOUND");
    assert_eq!(ask(http.get(&user).bearer_auth(&e.hs_token)).await.0, 404);
    let alias = format!("{base}/_matrix/app/v1/rooms/{}", enc("#intake-as-x:localhost"));
    assert_eq!(ask(http.get(&alias).bearer_auth(&e.hs_token)).await.0, 404);
    assert_eq!(ask(http.get(&alias)).await.0, 401);
    let ping = format!("{base}/_matrix/app/v1/ping");
    assert_eq!(ask(http.post(&ping).bearer_auth(&e.hs_token).json(&json!({}))).await, (200, json!({})));
    assert_eq!(ask(http.post(&ping).bearer_auth("wrong").json(&json!({}))).await.0, 403);
}
