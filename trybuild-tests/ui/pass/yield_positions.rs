//! `yield` anywhere in the body: loops, `match`, nested blocks, `if let`, labeled blocks, the
//! arms of `tokio::select!`; closures, async blocks and nested fns that do not yield are fine,
//! and so is a nested `stream!` of async-stream's own.

#![deny(unreachable_code, unused)]

use std::time::Duration;

use axum::{Router, routing::get};
use sse_runtime::{ServerSentEvent, ShutdownSignal, sse};

sse! {
    async fn everywhere(shutdown: ShutdownSignal) {
        let double = |n: u32| n * 2;
        let later = async { 5u32 };
        fn helper() -> &'static str {
            "helper"
        }

        yield later.await;
        yield helper();
        for i in 0..3 {
            if i % 2 == 0 {
                yield double(i);
            } else {
                yield ServerSentEvent::new().id(i).data(i);
            }
        }
        let mut n = 0;
        while n < 3 {
            n += 1;
            match n {
                1 => yield "one",
                2 => {
                    yield "two";
                }
                _ => {
                    {
                        yield "deep";
                    }
                }
            }
        }
        if let Some(value) = Some(9) {
            yield value;
        }
        'outer: {
            yield "labeled";
            if n == 3 {
                break 'outer;
            }
        }
        loop {
            tokio::select! {
                () = shutdown.wait() => {
                    yield "bye";
                    break;
                }
                () = tokio::time::sleep(Duration::from_secs(1)) => yield "tick",
            }
        }
    }

    async fn endless() {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            yield "forever";
        }
    }

    async fn endless_fallible() -> Result<(), std::io::Error> {
        loop {
            std::fs::metadata("/")?;
            yield "forever";
        }
    }
}

fn main() {
    let _app: Router = Router::new()
        .route("/everywhere", get(everywhere))
        .route("/endless", get(endless))
        .route("/endless-fallible", get(endless_fallible));
}
