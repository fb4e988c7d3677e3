//! Associated fns (no `self`) in impl blocks, generic impls included.

use std::marker::PhantomData;

use axum::extract::Path;
use axum::{Router, routing::get};
use sse_runtime::sse;

struct Feed;

impl Feed {
    const LIMIT: u32 = 3;

    sse! {
        #[sse_endpoint(ping = 5)]
        pub async fn numbers(Path(start): Path<u32>) {
            for i in start..start + Self::LIMIT {
                yield i;
            }
        }
    }
}

struct Typed<T>(PhantomData<T>);

impl<T: Default + std::fmt::Display + Send + 'static> Typed<T> {
    sse! {
        async fn default_value() {
            yield T::default().to_string();
        }
    }
}

fn main() {
    let _app: Router = Router::new()
        .route("/numbers/{start}", get(Feed::numbers))
        .route("/default", get(Typed::<u8>::default_value));
}
