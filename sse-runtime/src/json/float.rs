//! Floats written as Python's `json` module writes them (SPEC 38).
//!
//! `json.dumps` writes a float with `float.__repr__`, which CPython builds with
//! `format_float_short(x, 'r', 0, Py_DTSF_ADD_DOT_0)` (`sys.float_repr_style == 'short'`): the
//! shortest digits that read back as the same double, laid out by one rule. With the value written
//! `0.DIGITS * 10**decpt`:
//!
//! - `decpt <= -4` or `decpt > 16` (below `1e-4`, or from `1e16` on): exponent form, the first
//!   digit, then `.` and the others if there are any, then `e`, a sign and at least two exponent
//!   digits: `1e-05`, `1.5e-07`, `1e+16`, `1.7976931348623157e+308`;
//! - otherwise fixed form, always with a fraction: `0.0001`, `1.0`, `9999999999999998.0`.
//!
//! Zero is `0.0` or `-0.0`. ryu (already in the build through axum) gives the shortest digits;
//! [`layout`] reads them back out of its text and lays them out the Python way.

use std::io;

use serde_json::ser::Formatter;

/// serde_json's compact formatter, with floats written as Python writes them.
///
/// An `f32` gets the shortest digits that read back as the same `f32` (what numpy's `repr` of a
/// `float32` shows), laid out by the same rule: `0.1_f32` is `0.1`, `1e-5_f32` is `1e-05`.
/// Python has no `f32`; widening to `f64` first would print digits nobody wrote
/// (`0.10000000149011612`).
pub(super) struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        let mut shortest = ryu::Buffer::new();
        writer.write_all(layout(shortest.format_finite(value)).as_bytes())
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let mut shortest = ryu::Buffer::new();
        writer.write_all(layout(shortest.format_finite(value)).as_bytes())
    }
}

/// The longest text: `-`, 17 digits, `.` and `e-308` (24 bytes), or `-0.000` and 17 digits (23).
const MAX_LEN: usize = 24;

/// Python's text for the number ryu wrote as `shortest`.
///
/// ryu writes `[-]DIGITS[.DIGITS][e[-]EXP]` (`1e-7`, `0.00001`, `1.5e16`, `100.0`). Its digits,
/// without leading and trailing zeros, are the shortest round-trip digits Python uses too.
fn layout(shortest: &str) -> Text {
    let (negative, rest) = match shortest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, shortest),
    };
    let (mantissa, exponent) = rest.split_once('e').unwrap_or((rest, "0"));

    // The value is 0.DIGITS * 10^decpt.
    let mut decpt = parse_exponent(exponent);
    let mut digits = [0; MAX_LEN];
    let mut len = 0; // digits kept, up to the last non-zero one
    let mut kept = 0; // digits kept, trailing zeros included
    let mut before_point = true;
    for &byte in mantissa.as_bytes() {
        match byte {
            b'.' => before_point = false,
            // A leading zero: after the point it moves the point.
            b'0' if kept == 0 => decpt -= i32::from(!before_point),
            _ => {
                decpt += i32::from(before_point);
                digits[kept] = byte;
                kept += 1;
                if byte != b'0' {
                    len = kept;
                }
            }
        }
    }
    let digits = &digits[..len];

    let mut text = Text::default();
    if negative {
        text.push(b"-");
    }
    if digits.is_empty() {
        text.push(b"0.0");
    } else if decpt <= -4 || decpt > 16 {
        text.push(&digits[..1]);
        if digits.len() > 1 {
            text.push(b".");
            text.push(&digits[1..]);
        }
        let exponent = decpt - 1;
        text.push(if exponent < 0 { b"e-" } else { b"e+" });
        let exponent = exponent.unsigned_abs();
        if exponent >= 100 {
            text.push_digit(exponent / 100);
        }
        text.push_digit(exponent / 10 % 10);
        text.push_digit(exponent % 10);
    } else if decpt <= 0 {
        text.push(b"0.");
        for _ in decpt..0 {
            text.push(b"0");
        }
        text.push(digits);
    } else {
        let point = decpt.unsigned_abs() as usize;
        if point >= digits.len() {
            text.push(digits);
            for _ in digits.len()..point {
                text.push(b"0");
            }
            text.push(b".0");
        } else {
            text.push(&digits[..point]);
            text.push(b".");
            text.push(&digits[point..]);
        }
    }
    text
}

/// ryu's exponent: an optional `-` and at most three digits.
fn parse_exponent(text: &str) -> i32 {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    let magnitude = digits
        .bytes()
        .fold(0, |n, digit| n * 10 + i32::from(digit - b'0'));
    if negative { -magnitude } else { magnitude }
}

/// A number's text in a stack buffer.
#[derive(Default)]
struct Text {
    bytes: [u8; MAX_LEN],
    len: usize,
}

impl Text {
    fn push(&mut self, bytes: &[u8]) {
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn push_digit(&mut self, digit: u32) {
        // `digit` < 10.
        self.push(&[b'0' + digit as u8]);
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::layout;

    fn python(shortest: &str) -> String {
        String::from_utf8(layout(shortest).as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn spec_38_every_shape_of_ryu_text_is_laid_out_the_python_way() {
        for (ryu, python_text) in [
            ("0.0", "0.0"),
            ("-0.0", "-0.0"),
            ("1.0", "1.0"),
            ("100.0", "100.0"),
            ("123.45", "123.45"),
            ("0.0001", "0.0001"),
            ("0.00001", "1e-05"),
            ("-0.000012", "-1.2e-05"),
            ("1e-7", "1e-07"),
            ("2.5e-8", "2.5e-08"),
            ("1e-10", "1e-10"),
            ("5e-324", "5e-324"),
            ("1000000000000000.0", "1000000000000000.0"),
            ("9999999999999998.0", "9999999999999998.0"),
            ("1e16", "1e+16"),
            ("1.5e16", "1.5e+16"),
            ("1e100", "1e+100"),
            ("-1.7976931348623157e308", "-1.7976931348623157e+308"),
            // ryu's f32 text goes to exponent form from 1e13, Python's from 1e16.
            ("1e13", "10000000000000.0"),
            ("1.2345e15", "1234500000000000.0"),
            ("3.4028235e38", "3.4028235e+38"),
        ] {
            assert_eq!(python(ryu), python_text, "ryu's {ryu}");
        }
    }

    #[test]
    fn the_longest_texts_fit_the_buffer() {
        assert_eq!(
            python("-1.2345678901234567e-308"),
            "-1.2345678901234567e-308"
        );
        assert_eq!(python("-0.00012345678901234567"), "-0.00012345678901234567");
    }
}
