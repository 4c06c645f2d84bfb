//! Invites under Synapse's invite limiters (`rc_invites` per room, per receiver and per issuer), with the test
//! profile `invites` of `scripts/synapse-start`: Synapse's shape at test scale (per room 0.5/s burst 3, per receiver
//! 0.25/s burst 2, per issuer 1/s burst 6), so that each bites within seconds. The run completes, nobody gets two
//! invites to one room (counted at the proxy), the waits are logged with progress, and the time is at least what the
//! limits predict. The Synapse the test starts for itself is stopped when the test ends, whatever way it ends.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{Synapse, User};

/// The `invites` profile's limiters: (per second, burst).
const PER_RECEIVER: (f64, f64) = (0.25, 2.0);
const PER_ISSUER: (f64, f64) = (1.0, 6.0);
const PER_ROOM: (f64, f64) = (0.5, 3.0);

/// The least time `n` invites through one limiter take: the burst is free, the rest come at its rate.
fn least_seconds(n: usize, (rate, burst): (f64, f64)) -> f64 {
    (n as f64 - burst).max(0.0) / rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_complete_under_the_invite_limiters_each_once() {
    let synapse = Synapse::start("invites", &[]);
    let names = ["bot", "ann", "ben", "cat", "dan", "col"];
    let users: Vec<User> = names.iter().map(|n| synapse.register(&format!("il-{n}"), false)).collect();
    let id = |n: &str| users[names.iter().position(|x| *x == n).unwrap()].user_id.clone();
    let dir = tempfile::tempdir().unwrap();
    // t1 has four speakers and the coordinator (five invites into one room: the room limiter); ann speaks in all four
    // talks and col coordinates the track (five invites each: the receiver limiter); sixteen invites in all (the
    // issuer limiter).
    let mut schedule = String::from("conference: {id: il, title: Limits, timezone: Europe/Brussels}\ntracks:\n  - {key: t, name: T, kind: devroom, coordinators: [col]}\npeople:\n");
    for n in &names[1..] {
        schedule.push_str(&format!("  - {{key: {n}, name: {n}, matrix: \"{}\"}}\n", id(n)));
    }
    schedule.push_str("talks:\n  - {key: t1, title: One, track: t, room: R, start: \"2026-03-14 10:00\", duration: 30, speakers: [ann, ben, cat, dan]}\n");
    for i in 2..5 {
        schedule.push_str(&format!("  - {{key: t{i}, title: T{i}, track: t, room: R, start: \"2026-03-14 1{i}:00\", duration: 30, speakers: [ann]}}\n"));
    }
    let source = common::write(dir.path(), "schedule.yaml", &schedule);
    let cfg = common::write(
        dir.path(),
        "c.yaml",
        &format!("conference: {{id: il}}\nhomeserver: {{server_name: localhost, concurrency: 4}}\nschedule: {{source: {source:?}}}\n"),
    );
    let proxy = Proxy::start(&synapse.url);
    let started = Instant::now();
    let mut cmd = common::stagehand(&["apply", "--json"], &cfg, &proxy.url, &users[0].token);
    cmd.env("RUST_LOG", "stagehand=info");
    let out = common::output_within(&mut cmd, Duration::from_secs(300), "apply under the invite limiters");
    let seconds = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");

    // Every planned pair invited, each once: t1 5, t2-t4 2 each, backstage 1 (col), lounge 4.
    let invited = proxy.invites();
    assert_eq!(proxy.repeated_invites(), Vec::new(), "a receiver got two invites to one room");
    let pairs: HashSet<_> = invited.iter().cloned().collect();
    assert_eq!(pairs.len(), 16, "{invited:?}");
    let to = |who: &str| invited.iter().filter(|(_, u)| *u == id(who)).count();
    assert_eq!((to("ann"), to("col")), (5, 5));
    // The limiters bit: Synapse answered 429 to invites, and the bot waited them out, visibly, with progress.
    let limited = proxy.seen().iter().filter(|s| s.kind == "invite" && s.status == 429).count();
    assert!(limited > 0, "no invite was rate limited: {:?}", proxy.counts());
    assert!(log.contains("rate limited by the homeserver; waiting") && log.contains("invites progress"), "{log}");
    // At least what the limits predict: ann's five invites through the receiver limiter are the slowest lane (the
    // issuer's sixteen and t1's five need less); no more than a few times that plus the build.
    let predicted = [least_seconds(5, PER_RECEIVER), least_seconds(16, PER_ISSUER), least_seconds(5, PER_ROOM)].into_iter().fold(0.0, f64::max);
    assert!(seconds >= predicted * 0.9, "{seconds:.1} s, faster than the limits allow ({predicted:.1} s)");
    assert!(seconds <= predicted * 4.0 + 60.0, "{seconds:.1} s against {predicted:.1} s predicted");
    eprintln!("invite limits: 16 invites, {limited} answered 429, {seconds:.1} s (the limits predict at least {predicted:.1} s)");

    // A rerun sends nothing.
    proxy.reset();
    common::stagehand_json(&["apply", "--json"], &cfg, &proxy.url, &users[0].token);
    proxy.assert_no_writes("a rerun after the limited invites");
}

/// Regression: the `invites` Synapse above went on running, orphaned, after its test binary ended (dropping it at the
/// end of the test removed its directory, pid file included, so the watchdog found nothing to stop at exit). A
/// Synapse a test starts for itself is stopped when the test ends, also by a panic; one never dropped (held in a
/// static, or the binary exiting mid-test) when the test binary ends.
#[test]
fn a_synapse_started_by_a_test_is_not_left_running() {
    const EXIT: &str = "STAGEHAND_TEST_EXIT_HOLDING_SYNAPSE";
    if std::env::var_os(EXIT).is_some() {
        // In a child process: start one, say which, and end the process without running a destructor.
        let synapse = Synapse::start("relaxed", &[]);
        println!("SYNAPSE_PID={}", synapse.pid);
        std::process::exit(0);
    }

    let mut held = None;
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let synapse = Synapse::start("relaxed", &[]);
        held = Some((synapse.pid, synapse.dir.clone()));
        panic!("a test that fails holding its Synapse");
    }));
    let (pid, dir) = held.expect("the Synapse started");
    assert!(failed.is_err());
    assert!(!common::synapse_running(pid), "Synapse pid {pid} still running after its test panicked");
    assert!(!dir.exists(), "{} left behind", dir.display());

    let mut child = Command::new(std::env::current_exe().expect("the test binary's path"));
    child.args(["a_synapse_started_by_a_test_is_not_left_running", "--exact", "--nocapture"]).env(EXIT, "1");
    let out = common::output_within(&mut child, common::CLI_LIMIT, "a test binary that exits holding a Synapse");
    let said = String::from_utf8_lossy(&out.stdout);
    let pid: u32 = said
        .lines()
        .find_map(|l| l.strip_prefix("SYNAPSE_PID=")?.parse().ok())
        .unwrap_or_else(|| panic!("the child started no Synapse:\n{said}{}", String::from_utf8_lossy(&out.stderr)));
    // The watchdog looks every 0.5 s; synapse-stop waits up to 10 s for SIGTERM before SIGKILL.
    let exited = Instant::now();
    while common::synapse_running(pid) && exited.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!common::synapse_running(pid), "Synapse pid {pid} still running 30 s after its test binary exited");
}
