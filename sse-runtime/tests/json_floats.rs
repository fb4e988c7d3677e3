//! SPEC 38: JSON floats are written as Python's `json.dumps` writes them.
//!
//! `data/python_floats.txt` holds Python's own text for 701 doubles (its generator,
//! `data/python_floats.py`, says how to regenerate it).

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};
use sse_runtime::{IntoEvent, Json, JsonServerSentEvent, Separator, ServerSentEvent};

/// The table's `(value, Python's text)` pairs.
fn python_table() -> Vec<(f64, &'static str)> {
    include_str!("data/python_floats.txt")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (bits, text) = line.split_once(' ').expect("`<bits> <json>`");
            let bits = u64::from_str_radix(bits, 16).expect("16 hex digits");
            (f64::from_bits(bits), text)
        })
        .collect()
}

/// A map with one float key, which JSON writes as a string (Python: `{1e-05: 0}`).
struct FloatKey(f64);

impl Serialize for FloatKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(&self.0, &0)?;
        map.end()
    }
}

fn data(event: &ServerSentEvent) -> &str {
    event.get_data().expect("a data field")
}

/// `value`'s JSON as `ServerSentEvent::json` writes it.
fn json_text<T: Serialize + ?Sized>(value: &T) -> String {
    data(&ServerSentEvent::json(value).expect("finite floats only")).to_owned()
}

fn yielded(value: impl IntoEvent) -> String {
    String::from_utf8(value.into_event().encode(Separator::Lf).to_vec()).unwrap()
}

/// Every way a float reaches JSON event data: `(path, our text, Python's text)`.
fn written(x: f64, text: &str) -> [(&'static str, String, String); 7] {
    [
        (
            "ServerSentEvent::json(&f64)",
            json_text(&x),
            text.to_owned(),
        ),
        ("[f64]", json_text(&[x]), format!("[{text}]")),
        (
            "serde_json::Value",
            json_text(&Value::from(x)),
            text.to_owned(),
        ),
        (
            "JsonServerSentEvent of json!({\"k\": f64})",
            data(&JsonServerSentEvent::new(&json!({ "k": x })).unwrap()).to_owned(),
            format!("{{\"k\":{text}}}"),
        ),
        (
            "a float map key",
            json_text(&FloatKey(x)),
            format!("{{\"{text}\":0}}"),
        ),
        (
            "yielded Json(f64)",
            yielded(Json(x)),
            format!("data: {text}\n\n"),
        ),
        (
            "yielded serde_json::Value",
            yielded(Value::from(x)),
            format!("data: {text}\n\n"),
        ),
    ]
}

#[test]
fn spec_38_floats_are_written_as_python_json_dumps_writes_them() {
    let table = python_table();
    // A truncated table must not pass quietly.
    assert!(table.len() >= 700, "{} values", table.len());
    let mut wrong = Vec::new();
    for &(x, text) in &table {
        for (path, got, expected) in written(x, text) {
            if got != expected {
                wrong.push(format!(
                    "{x:e} ({:016x}) through {path}: {got:?}, Python {expected:?}",
                    x.to_bits()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn spec_38_the_table_covers_both_layouts_and_their_boundaries() {
    let table = python_table();
    let text_of = |x: f64| {
        table
            .iter()
            .find(|(value, _)| value.to_bits() == x.to_bits())
            .map(|(_, text)| *text)
    };
    for (x, text) in [
        (1e-4, "0.0001"),
        (1e-5, "1e-05"),
        (1e-7, "1e-07"),
        (2.5e-8, "2.5e-08"),
        (1e15, "1000000000000000.0"),
        (9999999999999998.0, "9999999999999998.0"),
        (1e16, "1e+16"),
        (1e20, "1e+20"),
        (5e-324, "5e-324"),
        (2.2250738585072014e-308, "2.2250738585072014e-308"),
        (-0.0, "-0.0"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (-1.7976931348623157e308, "-1.7976931348623157e+308"),
    ] {
        assert_eq!(text_of(x), Some(text), "{x:e}");
    }
}

#[test]
fn spec_38_integers_are_unchanged() {
    let event = ServerSentEvent::json(&json!([
        0,
        -1,
        u64::MAX,
        i64::MIN,
        10_000_000_000_000_000_u64
    ]));
    assert_eq!(
        data(&event.unwrap()),
        "[0,-1,18446744073709551615,-9223372036854775808,10000000000000000]"
    );
}

#[test]
fn spec_38_f32_has_its_own_shortest_digits_in_python_layout() {
    // Python has no f32: ours keeps the digits that read back as the same f32, as numpy's repr of
    // a float32 does, and lays them out by Python's rule. Widened to f64, 0.1 would be
    // 0.10000000149011612.
    for (x, text) in [
        (0.1_f32, "0.1"),
        (-2.5, "-2.5"),
        (1.0, "1.0"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1e-4, "0.0001"),
        (1e-5, "1e-05"),
        (1.5e-7, "1.5e-07"),
        (16777216.0, "16777216.0"),
        (1e13, "10000000000000.0"),
        (1e15, "1000000000000000.0"),
        (1e16, "1e+16"),
        (f32::MAX, "3.4028235e+38"),
        (f32::MIN_POSITIVE, "1.1754944e-38"),
        (f32::from_bits(1), "1e-45"),
    ] {
        assert_eq!(data(&ServerSentEvent::json(&x).unwrap()), text, "{x:e}");
        assert_eq!(
            data(&ServerSentEvent::json(&[x]).unwrap()),
            format!("[{text}]")
        );
    }
}
