//! Synapse with its default rate limits: a plain user's build waits out the 429s (visibly, in the log) and still
//! completes; the same build as an application service with `rate_limited: false` never waits.

mod common;

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{Api, Synapse, enc};
use serde_json::Value;

struct Env {
    synapse: Synapse,
    registration: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn env() -> &'static Env {
    static E: OnceLock<Env> = OnceLock::new();
    E.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cfg = common::write(dir.path(), "as.yaml", "conference: {id: camp-as}\nhomeserver: {server_name: localhost}\n");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stagehand"));
        let out = common::output_within(cmd.args(["appservice-registration", "--config"]).arg(&cfg), common::CLI_LIMIT, "appservice-registration");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let registration = String::from_utf8(out.stdout).unwrap();
        let reg_path = common::write(dir.path(), "registration.yaml", &registration);
        let synapse = Synapse::start("default", &[("stagehand", registration)]);
        Env { synapse, registration: reg_path, _dir: dir }
    })
}

fn apply(config: &std::path::Path, token: Option<&str>) -> (Value, String) {
    apply_through(config, token, &env().synapse.url)
}

/// A rerun through a counting proxy: fails, naming what was written, if anything reached Synapse that writes.
fn rerun_writes_nothing(config: &std::path::Path, token: Option<&str>) {
    let proxy = common::proxy::Proxy::start(&env().synapse.url);
    let (again, _) = apply_through(config, token, &proxy.url);
    assert_eq!(again["failed"], 0, "{again}");
    proxy.assert_no_writes("a rerun");
}

fn apply_through(config: &std::path::Path, token: Option<&str>, url: &str) -> (Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stagehand"));
    cmd.args(["apply", "--json", "--config"]).arg(config).args(["--homeserver", url]);
    cmd.current_dir(common::root()).env_remove("STAGEHAND_ACCESS_TOKEN").env("RUST_LOG", "stagehand=info");
    if let Some(t) = token {
        cmd.env("STAGEHAND_ACCESS_TOKEN", t);
    }
    let out = common::output_within(&mut cmd, Duration::from_secs(900), "stagehand apply at Synapse's default rate limits");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_rate_limits_slow_the_build_but_it_completes() {
    let e = env();
    let user = e.synapse.register("ratelimited-bot", false);
    let dir = tempfile::tempdir().unwrap();
    // 11 rooms: one more than rc_room_creation's burst of 10, and more state events than rc_message's burst.
    let cfg = common::write(
        dir.path(),
        "c.yaml",
        "conference: {id: camp-rl}\nhomeserver: {server_name: localhost, concurrency: 2}\n\
         schedule: {source: schedules/example.yaml}\npeople: {invite: false}\nrooms:\n  talk_rooms: false\n  support: [{key: info, name: Info desk, public: true}]\n",
    );
    let (report, log) = apply(&cfg, Some(&user.token));
    assert_eq!(report["created"], 11, "{report}");
    assert_eq!(report["failed"], 0);
    assert!(report["rate_limited"].as_u64().unwrap() > 0, "{report}");
    assert!(report["rate_limited_seconds"].as_f64().unwrap() > 10.0, "{report}");
    assert!(log.contains("rate limited by the homeserver; waiting"), "the waits must show in the log: {log}");
    // Still converged: a rerun writes nothing (counted at a proxy, not by Stagehand).
    rerun_writes_nothing(&cfg, Some(&user.token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appservice_builds_without_rate_limits() {
    let e = env();
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write(
        dir.path(),
        "c.yaml",
        &format!(
            "conference: {{id: camp-as}}\nhomeserver: {{server_name: localhost, appservice_registration: {:?}}}\n\
             schedule: {{source: schedules/example.yaml}}\npeople: {{invite: false}}\n",
            e.registration.display()
        ),
    );
    let (report, _) = apply(&cfg, None);
    assert_eq!(report["created"], 18, "{report}");
    assert_eq!(report["rate_limited"], 0, "an appservice with rate_limited: false is never limited: {report}");
    // The rooms belong to the appservice's bot user.
    let as_token = std::fs::read_to_string(&e.registration)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("as_token: ").map(str::to_string))
        .unwrap();
    let api = Api::new(&e.synapse.url, &as_token);
    let (_, who) = api.get("/_matrix/client/v3/account/whoami").await;
    assert_eq!(who["user_id"], "@stagehand:localhost");
    let (status, body) = api.get(&format!("/_matrix/client/v3/directory/room/{}", enc("#camp-as:localhost"))).await;
    assert_eq!(status, 200, "{body}");
    rerun_writes_nothing(&cfg, None);
}
