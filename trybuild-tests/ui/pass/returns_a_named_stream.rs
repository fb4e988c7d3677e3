//! Streams the return type names: a type whose name ends in `Stream` (its items are taken as
//! events), `Pin<Box<dyn Stream<..>>>` (to which the body's value coerces), generics, and
//! associated fns that use `Self` and the impl's generics.

#![deny(unused)]

use std::fmt::Display;
use std::marker::PhantomData;
use std::pin::Pin;

use axum::extract::{Path, State};
use axum::{Router, routing::get};
use sse_runtime::{sse, sse_endpoint};
use user_futures::stream::{self, BoxStream, Stream, StreamExt};

type NumberStream = stream::Iter<std::ops::RangeInclusive<u32>>;

#[sse_endpoint]
async fn aliased() -> NumberStream {
    stream::iter(1..=3)
}

#[sse_endpoint]
async fn boxed() -> BoxStream<'static, String> {
    stream::iter(["a", "b"]).map(str::to_owned).boxed()
}

#[sse_endpoint]
async fn pinned(Path(n): Path<u32>) -> Pin<Box<dyn Stream<Item = Result<u32, std::io::Error>> + Send>> {
    Box::pin(stream::iter([Ok(n)]))
}

/// Generic over the state.
#[sse_endpoint(ping = 1)]
pub async fn repeat<T>(State(value): State<T>) -> impl Stream<Item = String> + use<T>
where
    T: Display + Clone + Send + Sync + 'static,
{
    stream::repeat(value.to_string()).take(3)
}

struct Feed;

impl Feed {
    const LIMIT: u32 = 3;

    fn limit() -> u32 {
        Self::LIMIT
    }

    #[sse_endpoint(ping = 5)]
    pub async fn numbers(Path(start): Path<u32>) -> impl Stream<Item = u32> {
        stream::iter(start..start + Self::limit())
    }
}

struct Typed<T>(PhantomData<T>);

impl<T: Default + Display + Send + 'static> Typed<T> {
    sse! {
        async fn default_value() -> impl Stream<Item = String> {
            stream::iter([T::default().to_string()])
        }
    }
}

fn main() {
    let _app: Router = Router::new()
        .route("/aliased", get(aliased))
        .route("/boxed", get(boxed))
        .route("/pinned/{n}", get(pinned))
        .route("/repeat", get(repeat::<u32>))
        .route("/numbers/{start}", get(Feed::numbers))
        .route("/default", get(Typed::<u8>::default_value))
        .with_state(7u32);
}
