//! The `Last-Event-ID` parser: any bytes, never a panic; a cursor it accepts prints back to a
//! value it reads the same, within the bound, without CR or LF.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_runtime::LastEventId;
use sse_runtime::resume::{EventId, MAX_LAST_EVENT_ID_LEN};

fuzz_target!(|value: &[u8]| {
    let parsed = LastEventId::parse(value);
    match parsed {
        LastEventId::After(id) => {
            assert!(value.len() <= MAX_LAST_EVENT_ID_LEN);
            assert!(!value.contains(&b'\r') && !value.contains(&b'\n'));
            let text = id.to_string();
            assert_eq!(LastEventId::parse(text.as_bytes()), parsed);
            assert_eq!(text.parse::<EventId>(), Ok(id));
        }
        LastEventId::Earliest => assert_eq!(value, b"earliest"),
        LastEventId::Invalid => {}
        LastEventId::None => panic!("a value is never no cursor"),
    }
    if let Ok(text) = std::str::from_utf8(value) {
        assert_eq!(text.parse::<EventId>().is_ok(), matches!(parsed, LastEventId::After(_)));
    }
});
