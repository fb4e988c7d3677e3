//! The attribute's options: what each accepts, checked with a precise message per mistake.

use std::collections::HashMap;

use proc_macro2::Span;
use syn::{Expr, ExprPath, Ident, LitStr};

use crate::ctxt::Ctxt;
use crate::parse::{Args, RawOption, RawValue};
use crate::suggest::closest;
use crate::values::{self, Seconds, Sep};

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
            (Form::Value, RawValue::Expr(expr)) => {
                value_option(cx, &mut options, &name, &expr, example)
            }
            (Form::List, RawValue::List(group)) => {
                options.headers = values::headers(cx, &group);
            }
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

fn value_option(cx: &mut Ctxt, options: &mut Options, key: &str, expr: &Expr, example: &str) {
    match key {
        "ping" => options.ping = values::seconds(cx, key, expr, example),
        "send_timeout" => options.send_timeout = values::timeout(cx, key, expr, example),
        "shutdown_grace" => options.shutdown_grace = values::seconds(cx, key, expr, example),
        "drain_on_shutdown" => {
            options.drain_on_shutdown = values::boolean(cx, key, expr, example);
        }
        "sep" => options.sep = values::separator(cx, key, expr, example),
        "status" => options.status = values::status(cx, key, expr, example),
        "retry" => options.retry = values::retry(cx, key, expr, example),
        "cache_control" => options.cache_control = values::header_value(cx, key, expr, example),
        "media_type" => options.media_type = values::media_type(cx, key, expr, example),
        "ping_message" => options.ping_message = values::hook_path(cx, key, expr, example),
        "on_client_close" => {
            options.on_client_close = values::hook_path(cx, key, expr, example);
        }
        "on_close" => options.on_close = values::hook_path(cx, key, expr, example),
        "background" => options.background = values::hook_path(cx, key, expr, example),
        "on_error" => options.on_error = values::hook_path(cx, key, expr, example),
        "crate" => options.krate = values::crate_path(cx, key, expr, example),
        _ => {}
    }
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
