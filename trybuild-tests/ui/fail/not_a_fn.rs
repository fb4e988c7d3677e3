use sse_runtime::sse;

sse! {
    struct Feed;

    async fn numbers() {
        yield 1;
    }
}

fn main() {}
