//! Every duration of the builder at its extremes: `Duration::MAX` saturates (the timer is set in
//! the far future and never fires) and `Duration::ZERO` means what the docs say, with no panic
//! anywhere (an overflow in the body's poll would kill the connection task outside the driver's
//! panic guard, and the hooks would then report a disconnect).

mod common;

use std::time::Duration;

use common::{Log, WITHIN, hooks, reader, settle};
use sse_runtime::testing::ReadError;
use sse_runtime::{CloseReason, EventSourceResponse, Shutdown, StreamAborted};

const FAR: Duration = Duration::from_secs(86_400 * 365 * 10);

#[tokio::test(start_paused = true)]
async fn every_duration_at_max_saturates_and_never_fires() {
    for producer_task in [false, true] {
        let log = Log::default();
        let shutdown = Shutdown::new();
        let (tx, response) = EventSourceResponse::channel(4);
        let mut response = response
            .ping(Duration::MAX)
            .shutdown_grace(Duration::MAX)
            .retry(u64::MAX)
            .shutdown(&shutdown);
        if producer_task {
            // Without a connection that can enforce it, a send timeout runs the stream in a
            // producer task with a timed hand-off.
            response = response.send_timeout(Duration::MAX);
        }
        let mut body = reader(hooks(response, &log));
        tx.send("a").await.unwrap();
        let first = body.frame(WITHIN).await.unwrap().unwrap();
        assert_eq!(
            &first[..],
            b"retry: 18446744073709551615\r\n\r\ndata: a\r\n\r\n"
        );

        // Ten years on, nothing fired: no ping, no send timeout.
        tokio::time::advance(FAR).await;
        assert!(matches!(
            body.frame(Duration::from_secs(1)).await,
            Err(ReadError::Timeout)
        ));

        // A shutdown with an endless grace does not end the stream (no overflow in the watch)...
        shutdown.trigger();
        settle().await;
        tokio::time::advance(FAR).await;
        tx.send("b").await.unwrap();
        assert_eq!(
            &body.frame(WITHIN).await.unwrap().unwrap()[..],
            b"data: b\r\n\r\n"
        );
        assert!(log.entries().is_empty(), "{:?}", log.entries());

        // ...until it ends by itself, cleanly, reporting the shutdown.
        drop(tx);
        assert_eq!(body.frame(WITHIN).await.unwrap(), None);
        settle().await;
        assert_eq!(
            log.entries(),
            ["close:Shutdown", "background"],
            "producer task: {producer_task}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn every_duration_at_zero_means_none_or_at_once() {
    let log = Log::default();
    let shutdown = Shutdown::new();
    let (tx, response) = EventSourceResponse::channel(4);
    let response = response
        // No pings.
        .ping(Duration::ZERO)
        // No send timeout: the stream is driven directly, and a client that takes a year to
        // read is not cut.
        .send_timeout(Duration::ZERO)
        // No grace: a shutdown aborts the stream at once.
        .shutdown_grace(Duration::ZERO)
        .retry(0)
        .shutdown(&shutdown);
    let mut body = reader(hooks(response, &log));
    for i in 0..3 {
        tx.send(i).await.unwrap();
    }
    let first = body.frame(WITHIN).await.unwrap().unwrap();
    assert!(
        first.starts_with(b"retry: 0\r\n\r\ndata: 0\r\n\r\n"),
        "{first:?}"
    );

    tokio::time::advance(FAR).await;
    assert!(matches!(
        body.frame(Duration::from_secs(1)).await,
        Err(ReadError::Timeout)
    ));
    assert!(log.entries().is_empty(), "{:?}", log.entries());

    shutdown.trigger();
    let Err(ReadError::Aborted(error)) = body.frame(WITHIN).await else {
        panic!("a shutdown without grace aborts the stream");
    };
    let aborted = error.downcast_ref::<StreamAborted>().unwrap();
    assert_eq!(aborted.reason(), CloseReason::Shutdown);
    settle().await;
    assert_eq!(log.entries(), ["close:Shutdown", "background"]);
}
