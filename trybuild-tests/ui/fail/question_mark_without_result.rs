use sse_runtime::sse;

sse! {
    async fn numbers() {
        let n: u32 = "7".parse()?;
        yield n;
    }
}

fn main() {}
