//! `#[jit]`: parse -> validate -> expand. The function becomes a thin wrapper that keys a
//! per-function cache on its argument types, leaf shapes and static values, traces the body
//! once per key and runs the cached executable afterwards. A companion module of the same
//! name (`f::trace`, `f::stats`) exposes the program and the cache counters.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{FnArg, GenericParam, Ident, ItemFn, Pat, ReturnType, Token, Type};

/// How an argument is passed into the staged body.
pub(crate) enum ArgKind {
    /// `&T`: a tree, traced.
    TreeRef,
    /// `&mut T`: a tree, traced, written back after the call.
    TreeMut,
    /// `T` owned: a tree, traced.
    TreeOwned,
    /// A static value, hashed into the key and passed as is (cloned into the trace).
    Static,
}

pub(crate) struct Arg {
    pub(crate) name: Ident,
    pub(crate) kind: ArgKind,
    pub(crate) ty: Type,
}

struct Options {
    statics: Vec<Ident>,
}

fn parse_options(attr: TokenStream, errors: &mut Vec<syn::Error>) -> Options {
    let mut statics = Vec::new();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("static_args") {
            let content;
            syn::parenthesized!(content in meta.input);
            let names = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
            statics.extend(names);
            Ok(())
        } else {
            Err(meta
                .error("unknown #[jit] option; the supported option is `static_args(name, ...)`"))
        }
    });
    if let Err(e) = parser.parse2(attr) {
        errors.push(e);
    }
    Options { statics }
}

/// Scalars and strings are static unless told otherwise: they select a program rather than
/// flow through it.
fn is_plain_static_type(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => is_plain_static_type(&r.elem),
        Type::Path(p) if p.qself.is_none() => {
            let Some(last) = p.path.segments.last() else {
                return false;
            };
            let name = last.ident.to_string();
            p.path.segments.len() == 1
                && matches!(
                    name.as_str(),
                    "bool"
                        | "char"
                        | "u8"
                        | "u16"
                        | "u32"
                        | "u64"
                        | "u128"
                        | "usize"
                        | "i8"
                        | "i16"
                        | "i32"
                        | "i64"
                        | "i128"
                        | "isize"
                        | "f32"
                        | "f64"
                        | "str"
                        | "String"
                )
        }
        _ => false,
    }
}

pub fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors: Vec<syn::Error> = Vec::new();
    let opts = parse_options(attr, &mut errors);
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let e = syn::Error::new(
                e.span(),
                "#[jit] applies to functions: `fn name(args) -> Ret { ... }`",
            );
            let ce = e.to_compile_error();
            return quote! { #ce #item };
        }
    };
    let args = analyze(&func.sig, &opts.statics, &mut errors);
    if !errors.is_empty() {
        // Keep the user's function so call sites type-check: one error, not twenty.
        let mut err = errors.remove(0);
        for e in errors {
            err.combine(e);
        }
        let ce = err.to_compile_error();
        return quote! { #ce #func };
    }
    emit(&func, &args)
}

/// Validates a staged function's signature and classifies its arguments.
pub(crate) fn analyze(
    sig: &syn::Signature,
    statics: &[Ident],
    errors: &mut Vec<syn::Error>,
) -> Vec<Arg> {
    let opts_statics = statics;
    if let Some(a) = &sig.asyncness {
        errors.push(syn::Error::new(
            a.span(),
            "#[jit] cannot stage an async fn; stage the computation it awaits",
        ));
    }
    if let Some(c) = &sig.constness {
        errors.push(syn::Error::new(c.span(), "#[jit] cannot stage a const fn"));
    }
    if let Some(v) = &sig.variadic {
        errors.push(syn::Error::new(
            v.span(),
            "#[jit] cannot stage a variadic fn",
        ));
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        if let Type::ImplTrait(_) = &**ty {
            errors.push(syn::Error::new(
                ty.span(),
                "#[jit] needs a concrete return type (a tensor or a tree of tensors), not `impl Trait`",
            ));
        }
    }
    let mut args = Vec::new();
    let mut seen_statics = vec![false; opts_statics.len()];
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => errors.push(syn::Error::new(
                r.span(),
                "#[jit] does not support methods with a `self` receiver; write a free function \
                 that takes the value as an argument (e.g. `fn step(model: &mut Mlp, ...)`)",
            )),
            FnArg::Typed(pt) => {
                let name = match &*pt.pat {
                    Pat::Ident(pi) if pi.subpat.is_none() => pi.ident.clone(),
                    other => {
                        errors.push(syn::Error::new(
                            other.span(),
                            "#[jit] arguments must be plain identifiers (destructure inside the body)",
                        ));
                        continue;
                    }
                };
                if let Type::ImplTrait(it) = &*pt.ty {
                    errors.push(syn::Error::new(
                        it.span(),
                        "#[jit] arguments cannot be `impl Trait`; use a named generic parameter",
                    ));
                    continue;
                }
                let forced = opts_statics.iter().position(|s| *s == name);
                if let Some(i) = forced {
                    seen_statics[i] = true;
                }
                let kind = if forced.is_some() || is_plain_static_type(&pt.ty) {
                    ArgKind::Static
                } else {
                    match &*pt.ty {
                        Type::Reference(r) if r.mutability.is_some() => ArgKind::TreeMut,
                        Type::Reference(_) => ArgKind::TreeRef,
                        _ => ArgKind::TreeOwned,
                    }
                };
                args.push(Arg {
                    name,
                    kind,
                    ty: (*pt.ty).clone(),
                });
            }
        }
    }
    for (s, seen) in opts_statics.iter().zip(seen_statics) {
        if !seen {
            errors.push(syn::Error::new(
                s.span(),
                format!("`{s}` is not an argument of this function"),
            ));
        }
    }
    args
}

/// Statements recording each generic parameter into `__args` (the cache key).
pub(crate) fn key_generic_tokens(generics: &syn::Generics) -> Vec<TokenStream> {
    generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => {
                let id = &t.ident;
                Some(quote!(__args.generic(::std::any::type_name::<#id>());))
            }
            GenericParam::Const(c) => {
                let id = &c.ident;
                Some(quote!(__args.const_generic(#id);))
            }
            GenericParam::Lifetime(_) => None,
        })
        .collect()
}

/// Statements recording each argument into `__args`: tree leaves or static values.
pub(crate) fn record_tokens(args: &[Arg]) -> Vec<TokenStream> {
    args.iter()
        .map(|a| {
            let n = &a.name;
            let span = n.span();
            match a.kind {
                ArgKind::TreeRef => quote_spanned!(span=> __args.tree(#n);),
                ArgKind::TreeMut => quote_spanned!(span=> __args.tree(&*#n);),
                ArgKind::TreeOwned => quote_spanned!(span=> __args.tree(&#n);),
                ArgKind::Static => quote_spanned!(span=> __args.static_arg(&#n);),
            }
        })
        .collect()
}

/// Inside a trace closure (`__t: &mut Tracing`): statements making a traced copy of each
/// tree argument, and the expressions passing them on in the original calling convention.
pub(crate) fn traced_tokens(args: &[Arg]) -> (Vec<Ident>, Vec<TokenStream>, Vec<TokenStream>) {
    let traced_idents: Vec<Ident> = args
        .iter()
        .map(|a| format_ident!("__traced_{}", a.name))
        .collect();
    let setup = args
        .iter()
        .zip(&traced_idents)
        .map(|(a, t)| {
            let n = &a.name;
            match a.kind {
                ArgKind::TreeRef => quote!(let #t = __t.input(#n)?;),
                ArgKind::TreeMut => quote!(let mut #t = __t.input(&*#n)?;),
                ArgKind::TreeOwned => quote!(let #t = __t.input(&#n)?;),
                // Moved: the trace closure runs at most once, so static values need no `Clone`.
                ArgKind::Static => quote!(let #t = #n;),
            }
        })
        .collect();
    let call = args
        .iter()
        .zip(&traced_idents)
        .map(|(a, t)| match a.kind {
            ArgKind::TreeRef => quote!(&#t),
            ArgKind::TreeMut => quote!(&mut #t),
            ArgKind::TreeOwned | ArgKind::Static => quote!(#t),
        })
        .collect();
    (traced_idents, setup, call)
}

fn emit(func: &ItemFn, args: &[Arg]) -> TokenStream {
    let rt = quote!(::ferrax::__rt);
    let vis = &func.vis;
    let attrs = &func.attrs;
    let sig = &func.sig;
    let name = &sig.ident;
    let name_str = name.to_string();
    // Tensor conditions in `if` / `while` / `for` become `cond` / `while_loop` / `fori_loop`.
    let body = crate::rewrite::rewrite_block((*func.block).clone());
    let body_name = format_ident!("__ferrax_jit_body_{}", name);
    let generics = &sig.generics;
    let (_, ty_generics, where_clause) = generics.split_for_impl();
    let turbofish = ty_generics.as_turbofish();
    let inputs = &sig.inputs;
    let output = &sig.output;
    let ret_ty = match output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, t) => quote!(#t),
    };

    let mut body_sig = sig.clone();
    body_sig.ident = body_name.clone();
    // The body keeps the user's parameter attributes out (they were for this macro).
    let key_generics = key_generic_tokens(generics);
    let record = record_tokens(args);
    let call_names: Vec<&Ident> = args.iter().map(|a| &a.name).collect();
    let (traced_idents, trace_setup, trace_call_args) = traced_tokens(args);
    let record_mut: Vec<TokenStream> = args
        .iter()
        .zip(&traced_idents)
        .filter(|(a, _)| matches!(a.kind, ArgKind::TreeMut))
        .map(|(_, t)| quote!(__t.mutated(&#t);))
        .collect();
    let write_back: Vec<TokenStream> = args
        .iter()
        .filter(|a| matches!(a.kind, ArgKind::TreeMut))
        .map(|a| {
            let n = &a.name;
            quote! {
                *#n = match #rt::write_back(&*#n, &mut __muts) {
                    ::std::result::Result::Ok(v) => v,
                    ::std::result::Result::Err(e) => ::std::panic!("jit `{}`: {}", #name_str, e),
                };
            }
        })
        .collect();
    // `&mut` arguments donate their buffers: the compiled program may write into them.
    let donate: Vec<TokenStream> = args
        .iter()
        .filter(|a| matches!(a.kind, ArgKind::TreeMut))
        .map(|a| {
            let n = &a.name;
            quote!(__args.donate(&mut *#n);)
        })
        .collect();
    let trace_closure = quote! {
        |__t: &mut #rt::Tracing| -> #rt::Result<#ret_ty> {
            #(#trace_setup)*
            let __r = #body_name #turbofish(#(#trace_call_args),*);
            #(#record_mut)*
            ::std::result::Result::Ok(__r)
        }
    };
    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case, clippy::too_many_arguments)]
        #[inline(always)]
        #body_sig #body

        #(#attrs)*
        #[allow(clippy::too_many_arguments)]
        #vis fn #name #generics (#inputs) #output #where_clause {
            let mut __args = #rt::JitArgs::new();
            #(#key_generics)*
            #(#record)*
            if __args.should_inline() {
                #name::__ferrax_cache().note_inlined();
                return #body_name #turbofish(#(#call_names),*);
            }
            #(#donate)*
            let (__r, mut __muts) = match #name::__ferrax_cache().call(__args, #trace_closure) {
                ::std::result::Result::Ok(v) => v,
                ::std::result::Result::Err(e) => ::std::panic!("jit `{}`: {}", #name_str, e),
            };
            #(#write_back)*
            let _ = &mut __muts;
            __r
        }

        /// Companions generated by `#[jit]`: the compiled-program cache and introspection.
        #[allow(non_camel_case_types)]
        #vis struct #name {}

        #[allow(dead_code, unused_mut, clippy::too_many_arguments)]
        impl #name {
            #[doc(hidden)]
            pub fn __ferrax_cache() -> &'static #rt::JitCache {
                static CACHE: #rt::JitCache = #rt::JitCache::new(#name_str);
                &CACHE
            }
            /// Cache counters of this staged function (hits, misses, compiles, inlined calls).
            pub fn stats() -> #rt::JitStats {
                Self::__ferrax_cache().stats()
            }
            /// The program this function stages for these arguments (like `jax.make_jaxpr`),
            /// before optimization.
            pub fn trace #generics (#inputs) -> #rt::Result<#rt::Program> #where_clause {
                Self::__ferrax_cache().trace_program(#trace_closure)
            }
        }
    }
}
