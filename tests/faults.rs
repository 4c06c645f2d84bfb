//! Faults the real Synapse does not produce on demand, injected by the harness's counting proxy in front of it
//! (`common::proxy`): 502s, 503s, 429 storms and connections dropped after Synapse has done the work (the classic
//! non-atomic createRoom). The build retries, adopts what the lost answers created, and ends with exactly the planned
//! rooms, each made once, as counted by the requests that reached Synapse.

mod common;

use common::proxy::{Fault, Proxy, kind};
use common::{Api, synapse};
use stagehand::config::Config;
use stagehand::matrix::client::{Credentials, Homeserver};
use stagehand::matrix::reconcile::{Options, reconcile};
use stagehand::plan;
use stagehand::schedule::{self, ReadOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_and_bad_gateways_end_in_exactly_the_planned_rooms() {
    let s = synapse();
    let user = s.register("bot-faults", false);
    let proxy = Proxy::start(&s.url);
    for (n, fault) in [(2, Fault::Status(502)), (3, Fault::DropAnswer), (7, Fault::DropAnswer), (9, Fault::Status(502))] {
        proxy.inject("createRoom", n, n, fault);
    }
    // A 429 storm on state writes (the root's links to the subspaces) and a 503 on a retry: waited out and retried.
    proxy.inject("state m.space.child", 1, 3, Fault::Status(429));
    proxy.inject("state m.space.child", 5, 5, Fault::Status(503));
    let url = proxy.url.clone();
    let text = std::fs::read(common::root().join("schedules/example.yaml")).unwrap();
    let conf = schedule::read("example.yaml", &text, &ReadOptions::default()).unwrap().conference;
    let cfg = Config::parse("t.yaml", "conference: {id: camp-faults}\nhomeserver: {server_name: localhost, concurrency: 2}\n").unwrap().0;
    let plan = plan::plan(&conf, &cfg);
    let hs = Homeserver::connect(&url, &Credentials::AccessToken(user.token.clone())).await.unwrap();
    let opts = Options { room_version: "12".into(), concurrency: 2, dry_run: false, kick_removed: false, widgets: None, invite: false, max_cancel: None, identity_server: None, scope: Default::default() };
    let report = reconcile(&hs, &plan, &opts).await;
    assert_eq!(report.failed, 0, "{}", report.summary());
    assert_eq!(proxy.injected().get("createRoom"), Some(&2), "{:?}", proxy.injected());
    assert_eq!(proxy.injected().get("state m.space.child"), Some(&4), "{:?}", proxy.injected());
    // Synapse made one room per planned object: the two whose answers were lost were adopted (their retries found
    // the alias taken), not made twice.
    assert_eq!(proxy.succeeded("createRoom"), plan.rooms.len(), "{:?}", proxy.counts());
    assert_eq!(proxy.counts()["createRoom"], plan.rooms.len() + 2, "the lost answers were retried: {:?}", proxy.counts());
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
    proxy.reset();
    reconcile(&hs, &plan, &opts).await;
    proxy.assert_no_writes("the rerun after the faults");
}

#[test]
fn the_proxy_names_endpoint_kinds() {
    let k = |m, p| kind(m, p).0;
    assert_eq!(k("POST", "/_matrix/client/v3/createRoom"), "createRoom");
    assert_eq!(kind("PUT", "/_matrix/client/v3/rooms/%21a%3Ax/state/m.room.name/"), ("state m.room.name".into(), Some("!a:x".into())));
    assert_eq!(k("GET", "/_matrix/client/v3/rooms/%21a/state/m.room.name/"), "GET room");
    assert_eq!(k("GET", "/_matrix/client/v3/rooms/%21a/messages?dir=b"), "messages");
    assert_eq!(k("POST", "/_matrix/client/v3/rooms/%21a/invite"), "invite");
    assert_eq!(k("POST", "/_matrix/client/v3/rooms/%21a/kick"), "kick");
    assert_eq!(k("PUT", "/_matrix/client/v3/directory/room/%23a%3Ax"), "alias");
    assert_eq!(k("GET", "/_matrix/client/v3/directory/room/%23a%3Ax"), "GET directory");
    assert_eq!(k("PUT", "/_matrix/client/v3/directory/list/room/%21a"), "directory");
    assert_eq!(k("PUT", "/_matrix/client/v3/rooms/%21a/send/m.room.message/t1"), "send m.room.message");
    assert_eq!(k("GET", "/_matrix/client/v3/sync?timeout=0"), "sync");
}

/// The kill helper's wait is bounded: a test point the bot never reaches fails the test, naming the point.
#[test]
fn a_test_point_never_reached_fails_and_names_it() {
    let s = synapse();
    let user = s.register("bot-point", false);
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write(dir.path(), "c.yaml", "conference: {id: camp-point}\nhomeserver: {server_name: localhost}\nschedule: {source: schedules/example.yaml}\npeople: {invite: false}\n");
    let waited = std::panic::catch_unwind(|| common::apply_killed_at("create:999", &cfg, &user.token, &s.url));
    let message = waited.err().and_then(|p| p.downcast_ref::<String>().cloned()).unwrap_or_default();
    assert!(message.contains("test point create:999: the bot ended first"), "{message}");
}
