//! The `#[sse_endpoint]` attribute and the `sse!` block of `sse-runtime`. Use them through
//! `sse_runtime::sse_endpoint` and `sse_runtime::sse!`.

mod body;
mod ctxt;
mod expand;
mod fuse;
mod headers;
mod options;
mod parse;
#[cfg(test)]
mod snapshot;
mod stream;
mod suggest;
mod validate;
mod values;

use proc_macro::TokenStream;

use crate::validate::Mode;

#[doc = include_str!("../docs/sse_endpoint.md")]
#[proc_macro_attribute]
pub fn sse_endpoint(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute(args.into(), item.into()).into()
}

/// The proc macro behind `sse_runtime::sse!`, which passes its own path first: `($crate) fns..`.
#[doc(hidden)]
#[proc_macro]
pub fn sse_block(input: TokenStream) -> TokenStream {
    block(input.into()).into()
}

/// `#[sse_endpoint(args)] item`.
fn attribute(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let function = match parse::parse_fn(parse::mark_for_await(item.clone())) {
        Ok(function) => function,
        Err(error) => {
            let mut out = error.to_compile_error();
            out.extend(item);
            return out;
        }
    };
    endpoint(
        args,
        function,
        Mode::Attribute,
        &quote::quote!(::sse_runtime),
    )
}

/// `($crate) fns..`: every fn of an `sse!` block.
fn block(input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let parse::Block {
        krate,
        items,
        error,
    } = parse::parse_block(input);
    let mut out = proc_macro2::TokenStream::new();
    for item in items {
        match item {
            parse::BlockItem::Endpoint { args, function } => {
                out.extend(endpoint(args, *function, Mode::Block, &krate));
            }
            parse::BlockItem::Rejected { errors, item } => {
                out.extend(errors.into_compile_errors());
                out.extend(item);
            }
        }
    }
    if let Some(error) = error {
        out.extend(error.to_compile_error());
    }
    out
}

/// One endpoint: its handler, or its errors next to a stand-in with the same signature.
fn endpoint(
    args: proc_macro2::TokenStream,
    function: syn::ItemFn,
    mode: Mode,
    default_krate: &proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let args = match syn::parse2::<parse::Args>(args) {
        Ok(args) => args,
        Err(error) => {
            let mut out = error.to_compile_error();
            out.extend(expand::fallback(&function, default_krate));
            return out;
        }
    };
    match validate::validate(args, function.clone(), mode, default_krate) {
        Ok(endpoint) => expand::expand(endpoint),
        Err(invalid) => {
            let mut out = invalid.errors.into_compile_errors();
            out.extend(expand::fallback(&function, &invalid.krate));
            out
        }
    }
}
