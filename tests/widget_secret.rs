//! Runs of the CLI that start at once on a fresh clone share one widget secret. `stagehand serve` needs the secret
//! and no homeserver, so several are started together in a fresh directory (default secret file
//! `.stagehand/widget-secret`), on a busy machine (the test keeps every core busy meanwhile, as other builds would):
//! each must come up, one must say it created the secret, and each must serve the backstage JSON to the token
//! derived from the secret on disk, 48 characters long.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use stagehand::config::WidgetsConfig;
use stagehand::plan::widgets::{WidgetContext, room_token};

const RUNS: usize = 12;
const ROUNDS: usize = 30;

/// Children killed when the test ends, however it ends.
struct Runs(Vec<Child>);

impl Drop for Runs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Threads that keep every core busy until dropped.
struct Busy(Arc<AtomicBool>);

impl Busy {
    fn start() -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        for _ in 0..2 * cores {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
        }
        Busy(stop)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Distinct free ports: all held until all are chosen.
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    held.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// Reads a run's stderr until it serves; returns what it said, or panics with it if it exited instead.
fn wait_serving(child: &mut Child) -> String {
    let mut said = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        said.push_str(&line);
        said.push('\n');
        if line.starts_with("serving on ") {
            // Keep draining stderr so the run never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return said;
        }
    }
    panic!("a run did not come up: {said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_started_at_once_on_a_fresh_directory_share_one_complete_secret() {
    let schedule = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schedules/example.yaml");
    let http = reqwest::Client::new();
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.yaml"),
            "conference: {id: matrixcamp-2026}\nhomeserver: {server_name: example.org}\n",
        )
        .unwrap();
        let ports = free_ports(RUNS);
        let busy = Busy::start();
        let mut runs = Runs(
            ports
                .iter()
                .map(|port| {
                    Command::new(env!("CARGO_BIN_EXE_stagehand"))
                        .arg("serve")
                        .arg(&schedule)
                        .args(["--config", "config.yaml", "--listen", &format!("127.0.0.1:{port}")])
                        .current_dir(dir.path())
                        .env_remove("STAGEHAND_WIDGET_SECRET")
                        .env("RUST_LOG", "warn")
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect(),
        );
        let said: Vec<String> = runs.0.iter_mut().map(wait_serving).collect();
        drop(busy);
        let created = said.iter().filter(|s| s.contains("created the widget secret .stagehand/widget-secret")).count();
        assert_eq!(created, 1, "round {round}: one run creates the secret: {said:?}");
        let secret = std::fs::read(dir.path().join(".stagehand/widget-secret")).unwrap();
        assert_eq!(secret.len(), 48, "round {round}: the secret on disk is complete");
        assert!(said.iter().all(|s| !s.contains(std::str::from_utf8(&secret).unwrap())), "a run printed the secret");
        let ctx = WidgetContext { conference: "matrixcamp-2026".into(), bot: String::new(), config: WidgetsConfig::default(), secret };
        let token = room_token(&ctx, "backstage/rust");
        let other = room_token(&WidgetContext { secret: b"another secret of 48 characters".to_vec(), ..ctx }, "backstage/rust");
        let refused = format!("http://127.0.0.1:{}/qa/matrixcamp-2026/backstage%2Frust/json?token={other}", ports[0]);
        assert_eq!(http.get(&refused).send().await.unwrap().status().as_u16(), 403, "the page checks its token");
        for port in &ports {
            let url = format!("http://127.0.0.1:{port}/qa/matrixcamp-2026/backstage%2Frust/json?token={token}");
            let status = http.get(&url).send().await.unwrap().status();
            assert_eq!(status.as_u16(), 200, "round {round}: the run on port {port} uses another secret");
        }
    }
}
