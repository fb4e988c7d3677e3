use sse_runtime::sse;

sse! {
    async fn numbers() {
        yield;
    }
}

fn main() {}
