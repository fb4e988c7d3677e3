//! A crate that forbids `unsafe` code still defines endpoints, plain and fallible, with
//! `for await` too: the expansion asks nothing of the crate's own code.

#![forbid(unsafe_code)]

use axum::{Router, routing::get};
use sse_runtime::sse;

sse! {
    async fn plain() {
        yield 1;
    }

    async fn fallible() -> Result<(), std::num::ParseIntError> {
        yield "2".parse::<u32>()?;
        tokio::select! {
            value = async { "3".parse::<u32>() } => yield value?,
        }
        Ok(())
    }

    async fn forwarded() -> Result<(), axum::Error> {
        for await chunk in axum::body::Body::from("bytes").into_data_stream() {
            yield chunk?.len();
        }
        Ok(())
    }
}

fn main() {
    let _app: Router = Router::new()
        .route("/plain", get(plain))
        .route("/fallible", get(fallible))
        .route("/forwarded", get(forwarded));
}
