//! Status and headers: SPEC section E (61-69) and 60.

use axum::response::{IntoResponse, Response};
use futures_util::stream;
use http::{HeaderMap, HeaderValue, StatusCode, Version};
use sse_runtime::EventSourceResponse;

fn empty() -> EventSourceResponse {
    EventSourceResponse::new(stream::empty::<&str>())
}

fn header_list(response: &Response) -> Vec<(String, String)> {
    response
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn spec_61_62_default_headers_exactly_and_in_order() {
    let response = empty().into_response();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_list(&response),
        pairs(&[
            ("cache-control", "no-store"),
            ("connection", "keep-alive"),
            ("x-accel-buffering", "no"),
            ("content-type", "text/event-stream; charset=utf-8"),
        ])
    );
    assert_eq!(response.headers().get_all("content-type").iter().count(), 1);
}

#[test]
fn spec_63_a_user_cache_control_wins_whatever_its_case() {
    let response = empty().header("Cache-Control", "no-cache").into_response();
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(
        response.headers().get_all("cache-control").iter().count(),
        1
    );
    let response = empty()
        .header("cache-control", "public, max-age=29")
        .into_response();
    assert_eq!(response.headers()["cache-control"], "public, max-age=29");
}

#[test]
fn spec_64_connection_and_x_accel_buffering_are_forced() {
    let response = empty()
        .header("connection", "close")
        .header("X-Accel-Buffering", "yes")
        .into_response();
    let connection: Vec<_> = response.headers().get_all("connection").iter().collect();
    assert_eq!(connection, [HeaderValue::from_static("keep-alive")]);
    let buffering: Vec<_> = response
        .headers()
        .get_all("x-accel-buffering")
        .iter()
        .collect();
    assert_eq!(buffering, [HeaderValue::from_static("no")]);
}

#[test]
fn spec_65_other_custom_headers_pass_through_before_the_defaults() {
    let response = empty()
        .header("x-custom-header", "custom-value")
        .into_response();
    assert_eq!(
        header_list(&response),
        pairs(&[
            ("x-custom-header", "custom-value"),
            ("cache-control", "no-store"),
            ("connection", "keep-alive"),
            ("x-accel-buffering", "no"),
            ("content-type", "text/event-stream; charset=utf-8"),
        ])
    );
}

#[test]
fn headers_map_is_merged_with_repeated_values_kept() {
    let mut map = HeaderMap::new();
    map.append("x-a", HeaderValue::from_static("1"));
    map.append("x-a", HeaderValue::from_static("2"));
    map.insert("cache-control", HeaderValue::from_static("private"));
    let response = empty().headers(map).into_response();
    let values: Vec<_> = response.headers().get_all("x-a").iter().collect();
    assert_eq!(values, ["1", "2"]);
    assert_eq!(response.headers()["cache-control"], "private");
}

#[test]
fn spec_66_a_user_content_type_wins_unchanged() {
    let response = empty()
        .header("Content-Type", "text/event-stream")
        .into_response();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers().get_all("content-type").iter().count(), 1);
}

#[test]
fn spec_67_media_type_charset_rules() {
    let text = empty().media_type("text/plain").into_response();
    assert_eq!(text.headers()["content-type"], "text/plain; charset=utf-8");
    let named = empty()
        .media_type("text/plain; charset=latin-1")
        .into_response();
    assert_eq!(
        named.headers()["content-type"],
        "text/plain; charset=latin-1"
    );
    let other = empty().media_type("application/x-foo").into_response();
    assert_eq!(other.headers()["content-type"], "application/x-foo");
    let none = empty().without_media_type().into_response();
    assert!(none.headers().get("content-type").is_none());
    assert_eq!(none.headers().len(), 3);
}

#[test]
fn spec_68_no_content_length_by_default() {
    let response = empty().into_response();
    assert!(response.headers().get("content-length").is_none());
}

#[test]
fn spec_60_status_passes_through() {
    let response = empty().status(StatusCode::CREATED).into_response();
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[test]
fn connection_header_only_on_http1() {
    for version in [Version::HTTP_10, Version::HTTP_11] {
        let response = empty().version(version).into_response();
        assert_eq!(response.headers()["connection"], "keep-alive");
    }
    for version in [Version::HTTP_2, Version::HTTP_3] {
        let response = empty()
            .version(version)
            .header("connection", "close")
            .into_response();
        assert!(
            response.headers().get("connection").is_none(),
            "{version:?}"
        );
        assert_eq!(response.headers()["x-accel-buffering"], "no");
    }
}

#[test]
fn an_invalid_header_is_a_logged_500_not_a_silent_loss() {
    let bad_name = empty().header("bad header", "x").into_response();
    assert_eq!(bad_name.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let bad_value = empty().header("x-ok", "line\nbreak").into_response();
    assert_eq!(bad_value.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let bad_media = empty().media_type("text/plain\n").into_response();
    assert_eq!(bad_media.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
