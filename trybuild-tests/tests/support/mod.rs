//! What the behaviour tests share: serving a request through a `Router` and reading the body.

// Each test file uses a part of it.
#![allow(dead_code)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use http::Request;
use sse_runtime::testing::{BodyReader, ReadError};
use tower::ServiceExt;

/// How long one read of a body may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) async fn call(app: Router, request: Request<Body>) -> Response {
    app.oneshot(request)
        .await
        .expect("the router is infallible")
}

pub(crate) async fn get_response(app: Router, uri: &str) -> Response {
    call(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

/// The whole body, which must end cleanly.
pub(crate) async fn body_of(response: Response) -> Vec<u8> {
    BodyReader::new(response.into_body())
        .read_to_end(TIMEOUT)
        .await
        .expect("the body ends cleanly")
        .to_vec()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The bytes of a body that must end with an error, and that error.
pub(crate) async fn read_until_abort(response: Response) -> (Vec<u8>, ReadError) {
    let mut reader = BodyReader::new(response.into_body());
    let mut bytes = Vec::new();
    loop {
        match reader.frame(TIMEOUT).await {
            Ok(Some(frame)) => bytes.extend_from_slice(&frame),
            Ok(None) => panic!("the body ended cleanly after {:?}", text(&bytes)),
            Err(error) => return (bytes, error),
        }
    }
}
