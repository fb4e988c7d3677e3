//! Who may follow which topics, and who may publish: decided from the request, before the
//! stream starts.

use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use super::id::LastEventId;
use super::stream::ResumeRequest;
use super::{Hub, HubInner};

/// The longest topic name a request may name ([`Grant`]'s extractor answers 400 beyond it).
pub const MAX_TOPIC_LEN: usize = 256;
/// The most topics one request may follow through [`Grant`]'s extractor (400 beyond it).
pub const MAX_TOPICS: usize = 64;
/// The query parameter [`Grant`]'s extractor reads topics from (`?topic=a&topic=b`).
pub const TOPIC_QUERY: &str = "topic";

/// What a request asks to do, as an [`Authorize`] hook sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action<'a> {
    /// Follow these topics (sorted, each once).
    Subscribe(&'a [Arc<str>]),
    /// Publish to this topic.
    Publish(&'a str),
}

/// Why a request was refused: `401 Unauthorized` (who are you?) or `403 Forbidden` (not you).
///
/// Both come before the stream starts. A browser's `EventSource` does not reconnect after
/// either (any status but 200 ends it for good), which is what a refused subscriber should get.
///
/// ```
/// use axum::response::IntoResponse;
/// use sse_runtime::resume::Denied;
///
/// assert_eq!(Denied::Unauthorized.into_response().status(), 401);
/// assert_eq!(Denied::Forbidden.into_response().status(), 403);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Denied {
    /// No credentials, or ones that prove nothing: `401`.
    Unauthorized,
    /// Credentials that do not allow this: `403`.
    Forbidden,
}

impl Denied {
    /// The status it answers with.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
        })
    }
}

impl std::error::Error for Denied {}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        (self.status(), self.to_string()).into_response()
    }
}

/// The authorization hook of a [`Hub`] ([`HubBuilder::authorize`](super::HubBuilder::authorize)):
/// given the request's parts (headers, cookies, extensions such as what an auth layer put
/// there) and what it asks, allow it or refuse it. Any `Fn(&Parts, Action) -> Result<(),
/// Denied>` is one.
///
/// A hook that panics refuses (`403`, logged); the panic ends only that request.
pub trait Authorize: Send + Sync + 'static {
    /// Allows `action` for the request `parts`, or refuses it.
    fn authorize(&self, parts: &Parts, action: Action<'_>) -> Result<(), Denied>;
}

impl<F> Authorize for F
where
    F: Fn(&Parts, Action<'_>) -> Result<(), Denied> + Send + Sync + 'static,
{
    fn authorize(&self, parts: &Parts, action: Action<'_>) -> Result<(), Denied> {
        self(parts, action)
    }
}

/// Runs the hook; a panic refuses (logged as a hook's panic).
pub(super) fn check(hook: &dyn Authorize, parts: &Parts, action: Action<'_>) -> Result<(), Denied> {
    crate::close::guarded("authorize", || hook.authorize(parts, action))
        .unwrap_or(Err(Denied::Forbidden))
}

/// Topics a request was allowed to follow: the only way to resume on a hub that has an
/// [`Authorize`] hook. From [`Hub::grant`], or as an extractor reading every `topic` query
/// parameter (`GET /events?topic=a&topic=b`) of a router whose state holds the hub.
///
/// Replay reads only these topics' histories, so no event of another topic reaches the
/// subscriber, live or replayed, whatever its `Last-Event-ID` points at.
///
/// ```
/// use axum::{Router, extract::State, routing::get};
/// use sse_runtime::resume::{Action, Denied, Grant, Hub};
/// use sse_runtime::{LastEventId, sse};
///
/// sse! {
///     // 400 for bad topics, 401/403 from the hook, all before the stream starts.
///     #[sse_endpoint]
///     async fn events(grant: Grant, since: LastEventId) {
///         for await event in grant.resume(since).await {
///             yield event;
///         }
///     }
/// }
///
/// let hub = Hub::builder()
///     .authorize(|request: &http::request::Parts, action: Action<'_>| {
///         let token = request.headers.get("authorization").ok_or(Denied::Unauthorized)?;
///         match action {
///             Action::Subscribe(topics) if token == "Bearer reader" => {
///                 topics.iter().all(|t| t.starts_with("public/")).then_some(()).ok_or(Denied::Forbidden)
///             }
///             _ => Err(Denied::Forbidden),
///         }
///     })
///     .build();
/// let app: Router = Router::new().route("/events", get(events)).with_state(hub);
/// ```
#[derive(Clone)]
pub struct Grant {
    pub(super) hub: Arc<HubInner>,
    pub(super) topics: Arc<[Arc<str>]>,
}

impl Grant {
    /// The topics granted (sorted, each once).
    pub fn topics(&self) -> &[Arc<str>] {
        &self.topics
    }

    /// Resumes a subscription to the granted topics (see [`Hub::resume`]).
    pub fn resume(self, since: LastEventId) -> ResumeRequest {
        ResumeRequest::new(self.hub, self.topics, since, true)
    }
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("topics", &self.topics)
            .finish()
    }
}

/// Whether `name` may name a topic in a request: 1 to [`MAX_TOPIC_LEN`] bytes, no control
/// characters.
///
/// ```
/// use sse_runtime::resume::is_valid_topic;
///
/// assert!(is_valid_topic("rooms/lobby"));
/// assert!(!is_valid_topic(""));
/// assert!(!is_valid_topic("a\r\nb"));
/// assert!(!is_valid_topic(&"x".repeat(10 * 1024)));
/// ```
pub fn is_valid_topic(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_TOPIC_LEN && !name.chars().any(char::is_control)
}

/// Why [`Grant`]'s extractor refused a request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantRejection {
    /// No `topic` parameter: `400`.
    NoTopic,
    /// More than [`MAX_TOPICS`] topics: `400`.
    TooManyTopics,
    /// A topic name that [`is_valid_topic`] refuses: `400`.
    InvalidTopic,
    /// The hub's hook refused: `401` or `403`.
    Denied(Denied),
}

impl fmt::Display for GrantRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoTopic => f.write_str("no topic: add ?topic=<name>"),
            Self::TooManyTopics => write!(f, "more than {MAX_TOPICS} topics"),
            Self::InvalidTopic => write!(
                f,
                "a topic name must be 1 to {MAX_TOPIC_LEN} bytes without control characters"
            ),
            Self::Denied(denied) => denied.fmt(f),
        }
    }
}

impl IntoResponse for GrantRejection {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Denied(denied) => denied.status(),
            _ => StatusCode::BAD_REQUEST,
        };
        (status, self.to_string()).into_response()
    }
}

impl<S> FromRequestParts<S> for Grant
where
    Hub: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = GrantRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let mut topics = Vec::new();
        let query = parts.uri.query().unwrap_or_default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if name != TOPIC_QUERY {
                continue;
            }
            if topics.len() == MAX_TOPICS {
                return Err(GrantRejection::TooManyTopics);
            }
            if !is_valid_topic(&value) {
                return Err(GrantRejection::InvalidTopic);
            }
            topics.push(Arc::<str>::from(value.as_ref()));
        }
        if topics.is_empty() {
            return Err(GrantRejection::NoTopic);
        }
        Hub::from_ref(state)
            .grant(parts, topics)
            .map_err(GrantRejection::Denied)
    }
}
