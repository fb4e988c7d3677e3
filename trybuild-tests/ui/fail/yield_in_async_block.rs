use sse_runtime::sse;

sse! {
    async fn numbers() {
        let task = async {
            yield 1;
        };
        task.await;
    }
}

fn main() {}
