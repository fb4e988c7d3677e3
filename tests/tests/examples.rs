//! Every example, started as the real process users run (`PORT=0`), exercised with a real HTTP
//! client: exact bytes, headers and behaviour (SPEC §4, examples 01-07).

use std::time::{Duration, Instant};

use tests::{
    ExampleProcess, HttpStream, ended_cleanly, raw_get, read_to_close, read_until, send_get,
};

/// Starts example `name`, runs the checks concurrently against it, then stops it with SIGTERM
/// and requires a clean exit.
macro_rules! example_test {
    ($test:ident, $name:literal, [$($check:ident),+ $(,)?]) => {
        #[tokio::test]
        async fn $test() {
            let server = ExampleProcess::start($name).await;
            tokio::join!($($check(&server)),+);
            server.stop().await;
        }
    };
}

example_test!(
    basic,
    "basic",
    [
        basic_numbers_stream_one_to_five_then_end,
        basic_nested_routes_ranges_and_numbers,
        basic_endless_logs_the_count_when_the_client_leaves,
        basic_resume_continues_after_last_event_id,
        basic_serves_the_browser_page,
    ]
);
example_test!(
    broadcasting,
    "broadcasting",
    [broadcasting_fans_out_to_every_client_and_counts_them]
);
example_test!(
    database,
    "database",
    [database_rows_stream_as_json_events_with_filters]
);
example_test!(
    advanced,
    "advanced",
    [
        advanced_custom_ping_is_a_two_line_comment,
        advanced_error_events_continue_and_a_fatal_one_ends_the_stream,
        advanced_custom_separator_splits_multi_line_data_with_lf,
        advanced_proxy_friendly_headers_and_background_task,
    ]
);
example_test!(
    memory_channels,
    "memory_channels",
    [
        memory_channel_one_producer_then_a_clean_end,
        memory_channels_merged_producers_and_backpressure,
        memory_channel_producer_stops_when_the_client_leaves,
    ]
);
example_test!(
    send_timeout,
    "send_timeout",
    [
        send_timeout_cuts_a_frozen_client_and_says_so,
        send_timeout_streams_4_kib_events_to_a_reading_client,
    ]
);

const SSE_HEADERS: [(&str, &str); 4] = [
    ("cache-control", "no-store"),
    ("connection", "keep-alive"),
    ("x-accel-buffering", "no"),
    ("content-type", "text/event-stream; charset=utf-8"),
];

fn assert_sse_headers(stream: &HttpStream) {
    assert_eq!(stream.status, 200);
    for (name, value) in SSE_HEADERS {
        assert_eq!(stream.header(name), value, "header {name}");
    }
}

// --- 01 basic --------------------------------------------------------------------------------

async fn basic_numbers_stream_one_to_five_then_end(server: &ExampleProcess) {
    let started = Instant::now();
    let mut numbers = HttpStream::get(&server.url("/numbers"), &[]).await;
    assert_sse_headers(&numbers);
    let body = numbers.to_end().await.to_owned();
    assert_eq!(
        body,
        "data: 1\r\n\r\ndata: 2\r\n\r\ndata: 3\r\n\r\ndata: 4\r\n\r\ndata: 5\r\n\r\n"
    );
    assert_eq!(numbers.ended, Some(true));
    assert!(
        started.elapsed() >= Duration::from_millis(4400),
        "0.9 s apart: {:?}",
        started.elapsed()
    );
}

async fn basic_nested_routes_ranges_and_numbers(server: &ExampleProcess) {
    let mut range = HttpStream::get(&server.url("/fastapi/range/3/5"), &[]).await;
    assert_eq!(
        range.to_end().await,
        "id: 3\r\ndata: 3\r\n\r\nid: 4\r\ndata: 4\r\n\r\nid: 5\r\ndata: 5\r\n\r\n"
    );
    let mut numbers = HttpStream::get(&server.url("/starlette/numbers"), &[]).await;
    numbers.until("data: Number: 2\r\n\r\n").await;
    assert!(numbers.seen.starts_with(b"data: Number: 1\r\n\r\n"));
    let missing = HttpStream::get(&server.url("/fastapi/nothing"), &[]).await;
    assert_eq!(missing.status, 404);
}

async fn basic_endless_logs_the_count_when_the_client_leaves(server: &ExampleProcess) {
    let mut endless = HttpStream::get(&server.url("/fastapi/endless"), &[]).await;
    endless.until("id: 2\r\ndata: Event #2\r\n\r\n").await;
    drop(endless);
    let line = server.log_line("endless stream: client disconnected").await;
    assert!(
        line.contains("events=2") || line.contains("events=3"),
        "{line}"
    );
}

#[tokio::test]
async fn basic_conditional_stays_open_on_pings_and_ends_on_ctrl_c() {
    let server = ExampleProcess::start("basic").await;
    let mut client = raw_get(server.addr, "/fastapi/conditional").await;
    read_until(
        &mut client,
        b"event: status\r\ndata: new data available\r\n\r\n",
    )
    .await;
    // Silent but alive: a ping comes after 5 s.
    read_until(&mut client, b": ping - ").await;
    let stopping = Instant::now();
    server.interrupt();
    server.wait_for_clean_exit().await;
    let rest = read_to_close(&mut client).await;
    assert!(
        !ended_cleanly(&rest),
        "a stream without a grace period is cut at shutdown"
    );
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        stopping.elapsed()
    );
}

async fn basic_resume_continues_after_last_event_id(server: &ExampleProcess) {
    let mut resume = HttpStream::get(&server.url("/resume"), &[("last-event-id", "2")]).await;
    assert_eq!(
        resume.to_end().await,
        "retry: 500\r\n\r\n\
         id: 3\r\nevent: number\r\ndata: 3\r\n\r\n\
         id: 4\r\nevent: number\r\ndata: 4\r\n\r\n\
         id: 5\r\nevent: number\r\ndata: 5\r\n\r\n"
    );
    server
        .log_line("resume: client connected last_event_id=2")
        .await;
}

async fn basic_serves_the_browser_page(server: &ExampleProcess) {
    let mut page = HttpStream::get(&server.url("/"), &[]).await;
    let html = page.to_end().await.to_owned();
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(
        html.contains("new EventSource(url)") && html.contains("\"/resume\""),
        "{html}"
    );
}

// --- 02 broadcasting ---------------------------------------------------------------------------

async fn post_json(url: &str, body: &str) -> String {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

async fn get_text(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

async fn broadcasting_fans_out_to_every_client_and_counts_them(server: &ExampleProcess) {
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = HttpStream::get(&server.url("/events"), &[]).await;
        client.until(": connected\r\n\r\n").await;
        clients.push(client);
    }
    assert_eq!(
        get_text(&server.url("/status")).await,
        r#"{"connected_clients":3}"#
    );
    let reply = post_json(
        &server.url("/send"),
        r#"{"message": "hello", "event": "greeting"}"#,
    )
    .await;
    assert_eq!(reply, r#"{"delivered_to":3}"#);
    let reply = post_json(&server.url("/send"), r#"{"message": "two\nlines"}"#).await;
    assert_eq!(reply, r#"{"delivered_to":3}"#);
    for client in &mut clients {
        let body = client.until("data: lines\r\n\r\n").await;
        assert_eq!(
            body,
            ": connected\r\n\r\nevent: greeting\r\ndata: hello\r\n\r\ndata: two\r\ndata: lines\r\n\r\n"
        );
    }
    clients.pop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while get_text(&server.url("/status")).await != r#"{"connected_clients":2}"# {
        assert!(
            Instant::now() < deadline,
            "a client that left is still counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- 03 database -------------------------------------------------------------------------------

fn task_json(id: u32) -> String {
    format!(
        r#"{{"id":{id},"title":"Task {id}","description":"Description for task {id}","completed":{},"created_at":"2026-01-0{id}T09:00:00Z"}}"#,
        id.is_multiple_of(2)
    )
}

async fn database_rows_stream_as_json_events_with_filters(server: &ExampleProcess) {
    let mut open = HttpStream::get(&server.url("/tasks/stream?completed=false&limit=2"), &[]).await;
    assert_sse_headers(&open);
    let expected = format!(
        "id: 1\r\nevent: task\r\ndata: {}\r\n\r\nid: 3\r\nevent: task\r\ndata: {}\r\n\r\n",
        task_json(1),
        task_json(3)
    );
    assert_eq!(open.to_end().await, expected);
    assert_eq!(open.ended, Some(true));

    let mut all = HttpStream::get(&server.url("/tasks/stream-function"), &[]).await;
    let body = all.to_end().await;
    assert_eq!(body.matches("event: task\r\n").count(), 5);
    assert!(body.ends_with(&format!(
        "id: 5\r\nevent: task\r\ndata: {}\r\n\r\n",
        task_json(5)
    )));

    let list = get_text(&server.url("/tasks/list?completed=true")).await;
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let ids: Vec<_> = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(ids, [2, 4]);
    assert_eq!(
        get_text(&server.url("/status")).await,
        r#"{"status":"ok","tasks":5}"#
    );
}

// --- 04 advanced -------------------------------------------------------------------------------

async fn advanced_custom_ping_is_a_two_line_comment(server: &ExampleProcess) {
    let mut stream = HttpStream::get(&server.url("/custom-ping"), &[]).await;
    let body = stream.until(": invisible ping at\r\n: ").await.to_owned();
    assert!(
        body.starts_with("id: 1\r\nevent: custom\r\ndata: custom event 1\r\n\r\n"),
        "{body}"
    );
    stream.until("\r\n\r\n: invisible ping at\r\n: ").await;
}

async fn advanced_error_events_continue_and_a_fatal_one_ends_the_stream(server: &ExampleProcess) {
    let mut stream = HttpStream::get(&server.url("/error-demo"), &[]).await;
    assert_eq!(
        stream.to_end().await,
        "id: 1\r\nevent: item\r\ndata: item 1 processed\r\n\r\n\
         id: 2\r\nevent: item\r\ndata: item 2 processed\r\n\r\n\
         id: 3\r\nevent: error\r\ndata: item 3 could not be processed\r\n\r\n\
         id: 4\r\nevent: item\r\ndata: item 4 processed\r\n\r\n\
         id: 5\r\nevent: item\r\ndata: item 5 processed\r\n\r\n\
         id: 6\r\nevent: fatal_error\r\ndata: item 6 broke the pipeline\r\n\r\n"
    );
    assert_eq!(
        stream.ended,
        Some(true),
        "a fatal error event still ends the stream cleanly"
    );
}

async fn advanced_custom_separator_splits_multi_line_data_with_lf(server: &ExampleProcess) {
    let mut stream = HttpStream::get(&server.url("/custom-separator"), &[]).await;
    assert_eq!(
        stream.to_end().await,
        "data: line one\ndata: line two\n\n\
         event: crlf\ndata: windows\ndata: line breaks\ndata: too\n\n\
         event: done\ndata: three events, LF only\n\n"
    );
}

async fn advanced_proxy_friendly_headers_and_background_task(server: &ExampleProcess) {
    let mut stream = HttpStream::get(&server.url("/proxy-friendly"), &[]).await;
    assert_eq!(stream.header("cache-control"), "public, max-age=29");
    assert_eq!(stream.header("x-custom-header"), "custom-value");
    assert_eq!(stream.header("connection"), "keep-alive");
    assert_eq!(stream.header("x-accel-buffering"), "no");
    let body = stream.to_end().await;
    assert!(
        body.ends_with("id: 3\r\ndata: shared update 3\r\n\r\n"),
        "{body}"
    );
    server
        .log_line("proxy-friendly stream closed reason=completed")
        .await;
    server
        .log_line("background task: proxy-friendly stream finished")
        .await;
    assert_eq!(
        get_text(&server.url("/health")).await,
        r#"{"status":"healthy"}"#
    );
}

// --- 05 memory channels ------------------------------------------------------------------------

async fn memory_channel_one_producer_then_a_clean_end(server: &ExampleProcess) {
    let mut stream = HttpStream::get(&server.url("/memory-channel"), &[]).await;
    let body = stream.to_end().await.to_owned();
    assert_eq!(stream.ended, Some(true));
    for i in 1..=9 {
        let event = format!("event: production_data\r\ndata: data item {i} from request ");
        assert!(body.contains(&event), "missing item {i}: {body}");
        assert!(
            body.contains(&format!("-{i}\r\nevent: production_data")),
            "id of item {i}: {body}"
        );
    }
    assert!(
        body.ends_with("event: producer_complete\r\ndata: all data sent\r\n\r\n"),
        "{body}"
    );
}

async fn memory_channels_merged_producers_and_backpressure(server: &ExampleProcess) {
    let mut merged = HttpStream::get(&server.url("/multi-producer"), &[]).await;
    let body = merged.to_end().await.to_owned();
    for producer in 1..=3 {
        for item in 1..=3 {
            let event = format!(
                "event: producer_{producer}\r\ndata: producer {producer}, item {item}\r\n\r\n"
            );
            assert!(body.contains(&event), "missing {event:?} in {body}");
        }
    }
    assert_eq!(merged.ended, Some(true));

    let mut fast = HttpStream::get(&server.url("/backpressure"), &[]).await;
    let expected: String = (1..=20)
        .map(|i| format!("id: {i}\r\ndata: item {i}\r\n\r\n"))
        .collect();
    assert_eq!(fast.to_end().await, expected);
}

async fn memory_channel_producer_stops_when_the_client_leaves(server: &ExampleProcess) {
    let mut stream = HttpStream::get(&server.url("/memory-channel"), &[]).await;
    stream.until("event: production_data").await;
    drop(stream);
    // The producer is dropped with the response: it never logs a failed send, nor sends more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let logs = server.logs.lock().unwrap().clone();
    assert!(!logs.iter().any(|line| line.contains("ERROR")), "{logs:?}");
}

// --- 06 send timeout ---------------------------------------------------------------------------

async fn send_timeout_cuts_a_frozen_client_and_says_so(server: &ExampleProcess) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut frozen = socket.connect(server.addr).await.unwrap();
    send_get(&mut frozen, "/events").await;
    server.log_line("sent events=100").await;
    // The client never reads; 10 s after its buffers fill, the server gives up on it.
    server
        .log_line("client stopped reading: send timeout")
        .await;
    let rest = read_to_close(&mut frozen).await;
    assert!(!ended_cleanly(&rest));
}

async fn send_timeout_streams_4_kib_events_to_a_reading_client(server: &ExampleProcess) {
    let mut stream = HttpStream::get(&server.url("/events"), &[]).await;
    let padding = " ".repeat(4096);
    stream
        .until(&format!("id: 50\r\ndata: {padding}\r\n\r\n"))
        .await;
    let body = std::str::from_utf8(&stream.seen).unwrap();
    assert!(body.starts_with(&format!("id: 1\r\ndata: {padding}\r\n\r\nid: 2\r\n")));
    drop(stream);
    server.log_line("reason=client disconnected").await;
}

#[tokio::test]
async fn an_example_on_a_port_in_use_says_so_in_one_plain_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = tokio::process::Command::new(tests::example_binary("basic"))
        .env("PORT", port.to_string())
        .env("NO_COLOR", "1")
        .output();
    let output = tokio::time::timeout(tests::WITHIN, output)
        .await
        .expect("the example did not exit")
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr:?}");
    assert!(
        lines[0].starts_with(&format!("cannot listen on 127.0.0.1:{port}: "))
            && lines[0].contains("in use")
            && lines[0].ends_with("(set PORT to use another port)"),
        "{stderr:?}"
    );
}
