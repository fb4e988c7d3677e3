//! Authorization per topic (`sse_runtime::resume::{Authorize, Grant}`) over real HTTP: a
//! forbidden subscription is refused before the stream starts (401/403), and no event of a
//! forbidden topic reaches a subscriber, live, replayed, or through a `Last-Event-ID` that
//! points into another topic. Hostile topic lists are a 400. The paths of delivery run on the
//! in-memory hub and again on the Redis store (`*_on_redis`, against a `redis-server` of the
//! test's own; skipped without one, unless `SSE_REQUIRE_REDIS` is set).

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use http::StatusCode;
use http::request::Parts;
use sse_runtime::resume::{Action, Denied, Grant, Hub, RedisStore};
use sse_runtime::testing::RedisServer;
use sse_runtime::{EventSourceResponse, LastEventId, ServerSentEvent, SseContext, sse};
use tests::{HttpStream, Server, serve_sse};

/// `Bearer <user>`: a user may follow `public` and its own `<user>/...` topics; only `admin`
/// publishes; `Bearer boom` makes the hook panic.
fn authorize(request: &Parts, action: Action<'_>) -> Result<(), Denied> {
    let user = request
        .headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(Denied::Unauthorized)?;
    assert_ne!(user, "boom", "a hook that panics");
    let own = format!("{user}/");
    match action {
        Action::Subscribe(topics)
            if topics
                .iter()
                .all(|topic| &**topic == "public" || topic.starts_with(&own)) =>
        {
            Ok(())
        }
        Action::Publish(_) if user == "admin" => Ok(()),
        _ => Err(Denied::Forbidden),
    }
}

sse! {
    #[sse_endpoint(ping = 15)]
    async fn events(grant: Grant, since: LastEventId) {
        for await event in grant.resume(since).await {
            yield event;
        }
    }

    /// Resumes without a grant inside a body: refused, it sends nothing.
    #[sse_endpoint(ping = 15)]
    async fn ungranted_in_body(State(hub): State<Hub>, since: LastEventId) {
        for await event in hub.resume(["public"], since).await {
            yield event;
        }
    }
}

async fn ungranted(State(hub): State<Hub>, context: SseContext) -> EventSourceResponse {
    EventSourceResponse::new(hub.resume(["public"], LastEventId::None).await).context(context)
}

async fn publish(
    State(hub): State<Hub>,
    Path(topic): Path<String>,
    parts: Parts,
) -> Result<String, Denied> {
    hub.authorize_publish(&parts, &topic)?;
    let event = ServerSentEvent::new().data(format!("to {topic}"));
    Ok(hub.publish(&topic, event).await.unwrap().to_string())
}

async fn start() -> (Hub, Server) {
    start_on(None).await
}

/// The app on the in-memory hub, or on the Redis store of `redis`.
async fn start_on(redis: Option<&RedisServer>) -> (Hub, Server) {
    let builder = Hub::builder().authorize(authorize);
    let hub = match redis {
        Some(redis) => {
            let store = RedisStore::connect(redis.url()).await.unwrap();
            builder.store(store).build()
        }
        None => builder.build(),
    };
    let app = Router::new()
        .route("/events", get(events))
        .route("/ungranted", get(ungranted))
        .route("/ungranted-in-body", get(ungranted_in_body))
        .route("/publish/{*topic}", post(publish))
        .with_state(hub.clone());
    (hub, serve_sse(app).await)
}

async fn get_as(server: &Server, user: Option<&str>, path: &str) -> HttpStream {
    let bearer = user.map(|user| format!("Bearer {user}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|value| ("authorization", value.as_str()))
        .collect();
    HttpStream::get(&server.url(path), &headers).await
}

async fn publish_as(server: &Server, user: &str, topic: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(server.url(&format!("/publish/{topic}")))
        .header("authorization", format!("Bearer {user}"))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn a_forbidden_subscription_is_refused_before_the_stream_starts_on(
    redis: Option<&RedisServer>,
) {
    let (_hub, server) = start_on(redis).await;
    let mut anonymous = get_as(&server, None, "/events?topic=public").await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.to_end().await, "unauthorized");
    let mut intruder = get_as(
        &server,
        Some("alice"),
        "/events?topic=public&topic=bob/inbox",
    )
    .await;
    assert_eq!(intruder.status, 403);
    assert_ne!(intruder.header("content-type"), "text/event-stream");
    assert_eq!(intruder.to_end().await, "forbidden");
    let allowed = get_as(
        &server,
        Some("alice"),
        "/events?topic=public&topic=alice/inbox",
    )
    .await;
    assert_eq!(allowed.status, 200);
}

async fn no_forbidden_event_arrives_live_on(redis: Option<&RedisServer>) {
    let (_hub, server) = start_on(redis).await;
    let mut alice = get_as(
        &server,
        Some("alice"),
        "/events?topic=public&topic=alice/inbox",
    )
    .await;
    let (status, _) = publish_as(&server, "admin", "bob/inbox").await;
    assert_eq!(status, 200);
    let (_, public) = publish_as(&server, "admin", "public").await;
    let (_, mine) = publish_as(&server, "admin", "alice/inbox").await;
    let expected = format!(
        "id: {public}\r\ndata: to public\r\n\r\nid: {mine}\r\ndata: to alice/inbox\r\n\r\n"
    );
    assert_eq!(alice.until(&expected).await, expected);
}

async fn no_forbidden_event_is_replayed_even_from_a_cursor_in_another_topic_on(
    redis: Option<&RedisServer>,
) {
    let (_hub, server) = start_on(redis).await;
    let (_, bobs_first) = publish_as(&server, "admin", "bob/inbox").await;
    let (_, bobs_second) = publish_as(&server, "admin", "bob/inbox").await;
    let (_, public) = publish_as(&server, "admin", "public").await;
    assert!(!bobs_second.is_empty());
    // A cursor that points into bob's topic replays only what alice may see.
    let path = format!("/events?topic=public&topic=alice/inbox&last_event_id={bobs_first}");
    let mut alice = get_as(&server, Some("alice"), &path).await;
    let expected = format!("id: {public}\r\ndata: to public\r\n\r\n");
    assert_eq!(alice.until(&expected).await, expected);
    // Everything retained, likewise.
    let path = "/events?topic=public&last_event_id=earliest";
    let mut earliest = get_as(&server, Some("alice"), path).await;
    assert_eq!(earliest.until(&expected).await, expected);
}

async fn publishing_is_authorized_too_on(redis: Option<&RedisServer>) {
    let (_hub, server) = start_on(redis).await;
    assert_eq!(publish_as(&server, "alice", "public").await.0, 403);
    let response = reqwest::Client::new()
        .post(server.url("/publish/public"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(publish_as(&server, "admin", "public").await.0, 200);
}

async fn a_resume_without_a_grant_gets_nothing_on(redis: Option<&RedisServer>) {
    let (hub, server) = start_on(redis).await;
    hub.publish("public", ServerSentEvent::new().data("x"))
        .await
        .unwrap();
    let refused = get_as(&server, Some("alice"), "/ungranted").await;
    assert_eq!(refused.status, 403);
    // Inside a body the response has started: it ends without an event.
    let path = "/ungranted-in-body?last_event_id=earliest";
    let mut in_body = get_as(&server, Some("alice"), path).await;
    assert_eq!(in_body.status, 200);
    assert_eq!(in_body.to_end().await, "");
}

/// Each path of delivery, on the in-memory hub and on the Redis store.
macro_rules! on_both_stores {
    ($($name:ident => $body:ident,)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                $body(None).await;
            }
        )*
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(redis) = super::RedisServer::start() else { return };
                    super::$body(Some(&redis)).await;
                }
            )*
        }
    };
}

on_both_stores! {
    a_forbidden_subscription_is_refused_before_the_stream_starts => a_forbidden_subscription_is_refused_before_the_stream_starts_on,
    no_forbidden_event_arrives_live => no_forbidden_event_arrives_live_on,
    no_forbidden_event_is_replayed_even_from_a_cursor_in_another_topic => no_forbidden_event_is_replayed_even_from_a_cursor_in_another_topic_on,
    publishing_is_authorized_too => publishing_is_authorized_too_on,
    a_resume_without_a_grant_gets_nothing => a_resume_without_a_grant_gets_nothing_on,
}

#[tokio::test]
async fn a_hook_that_panics_refuses_that_request_only() {
    let (_hub, server) = start().await;
    let refused = get_as(&server, Some("boom"), "/events?topic=public").await;
    assert_eq!(refused.status, 403);
    let fine = get_as(&server, Some("alice"), "/events?topic=public").await;
    assert_eq!(fine.status, 200);
}

#[tokio::test]
async fn hostile_topic_lists_are_a_400() {
    let (_hub, server) = start().await;
    // As many as fit in a URI (http's limit is 64 KiB): refused after the 64th.
    let many = "topic=public&".repeat(5_000);
    let long = "x".repeat(10 * 1024);
    for path in [
        format!("/events?{many}"),
        format!("/events?topic={long}"),
        "/events?topic=a%0D%0Adata:%20x".to_owned(),
        "/events?topic=%00".to_owned(),
        "/events?topic=".to_owned(),
        "/events".to_owned(),
    ] {
        let mut response = get_as(&server, Some("alice"), &path).await;
        assert_eq!(response.status, 400, "{}", &path[..path.len().min(80)]);
        assert!(!response.to_end().await.is_empty());
    }
}

#[tokio::test]
async fn ten_thousand_topic_parameters_are_a_4xx() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_hub, server) = start().await;
    // 10,000 parameters make an 80 KiB request line, beyond what a URI may hold.
    let query = "topic=public&".repeat(10_000);
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request =
        format!("GET /events?{query} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer alice\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0; 12];
    socket.read_exact(&mut head).await.unwrap();
    let status: u16 = String::from_utf8_lossy(&head[9..12]).parse().unwrap();
    assert!((400..500).contains(&status), "{status}");
}

/// The `authorization` example, as the process users run.
#[tokio::test]
async fn the_example_refuses_strangers_and_delivers_to_the_owner() {
    let server = tests::ExampleProcess::start("authorization").await;
    let url = server.url("/events?topic=news&topic=users/alice");
    assert_eq!(HttpStream::get(&url, &[]).await.status, 401);
    let bob = [("authorization", "Bearer bob")];
    assert_eq!(HttpStream::get(&url, &bob).await.status, 403);
    let alice = [("authorization", "Bearer alice")];
    let mut stream = HttpStream::get(&url, &alice).await;
    assert_eq!(stream.status, 200);
    let client = reqwest::Client::new();
    let send = |user: &'static str, topic: &'static str| {
        client
            .post(server.url(&format!("/publish/{topic}")))
            .header("authorization", format!("Bearer {user}"))
            .body(format!("for {topic}"))
            .send()
    };
    assert_eq!(send("alice", "news").await.unwrap().status(), 403);
    let bobs = send("admin", "users/bob")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mine = send("admin", "users/alice")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let expected = format!("id: {mine}\r\nevent: message\r\ndata: for users/alice\r\n\r\n");
    assert_eq!(
        stream.until(&expected).await,
        expected,
        "bob's {bobs} never arrives"
    );
    drop(stream);
    server.stop().await;
}
