//! A fn that returns its stream (`-> impl Stream<Item = T>`): what its return type says.
//!
//! The macro sees syntax only, so the return type decides everything: whether the fn returns a
//! stream at all, whether its items are `Result`s (then an `Err` ends the stream as an error),
//! and which of the declared bounds the expansion checks on the body's value.

use proc_macro2::Span;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{
    AngleBracketedGenericArguments, GenericArgument, PathArguments, PathSegment, TraitBound, Type,
    TypeParamBound,
};

use crate::ctxt::Ctxt;

/// The return type of a fn that returns its stream.
pub(crate) struct StreamReturn {
    /// The type as written.
    pub(crate) ty: Type,
    /// Whether the type names `impl` (the body's value cannot be annotated with it; the
    /// expansion checks `checks` on it instead).
    pub(crate) opaque: bool,
    /// Whether its items are `Result`s (or it is a `TryStream`).
    pub(crate) fallible: bool,
    /// What the expansion checks on an opaque stream, in the order of the bounds.
    pub(crate) checks: Vec<Check>,
    /// The traits an opaque type names, without their arguments: the expansion names them in
    /// `use` declarations, so that their imports are used as they would be by a real return type.
    pub(crate) traits: Vec<syn::Path>,
}

/// A bound of an opaque return type, checked on the body's value.
pub(crate) enum Check {
    /// `Stream<Item = T>`: the items are `T`.
    Item(Box<Type>),
    /// `TryStream<Ok = T, Error = E>`: either may be missing (`_` then).
    TryItems {
        span: Span,
        ok: Option<Box<Type>>,
        error: Option<Box<Type>>,
    },
    /// `Sync` or `Unpin`: the name of the runtime's check, and the bound's span.
    Marker(&'static str, Span),
}

/// `Some` when `ty` is a stream the fn returns: `impl Stream<..>` or `impl TryStream<..>` (the
/// trait by any path whose last segment is its name), such a `dyn` inside `Pin`/`Box`, or a
/// named type whose name ends in `Stream`. `None` for anything else. Mistakes in the bounds are
/// recorded in `cx`.
pub(crate) fn classify(cx: &mut Ctxt, ty: &Type) -> Option<StreamReturn> {
    let opaque = mentions_impl(ty);
    let mut stream = StreamReturn {
        ty: ty.clone(),
        opaque,
        fallible: false,
        checks: Vec::new(),
        traits: if opaque { trait_paths(ty) } else { Vec::new() },
    };
    match shape(ty)? {
        Shape::Bounds(bounds) => read_bounds(cx, bounds, &mut stream),
        // A named stream: its items cannot be seen, so they are taken as events.
        Shape::Named => {}
    }
    if opaque && !matches!(unwrap_pointers(ty), Type::ImplTrait(_)) {
        cx.error_spanned_by(
            ty,
            "`impl` may only be the return type itself, `impl Stream<Item = T>`, or inside \
             `Pin<Box<..>>`: the attribute checks the body's stream against these bounds",
        );
    }
    Some(stream)
}

enum Shape<'a> {
    Bounds(&'a syn::punctuated::Punctuated<TypeParamBound, syn::Token![+]>),
    Named,
}

/// The type without the parentheses, `Pin`s and `Box`es around it.
fn unwrap_pointers(ty: &Type) -> &Type {
    match ty {
        Type::Paren(paren) => unwrap_pointers(&paren.elem),
        Type::Group(group) => unwrap_pointers(&group.elem),
        Type::Path(path) if path.qself.is_none() => {
            match path.path.segments.last().and_then(pointee) {
                Some(inner) => unwrap_pointers(inner),
                None => ty,
            }
        }
        _ => ty,
    }
}

/// The type argument of `Pin<P>` or `Box<T>`.
fn pointee(segment: &PathSegment) -> Option<&Type> {
    if segment.ident != "Pin" && segment.ident != "Box" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    match args.args.first() {
        Some(GenericArgument::Type(inner)) if args.args.len() == 1 => Some(inner),
        _ => None,
    }
}

fn shape(ty: &Type) -> Option<Shape<'_>> {
    match unwrap_pointers(ty) {
        Type::ImplTrait(bounds) => {
            has_stream_bound(&bounds.bounds).then_some(Shape::Bounds(&bounds.bounds))
        }
        Type::TraitObject(object) => {
            has_stream_bound(&object.bounds).then_some(Shape::Bounds(&object.bounds))
        }
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .filter(|last| last.ident.to_string().ends_with("Stream"))
            .map(|_| Shape::Named),
        _ => None,
    }
}

fn has_stream_bound(bounds: &syn::punctuated::Punctuated<TypeParamBound, syn::Token![+]>) -> bool {
    bounds.iter().any(|bound| {
        matches!(
            bound,
            TypeParamBound::Trait(bound)
                if trait_segment(bound).ident == "Stream" || trait_segment(bound).ident == "TryStream"
        )
    })
}

/// The last segment of a bound's path, which names the trait (a path has at least one).
fn trait_segment(bound: &TraitBound) -> &PathSegment {
    let segments = &bound.path.segments;
    &segments[segments.len() - 1]
}

/// Reads `Stream<Item = T>`, `TryStream<Ok = T, Error = E>` and the other bounds.
fn read_bounds(
    cx: &mut Ctxt,
    bounds: &syn::punctuated::Punctuated<TypeParamBound, syn::Token![+]>,
    stream: &mut StreamReturn,
) {
    let mut seen_stream: Option<&TraitBound> = None;
    for bound in bounds {
        let bound = match bound {
            TypeParamBound::Trait(bound) => bound,
            // A lifetime is implied: the response needs the stream to be `'static`. `use<..>`
            // says what an opaque type captures; the body's value is not opaque.
            TypeParamBound::Lifetime(_) | TypeParamBound::PreciseCapture(_) => continue,
            // A `dyn` type is the annotation of the body's value: rustc checks all of it.
            other if stream.opaque => {
                cx.error_spanned_by(other, UNCHECKED_BOUND);
                continue;
            }
            _ => continue,
        };
        let last = trait_segment(bound);
        match last.ident.to_string().as_str() {
            "Stream" | "TryStream" => {
                if let Some(first) = seen_stream {
                    cx.error_spanned_by(
                        bound,
                        format!(
                            "the stream is already declared as `{}`; keep one stream bound",
                            first.path.to_token_stream().to_string().replace(' ', "")
                        ),
                    );
                    continue;
                }
                seen_stream = Some(bound);
                let args = match &last.arguments {
                    PathArguments::AngleBracketed(args) => Some(args),
                    PathArguments::None => None,
                    PathArguments::Parenthesized(args) => {
                        cx.error_spanned_by(args, "a stream's bounds are written `<Item = T>`");
                        None
                    }
                };
                if last.ident == "Stream" {
                    read_stream(cx, args, stream);
                } else {
                    read_try_stream(cx, bound, args, stream);
                }
            }
            // The response needs a `Send` stream: `EventSourceResponse::new` checks it.
            "Send" => {}
            "Sync" => stream.checks.push(Check::Marker("sync", bound.span())),
            "Unpin" => stream.checks.push(Check::Marker("unpin", bound.span())),
            _ if stream.opaque => cx.error_spanned_by(bound, UNCHECKED_BOUND),
            _ => {}
        }
    }
}

const UNCHECKED_BOUND: &str = "the attribute cannot check this bound on the stream the body \
     returns, and the response does not need it; remove it (the bounds it knows are \
     `Stream<Item = T>`, `TryStream<Ok = T, Error = E>`, `Send`, `Sync`, `Unpin` and lifetimes)";

/// The associated types written in `<..>`: `(name, type)`, other arguments reported.
fn bindings<'a>(
    cx: &mut Ctxt,
    args: Option<&'a AngleBracketedGenericArguments>,
    names: &[&str],
) -> Vec<(String, &'a Type)> {
    let mut found = Vec::new();
    for arg in args.into_iter().flat_map(|args| &args.args) {
        match arg {
            GenericArgument::AssocType(assoc)
                if names.iter().any(|name| assoc.ident == name) && assoc.generics.is_none() =>
            {
                found.push((assoc.ident.to_string(), &assoc.ty));
            }
            other => cx.error_spanned_by(
                other,
                format!(
                    "expected {}",
                    names
                        .iter()
                        .map(|name| format!("`{name} = ..`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            ),
        }
    }
    found
}

fn read_stream(
    cx: &mut Ctxt,
    args: Option<&AngleBracketedGenericArguments>,
    stream: &mut StreamReturn,
) {
    let Some((_, item)) = bindings(cx, args, &["Item"]).into_iter().next() else {
        // `impl Stream` alone: the items are whatever the body's stream yields.
        return;
    };
    stream.fallible = is_result(item);
    // `Item = impl Trait` cannot be named in a check: the response checks `IntoEvent` itself.
    if !mentions_impl(item) {
        stream.checks.push(Check::Item(Box::new(item.clone())));
    }
}

fn read_try_stream(
    cx: &mut Ctxt,
    bound: &TraitBound,
    args: Option<&AngleBracketedGenericArguments>,
    stream: &mut StreamReturn,
) {
    stream.fallible = true;
    let mut ok = None;
    let mut error = None;
    for (name, ty) in bindings(cx, args, &["Ok", "Error"]) {
        if mentions_impl(ty) {
            continue;
        }
        if name == "Ok" {
            ok = Some(Box::new(ty.clone()));
        } else {
            error = Some(Box::new(ty.clone()));
        }
    }
    if ok.is_some() || error.is_some() {
        stream.checks.push(Check::TryItems {
            span: bound.span(),
            ok,
            error,
        });
    }
}

/// Whether an item type is a `Result` (a path whose last segment is `Result`: `io::Result<T>`
/// too, but not `SearchResult`, which may well be an event).
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Paren(paren) => is_result(&paren.elem),
        Type::Group(group) => is_result(&group.elem),
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == "Result"),
        _ => false,
    }
}

/// Whether `ty` names `impl` anywhere.
pub(crate) fn mentions_impl(ty: &Type) -> bool {
    crate::expand::mentions_impl(ty.to_token_stream())
}

/// `ty` as a person writes it, for messages: `impl Stream<Item = u32>`, not
/// `impl Stream < Item = u32 >`.
pub(crate) fn display(ty: &Type) -> String {
    let mut text = ty.to_token_stream().to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" :: ", "::"),
        (":: ", "::"),
        (" ,", ","),
    ] {
        text = text.replace(from, to);
    }
    text
}

/// Every trait named in `ty` (in `impl`, `dyn` and their nested bounds), without arguments.
pub(crate) fn trait_paths(ty: &Type) -> Vec<syn::Path> {
    struct Traits(Vec<syn::Path>);

    impl<'ast> syn::visit::Visit<'ast> for Traits {
        fn visit_trait_bound(&mut self, bound: &'ast TraitBound) {
            // The prelude's marker traits need no import.
            let prelude = bound.path.leading_colon.is_none()
                && bound.path.segments.len() == 1
                && ["Send", "Sync", "Unpin"]
                    .iter()
                    .any(|name| bound.path.segments[0].ident == name);
            if prelude {
                return;
            }
            let mut path = bound.path.clone();
            for segment in &mut path.segments {
                segment.arguments = PathArguments::None;
            }
            self.0.push(path);
            syn::visit::visit_trait_bound(self, bound);
        }
    }

    let mut traits = Traits(Vec::new());
    syn::visit::Visit::visit_type(&mut traits, ty);
    traits.0
}
