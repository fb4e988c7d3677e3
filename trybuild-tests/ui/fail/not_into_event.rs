use sse_runtime::sse;

struct Price {
    value: f64,
}

sse! {
    async fn prices() {
        yield 1;
        yield Price { value: 1.5 };
    }
}

fn main() {}
