use sse_runtime::sse;

sse! {
    async fn numbers() {
        yield 1;
        return 2;
    }
}

fn main() {}
