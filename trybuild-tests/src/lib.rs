//! Compile-fail (`ui/fail`) and compile-pass (`ui/pass`) suites of `#[sse_endpoint]` and
//! `sse!`, and behaviour tests of macro endpoints (`tests/`).

/// A framework built on `sse-runtime` that re-exports it, as the compile-pass case of
/// `crate = ".."` uses it: its users depend on the framework alone.
pub mod framework {
    pub use sse_runtime as sse;
}
