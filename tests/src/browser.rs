//! A headless Chromium driven over the DevTools protocol, for end-to-end tests of `EventSource`.
//!
//! [`Browser::launch`] finds Debian's `chromium` (or `CHROMIUM`), starts it headless with a fresh
//! profile and `--remote-debugging-port=0`, and talks to a page over the protocol's WebSocket.
//! Where Chromium is missing the browser tests are skipped, unless `SSE_REQUIRE_BROWSER` is set
//! (CI sets it), which turns the absence into a failure.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

use crate::WITHIN;

/// A running headless Chromium; killed when dropped.
pub struct Browser {
    child: tokio::process::Child,
    devtools: String,
    _profile: TempDir,
}

/// One tab, controlled over its DevTools WebSocket.
pub struct Page {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

fn chromium_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.exists())
}

impl Browser {
    /// Starts Chromium, or returns `None` (after saying so) where it is not installed and
    /// `SSE_REQUIRE_BROWSER` is not set.
    pub async fn launch() -> Option<Self> {
        let Some(binary) = chromium_path() else {
            assert!(
                std::env::var_os("SSE_REQUIRE_BROWSER").is_none(),
                "SSE_REQUIRE_BROWSER is set but no chromium was found (install Debian's chromium)"
            );
            eprintln!("chromium not found: skipping the browser test");
            return None;
        };
        let profile = tempfile::Builder::new()
            .prefix("sse-chromium-")
            .tempdir()
            .expect("create a profile directory");
        let mut child = tokio::process::Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium");
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let devtools = tokio::time::timeout(WITHIN, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    // ws://127.0.0.1:PORT/devtools/browser/ID -> http://127.0.0.1:PORT
                    let host = url.trim().trim_start_matches("ws://");
                    let host = host.split('/').next().unwrap();
                    return format!("http://{host}");
                }
            }
            panic!("chromium exited before opening its DevTools port");
        })
        .await
        .expect("chromium did not start");
        // Keep draining its log so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Self {
            child,
            devtools,
            _profile: profile,
        })
    }

    /// Opens `url` in a new tab.
    pub async fn open(&self, url: &str) -> Page {
        let client = reqwest::Client::new();
        let reply = client
            .put(format!("{}/json/new?{url}", self.devtools))
            .send()
            .await
            .expect("DevTools /json/new")
            .text()
            .await
            .expect("a target description");
        let target: Value = serde_json::from_str(&reply).expect("DevTools JSON");
        let ws = target["webSocketDebuggerUrl"]
            .as_str()
            .expect("webSocketDebuggerUrl");
        let (socket, _) = tokio_tungstenite::connect_async(ws)
            .await
            .expect("DevTools WebSocket");
        Page { socket, next_id: 0 }
    }

    /// Stops the browser.
    pub async fn close(mut self) {
        let _ = self.child.kill().await;
    }
}

impl Page {
    /// Sends a DevTools command and returns its result.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(Message::text(command.to_string()))
            .await
            .expect("send a DevTools command");
        tokio::time::timeout(WITHIN, async {
            while let Some(message) = self.socket.next().await {
                let Ok(Message::Text(text)) = message else {
                    continue;
                };
                let reply: Value = serde_json::from_str(&text).expect("DevTools JSON");
                if reply["id"] == id {
                    assert!(reply.get("error").is_none(), "{method} failed: {reply}");
                    return reply["result"].clone();
                }
            }
            panic!("the DevTools connection closed");
        })
        .await
        .expect("no DevTools reply")
    }

    /// Evaluates a JavaScript expression in the page and returns its JSON value.
    pub async fn evaluate(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` until `done` holds for its value (up to [`WITHIN`]).
    pub async fn wait_for(&mut self, expression: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            let value = self.evaluate(expression).await;
            if done(&value) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting; last value: {value}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
