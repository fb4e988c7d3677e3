//! The body hyper polls directly, in its connection task: no extra task, lock or channel. A
//! dropped body is a departed client (or a connection closed under it).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http_body::{Body, Frame};
use pin_project_lite::pin_project;

use super::{Driver, Item, Step};
use crate::BoxError;
use crate::close::StreamAborted;

/// A step as hyper takes it: a data frame, the end, or the error that aborts the response.
pub(super) fn frame(step: Step) -> Option<Result<Frame<Bytes>, BoxError>> {
    match step {
        Step::Data(bytes) => Some(Ok(Frame::data(bytes))),
        Step::End(ending) if ending.abort => Some(Err(Box::new(StreamAborted::new(ending.reason)))),
        Step::End(_) => None,
    }
}

pin_project! {
    /// The body hyper polls directly.
    #[derive(Debug)]
    pub(crate) struct SseBody<S> {
        #[pin]
        driver: Driver<S>,
    }
}

impl<S> SseBody<S> {
    pub(super) fn new(driver: Driver<S>) -> Self {
        Self { driver }
    }
}

impl<S: Stream<Item = Item>> Body for SseBody<S> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().driver.poll_step(cx).map(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.driver.is_end_stream()
    }
}
