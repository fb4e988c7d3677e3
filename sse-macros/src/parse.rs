//! Syntax: the attribute's arguments and the annotated fn, as syn types that keep their spans.
//!
//! Parsing only checks the shape (`name`, `name = expr`, `name(...)`, separated by commas); what
//! each option accepts is decided in `validate`, where every mistake is collected.

use proc_macro2::{Group, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::discouraged::Speculative;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Item, ItemFn, Token};

use crate::ctxt::Ctxt;

/// The arguments of `#[sse_endpoint(...)]`.
pub(crate) struct Args {
    pub(crate) options: Vec<RawOption>,
}

/// One option as written: `key`, `key = value` or `key(...)`.
pub(crate) struct RawOption {
    pub(crate) key: Ident,
    pub(crate) value: RawValue,
}

pub(crate) enum RawValue {
    /// `key` alone.
    Absent,
    /// `key = expr`.
    Expr(Expr),
    /// `key(...)`: the parenthesized tokens, parsed by the option that takes a list.
    List(Group),
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let options = Punctuated::<RawOption, Token![,]>::parse_terminated(input)?;
        Ok(Args {
            options: options.into_iter().collect(),
        })
    }
}

impl Parse for RawOption {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // `Ident::parse_any` accepts keywords, so `crate = "..."` parses like any other option.
        let key = input.call(Ident::parse_any).map_err(|error| {
            syn::Error::new(
                error.span(),
                "expected an option name, such as `ping = 15` or `send_timeout = 5`",
            )
        })?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            RawValue::Expr(input.parse()?)
        } else if input.peek(syn::token::Paren) {
            let group: Group = input.parse()?;
            RawValue::List(group)
        } else {
            RawValue::Absent
        };
        Ok(RawOption { key, value })
    }
}

/// Parses the annotated item as a fn. `ItemFn` also accepts an associated fn of an impl block.
pub(crate) fn parse_fn(item: TokenStream) -> syn::Result<ItemFn> {
    let error = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => return Ok(function),
        Err(error) => error,
    };
    match syn::parse2::<Item>(item) {
        Ok(other) => Err(syn::Error::new_spanned(
            item_keyword(&other),
            format!(
                "#[sse_endpoint] applies to an `async fn`, not to {}",
                item_kind(&other)
            ),
        )),
        // A syntax error inside the fn: syn's message points at it.
        Err(_) => Err(error),
    }
}

fn item_kind(item: &Item) -> &'static str {
    match item {
        Item::Struct(_) => "a struct",
        Item::Enum(_) => "an enum",
        Item::Impl(_) => "an impl block (put it on an associated fn inside the block)",
        Item::Mod(_) => "a module",
        Item::Trait(_) => "a trait",
        Item::Const(_) => "a const",
        Item::Static(_) => "a static",
        Item::Type(_) => "a type alias",
        Item::Use(_) => "a use declaration",
        _ => "this item",
    }
}

fn item_keyword(item: &Item) -> TokenStream {
    match item {
        Item::Struct(item) => item.struct_token.to_token_stream(),
        Item::Enum(item) => item.enum_token.to_token_stream(),
        Item::Impl(item) => item.impl_token.to_token_stream(),
        Item::Mod(item) => item.mod_token.to_token_stream(),
        Item::Trait(item) => item.trait_token.to_token_stream(),
        Item::Const(item) => item.const_token.to_token_stream(),
        Item::Static(item) => item.static_token.to_token_stream(),
        Item::Type(item) => item.type_token.to_token_stream(),
        Item::Use(item) => item.use_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}

/// The comma-separated expressions inside `key(...)`.
pub(crate) fn parse_list(group: &Group) -> syn::Result<Punctuated<Expr, Token![,]>> {
    syn::parse::Parser::parse2(
        Punctuated::<Expr, Token![,]>::parse_terminated,
        group.stream(),
    )
}

/// The input of `sse!`: the runtime's path, then fns.
pub(crate) struct Block {
    pub(crate) krate: TokenStream,
    pub(crate) items: Vec<BlockItem>,
    /// A syntax error that stopped parsing (the items before it are kept).
    pub(crate) error: Option<syn::Error>,
}

pub(crate) enum BlockItem {
    /// A fn, with the arguments of its `#[sse_endpoint(..)]` (empty without one).
    Endpoint {
        args: TokenStream,
        function: Box<ItemFn>,
    },
    /// Something that is not an endpoint, emitted unchanged next to its errors.
    Rejected { errors: Ctxt, item: TokenStream },
}

/// Parses `($crate) items..`, one item at a time so that a mistake in one fn leaves the
/// others intact.
pub(crate) fn parse_block(input: TokenStream) -> Block {
    let mut tokens = input.into_iter();
    let krate = match tokens.next() {
        Some(proc_macro2::TokenTree::Group(group)) => group.stream(),
        _ => quote::quote!(::sse_runtime),
    };
    let parser = |input: ParseStream<'_>| -> syn::Result<Vec<BlockItem>> {
        let mut items = Vec::new();
        while !input.is_empty() {
            items.push(block_item(input.parse()?));
        }
        Ok(items)
    };
    let rest = mark_for_await(tokens.collect());
    match syn::parse::Parser::parse2(parser, rest.clone()) {
        Ok(items) => Block {
            krate,
            items,
            error: None,
        },
        Err(error) => {
            // Keep every item that parsed before the syntax error.
            let items = partial_items(rest);
            Block {
                krate,
                items,
                error: Some(error),
            }
        }
    }
}

fn partial_items(tokens: TokenStream) -> Vec<BlockItem> {
    let parser = |input: ParseStream<'_>| -> syn::Result<Vec<BlockItem>> {
        let mut items = Vec::new();
        while !input.is_empty() {
            let fork = input.fork();
            match fork.parse::<Item>() {
                Ok(item) => {
                    input.advance_to(&fork);
                    items.push(block_item(item));
                }
                Err(_) => {
                    // Skip the rest: its error is reported once, by the caller.
                    input.parse::<TokenStream>()?;
                }
            }
        }
        Ok(items)
    };
    syn::parse::Parser::parse2(parser, tokens).unwrap_or_default()
}

fn block_item(item: Item) -> BlockItem {
    let mut function = match item {
        Item::Fn(function) => function,
        other => {
            let mut errors = Ctxt::new();
            errors.error_spanned_by(
                item_keyword(&other),
                format!(
                    "`sse!` holds `async fn`s that become SSE endpoints, not {}; move it out of the block",
                    item_kind(&other)
                ),
            );
            return BlockItem::Rejected {
                errors,
                item: other.to_token_stream(),
            };
        }
    };
    let mut args = TokenStream::new();
    let mut seen: Option<syn::Path> = None;
    let mut errors = Ctxt::new();
    function.attrs.retain(|attr| {
        let is_endpoint = attr
            .path()
            .segments
            .last()
            .is_some_and(|last| last.ident == "sse_endpoint");
        if !is_endpoint {
            return true;
        }
        if seen.is_some() {
            errors.error_spanned_by(
                attr,
                "`#[sse_endpoint]` is given twice on this fn; merge the options into one",
            );
            return false;
        }
        seen = Some(attr.path().clone());
        match &attr.meta {
            syn::Meta::Path(_) => {}
            syn::Meta::List(list) => args = list.tokens.clone(),
            syn::Meta::NameValue(name_value) => errors.error_spanned_by(
                name_value.eq_token,
                "write the options in parentheses: `#[sse_endpoint(ping = 15)]`",
            ),
        }
        false
    });
    if errors.has_errors() {
        return BlockItem::Rejected {
            errors,
            item: TokenStream::new(),
        };
    }
    BlockItem::Endpoint {
        args,
        function: Box::new(function),
    }
}

/// The attribute that marks a `for await` loop until `body` rewrites it.
pub(crate) const FOR_AWAIT_MARKER: &str = "__sse_for_await";

/// Replaces `for await` (async-stream's loop over a stream, which syn cannot parse) with
/// `#[__sse_for_await] for`. The tokens of other macros are left alone: they own their syntax.
pub(crate) fn mark_for_await(tokens: TokenStream) -> TokenStream {
    use proc_macro2::{Ident as Ident2, Punct, Spacing, TokenTree};

    let mut out = Vec::new();
    let mut tokens = tokens.into_iter().peekable();
    let mut after_bang = false;
    while let Some(token) = tokens.next() {
        let was_bang = std::mem::take(&mut after_bang);
        match token {
            TokenTree::Ident(ident)
                if ident == "for"
                    && matches!(tokens.peek(), Some(TokenTree::Ident(next)) if next == "await") =>
            {
                let Some(TokenTree::Ident(await_token)) = tokens.next() else {
                    unreachable!("peeked an ident");
                };
                let span = await_token.span();
                let mut pound = Punct::new('#', Spacing::Alone);
                pound.set_span(span);
                let marker = TokenTree::Ident(Ident2::new(FOR_AWAIT_MARKER, span));
                let mut attr = Group::new(proc_macro2::Delimiter::Bracket, marker.into());
                attr.set_span(span);
                // An attribute goes before the loop's label (`'label: for`), if any.
                let at = match &out[..] {
                    [
                        ..,
                        TokenTree::Punct(quote),
                        TokenTree::Ident(_),
                        TokenTree::Punct(colon),
                    ] if quote.as_char() == '\'' && colon.as_char() == ':' => out.len() - 3,
                    _ => out.len(),
                };
                out.splice(at..at, [TokenTree::Punct(pound), TokenTree::Group(attr)]);
                out.push(TokenTree::Ident(ident));
            }
            TokenTree::Group(group) if !was_bang => {
                let mut new = Group::new(group.delimiter(), mark_for_await(group.stream()));
                new.set_span(group.span());
                out.push(TokenTree::Group(new));
            }
            TokenTree::Punct(punct) => {
                after_bang = punct.as_char() == '!';
                out.push(TokenTree::Punct(punct));
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}
