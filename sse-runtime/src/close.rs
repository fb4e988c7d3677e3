//! How a stream ended, and the hooks that run when it does: exactly once, on every exit path.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::lock;

/// Why a Server-Sent Event stream ended. Every response reports exactly one.
///
/// | reason | the client sees | [`background`](crate::EventSourceResponse::background) runs |
/// | --- | --- | --- |
/// | `Completed` | a clean end of the body | yes |
/// | `ClientDisconnected` | (it is gone) | yes |
/// | `SendTimeout` | an aborted connection | no |
/// | `Shutdown` | a clean end if the stream finished within its grace period, else an abort | yes |
/// | `Error` | an aborted connection (no terminating chunk) | no |
/// | `HeadRequest` | the headers alone (the stream never started) | yes |
/// | `NoContent` | `204 No Content` (or `403`: the stream never started) | yes |
/// | `Refused` | a stream limit's refusal: a `retry:` hint and a clean end, or a `503` (the stream never started) | yes |
///
/// ```
/// use sse_runtime::CloseReason;
///
/// assert!(CloseReason::Completed.runs_background());
/// assert!(!CloseReason::SendTimeout.runs_background());
/// assert_eq!(CloseReason::ClientDisconnected.to_string(), "client disconnected");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The source stream ended by itself.
    Completed,
    /// The client went away (the response body was dropped).
    ClientDisconnected,
    /// The client stopped reading for longer than the send timeout.
    SendTimeout,
    /// The server shut down (see [`Shutdown`](crate::Shutdown)).
    Shutdown,
    /// The source failed or panicked, or yielded a value that could not be encoded.
    Error,
    /// The request was `HEAD` (a health check, say): the response carried the headers alone,
    /// and the stream never started; its source was dropped unpolled. The client-close hooks do
    /// not run, since no client left; the background tasks do (as sse-starlette 3.7 does).
    /// The response learns the method from [`SseContext`](crate::SseContext), which every
    /// `#[sse_endpoint]` handler passes.
    HeadRequest,
    /// A resumable stream answered instead of streaming: `204 No Content` for a gap under
    /// [`GapPolicy::NoContent`](crate::resume::GapPolicy::NoContent), or `403` for a resume
    /// without a [`Grant`](crate::resume::Grant) on a hub with authorization. The stream never
    /// started. The client-close hooks do not run; the background tasks do.
    NoContent,
    /// A [`StreamLimit`](crate::limit::StreamLimit), or the subscriber cap of a resumable
    /// [`Hub`](crate::Hub) whose refused `Resume` was the response's own stream, had no room:
    /// the response was the limit's [`Refusal`](crate::limit::Refusal) and the stream never
    /// started; its source was dropped unpolled. The client-close hooks do not run; the
    /// background tasks do. (A `Resume` refused inside a `sse!` body sends the same `retry:`
    /// hint and ends, which that stream reports as `Completed`.)
    Refused,
}

impl CloseReason {
    /// Whether background tasks run after this ending (SPEC 118-119): not after a send timeout
    /// or an error.
    pub const fn runs_background(self) -> bool {
        !matches!(self, CloseReason::SendTimeout | CloseReason::Error)
    }

    /// The reason in snake case, as a metric label.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn as_label(self) -> &'static str {
        match self {
            CloseReason::Completed => "completed",
            CloseReason::ClientDisconnected => "client_disconnected",
            CloseReason::SendTimeout => "send_timeout",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Error => "error",
            CloseReason::HeadRequest => "head_request",
            CloseReason::NoContent => "no_content",
            CloseReason::Refused => "refused",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            CloseReason::Completed => "completed",
            CloseReason::ClientDisconnected => "client disconnected",
            CloseReason::SendTimeout => "send timeout",
            CloseReason::Shutdown => "server shutdown",
            CloseReason::Error => "stream error",
            CloseReason::HeadRequest => "head request",
            CloseReason::NoContent => "no content",
            CloseReason::Refused => "refused",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type BackgroundTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
type ClientCloseHook = Box<dyn FnOnce() + Send + 'static>;
type CloseHook = Box<dyn FnOnce(CloseReason) + Send + 'static>;

/// One registered hook.
enum Hook {
    ClientClose(ClientCloseHook),
    Close(CloseHook),
    Background(BackgroundTask),
    /// Hooks registered at run time: taken when the stream ends.
    RegisteredAtRunTime(CloseHooks),
}

/// The hooks of one response, in registration order.
///
/// One list for every kind keeps a response without hooks at one empty `Vec`, and one with a
/// single hook at one small allocation: every idle stream carries this.
#[derive(Default)]
pub(crate) struct HookSet {
    hooks: Vec<Hook>,
}

impl HookSet {
    pub(crate) fn on_client_close(&mut self, hook: impl FnOnce() + Send + 'static) {
        self.push(Hook::ClientClose(Box::new(hook)));
    }

    pub(crate) fn on_close(&mut self, hook: impl FnOnce(CloseReason) + Send + 'static) {
        self.push(Hook::Close(Box::new(hook)));
    }

    pub(crate) fn background(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.push(Hook::Background(Box::pin(task)));
    }

    pub(crate) fn registered_at_run_time(&mut self, hooks: CloseHooks) {
        self.push(Hook::RegisteredAtRunTime(hooks));
    }

    fn push(&mut self, hook: Hook) {
        // Grow from one slot, not `Vec`'s default four: most responses have one hook or two.
        if self.hooks.len() == self.hooks.capacity() {
            self.hooks.reserve_exact(self.hooks.len().max(1));
        }
        self.hooks.push(hook);
    }

    fn append(&mut self, other: HookSet) {
        self.hooks.extend(other.hooks);
    }

    fn count(&self, kind: fn(&Hook) -> bool) -> usize {
        self.hooks.iter().filter(|hook| kind(hook)).count()
    }
}

impl fmt::Debug for HookSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field(
                "on_client_close",
                &self.count(|h| matches!(h, Hook::ClientClose(_))),
            )
            .field("on_close", &self.count(|h| matches!(h, Hook::Close(_))))
            .field(
                "background",
                &self.count(|h| matches!(h, Hook::Background(_))),
            )
            .field(
                "registered_at_run_time",
                &self.count(|h| matches!(h, Hook::RegisteredAtRunTime(_))),
            )
            .finish()
    }
}

/// Hooks registered while a stream runs, for state that only exists per request.
///
/// A handle is cheap to clone. Give one clone to the response with
/// [`EventSourceResponse::close_hooks`](crate::EventSourceResponse::close_hooks) and keep another
/// in the stream; whatever is registered before the stream ends runs like the builder's hooks. In
/// an `#[sse_endpoint]` function, declare a parameter of type `CloseHooks` and the attribute wires
/// it for you.
///
/// ```
/// use std::net::SocketAddr;
///
/// use axum::extract::ConnectInfo;
/// use futures_util::stream;
/// use sse_runtime::{CloseHooks, EventSourceResponse};
///
/// async fn handler(ConnectInfo(addr): ConnectInfo<SocketAddr>) -> EventSourceResponse {
///     let hooks = CloseHooks::new();
///     hooks.on_client_close(move || tracing::info!(%addr, "client left"));
///     EventSourceResponse::new(stream::iter([1, 2, 3])).close_hooks(&hooks)
/// }
/// # let _ = handler;
/// ```
#[derive(Clone, Default)]
pub struct CloseHooks(Arc<Mutex<Option<HookSet>>>);

impl CloseHooks {
    /// An empty set of hooks.
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(Some(HookSet::default()))))
    }

    /// Runs `hook` if the client disconnects, before the stream is dropped (SPEC 93).
    ///
    /// Registering after the stream ended runs nothing: the hook is dropped.
    pub fn on_client_close(&self, hook: impl FnOnce() + Send + 'static) {
        self.with(|hooks| hooks.on_client_close(hook));
    }

    /// Runs `hook` with the [`CloseReason`] once the stream ended, whatever the reason.
    pub fn on_close(&self, hook: impl FnOnce(CloseReason) + Send + 'static) {
        self.with(|hooks| hooks.on_close(hook));
    }

    /// Spawns `task` after the stream ended, unless it ended by a send timeout or an error.
    pub fn background(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.with(|hooks| hooks.background(task));
    }

    fn with(&self, register: impl FnOnce(&mut HookSet)) {
        let mut slot = lock(&self.0);
        match slot.as_mut() {
            Some(hooks) => register(hooks),
            None => tracing::debug!("close hook registered after the stream ended; ignored"),
        }
    }

    /// Takes every registered hook; later registrations are ignored.
    pub(crate) fn take(&self) -> HookSet {
        let mut slot = lock(&self.0);
        slot.take().unwrap_or_default()
    }
}

impl fmt::Debug for CloseHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CloseHooks")
    }
}

impl HookSet {
    /// Whether no hook was registered.
    pub(crate) fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Ends a stream for `reason`, in the one order every exit follows (SPEC 93, 95): hooks
    /// registered at run time join the list, the client-close hooks run (a disconnect only),
    /// then `drop_source` drops the stream's source (its destructors are its cleanup), then the
    /// close hooks run with the reason and the background tasks it allows are spawned.
    pub(crate) fn close(&mut self, reason: CloseReason, drop_source: impl FnOnce()) {
        self.begin(reason);
        drop_source();
        self.finish(reason);
    }

    /// What happens before the source is dropped: hooks registered at run time join the list
    /// (after the builder's, in the order of their handles), and the client-close hooks run if
    /// `reason` is a disconnect (SPEC 93).
    fn begin(&mut self, reason: CloseReason) {
        let shared: Vec<Hook> = self
            .hooks
            .extract_if(.., |hook| matches!(hook, Hook::RegisteredAtRunTime(_)))
            .collect();
        for hook in shared {
            if let Hook::RegisteredAtRunTime(handle) = hook {
                self.append(handle.take());
            }
        }
        if reason == CloseReason::ClientDisconnected {
            for hook in self
                .hooks
                .extract_if(.., |hook| matches!(hook, Hook::ClientClose(_)))
            {
                if let Hook::ClientClose(hook) = hook {
                    guarded("on_client_close", hook);
                }
            }
        }
    }

    /// Runs the close hooks and starts the background tasks `reason` allows.
    fn finish(&mut self, reason: CloseReason) {
        let mut hooks = std::mem::take(&mut self.hooks);
        // Client-close hooks that did not run (the stream did not end by a disconnect) are
        // dropped before the close hooks run.
        hooks.retain(|hook| !matches!(hook, Hook::ClientClose(_)));
        for hook in hooks.extract_if(.., |hook| matches!(hook, Hook::Close(_))) {
            if let Hook::Close(hook) = hook {
                guarded("on_close", || hook(reason));
            }
        }
        // Only background tasks are left, in registration order.
        let run = reason.runs_background();
        for hook in hooks {
            if let Hook::Background(task) = hook
                && run
            {
                spawn_detached(task, "stream ended");
            }
        }
    }
}

/// Runs a user hook and returns what it returned; a panic is logged (with its message) and
/// gives `None` instead of tearing down the connection task. Sound to assert unwind safety: the hook is consumed, so nothing it left
/// half-done is observed again.
pub(crate) fn guarded<T>(name: &str, hook: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(hook))
        .map_err(|panic| {
            tracing::error!(
                hook = name,
                panic = panic_message(&*panic),
                "server-sent event hook panicked"
            );
        })
        .ok()
}

/// The message of a caught panic, for the log.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string panic payload>")
}

/// Spawns a task that nothing waits for (a background task, an async hook), or logs that it
/// was dropped when no tokio runtime is running.
pub(crate) fn spawn_detached(task: impl Future<Output = ()> + Send + 'static, what: &str) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(task);
        }
        Err(_) => {
            tracing::warn!("server-sent event {what} outside a tokio runtime: the task was dropped")
        }
    }
}

/// The error a body ends with when the response is aborted: hyper then closes the connection
/// without the terminating chunk, and the client sees an incomplete body.
///
/// ```
/// use std::time::Duration;
///
/// use axum::response::IntoResponse;
/// use futures_util::stream;
/// use sse_runtime::testing::{BodyReader, ReadError};
/// use sse_runtime::{CloseReason, EventSourceResponse, StreamAborted};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let failing = stream::iter([Err::<&str, _>(std::io::Error::other("boom"))]);
/// let response = EventSourceResponse::from_try_stream(failing).into_response();
/// let mut body = BodyReader::new(response.into_body());
/// let Err(ReadError::Aborted(error)) = body.frame(Duration::from_secs(1)).await else {
///     panic!("expected an abort");
/// };
/// let aborted = error.downcast_ref::<StreamAborted>().unwrap();
/// assert_eq!(aborted.reason(), CloseReason::Error);
/// # }
/// ```
#[derive(Debug)]
pub struct StreamAborted(CloseReason);

impl StreamAborted {
    pub(crate) fn new(reason: CloseReason) -> Self {
        Self(reason)
    }

    /// Why the stream was aborted.
    pub fn reason(&self) -> CloseReason {
        self.0
    }
}

impl fmt::Display for StreamAborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "server-sent event stream aborted: {}", self.0)
    }
}

impl std::error::Error for StreamAborted {}
