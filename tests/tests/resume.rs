//! Resumable streams over real HTTP (`sse_runtime::resume`): what a reconnecting client gets
//! from the `Last-Event-ID` header or the `last_event_id` query parameter, and one test per
//! gap case (exactly one reset, a 200, never a 5xx), and the 204 of `GapPolicy::NoContent`.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use sse_runtime::resume::{EventId, GapPolicy, Hub, MemoryStore};
use sse_runtime::{EventSourceResponse, LastEventId, ServerSentEvent, SseContext, sse};
use tests::{HttpStream, Server, serve_sse};
use tokio::io::AsyncWriteExt;

sse! {
    #[sse_endpoint(ping = 15)]
    async fn events(State(hub): State<Hub>, since: LastEventId) {
        for await event in hub.resume(["t"], since).await {
            yield event;
        }
    }

    /// NoContent asked for inside a body, whose response has started: a reset instead.
    #[sse_endpoint]
    async fn no_content_in_body(State(hub): State<Hub>, since: LastEventId) {
        for await event in hub.resume(["t"], since).gap_policy(GapPolicy::NoContent).await {
            yield event;
        }
    }
}

/// The attribute alone, on a fn that returns the resume: the response is made from it, so
/// NoContent can answer 204.
#[sse_runtime::sse_endpoint(ping = 15)]
async fn returns_the_resume(
    State(hub): State<Hub>,
    since: LastEventId,
) -> impl futures_util::Stream<Item = sse_runtime::Payload> {
    hub.resume(["t"], since)
        .gap_policy(GapPolicy::NoContent)
        .await
}

async fn no_content(
    State(hub): State<Hub>,
    since: LastEventId,
    context: SseContext,
) -> EventSourceResponse {
    let resume = hub
        .resume(["t"], since)
        .gap_policy(GapPolicy::NoContent)
        .await;
    EventSourceResponse::new(resume).context(context)
}

async fn start(history: usize, max_replay: u64) -> (Hub, Server) {
    let hub = Hub::builder()
        .store(MemoryStore::new(history))
        .max_replay(max_replay)
        .build();
    let app = Router::new()
        .route("/events", get(events))
        .route("/no-content", get(no_content))
        .route("/no-content-in-body", get(no_content_in_body))
        .route("/returns-the-resume", get(returns_the_resume))
        .with_state(hub.clone());
    (hub, serve_sse(app).await)
}

async fn publish(hub: &Hub, range: std::ops::RangeInclusive<u32>) -> Vec<EventId> {
    let mut ids = Vec::new();
    for i in range {
        ids.push(
            hub.publish("t", ServerSentEvent::new().data(i))
                .await
                .unwrap(),
        );
    }
    ids
}

fn frame(id: EventId, data: impl std::fmt::Display) -> String {
    format!("id: {id}\r\ndata: {data}\r\n\r\n")
}

fn frames(ids: &[EventId], first: u32) -> String {
    ids.iter()
        .zip(first..)
        .map(|(id, i)| frame(*id, i))
        .collect()
}

/// Publish 1-10, read 5, drop the connection, publish 11-15, reconnect with the 5th id
/// (through `connect`): exactly 6-15 in order, then live 16.
async fn resume_after_the_fifth(connect: impl AsyncFn(&Server, EventId) -> HttpStream) {
    let (hub, server) = start(100, 10_000).await;
    let mut first = HttpStream::get(&server.url("/events"), &[]).await;
    assert_eq!(first.status, 200);
    let mut ids = publish(&hub, 1..=10).await;
    first.until(&frame(ids[4], 5)).await;
    drop(first);
    ids.extend(publish(&hub, 11..=15).await);
    let mut again = connect(&server, ids[4]).await;
    assert_eq!(again.status, 200);
    let replay = frames(&ids[5..15], 6);
    assert_eq!(again.until(&replay).await, replay, "exactly 6-15, in order");
    let live = publish(&hub, 16..=16).await;
    let all = format!("{replay}{}", frame(live[0], 16));
    assert_eq!(again.until(&all).await, all);
    assert!(
        all.split("\r\n\r\n")
            .filter(|f| !f.is_empty())
            .all(|f| f.starts_with("id: ")),
        "every event has an id"
    );
}

#[tokio::test]
async fn the_last_event_id_header_resumes_exactly() {
    resume_after_the_fifth(async |server, id| {
        HttpStream::get(
            &server.url("/events"),
            &[("last-event-id", &id.to_string())],
        )
        .await
    })
    .await;
}

#[tokio::test]
async fn the_query_parameter_resumes_the_same() {
    resume_after_the_fifth(async |server, id| {
        HttpStream::get(&server.url(&format!("/events?last_event_id={id}")), &[]).await
    })
    .await;
}

#[tokio::test]
async fn the_header_wins_over_the_query_parameter() {
    resume_after_the_fifth(async |server, id| {
        let other = EventId::new(id.epoch(), 1);
        let url = server.url(&format!("/events?last_event_id={other}"));
        HttpStream::get(&url, &[("last-event-id", &id.to_string())]).await
    })
    .await;
}

#[tokio::test]
async fn a_cursor_at_the_head_replays_nothing() {
    let (hub, server) = start(100, 10_000).await;
    let ids = publish(&hub, 1..=3).await;
    let head = ids[2].to_string();
    let mut stream = HttpStream::get(&server.url("/events"), &[("last-event-id", &head)]).await;
    let live = publish(&hub, 4..=4).await;
    // The first thing that arrives is the live event.
    assert_eq!(stream.until("\r\n\r\n").await, frame(live[0], 4));
}

/// Exactly one reset, with the head's id, then the live event: a 200, not an error.
async fn assert_one_reset(hub: &Hub, mut stream: HttpStream, reason: &str) {
    assert_eq!(stream.status, 200);
    let head = hub.head().await.unwrap();
    let reset = format!("id: {head}\r\nevent: reset\r\ndata: {reason}\r\n\r\n");
    let live = publish(hub, 99..=99).await;
    let expected = format!("{reset}{}", frame(live[0], 99));
    assert_eq!(stream.until(&expected).await, expected);
}

async fn with_header(server: &Server, value: &str) -> HttpStream {
    HttpStream::get(&server.url("/events"), &[("last-event-id", value)]).await
}

#[tokio::test]
async fn gap_an_id_too_old_for_the_history_resets() {
    let (hub, server) = start(100, 10_000).await;
    let ids = publish(&hub, 1..=1000).await;
    let stream = with_header(&server, &ids[4].to_string()).await;
    assert_one_reset(&hub, stream, "trimmed").await;
}

#[tokio::test]
async fn gap_an_id_of_another_history_resets() {
    let (hub, server) = start(100, 10_000).await;
    publish(&hub, 1..=3).await;
    let restarted = Hub::new();
    let stale = restarted
        .publish("t", ServerSentEvent::new().data(1))
        .await
        .unwrap();
    let stream = with_header(&server, &stale.to_string()).await;
    assert_one_reset(&hub, stream, "other-epoch").await;
}

#[tokio::test]
async fn gap_an_id_ahead_of_the_head_resets() {
    let (hub, server) = start(100, 10_000).await;
    let ids = publish(&hub, 1..=3).await;
    let ahead = EventId::new(ids[0].epoch(), 1_000_000);
    let stream = with_header(&server, &ahead.to_string()).await;
    assert_one_reset(&hub, stream, "ahead").await;
}

#[tokio::test]
async fn gap_garbage_resets() {
    let (hub, server) = start(100, 10_000).await;
    publish(&hub, 1..=3).await;
    for garbage in ["", "garbage", "42", "ab:-1", "ab:1:2", "earliest!"] {
        let stream = with_header(&server, garbage).await;
        assert_one_reset(&hub, stream, "invalid").await;
    }
}

#[tokio::test]
async fn gap_an_oversized_id_resets() {
    let (hub, server) = start(100, 10_000).await;
    publish(&hub, 1..=3).await;
    let long = format!("{}:1", "a".repeat(70));
    assert_one_reset(&hub, with_header(&server, &long).await, "invalid").await;
    let huge = "a".repeat(64 * 1024);
    assert_one_reset(&hub, with_header(&server, &huge).await, "invalid").await;
}

#[tokio::test]
async fn gap_cr_lf_in_the_query_parameter_resets() {
    let (hub, server) = start(100, 10_000).await;
    let ids = publish(&hub, 1..=3).await;
    let url = server.url(&format!("/events?last_event_id={}%0D%0Adata:%20x", ids[0]));
    assert_one_reset(&hub, HttpStream::get(&url, &[]).await, "invalid").await;
}

#[tokio::test]
async fn gap_a_non_utf8_header_resets() {
    let (hub, server) = start(100, 10_000).await;
    publish(&hub, 1..=3).await;
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"GET /events HTTP/1.1\r\nhost: x\r\nlast-event-id: ab:\xff\xfe1\r\n\r\n")
        .await
        .unwrap();
    let head = hub.head().await.unwrap();
    let reset = format!("id: {head}\r\nevent: reset\r\ndata: invalid\r\n\r\n");
    let seen = tests::read_until(&mut socket, reset.as_bytes()).await;
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.starts_with("HTTP/1.1 200 OK\r\n"), "{seen}");
    assert_eq!(seen.matches("event: reset").count(), 1, "{seen}");
}

#[tokio::test]
async fn gap_more_than_max_replay_resets() {
    let (hub, server) = start(1000, 50).await;
    let ids = publish(&hub, 1..=100).await;
    let stream = with_header(&server, &ids[0].to_string()).await;
    assert_one_reset(&hub, stream, "too-many").await;
}

#[tokio::test]
async fn earliest_replays_everything_retained() {
    let (hub, server) = start(5, 10_000).await;
    let ids = publish(&hub, 1..=8).await;
    let mut stream = with_header(&server, "earliest").await;
    let retained = frames(&ids[3..], 4);
    assert_eq!(stream.until(&retained).await, retained);
}

#[tokio::test]
async fn no_content_answers_204_for_a_gap_and_streams_otherwise() {
    let (hub, server) = start(100, 10_000).await;
    let ids = publish(&hub, 1..=3).await;
    let refused =
        HttpStream::get(&server.url("/no-content"), &[("last-event-id", "nonsense")]).await;
    assert_eq!(refused.status, 204);
    let url = server.url("/no-content");
    let mut fine = HttpStream::get(&url, &[("last-event-id", &ids[0].to_string())]).await;
    assert_eq!(fine.status, 200);
    let replay = frames(&ids[1..], 2);
    assert_eq!(fine.until(&replay).await, replay);
    // The same through an endpoint fn that returns the resume.
    let url = server.url("/returns-the-resume");
    let refused = HttpStream::get(&url, &[("last-event-id", "nonsense")]).await;
    assert_eq!(refused.status, 204);
    let mut fine = HttpStream::get(&url, &[("last-event-id", &ids[0].to_string())]).await;
    assert_eq!(fine.status, 200);
    assert_eq!(fine.until(&replay).await, replay);
    // Inside a body, whose response has started, it falls back to the reset.
    let url = server.url("/no-content-in-body");
    let stream = HttpStream::get(&url, &[("last-event-id", "nonsense")]).await;
    assert_one_reset(&hub, stream, "invalid").await;
}
