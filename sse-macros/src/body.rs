//! The fn body: every `yield e` sends `e` (an `IntoEvent`), and the mistakes the macro can
//! see (a `yield` that cannot reach the stream, `?` without a `Result` return type, `return`
//! with a value) are reported at their own tokens.
//!
//! Every body becomes an `async` block whose output is the fn's result (`()` for a body returning
//! nothing, else its `Result<(), E>`; see `expand`): its `?` and `return` are Rust's own, also
//! inside other macros' tokens, and its `yield`s become awaits of the runtime's `send`, which
//! writes the value straight into the response's frame (see `sse_runtime::driver::direct`). In
//! a fallible body a bare `return;` becomes `return Ok(())`, in parsed code and in macro tokens
//! alike.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, TokenStreamExt, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{
    Expr, ExprAsync, ExprClosure, ExprReturn, ExprYield, Ident, Item, ItemFn, Lifetime, Macro, Type,
};

use crate::ctxt::Ctxt;
use crate::parse::FOR_AWAIT_MARKER;

/// The name under which the expansion imports `IntoEvent` for the converted `yield`s.
pub(crate) const INTO_EVENT_ALIAS: &str = "__SseIntoEvent";

/// The label of a fallible body's block, at `location`. Every converted `yield` breaks to it in
/// dead code, as async-stream's do: a label cannot be reached from inside a closure or an
/// `async` block, so a `yield` that ends up in one (through a macro the rewriter cannot see
/// into) fails to compile instead of sending from the wrong place. Its hygiene is the macro's:
/// the body cannot name it.
pub(crate) fn body_label(location: Span) -> Lifetime {
    Lifetime::new("'__sse_body", Span::mixed_site().located_at(location))
}

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

    fn rewrite_yield(&mut self, expr: &mut Expr) {
        let Expr::Yield(yield_expr) = expr else {
            return;
        };
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
        self.yields += 1;
        let attrs = std::mem::take(&mut yield_expr.attrs);
        let label = body_label(yield_expr.yield_token.span);
        // Every token of the call carries the value's span, so that a value that is not
        // `IntoEvent` is reported at the value alone (the alias is imported by the expansion).
        let alias = Ident::new(INTO_EVENT_ALIAS, value.span());
        let send: Expr = crate::fuse::fused_yield(self.krate, &value).unwrap_or_else(|| {
            syn::parse_quote_spanned! {value.span()=>
                #alias::__sse_send(#value)
            }
        });
        // At the `yield`, so that a misplaced one is reported there, with the macro's hygiene,
        // so that lints treat the guard as generated code.
        let span = Span::mixed_site().located_at(yield_expr.yield_token.span);
        *expr = syn::parse_quote_spanned! {span=>
            #(#attrs)*
            {
                #[allow(unreachable_code)]
                if false {
                    break #label (loop {});
                }
                #send.await
            }
        };
    }

    fn rewrite_return(&mut self, expr: &mut Expr) {
        let Expr::Return(ret) = expr else { return };
        if let Some(value) = &mut ret.expr {
            self.visit_expr_mut(value);
        }
        match (self.result_type, ret.expr.take()) {
            // `return r` ends the body with `r`, as in any fn returning a `Result`.
            (Some(_), Some(value)) => ret.expr = Some(value),
            // A bare `return` ends the stream cleanly, as in a body returning nothing.
            (Some(_), None) => {
                ret.expr = Some(Box::new(syn::parse_quote!(::core::result::Result::Ok(()))));
            }
            (None, None) => {}
            (None, Some(value)) => {
                self.cx.error_spanned_by(
                    quote_spanned!(ret.return_token.span=> #ret #value),
                    "an `#[sse_endpoint]` fn sends values with `yield`, not `return`: \
                     write `yield value;` and end the stream with a bare `return;`",
                );
                ret.expr = Some(value);
            }
        }
    }

    /// Rewrites the `yield`s inside a macro's tokens (as async-stream does), so that they are
    /// converted too, for instance in the arms of `tokio::select!`, and in a fallible body the
    /// bare `return`s. The closures, `async` blocks and fns found in the tokens are rewritten
    /// as in parsed code: their own `return`s stay theirs, and a `yield` in them is reported.
    fn rewrite_tokens(&mut self, tokens: TokenStream) -> TokenStream {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut out = TokenStream::new();
        let mut at = 0;
        // Whether the last token ends an operand (`x`, `1`, `(..)`, `x?`): a `|` after one is
        // an operator, not the start of a closure.
        let mut after_operand = false;
        while at < tokens.len() {
            let rest = &tokens[at..];
            if let Some((mut expr, taken)) = self.nested_expr(rest, after_operand) {
                self.visit_expr_mut(&mut expr);
                expr.to_tokens(&mut out);
                at += taken;
                after_operand = true;
                continue;
            }
            if let TokenTree::Ident(ident) = &rest[0]
                && ident == "fn"
                && let Some((function, taken)) = parse_prefix::<ItemFn>(rest)
            {
                let mut item = Item::Fn(function);
                self.visit_item_mut(&mut item);
                item.to_tokens(&mut out);
                at += taken;
                after_operand = false;
                continue;
            }
            match &rest[0] {
                TokenTree::Ident(ident) if is_stream_ident(ident) => {
                    // A nested stream macro owns its `yield`s: copy `stream ! {..}` as it is.
                    let bang = is_punct(rest.get(1), '!');
                    let group = bang && matches!(rest.get(2), Some(TokenTree::Group(_)));
                    let taken = 1 + usize::from(bang) + usize::from(group);
                    out.extend(rest[..taken].iter().cloned());
                    at += taken;
                    after_operand = group;
                    continue;
                }
                TokenTree::Group(group) => {
                    let mut new =
                        Group::new(group.delimiter(), self.rewrite_tokens(group.stream()));
                    new.set_span(group.span());
                    out.append(new);
                    after_operand = true;
                }
                TokenTree::Ident(ident) => {
                    out.append(ident.clone());
                    after_operand = !OPERATOR_KEYWORDS.iter().any(|keyword| ident == keyword);
                }
                TokenTree::Punct(punct) => {
                    out.append(punct.clone());
                    after_operand = punct.as_char() == '?';
                }
                TokenTree::Literal(literal) => {
                    out.append(literal.clone());
                    after_operand = true;
                }
            }
            at += 1;
        }
        out
    }

    /// The expression that starts `tokens`, when the rewriter has something to do in it: a
    /// `yield`, a bare `return` of a fallible body, a closure or an `async` block. With it,
    /// how many tokens it takes.
    fn nested_expr(&self, tokens: &[TokenTree], after_operand: bool) -> Option<(Expr, usize)> {
        let next_is = |c: char| is_punct(tokens.get(1), c);
        match &tokens[0] {
            // A `yield` that is not an expression here (in a `macro_rules!` body, say) is
            // copied as it is.
            TokenTree::Ident(ident) if ident == "yield" => {
                parse_prefix::<ExprYield>(tokens).map(|(expr, taken)| (Expr::Yield(expr), taken))
            }
            TokenTree::Ident(ident)
                if ident == "return"
                    && self.result_type.is_some()
                    && (tokens.len() == 1 || next_is(';') || next_is(',')) =>
            {
                let expr = ExprReturn {
                    attrs: Vec::new(),
                    return_token: syn::token::Return(ident.span()),
                    expr: None,
                };
                Some((Expr::Return(expr), 1))
            }
            TokenTree::Ident(ident) if ident == "async" => parse_prefix::<ExprClosure>(tokens)
                .map(|(expr, taken)| (Expr::Closure(expr), taken))
                .or_else(|| {
                    parse_prefix::<ExprAsync>(tokens)
                        .map(|(expr, taken)| (Expr::Async(expr), taken))
                }),
            TokenTree::Ident(ident) if ident == "move" && next_is('|') => {
                parse_prefix::<ExprClosure>(tokens)
                    .map(|(expr, taken)| (Expr::Closure(expr), taken))
            }
            TokenTree::Punct(punct) if punct.as_char() == '|' && !after_operand => {
                parse_prefix::<ExprClosure>(tokens)
                    .map(|(expr, taken)| (Expr::Closure(expr), taken))
            }
            _ => None,
        }
    }
}

/// Keywords after which an expression may start: a `|` after them opens a closure.
const OPERATOR_KEYWORDS: &[&str] = &[
    "return", "break", "yield", "in", "if", "match", "while", "else", "let", "mut",
];

fn is_punct(token: Option<&TokenTree>, c: char) -> bool {
    matches!(token, Some(TokenTree::Punct(punct)) if punct.as_char() == c)
}

/// `T` parsed from the start of `tokens`, and how many tokens it took.
fn parse_prefix<T: Parse>(tokens: &[TokenTree]) -> Option<(T, usize)> {
    let tokens_in: TokenStream = tokens.iter().cloned().collect();
    let Prefix(node, rest) = syn::parse2::<Prefix<T>>(tokens_in).ok()?;
    Some((node, tokens.len() - rest.into_iter().count()))
}

/// A `T` followed by whatever tokens remain.
struct Prefix<T>(T, TokenStream);

impl<T: Parse> Parse for Prefix<T> {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        Ok(Prefix(input.parse()?, input.parse()?))
    }
}

/// `for await pat in stream { body }` as a loop over `next().await`, the stream pinned on the
/// stack (as async-stream writes it).
fn rewrite_for_await(krate: &TokenStream, for_loop: &syn::ExprForLoop) -> Expr {
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

impl VisitMut for BodyRewriter<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Yield(_) => self.rewrite_yield(expr),
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
                *expr = rewrite_for_await(self.krate, for_loop);
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
        .is_some_and(|segment| is_stream_ident(&segment.ident))
}

fn is_stream_ident(ident: &Ident) -> bool {
    ident == "stream" || ident == "try_stream"
}

/// Checks the body of a fn that returns its stream, which is ordinary Rust: a `yield` written
/// in it (outside any macro's tokens) has no stream to send to and is reported. A `yield`
/// inside a macro is that macro's (`stream! { .. }`'s, typically). `for await` loops become
/// loops over `next().await`, as in the other bodies.
pub(crate) struct StreamBody<'a> {
    cx: &'a mut Ctxt,
    krate: &'a TokenStream,
    ident: &'a Ident,
}

impl<'a> StreamBody<'a> {
    pub(crate) fn new(cx: &'a mut Ctxt, krate: &'a TokenStream, ident: &'a Ident) -> Self {
        Self { cx, krate, ident }
    }
}

impl VisitMut for StreamBody<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Yield(yield_expr) => {
                self.cx.error_at(
                    yield_expr.yield_token.span,
                    format!(
                        "`{}` returns its stream, so its body is ordinary Rust and this `yield` \
                         has no stream to send to: build the stream with \
                         `async_stream::stream! {{ .. }}` and `yield` inside it, or remove the \
                         return type and put the fn in `sse_runtime::sse! {{ .. }}`, where a body \
                         yields its events",
                        self.ident
                    ),
                );
                visit_mut::visit_expr_yield_mut(self, yield_expr);
            }
            Expr::ForLoop(for_loop) if is_for_await(for_loop) => {
                visit_mut::visit_expr_for_loop_mut(self, for_loop);
                *expr = rewrite_for_await(self.krate, for_loop);
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }
}
