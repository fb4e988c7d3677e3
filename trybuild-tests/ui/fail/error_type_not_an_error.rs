use sse_runtime::sse;

#[derive(Debug)]
struct FeedError;

fn fetch() -> Result<u32, FeedError> {
    Err(FeedError)
}

sse! {
    async fn numbers() -> Result<(), FeedError> {
        yield fetch()?;
        Ok(())
    }
}

fn main() {}
