use sse_runtime::sse;

sse! {
    fn numbers() {
        yield 1;
    }
}

fn main() {}
