// A builder call of a yielded event with a value that has no `Display`: the error is at the
// value, whether the `yield` is fused (calls in field order) or not.
use sse_runtime::{ServerSentEvent, sse};

struct Opaque;

sse! {
    async fn fused() {
        yield ServerSentEvent::new().id(1).data(Opaque);
    }

    async fn built() {
        yield ServerSentEvent::new().data(Opaque).id(1);
    }
}

fn main() {}
