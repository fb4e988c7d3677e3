//! The value parsers of the options: each reads one value as written, recording a precise message
//! per mistake. `key` is the option's name and `example` its example from the option table, both
//! for messages.

use std::collections::HashMap;
use std::time::Duration;

use proc_macro2::{Group, Span};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprPath, Lit, LitStr, UnOp};

use crate::ctxt::Ctxt;
use crate::headers::{header_name_error, header_value_error, reserved_header_hint};
use crate::parse::parse_list;

/// Reads one option's value: `(cx, name, value, example)`, the name and the example for messages.
pub(crate) type Parser<T> = fn(&mut Ctxt, &str, &Expr, &str) -> Option<T>;

/// Durations longer than a day are certainly a mistake: milliseconds written as seconds, usually.
const MAX_SECONDS: u64 = 24 * 60 * 60;

/// A duration in seconds, ready to become `Duration::new(secs, nanos)`.
#[derive(Clone, Copy)]
pub(crate) struct Seconds {
    pub(crate) secs: u64,
    pub(crate) nanos: u32,
    pub(crate) span: Span,
}

impl Seconds {
    pub(crate) fn is_zero(&self) -> bool {
        self.secs == 0 && self.nanos == 0
    }
}

/// A line separator, by the `Separator` variant it names.
#[derive(Clone, Copy)]
pub(crate) enum Sep {
    CrLf,
    Cr,
    Lf,
}

/// What kind of expression `expr` is, for "expected X, found Y" messages.
fn describe(expr: &Expr) -> &'static str {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Str(_) => "a string literal",
            Lit::ByteStr(_) | Lit::CStr(_) => "a byte string literal",
            Lit::Byte(_) => "a byte literal",
            Lit::Char(_) => "a character literal",
            Lit::Int(_) => "an integer",
            Lit::Float(_) => "a float",
            Lit::Bool(_) => "a boolean",
            _ => "a literal",
        },
        Expr::Path(_) => "a path",
        Expr::Closure(_) => "a closure",
        Expr::Call(_) | Expr::MethodCall(_) => "a call",
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => "a negative number",
        _ => "an expression",
    }
}

/// A number literal, as written.
enum Number {
    Int(u128),
    Float(f64),
}

/// Reads a non-negative number literal. `what` describes the expected unit for messages.
fn number(cx: &mut Ctxt, key: &str, expr: &Expr, what: &str, example: &str) -> Option<Number> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => match int.base10_parse::<u128>() {
            Ok(value) => Some(Number::Int(value)),
            Err(_) => {
                cx.error_spanned_by(int, format!("`{key}` is too large"));
                None
            }
        },
        Expr::Lit(ExprLit {
            lit: Lit::Float(float),
            ..
        }) => match float.base10_parse::<f64>() {
            Ok(value) => Some(Number::Float(value)),
            Err(error) => {
                cx.error_spanned_by(float, error);
                None
            }
        },
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => {
            cx.error_spanned_by(
                expr,
                format!("`{key}` cannot be negative; it is {what}, e.g. `{example}`"),
            );
            None
        }
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) if text.value().trim().parse::<f64>().is_ok() => {
            cx.error_spanned_by(
                text,
                format!(
                    "`{key}` takes a number, not a string: write `{key} = {}` without quotes",
                    text.value().trim()
                ),
            );
            None
        }
        Expr::Path(path) if is_non_finite_constant(path) => {
            cx.error_spanned_by(
                expr,
                format!("`{key}` must be a finite number; it is {what}, e.g. `{example}`"),
            );
            None
        }
        other => {
            cx.error_spanned_by(
                other,
                format!(
                    "`{key}` takes a number literal ({what}), found {}; e.g. `{example}`",
                    describe(other)
                ),
            );
            None
        }
    }
}

fn is_non_finite_constant(path: &ExprPath) -> bool {
    path.path.segments.last().is_some_and(|last| {
        matches!(
            last.ident.to_string().as_str(),
            "INFINITY" | "NEG_INFINITY" | "NAN"
        )
    })
}

/// Seconds as an integer or float literal: `15`, `0.5`, `1e-3`.
pub(crate) fn seconds(cx: &mut Ctxt, key: &str, expr: &Expr, example: &str) -> Option<Seconds> {
    let span = expr.span();
    let duration = match number(cx, key, expr, "a number of seconds", example)? {
        Number::Int(secs) => {
            if secs > u128::from(MAX_SECONDS) {
                cx.error_spanned_by(expr, too_long(key, &secs.to_string()));
                return None;
            }
            Duration::from_secs(secs as u64)
        }
        Number::Float(secs) => {
            if !secs.is_finite() {
                cx.error_spanned_by(
                    expr,
                    format!(
                        "`{key}` must be a finite number of seconds, but this literal is too large \
                         to be represented; e.g. `{example}`"
                    ),
                );
                return None;
            }
            if secs > MAX_SECONDS as f64 {
                cx.error_spanned_by(expr, too_long(key, &secs.to_string()));
                return None;
            }
            let nanos = (secs * 1e9).round() as u128;
            if secs > 0.0 && nanos == 0 {
                cx.error_spanned_by(
                    expr,
                    format!("`{key}` is shorter than a nanosecond; use at least `1e-9`"),
                );
                return None;
            }
            duration_from_nanos(nanos)
        }
    };
    Some(Seconds {
        secs: duration.as_secs(),
        nanos: duration.subsec_nanos(),
        span,
    })
}

/// Seconds that cannot be zero, for a timeout: one of zero would end every stream at once.
pub(crate) fn timeout(cx: &mut Ctxt, key: &str, expr: &Expr, example: &str) -> Option<Seconds> {
    let timeout = seconds(cx, key, expr, example)?;
    if timeout.is_zero() {
        cx.error_spanned_by(
            expr,
            format!(
                "`{key} = 0` would end every stream before its first event; \
                 omit `{key}` to have no send timeout"
            ),
        );
        return None;
    }
    Some(timeout)
}

fn too_long(key: &str, value: &str) -> String {
    format!(
        "`{key} = {value}` is more than a day; the value is in seconds, not milliseconds \
         (write `0.5` for 500 ms)"
    )
}

/// A duration from a count of nanoseconds that may not fit a `u64`.
fn duration_from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits a u32.
    Duration::new(secs, (nanos % NANOS_PER_SEC) as u32)
}

/// A separator as a string literal: `"\r\n"`, `"\r"` or `"\n"`.
pub(crate) fn separator(
    cx: &mut Ctxt,
    _key: &str,
    expr: &Expr,
    _example: &str,
) -> Option<(Sep, Span)> {
    const EXPECTED: &str = r#"`sep` must be "\r\n", "\r" or "\n""#;
    let Expr::Lit(ExprLit {
        lit: Lit::Str(text),
        ..
    }) = expr
    else {
        cx.error_spanned_by(
            expr,
            format!("{EXPECTED} (a string literal), found {}", describe(expr)),
        );
        return None;
    };
    let sep = match text.value().as_str() {
        "\r\n" => Sep::CrLf,
        "\r" => Sep::Cr,
        "\n" => Sep::Lf,
        other => {
            let hint = match other.to_ascii_lowercase().as_str() {
                "crlf" | "\\r\\n" => r#"; write `sep = "\r\n"`"#,
                "cr" | "\\r" => r#"; write `sep = "\r"`"#,
                "lf" | "\\n" => r#"; write `sep = "\n"`"#,
                _ => "",
            };
            cx.error_spanned_by(
                text,
                format!("{EXPECTED}, got \"{}\"{hint}", other.escape_debug()),
            );
            return None;
        }
    };
    Some((sep, text.span()))
}

/// `true` or `false`.
pub(crate) fn boolean(
    cx: &mut Ctxt,
    key: &str,
    expr: &Expr,
    example: &str,
) -> Option<syn::LitBool> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(value),
            ..
        }) => Some(value.clone()),
        other => {
            cx.error_spanned_by(
                other,
                format!(
                    "`{key}` takes `true` or `false`, found {}; e.g. `{example}`",
                    describe(other)
                ),
            );
            None
        }
    }
}

/// A number that must be an integer: `what` names it for a value that is no number at all,
/// `integer` for a value with a fraction.
fn integer(
    cx: &mut Ctxt,
    key: &str,
    expr: &Expr,
    what: &str,
    integer: &str,
    example: &str,
) -> Option<u128> {
    match number(cx, key, expr, what, example)? {
        Number::Int(value) => Some(value),
        Number::Float(_) => {
            cx.error_spanned_by(expr, format!("`{key}` is {integer}, e.g. `{example}`"));
            None
        }
    }
}

/// An HTTP status code within 100..=999.
pub(crate) fn status(cx: &mut Ctxt, key: &str, expr: &Expr, example: &str) -> Option<(u16, Span)> {
    let value = integer(
        cx,
        key,
        expr,
        "an HTTP status code",
        "an integer HTTP status code",
        example,
    )?;
    match u16::try_from(value) {
        Ok(code @ 100..=999) => Some((code, expr.span())),
        _ => {
            cx.error_spanned_by(
                expr,
                format!(
                    "`{key} = {value}` is not an HTTP status code; it must be within 100..=999"
                ),
            );
            None
        }
    }
}

/// The reconnection time in whole milliseconds.
pub(crate) fn retry(cx: &mut Ctxt, key: &str, expr: &Expr, example: &str) -> Option<(u64, Span)> {
    let value = integer(
        cx,
        key,
        expr,
        "a number of milliseconds",
        "a whole number of milliseconds",
        example,
    )?;
    match u64::try_from(value) {
        Ok(millis) => Some((millis, expr.span())),
        Err(_) => {
            cx.error_spanned_by(
                expr,
                format!("`{key}` is too large for a number of milliseconds"),
            );
            None
        }
    }
}

fn string_literal<'a>(
    cx: &mut Ctxt,
    key: &str,
    expr: &'a Expr,
    example: &str,
) -> Option<&'a LitStr> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => Some(text),
        other => {
            cx.error_spanned_by(
                other,
                format!(
                    "`{key}` takes a string literal, found {}; e.g. `{example}`",
                    describe(other)
                ),
            );
            None
        }
    }
}

/// A string literal that is a valid header value.
pub(crate) fn header_value(cx: &mut Ctxt, key: &str, expr: &Expr, example: &str) -> Option<LitStr> {
    let text = string_literal(cx, key, expr, example)?;
    if let Some(problem) = header_value_error(&text.value()) {
        cx.error_spanned_by(text, format!("invalid `{key}` header value: {problem}"));
        return None;
    }
    Some(text.clone())
}

/// A string literal of the form `type/subtype`, parameters allowed.
pub(crate) fn media_type(cx: &mut Ctxt, key: &str, expr: &Expr, example: &str) -> Option<LitStr> {
    let text = string_literal(cx, key, expr, example)?;
    let value = text.value();
    if let Some(problem) = header_value_error(&value) {
        cx.error_spanned_by(text, format!("invalid `{key}`: {problem}"));
        return None;
    }
    let essence = value.split(';').next().unwrap_or_default().trim();
    let well_formed = essence
        .split_once('/')
        .is_some_and(|(kind, subtype)| !kind.is_empty() && !subtype.is_empty());
    if !well_formed {
        cx.error_spanned_by(
            text,
            format!(
                "`{key} = \"{}\"` is not a media type; write `type/subtype`, e.g. `{example}`",
                value.escape_debug()
            ),
        );
        return None;
    }
    Some(text.clone())
}

/// The path of a fn, such as a hook.
pub(crate) fn hook_path(cx: &mut Ctxt, key: &str, expr: &Expr, example: &str) -> Option<ExprPath> {
    let message = match expr {
        Expr::Path(path) => return Some(path.clone()),
        Expr::Closure(_) => format!(
            "`{key}` takes the path of a fn, not a closure: move the closure's body into a fn \
             and name it, e.g. `{example}`"
        ),
        Expr::Call(call) if matches!(*call.func, Expr::Path(_)) => format!(
            "`{key}` takes the path of a fn, not a call: write `{key} = {}` without the parentheses",
            call.func.to_token_stream().to_string().replace(' ', "")
        ),
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => format!(
            "`{key}` takes the path of a fn, not a string: write `{key} = {}` without quotes",
            text.value()
        ),
        other => format!(
            "`{key}` takes the path of a fn, found {}; e.g. `{example}`",
            describe(other)
        ),
    };
    cx.error_spanned_by(expr, message);
    None
}

/// A path as a string literal: `"my_crate::sse"`.
pub(crate) fn crate_path(
    cx: &mut Ctxt,
    key: &str,
    expr: &Expr,
    example: &str,
) -> Option<syn::Path> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => match text.parse::<syn::Path>() {
            Ok(path) => Some(path),
            Err(_) => {
                cx.error_spanned_by(
                    text,
                    format!(
                        "`{key} = \"{}\"` is not a path; name the crate or module that re-exports `sse_runtime`, e.g. `{example}`",
                        text.value().escape_debug()
                    ),
                );
                None
            }
        },
        Expr::Path(path) => {
            cx.error_spanned_by(
                expr,
                format!(
                    "`{key}` takes the path as a string literal: write `{key} = \"{}\"`",
                    path.to_token_stream().to_string().replace(' ', "")
                ),
            );
            None
        }
        other => {
            cx.error_spanned_by(
                other,
                format!(
                    "`{key}` takes a string literal, found {}; e.g. `{example}`",
                    describe(other)
                ),
            );
            None
        }
    }
}

/// The `"name" = "value"` pairs of `headers(..)`, each checked; the valid ones are kept.
pub(crate) fn headers(cx: &mut Ctxt, group: &Group) -> Vec<(LitStr, LitStr)> {
    const EXAMPLE: &str = r#"headers("x-custom" = "value", "x-other" = "value")"#;
    let items = match parse_list(group) {
        Ok(items) => items,
        Err(error) => {
            cx.syn_error(error);
            return Vec::new();
        }
    };
    let mut headers = Vec::new();
    let mut seen: HashMap<String, LitStr> = HashMap::new();
    for item in items {
        let Expr::Assign(assign) = &item else {
            cx.error_spanned_by(
                &item,
                format!("expected `\"header-name\" = \"value\"`, e.g. `{EXAMPLE}`"),
            );
            continue;
        };
        let name = match &*assign.left {
            Expr::Lit(ExprLit {
                lit: Lit::Str(name),
                ..
            }) => Some(name),
            other => {
                cx.error_spanned_by(
                    other,
                    format!(
                        "header names are string literals: write `\"{}\" = ...`",
                        other.to_token_stream().to_string().replace(' ', "")
                    ),
                );
                None
            }
        };
        let value = match &*assign.right {
            Expr::Lit(ExprLit {
                lit: Lit::Str(value),
                ..
            }) => Some(value),
            Expr::Lit(ExprLit { lit, .. }) if !matches!(lit, Lit::Str(_)) => {
                cx.error_spanned_by(
                    lit,
                    format!(
                        "header values are string literals: write `= \"{}\"`",
                        lit.to_token_stream()
                    ),
                );
                None
            }
            other => {
                cx.error_spanned_by(
                    other,
                    format!(
                        "header values are string literals, found {}; e.g. `{EXAMPLE}`",
                        describe(other)
                    ),
                );
                None
            }
        };
        let name_ok = name.is_some_and(|name| check_header_name(cx, name, &seen));
        let value_ok = value.is_some_and(|value| match header_value_error(&value.value()) {
            Some(problem) => {
                cx.error_spanned_by(value, format!("invalid header value: {problem}"));
                false
            }
            None => true,
        });
        if let (Some(name), Some(value), true, true) = (name, value, name_ok, value_ok) {
            seen.insert(name.value().to_ascii_lowercase(), name.clone());
            headers.push((name.clone(), value.clone()));
        }
    }
    headers
}

fn check_header_name(cx: &mut Ctxt, name: &LitStr, seen: &HashMap<String, LitStr>) -> bool {
    let text = name.value();
    if let Some(problem) = header_name_error(&text) {
        cx.error_spanned_by(name, format!("invalid header name: {problem}"));
        return false;
    }
    let lowercase = text.to_ascii_lowercase();
    if let Some(hint) = reserved_header_hint(&lowercase) {
        cx.error_spanned_by(name, hint);
        return false;
    }
    if seen.contains_key(&lowercase) {
        cx.error_spanned_by(
            name,
            format!("header `{lowercase}` is given twice; keep one (header names ignore case)"),
        );
        return false;
    }
    true
}
