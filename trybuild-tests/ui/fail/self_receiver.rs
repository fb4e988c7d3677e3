use sse_runtime::sse;

struct Feed;

impl Feed {
    sse! {
        async fn numbers(&self) {
            yield 1;
        }
    }
}

fn main() {}
