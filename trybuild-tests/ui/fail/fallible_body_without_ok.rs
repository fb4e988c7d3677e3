use sse_runtime::sse;

sse! {
    async fn numbers() -> Result<(), std::num::ParseIntError> {
        yield "1".parse::<u32>()?;
    }
}

fn main() {}
