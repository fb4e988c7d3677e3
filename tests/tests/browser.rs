//! A real browser: headless Chromium opens the `basic` example's page, whose `EventSource`s show
//! the events live; when the server ends a stream, the browser reconnects and sends
//! `Last-Event-ID`, and the server resumes after it.
//!
//! Skipped where Chromium is not installed, unless `SSE_REQUIRE_BROWSER` is set (CI sets it).

use serde_json::Value;
use tests::ExampleProcess;
use tests::browser::Browser;

fn events(log: &Value) -> Vec<(String, String)> {
    log["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| {
                    (
                        e["id"].as_str().unwrap_or("").to_owned(),
                        e["data"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_browser_receives_events_live_and_resumes_after_a_reconnect() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let server = ExampleProcess::start("basic").await;
    let page = browser.open(&server.url("/")).await;

    // /resume sends three events and ends; the browser reconnects with Last-Event-ID: 3, and the
    // server continues with 4, 5, 6.
    let resume = page
        .wait_for("window.sseLog && window.sseLog.resume", |log| {
            events(log).len() >= 6
        })
        .await;
    let received = events(&resume);
    let expected: Vec<_> = (1..=6).map(|i| (i.to_string(), i.to_string())).collect();
    assert_eq!(
        received[..6],
        expected[..],
        "ids must continue across the reconnect"
    );
    assert!(
        resume["opens"].as_u64().unwrap() >= 2,
        "the browser reconnected: {resume}"
    );
    server
        .log_line("resume: client connected last_event_id=3")
        .await;

    // /numbers: 1 to 5, live.
    let numbers = page
        .wait_for("window.sseLog.numbers", |log| events(log).len() >= 5)
        .await;
    let data: Vec<_> = events(&numbers).into_iter().map(|(_, data)| data).collect();
    assert_eq!(data, ["1", "2", "3", "4", "5"]);

    // The idle-but-open stream delivered its one event; the endless one keeps going.
    let conditional = page.evaluate("window.sseLog.conditional").await;
    assert_eq!(
        events(&conditional),
        [(String::new(), "new data available".to_owned())]
    );
    let endless = page.evaluate("window.sseLog.endless").await;
    assert!(!events(&endless).is_empty(), "{endless}");

    // What a person sees: the events are in the page itself.
    let shown = page
        .evaluate("document.getElementById('numbers').innerText")
        .await;
    assert_eq!(
        shown.as_str().unwrap().lines().collect::<Vec<_>>(),
        ["1", "2", "3", "4", "5"]
    );

    browser.close().await;
    server.stop().await;
}
