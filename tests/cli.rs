//! The command line as an organiser uses it: exit codes, `validate --json`, `plan`, `diff`, people files, and
//! hostile or broken input that must end in a clear error, never a panic or a hang.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stagehand"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    let out = common::output_within(bin().args(args).current_dir(root()), Duration::from_secs(120), &format!("stagehand {}", args.join(" ")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "stagehand panicked: {stderr}");
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p.display().to_string()
}

#[test]
fn validate_json_reports_counts_of_the_example() {
    let out = run(&["validate", "schedules/example.yaml", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    assert_eq!(v["format"], "yaml");
    assert_eq!((v["days"].as_u64(), v["rooms"].as_u64(), v["tracks"].as_u64()), (Some(2), Some(3), Some(3)));
    assert_eq!((v["talks"].as_u64(), v["people"].as_u64()), (Some(6), Some(4)));
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(0));
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(0));
}

#[test]
fn validate_exits_non_zero_on_errors_with_the_talk_named() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "bad.yaml",
        "conference: {title: T, timezone: Europe/Brussels}\npeople:\n  - {key: a, name: A, matrix: \"alice@example.org\"}\n\
         talks:\n  - {key: t1, title: One, room: R, start: \"2026-03-14 10:00\", duration: 30, speakers: [a, nobody]}\n\
         \x20 - {key: t2, title: Two, room: R, start: \"2026-03-14 10:15\", duration: 30}\n",
    );
    let out = run(&["validate", &f, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let errors = v["errors"].as_array().unwrap();
    assert!(errors.iter().any(|e| e["talk"] == "t1" && e["message"].as_str().unwrap().contains("unknown person \"nobody\"")));
    assert!(errors.iter().any(|e| e["message"].as_str().unwrap().contains("must start with '@'")));
    let warnings = v["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w["talk"] == "t2" && w["message"].as_str().unwrap().contains("overlaps talk t1")));
    for f in errors.iter().chain(warnings) {
        for key in ["file", "line", "column", "talk", "message"] {
            assert!(f.get(key).is_some(), "finding without {key}: {f}");
        }
    }
}

#[test]
fn parse_error_in_json_mode_is_still_one_object_with_line_and_column() {
    let out = run(&["validate", "../shared/schedules/fosdem/fosdem-2026.malformed-conflict-markers.xml", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let e = &v["errors"][0];
    assert_eq!(e["line"], 4053);
    assert_eq!(e["column"], 1);
    assert!(e["file"].as_str().unwrap().ends_with("malformed-conflict-markers.xml"));
}

/// Each hostile or broken input: exit status 1, a message naming what is wrong, no panic.
#[test]
fn hostile_and_broken_inputs_end_in_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fosdem = std::fs::read(root().join("schedules/fosdem-2022.xml")).unwrap();
    let big = d.join("big.xml");
    std::fs::File::create(&big).unwrap().set_len(100 * 1024 * 1024).unwrap();
    let yaml_bomb = {
        let mut s = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (n, p) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("f", "e"), ("g", "f"), ("h", "g"), ("i", "h")] {
            s.push_str(&format!("{n}: &{n} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"));
        }
        s
    };
    let cases: Vec<(String, &str)> = vec![
        (write(d, "truncated.xml", &fosdem[..fosdem.len() / 2]), "truncated"),
        (write(d, "laughs.xml", "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n]>\n<schedule><conference><title>&lol1;</title></conference></schedule>\n"), "entities"),
        (write(d, "xxe.xml", "<!DOCTYPE schedule [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n<schedule>&xxe;</schedule>"), "external"),
        (write(d, "deep.xml", format!("<schedule>{}{}</schedule>", "<x>".repeat(100_000), "</x>".repeat(100_000))), "nested"),
        (write(d, "utf8.xml", b"<schedule>\n<conference><title>caf\xe9</title></conference></schedule>".as_slice()), "UTF-8"),
        (write(d, "bomb.yaml", yaml_bomb), "Stagehand YAML"),
        (write(d, "wrong.yaml", "just: some\nother: yaml\n"), "unknown field"),
        (write(d, "html.xml", "<html><body>not a schedule</body></html>"), "not a Pentabarf"),
        (write(d, "feed.json", std::fs::read(root().join("../shared/schedules/conference-bot/fosdem_democon.json")).unwrap()), "--people"),
        (write(d, "empty.xml", ""), "empty"),
        (write(d, "duration.xml", "<schedule><conference><time_zone_name>UTC</time_zone_name></conference><day index=\"1\" date=\"2026-01-01\"><room name=\"A\"><event id=\"1\"><start>10:00</start><duration>9999999999999:00</duration><title>T</title></event></room></day></schedule>"), "unreadable <duration>"),
        (write(d, "far.yaml", "conference: {title: T, timezone: UTC}\ntalks:\n  - {key: a, title: A, room: R, start: \"2026-01-01 10:00\", duration: 99999999999}\n"), "longer than a week"),
        (big.display().to_string(), "limit"),
    ];
    for (file, expect) in cases {
        let out = run(&["validate", &file]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
        assert!(stderr.contains(expect), "{file}: expected {expect:?} in: {stderr}");
    }
}

#[test]
fn script_in_a_title_is_a_warning_and_kept_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "xss.xml",
        "<schedule><conference><title>X</title><time_zone_name>UTC</time_zone_name></conference>\
         <day index=\"1\" date=\"2026-01-01\"><room name=\"A\"><event id=\"1\"><start>10:00</start><duration>00:30</duration>\
         <title>&lt;script&gt;alert(1)&lt;/script&gt; talk</title><track>T</track></event></room></day></schedule>",
    );
    let out = run(&["validate", &f, "--json"]);
    assert!(out.status.success());
    let v = json(&out);
    assert!(v["warnings"].as_array().unwrap().iter().any(|w| w["message"].as_str().unwrap().contains("markup")));
    let out = run(&["plan", &f, "--json"]);
    let plan = json(&out);
    let names: Vec<&str> = plan["rooms"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"<script>alert(1)</script> talk"), "{names:?}");
}

#[test]
fn plan_prints_the_hierarchy_with_aliases_and_counts() {
    let out = run(&["plan", "schedules/example.yaml"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Matrix Camp 2026  #matrixcamp-2026:example.org  [root space, 6 talks]"), "{text}");
    assert!(text.contains("    Rust devroom  #matrixcamp-2026-rust:example.org  [track room, 3 talks]"));
    assert!(text.contains("#matrixcamp-2026-talk-late-night:example.org  [talk room]"));
    assert!(text.trim_end().ends_with("18 rooms in all"), "{text}");
}

#[test]
fn plan_of_the_fosdem_2022_sample_has_the_2022_shape() {
    let out = run(&["plan", "--config", "schedules/fosdem-2022.config.yaml", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan = json(&out);
    let rooms = plan["rooms"].as_array().unwrap();
    let count = |k: &str| rooms.iter().filter(|r| r["kind"] == k).count();
    // One room per talk (730), a public room and a backstage per track (100), spaces and support rooms.
    assert_eq!(count("talk_room"), 730);
    assert_eq!(count("track_room") + count("stand"), 100);
    assert_eq!(count("backstage"), 100);
    assert!((930..=945).contains(&rooms.len()), "{} rooms", rooms.len());
    let mut aliases: Vec<&str> = rooms.iter().map(|r| r["alias"].as_str().unwrap()).collect();
    aliases.sort();
    aliases.dedup();
    assert_eq!(aliases.len(), rooms.len(), "aliases are unique");
    for r in rooms {
        let order = r["order"].as_str().unwrap();
        assert!(order.len() <= 50 && order.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{order:?}");
    }
}

#[test]
fn diff_lists_changes_between_two_yaml_versions() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(root().join("schedules/example.yaml")).unwrap();
    let changed = base
        .replace("title: Async Rust without tears", "title: Async Rust, tears included")
        .replace("start: 2026-03-15 17:00", "start: 2026-03-15 17:30")
        .replace("speakers: [grace, linus]", "speakers: [grace]");
    let new = write(dir.path(), "new.yaml", changed);
    let out = run(&["diff", "schedules/example.yaml", &new, "--json"]);
    assert!(out.status.success());
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<(&str, &str)> = v.iter().map(|c| (c["kind"].as_str().unwrap(), c["talk"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("retimed", "closing"), ("retitled", "rust-async"), ("respeakered", "rust-async")]);
}

const PEOPLE_CSV: &str = "key,name,email,matrix,role,track,talk\n9012,,john@example.org,@john:example.org;@jt:matrix.org,,,\n\
                          ,Ilian Interlocutor,,@ilian:example.org,host,,E001\nboss,Bea Boss,bea@example.org,,coordinator,Track01,\n";

/// The people file's Matrix IDs, e-mails and roles, compared with the plan room by room (not only counted).
#[test]
fn people_files_add_matrix_ids_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "people.csv", PEOPLE_CSV);
    let schedule = "../shared/schedules/conference-bot/pentabarf02_withqa.xml";
    let out = run(&["plan", schedule, "--people", &csv, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan = json(&out);
    // room -> (person, role, power, Matrix IDs, e-mails), sorted.
    let mut members: Vec<(String, String, String, i64, String, String)> = Vec::new();
    for room in plan["rooms"].as_array().unwrap() {
        for m in room["members"].as_array().unwrap() {
            let list = |k: &str| m[k].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect::<Vec<_>>().join(" ");
            members.push((text_of(room, "key"), text_of(m, "person"), text_of(m, "role"), m["power"].as_i64().unwrap(), list("user_ids"), list("emails")));
        }
    }
    members.sort();
    let row = |room: &str, person: &str, role: &str, power: i64, ids: &str, emails: &str| {
        (room.to_string(), person.to_string(), role.to_string(), power, ids.to_string(), emails.to_string())
    };
    let john = ("9012", "@john:example.org @jt:matrix.org", "john@example.org");
    let ilian = ("6526", "@ilian:example.org", "");
    let bea = ("boss", "", "bea@example.org");
    let expected = vec![
        // Ilian hosts E001 by the people file (matched by name), Bea coordinates Track01, so its backstage.
        row("backstage/track01", ilian.0, "host", 50, ilian.1, ilian.2),
        row("backstage/track01", bea.0, "coordinator", 50, bea.1, bea.2),
        row("support/speakers", ilian.0, "speaker", 0, ilian.1, ilian.2),
        row("support/speakers", john.0, "speaker", 0, john.1, john.2),
        row("support/speakers", "90367", "speaker", 0, "", ""),
        row("talk/E001", ilian.0, "host", 50, ilian.1, ilian.2),
        row("talk/E001", john.0, "speaker", 50, john.1, john.2),
        row("talk/E001", "90367", "speaker", 50, "", ""),
        row("talk/E001", bea.0, "coordinator", 50, bea.1, bea.2),
        row("talk/E002", ilian.0, "speaker", 50, ilian.1, ilian.2),
    ];
    let mut expected = expected;
    expected.sort();
    assert_eq!(members, expected);
    // Ilian's entry has no key: matched by display name, said with both sides and the line.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("people.csv:3: warning: the entry \"Ilian Interlocutor\" has no key") && stderr.contains("schedule person 6526 (\"Ilian Interlocutor\") by display name only"),
        "{stderr}"
    );
    let out = run(&["validate", schedule, "--people", &csv, "--json"]);
    let v = json(&out);
    // Bea is new (a coordinator who gives no talk): 3 speakers + 1.
    assert_eq!(v["people"], 4);
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(0), "{v}");
}

fn text_of(v: &serde_json::Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

/// `schedule.refuse_name_only_matches: true`: the name-only match is an error and its attributes are not applied.
#[test]
fn a_name_only_match_can_be_refused_by_config() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "people.csv", PEOPLE_CSV);
    let cfg = write(
        dir.path(),
        "c.yaml",
        format!(
            "conference: {{id: x}}\nhomeserver: {{server_name: example.org}}\nschedule: {{source: ../shared/schedules/conference-bot/pentabarf02_withqa.xml, people: {csv}, refuse_name_only_matches: true}}\n"
        ),
    );
    let out = run(&["validate", "--config", &cfg, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(errors[0]["line"], 3);
    let message = errors[0]["message"].as_str().unwrap();
    assert!(message.contains("\"Ilian Interlocutor\"") && message.contains("6526") && message.contains("refused"), "{message}");
}

#[test]
fn fosdem_speaker_feed_as_people_file() {
    let out = run(&[
        "validate",
        "tests/fixtures/feed-talks.yaml",
        "--people",
        "../shared/schedules/conference-bot/fosdem_democon.json",
        "--json",
    ]);
    let v = json(&out);
    assert!(out.status.success(), "{v}");
    // Iarlaith, Niamh, Yasunori, Vivaldo, Conal, Chloé (twice in the feed, once here), Bert Boss (manager only).
    assert_eq!(v["people"], 7, "{v}");
}

/// The harness's bound on commands: a hang fails the test, naming what it waited for, instead of stalling CI.
#[test]
fn a_command_that_hangs_fails_the_test_and_says_what_it_waited_for() {
    let started = std::time::Instant::now();
    let hung = std::panic::catch_unwind(|| common::output_within(Command::new("sleep").arg("30"), Duration::from_millis(300), "sleep 30"));
    let message = hung.err().and_then(|p| p.downcast_ref::<String>().cloned()).unwrap_or_default();
    assert!(message.contains("sleep 30: still running after 300ms"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// One HTTP GET over a plain TCP connection: (status line, body).
fn http_get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.lines().next().unwrap_or_default().to_string(), body.to_string())
}

/// `stagehand serve`: it says where it listens, answers /healthz and the home page, and stops cleanly on SIGTERM.
#[test]
fn serve_answers_health_and_the_home_page_and_stops_on_sigterm() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "c.yaml", "conference: {id: camp-serve}\nhomeserver: {server_name: example.org}\n");
    let addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let mut child = bin()
        .args(["serve", "schedules/example.yaml", "--config", &cfg, "--listen", &addr])
        .env("STAGEHAND_WIDGET_SECRET", "a-test-secret-of-enough-length")
        .current_dir(root())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let said = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.starts_with("serving on") => break line,
            Ok(_) => continue,
            Err(e) => {
                let _ = child.kill();
                panic!("stagehand serve never said it was serving ({e})");
            }
        }
    };
    assert!(said.contains(&format!("http://{addr}")), "{said}");
    let health = http_get(&addr, "/healthz");
    let home = http_get(&addr, "/");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("stagehand serve did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(health, ("HTTP/1.1 200 OK".to_string(), "ok".to_string()));
    assert!(home.0.contains("200") && home.1.contains("Matrix Camp 2026"), "{home:?}");
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
}
