//! Event encoding, read back by an independent parser (the WHATWG algorithm, written here from
//! the specification): every field must round-trip, or the documented sanitisation apply (CR
//! and LF deleted from `id` and `event`; data lines split on CRLF, CR and LF).

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sse_runtime::{Separator, ServerSentEvent};

#[derive(Arbitrary, Debug)]
struct Fields {
    comment: Option<String>,
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    retry: Option<u64>,
    /// The event's own separator, if any.
    own: Option<u8>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    separator: u8,
    events: Vec<Fields>,
}

fn separator(byte: u8) -> Separator {
    match byte % 3 {
        0 => Separator::CrLf,
        1 => Separator::Cr,
        _ => Separator::Lf,
    }
}

/// An event as a browser dispatches it.
#[derive(Debug, PartialEq)]
struct Dispatched {
    kind: String,
    data: String,
    last_id: String,
}

/// What a browser makes of a stream: the events it dispatches, its reconnection time and its
/// last event id.
#[derive(Debug, Default, PartialEq)]
struct Browser {
    events: Vec<Dispatched>,
    retry: Option<u64>,
    last_id: String,
}

/// The WHATWG "interpret an event stream" algorithm, over a complete stream.
fn interpret(stream: &str) -> Browser {
    let mut browser = Browser::default();
    let (mut data, mut kind) = (String::new(), String::new());
    let mut rest = stream;
    while let Some(end) = rest.find(['\r', '\n']) {
        let line = &rest[..end];
        let crlf = rest[end..].starts_with("\r\n");
        rest = &rest[end + if crlf { 2 } else { 1 }..];
        if line.is_empty() {
            if !data.is_empty() {
                data.pop();
                browser.events.push(Dispatched {
                    kind: if kind.is_empty() { "message".into() } else { kind.clone() },
                    data: std::mem::take(&mut data),
                    last_id: browser.last_id.clone(),
                });
            }
            data.clear();
            kind.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => kind = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => browser.last_id = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                browser.retry = value.parse().ok();
            }
            _ => {}
        }
    }
    browser
}

fn strip(text: &str) -> String {
    text.replace(['\r', '\n'], "")
}

/// What the fields should become.
fn expected(events: &[Fields]) -> Browser {
    let mut browser = Browser::default();
    for fields in events {
        if let Some(id) = &fields.id {
            let id = strip(id);
            if !id.contains('\0') {
                browser.last_id = id;
            }
        }
        if let Some(retry) = fields.retry {
            browser.retry = Some(retry);
        }
        if let Some(data) = &fields.data {
            let kind = fields.event.as_deref().map(strip).unwrap_or_default();
            let lines: Vec<&str> = data.split("\r\n").flat_map(|l| l.split(['\r', '\n'])).collect();
            browser.events.push(Dispatched {
                kind: if kind.is_empty() { "message".into() } else { kind },
                data: lines.join("\n"),
                last_id: browser.last_id.clone(),
            });
        }
    }
    browser
}

fuzz_target!(|input: Input| {
    let separator = separator(input.separator);
    let mut stream = Vec::new();
    for fields in &input.events {
        let mut event = ServerSentEvent::new();
        if let Some(comment) = &fields.comment {
            event = event.comment(comment);
        }
        if let Some(id) = &fields.id {
            event = event.id(id);
        }
        if let Some(kind) = &fields.event {
            event = event.event(kind);
        }
        if let Some(data) = &fields.data {
            event = event.data(data);
        }
        if let Some(retry) = fields.retry {
            event = event.retry(retry);
        }
        if let Some(own) = fields.own {
            event = event.separator(self::separator(own));
        }
        stream.extend_from_slice(&event.encode(separator));
    }
    let stream = String::from_utf8(stream).expect("events encode to UTF-8");
    assert_eq!(interpret(&stream), expected(&input.events), "{stream:?}");
});
