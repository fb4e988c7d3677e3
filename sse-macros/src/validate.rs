//! Validation: the options, the signature and the body, every mistake recorded in one `Ctxt`.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::visit_mut::VisitMut;
use syn::{
    Attribute, FnArg, GenericArgument, ItemFn, PatType, PathArguments, ReturnType, Signature, Stmt,
    Type, Visibility,
};

use crate::body::{BodyRewriter, StreamBody};
use crate::ctxt::Ctxt;
use crate::options::{Options, validate_options, value};
use crate::parse::Args;
use crate::stream::{self, StreamReturn};

/// A checked endpoint, ready to expand.
pub(crate) struct Endpoint {
    /// The path of `sse_runtime` (`::sse_runtime` or the `crate = "..."` override).
    pub(crate) krate: TokenStream,
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    /// The parameters that stay extractors.
    pub(crate) extractors: Vec<FnArg>,
    /// The `CloseHooks` parameter, bound inside the body rather than extracted.
    pub(crate) close_hooks: Option<PatType>,
    /// What the fn returns, and so what its body is.
    pub(crate) returns: Returns,
    /// The body: for a generator, with every `yield` converted through `IntoEvent`.
    pub(crate) stmts: Vec<Stmt>,
    /// The span of the body's braces, from `{` to `}`.
    pub(crate) body_span: Span,
    /// Whether the body yields at all (a stream that never yields needs its item type named).
    pub(crate) yields: bool,
    pub(crate) options: Options,
}

/// What an endpoint's fn returns, which decides what its body is.
pub(crate) enum Returns {
    /// Nothing: the body yields its events, and the stream ends with the body.
    Nothing,
    /// `Result<(), E>`, as written: the body yields its events and may end with an error.
    Result(Box<Type>),
    /// A stream (`-> impl Stream<Item = T>`): the body is ordinary Rust that returns it.
    Stream(Box<StreamReturn>),
}

impl Returns {
    /// The `Result<(), E>` of a fallible generator body.
    pub(crate) fn result_type(&self) -> Option<&Type> {
        match self {
            Returns::Result(ty) => Some(ty),
            Returns::Nothing | Returns::Stream(_) => None,
        }
    }
}

/// An endpoint with mistakes: every error, and the runtime path its stand-in names.
pub(crate) struct Invalid {
    pub(crate) errors: Ctxt,
    pub(crate) krate: TokenStream,
}

/// How the fn reached the macro.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `#[sse_endpoint] async fn ..`: rustc parsed the fn first.
    Attribute,
    /// Inside `sse! { .. }`: the fn arrived as tokens.
    Block,
}

/// Whether this toolchain may accept `yield` written directly in a fn body (a nightly with
/// `#![feature(yield_expr)]`). Stable rustc rejects it while parsing, before any attribute runs.
#[rustversion::nightly]
const YIELD_SYNTAX_MAY_BE_ENABLED: bool = true;
#[rustversion::not(nightly)]
const YIELD_SYNTAX_MAY_BE_ENABLED: bool = false;

/// The path of the runtime crate that generated code names everything through: the
/// `crate = "..."` override, else `default`.
pub(crate) fn crate_path(options: &Options, default: &TokenStream) -> TokenStream {
    match value(&options.krate) {
        Some(path) => path.to_token_stream(),
        None => default.clone(),
    }
}

/// Checks everything; on success the endpoint, otherwise the context holding every error.
pub(crate) fn validate(
    args: Args,
    function: ItemFn,
    mode: Mode,
    default_krate: &TokenStream,
) -> Result<Endpoint, Invalid> {
    let mut cx = Ctxt::new();
    let options = validate_options(&mut cx, args);
    let krate = crate_path(&options, default_krate);
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;

    check_qualifiers(&mut cx, &sig);
    let (extractors, close_hooks) = check_params(&mut cx, &sig);
    let returns = check_return(&mut cx, &sig);

    if let Some(on_error) = options.on_error.as_ref().map(|o| &o.key) {
        match &returns {
            Returns::Nothing => cx.error_spanned_by(
                on_error,
                format!(
                    "`on_error` maps the error of a fn returning `Result<(), E>`, but `{}` \
                     returns nothing; declare `-> Result<(), YourError>` and use `?`, or remove \
                     `on_error`",
                    sig.ident
                ),
            ),
            Returns::Stream(stream) if !stream.fallible => cx.error_spanned_by(
                on_error,
                format!(
                    "`on_error` maps the errors of a stream of `Result`s, but `{}` returns `{}`, \
                     a stream of events as the attribute reads it; declare \
                     `-> impl Stream<Item = Result<T, YourError>>` (or \
                     `impl TryStream<Ok = T, Error = YourError>`), or remove `on_error`",
                    sig.ident,
                    stream::display(&stream.ty)
                ),
            ),
            Returns::Result(_) | Returns::Stream(_) => {}
        }
    }

    let body_span = block.brace_token.span.join();
    let mut stmts = block.stmts;
    let yields = if let Returns::Stream(_) = &returns {
        let mut checker = StreamBody::new(&mut cx, &krate, &sig.ident);
        for stmt in &mut stmts {
            checker.visit_stmt_mut(stmt);
        }
        false
    } else {
        let mut rewriter = BodyRewriter::new(&mut cx, &krate, returns.result_type());
        for stmt in &mut stmts {
            rewriter.visit_stmt_mut(stmt);
        }
        let first_bare_yield = rewriter.first_bare_yield;
        let yields = rewriter.yields > 0;
        if mode == Mode::Attribute
            && !YIELD_SYNTAX_MAY_BE_ENABLED
            && let Some(span) = first_bare_yield
        {
            cx.error_at(
                span,
                "stable Rust rejects `yield` written directly in a fn body, before any attribute \
                 runs (hence \"yield syntax is experimental\"): put the fn inside \
                 `sse_runtime::sse! { .. }`, keeping `#[sse_endpoint(..)]` on it, or return the \
                 stream instead, `-> impl Stream<Item = T>`, with the `yield`s inside \
                 `async_stream::stream! { .. }`",
            );
        }
        yields
    };

    if cx.has_errors() {
        return Err(Invalid { errors: cx, krate });
    }
    Ok(Endpoint {
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
    })
}

fn check_qualifiers(cx: &mut Ctxt, sig: &Signature) {
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            format!(
                "an `#[sse_endpoint]` fn must be `async`: write `async fn {}`",
                sig.ident
            ),
        );
    }
    if let Some(constness) = &sig.constness {
        cx.error_spanned_by(
            constness,
            "an `#[sse_endpoint]` fn cannot be `const`; remove `const`",
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        cx.error_spanned_by(
            unsafety,
            "an `#[sse_endpoint]` fn cannot be `unsafe`: axum cannot call an unsafe fn as a \
             handler; remove `unsafe` and use an `unsafe` block inside",
        );
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "an `#[sse_endpoint]` fn cannot have an ABI; remove it");
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "an `#[sse_endpoint]` fn cannot be variadic");
    }
}

/// Splits the parameters into extractors and the optional `CloseHooks` parameter.
fn check_params(cx: &mut Ctxt, sig: &Signature) -> (Vec<FnArg>, Option<PatType>) {
    let mut extractors = Vec::new();
    let mut close_hooks: Option<PatType> = None;
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => cx.error_spanned_by(
                receiver,
                "an `#[sse_endpoint]` fn cannot take `self`: axum handlers are plain fns. Make it \
                 an associated fn and take what you need from `self` through an extractor, e.g. \
                 `State(app): State<AppState>`",
            ),
            FnArg::Typed(typed) if is_close_hooks(&typed.ty) => {
                if close_hooks.is_some() {
                    cx.error_spanned_by(
                        typed,
                        "only one `CloseHooks` parameter is allowed; clone the first one \
                         (clones share their hooks)",
                    );
                } else {
                    close_hooks = Some(typed.clone());
                }
            }
            FnArg::Typed(typed) => {
                if let Type::Reference(reference) = &*typed.ty
                    && is_close_hooks(&reference.elem)
                {
                    cx.error_spanned_by(
                        &typed.ty,
                        "take `CloseHooks` by value: write `hooks: CloseHooks`",
                    );
                }
                extractors.push(input.clone());
            }
        }
    }
    (extractors, close_hooks)
}

/// Whether `ty` names `CloseHooks` (by its last path segment).
pub(crate) fn is_close_hooks(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => {
            path.qself.is_none()
                && path
                    .path
                    .segments
                    .last()
                    .is_some_and(|last| last.ident == "CloseHooks" && last.arguments.is_none())
        }
        Type::Group(group) => is_close_hooks(&group.elem),
        Type::Paren(paren) => is_close_hooks(&paren.elem),
        _ => false,
    }
}

/// What the fn returns: nothing (or `()`), `Result<(), E>`, or a stream.
fn check_return(cx: &mut Ctxt, sig: &Signature) -> Returns {
    let ReturnType::Type(_, ty) = &sig.output else {
        return Returns::Nothing;
    };
    if matches!(&**ty, Type::Tuple(tuple) if tuple.elems.is_empty()) {
        return Returns::Nothing;
    }
    let result = match &**ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .filter(|last| last.ident.to_string().ends_with("Result")),
        _ => None,
    };
    let Some(result) = result else {
        if let Some(stream) = stream::classify(cx, ty) {
            return Returns::Stream(Box::new(stream));
        }
        cx.error_spanned_by(
            ty,
            "an `#[sse_endpoint]` fn returns nothing (its events are yielded), `Result<(), E>` \
             (to use `?`), or the stream of its events, `impl Stream<Item = T>`; the attribute \
             makes it return the `EventSourceResponse`. Change the return type (a named type \
             must have a name ending in `Result`, or in `Stream` for a stream)",
        );
        return Returns::Nothing;
    };
    if let PathArguments::AngleBracketed(args) = &result.arguments
        && let Some(GenericArgument::Type(ok)) = args.args.first()
        && !matches!(ok, Type::Tuple(tuple) if tuple.elems.is_empty())
    {
        cx.error_spanned_by(
            ok,
            "the `Ok` type of an `#[sse_endpoint]` fn must be `()`: its events are yielded, \
             not returned. Write `Result<(), E>`",
        );
        return Returns::Nothing;
    }
    Returns::Result(ty.clone())
}
