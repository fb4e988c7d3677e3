//! Generics, where clauses, visibility, doc comments and other attributes are kept.

#![deny(missing_docs)]
#![deny(unused)]

use std::fmt::Display;

use axum::extract::State;
use axum::{Router, routing::get};
use sse_runtime::sse;

/// The endpoints of this crate.
pub mod feed {
    use super::*;

    sse! {
        /// Sends the state's value three times.
        #[sse_endpoint(ping = 1)]
        pub async fn repeat<T>(State(value): State<T>)
        where
            T: Display + Clone + Send + Sync + 'static,
        {
            for _ in 0..3 {
                yield value.to_string();
            }
        }

        /// Visible in the crate only.
        #[allow(clippy::needless_return)]
        pub(crate) async fn limited<const N: usize>() {
            yield N;
            return;
        }

        #[doc = "Documented by attribute."]
        #[inline]
        pub async fn documented() {
            yield "doc";
        }
    }
}

fn main() {
    let _app: Router = Router::new()
        .route("/repeat", get(feed::repeat::<u32>))
        .route("/limited", get(feed::limited::<3>))
        .route("/documented", get(feed::documented))
        .with_state(7u32);
}
