use sse_runtime::sse;

sse! {
    async fn numbers() {
        (1..=3).for_each(|n| {
            yield n;
        });
    }
}

fn main() {}
