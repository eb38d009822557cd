//! `#[vmap]`: parse -> validate -> expand. The function stays as written; a companion struct
//! of the same name carries `f::vmap`, whose mapped arguments and outputs have the batch dim
//! `B` inserted at their axis. The batched types are computed by rustc through the traits
//! `UnbatchAt` (arguments: infers `B` and checks the example type) and `OutSpec`/`BatchAt`
//! (outputs), so a wrong shape or mismatched batch sizes are compile errors.

use crate::jit::{analyze, Arg, ArgKind};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, Lit, ReturnType, Type};

/// One in_axes / out_axes entry: mapped at an axis, or not mapped (`None`).
#[derive(Clone)]
pub(crate) enum Axis {
    Mapped(usize, Span),
    None(Span),
}

impl Axis {
    pub(crate) fn span(&self) -> Span {
        match self {
            Axis::Mapped(_, s) | Axis::None(s) => *s,
        }
    }
}

/// An axes option: one entry for everything, or a tuple of entries.
pub(crate) enum Axes {
    All(Axis),
    Each(Vec<Axis>, Span),
}

fn parse_axis(e: &Expr) -> syn::Result<Axis> {
    match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Int(i) => Ok(Axis::Mapped(i.base10_parse()?, i.span())),
            other => Err(syn::Error::new(
                other.span(),
                "an axis is a non-negative integer or `None`",
            )),
        },
        Expr::Path(p) if p.path.is_ident("None") => Ok(Axis::None(p.span())),
        Expr::Paren(p) => parse_axis(&p.expr),
        other => Err(syn::Error::new(
            other.span(),
            "an axis is a non-negative integer or `None`",
        )),
    }
}

/// Parses `0`, `None` or `(None, 0, 1)`.
pub(crate) fn parse_axes(e: &Expr) -> syn::Result<Axes> {
    match e {
        Expr::Tuple(t) => Ok(Axes::Each(
            t.elems.iter().map(parse_axis).collect::<syn::Result<_>>()?,
            t.span(),
        )),
        other => Ok(Axes::All(parse_axis(other)?)),
    }
}

/// The out_axes spec as a type (`Ax<0>`, `NoAx`, tuples of them) and as a value.
pub(crate) fn spec_tokens(axes: &Axes) -> (TokenStream, TokenStream) {
    let rt = quote!(::ferrax::__rt);
    let one = |a: &Axis| match a {
        Axis::Mapped(n, _) => (quote!(#rt::Ax<#n>), quote!(#rt::Ax::<#n>)),
        Axis::None(_) => (quote!(#rt::NoAx), quote!(#rt::NoAx)),
    };
    match axes {
        Axes::All(a) => one(a),
        Axes::Each(v, _) => {
            let (t, e): (Vec<_>, Vec<_>) = v.iter().map(one).unzip();
            (quote!((#(#t,)*)), quote!((#(#e,)*)))
        }
    }
}

struct Options {
    in_axes: Option<Axes>,
    out_axes: Option<Axes>,
}

fn parse_options(attr: TokenStream, errors: &mut Vec<syn::Error>) -> Options {
    let mut in_axes = None;
    let mut out_axes = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("in_axes") {
            in_axes = Some(parse_axes(&meta.value()?.parse::<Expr>()?)?);
            Ok(())
        } else if meta.path.is_ident("out_axes") {
            out_axes = Some(parse_axes(&meta.value()?.parse::<Expr>()?)?);
            Ok(())
        } else {
            Err(meta.error(
                "unknown #[vmap] option; supported: `in_axes = (None, 0, ...)`, `out_axes = 0`",
            ))
        }
    });
    if let Err(e) = parser.parse2(attr) {
        errors.push(e);
    }
    Options { in_axes, out_axes }
}

/// The owned type of an argument: `&T` and `T` both give `T`.
fn owned(ty: &Type) -> &Type {
    match ty {
        Type::Reference(r) => &r.elem,
        t => t,
    }
}

/// Resolves in_axes against the arguments: one axis (or `None`) per argument. Checks the
/// count and that only trees are mapped; `&mut` arguments cannot be batched at all.
fn resolve_in_axes(
    args: &[Arg],
    in_axes: Option<Axes>,
    fn_span: Span,
    errors: &mut Vec<syn::Error>,
) -> Vec<Option<usize>> {
    let per_arg: Vec<Axis> = match in_axes {
        None => args
            .iter()
            .map(|a| match a.kind {
                ArgKind::Static => Axis::None(a.name.span()),
                _ => Axis::Mapped(0, a.name.span()),
            })
            .collect(),
        Some(Axes::All(a)) => args
            .iter()
            .map(|arg| match (&a, &arg.kind) {
                (Axis::Mapped(..), ArgKind::Static) => Axis::None(a.span()),
                _ => a.clone(),
            })
            .collect(),
        Some(Axes::Each(v, span)) => {
            if v.len() != args.len() {
                errors.push(syn::Error::new(
                    span,
                    format!(
                        "in_axes has {} entries but the function has {} arguments: give one axis (or `None`) per argument",
                        v.len(),
                        args.len()
                    ),
                ));
                return vec![None; args.len()];
            }
            v
        }
    };
    let mut out = Vec::with_capacity(args.len());
    for (a, ax) in args.iter().zip(&per_arg) {
        match (&a.kind, ax) {
            (ArgKind::TreeMut, _) => errors.push(syn::Error::new(
                a.name.span(),
                format!(
                    "#[vmap] cannot batch `&mut` argument `{}`: take it by `&` and return the new value",
                    a.name
                ),
            )),
            (ArgKind::Static, Axis::Mapped(_, s)) => errors.push(syn::Error::new(
                *s,
                format!(
                    "`{}` is a static (non-tree) argument and cannot be mapped: its in_axes entry must be `None`",
                    a.name
                ),
            )),
            _ => {}
        }
        out.push(match ax {
            Axis::Mapped(n, _) => Some(*n),
            Axis::None(_) => None,
        });
    }
    if errors.is_empty() && out.iter().all(Option::is_none) {
        errors.push(syn::Error::new(
            fn_span,
            "#[vmap] needs at least one mapped argument: give an in_axes entry that is an axis",
        ));
    }
    out
}

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Vec::new();
    let opts = parse_options(attr, &mut errors);
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let e = syn::Error::new(
                e.span(),
                "#[vmap] applies to functions: `fn name(args) -> Ret { ... }`",
            );
            let ce = e.to_compile_error();
            return quote! { #ce #item };
        }
    };
    let func = crate::rewrite::rewrite_fn(func);
    for a in &func.attrs {
        let last = a.path().segments.last().map(|s| s.ident.to_string());
        if matches!(last.as_deref(), Some("jit" | "grad")) {
            errors.push(syn::Error::new(
                a.span(),
                "#[vmap] and this attribute both generate the companion of the same name: \
                 compose them with `fx::jit!` / `fx::grad!` instead",
            ));
        }
    }
    let args = analyze(&func.sig, &[], &mut errors);
    let ret_ty = match &func.sig.output {
        ReturnType::Default => {
            errors.push(syn::Error::new(
                func.sig.ident.span(),
                "#[vmap] needs an output to batch: add `-> Ret` (a tensor or a tree)",
            ));
            None
        }
        ReturnType::Type(_, t) => Some((**t).clone()),
    };
    let axes = resolve_in_axes(&args, opts.in_axes, func.sig.ident.span(), &mut errors);
    if !errors.is_empty() {
        let mut err = errors.remove(0);
        for e in errors {
            err.combine(e);
        }
        let ce = err.to_compile_error();
        return quote! { #ce #func };
    }
    let out_axes = opts
        .out_axes
        .unwrap_or(Axes::All(Axis::Mapped(0, Span::call_site())));
    emit(&func, &args, &axes, &ret_ty.expect("checked"), &out_axes)
}

fn emit(
    func: &ItemFn,
    args: &[Arg],
    axes: &[Option<usize>],
    ret_ty: &Type,
    out_axes: &Axes,
) -> TokenStream {
    let rt = quote!(::ferrax::__rt);
    let vis = &func.vis;
    let sig = &func.sig;
    let name = &sig.ident;
    let name_str = name.to_string();
    let (_, ty_generics, where_clause) = sig.generics.split_for_impl();
    let turbofish = ty_generics.as_turbofish();

    // Generic params: the user's, then the batch dim and one per mapped argument.
    let mut generics = sig.generics.clone();
    generics.params.push(syn::parse_quote!(__B: #rt::Dim));
    let mut preds: Vec<TokenStream> = Vec::new();
    let mut params = Vec::new();
    let mut record = Vec::new();
    let mut examples = Vec::new();
    let mut call = Vec::new();
    for (a, ax) in args.iter().zip(axes) {
        let n = &a.name;
        let e = format_ident!("__ex_{}", n);
        let by_ref = matches!(a.kind, ArgKind::TreeRef);
        let as_ref = if by_ref { quote!(#n) } else { quote!(&#n) };
        match (ax, &a.kind) {
            (_, ArgKind::Static) => {
                let ty = &a.ty;
                params.push(quote!(#n: #ty));
                call.push(quote!(#n));
            }
            (Some(axis), _) => {
                let x = format_ident!("__X_{}", n);
                let ex_ty = owned(&a.ty);
                generics.params.push(syn::parse_quote!(#x));
                preds.push(quote!(#x: #rt::UnbatchAt<#axis, Example = #ex_ty, BatchDim = __B>));
                params.push(if by_ref {
                    quote!(#n: &#x)
                } else {
                    quote!(#n: #x)
                });
                record.push(quote!(__call.mapped(#as_ref, #axis);));
                examples.push(quote!(let #e = __ex.mapped::<#axis, _>(#as_ref)?;));
                call.push(if by_ref { quote!(&#e) } else { quote!(#e) });
            }
            (None, _) => {
                let ty = &a.ty;
                params.push(quote!(#n: #ty));
                record.push(quote!(__call.unmapped(#as_ref);));
                examples.push(quote!(let #e = __ex.unmapped(#as_ref)?;));
                call.push(if by_ref { quote!(&#e) } else { quote!(#e) });
            }
        }
    }
    let (spec_ty, spec_val) = spec_tokens(out_axes);
    preds.push(quote!(#spec_ty: #rt::OutSpec<#ret_ty, __B>));
    let user_preds = where_clause.map(|w| {
        let p = &w.predicates;
        quote!(#p,)
    });
    let (impl_generics, _, _) = generics.split_for_impl();
    // `split_for_impl` prints `<...>` with bounds: what a method's generic list needs.
    quote! {
        #func

        /// Companions generated by `#[vmap]`: the batched form of the function of the same name.
        #[allow(non_camel_case_types)]
        #vis struct #name {}

        #[allow(dead_code, clippy::too_many_arguments, clippy::type_complexity, non_camel_case_types)]
        impl #name {
            /// The function mapped over a batch: mapped arguments and outputs carry the batch
            /// dim `B` at their axis (types checked by rustc). The body is traced once on one
            /// example and batched primitive by primitive; works eagerly and when staged.
            pub fn vmap #impl_generics (#(#params),*) -> <#spec_ty as #rt::OutSpec<#ret_ty, __B>>::Out
            where #user_preds #(#preds),*
            {
                let mut __call = #rt::VmapCall::new(#name_str);
                #(#record)*
                match __call.run(
                    |__ex: &mut #rt::Examples| {
                        #(#examples)*
                        ::std::result::Result::Ok(#name #turbofish(#(#call),*))
                    },
                    #spec_val,
                    ::std::marker::PhantomData::<__B>,
                ) {
                    ::std::result::Result::Ok(v) => v,
                    ::std::result::Result::Err(e) => ::std::panic!("vmap `{}`: {}", #name_str, e),
                }
            }
        }
    }
}
