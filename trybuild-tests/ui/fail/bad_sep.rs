use sse_runtime::sse;

sse! {
    #[sse_endpoint(sep = "\t")]
    async fn tabs() {
        yield 1;
    }

    #[sse_endpoint(sep = "crlf")]
    async fn named() {
        yield 1;
    }
}

fn main() {}
