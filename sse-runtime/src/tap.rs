//! One receiver of a tokio broadcast ring, polled like a stream without a future per event.

use std::task::{Context, Poll};

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_util::sync::ReusableBoxFuture;

/// A broadcast receiver that can be polled: ready events are taken with `try_recv` (no future),
/// and a wait for the next one reuses one allocation, made at the first wait.
pub(crate) struct Tap<T> {
    /// The receiver, while no wait is in progress.
    rx: Option<broadcast::Receiver<T>>,
    /// The wait for the next event once none was ready; it owns the receiver meanwhile.
    wait: Option<ReusableBoxFuture<'static, Received<T>>>,
}

/// What a wait ends with, and the receiver back.
type Received<T> = (Result<T, RecvError>, broadcast::Receiver<T>);

async fn next<T: Clone>(mut rx: broadcast::Receiver<T>) -> Received<T> {
    let received = rx.recv().await;
    (received, rx)
}

impl<T: Clone + Send + 'static> Tap<T> {
    pub(crate) fn new(rx: broadcast::Receiver<T>) -> Self {
        Self {
            rx: Some(rx),
            wait: None,
        }
    }

    /// Whether the tap was ended (or its ring closed and the end was taken).
    pub(crate) fn is_ended(&self) -> bool {
        self.rx.is_none() && self.wait.is_none()
    }

    /// The next message of the ring: at once if one is ready, else through the (reused) wait.
    /// An ended tap reports `Closed`.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        if let Some(mut rx) = self.rx.take() {
            // Events sent together are taken without a future, one after the other.
            match rx.try_recv() {
                Ok(message) => {
                    self.rx = Some(rx);
                    return Poll::Ready(Ok(message));
                }
                Err(TryRecvError::Lagged(missed)) => {
                    self.rx = Some(rx);
                    return Poll::Ready(Err(RecvError::Lagged(missed)));
                }
                Err(TryRecvError::Closed) => return Poll::Ready(Err(RecvError::Closed)),
                Err(TryRecvError::Empty) => match &mut self.wait {
                    Some(wait) => wait.set(next(rx)),
                    None => self.wait = Some(ReusableBoxFuture::new(next(rx))),
                },
            }
        }
        let Some(wait) = &mut self.wait else {
            return Poll::Ready(Err(RecvError::Closed));
        };
        let (received, rx) = std::task::ready!(wait.poll(cx));
        self.rx = Some(rx);
        Poll::Ready(received)
    }

    /// The receiver, when no wait holds it (for `len` and `try_recv` on the lag path).
    pub(crate) fn receiver(&mut self) -> Option<&mut broadcast::Receiver<T>> {
        self.rx.as_mut()
    }

    /// Ends the tap: the receiver, and with it its place in the ring, goes at once.
    pub(crate) fn end(&mut self) {
        self.rx = None;
        self.wait = None;
    }
}
