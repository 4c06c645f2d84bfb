//! A page in headless Chromium driven over the DevTools protocol, for pages that stay connected (an event stream):
//! `--dump-dom` cannot wait for those. Navigate, then read the page with JavaScript until it says what is expected.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    socket: Socket,
    next_id: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts Chromium on `url`.
    pub async fn open(chromium: &std::path::Path, url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=900,600",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start chromium");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(ws) = line.split("DevTools listening on ").nth(1) {
                    let _ = tx.send(ws.trim().to_string());
                }
            }
        });
        let browser_ws = rx.recv_timeout(Duration::from_secs(30)).expect("chromium printed no DevTools address");
        let port = browser_ws.trim_start_matches("ws://").split('/').next().unwrap().to_string();
        let list: Value = reqwest::get(format!("http://{port}/json/list")).await.unwrap().json().await.unwrap();
        let page = list.as_array().unwrap().iter().find(|t| t["type"] == "page").expect("no page target");
        let (socket, _) = tokio_tungstenite::connect_async(page["webSocketDebuggerUrl"].as_str().unwrap()).await.unwrap();
        let mut b = Browser { child, _profile: profile, socket, next_id: 0 };
        b.call("Page.navigate", json!({"url": url})).await;
        b
    }

    /// One protocol call; its result.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.socket.send(Message::text(json!({"id": id, "method": method, "params": params}).to_string())).await.unwrap();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.socket.next()).await.expect("no answer from chromium");
            let Some(Ok(Message::Text(text))) = msg else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                return v["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true})).await;
        r["result"]["value"].clone()
    }

    /// Reads `expression` until `ok` holds (every 50 ms, up to `limit`); the last value and how long it took.
    pub async fn wait_for(&mut self, expression: &str, limit: Duration, ok: impl Fn(&Value) -> bool) -> (Value, Duration) {
        let start = Instant::now();
        loop {
            let v = self.eval(expression).await;
            if ok(&v) || start.elapsed() > limit {
                return (v, start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A PNG of the page, saved to `path`.
    pub async fn screenshot(&mut self, path: &std::path::Path) {
        use base64_png::decode;
        let r = self.call("Page.captureScreenshot", json!({"format": "png"})).await;
        if let Some(data) = r["data"].as_str() {
            std::fs::write(path, decode(data)).unwrap();
        }
    }
}

/// Just enough base64 to save a screenshot.
mod base64_png {
    pub fn decode(s: &str) -> Vec<u8> {
        let val = |c: u8| match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        };
        let mut out = Vec::with_capacity(s.len() * 3 / 4);
        let (mut acc, mut bits) = (0u32, 0);
        for v in s.bytes().filter_map(val) {
            acc = (acc << 6) | v as u32;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }
}
