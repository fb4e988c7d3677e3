//! Load benchmark of sse-runtime against axum's built-in `Sse` (see BENCHMARKS.md).

fn main() {
    println!("the benchmark scenarios are not written yet");
}
