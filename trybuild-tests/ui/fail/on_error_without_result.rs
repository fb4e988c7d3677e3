use sse_runtime::{ServerSentEvent, sse};

fn error_event(error: std::io::Error) -> ServerSentEvent {
    ServerSentEvent::new().event("error").data(error)
}

sse! {
    #[sse_endpoint(on_error = error_event)]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
