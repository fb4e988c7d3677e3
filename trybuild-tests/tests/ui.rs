//! The compile-fail and compile-pass suites of `#[sse_endpoint]` and `sse!`.
//!
//! Every `.stderr` under `ui/fail` was read by a person: it names the mistake and the fix, and
//! points at the offending token. The suite runs on stable only, since rustc's wording drifts
//! on nightly (as axum-macros does).

#[rustversion::stable]
#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/fail/*.rs");
    cases.pass("ui/pass/*.rs");
}
