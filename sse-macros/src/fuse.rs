//! `yield ServerSentEvent::new().id(..).data(..)`, fused: when a body yields an event built in
//! place, with builder calls in the order the fields are written (comment, `id`, `event`,
//! `data`, `retry`, each at most once) and arguments that cannot suspend the body, the `yield`
//! writes the event straight into the response's frame
//! (`sse_runtime::__private::generator::Fused`), instead of building the event, formatting its
//! fields into strings of their own, and encoding it after. Each argument is bound in a `match`
//! whose arm holds the next one's, so that the values and their temporaries live to the end of
//! the `yield`, as in the builder's chain. Strings and integers are written by their text,
//! together, in one call at the end; a value of any other type is formatted at its place in the
//! order, before the next argument is evaluated, as the builder formats it. An argument that
//! leaves the body early (`?`, `return`, `break`, `continue`) drops the fused event, which takes
//! what it wrote back out of the frame; one that could suspend it (`.await`, `yield`) is not
//! fused, since the frame goes back to the driver while the body waits. Any other `yield` is
//! left as it is.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Ident};

/// The builder calls a fused `yield` takes, in the order their fields are written.
const FIELDS: [&str; 5] = ["comment", "id", "event", "data", "retry"];

/// The fused form of the `yield`ed `value` (an expression whose value is what the `yield`
/// awaits), if it is an event built in place that can be fused.
pub(crate) fn fused_yield(krate: &TokenStream, value: &Expr) -> Option<Expr> {
    let mut calls = Vec::new();
    let mut receiver = value;
    let constructor = loop {
        match receiver {
            Expr::MethodCall(call)
                if call.attrs.is_empty() && call.turbofish.is_none() && call.args.len() == 1 =>
            {
                calls.push((&call.method, &call.args[0]));
                receiver = &call.receiver;
            }
            Expr::Call(call) if call.attrs.is_empty() && call.args.is_empty() => {
                let Expr::Path(path) = &*call.func else {
                    return None;
                };
                let names: Vec<_> = path.path.segments.iter().rev().take(2).collect();
                let is_new = path.attrs.is_empty()
                    && path.qself.is_none()
                    && names.len() == 2
                    && names[0].ident == "new"
                    && names[1].ident == "ServerSentEvent"
                    && path.path.segments.iter().all(|s| s.arguments.is_none());
                if !is_new {
                    return None;
                }
                break &call.func;
            }
            _ => return None,
        }
    };
    calls.reverse();
    let mut last = None;
    for (method, arg) in &calls {
        let rank = FIELDS.iter().position(|field| method == field)?;
        if last.is_some_and(|last| rank <= last) || may_suspend(arg.to_token_stream()) {
            return None;
        }
        last = Some(rank);
    }
    let span = value.span();
    let event = Ident::new("__sse_event", Span::mixed_site().located_at(span));
    let count = calls.len();
    let ident = |what: &str, at: usize, located: Span| {
        Ident::new(
            &format!("__sse_{what}_{at}"),
            Span::mixed_site().located_at(located),
        )
    };
    // The fields of the calls, each with the text its probe found: the fields before a
    // formatted value are written before it, and all of them are what `finish` ends with.
    let fields: Vec<TokenStream> = calls
        .iter()
        .enumerate()
        .map(|(at, (method, _))| {
            let name = Ident::new(&capitalized(&method.to_string()), method.span());
            let plain = ident("plain", at, span);
            quote_spanned! {span=>
                #krate::__private::generator::Field::new(
                    #krate::__private::generator::Name::#name,
                    #plain,
                )
            }
        })
        .collect();
    // Each call binds its argument in a `match`, whose arm holds the next call's: the values
    // and their temporaries live to the end of the `yield`, as in the builder's chain.
    let mut body = quote_spanned! {span=> #event.finish(&[#(#fields),*]) };
    for (at, (method, arg)) in calls.iter().enumerate().rev() {
        // The last field ends the event in the same write.
        let last = at + 1 == count;
        let arg_span = arg.span();
        // The value is named at the argument, so that an error about it (no `Display`) is
        // reported there.
        let value = Ident::new(&format!("__sse_value_{at}"), arg_span);
        let digits = ident("digits", at, span);
        let plain = ident("plain", at, span);
        let before = &fields[..at];
        body = if *method == "retry" {
            quote_spanned! {method.span()=>
                match #krate::__private::generator::retry_ms(#arg) {
                    #value => {
                        let mut #digits = #krate::__private::generator::Digits::new();
                        let #plain = #digits.retry(#value);
                        #body
                    }
                }
            }
        } else {
            // The probe finds the text of strings and integers by their type; a value it finds
            // none of is formatted at once, after the fields before it, as the builder would.
            let value_ref = quote_spanned!(arg_span=> &#value);
            quote_spanned! {method.span()=>
                match #arg {
                    #value => {
                        let mut #digits = #krate::__private::generator::Digits::new();
                        let #plain = (&&#krate::__private::generator::Probe(&#value))
                            .__sse_plain(&mut #digits);
                        if #plain.is_none() {
                            #event.#method(&[#(#before),*], #value_ref, #last);
                        }
                        #body
                    }
                }
            }
        };
    }
    Some(syn::parse_quote_spanned! {span=>
        ({
            #[allow(unused_imports)]
            use #krate::__private::generator::{NotPlain as _, PlainText as _};
            let mut #event = #krate::__private::generator::Fused::new(#constructor);
            #body
        })
    })
}

/// `id` as `Id`: the variant of `Name` for a builder call.
fn capitalized(method: &str) -> String {
    let mut chars = method.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Whether `tokens` may suspend the body (`.await`, or a `yield` already rewritten into one),
/// anywhere, macro arguments included: the frame would go back to the driver with part of an
/// event in it, so such a `yield` is not fused. (`?`, `return`, `break` and `continue` are
/// fine: leaving drops the fused event, which takes its bytes back out of the frame.)
fn may_suspend(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "await" || ident == "yield",
        TokenTree::Group(group) => may_suspend(group.stream()),
        TokenTree::Punct(_) | TokenTree::Literal(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use quote::quote;
    use syn::Expr;

    use super::fused_yield;

    fn fuses(value: Expr) -> bool {
        fused_yield(&quote!(::sse_runtime), &value).is_some()
    }

    #[test]
    fn events_built_in_place_in_field_order_are_fused() {
        assert!(fuses(syn::parse_quote!(ServerSentEvent::new())));
        assert!(fuses(syn::parse_quote!(ServerSentEvent::new().data(x))));
        assert!(fuses(syn::parse_quote!(
            sse_runtime::ServerSentEvent::new()
                .comment(c)
                .id(i)
                .event(e)
                .data(format!("{d}"))
                .retry(5)
        )));
        assert!(fuses(syn::parse_quote!(
            ::sse_runtime::ServerSentEvent::new()
                .id(i)
                .data(cell.borrow().as_str())
        )));
        // Leaving the body early drops the fused event, which takes its bytes back.
        assert!(fuses(syn::parse_quote!(
            ServerSentEvent::new().data(parse(x)?)
        )));
        assert!(fuses(syn::parse_quote!(
            ServerSentEvent::new().id(m!(a, return))
        )));
        assert!(fuses(syn::parse_quote!(ServerSentEvent::new().id({
            break;
        }))));
    }

    #[test]
    fn other_yields_are_left_to_the_builder() {
        // Out of field order, or a field twice.
        assert!(!fuses(syn::parse_quote!(
            ServerSentEvent::new().data(d).id(i)
        )));
        assert!(!fuses(syn::parse_quote!(
            ServerSentEvent::new().data(a).data(b)
        )));
        // A call the fused event does not have.
        assert!(!fuses(syn::parse_quote!(
            ServerSentEvent::new().data(d).separator(s)
        )));
        assert!(!fuses(syn::parse_quote!(
            ServerSentEvent::new().data::<T>(d)
        )));
        // Arguments that could suspend the body with an event half-written.
        assert!(!fuses(syn::parse_quote!(
            ServerSentEvent::new().data(next().await)
        )));
        assert!(!fuses(syn::parse_quote!(
            ServerSentEvent::new().data(m!(a.await))
        )));
        assert!(!fuses(syn::parse_quote!(ServerSentEvent::new().data({
            yield 1;
            2
        }))));
        // Not an event built in place.
        assert!(!fuses(syn::parse_quote!(event.data(d))));
        assert!(!fuses(syn::parse_quote!(make().data(d))));
        assert!(!fuses(syn::parse_quote!(Other::new().data(d))));
        assert!(!fuses(syn::parse_quote!(
            ServerSentEvent::default().data(d)
        )));
        assert!(!fuses(syn::parse_quote!(
            ServerSentEvent::<T>::new().data(d)
        )));
        assert!(!fuses(syn::parse_quote!("text")));
    }
}
