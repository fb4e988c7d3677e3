use sse_runtime::sse;

sse! {
    #[sse_endpoint(media_type = "event-stream")]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
