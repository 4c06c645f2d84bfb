//! Invites under Synapse's invite limiters (`rc_invites` per room, per receiver and per issuer), with the test
//! profile `invites` of `scripts/synapse-start`: Synapse's shape at test scale (per room 0.5/s burst 3, per receiver
//! 0.25/s burst 2, per issuer 1/s burst 6), so that each bites within seconds. The run completes, nobody gets two
//! invites to one room (counted at the proxy), the waits are logged with progress, and the time is at least what the
//! limits predict.

mod common;

use std::collections::HashSet;
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
