//! The body fed by a producer task, for a send timeout the connection cannot enforce (no
//! `connection::Listener`, or HTTP/2, where one stream must not close the shared connection).

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use http_body::{Body, Frame};
use tokio::sync::mpsc;

use super::body::frame;
use super::{Driver, Ending, Item, Step};
use crate::BoxError;
use crate::close::CloseReason;

/// The body fed by a producer task, for send timeouts the connection cannot enforce.
pub(crate) struct ProducerBody<S> {
    rx: mpsc::Receiver<Step>,
    /// The stream, moved into its task on the first poll (it is not pinned before).
    start: Option<(Driver<S>, mpsc::Sender<Step>, Duration)>,
    done: bool,
}

// The driver is only moved, never pinned, while it waits in the body.
impl<S> Unpin for ProducerBody<S> {}

impl<S> ProducerBody<S> {
    pub(super) fn new(driver: Driver<S>, send_timeout: Duration) -> Self {
        let (tx, rx) = mpsc::channel(1);
        Self {
            rx,
            start: Some((driver, tx, send_timeout)),
            done: false,
        }
    }
}

impl<S> fmt::Debug for ProducerBody<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProducerBody")
            .field("started", &self.start.is_none())
            .field("done", &self.done)
            .finish()
    }
}

impl<S: Stream<Item = Item> + Send + 'static> Body for ProducerBody<S> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some((driver, tx, timeout)) = this.start.take() {
            // Started on the first poll: building a response does no work (SPEC 58).
            tokio::spawn(produce(driver, tx, timeout));
        }
        let step = match std::task::ready!(this.rx.poll_recv(cx)) {
            Some(step) => step,
            // The producer stopped without saying how: it timed out, so abort.
            None => Step::End(Ending {
                reason: CloseReason::SendTimeout,
                abort: true,
            }),
        };
        if matches!(step, Step::End(_)) {
            this.done = true;
        }
        Poll::Ready(frame(step))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

/// Runs the stream in a task of its own, handing each frame to the body within `timeout`.
async fn produce<S: Stream<Item = Item>>(
    driver: Driver<S>,
    tx: mpsc::Sender<Step>,
    timeout: Duration,
) {
    use tokio::sync::mpsc::error::TrySendError;
    let mut driver = std::pin::pin!(driver);
    loop {
        let step = tokio::select! {
            biased;
            () = tx.closed() => return driver.as_mut().close_dropped(),
            step = poll_fn(|cx| driver.as_mut().poll_step(cx)) => step,
        };
        let last = matches!(step, Step::End(_));
        let permit = match tx.try_reserve() {
            Ok(permit) => permit,
            Err(TrySendError::Closed(())) => return driver.as_mut().close_dropped(),
            Err(TrySendError::Full(())) => {
                match tokio::time::timeout(timeout, tx.reserve()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_closed)) => return driver.as_mut().close_dropped(),
                    Err(_elapsed) => {
                        tracing::warn!(
                            ?timeout,
                            "server-sent event client stopped reading; send timeout, aborting the response"
                        );
                        return driver.as_mut().close(CloseReason::SendTimeout);
                    }
                }
            }
        };
        permit.send(step);
        if last {
            return;
        }
    }
}
