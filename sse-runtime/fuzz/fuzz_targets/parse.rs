//! The `testing` parser: any bytes give events or an error, never a panic, and every data
//! line it reads appeared in the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sse_runtime::testing::try_parse_events;

fuzz_target!(|bytes: &[u8]| {
    let Ok(events) = try_parse_events(bytes) else {
        assert!(std::str::from_utf8(bytes).is_err(), "only non-UTF-8 is refused");
        return;
    };
    let text = std::str::from_utf8(bytes).expect("parsed bytes are UTF-8");
    for event in events {
        for line in event.data.split('\n') {
            assert!(text.contains(line), "{line:?} not in {text:?}");
        }
    }
});
