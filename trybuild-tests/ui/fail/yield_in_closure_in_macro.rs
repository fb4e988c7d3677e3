use sse_runtime::sse;

sse! {
    async fn numbers() -> Result<(), std::io::Error> {
        tokio::select! {
            () = std::future::ready(()) => (1..=3).for_each(|n| {
                yield n;
            }),
        }
        Ok(())
    }
}

fn main() {}
