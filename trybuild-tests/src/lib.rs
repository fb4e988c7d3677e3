//! Compile-fail (`ui/fail`) and compile-pass (`ui/pass`) suites of `#[sse_endpoint]`.
