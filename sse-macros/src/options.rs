//! The attribute's options: what each accepts, checked with a precise message per mistake.

use std::collections::HashMap;
use std::time::Duration;

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprPath, Ident, Lit, LitStr, UnOp};

use crate::ctxt::Ctxt;
use crate::headers::{header_name_error, header_value_error, reserved_header_hint};
use crate::parse::{Args, RawOption, RawValue, parse_list};
use crate::suggest::closest;

/// How an option is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `name = value`.
    Value,
    /// `name(...)`.
    List,
}

/// Every option, how it is written, and an example used in hints.
const OPTIONS: &[(&str, Form, &str)] = &[
    ("ping", Form::Value, "ping = 15"),
    ("ping_message", Form::Value, "ping_message = my_ping"),
    ("send_timeout", Form::Value, "send_timeout = 5"),
    ("sep", Form::Value, r#"sep = "\n""#),
    ("status", Form::Value, "status = 200"),
    ("headers", Form::List, r#"headers("x-custom" = "value")"#),
    (
        "cache_control",
        Form::Value,
        r#"cache_control = "no-cache""#,
    ),
    (
        "media_type",
        Form::Value,
        r#"media_type = "text/event-stream""#,
    ),
    ("retry", Form::Value, "retry = 3000"),
    (
        "on_client_close",
        Form::Value,
        "on_client_close = client_left",
    ),
    ("on_close", Form::Value, "on_close = log_close"),
    ("background", Form::Value, "background = cleanup"),
    ("shutdown_grace", Form::Value, "shutdown_grace = 5"),
    (
        "drain_on_shutdown",
        Form::Value,
        "drain_on_shutdown = false",
    ),
    ("on_error", Form::Value, "on_error = error_event"),
    ("crate", Form::Value, r#"crate = "my_crate::sse""#),
];

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

/// The validated options. `None` means the option was not given (or was invalid, in which
/// case an error was recorded and nothing is expanded).
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) krate: Option<syn::Path>,
    pub(crate) ping: Option<Seconds>,
    pub(crate) ping_message: Option<ExprPath>,
    pub(crate) send_timeout: Option<Seconds>,
    pub(crate) sep: Option<(Sep, Span)>,
    pub(crate) status: Option<(u16, Span)>,
    pub(crate) headers: Vec<(LitStr, LitStr)>,
    pub(crate) cache_control: Option<LitStr>,
    pub(crate) media_type: Option<LitStr>,
    pub(crate) retry: Option<(u64, Span)>,
    pub(crate) on_client_close: Option<ExprPath>,
    pub(crate) on_close: Option<ExprPath>,
    pub(crate) background: Option<ExprPath>,
    pub(crate) shutdown_grace: Option<Seconds>,
    pub(crate) drain_on_shutdown: Option<syn::LitBool>,
    pub(crate) on_error: Option<ExprPath>,
    /// The key of every option given, for errors that involve two options.
    pub(crate) keys: HashMap<String, Ident>,
}

/// Checks every option, recording each mistake in `cx`.
pub(crate) fn validate_options(cx: &mut Ctxt, args: Args) -> Options {
    let mut options = Options::default();
    for RawOption { key, value } in args.options {
        let name = key.to_string();
        let Some(&(_, form, example)) = OPTIONS.iter().find(|(known, ..)| *known == name) else {
            unknown_option(cx, &key);
            continue;
        };
        if options.keys.contains_key(&name) {
            cx.error_spanned_by(&key, format!("`{name}` is given twice; keep one of them"));
            continue;
        }
        options.keys.insert(name.clone(), key.clone());
        match (form, value) {
            (Form::Value, RawValue::Expr(expr)) => value_option(cx, &mut options, &key, &expr),
            (Form::List, RawValue::List(group)) => match parse_list(&group) {
                Ok(items) => headers(cx, &mut options, items.into_iter()),
                Err(error) => cx.syn_error(error),
            },
            (Form::Value, RawValue::Absent) => {
                cx.error_spanned_by(&key, format!("`{name}` needs a value, e.g. `{example}`"))
            }
            (Form::Value, RawValue::List(group)) => cx.error_spanned_by(
                group,
                format!("`{name}` takes a value after `=`, e.g. `{example}`"),
            ),
            (Form::List, RawValue::Absent | RawValue::Expr(_)) => cx.error_spanned_by(
                &key,
                format!("`{name}` takes a parenthesized list, e.g. `{example}`"),
            ),
        }
    }
    cross_checks(cx, &options);
    options
}

fn unknown_option(cx: &mut Ctxt, key: &Ident) {
    let name = key.to_string();
    let names: Vec<&str> = OPTIONS.iter().map(|(name, ..)| *name).collect();
    let message = match closest(&name, &names) {
        Some(suggestion) => {
            format!("unknown option `{name}`; did you mean `{suggestion}`?")
        }
        None => format!(
            "unknown option `{name}`; the options are: {}",
            names.join(", ")
        ),
    };
    cx.error_spanned_by(key, message);
}

fn value_option(cx: &mut Ctxt, options: &mut Options, key: &Ident, expr: &Expr) {
    match key.to_string().as_str() {
        "ping" => options.ping = seconds(cx, "ping", expr),
        "send_timeout" => {
            let timeout = seconds(cx, "send_timeout", expr);
            if timeout.is_some_and(|timeout| timeout.is_zero()) {
                cx.error_spanned_by(
                    expr,
                    "`send_timeout = 0` would end every stream before its first event; \
                     omit `send_timeout` to have no send timeout",
                );
            } else {
                options.send_timeout = timeout;
            }
        }
        "shutdown_grace" => options.shutdown_grace = seconds(cx, "shutdown_grace", expr),
        "drain_on_shutdown" => options.drain_on_shutdown = boolean(cx, "drain_on_shutdown", expr),
        "sep" => options.sep = separator(cx, expr),
        "status" => options.status = status(cx, expr),
        "retry" => options.retry = retry(cx, expr),
        "cache_control" => {
            options.cache_control = header_value_option(cx, "cache_control", expr);
        }
        "media_type" => options.media_type = media_type(cx, expr),
        "ping_message" => options.ping_message = hook_path(cx, "ping_message", expr),
        "on_client_close" => options.on_client_close = hook_path(cx, "on_client_close", expr),
        "on_close" => options.on_close = hook_path(cx, "on_close", expr),
        "background" => options.background = hook_path(cx, "background", expr),
        "on_error" => options.on_error = hook_path(cx, "on_error", expr),
        "crate" => options.krate = crate_path(cx, expr),
        _ => {}
    }
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
fn seconds(cx: &mut Ctxt, key: &str, expr: &Expr) -> Option<Seconds> {
    let example = OPTIONS
        .iter()
        .find(|(name, ..)| *name == key)
        .map_or("", |(_, _, example)| example);
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

fn separator(cx: &mut Ctxt, expr: &Expr) -> Option<(Sep, Span)> {
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
fn boolean(cx: &mut Ctxt, key: &str, expr: &Expr) -> Option<syn::LitBool> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(value),
            ..
        }) => Some(value.clone()),
        other => {
            cx.error_spanned_by(
                other,
                format!(
                    "`{key}` takes `true` or `false`, found {}; e.g. `{key} = false`",
                    describe(other)
                ),
            );
            None
        }
    }
}

fn status(cx: &mut Ctxt, expr: &Expr) -> Option<(u16, Span)> {
    let value = match number(cx, "status", expr, "an HTTP status code", "status = 200")? {
        Number::Int(value) => value,
        Number::Float(_) => {
            cx.error_spanned_by(
                expr,
                "`status` is an integer HTTP status code, e.g. `status = 200`",
            );
            return None;
        }
    };
    match u16::try_from(value) {
        Ok(code @ 100..=999) => Some((code, expr.span())),
        _ => {
            cx.error_spanned_by(
                expr,
                format!(
                    "`status = {value}` is not an HTTP status code; it must be within 100..=999"
                ),
            );
            None
        }
    }
}

fn retry(cx: &mut Ctxt, expr: &Expr) -> Option<(u64, Span)> {
    let value = match number(
        cx,
        "retry",
        expr,
        "a number of milliseconds",
        "retry = 3000",
    )? {
        Number::Int(value) => value,
        Number::Float(_) => {
            cx.error_spanned_by(
                expr,
                "`retry` is a whole number of milliseconds, e.g. `retry = 3000`",
            );
            return None;
        }
    };
    match u64::try_from(value) {
        Ok(millis) => Some((millis, expr.span())),
        Err(_) => {
            cx.error_spanned_by(expr, "`retry` is too large for a number of milliseconds");
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

fn header_value_option(cx: &mut Ctxt, key: &str, expr: &Expr) -> Option<LitStr> {
    let text = string_literal(cx, key, expr, r#"cache_control = "no-cache""#)?;
    if let Some(problem) = header_value_error(&text.value()) {
        cx.error_spanned_by(text, format!("invalid `{key}` header value: {problem}"));
        return None;
    }
    Some(text.clone())
}

fn media_type(cx: &mut Ctxt, expr: &Expr) -> Option<LitStr> {
    let text = string_literal(
        cx,
        "media_type",
        expr,
        r#"media_type = "text/event-stream""#,
    )?;
    let value = text.value();
    if let Some(problem) = header_value_error(&value) {
        cx.error_spanned_by(text, format!("invalid `media_type`: {problem}"));
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
                "`media_type = \"{}\"` is not a media type; write `type/subtype`, e.g. `media_type = \"text/event-stream\"`",
                value.escape_debug()
            ),
        );
        return None;
    }
    Some(text.clone())
}

fn hook_path(cx: &mut Ctxt, key: &str, expr: &Expr) -> Option<ExprPath> {
    let example = OPTIONS
        .iter()
        .find(|(name, ..)| *name == key)
        .map_or("", |(_, _, example)| example);
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

fn crate_path(cx: &mut Ctxt, expr: &Expr) -> Option<syn::Path> {
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
                        "`crate = \"{}\"` is not a path; name the crate or module that re-exports `sse_runtime`, e.g. `crate = \"my_crate::sse\"`",
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
                    "`crate` takes the path as a string literal: write `crate = \"{}\"`",
                    path.to_token_stream().to_string().replace(' ', "")
                ),
            );
            None
        }
        other => {
            cx.error_spanned_by(
                other,
                format!(
                    "`crate` takes a string literal, found {}; e.g. `crate = \"my_crate::sse\"`",
                    describe(other)
                ),
            );
            None
        }
    }
}

fn headers(cx: &mut Ctxt, options: &mut Options, items: impl Iterator<Item = Expr>) {
    const EXAMPLE: &str = r#"headers("x-custom" = "value", "x-other" = "value")"#;
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
            options.headers.push((name.clone(), value.clone()));
        }
    }
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

/// Mistakes that involve two options.
fn cross_checks(cx: &mut Ctxt, options: &Options) {
    if let (Some(ping), Some(key)) = (options.ping, options.keys.get("ping_message"))
        && ping.is_zero()
    {
        cx.error_spanned_by(
            key,
            "`ping_message` has no effect with `ping = 0`, which sends no pings; \
             remove `ping_message` or give `ping` a period",
        );
    }
    for (header, option) in [
        ("cache-control", "cache_control"),
        ("content-type", "media_type"),
    ] {
        if options.keys.contains_key(option)
            && let Some((name, _)) = options
                .headers
                .iter()
                .find(|(name, _)| name.value().eq_ignore_ascii_case(header))
        {
            cx.error_spanned_by(
                name,
                format!("`{header}` is also set by `{option} = ...`; keep one of them"),
            );
        }
    }
}
