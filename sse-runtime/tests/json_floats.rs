//! SPEC 38: JSON floats are written as Python's `json.dumps` writes them.
//!
//! `data/python_floats.txt` holds Python's own text for some 700 doubles (its generator,
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

// --- The rule, on random floats ---------------------------------------------------------------
//
// CPython's `float.__repr__` (`sys.float_repr_style == 'short'`) is
// `format_float_short(x, 'r', 0, Py_DTSF_ADD_DOT_0)`: the shortest digits that read back as `x`,
// and with `x = 0.DIGITS * 10**decpt`, exponent form iff `decpt <= -4 or decpt > 16`. In the
// usual `d.ddd * 10**exponent` terms (`exponent = decpt - 1`), exponent form iff
// `exponent < -4 or exponent >= 16`:
//
// - exponent form: one non-zero digit, then `.` and the rest if there is a rest (never a trailing
//   zero), `e`, always a sign, and at least two exponent digits (`1e-05`, `1.5e+16`, `5e-324`);
// - fixed form: no leading zeros but a lone `0` before the point, always a `.` and at least one
//   digit after it, and no trailing zero after the point except the `.0` of an integer value;
// - zero is `0.0` or `-0.0`.
//
// The shortest digits are checked against Rust's own `{:e}` (core's Grisu with Dragon4 fallback),
// an implementation independent of the runtime's ryu. The two differ on one point: when the value
// lies exactly halfway between two shortest candidates, Python (David Gay's dtoa) takes the one
// with the even last digit and Rust rounds up: `999999999914246.25` is `999999999914246.2` in
// Python, `9.999999999142463e14` in Rust. The table has such ties; here [`shortest`] applies
// Python's choice to Rust's digits.

use proptest::prelude::*;

/// `[-]d.ddd * 10^exponent`; zero is `0` with exponent 0.
#[derive(Debug, PartialEq)]
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i32,
}

/// Rust's shortest round-trip digits, from `format!("{x:e}")` (`1.5e-7`, `-0e0`).
fn rust_shortest(text: &str) -> Decimal {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = rest.split_once('e').expect("`{:e}` has an exponent");
    Decimal {
        negative,
        digits: mantissa.replace('.', ""),
        exponent: exponent.parse().unwrap(),
    }
}

/// Python's shortest digits of `x`, from Rust's: the same unless `x` is exactly halfway between
/// two candidates, where Python takes the even last digit and Rust the upper one.
fn shortest(x: f64, rust: &str) -> Decimal {
    let mut decimal = rust_shortest(rust);
    // All of `x`'s digits: a double has at most 767 significant ones.
    let exact = rust_shortest(&format!("{x:.800e}"));
    let exact = exact.digits.trim_end_matches('0');
    let last = decimal.digits.len() - 1;
    let below = decimal.digits.as_bytes()[last].wrapping_sub(1);
    let candidate_below = format!("{}{}", &decimal.digits[..last], below as char);
    if below.is_multiple_of(2) && exact == format!("{candidate_below}5") {
        decimal.digits = candidate_below;
    }
    decimal
}

fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Reads `text` as Python's repr lays a float out, failing on any departure from the rule above.
fn python_layout(text: &str) -> Result<Decimal, String> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if let Some((mantissa, exponent)) = rest.split_once('e') {
        let (first, fraction) = mantissa.split_at(1);
        if !matches!(first.as_bytes()[0], b'1'..=b'9') {
            return Err("the mantissa starts with a non-zero digit".into());
        }
        let fraction = match fraction.strip_prefix('.') {
            None if fraction.is_empty() => "",
            Some(digits) if all_digits(digits) && !digits.ends_with('0') => digits,
            _ => return Err("a mantissa's fraction is digits without a trailing zero".into()),
        };
        let (sign, magnitude) = exponent.split_at(1);
        if !matches!(sign, "+" | "-") {
            return Err("the exponent is signed".into());
        }
        if !all_digits(magnitude)
            || !(magnitude.len() == 2 || magnitude.len() == 3 && !magnitude.starts_with('0'))
        {
            return Err("the exponent has two digits, or three without a leading zero".into());
        }
        let exponent: i32 = exponent.parse().unwrap();
        if (-4..16).contains(&exponent) {
            return Err(format!(
                "exponent form for 10^{exponent}, within [1e-4, 1e16)"
            ));
        }
        return Ok(Decimal {
            negative,
            digits: format!("{first}{fraction}"),
            exponent,
        });
    }

    let (integer, fraction) = rest
        .split_once('.')
        .ok_or("fixed form always has a point")?;
    if !all_digits(integer) || integer.len() > 1 && integer.starts_with('0') {
        return Err("the integer part is digits without a leading zero".into());
    }
    if !all_digits(fraction) || fraction.len() > 1 && fraction.ends_with('0') {
        return Err("the fraction is digits without a trailing zero, or `0`".into());
    }
    let all = format!("{integer}{fraction}");
    let significant = all.trim_start_matches('0').trim_end_matches('0');
    if significant.is_empty() {
        return if rest == "0.0" {
            Ok(Decimal {
                negative,
                digits: "0".into(),
                exponent: 0,
            })
        } else {
            Err("zero is 0.0".into())
        };
    }
    let exponent = if integer == "0" {
        -1 - (fraction.len() - fraction.trim_start_matches('0').len()) as i32
    } else {
        integer.len() as i32 - 1
    };
    if !(-4..16).contains(&exponent) {
        return Err(format!(
            "fixed form for 10^{exponent}, outside [1e-4, 1e16)"
        ));
    }
    Ok(Decimal {
        negative,
        digits: significant.into(),
        exponent,
    })
}

/// Finite doubles: every magnitude (random bits), the decades around the layout's thresholds,
/// integers, and the doubles next to 1e-5, 1e-4, 1e15 and 1e16.
fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        (1.0..10.0_f64, -8..=20_i32, any::<bool>()).prop_map(|(mantissa, exponent, negative)| {
            let x = mantissa * 10_f64.powi(exponent);
            if negative { -x } else { x }
        }),
        any::<i64>().prop_map(|n| n as f64),
        (
            prop::sample::select(vec![1e-5_f64, 1e-4, 1e15, 1e16]),
            -1_000_000_i64..1_000_000
        )
            .prop_map(|(x, ulps)| f64::from_bits(x.to_bits().wrapping_add_signed(ulps))),
    ]
    .prop_filter("JSON has no NaN or infinity", |x| x.is_finite())
}

fn finite_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<u32>().prop_map(f32::from_bits),
        (1.0..10.0_f32, -8..=20_i32, any::<bool>()).prop_map(|(mantissa, exponent, negative)| {
            let x = mantissa * 10_f32.powi(exponent);
            if negative { -x } else { x }
        }),
    ]
    .prop_filter("JSON has no NaN or infinity", |x| x.is_finite())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn spec_38_f64_text_follows_pythons_repr_rule(x in finite_f64()) {
        let text = json_text(&x);
        let read_back: f64 = text.parse().unwrap();
        prop_assert_eq!(read_back.to_bits(), x.to_bits(), "{} does not read back", text);
        let layout = python_layout(&text).map_err(|rule| format!("{text}: {rule}"));
        prop_assert_eq!(layout, Ok(shortest(x, &format!("{x:e}"))), "{}", text);
    }

    #[test]
    fn spec_38_f32_text_is_its_shortest_digits_in_pythons_layout(x in finite_f32()) {
        let text = json_text(&x);
        let read_back: f32 = text.parse().unwrap();
        prop_assert_eq!(read_back.to_bits(), x.to_bits(), "{} does not read back", text);
        let layout = python_layout(&text).map_err(|rule| format!("{text}: {rule}"));
        prop_assert_eq!(layout, Ok(shortest(f64::from(x), &format!("{x:e}"))), "{}", text);
    }
}
