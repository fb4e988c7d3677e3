//! Code generation: the axum handler that builds an `EventSourceResponse` from the body.

use proc_macro2::{Delimiter, Group, Literal, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ExprPath, FnArg, Ident, ItemFn, ReturnType, Stmt, Type};

use crate::body::{INTO_EVENT_ALIAS, body_label};
use crate::options::{Options, value};
use crate::stream::{Check, StreamReturn, trait_paths};
use crate::validate::{Endpoint, Returns, is_close_hooks};
use crate::values::{Seconds, Sep};

/// The handler for a valid endpoint.
pub(crate) fn expand(endpoint: Endpoint) -> TokenStream {
    let Endpoint {
        krate,
        attrs,
        vis,
        sig,
        extractors,
        close_hooks,
        returns,
        stmts,
        body_span,
        yields,
        options,
    } = endpoint;

    let ident = &sig.ident;
    let generics = &sig.generics;
    let where_clause = &sig.generics.where_clause;
    let context = Ident::new("__sse_context", Span::mixed_site());
    let events = Ident::new("__sse_events", Span::mixed_site());
    let hooks = Ident::new("__sse_hooks", Span::mixed_site());

    let bind_hooks = close_hooks.as_ref().map(|param| {
        let pat = &param.pat;
        let ty = &param.ty;
        quote! {
            let #hooks = #krate::CloseHooks::new();
            let #pat: #ty = ::core::clone::Clone::clone(&#hooks);
        }
    });

    // The alias the converted `yield`s send through (see `body`).
    let send = yields.then(|| {
        let alias = Ident::new(INTO_EVENT_ALIAS, Span::call_site());
        quote!(use #krate::IntoEvent as #alias;)
    });

    let (events_from_body, response) = match &returns {
        Returns::Stream(stream) => {
            returned_stream(&krate, stream, &options, &events, &stmts, body_span)
        }
        Returns::Nothing => {
            let unit = quote_spanned!(body_span=> ());
            let stream = body_stream(&krate, &unit, yields, body_span, &stmts);
            // A body that returns nothing has no error: `()` is its result.
            let response = quote!(#krate::__private::fallible::<(), _>(#events));
            (quote!(let #events = #stream;), response)
        }
        Returns::Result(result_type) => {
            let stream = body_stream(&krate, result_type, yields, body_span, &stmts);
            let response = match value(&options.on_error) {
                Some(on_error) => {
                    let recover = quote_spanned! {on_error.span()=>
                        #krate::__private::recover::<#result_type, _, _, _>(#events, #on_error)
                    };
                    quote!(#krate::EventSourceResponse::new(#recover))
                }
                None => fallible_response(&krate, result_type, &events),
            };
            (quote!(let #events = #stream;), response)
        }
    };

    let settings = settings(&krate, &options);
    let attach_hooks = close_hooks.as_ref().map(|_| quote!(.close_hooks(&#hooks)));

    quote! {
        #(#attrs)*
        #vis async fn #ident #generics (
            #context: #krate::SseContext,
            #(#extractors),*
        ) -> #krate::EventSourceResponse
        #where_clause
        {
            #send
            #bind_hooks
            #events_from_body
            #response
                #settings
                #attach_hooks
                .context(#context)
        }
    }
}

/// The stream of a body that yields: the body as an `async` block whose output is the fn's
/// result (`()` when it returns nothing), polled by the runtime's generator. `?` and `return` in
/// it are Rust's own, inside other macros too. Its `yield`s send through the runtime and break
/// to the label in dead code (see `body::body_label`).
fn body_stream(
    krate: &TokenStream,
    result_type: &impl ToTokens,
    yields: bool,
    body_span: Span,
    stmts: &[Stmt],
) -> TokenStream {
    let label = yields.then(|| {
        let label = body_label(body_span);
        quote!(#label:)
    });
    let generator = quote_spanned! {result_type.span()=>
        #krate::__private::generator::stream::<#result_type, _>
    };
    // The body keeps its braces' span, so that a body whose value is not the `Result` (a
    // missing `Ok(())`) is reported there.
    let mut body = Group::new(Delimiter::Brace, quote!(#(#stmts)*));
    body.set_span(body_span);
    let result = Ident::new("__sse_result", Span::mixed_site());
    quote! {
        #generator(async move {
            let #result: #result_type = #label #body;
            // Unreachable after a body that never ends (`loop { .. }`).
            #[allow(unreachable_code)]
            return #result;
        })
    }
}

/// For a fn that returns its stream: the statements that run the body and bind its stream to
/// `events`, and the response made of it.
///
/// The body runs as an `async move` block, awaited at once, so that its `return`s and `.await`s
/// are those of the fn, and `Self` and the generics of an impl block stay in scope (a nested fn
/// would lose them). The block's value is annotated with the declared type when it names no
/// `impl` (so that `Box::pin(..)` still coerces to a `dyn` stream); an `impl` type is checked
/// bound by bound instead. The stream reaches `EventSourceResponse::new` (or `from_try_stream`,
/// for `Result` items) as the body made it, unwrapped, unless `on_error` maps its errors.
fn returned_stream(
    krate: &TokenStream,
    stream: &StreamReturn,
    options: &Options,
    events: &Ident,
    stmts: &[syn::Stmt],
    body_span: Span,
) -> (TokenStream, TokenStream) {
    let mut body = Group::new(Delimiter::Brace, quote!(#(#stmts)*));
    body.set_span(body_span);
    let ty = &stream.ty;
    let annotation = (!stream.opaque).then(|| quote!(: #ty));
    // An opaque type's traits are named in `use`s (their imports are used, as by a real
    // return type), and its bounds are checked on the value.
    let traits = stream
        .opaque
        .then_some(&stream.traits)
        .into_iter()
        .flatten();
    let checks = stream
        .opaque
        .then_some(&stream.checks)
        .into_iter()
        .flatten();
    let checks = checks.map(|check| {
        // Every token at the bound, so that rustc reports a failed check there.
        let (span, call) = match check {
            Check::Item(item) => {
                let span = item.span();
                (span, quote_spanned!(span=> item::<#item, _>))
            }
            Check::TryItems { span, ok, error } => {
                let ok = ok
                    .as_ref()
                    .map_or_else(|| quote!(_), ToTokens::to_token_stream);
                let error = error
                    .as_ref()
                    .map_or_else(|| quote!(_), ToTokens::to_token_stream);
                (*span, quote_spanned!(*span=> try_items::<#ok, #error, _>))
            }
            Check::Marker(name, span) => (*span, Ident::new(name, *span).into_token_stream()),
        };
        let krate = located_at(krate.clone(), span);
        let events = Ident::new(&events.to_string(), at(span));
        quote_spanned! {span=>
            #krate::__private::stream::#call(&#events);
        }
    });
    let statements = quote! {
        #(
            #[allow(unused_imports)]
            use #traits as _;
        )*
        let #events #annotation = async move #body.await;
        #(#checks)*
    };
    // The response's bounds on the stream (`Send + 'static`, items that are `IntoEvent`, errors
    // that convert into `BoxError`) are reported at the return type: the stream is passed as
    // `identity(events)`, a call from the type's first token to its last, which rustc reports
    // as the whole type (a single token's span is all a macro can give on stable).
    let (first, last) = first_and_last(ty);
    let krate = &located_at(krate.clone(), first);
    let events = Ident::new(&events.to_string(), at(first));
    let mut arguments = Group::new(Delimiter::Parenthesis, events.into_token_stream());
    arguments.set_span(last);
    let argument = quote_spanned!(first=> ::core::convert::identity #arguments);
    let response = match (stream.fallible, value(&options.on_error)) {
        (false, _) => quote_spanned! {first=>
            #krate::EventSourceResponse::new(#argument)
        },
        (true, None) => quote_spanned! {first=>
            #krate::__private::stream::from_try_stream(#argument)
        },
        (true, Some(on_error)) => {
            let recover = quote_spanned! {on_error.span()=>
                #krate::__private::stream::recover(#argument, #on_error)
            };
            quote_spanned!(first=> #krate::EventSourceResponse::new(#recover))
        }
    };
    (statements, response)
}

fn fallible_response(krate: &TokenStream, result_type: &Type, events: &Ident) -> TokenStream {
    quote_spanned! {result_type.span()=>
        #krate::__private::fallible::<#result_type, _>(#events)
    }
}

/// The builder calls for the options, in the order of the option table.
fn settings(krate: &TokenStream, options: &Options) -> TokenStream {
    let mut calls = TokenStream::new();
    if let Some(ping) = value(&options.ping) {
        let ping = duration(ping);
        calls.extend(quote!(.ping(#ping)));
    }
    if let Some(message) = value(&options.ping_message) {
        calls.extend(quote_spanned!(message.span()=> .ping_message(#message)));
    }
    if let Some(timeout) = value(&options.send_timeout) {
        let timeout = duration(timeout);
        calls.extend(quote!(.send_timeout(#timeout)));
    }
    if let Some(window) = value(&options.coalesce) {
        let window = duration(window);
        calls.extend(quote!(.coalesce(#window)));
    }
    if let Some((sep, span)) = value(&options.sep) {
        let variant = match sep {
            Sep::CrLf => quote_spanned!(*span=> CrLf),
            Sep::Cr => quote_spanned!(*span=> Cr),
            Sep::Lf => quote_spanned!(*span=> Lf),
        };
        calls.extend(quote!(.separator(#krate::Separator::#variant)));
    }
    if let Some((status, _)) = value(&options.status) {
        let status = Literal::u16_unsuffixed(*status);
        calls.extend(quote!(.status(#krate::__private::status(#status))));
    }
    for (name, header) in value(&options.headers).into_iter().flatten() {
        calls.extend(quote!(.header(#name, #header)));
    }
    if let Some(cache_control) = value(&options.cache_control) {
        calls.extend(quote!(.header("cache-control", #cache_control)));
    }
    if let Some(media_type) = value(&options.media_type) {
        calls.extend(quote!(.media_type(#media_type)));
    }
    if let Some((retry, _)) = value(&options.retry) {
        let retry = Literal::u64_unsuffixed(*retry);
        calls.extend(quote!(.retry(#retry)));
    }
    if let Some(hook) = value(&options.on_client_close) {
        let run = run_hook(krate, hook, quote!());
        calls.extend(quote!(.on_client_close(|| #run)));
    }
    if let Some(hook) = value(&options.on_close) {
        let reason = Ident::new("__sse_reason", at(hook.span()));
        let run = run_hook(krate, hook, quote!(#reason));
        calls.extend(quote!(.on_close(|#reason| #run)));
    }
    if let Some(task) = value(&options.background) {
        calls.extend(quote_spanned!(task.span()=> .background(#task())));
    }
    if let Some(grace) = value(&options.shutdown_grace) {
        let grace = duration(grace);
        calls.extend(quote!(.shutdown_grace(#grace)));
    }
    if let Some(drain) = value(&options.drain_on_shutdown) {
        calls.extend(quote!(.drain_on_shutdown(#drain)));
    }
    calls
}

/// The spans of the first and the last token of `tokens`.
fn first_and_last(tokens: impl ToTokens) -> (Span, Span) {
    let mut tokens = tokens.into_token_stream().into_iter();
    let first = tokens
        .next()
        .map_or_else(Span::call_site, |token| token.span());
    let last = tokens.last().map_or(first, |token| token.span());
    (first, last)
}

/// `tokens` reported at `location`, each keeping its own hygiene (a `$crate` still resolves).
fn located_at(tokens: TokenStream, location: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut new = Group::new(group.delimiter(), located_at(group.stream(), location));
                new.set_span(group.span().located_at(location));
                token = TokenTree::Group(new);
            } else {
                token.set_span(token.span().located_at(location));
            }
            token
        })
        .collect()
}

/// A span at `location` with the hygiene of the macro's own locals, for generated names that
/// appear in errors about the user's tokens.
fn at(location: Span) -> Span {
    location.resolved_at(Span::mixed_site())
}

fn duration(seconds: &Seconds) -> TokenStream {
    let secs = Literal::u64_unsuffixed(seconds.secs);
    let nanos = Literal::u32_unsuffixed(seconds.nanos);
    quote_spanned!(seconds.span=> ::core::time::Duration::new(#secs, #nanos))
}

/// Calls a hook and runs what it returns: nothing more for `()`, spawned for a future. The
/// choice is made by method resolution on the output's type (autoref specialization), so sync
/// and async hooks are written the same way.
fn run_hook(krate: &TokenStream, hook: &ExprPath, args: TokenStream) -> TokenStream {
    // Rustc reports an unsatisfied bound at the macro call when the argument's span comes from
    // the macro, so the output is named with the hook's own span.
    let output = Ident::new("__sse_output", hook.span());
    quote_spanned! {hook.span()=>
        {
            #[allow(unused_imports)]
            use #krate::__private::hook::{FutureHook as _, OtherHook as _, UnitHook as _};
            #[allow(clippy::let_unit_value)]
            let #output = #hook(#args);
            (&#output).__sse_hook_kind().run(#output)
        }
    }
}

/// What stands in for the fn when the attribute has errors: the handler's signature with a
/// body that panics, so the rest of the crate (routes naming the fn, the IDE) still sees it
/// and only the real mistakes are reported.
pub(crate) fn fallback(function: &ItemFn, krate: &TokenStream) -> TokenStream {
    let ItemFn {
        attrs, vis, sig, ..
    } = function;
    let ident = &sig.ident;
    let generics = &sig.generics;
    let where_clause = &sig.generics.where_clause;
    let params = sig.inputs.iter().filter(|input| match input {
        FnArg::Receiver(_) => false,
        FnArg::Typed(typed) => !is_close_hooks(&typed.ty),
    });
    let message = format!("#[sse_endpoint] could not expand `{ident}`; see the compile errors");
    // Name the declared return type, so that its imports do not look unused (an `impl` type
    // by its traits alone).
    let return_type = match &sig.output {
        ReturnType::Type(_, ty) if !mentions_impl(ty.to_token_stream()) => {
            Some(quote!(let _ = ::core::marker::PhantomData::<#ty>;))
        }
        ReturnType::Type(_, ty) => {
            let traits = trait_paths(ty);
            Some(quote! {
                #(
                    #[allow(unused_imports)]
                    use #traits as _;
                )*
            })
        }
        ReturnType::Default => None,
    };
    quote! {
        #(#attrs)*
        #[allow(unused_variables, clippy::unused_async)]
        #vis async fn #ident #generics (#(#params),*) -> #krate::EventSourceResponse
        #where_clause
        {
            #return_type
            ::core::panic!(#message)
        }
    }
}

/// Whether `tokens` name `impl` anywhere.
pub(crate) fn mentions_impl(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "impl",
        TokenTree::Group(group) => mentions_impl(group.stream()),
        _ => false,
    })
}
