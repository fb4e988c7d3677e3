//! Fns that return a stream of `Result`s: an `Err` ends the stream as an error, or, with
//! `on_error`, becomes its last event.

#![deny(unused)]

use std::convert::Infallible;
use std::io;

use axum::{Router, routing::get};
use sse_runtime::{BoxError, ServerSentEvent, sse_endpoint};
use user_futures::stream::{self, Stream, TryStream};

fn error_event(error: io::Error) -> ServerSentEvent {
    ServerSentEvent::new().event("error").data(error)
}

#[sse_endpoint]
async fn results() -> impl Stream<Item = Result<u32, io::Error>> {
    stream::iter(vec![Ok(1), Err(io::Error::other("boom"))])
}

/// An alias of `Result`, a boxed error, and `stream!` with `?`.
#[sse_endpoint]
async fn aliased() -> impl Stream<Item = io::Result<String>> + Send {
    user_async_stream::try_stream! {
        for text in ["1", "x"] {
            let n: u32 = text.parse().map_err(io::Error::other)?;
            yield n.to_string();
        }
    }
}

#[sse_endpoint]
async fn boxed() -> impl Stream<Item = Result<&'static str, BoxError>> {
    stream::iter([Ok("a"), Err("failed".into())])
}

#[sse_endpoint]
async fn try_stream() -> impl TryStream<Ok = &'static str, Error = Infallible> {
    stream::iter([Ok("a"), Ok("b")])
}

#[sse_endpoint]
async fn try_stream_by_path() -> impl user_futures::TryStream<Ok = u8, Error = String> {
    stream::iter([Ok(1), Err("two".to_owned())])
}

#[sse_endpoint(on_error = error_event)]
async fn recovering() -> impl Stream<Item = Result<u32, io::Error>> {
    stream::iter(vec![Ok(1), Err(io::Error::other("boom"))])
}

#[sse_endpoint(on_error = error_event)]
async fn recovering_try_stream() -> impl TryStream<Ok = u32, Error = io::Error> {
    stream::iter(vec![Ok(1), Err(io::Error::other("boom"))])
}

fn main() {
    let _app: Router = Router::new()
        .route("/results", get(results))
        .route("/aliased", get(aliased))
        .route("/boxed", get(boxed))
        .route("/try", get(try_stream))
        .route("/try-by-path", get(try_stream_by_path))
        .route("/recovering", get(recovering))
        .route("/recovering-try", get(recovering_try_stream));
}
