//! The fn body: every `yield e` becomes `yield IntoEvent::into_event(e)`, and the mistakes the
//! macro can see (a `yield` that cannot reach the stream, `?` without a `Result` return type,
//! `return` with a value) are reported at their own tokens.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, TokenStreamExt, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, ExprYield, Ident, Item, Macro, Type};

use crate::ctxt::Ctxt;
use crate::parse::FOR_AWAIT_MARKER;

/// The name under which the expansion imports `IntoEvent` for the converted `yield`s.
pub(crate) const INTO_EVENT_ALIAS: &str = "__SseIntoEvent";

/// Where a `yield` is, when it is not directly in the body.
#[derive(Clone, Copy)]
enum Scope {
    Closure,
    Async,
    Item,
}

/// Rewrites a body in place, recording mistakes in the context.
pub(crate) struct BodyRewriter<'a> {
    cx: &'a mut Ctxt,
    krate: &'a TokenStream,
    /// `Some(Result<(), E>)` when the fn returns a `Result`.
    result_type: Option<&'a Type>,
    scopes: Vec<Scope>,
    /// How many `yield`s reach the stream.
    pub(crate) yields: usize,
    /// How deep the rewriter is inside a macro's tokens (which rustc does not parse).
    macro_depth: usize,
    /// The first `yield` written directly in the body, outside any macro's tokens.
    pub(crate) first_bare_yield: Option<Span>,
}

impl<'a> BodyRewriter<'a> {
    pub(crate) fn new(
        cx: &'a mut Ctxt,
        krate: &'a TokenStream,
        result_type: Option<&'a Type>,
    ) -> Self {
        Self {
            cx,
            krate,
            result_type,
            scopes: Vec::new(),
            yields: 0,
            macro_depth: 0,
            first_bare_yield: None,
        }
    }

    fn in_scope(&mut self, scope: Scope, visit: impl FnOnce(&mut Self)) {
        self.scopes.push(scope);
        visit(self);
        self.scopes.pop();
    }

    fn rewrite_yield(&mut self, yield_expr: &mut ExprYield) {
        if self.macro_depth == 0 && self.first_bare_yield.is_none() {
            self.first_bare_yield = Some(yield_expr.yield_token.span);
        }
        if let Some(value) = &mut yield_expr.expr {
            self.visit_expr_mut(value);
        }
        if let Some(&scope) = self.scopes.last() {
            self.cx
                .error_spanned_by(&*yield_expr, misplaced_yield(scope));
            return;
        }
        let Some(value) = yield_expr.expr.take() else {
            self.cx.error_spanned_by(
                &*yield_expr,
                "`yield` needs a value to send, e.g. `yield \"text\";` or \
                 `yield ServerSentEvent::new().data(..);`; to end the stream, write `return;`",
            );
            return;
        };
        // Every token of the call carries the value's span, so that a value that is not
        // `IntoEvent` is reported at the value alone (the alias is imported by the expansion).
        let alias = Ident::new(INTO_EVENT_ALIAS, value.span());
        let converted: Expr = syn::parse_quote_spanned! {value.span()=>
            #alias::into_event(#value)
        };
        yield_expr.expr = Some(Box::new(converted));
        self.yields += 1;
    }

    fn rewrite_return(&mut self, expr: &mut Expr) {
        let Expr::Return(ret) = expr else { return };
        if let Some(value) = &mut ret.expr {
            self.visit_expr_mut(value);
        }
        let Some(value) = ret.expr.take() else { return };
        match self.result_type {
            Some(result_type) => {
                // `return r` ends the stream with `r`: `?` sends its error (the stream's
                // own `?` handling), and a bare `return` ends the stream.
                let span = ret.return_token.span;
                let var = Ident::new("__sse_return", Span::mixed_site());
                *expr = syn::parse_quote_spanned! {span=>
                    {
                        let #var: #result_type = #value;
                        #var?;
                        return;
                    }
                };
            }
            None => {
                self.cx.error_spanned_by(
                    quote_spanned!(ret.return_token.span=> #ret #value),
                    "an `#[sse_endpoint]` fn sends values with `yield`, not `return`: \
                     write `yield value;` and end the stream with a bare `return;`",
                );
                ret.expr = Some(value);
            }
        }
    }

    /// `for await pat in stream { body }` as a loop over `next().await`, the stream pinned on
    /// the stack (as async-stream writes it).
    fn rewrite_for_await(&self, for_loop: &syn::ExprForLoop) -> Expr {
        let syn::ExprForLoop {
            attrs,
            label,
            pat,
            expr,
            body,
            ..
        } = for_loop;
        let attrs = attrs
            .iter()
            .filter(|attr| !attr.path().is_ident(FOR_AWAIT_MARKER));
        let krate = self.krate;
        let stream = Ident::new("__sse_stream", Span::mixed_site());
        let item = Ident::new("__sse_item", Span::mixed_site());
        syn::parse_quote! {
            #(#attrs)*
            {
                let mut #stream = ::core::pin::pin!(#expr);
                #label loop {
                    let #pat = match #krate::__private::next(&mut #stream).await {
                        ::core::option::Option::Some(#item) => #item,
                        ::core::option::Option::None => break,
                    };
                    #body
                }
            }
        }
    }

    /// Rewrites the `yield`s inside a macro's tokens (as async-stream does), so that they are
    /// converted too, for instance in the arms of `tokio::select!`.
    fn rewrite_tokens(&mut self, tokens: TokenStream) -> TokenStream {
        let mut out = TokenStream::new();
        let mut tokens = tokens.into_iter().peekable();
        while let Some(token) = tokens.next() {
            match token {
                TokenTree::Ident(ident) if ident == "yield" => {
                    let rest: TokenStream = std::iter::once(TokenTree::Ident(ident.clone()))
                        .chain(tokens)
                        .collect();
                    match syn::parse2::<YieldThenRest>(rest.clone()) {
                        Ok(YieldThenRest(yield_expr, rest)) => {
                            let mut expr = Expr::Yield(yield_expr);
                            self.visit_expr_mut(&mut expr);
                            expr.to_tokens(&mut out);
                            tokens = rest.into_iter().peekable();
                        }
                        Err(_) => {
                            // Not an expression here (a `macro_rules!` body, say): leave it
                            // to the stream macro.
                            let mut rest = rest.into_iter();
                            out.extend(rest.next());
                            tokens = rest.collect::<TokenStream>().into_iter().peekable();
                        }
                    }
                }
                TokenTree::Ident(ident) if ident == "stream" || ident == "try_stream" => {
                    out.append(ident);
                    // A nested stream macro owns its `yield`s.
                    if matches!(tokens.peek(), Some(TokenTree::Punct(punct)) if punct.as_char() == '!')
                    {
                        out.extend(tokens.next());
                        if matches!(tokens.peek(), Some(TokenTree::Group(_))) {
                            out.extend(tokens.next());
                        }
                    }
                }
                TokenTree::Group(group) => {
                    let mut new =
                        Group::new(group.delimiter(), self.rewrite_tokens(group.stream()));
                    new.set_span(group.span());
                    out.append(new);
                }
                other => out.append(other),
            }
        }
        out
    }
}

fn is_for_await(for_loop: &syn::ExprForLoop) -> bool {
    for_loop
        .attrs
        .iter()
        .any(|attr| attr.path().is_ident(FOR_AWAIT_MARKER))
}

fn misplaced_yield(scope: Scope) -> &'static str {
    match scope {
        Scope::Closure => {
            "`yield` inside a closure cannot send an event: only the body of the \
             `#[sse_endpoint]` fn yields. Move the `yield` out of the closure, e.g. replace \
             `.for_each(|item| ..)` with a `for` loop"
        }
        Scope::Async => {
            "`yield` inside an `async` block cannot send an event: only the body of the \
             `#[sse_endpoint]` fn yields. `.await` the block and yield its result, or move the \
             `yield` out of the block"
        }
        Scope::Item => {
            "`yield` inside a nested item cannot send an event: only the body of the \
             `#[sse_endpoint]` fn yields. Return the value from the nested fn and yield it in \
             the body"
        }
    }
}

/// `yield expr` followed by whatever tokens remain.
struct YieldThenRest(ExprYield, TokenStream);

impl Parse for YieldThenRest {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        Ok(YieldThenRest(input.parse()?, input.parse()?))
    }
}

impl VisitMut for BodyRewriter<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Yield(yield_expr) => self.rewrite_yield(yield_expr),
            Expr::Closure(closure) => {
                self.in_scope(Scope::Closure, |this| {
                    visit_mut::visit_expr_closure_mut(this, closure);
                });
            }
            Expr::Async(block) => {
                self.in_scope(Scope::Async, |this| {
                    visit_mut::visit_expr_async_mut(this, block)
                });
            }
            Expr::ForLoop(for_loop) if is_for_await(for_loop) => {
                visit_mut::visit_expr_for_loop_mut(self, for_loop);
                *expr = self.rewrite_for_await(for_loop);
            }
            Expr::Return(_) if self.scopes.is_empty() => self.rewrite_return(expr),
            Expr::Try(try_expr) if self.scopes.is_empty() && self.result_type.is_none() => {
                self.cx.error_at(
                    try_expr.question_token.span,
                    "`?` needs the fn to return a `Result`: declare `-> Result<(), YourError>` \
                     to end the stream when an error occurs (add `on_error = path` to send a \
                     final event for it)",
                );
                visit_mut::visit_expr_try_mut(self, try_expr);
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_item_mut(&mut self, item: &mut Item) {
        match item {
            // `macro_rules!` and other macros in item position: rewrite like any macro.
            Item::Macro(item) => self.visit_macro_mut(&mut item.mac),
            _ => self.in_scope(Scope::Item, |this| visit_mut::visit_item_mut(this, item)),
        }
    }

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        if is_stream_macro(mac) {
            return;
        }
        let tokens = std::mem::take(&mut mac.tokens);
        self.macro_depth += 1;
        mac.tokens = self.rewrite_tokens(tokens);
        self.macro_depth -= 1;
    }
}

/// Whether `mac` is async-stream's `stream!` or `try_stream!` (by its last path segment): its
/// `yield`s belong to that stream, not to the endpoint.
pub(crate) fn is_stream_macro(mac: &Macro) -> bool {
    mac.path
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "stream" || segment.ident == "try_stream")
}
