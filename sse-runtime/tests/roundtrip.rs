//! Property: for arbitrary field strings, a spec-conformant parser (eventsource-stream, which
//! follows the WHATWG algorithm) reads back exactly the fields that were encoded, after the
//! documented CR/LF deletion in `id` and `event` (SPEC 20-21) and the line splitting of data
//! (SPEC 13), whatever the separator.

use std::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;
use sse_runtime::testing::parse_events;
use sse_runtime::{Separator, ServerSentEvent};

#[derive(Debug, Clone)]
struct Fields {
    comment: Option<String>,
    id: Option<String>,
    event: Option<String>,
    data: String,
    retry: Option<u64>,
}

/// Text that favours the characters that matter: CR, LF, colons, spaces, NUL, non-ASCII.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => Just('\r'),
            4 => Just('\n'),
            2 => Just(':'),
            2 => Just(' '),
            1 => Just('\u{2028}'),
            1 => Just('\u{feff}'),
            8 => any::<char>(),
            8 => prop::char::range('a', 'z'),
        ],
        0..24,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        prop::option::of(text()),
        // An id containing NUL is ignored by clients (SPEC 27), so ids here have none.
        prop::option::of(text().prop_map(|t| t.replace('\0', ""))),
        prop::option::of(text()),
        text(),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(comment, id, event, data, retry)| Fields {
            comment,
            id,
            event,
            data,
            retry,
        })
}

fn separator() -> impl Strategy<Value = Separator> {
    prop_oneof![
        Just(Separator::CrLf),
        Just(Separator::Cr),
        Just(Separator::Lf)
    ]
}

fn build(fields: &Fields) -> ServerSentEvent {
    let mut event = ServerSentEvent::new().data(&fields.data);
    if let Some(comment) = &fields.comment {
        event = event.comment(comment);
    }
    if let Some(id) = &fields.id {
        event = event.id(id);
    }
    if let Some(name) = &fields.event {
        event = event.event(name);
    }
    if let Some(retry) = fields.retry {
        event = event.retry(retry);
    }
    event
}

fn without_cr_lf(text: &str) -> String {
    text.replace(['\r', '\n'], "")
}

/// What a client sees as data: the lines joined with LF.
fn normalized_data(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn a_conformant_parser_reads_back_every_field(
        events in prop::collection::vec(fields(), 1..5),
        sep in separator(),
    ) {
        let mut wire = BytesMut::new();
        for fields in &events {
            build(fields).encode_to(sep, &mut wire);
        }
        let parsed = parse_events(&wire);
        prop_assert_eq!(parsed.len(), events.len(), "wire: {:?}", wire);

        let mut last_id = String::new();
        for (fields, got) in events.iter().zip(&parsed) {
            prop_assert_eq!(&got.data, &normalized_data(&fields.data));
            let expected_type = fields
                .event
                .as_deref()
                .map(without_cr_lf)
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| "message".to_owned());
            prop_assert_eq!(&got.event, &expected_type);
            if let Some(id) = &fields.id {
                last_id = without_cr_lf(id);
            }
            // The last event id persists across events, as in a browser.
            prop_assert_eq!(&got.id, &last_id);
            prop_assert_eq!(got.retry, fields.retry.map(Duration::from_millis));
        }
    }
}
