//! The `#[sse_endpoint]` attribute of `sse-runtime`. Use it through `sse_runtime::sse_endpoint`.

use proc_macro::TokenStream;

/// Turns a generator-like async fn into an axum handler returning an SSE response.
#[proc_macro_attribute]
pub fn sse_endpoint(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
