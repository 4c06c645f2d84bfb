//! Test harness: one real Synapse per test binary (per rate-limit profile), started by `scripts/synapse-start` on
//! loopback with SQLite, and stopped when dropped or, at the latest, by a watchdog when the test process ends. Users
//! are registered through the shared-secret admin API. Tests isolate themselves by conference id and user names.

#![allow(dead_code)]

pub mod proxy;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long one CLI call in a test may take before the test fails (a hang fails, it does not stall CI).
pub const CLI_LIMIT: Duration = Duration::from_secs(300);

/// How long the test API client waits out 429s on one request, in total.
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(120);

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `NAME=value` lines a harness script prints.
fn script_vars(stdout: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(stdout).lines().filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))).collect()
}

/// The state directory of a server started by a harness script (`scripts/synapse-start`, `scripts/sydent-start`),
/// which owns stopping it: `stop DIR` and then removing DIR run when this is dropped (a test's own server, at the end
/// of the test or when it panics), or else by a watchdog once this test process is gone, whatever way it ends (a
/// server held in a static is never dropped; `process::exit` and signals run no destructors). DIR is not removed
/// before the server is stopped: the stop script finds in it what to stop (the pids, Synapse's database in /dev/shm).
struct ServerDir {
    path: PathBuf,
    stop: &'static str,
}

impl ServerDir {
    /// A fresh temporary directory, with its watchdog already running (so it also covers a test process that dies
    /// while the server is starting).
    fn new(prefix: &str, stop: &'static str) -> ServerDir {
        let path = tempfile::Builder::new().prefix(prefix).tempdir().expect("temp dir").keep();
        let watchdog = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} {dir} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            stop = root().join(stop).display(),
            dir = path.display()
        );
        Command::new("setsid").args(["bash", "-c", &watchdog]).spawn().expect("start the watchdog");
        ServerDir { path, stop }
    }
}

impl Drop for ServerDir {
    fn drop(&mut self) {
        // Said, not raised: a panic in a drop during a failing test's unwinding would abort the binary, and the
        // watchdog still stops the server when the process ends.
        match Command::new(root().join(self.stop)).arg(&self.path).output() {
            Ok(out) if out.status.success() => {
                if let Err(e) = std::fs::remove_dir_all(&self.path) {
                    eprintln!("cannot remove {}: {e}", self.path.display());
                }
            }
            Ok(out) => eprintln!("{} {} failed: {}", self.stop, self.path.display(), String::from_utf8_lossy(&out.stderr)),
            Err(e) => eprintln!("cannot run {}: {e}", self.stop),
        }
    }
}

pub struct Synapse {
    pub url: String,
    pub server_name: String,
    pub dir: PathBuf,
    /// Synapse's process id.
    pub pid: u32,
    _server: ServerDir,
}

/// A registered user.
#[derive(Clone, Debug)]
pub struct User {
    pub user_id: String,
    pub token: String,
}

impl Synapse {
    /// Starts a Synapse with the given profile (`relaxed` or `default`); `appservices` are registration files
    /// (name, YAML) to install before it starts.
    pub fn start(profile: &str, appservices: &[(&str, String)]) -> Synapse {
        Synapse::start_with(profile, appservices, &[])
    }

    /// [`Synapse::start`] with environment for `scripts/synapse-start` (`SYNAPSE_FEDERATION_TLS=1`).
    pub fn start_with(profile: &str, appservices: &[(&str, String)], env: &[(&str, &str)]) -> Synapse {
        let server = ServerDir::new("stagehand-synapse-", "scripts/synapse-stop");
        let dir = server.path.clone();
        if !appservices.is_empty() {
            std::fs::create_dir_all(dir.join("appservices")).unwrap();
            for (name, yaml) in appservices {
                std::fs::write(dir.join("appservices").join(format!("{name}.yaml")), yaml).unwrap();
            }
        }
        let out = Command::new(root().join("scripts/synapse-start"))
            .arg(&dir)
            .arg(profile)
            .env("SYNAPSE_LOG_LEVEL", "WARNING")
            .envs(env.iter().copied())
            .output()
            .expect("run scripts/synapse-start");
        assert!(out.status.success(), "synapse-start failed: {}", String::from_utf8_lossy(&out.stderr));
        let vars = script_vars(&out.stdout);
        Synapse {
            url: vars["SYNAPSE_URL"].clone(),
            server_name: vars["SYNAPSE_SERVER_NAME"].clone(),
            dir,
            pid: vars["SYNAPSE_PID"].parse().expect("synapse-start prints SYNAPSE_PID"),
            _server: server,
        }
    }

    /// Registers (or logs in) a user through the shared-secret admin API.
    pub fn register(&self, name: &str, admin: bool) -> User {
        let mut cmd = Command::new(root().join("scripts/synapse-register"));
        cmd.arg(&self.dir).arg(name).arg(format!("pw-{name}"));
        if admin {
            cmd.arg("admin");
        }
        let out = cmd.output().expect("run scripts/synapse-register");
        assert!(out.status.success(), "register {name}: {}", String::from_utf8_lossy(&out.stderr));
        let vars = script_vars(&out.stdout);
        User { user_id: vars["USER_ID"].clone(), token: vars["ACCESS_TOKEN"].clone() }
    }
}

/// Whether process `pid` is a running Synapse (not one that has exited, nor another process that got its pid).
pub fn synapse_running(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("synapse.app.homeserver"))
}

/// The relaxed-profile Synapse shared by the tests of this binary.
pub fn synapse() -> &'static Synapse {
    static S: OnceLock<Synapse> = OnceLock::new();
    S.get_or_init(|| Synapse::start("relaxed", &[]))
}

/// A throw-away identity server (sydent behind a TLS proxy, with an SMTP sink), from `scripts/sydent-start`.
pub struct Sydent {
    /// Where a client reaches it directly.
    pub url: String,
    /// The `id_server` a homeserver is given.
    pub server: String,
    /// One file per mail sent.
    pub mail_dir: PathBuf,
    _server: ServerDir,
}

impl Sydent {
    /// Starts one for a Synapse started with `SYNAPSE_FEDERATION_TLS=1`; stopped when dropped or the test process
    /// ends.
    pub fn start(synapse: &Synapse) -> Sydent {
        let server = ServerDir::new("stagehand-sydent-", "scripts/sydent-stop");
        let out = Command::new(root().join("scripts/sydent-start")).arg(&server.path).arg(&synapse.dir).output().expect("run scripts/sydent-start");
        assert!(out.status.success(), "sydent-start failed: {}", String::from_utf8_lossy(&out.stderr));
        let vars = script_vars(&out.stdout);
        Sydent {
            url: vars["SYDENT_URL"].clone(),
            server: vars["SYDENT_SERVER"].clone(),
            mail_dir: PathBuf::from(&vars["SYDENT_MAIL_DIR"]),
            _server: server,
        }
    }

    /// Every mail sent so far, oldest first.
    pub fn mails(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.mail_dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        files.sort();
        files.iter().map(|f| std::fs::read_to_string(f).unwrap_or_default()).collect()
    }
}

/// A plain HTTP client for checks independent of Stagehand's own code.
pub struct Api {
    pub base: String,
    pub token: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        // Every request bounded: a homeserver that stops answering fails the test instead of stalling it.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().expect("an HTTP client");
        Api { base: base.to_string(), token: token.to_string(), http }
    }

    /// GET, waiting out 429s (Synapse limits some reads, such as the hierarchy, whatever the profile), at most
    /// [`RATE_LIMIT_WAIT`] in all.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let start = Instant::now();
        loop {
            let resp = self
                .http
                .get(format!("{}{}", self.base, path))
                .bearer_auth(&self.token)
                .send()
                .await
                .expect("GET");
            let status = resp.status().as_u16();
            let body = resp.json().await.unwrap_or(serde_json::Value::Null);
            if status == 429 {
                let ms = body["retry_after_ms"].as_u64().unwrap_or(500);
                assert!(
                    start.elapsed() + Duration::from_millis(ms) < RATE_LIMIT_WAIT,
                    "GET {path}: still rate limited after {:?} (next retry in {ms} ms)",
                    start.elapsed()
                );
                tokio::time::sleep(std::time::Duration::from_millis(ms + 10)).await;
                continue;
            }
            return (status, body);
        }
    }

    pub async fn put(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .put(format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("PUT");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .post(format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }
}

/// Percent-encodes a path segment (room ids and aliases contain `!`, `#` and `:`).
#[allow(unused_imports)]
pub use stagehand::plan::widgets::enc;

/// Runs `cmd` to its end within `limit`, collecting its output; if it takes longer, kills it and fails the test
/// saying what it waited for (`what`) and what the command printed so far.
pub fn output_within(cmd: &mut Command, limit: Duration, what: &str) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let err = stderr.join().unwrap_or_default();
                let tail: String = String::from_utf8_lossy(&err).lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
                panic!("{what}: still running after {limit:?}, killed; its last output:\n{tail}");
            }
        }
    };
    Output { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() }
}

/// `stagehand ARGS --config CONFIG --homeserver URL` with the bot's token, run from the repository root.
pub fn stagehand(args: &[&str], config: &Path, url: &str, token: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stagehand"));
    cmd.args(args).arg("--config").arg(config).args(["--homeserver", url]).env("STAGEHAND_ACCESS_TOKEN", token).current_dir(root());
    cmd
}

/// Runs a `stagehand ... --json` command within [`CLI_LIMIT`]; fails unless it succeeds, and returns its report.
pub fn stagehand_json(args: &[&str], config: &Path, url: &str, token: &str) -> serde_json::Value {
    let what = format!("stagehand {}", args.join(" "));
    let out = output_within(&mut stagehand(args, config, url, token), CLI_LIMIT, &what);
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// Runs `stagehand apply` with this config and token until it reaches the test point (`create:N`, `state:N`,
/// `invite:N`), then SIGKILLs it: no chance to clean up. Fails if the point is not reached within [`CLI_LIMIT`] or
/// the bot ends before it.
pub fn apply_killed_at(point: &str, config: &Path, token: &str, url: &str) {
    use std::io::BufRead;
    let mut child = stagehand(&["apply"], config, url, token)
        .env("STAGEHAND_TEST_PAUSE_AFTER", point)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run stagehand apply");
    let stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let reached = line.starts_with("STAGEHAND_TEST_POINT");
            if tx.send((reached, line)).is_err() || reached {
                return;
            }
        }
    });
    let start = Instant::now();
    let mut said = Vec::new();
    let reached = loop {
        match rx.recv_timeout(CLI_LIMIT.saturating_sub(start.elapsed())) {
            Ok((true, _)) => break Ok(()),
            Ok((false, line)) => said.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break Err(format!("not reached within {CLI_LIMIT:?}")),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break Err("the bot ended first".to_string()),
        }
    };
    let killed = Command::new("kill").arg("-9").arg(child.id().to_string()).status();
    let _ = child.wait(); // reaps the killed child; its exit status is SIGKILL by construction
    assert!(killed.is_ok_and(|s| s.success()), "could not SIGKILL the bot");
    if let Err(why) = reached {
        panic!("waiting for the bot to reach test point {point}: {why}; it said:\n{}", said.join("\n"));
    }
}

/// Environment for one test without `std::env::set_var` (which races with the sibling tests' reads): unless `vars`
/// are set in this process already, runs the test `test` (its full name) again in a child process that has them,
/// fails if it fails there, and returns false (the caller returns); in that child it returns true and the test goes on.
pub fn with_env(test: &str, vars: &[(&str, &str)]) -> bool {
    if vars.iter().all(|(k, v)| std::env::var(k).is_ok_and(|x| x == *v)) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--test-threads=1"]).envs(vars.iter().copied());
    let out = output_within(&mut cmd, CLI_LIMIT, &format!("{test} in a child process"));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("1 passed"), "{test}, run with {vars:?} in a child process:\n{said}");
    false
}

/// A Pentabarf export with every `<event id="N">` rewritten (N + 1,000,000) and everything else, guids included, kept:
/// what FOSDEM did between two 2024 exports.
pub fn with_event_ids_rewritten(xml: &str) -> String {
    const TAG: &str = " id=\"";
    let mut out = String::with_capacity(xml.len() + xml.len() / 100);
    let mut rest = xml;
    while let Some(at) = rest.find("<event ") {
        let (before, tag) = rest.split_at(at);
        out.push_str(before);
        let end = tag.find('>').unwrap_or(tag.len());
        let (head, tail) = tag.split_at(end);
        match head.find(TAG).and_then(|i| {
            let digits = &head[i + TAG.len()..];
            let n = digits.find('"')?;
            Some((i + TAG.len(), n, digits[..n].parse::<u64>().ok()?))
        }) {
            Some((start, len, id)) => {
                out.push_str(&head[..start]);
                out.push_str(&(id + 1_000_000).to_string());
                out.push_str(&head[start + len..]);
            }
            None => out.push_str(head),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// A free loopback port (for `stagehand run --listen`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Headless Chromium (Debian's `chromium`, installed by scripts/test).
pub fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("Chromium is not installed: run scripts/test (it installs Debian's chromium package)")
}

/// Stops a long-running `stagehand` (SIGTERM, then a kill after 40 s); what it printed on stderr.
pub fn stop(child: &mut std::process::Child) -> String {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(40) && !matches!(child.try_wait(), Ok(Some(_))) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    err
}
