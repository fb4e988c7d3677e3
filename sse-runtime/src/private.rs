//! Names the `#[sse_endpoint]` expansion uses, so users need not depend on them. Not public API:
//! anything here may change in any release.

pub use async_stream;
pub use axum;
pub use futures_core;
pub use http;
