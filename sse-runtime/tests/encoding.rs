//! Exact bytes of events: SPEC sections A (ServerSentEvent), B (JSON) and C (what a stream may
//! yield), adapted to Rust types as SPEC §2 recommends.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use serde_json::json;
use sse_runtime::{IntoEvent, Json, JsonServerSentEvent, Payload, Separator, ServerSentEvent};

const CRLF: Separator = Separator::CrLf;
const ALL_SEPARATORS: [Separator; 3] = [Separator::CrLf, Separator::Cr, Separator::Lf];

fn enc(event: &ServerSentEvent) -> Bytes {
    event.encode(CRLF)
}

fn yielded(value: impl IntoEvent, separator: Separator) -> Bytes {
    value.into_event().encode(separator)
}

// --- A. ServerSentEvent -------------------------------------------------------------------

#[test]
fn spec_2_default_separator_is_crlf() {
    assert_eq!(Separator::default(), Separator::CrLf);
    assert_eq!(
        enc(&ServerSentEvent::new().data("foo")),
        &b"data: foo\r\n\r\n"[..]
    );
}

#[test]
fn spec_3_field_order_is_fixed_whatever_the_builder_order() {
    let expected = &b": c\r\nid: i\r\nevent: e\r\ndata: d\r\nretry: 3\r\n\r\n"[..];
    let forwards = ServerSentEvent::new()
        .comment("c")
        .id("i")
        .event("e")
        .data("d")
        .retry(3);
    let backwards = ServerSentEvent::new()
        .retry(3)
        .data("d")
        .event("e")
        .id("i")
        .comment("c");
    assert_eq!(enc(&forwards), expected);
    assert_eq!(enc(&backwards), expected);
}

#[test]
fn spec_4_one_space_after_every_colon_even_for_empty_values() {
    let event = ServerSentEvent::new().id("").event("").data("").comment("");
    assert_eq!(enc(&event), &b": \r\nid: \r\nevent: \r\ndata: \r\n\r\n"[..]);
}

#[test]
fn spec_5_to_9_the_upstream_test_server_sent_event() {
    assert_eq!(
        enc(&ServerSentEvent::new().data("foo")),
        &b"data: foo\r\n\r\n"[..]
    );
    let event = ServerSentEvent::new().data("foo").event("bar");
    assert_eq!(enc(&event), &b"event: bar\r\ndata: foo\r\n\r\n"[..]);
    let event = event.id("xyz");
    assert_eq!(
        enc(&event),
        &b"id: xyz\r\nevent: bar\r\ndata: foo\r\n\r\n"[..]
    );
    let event = event.retry(1);
    assert_eq!(
        enc(&event),
        &b"id: xyz\r\nevent: bar\r\ndata: foo\r\nretry: 1\r\n\r\n"[..]
    );
    assert_eq!(
        event.encode(Separator::Lf),
        &b"id: xyz\nevent: bar\ndata: foo\nretry: 1\n\n"[..]
    );
}

#[test]
fn spec_10_11_comments() {
    assert_eq!(
        enc(&ServerSentEvent::new().comment("a comment")),
        &b": a comment\r\n\r\n"[..]
    );
    let event = ServerSentEvent::new().data("foo").comment("a comment");
    assert_eq!(enc(&event), &b": a comment\r\ndata: foo\r\n\r\n"[..]);
}

#[test]
fn spec_12_custom_separator_applies_to_every_line_and_the_terminator() {
    for sep in ALL_SEPARATORS {
        let s = sep.as_str();
        let event = ServerSentEvent::new().data("foo").event("event");
        assert_eq!(
            event.encode(sep),
            format!("event: event{s}data: foo{s}{s}").as_bytes()
        );
    }
}

#[test]
fn spec_13_multiline_data_for_all_nine_separator_and_break_combinations() {
    for sep in ALL_SEPARATORS {
        for line_break in ["\r\n", "\r", "\n"] {
            let s = sep.as_str();
            let data = format!("foo{line_break}bar{line_break}xyz");
            let event = ServerSentEvent::new().data(&data).event("event");
            assert_eq!(
                event.encode(sep),
                format!("event: event{s}data: foo{s}data: bar{s}data: xyz{s}{s}").as_bytes(),
                "separator {sep:?}, break {line_break:?}"
            );
        }
    }
}

#[test]
fn spec_14_empty_pieces_are_kept() {
    assert_eq!(
        enc(&ServerSentEvent::new().data("a\n")),
        &b"data: a\r\ndata: \r\n\r\n"[..]
    );
    assert_eq!(
        enc(&ServerSentEvent::new().data("\n")),
        &b"data: \r\ndata: \r\n\r\n"[..]
    );
    assert_eq!(
        enc(&ServerSentEvent::new().data("a\n\rb")),
        &b"data: a\r\ndata: \r\ndata: b\r\n\r\n"[..]
    );
    assert_eq!(
        enc(&ServerSentEvent::new().data("a\r\n\nb")),
        &b"data: a\r\ndata: \r\ndata: b\r\n\r\n"[..]
    );
    assert_eq!(
        enc(&ServerSentEvent::new().data("\n\n\n")),
        &b"data: \r\ndata: \r\ndata: \r\ndata: \r\n\r\n"[..]
    );
}

#[test]
fn spec_15_empty_string_gives_one_data_line() {
    assert_eq!(
        enc(&ServerSentEvent::new().data("")),
        &b"data: \r\n\r\n"[..]
    );
}

#[test]
fn spec_16_only_cr_lf_and_crlf_split_other_unicode_breaks_pass_through() {
    for other in ["\u{2028}", "\u{2029}", "\u{85}", "\x0b", "\x0c", "\x1c"] {
        let data = format!("a{other}b");
        assert_eq!(
            enc(&ServerSentEvent::new().data(&data)),
            format!("data: {data}\r\n\r\n").as_bytes()
        );
    }
    assert_eq!(
        enc(&ServerSentEvent::new().data("a\u{2028}b")),
        &b"data: a\xe2\x80\xa8b\r\n\r\n"[..]
    );
}

#[test]
fn spec_17_an_event_without_fields_is_a_bare_separator() {
    for sep in ALL_SEPARATORS {
        assert_eq!(ServerSentEvent::new().encode(sep), sep.as_bytes());
    }
}

#[test]
fn spec_18_non_string_data_uses_display() {
    assert_eq!(
        enc(&ServerSentEvent::new().data(0)),
        &b"data: 0\r\n\r\n"[..]
    );
    assert_eq!(
        enc(&ServerSentEvent::new().data(false)),
        &b"data: false\r\n\r\n"[..]
    );
    assert_eq!(
        enc(&ServerSentEvent::new().data(1.5)),
        &b"data: 1.5\r\n\r\n"[..]
    );
}

#[test]
fn spec_19_comments_are_split_like_data() {
    assert_eq!(
        enc(&ServerSentEvent::new().comment("a\nb\r\nc\rd")),
        &b": a\r\n: b\r\n: c\r\n: d\r\n\r\n"[..]
    );
    assert_eq!(enc(&ServerSentEvent::new().comment("")), &b": \r\n\r\n"[..]);
    assert_eq!(enc(&ServerSentEvent::new().comment(5)), &b": 5\r\n\r\n"[..]);
}

#[test]
fn spec_20_21_cr_and_lf_are_deleted_from_id_and_event() {
    assert_eq!(
        enc(&ServerSentEvent::new().id("a\nb\r\nc\rd")),
        &b"id: abcd\r\n\r\n"[..]
    );
    assert_eq!(enc(&ServerSentEvent::new().id("")), &b"id: \r\n\r\n"[..]);
    assert_eq!(
        enc(&ServerSentEvent::new().event("a\nb")),
        &b"event: ab\r\n\r\n"[..]
    );
    assert_eq!(
        enc(&ServerSentEvent::new().event("")),
        &b"event: \r\n\r\n"[..]
    );
    assert_eq!(
        enc(&ServerSentEvent::new().event("\r\n\r\n")),
        &b"event: \r\n\r\n"[..]
    );
}

#[test]
fn spec_22_23_ids_may_be_numbers_and_retry_is_an_integer() {
    // In Rust the types are checked at compile time: ids take any Display, retry a u64.
    assert_eq!(enc(&ServerSentEvent::new().id(42)), &b"id: 42\r\n\r\n"[..]);
    assert_eq!(
        enc(&ServerSentEvent::new().retry(u64::MAX)),
        &b"retry: 18446744073709551615\r\n\r\n"[..]
    );
}

#[test]
fn spec_24_retry_only_event() {
    assert_eq!(
        enc(&ServerSentEvent::new().retry(0)),
        &b"retry: 0\r\n\r\n"[..]
    );
}

#[test]
fn spec_25_utf8_output() {
    assert_eq!(
        enc(&ServerSentEvent::new().data("é€😀")),
        &b"data: \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\r\n\r\n"[..]
    );
}

#[test]
fn spec_26_separator_is_an_enum_and_parsing_rejects_anything_else() {
    assert_eq!("\r\n".parse::<Separator>(), Ok(Separator::CrLf));
    assert_eq!("\r".parse::<Separator>(), Ok(Separator::Cr));
    assert_eq!("\n".parse::<Separator>(), Ok(Separator::Lf));
    for bad in ["", "xx", "\n\r", " "] {
        let error = bad.parse::<Separator>().unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(r"sep must be one of: \r\n, \r, \n, got: ")
        );
    }
    assert_eq!(
        "xx".parse::<Separator>().unwrap_err().to_string(),
        r"sep must be one of: \r\n, \r, \n, got: xx"
    );
}

#[test]
fn spec_27_nul_and_control_characters_are_not_escaped() {
    assert_eq!(
        enc(&ServerSentEvent::new().id("a\0b").data("\0\t")),
        &b"id: a\0b\r\ndata: \0\t\r\n\r\n"[..]
    );
}

#[test]
fn spec_28_encode_is_pure_and_repeatable() {
    let event = ServerSentEvent::new().data("x").id(1);
    assert_eq!(event.encode(CRLF), event.encode(CRLF));
    let mut buf = BytesMut::new();
    event.encode_to(CRLF, &mut buf);
    event.encode_to(CRLF, &mut buf);
    assert_eq!(
        &buf[..],
        b"id: 1\r\ndata: x\r\n\r\nid: 1\r\ndata: x\r\n\r\n"
    );
    assert_eq!(event.get_data(), Some("x"));
    assert_eq!(event.get_id(), Some("1"));
}

#[test]
fn spec_43_improved_an_event_uses_the_response_separator_unless_it_chose_one() {
    let plain = ServerSentEvent::new().data("x");
    assert_eq!(plain.encode(Separator::Lf), &b"data: x\n\n"[..]);
    let own = ServerSentEvent::new().data("x").separator(Separator::CrLf);
    assert_eq!(own.encode(Separator::Lf), &b"data: x\r\n\r\n"[..]);
    assert_eq!(own.get_separator(), Some(Separator::CrLf));
}

// --- B. JSON --------------------------------------------------------------------------------

#[test]
fn spec_30_json_is_compact() {
    let event = JsonServerSentEvent::new(&json!({"foo": "bar"})).unwrap();
    assert_eq!(event.encode(CRLF), &b"data: {\"foo\":\"bar\"}\r\n\r\n"[..]);
}

#[test]
fn spec_31_json_events_keep_the_field_order() {
    let data = json!({"foo": "bar"});
    let event = JsonServerSentEvent::new(&data).unwrap().event("baz");
    assert_eq!(
        event.encode(CRLF),
        &b"event: baz\r\ndata: {\"foo\":\"bar\"}\r\n\r\n"[..]
    );
    let event = event.id("xyz").retry(1);
    assert_eq!(
        event.encode(CRLF),
        &b"id: xyz\r\nevent: baz\r\ndata: {\"foo\":\"bar\"}\r\nretry: 1\r\n\r\n"[..]
    );
    let event = JsonServerSentEvent::new(&data)
        .unwrap()
        .comment("a comment");
    assert_eq!(
        event.encode(CRLF),
        &b": a comment\r\ndata: {\"foo\":\"bar\"}\r\n\r\n"[..]
    );
    let event = JsonServerSentEvent::empty().comment("a comment");
    assert_eq!(event.encode(CRLF), &b": a comment\r\n\r\n"[..]);
}

#[test]
fn spec_32_no_data_means_no_data_line_not_null() {
    assert_eq!(JsonServerSentEvent::empty().encode(CRLF), &b"\r\n"[..]);
}

#[test]
fn spec_33_non_ascii_is_raw_utf8_including_u2028() {
    let event = ServerSentEvent::json(&json!({"k": "é😀\u{2028}"})).unwrap();
    assert_eq!(
        event.encode(CRLF),
        "data: {\"k\":\"é😀\u{2028}\"}\r\n\r\n".as_bytes()
    );
}

#[test]
fn spec_34_json_data_is_one_line_with_lowercase_escapes() {
    let event = ServerSentEvent::json(&json!({"a": "x\ny"})).unwrap();
    assert_eq!(event.encode(CRLF), &b"data: {\"a\":\"x\\ny\"}\r\n\r\n"[..]);
    let event = ServerSentEvent::json("\x01\t").unwrap();
    assert_eq!(event.encode(CRLF), &b"data: \"\\u0001\\t\"\r\n\r\n"[..]);
}

#[test]
fn spec_35_non_finite_floats_are_rejected_anywhere_in_the_value() {
    #[derive(serde::Serialize)]
    struct Reading {
        name: &'static str,
        values: Vec<f32>,
        nested: Option<Box<Reading>>,
    }
    let message = "Out of range float values are not JSON compliant";
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let error = ServerSentEvent::json(&bad).unwrap_err();
        assert!(error.to_string().starts_with(message), "{error}");
        assert!(ServerSentEvent::json(&[1.0, bad]).is_err());
        assert!(ServerSentEvent::json(&std::collections::BTreeMap::from([("k", bad)])).is_err());
    }
    let deep = Reading {
        name: "outer",
        values: vec![1.0],
        nested: Some(Box::new(Reading {
            name: "inner",
            values: vec![f32::NAN],
            nested: None,
        })),
    };
    assert!(JsonServerSentEvent::new(&deep).is_err());
    let fine = Reading {
        name: "ok",
        values: vec![0.5, -2.0],
        nested: None,
    };
    assert_eq!(
        ServerSentEvent::json(&fine).unwrap().encode(CRLF),
        &b"data: {\"name\":\"ok\",\"values\":[0.5,-2.0],\"nested\":null}\r\n\r\n"[..]
    );
}

#[test]
fn spec_36_values_that_cannot_be_serialized_are_an_error() {
    let map = std::collections::HashMap::from([((1, 2), "tuple keys are not JSON")]);
    assert!(ServerSentEvent::json(&map).is_err());
}

#[test]
fn spec_37_string_escaping() {
    let event = ServerSentEvent::json("a/b\"c\\d<e>f&g'h").unwrap();
    assert_eq!(
        event.encode(CRLF),
        &b"data: \"a/b\\\"c\\\\d<e>f&g'h\"\r\n\r\n"[..]
    );
    assert_eq!(
        ServerSentEvent::json("abc").unwrap().encode(CRLF),
        &b"data: \"abc\"\r\n\r\n"[..]
    );
}

#[test]
fn spec_38_number_and_key_formatting() {
    assert_eq!(ServerSentEvent::json(&1.0).unwrap().get_data(), Some("1.0"));
    assert_eq!(ServerSentEvent::json(&0).unwrap().get_data(), Some("0"));
    // Exponents as Python writes them; json_floats.rs checks Python's own text for ~700 doubles.
    assert_eq!(
        ServerSentEvent::json(&1e20).unwrap().get_data(),
        Some("1e+20")
    );
    let map = std::collections::BTreeMap::from([(1, "a")]);
    assert_eq!(
        ServerSentEvent::json(&map).unwrap().get_data(),
        Some("{\"1\":\"a\"}")
    );
    assert_eq!(
        ServerSentEvent::json(&json!({})).unwrap().get_data(),
        Some("{}")
    );
}

#[test]
fn spec_39_json_events_honour_the_separator() {
    let event = JsonServerSentEvent::new(&json!({"a": 1})).unwrap();
    assert_eq!(event.encode(Separator::Lf), &b"data: {\"a\":1}\n\n"[..]);
    let fixed = event.separator(Separator::Lf);
    assert_eq!(fixed.encode(CRLF), &b"data: {\"a\":1}\n\n"[..]);
}

#[test]
#[allow(clippy::needless_borrows_for_generic_args)] // the borrowed impls are under test
fn json_wrapper_and_values_are_yieldable() {
    assert_eq!(
        yielded(Json(json!([1, "x"])), CRLF),
        &b"data: [1,\"x\"]\r\n\r\n"[..]
    );
    assert_eq!(
        yielded(json!({"a": null}), Separator::Lf),
        &b"data: {\"a\":null}\n\n"[..]
    );
    assert_eq!(yielded(&json!(true), Separator::Cr), &b"data: true\r\r"[..]);
    // A value that cannot be encoded writes nothing; the driver ends the response as an error.
    assert_eq!(yielded(Json(f64::NAN), CRLF), &b""[..]);
}

// --- C. What a stream may yield -------------------------------------------------------------

#[test]
fn spec_40_raw_bytes_pass_through_unchanged() {
    for sep in ALL_SEPARATORS {
        assert_eq!(
            yielded(Bytes::from_static(b"data: foo\r\n\r\n"), sep),
            &b"data: foo\r\n\r\n"[..]
        );
        assert_eq!(
            yielded(b"raw-no-framing".to_vec(), sep),
            &b"raw-no-framing"[..]
        );
        assert_eq!(yielded(&b"raw"[..], sep), &b"raw"[..]);
        assert_eq!(yielded(b"raw", sep), &b"raw"[..]);
        assert_eq!(yielded(BytesMut::from(&b"mut"[..]), sep), &b"mut"[..]);
    }
}

#[test]
fn spec_42_every_byte_buffer_type_is_raw() {
    assert_eq!(yielded(vec![0xffu8, 0x00], CRLF), &b"\xff\x00"[..]);
}

#[test]
fn spec_43_yielded_events_use_the_response_separator_unless_they_chose_one() {
    assert_eq!(
        yielded(ServerSentEvent::new().data("x"), Separator::Lf),
        &b"data: x\n\n"[..]
    );
    assert_eq!(
        yielded(
            ServerSentEvent::new().data("evt").separator(Separator::Lf),
            Separator::Cr
        ),
        &b"data: evt\n\n"[..]
    );
}

#[test]
#[allow(clippy::needless_borrows_for_generic_args)] // the borrowed impls are under test
fn spec_47_scalars_become_data_with_the_response_separator() {
    assert_eq!(yielded("foo", Separator::Lf), &b"data: foo\n\n"[..]);
    assert_eq!(
        yielded(String::from("foo"), Separator::Lf),
        &b"data: foo\n\n"[..]
    );
    assert_eq!(
        yielded(&String::from("foo"), Separator::Lf),
        &b"data: foo\n\n"[..]
    );
    assert_eq!(
        yielded(Cow::Borrowed("foo"), Separator::Lf),
        &b"data: foo\n\n"[..]
    );
    assert_eq!(
        yielded(Cow::<str>::Owned("foo".into()), Separator::Lf),
        &b"data: foo\n\n"[..]
    );
    assert_eq!(
        yielded(Box::<str>::from("foo"), Separator::Lf),
        &b"data: foo\n\n"[..]
    );
    assert_eq!(
        yielded(Arc::<str>::from("foo"), Separator::Lf),
        &b"data: foo\n\n"[..]
    );
    assert_eq!(yielded(1, Separator::Lf), &b"data: 1\n\n"[..]);
    assert_eq!(yielded(-7i8, Separator::Lf), &b"data: -7\n\n"[..]);
    assert_eq!(
        yielded(i128::MIN, Separator::Lf),
        format!("data: {}\n\n", i128::MIN).as_bytes()
    );
    assert_eq!(
        yielded(u128::MAX, Separator::Lf),
        format!("data: {}\n\n", u128::MAX).as_bytes()
    );
    assert_eq!(
        yielded(usize::MAX, Separator::Lf),
        format!("data: {}\n\n", usize::MAX).as_bytes()
    );
    assert_eq!(yielded(1.5, Separator::Lf), &b"data: 1.5\n\n"[..]);
    assert_eq!(
        yielded(0.1f32, Separator::Lf),
        &b"data: 0.10000000149011612\n\n"[..]
    );
    assert_eq!(yielded(true, Separator::Lf), &b"data: true\n\n"[..]);
    assert_eq!(yielded('c', Separator::Lf), &b"data: c\n\n"[..]);
    assert_eq!(yielded('\n', Separator::Lf), &b"data: \ndata: \n\n"[..]);
}

#[test]
fn spec_47_differs_none_sends_nothing() {
    assert_eq!(yielded(None::<&str>, CRLF), &b""[..]);
    assert_eq!(yielded(Some("x"), CRLF), &b"data: x\r\n\r\n"[..]);
    assert_eq!(yielded(Payload::nothing(), CRLF), &b""[..]);
}

#[test]
fn spec_48_strings_are_never_treated_as_raw_sse() {
    assert_eq!(
        yielded("data: x\n\n", Separator::Lf),
        &b"data: data: x\ndata: \ndata: \n\n"[..]
    );
}

#[test]
fn spec_49_end_to_end_items_with_a_cr_separator() {
    let sep = Separator::Cr;
    assert_eq!(yielded(1, CRLF), &b"data: 1\r\n\r\n"[..]);
    assert_eq!(
        yielded(ServerSentEvent::new().data(1).event("message"), sep),
        &b"event: message\rdata: 1\r\r"[..]
    );
    let full = ServerSentEvent::new()
        .data("d")
        .event("e")
        .id("1")
        .retry(10)
        .comment("c");
    assert_eq!(
        yielded(full, sep),
        &b": c\rid: 1\revent: e\rdata: d\rretry: 10\r\r"[..]
    );
}
