//! Push-based sending: sse-starlette's `data_sender_callable` and memory channels (SPEC §K).
//!
//! [`EventSourceResponse::channel`](crate::EventSourceResponse::channel) and
//! [`with_producer`](crate::EventSourceResponse::with_producer) hand out a [`Sender`]; its
//! errors are [`SendError`] and [`TrySendError`].

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::mpsc;

use crate::BoxError;
use crate::into_event::{IntoEvent, Payload};

/// The sending side of [`EventSourceResponse::channel`](crate::EventSourceResponse::channel).
///
/// Cloneable; the stream ends cleanly once every sender is dropped. Sending waits while the
/// channel is full (backpressure), and fails with [`SendError`] once the client has gone away, so
/// a producer can stop.
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::Sender<Payload>,
}

impl Sender {
    /// Sends one event, waiting for room in the channel.
    ///
    /// ```
    /// use sse_runtime::EventSourceResponse;
    ///
    /// # async fn run() {
    /// let (tx, response) = EventSourceResponse::channel(10);
    /// tokio::spawn(async move {
    ///     for i in 0..10 {
    ///         if tx.send(i).await.is_err() {
    ///             break; // the client left
    ///         }
    ///     }
    /// });
    /// # drop(response);
    /// # }
    /// ```
    pub async fn send(&self, event: impl IntoEvent) -> Result<(), SendError> {
        self.tx
            .send(event.into_event())
            .await
            .map_err(|_| SendError(()))
    }

    /// Sends one event if there is room now (see [`TrySendError`]).
    pub fn try_send(&self, event: impl IntoEvent) -> Result<(), TrySendError> {
        self.tx
            .try_send(event.into_event())
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => TrySendError::Full,
                mpsc::error::TrySendError::Closed(_) => TrySendError::Closed,
            })
    }

    /// Resolves once the client has gone away (or the response was dropped unsent).
    pub async fn closed(&self) {
        self.tx.closed().await;
    }

    /// Whether the client has gone away.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The error of [`Sender::send`]: the stream has ended, the client is gone.
///
/// ```
/// use sse_runtime::EventSourceResponse;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (tx, response) = EventSourceResponse::channel(1);
/// drop(response); // as when the client leaves
/// let error = tx.send("too late").await.unwrap_err();
/// assert_eq!(error.to_string(), "the server-sent event stream has ended");
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendError(());

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the server-sent event stream has ended")
    }
}

impl std::error::Error for SendError {}

/// The error of [`Sender::try_send`].
///
/// ```
/// use sse_runtime::EventSourceResponse;
/// use sse_runtime::channel::TrySendError;
///
/// let (tx, response) = EventSourceResponse::channel(1);
/// assert_eq!(tx.try_send(1), Ok(()));
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full));
/// drop(response);
/// assert_eq!(tx.try_send(3), Err(TrySendError::Closed));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrySendError {
    /// The channel is full; try again later.
    Full,
    /// The stream has ended, the client is gone.
    Closed,
}

impl fmt::Display for TrySendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full => "the server-sent event channel is full",
            TrySendError::Closed => "the server-sent event stream has ended",
        })
    }
}

impl std::error::Error for TrySendError {}

/// A new channel: the sender and the stream the response reads.
pub(crate) fn channel(capacity: usize) -> (Sender, ReceiverStream) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (Sender { tx }, ReceiverStream(rx))
}

pub(crate) struct ReceiverStream(mpsc::Receiver<Payload>);

impl Stream for ReceiverStream {
    type Item = Result<Payload, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().0.poll_recv(cx).map(|item| item.map(Ok))
    }
}
