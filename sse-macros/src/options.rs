//! The attribute's options: one row per option in `OPTIONS`, each stored with the keyword it was
//! written with, and the checks that involve two options.

use proc_macro2::{Group, Span};
use syn::{Expr, ExprPath, Ident, LitStr};

use crate::ctxt::Ctxt;
use crate::parse::{Args, RawOption, RawValue};
use crate::suggest::closest;
use crate::values::{self, Seconds, Sep};

/// One option: its name, an example used in hints, and how it is written, with the fn that
/// reads its value.
struct Spec {
    name: &'static str,
    example: &'static str,
    form: Form,
}

/// How an option is written, with the fn that reads what follows its name into its field.
enum Form {
    /// `name = value`.
    Value(fn(&mut Ctxt, &mut Options, Input<'_>)),
    /// `name(...)`.
    List(fn(&mut Ctxt, &mut Options, Ident, &Group)),
}

/// The value of one `name = value` option, with what its messages need.
struct Input<'a> {
    key: Ident,
    expr: &'a Expr,
    name: &'static str,
    example: &'static str,
}

impl Input<'_> {
    /// The option, its value read by `parse`.
    fn read<T>(self, cx: &mut Ctxt, parse: values::Parser<T>) -> Option<Opt<T>> {
        let value = parse(cx, self.name, self.expr, self.example);
        Some(Opt {
            key: self.key,
            value,
        })
    }
}

/// Every option. `expand` writes the builder calls in this order, and an unknown option
/// lists the names in it. A new option takes a row here and a field in `Options`.
const OPTIONS: &[Spec] = &[
    Spec {
        name: "ping",
        example: "ping = 15",
        form: Form::Value(|cx, options, input| options.ping = input.read(cx, values::seconds)),
    },
    Spec {
        name: "ping_message",
        example: "ping_message = my_ping",
        form: Form::Value(|cx, options, input| {
            options.ping_message = input.read(cx, values::hook_path);
        }),
    },
    Spec {
        name: "send_timeout",
        example: "send_timeout = 5",
        form: Form::Value(|cx, options, input| {
            options.send_timeout = input.read(cx, values::timeout);
        }),
    },
    Spec {
        name: "coalesce",
        example: "coalesce = 0.005",
        form: Form::Value(|cx, options, input| {
            options.coalesce = input.read(cx, values::seconds);
        }),
    },
    Spec {
        name: "sep",
        example: r#"sep = "\n""#,
        form: Form::Value(|cx, options, input| options.sep = input.read(cx, values::separator)),
    },
    Spec {
        name: "status",
        example: "status = 200",
        form: Form::Value(|cx, options, input| options.status = input.read(cx, values::status)),
    },
    Spec {
        name: "headers",
        example: r#"headers("x-custom" = "value")"#,
        form: Form::List(|cx, options, key, group| {
            let value = Some(values::headers(cx, group));
            options.headers = Some(Opt { key, value });
        }),
    },
    Spec {
        name: "cache_control",
        example: r#"cache_control = "no-cache""#,
        form: Form::Value(|cx, options, input| {
            options.cache_control = input.read(cx, values::header_value);
        }),
    },
    Spec {
        name: "media_type",
        example: r#"media_type = "text/event-stream""#,
        form: Form::Value(|cx, options, input| {
            options.media_type = input.read(cx, values::media_type);
        }),
    },
    Spec {
        name: "retry",
        example: "retry = 3000",
        form: Form::Value(|cx, options, input| options.retry = input.read(cx, values::retry)),
    },
    Spec {
        name: "on_client_close",
        example: "on_client_close = client_left",
        form: Form::Value(|cx, options, input| {
            options.on_client_close = input.read(cx, values::hook_path);
        }),
    },
    Spec {
        name: "on_close",
        example: "on_close = log_close",
        form: Form::Value(|cx, options, input| {
            options.on_close = input.read(cx, values::hook_path);
        }),
    },
    Spec {
        name: "background",
        example: "background = cleanup",
        form: Form::Value(|cx, options, input| {
            options.background = input.read(cx, values::hook_path);
        }),
    },
    Spec {
        name: "shutdown_grace",
        example: "shutdown_grace = 5",
        form: Form::Value(|cx, options, input| {
            options.shutdown_grace = input.read(cx, values::seconds);
        }),
    },
    Spec {
        name: "drain_on_shutdown",
        example: "drain_on_shutdown = false",
        form: Form::Value(|cx, options, input| {
            options.drain_on_shutdown = input.read(cx, values::boolean);
        }),
    },
    Spec {
        name: "on_error",
        example: "on_error = error_event",
        form: Form::Value(|cx, options, input| {
            options.on_error = input.read(cx, values::hook_path);
        }),
    },
    Spec {
        name: "crate",
        example: r#"crate = "my_crate::sse""#,
        form: Form::Value(|cx, options, input| options.krate = input.read(cx, values::crate_path)),
    },
];

/// An option as written: the keyword it was given with, for errors about it, and its value.
pub(crate) struct Opt<T> {
    pub(crate) key: Ident,
    /// `None` when the value is invalid: its error is recorded and nothing is expanded, but the
    /// checks that involve two options still see that the option was given.
    pub(crate) value: Option<T>,
}

/// The value of an option that was given with a valid value.
pub(crate) fn value<T>(option: &Option<Opt<T>>) -> Option<&T> {
    option.as_ref()?.value.as_ref()
}

/// The options. `None` means the option was not given.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) krate: Option<Opt<syn::Path>>,
    pub(crate) ping: Option<Opt<Seconds>>,
    pub(crate) ping_message: Option<Opt<ExprPath>>,
    pub(crate) send_timeout: Option<Opt<Seconds>>,
    pub(crate) coalesce: Option<Opt<Seconds>>,
    pub(crate) sep: Option<Opt<(Sep, Span)>>,
    pub(crate) status: Option<Opt<(u16, Span)>>,
    pub(crate) headers: Option<Opt<Vec<(LitStr, LitStr)>>>,
    pub(crate) cache_control: Option<Opt<LitStr>>,
    pub(crate) media_type: Option<Opt<LitStr>>,
    pub(crate) retry: Option<Opt<(u64, Span)>>,
    pub(crate) on_client_close: Option<Opt<ExprPath>>,
    pub(crate) on_close: Option<Opt<ExprPath>>,
    pub(crate) background: Option<Opt<ExprPath>>,
    pub(crate) shutdown_grace: Option<Opt<Seconds>>,
    pub(crate) drain_on_shutdown: Option<Opt<syn::LitBool>>,
    pub(crate) on_error: Option<Opt<ExprPath>>,
}

/// Checks every option, recording each mistake in `cx`.
pub(crate) fn validate_options(cx: &mut Ctxt, args: Args) -> Options {
    let mut options = Options::default();
    let mut given = [false; OPTIONS.len()];
    for RawOption { key, value } in args.options {
        let Some(index) = OPTIONS.iter().position(|spec| key == spec.name) else {
            unknown_option(cx, &key);
            continue;
        };
        let Spec {
            name,
            example,
            ref form,
        } = OPTIONS[index];
        if given[index] {
            cx.error_spanned_by(&key, format!("`{name}` is given twice; keep one of them"));
            continue;
        }
        given[index] = true;
        match (form, value) {
            (Form::Value(read), RawValue::Expr(expr)) => {
                let input = Input {
                    key,
                    expr: &expr,
                    name,
                    example,
                };
                read(cx, &mut options, input);
            }
            (Form::List(read), RawValue::List(group)) => read(cx, &mut options, key, &group),
            (Form::Value(_), RawValue::Absent) => {
                cx.error_spanned_by(&key, format!("`{name}` needs a value, e.g. `{example}`"))
            }
            (Form::Value(_), RawValue::List(group)) => cx.error_spanned_by(
                group,
                format!("`{name}` takes a value after `=`, e.g. `{example}`"),
            ),
            (Form::List(_), RawValue::Absent | RawValue::Expr(_)) => cx.error_spanned_by(
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
    let names: Vec<&str> = OPTIONS.iter().map(|spec| spec.name).collect();
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

/// Mistakes that involve two options.
fn cross_checks(cx: &mut Ctxt, options: &Options) {
    if let (Some(ping), Some(message)) = (value(&options.ping), &options.ping_message)
        && ping.is_zero()
    {
        cx.error_spanned_by(
            &message.key,
            "`ping_message` has no effect with `ping = 0`, which sends no pings; \
             remove `ping_message` or give `ping` a period",
        );
    }
    let headers = value(&options.headers).map_or(&[][..], Vec::as_slice);
    for (header, option) in [
        (
            "cache-control",
            options.cache_control.as_ref().map(|o| &o.key),
        ),
        ("content-type", options.media_type.as_ref().map(|o| &o.key)),
    ] {
        if let Some(option) = option
            && let Some((name, _)) = headers
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

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    /// The messages of every error that validating `args` records.
    fn messages(args: proc_macro2::TokenStream) -> String {
        let mut cx = Ctxt::new();
        validate_options(&mut cx, syn::parse2(args).expect("the arguments parse"));
        cx.into_compile_errors().to_string()
    }

    #[test]
    fn an_option_with_an_invalid_value_still_takes_part_in_the_cross_checks() {
        let errors = messages(quote!(
            cache_control = 0,
            headers("cache-control" = "public")
        ));
        assert!(
            errors.contains("`cache_control` takes a string literal"),
            "{errors}"
        );
        assert!(
            errors.contains("is also set by `cache_control = ...`"),
            "{errors}"
        );

        let errors = messages(quote!(ping = 0, ping_message = "my_ping"));
        assert!(
            errors.contains("takes the path of a fn, not a string"),
            "{errors}"
        );
        assert!(errors.contains("has no effect with `ping = 0`"), "{errors}");
    }

    #[test]
    fn an_option_given_twice_is_reported_at_the_second_keyword() {
        let errors = messages(quote!(ping = true, ping = 15));
        assert!(errors.contains("`ping` is given twice"), "{errors}");
    }

    #[test]
    fn every_row_is_written_in_its_own_form() {
        for spec in OPTIONS {
            let list = spec.example.starts_with(&format!("{}(", spec.name));
            let value = spec.example.starts_with(&format!("{} = ", spec.name));
            match spec.form {
                Form::Value(_) => assert!(value, "{}", spec.example),
                Form::List(_) => assert!(list, "{}", spec.example),
            }
        }
    }
}
