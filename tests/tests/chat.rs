//! The `chat` example, started as the real process users run (`PORT=0`): a reconnect with the
//! last id gets exactly the missed messages, then live ones; the page embeds the head so its
//! first connection misses nothing; bad rooms and oversized messages are refused; a client that
//! missed more than the history holds gets one reset. And the page itself, in Chromium.
//!
//! The browser part is skipped where Chromium is not installed, unless `SSE_REQUIRE_BROWSER` is
//! set (CI sets it).

use serde_json::Value;
use tests::browser::Browser;
use tests::{ExampleProcess, HttpStream, WITHIN};

/// What a message event looks like on the wire.
fn message(id: &str, text: &str) -> String {
    format!("id: {id}\r\nevent: message\r\ndata: {text}\r\n\r\n")
}

/// The first event of every stream of the example.
const RETRY: &str = "retry: 1000\r\n\r\n";

/// POSTs `body` to `path`; returns the status and the answer.
async fn post(server: &ExampleProcess, path: &str, body: impl Into<String>) -> (u16, String) {
    let request = reqwest::Client::new()
        .post(server.url(path))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body.into())
        .send();
    let response = tokio::time::timeout(WITHIN, request)
        .await
        .expect("no answer")
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Says `text` in `room`; returns the message's id.
async fn say(server: &ExampleProcess, room: &str, text: &str) -> String {
    let (status, id) = post(server, &format!("/rooms/{room}/messages"), text).await;
    assert_eq!(status, 200, "{id}");
    assert!(is_event_id(&id), "{id:?}");
    id
}

/// `<letters>:<digits>`.
fn is_event_id(id: &str) -> bool {
    id.split_once(':').is_some_and(|(epoch, seq)| {
        !epoch.is_empty()
            && epoch.bytes().all(|b| b.is_ascii_alphabetic())
            && !seq.is_empty()
            && seq.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The page at `path` (which must be served) and the head id rendered into it.
async fn page(server: &ExampleProcess, path: &str) -> (String, String) {
    let mut page = HttpStream::get(&server.url(path), &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    assert_eq!(page.header("cache-control"), "no-store");
    let html = page.to_end().await.to_owned();
    let head = html
        .split("data-head=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page embeds the head")
        .to_owned();
    assert!(is_event_id(&head), "{head:?}");
    (html, head)
}

async fn status_of_get(server: &ExampleProcess, path: &str) -> u16 {
    HttpStream::get(&server.url(path), &[]).await.status
}

#[tokio::test]
async fn a_reconnect_with_the_last_id_gets_exactly_the_missed_messages_then_live_ones() {
    let server = ExampleProcess::start("chat").await;
    // The page is loaded, then someone speaks before its first connection: the head rendered
    // into the page makes that connection replay it.
    let (_, head) = page(&server, "/").await;
    let first_id = say(&server, "lobby", "before the connection").await;
    let mut stream = HttpStream::get(
        &server.url(&format!("/rooms/lobby/events?last_event_id={head}")),
        &[],
    )
    .await;
    assert_eq!(stream.status, 200);
    assert_eq!(
        stream.header("content-type"),
        "text/event-stream; charset=utf-8"
    );
    stream
        .until(&message(&first_id, "before the connection"))
        .await;
    let live_id = say(&server, "lobby", "live").await;
    let body = stream.until(&message(&live_id, "live")).await;
    assert_eq!(
        body,
        format!(
            "{RETRY}{}{}",
            message(&first_id, "before the connection"),
            message(&live_id, "live")
        )
    );

    // The connection drops; the room goes on without it (and another room too).
    drop(stream);
    let missed = [
        say(&server, "lobby", "missed 1").await,
        say(&server, "elsewhere", "not for the lobby").await,
        say(&server, "lobby", "missed\ntwo lines").await,
    ];

    // The reconnect, as a browser makes it: the same URL (its query still names the head) and
    // `Last-Event-ID`, which wins.
    let mut again = HttpStream::get(
        &server.url(&format!("/rooms/lobby/events?last_event_id={head}")),
        &[("last-event-id", live_id.as_str())],
    )
    .await;
    let two_lines = format!(
        "id: {}\r\nevent: message\r\ndata: missed\r\ndata: two lines\r\n\r\n",
        missed[2]
    );
    again.until(&two_lines).await;
    let after = say(&server, "lobby", "after the reconnect").await;
    let body = again.until(&message(&after, "after the reconnect")).await;
    assert_eq!(
        body,
        format!(
            "{RETRY}{}{two_lines}{}",
            message(&missed[0], "missed 1"),
            message(&after, "after the reconnect")
        ),
        "exactly the missed messages of this room, once each, then live ones"
    );
    server.log_line("client joined room=lobby").await;
    drop(again);
    server.stop().await;
}

#[tokio::test]
async fn the_page_embeds_the_head_and_its_room() {
    let server = ExampleProcess::start("chat").await;
    let (html, head) = page(&server, "/").await;
    assert!(head.ends_with(":0"), "nothing said yet: {head}");
    assert!(html.contains("data-room=\"lobby\""), "the default room");
    assert!(
        html.contains("new EventSource(events)")
            && html.contains("/rooms/${room}/events?last_event_id=")
            && html.contains("addEventListener(\"reset\""),
        "{html}"
    );
    let id = say(&server, "rust-2024_x", "hello").await;
    let (html, head) = page(&server, "/?room=rust-2024_x").await;
    assert_eq!(head, id, "the page embeds the newest id");
    assert!(html.contains("data-room=\"rust-2024_x\""));
    assert!(!html.contains("{{"), "every placeholder is filled");
    server.stop().await;
}

#[tokio::test]
async fn bad_rooms_are_400_and_long_messages_413() {
    let server = ExampleProcess::start("chat").await;
    let long_room = "r".repeat(65);
    for room in [
        "has%20space",
        "dot.dot",
        "%C3%A9t%C3%A9",
        "semi%3Bcolon",
        &long_room,
    ] {
        assert_eq!(
            status_of_get(&server, &format!("/rooms/{room}/events")).await,
            400,
            "{room}"
        );
        let (status, answer) = post(&server, &format!("/rooms/{room}/messages"), "hi").await;
        assert_eq!(status, 400, "{room}: {answer}");
        assert_eq!(
            status_of_get(&server, &format!("/?room={room}")).await,
            400,
            "{room}"
        );
    }
    say(&server, &"r".repeat(64), "the longest room name").await;

    let (status, _) = post(&server, "/rooms/lobby/messages", "x".repeat(4097)).await;
    assert_eq!(status, 413);
    say(&server, "lobby", &"x".repeat(4096)).await;
    let (status, answer) = post(&server, "/rooms/lobby/messages", " \n").await;
    assert_eq!((status, answer.as_str()), (400, "empty message\n"));

    // A 100 MiB publish is refused from its length alone: the server answers 413 after the
    // first kilobyte, without reading (or holding) the rest.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let head = "POST /rooms/lobby/messages HTTP/1.1\r\nhost: x\r\n\
                    content-type: text/plain\r\ncontent-length: 104857600\r\n\r\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(&[b'x'; 1024]).await.unwrap();
        let mut answer = vec![0; 12];
        tokio::time::timeout(WITHIN, socket.read_exact(&mut answer))
            .await
            .expect("an answer before the body")
            .unwrap();
        assert_eq!(&answer, b"HTTP/1.1 413");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_missed_more_than_the_history_gets_one_reset_then_live_messages() {
    let server = ExampleProcess::start("chat").await;
    // The room keeps 100 messages; 102 push the one after the first out.
    let first = say(&server, "busy", "0").await;
    let mut last = first.clone();
    for i in 1..=101 {
        last = say(&server, "busy", &i.to_string()).await;
    }
    let mut stream = HttpStream::get(
        &server.url("/rooms/busy/events"),
        &[("last-event-id", first.as_str())],
    )
    .await;
    let reset = format!("id: {last}\r\nevent: reset\r\ndata: trimmed\r\n\r\n");
    stream.until(&reset).await;
    let live = say(&server, "busy", "live").await;
    let body = stream.until(&message(&live, "live")).await;
    assert_eq!(body, format!("{RETRY}{reset}{}", message(&live, "live")));

    // An id from before a restart (another epoch) is no position in this history.
    let mut stale = HttpStream::get(
        &server.url("/rooms/busy/events"),
        &[("last-event-id", "Zzzzzzzz:1")],
    )
    .await;
    let body = stale.until("data: other-epoch\r\n\r\n").await;
    assert_eq!(
        body,
        format!("{RETRY}id: {live}\r\nevent: reset\r\ndata: other-epoch\r\n\r\n")
    );
    drop((stream, stale));

    // The process exports what happened: two resumes that met a gap, one of each reason.
    let mut metrics = HttpStream::get(&server.url("/metrics"), &[]).await;
    assert_eq!(metrics.status, 200);
    let text = metrics.to_end().await;
    for line in [
        r#"sse_resume_gaps_total{reason="trimmed"} 1"#,
        r#"sse_resume_gaps_total{reason="other-epoch"} 1"#,
        "sse_streams_opened_total 2",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    server.stop().await;
}

fn texts(chat: &Value) -> Vec<String> {
    chat["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .map(|m| m["text"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_page_sends_and_shows_messages_in_chromium() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let server = ExampleProcess::start("chat").await;
    let page = browser.open(&server.url("/?room=web")).await;
    page.wait_for("window.chat.opens", |opens| opens.as_u64() >= Some(1))
        .await;

    // Someone else speaks; then the page's own form sends a message.
    say(&server, "web", "from curl").await;
    say(&server, "lobby", "not in this room").await;
    page.evaluate(
        "(() => { document.getElementById('text').value = 'from the form'; \
         document.getElementById('say').requestSubmit(); return true; })()",
    )
    .await;
    let chat = page
        .wait_for("window.chat", |chat| texts(chat).len() >= 2)
        .await;
    assert_eq!(texts(&chat), ["from curl", "from the form"]);
    assert_eq!(chat["resets"], serde_json::json!([]));
    page.wait_for("document.getElementById('text').value", |value| value == "")
        .await;
    let shown = page
        .evaluate("document.getElementById('messages').innerText")
        .await;
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains("from curl") && shown.contains("from the form"),
        "{shown}"
    );
    assert!(!shown.contains("not in this room"), "{shown}");

    browser.close().await;
    server.stop().await;
}
