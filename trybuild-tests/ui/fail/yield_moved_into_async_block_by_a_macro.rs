use sse_runtime::sse;

/// Puts its input in an `async` block, where the rewriter cannot see it.
macro_rules! spawned {
    ($body:expr) => {
        tokio::spawn(async move { $body })
    };
}

sse! {
    async fn numbers() -> Result<(), std::io::Error> {
        spawned!(yield 1);
        Ok(())
    }
}

fn main() {}
