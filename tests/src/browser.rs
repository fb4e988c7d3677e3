//! A headless Chromium driven over WebDriver, for end-to-end tests of `EventSource`.
//!
//! [`Browser::launch`] starts Debian's `chromedriver` (package `chromium-driver`, or
//! `CHROMEDRIVER`) on a free loopback port, and through it Debian's `chromium` (or `CHROMIUM`)
//! headless with a fresh profile in a temporary directory; [fantoccini] speaks the protocol.
//! Dropping the [`Browser`] kills chromedriver together with every Chromium process it started
//! and removes the profile, so a failing test leaves nothing behind.
//!
//! Where either program is missing the browser tests are skipped, unless `SSE_REQUIRE_BROWSER`
//! is set (CI sets it), which turns the absence into a failure.

use std::ffi::OsString;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::wd::{Capabilities, WindowHandle};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{Mutex, MutexGuard};

use crate::WITHIN;

/// A running headless Chromium and the chromedriver that controls it; both stop when dropped.
pub struct Browser {
    client: Client,
    windows: Mutex<Windows>,
    driver: Driver,
}

/// One tab. Several may be open at once: each command first brings its own tab to the front.
pub struct Page<'b> {
    browser: &'b Browser,
    window: WindowHandle,
}

/// The tab WebDriver commands currently go to.
struct Windows {
    current: WindowHandle,
    /// Whether `current` is still the blank tab the session started with, free for a page.
    blank: bool,
}

/// The chromedriver process, in a process group of its own that the Chromium processes it
/// starts join (all but the crash handler, which leaves it and exits with the browser), and
/// the browser profile.
struct Driver {
    process: tokio::process::Child,
    /// Removed after the processes are gone (fields drop after `Drop::drop`).
    profile: TempDir,
}

/// `$variable` if set, else the first of `names` found on `PATH`.
fn find_program(variable: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin"));
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Awaits a WebDriver step for up to [`WITHIN`]; panics with `what` if it fails.
async fn step<T, E: Display>(what: &str, future: impl Future<Output = Result<T, E>>) -> T {
    match tokio::time::timeout(WITHIN, future).await {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => panic!("{what}: {error}"),
        Err(_) => panic!("{what}: no answer within {WITHIN:?}"),
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium, or returns `None` (after saying so) where
    /// either is not installed and `SSE_REQUIRE_BROWSER` is not set.
    pub async fn launch() -> Option<Self> {
        let chromium = find_program(
            "CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        );
        let chromedriver = find_program("CHROMEDRIVER", &["chromedriver"]);
        let (Some(chromium), Some(chromedriver)) = (&chromium, &chromedriver) else {
            let missing = [("chromium", &chromium), ("chromedriver", &chromedriver)]
                .into_iter()
                .filter_map(|(name, path)| path.is_none().then_some(name))
                .collect::<Vec<_>>()
                .join(" and ");
            assert!(
                std::env::var_os("SSE_REQUIRE_BROWSER").is_none(),
                "SSE_REQUIRE_BROWSER is set but {missing} could not be found \
                 (install Debian's chromium and chromium-driver)"
            );
            eprintln!("{missing} not found: skipping the browser test");
            return None;
        };
        let profile = tempfile::Builder::new()
            .prefix("sse-chromium-")
            .tempdir()
            .expect("create a profile directory");
        let (driver, port) = Driver::start(chromedriver, profile).await;

        let mut capabilities = Capabilities::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", driver.profile.path().display()),
                ],
            }),
        );
        // Plain HTTP to chromedriver on 127.0.0.1: no TLS.
        let client = step(
            "chromedriver could not start chromium",
            ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await;
        let current = step("the first tab", client.window()).await;
        Some(Self {
            client,
            windows: Mutex::new(Windows {
                current,
                blank: true,
            }),
            driver,
        })
    }

    /// Opens `url` in a tab of its own (the first page takes the tab the browser started with)
    /// and waits until it has loaded.
    pub async fn open(&self, url: &str) -> Page<'_> {
        let mut windows = self.windows.lock().await;
        if windows.blank {
            windows.blank = false;
        } else {
            let tab = step("open a tab", self.client.new_window(true)).await;
            self.switch(&mut windows, &tab.handle).await;
        }
        step(&format!("load {url}"), self.client.goto(url)).await;
        Page {
            browser: self,
            window: windows.current.clone(),
        }
    }

    /// Ends the WebDriver session, which quits Chromium, then stops chromedriver.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(WITHIN, self.client.clone().close()).await;
        self.driver.stop();
        let _ = self.driver.process.wait().await;
    }

    /// Makes `window` the one commands go to; returns the lock that keeps it so.
    async fn focus(&self, window: &WindowHandle) -> MutexGuard<'_, Windows> {
        let mut windows = self.windows.lock().await;
        self.switch(&mut windows, window).await;
        windows
    }

    async fn switch(&self, windows: &mut Windows, window: &WindowHandle) {
        if windows.current != *window {
            step("switch tabs", self.client.switch_to_window(window.clone())).await;
            windows.current = window.clone();
        }
    }
}

impl Page<'_> {
    /// Evaluates a JavaScript expression in the page and returns its JSON value (`null` for
    /// `undefined`). A JavaScript exception fails the test.
    pub async fn evaluate(&self, expression: &str) -> Value {
        let _focus = self.browser.focus(&self.window).await;
        // On lines of their own, so that an expression ending in a `//` comment still works.
        let script = format!("return (\n{expression}\n);");
        step(
            &format!("evaluate {expression:?}"),
            self.browser.client.execute(&script, Vec::new()),
        )
        .await
    }

    /// Evaluates `expression` until `done` holds for its value (up to [`WITHIN`]).
    pub async fn wait_for(&self, expression: &str, done: impl Fn(&Value) -> bool) -> Value {
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

impl Driver {
    /// Starts chromedriver on a free loopback port and returns it with that port.
    async fn start(binary: &Path, profile: TempDir) -> (Self, u16) {
        let mut process = tokio::process::Command::new(binary)
            // Port 0: the system picks a free one, which chromedriver reports on stdout.
            .arg("--port=0")
            // A group of its own, so that one signal reaches Chromium's processes too.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let mut lines = tokio::io::BufReader::new(process.stdout.take().unwrap()).lines();
        // From here on a panic drops the driver, which stops it.
        let driver = Self { process, profile };
        let port = tokio::time::timeout(WITHIN, async {
            while let Some(line) = lines.next_line().await.expect("chromedriver's output") {
                // "ChromeDriver was started successfully on port 41235."
                if let Some(port) = line.split("started successfully on port ").nth(1) {
                    return port.trim().trim_end_matches('.').parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .expect("chromedriver did not start")
        .expect("chromedriver exited or did not say its port");
        // Keep draining its output so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (driver, port)
    }

    /// Kills chromedriver and every process of its group (Chromium's), unless already reaped.
    fn stop(&self) {
        // `id` is `None` once the process was reaped, after which its pid may be reused.
        let Some(pid) = self.process.id() else {
            return;
        };
        let group = rustix::process::Pid::from_raw(pid as i32).expect("a valid pid");
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.stop();
    }
}
