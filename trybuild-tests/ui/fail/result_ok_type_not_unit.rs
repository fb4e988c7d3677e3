use sse_runtime::sse;

sse! {
    async fn numbers() -> Result<u32, std::io::Error> {
        yield 1;
        Ok(1)
    }
}

fn main() {}
