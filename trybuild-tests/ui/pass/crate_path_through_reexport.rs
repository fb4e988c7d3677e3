//! A crate that reaches the runtime only through a framework's re-export: `sse!` finds the
//! runtime by the path it was called through, and the attribute uses `crate = ".."`. This case
//! depends on no `sse_runtime` name directly.

use axum::{Router, routing::get};
use trybuild_tests::framework::sse;

sse::sse! {
    #[sse_endpoint(ping = 5)]
    async fn through_block() {
        yield sse::ServerSentEvent::new().data("via the block");
    }

    #[sse_endpoint(crate = "trybuild_tests::framework::sse", ping = 5)]
    async fn block_with_override() {
        yield "via the override";
    }
}

// The attribute alone: its `yield`s sit inside a macro (`tokio::select!`), which stable rustc
// does not parse before expansion.
#[sse::sse_endpoint(crate = "trybuild_tests::framework::sse", send_timeout = 5)]
async fn through_attribute(shutdown: sse::ShutdownSignal) {
    loop {
        tokio::select! {
            () = shutdown.wait() => break,
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => yield "tick",
        }
    }
}

#[sse::sse_endpoint(crate = "trybuild_tests::framework::sse")]
async fn attribute_without_yield(hooks: sse::CloseHooks) {
    hooks.on_close(|reason| println!("closed: {reason}"));
}

fn main() {
    let _app: Router = Router::new()
        .route("/block", get(through_block))
        .route("/override", get(block_with_override))
        .route("/attribute", get(through_attribute))
        .route("/empty", get(attribute_without_yield));
}
