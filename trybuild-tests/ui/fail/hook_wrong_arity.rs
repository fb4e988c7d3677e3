use sse_runtime::sse;

fn log_close() {
    println!("closed");
}

sse! {
    #[sse_endpoint(on_close = log_close)]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
