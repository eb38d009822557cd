//! `#[grad]`: parse -> validate -> expand. The function stays as written; a companion
//! struct of the same name carries `f::grad`, `f::value_and_grad`, `f::vjp`, `f::jvp`,
//! `f::hessian` and `f::stats`, whose gradient types are the differentiated arguments' own
//! types (computed here, so rustc checks them). `value_and_grad` is staged and cached like
//! `#[jit]`.

use crate::jit::{analyze, key_generic_tokens, record_tokens, traced_tokens, Arg, ArgKind};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, ReturnType, Token, Type};

struct Options {
    wrt: Vec<Ident>,
    has_aux: bool,
}

fn parse_options(attr: TokenStream, errors: &mut Vec<syn::Error>) -> Options {
    let mut wrt = Vec::new();
    let mut has_aux = false;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("wrt") {
            let value = meta.value()?;
            if value.peek(syn::token::Paren) {
                let content;
                syn::parenthesized!(content in value);
                wrt.extend(Punctuated::<Ident, Token![,]>::parse_terminated(&content)?);
            } else {
                wrt.push(value.parse()?);
            }
            Ok(())
        } else if meta.path.is_ident("has_aux") {
            has_aux = true;
            Ok(())
        } else {
            Err(meta.error(
                "unknown #[grad] option; supported: `wrt = name`, `wrt = (a, b)`, `has_aux`",
            ))
        }
    });
    if let Err(e) = parser.parse2(attr) {
        errors.push(e);
    }
    Options { wrt, has_aux }
}

const INT_TYPES: &[&str] = &[
    "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize", "bool",
];

fn is_int_ident(ty: &Type) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => p
            .path
            .get_ident()
            .is_some_and(|i| INT_TYPES.contains(&i.to_string().as_str())),
        Type::Group(g) => is_int_ident(&g.elem),
        Type::Paren(p) => is_int_ident(&p.elem),
        _ => false,
    }
}

/// Why a differentiated argument's type has no gradient, when the syntax shows it: an
/// integer/bool scalar, or a `Tensor<S, E>` whose element type is an integer/bool.
/// (Generic and aliased types are not seen here; their integer leaves get zero gradients.)
fn non_float_type(ty: &Type) -> Option<&'static str> {
    if is_int_ident(ty) {
        return Some("is an integer/bool scalar, not a float tensor or tree");
    }
    if let Type::Path(p) = ty {
        let last = p.path.segments.last()?;
        if last.ident == "Tensor" {
            if let syn::PathArguments::AngleBracketed(ab) = &last.arguments {
                let elem = ab.args.iter().nth(1);
                if let Some(syn::GenericArgument::Type(e)) = elem {
                    if is_int_ident(e) {
                        return Some("has integer/bool elements, not float ones");
                    }
                }
            }
        }
    }
    None
}

/// A type as a user writes it (`&Tensor<(C<3>,), i32>`), for messages.
fn type_text(ty: &Type) -> String {
    let mut s = quote!(#ty).to_string();
    for (a, b) in [
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        (" :: ", "::"),
        ("& ", "&"),
        ("( ", "("),
        (" )", ")"),
    ] {
        s = s.replace(a, b);
    }
    s
}

/// The owned type of a differentiated argument: `&T` and `T` both give `T`.
fn owned(ty: &Type) -> &Type {
    match ty {
        Type::Reference(r) => &r.elem,
        t => t,
    }
}

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Vec::new();
    let opts = parse_options(attr, &mut errors);
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let e = syn::Error::new(
                e.span(),
                "#[grad] applies to functions returning a scalar `Tensor<()>`",
            );
            let ce = e.to_compile_error();
            return quote! { #ce #item };
        }
    };
    let func = crate::rewrite::rewrite_fn(func);
    let args = analyze(&func.sig, &[], &mut errors);
    let ret_ty = match &func.sig.output {
        ReturnType::Default => {
            errors.push(syn::Error::new(
                func.sig.ident.span(),
                "#[grad] needs a scalar output to differentiate: add `-> Tensor<()>` (or `-> (Tensor<()>, Aux)` with `has_aux`)",
            ));
            None
        }
        ReturnType::Type(_, t) => Some((**t).clone()),
    };
    let mut aux_ty = None;
    if opts.has_aux {
        match &ret_ty {
            Some(Type::Tuple(t)) if t.elems.len() == 2 => aux_ty = Some(t.elems[1].clone()),
            Some(t) => errors.push(syn::Error::new(
                t.span(),
                "with `has_aux` the function must return `(loss, aux)`: a scalar tensor and a tree",
            )),
            None => {}
        }
    }
    // Which arguments are differentiated: the named ones, or the first.
    let mut wrt_idx = Vec::new();
    if opts.wrt.is_empty() {
        if !args.is_empty() {
            wrt_idx.push(0);
        }
    } else {
        for w in &opts.wrt {
            match args.iter().position(|a| a.name == *w) {
                Some(i) => wrt_idx.push(i),
                None => errors.push(syn::Error::new(
                    w.span(),
                    format!("`{w}` is not an argument of this function"),
                )),
            }
        }
    }
    for &i in &wrt_idx {
        let a: &Arg = &args[i];
        if let Some(why) = non_float_type(owned(&a.ty)) {
            let ty = &a.ty;
            errors.push(syn::Error::new(
                a.name.span(),
                format!(
                    "cannot differentiate with respect to `{}`: its type `{}` {why}; only float tensors and trees of them have gradients (pass it without `wrt`, or convert it to a float tensor)",
                    a.name,
                    type_text(ty),
                ),
            ));
            continue;
        }
        match a.kind {
            ArgKind::Static => errors.push(syn::Error::new(
                a.name.span(),
                format!("cannot differentiate with respect to `{}`: it is a static (non-tensor) argument", a.name),
            )),
            ArgKind::TreeMut => errors.push(syn::Error::new(
                a.name.span(),
                format!("cannot differentiate with respect to `{}`: take it by `&` (gradients do not mutate)", a.name),
            )),
            _ => {}
        }
    }
    if wrt_idx.is_empty() && errors.is_empty() {
        errors.push(syn::Error::new(
            func.sig.ident.span(),
            "#[grad] needs at least one argument to differentiate",
        ));
    }
    if !errors.is_empty() {
        let mut err = errors.remove(0);
        for e in errors {
            err.combine(e);
        }
        let ce = err.to_compile_error();
        return quote! { #ce #func };
    }
    emit(&func, &args, &wrt_idx, ret_ty.expect("checked"), aux_ty)
}

fn emit(
    func: &ItemFn,
    args: &[Arg],
    wrt: &[usize],
    ret_ty: Type,
    aux_ty: Option<Type>,
) -> TokenStream {
    let rt = quote!(::ferrax::__rt);
    let vis = &func.vis;
    let sig = &func.sig;
    let name = &sig.ident;
    let name_str = name.to_string();
    let generics = &sig.generics;
    let (_, ty_generics, where_clause) = generics.split_for_impl();
    let turbofish = ty_generics.as_turbofish();
    // Without a trailing comma, so companions can append parameters (`jvp`'s tangents).
    let input_list = sig.inputs.iter();
    let inputs = quote!(#(#input_list),*);
    let key_generics = key_generic_tokens(generics);
    let record = record_tokens(args);
    let (traced, setup, _) = traced_tokens(args);

    // The gradient type and the expressions that build the differentiated tree.
    let wrt_tys: Vec<&Type> = wrt.iter().map(|&i| owned(&args[i].ty)).collect();
    let grad_ty = if wrt.len() == 1 {
        let t = wrt_tys[0];
        quote!(#t)
    } else {
        quote!((#(#wrt_tys),*))
    };
    // Builds `&W` from a set of per-argument expressions (`&T` values).
    let w_expr = |refs: Vec<TokenStream>| -> TokenStream {
        if refs.len() == 1 {
            let r = &refs[0];
            quote!(#r)
        } else {
            quote!(&(#(#rt::tree_clone(#refs)),*))
        }
    };
    // Call arguments of the user's function inside the differentiated closure `|__w| ...`,
    // given how non-differentiated args are spelled (`outer`).
    let call_args = |outer: &dyn Fn(usize) -> TokenStream| -> Vec<TokenStream> {
        args.iter()
            .enumerate()
            .map(|(i, a)| {
                if let Some(k) = wrt.iter().position(|&w| w == i) {
                    let wref = if wrt.len() == 1 {
                        quote!(__w)
                    } else {
                        let k = syn::Index::from(k);
                        quote!(&__w.#k)
                    };
                    match a.kind {
                        ArgKind::TreeOwned => quote!(#rt::tree_clone(#wref)),
                        _ => wref,
                    }
                } else {
                    outer(i)
                }
            })
            .collect()
    };
    // Eager / inlined spelling: the caller's own arguments.
    let inline_refs: Vec<TokenStream> = wrt
        .iter()
        .map(|&i| {
            let n = &args[i].name;
            match args[i].kind {
                ArgKind::TreeOwned => quote!(&#n),
                _ => quote!(#n),
            }
        })
        .collect();
    let inline_w = w_expr(inline_refs);
    let inline_call = call_args(&|i| {
        let n = &args[i].name;
        match args[i].kind {
            ArgKind::TreeOwned | ArgKind::Static => quote!(::std::clone::Clone::clone(&#n)),
            _ => quote!(#n),
        }
    });
    // Traced spelling: the `__traced_*` copies made by `Tracing::input`.
    let traced_refs: Vec<TokenStream> = wrt
        .iter()
        .map(|&i| {
            let t = &traced[i];
            quote!(&#t)
        })
        .collect();
    let traced_w = w_expr(traced_refs);
    let traced_call = call_args(&|i| {
        let t = &traced[i];
        match args[i].kind {
            ArgKind::TreeRef => quote!(&#t),
            ArgKind::TreeMut => quote!(&mut #t),
            ArgKind::TreeOwned | ArgKind::Static => quote!(::std::clone::Clone::clone(&#t)),
        }
    });
    let arg_names: Vec<&Ident> = args.iter().map(|a| &a.name).collect();
    let tangent_params: Vec<TokenStream> = wrt
        .iter()
        .zip(&wrt_tys)
        .map(|(&i, t)| {
            let id = format_ident!("tangent_{}", args[i].name);
            quote!(#id: &#t)
        })
        .collect();
    let tangent_names: Vec<Ident> = wrt
        .iter()
        .map(|&i| format_ident!("tangent_{}", args[i].name))
        .collect();
    let tangent_w = w_expr(tangent_names.iter().map(|t| quote!(#t)).collect());
    let grad_ret = match &aux_ty {
        Some(a) => quote!((#grad_ty, #a)),
        None => quote!(#grad_ty),
    };
    let grad_body = match &aux_ty {
        Some(_) => {
            quote! { let ((_, __aux), __g) = Self::value_and_grad(#(#arg_names),*); (__g, __aux) }
        }
        None => quote! { Self::value_and_grad(#(#arg_names),*).1 },
    };
    // The differentiated output: the whole result, or its first element with `has_aux`.
    let loss_ty = match (&aux_ty, &ret_ty) {
        (Some(_), Type::Tuple(t)) => {
            let first = &t.elems[0];
            quote!(#first)
        }
        _ => quote!(#ret_ty),
    };
    let panic_on = quote! {
        ::std::result::Result::Err(e) => ::std::panic!("grad `{}`: {}", #name_str, e),
    };
    quote! {
        #func

        /// Companions generated by `#[grad]`: gradients of the function of the same name.
        #[allow(non_camel_case_types)]
        #vis struct #name {}

        #[allow(dead_code, unused_mut, clippy::too_many_arguments, clippy::unused_unit)]
        impl #name {
            #[doc(hidden)]
            fn __ferrax_scalar_check #generics (__loss: &#loss_ty) #where_clause {
                #rt::assert_scalar_loss(__loss)
            }
            #[doc(hidden)]
            pub fn __ferrax_cache() -> &'static #rt::JitCache {
                static CACHE: #rt::JitCache = #rt::JitCache::new(#name_str);
                &CACHE
            }
            /// Cache counters of the staged `value_and_grad`.
            pub fn stats() -> #rt::JitStats {
                Self::__ferrax_cache().stats()
            }
            /// The value and the gradient with respect to the differentiated arguments
            /// (same types as those arguments). Staged and cached per argument shapes.
            pub fn value_and_grad #generics (#inputs) -> (#ret_ty, #grad_ty) #where_clause {
                let mut __args = #rt::JitArgs::new();
                #(#key_generics)*
                #(#record)*
                if __args.should_inline() {
                    Self::__ferrax_cache().note_inlined();
                    return match #rt::value_and_grad(#inline_w, |__w| #name #turbofish(#(#inline_call),*)) {
                        ::std::result::Result::Ok(v) => v,
                        #panic_on
                    };
                }
                match Self::__ferrax_cache().call(__args, |__t: &mut #rt::Tracing| {
                    #(#setup)*
                    #rt::value_and_grad(#traced_w, |__w| #name #turbofish(#(#traced_call),*))
                }) {
                    ::std::result::Result::Ok((v, _)) => v,
                    #panic_on
                }
            }
            /// The gradient with respect to the differentiated arguments.
            pub fn grad #generics (#inputs) -> #grad_ret #where_clause {
                #grad_body
            }
            /// The value and a pullback mapping a cotangent of the value to cotangents of
            /// the differentiated arguments (run eagerly, or inlined when tracing).
            pub fn vjp #generics (#inputs) -> (#ret_ty, #rt::Pullback<#grad_ty>) #where_clause {
                match #rt::vjp(#inline_w, |__w| #name #turbofish(#(#inline_call),*)) {
                    ::std::result::Result::Ok(v) => v,
                    #panic_on
                }
            }
            /// The Hessian of the loss with respect to the differentiated arguments
            /// (`ad::hessian_tree`): for one tensor argument of shape `S`, an array of shape
            /// `S ++ S` (as `jax.hessian`); otherwise the `n x n` Hessian over the float
            /// leaves concatenated in leaf order. Run eagerly, or inlined when tracing.
            pub fn hessian #generics (#inputs) -> #rt::Array #where_clause {
                match #rt::hessian_tree(#inline_w, |__w| #name #turbofish(#(#inline_call),*)) {
                    ::std::result::Result::Ok(v) => v,
                    #panic_on
                }
            }
            /// The value and its directional derivative along the given tangents (one per
            /// differentiated argument, same types).
            pub fn jvp #generics (#inputs, #(#tangent_params),*) -> (#ret_ty, #ret_ty) #where_clause {
                match #rt::jvp(#inline_w, #tangent_w, |__w| #name #turbofish(#(#inline_call),*)) {
                    ::std::result::Result::Ok(v) => v,
                    #panic_on
                }
            }
        }
    }
}
