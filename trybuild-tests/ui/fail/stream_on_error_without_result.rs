use sse_runtime::{ServerSentEvent, sse_endpoint};
use user_futures::Stream;

fn error_event(error: std::io::Error) -> ServerSentEvent {
    ServerSentEvent::new().event("error").data(error)
}

#[sse_endpoint(on_error = error_event)]
async fn numbers() -> impl Stream<Item = u32> {
    user_futures::stream::iter(1..=3)
}

fn main() {}
