use sse_runtime::{ServerSentEvent, sse};

fn my_ping() -> ServerSentEvent {
    ServerSentEvent::new().comment("still here")
}

sse! {
    #[sse_endpoint(ping = 0, ping_message = my_ping)]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
