use sse_runtime::{CloseReason, sse};

fn log_close(reason: CloseReason) -> Result<(), std::io::Error> {
    println!("closed: {reason}");
    Ok(())
}

sse! {
    #[sse_endpoint(on_close = log_close)]
    async fn numbers() {
        yield 1;
    }
}

fn main() {}
