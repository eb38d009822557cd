//! The composition macros `fx::grad!`, `fx::value_and_grad!`, `fx::jvp!`, `fx::vmap!` and
//! `fx::jit!`: each takes a function (a closure with typed parameters, a call pattern
//! `path(a, b)`, or another composition macro) and evaluates to a closure, so JAX's
//! compositions read as they do in JAX: `fx::vmap!(fx::grad!(loss(w, x, y), wrt = w),
//! in_axes = (None, 0, 0))`.
//!
//! A nested composition macro is expanded here, not by rustc, so each level knows its inner
//! function's parameters. Types the macro cannot spell (a batched argument, a gradient of an
//! untyped parameter) are left to inference: the generated closures call only generic
//! runtime functions (`::ferrax::__rt`), so rustc resolves them at the call site and checks
//! every shape there.

use crate::vmap::{parse_axes, spec_tokens, Axes, Axis};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Ident, Pat, Token, Type};

/// Which transformation a macro applies.
#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Grad,
    ValueAndGrad,
    Jvp,
    Vmap,
    Jit,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Grad => "grad",
            Kind::ValueAndGrad => "value_and_grad",
            Kind::Jvp => "jvp",
            Kind::Vmap => "vmap",
            Kind::Jit => "jit",
        }
    }
    fn from_ident(id: &Ident) -> Option<Kind> {
        Some(match id.to_string().as_str() {
            "grad" => Kind::Grad,
            "value_and_grad" => Kind::ValueAndGrad,
            "jvp" => Kind::Jvp,
            "vmap" => Kind::Vmap,
            "jit" => Kind::Jit,
            _ => return None,
        })
    }
}

/// A parameter of a function being composed. `ty: None` means "by reference, type left to
/// inference" (`&_`).
#[derive(Clone)]
struct Param {
    name: Ident,
    ty: Option<Type>,
}

impl Param {
    fn by_ref(&self) -> bool {
        match &self.ty {
            None => true,
            Some(t) => matches!(t, Type::Reference(_)),
        }
    }
    fn is_static(&self) -> bool {
        self.ty.as_ref().is_some_and(is_plain_static_type)
    }
    fn decl(&self) -> TokenStream {
        let n = &self.name;
        match &self.ty {
            Some(t) => quote!(#n: #t),
            None => quote!(#n: &_),
        }
    }
    /// The parameter as a `&T` expression.
    fn as_ref(&self) -> TokenStream {
        let n = &self.name;
        if self.by_ref() {
            quote!(#n)
        } else {
            quote!(&#n)
        }
    }
}

/// Scalars and strings: not trees, passed through unchanged (and part of a `jit!` key).
fn is_plain_static_type(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => is_plain_static_type(&r.elem),
        Type::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => matches!(
            p.path.segments[0].ident.to_string().as_str(),
            "bool"
                | "char"
                | "u8"
                | "u16"
                | "u32"
                | "u64"
                | "usize"
                | "i8"
                | "i16"
                | "i32"
                | "i64"
                | "isize"
                | "f32"
                | "f64"
                | "str"
                | "String"
        ),
        _ => false,
    }
}

/// A composed function: its parameters and an expression evaluating to a closure taking
/// them.
struct Fun {
    params: Vec<Param>,
    expr: TokenStream,
}

/// The macro's input: the function, then `key = value` options.
struct Input {
    fun: Expr,
    opts: Vec<(Ident, Expr)>,
}

fn parse_input(kind: Kind, tokens: TokenStream) -> syn::Result<Input> {
    let span = tokens.span();
    let items =
        syn::parse::Parser::parse2(Punctuated::<Expr, Token![,]>::parse_terminated, tokens)?;
    let mut it = items.into_iter();
    let fun = it.next().ok_or_else(|| {
        syn::Error::new(
            span,
            format!(
                "{}! needs a function: a closure with typed parameters, `path(a, b)`, or another fx macro",
                kind.name()
            ),
        )
    })?;
    let mut opts = Vec::new();
    for e in it {
        match e {
            Expr::Assign(a) => match &*a.left {
                Expr::Path(p) if p.path.get_ident().is_some() => {
                    opts.push((p.path.get_ident().cloned().expect("checked"), *a.right))
                }
                other => {
                    return Err(syn::Error::new(
                        other.span(),
                        "options are written `name = value`",
                    ))
                }
            },
            other => {
                return Err(syn::Error::new(
                    other.span(),
                    "options are written `name = value` after the function",
                ))
            }
        }
    }
    Ok(Input { fun, opts })
}

/// Analyses the function argument of a macro.
fn function(e: &Expr) -> syn::Result<Fun> {
    match e {
        Expr::Closure(c) => {
            let mut params = Vec::new();
            for p in &c.inputs {
                match p {
                    Pat::Type(pt) => match &*pt.pat {
                        Pat::Ident(pi) if pi.subpat.is_none() => params.push(Param {
                            name: pi.ident.clone(),
                            ty: match &*pt.ty {
                                Type::Infer(_) => None,
                                t => Some(t.clone()),
                            },
                        }),
                        other => {
                            return Err(syn::Error::new(
                                other.span(),
                                "closure parameters must be plain names (destructure inside the body)",
                            ))
                        }
                    },
                    other => {
                        return Err(syn::Error::new(
                            other.span(),
                            "closure parameters need types here (`|x: &Tensor<(C<3>,)>| ...`): the transformation is built from them",
                        ))
                    }
                }
            }
            Ok(Fun {
                params,
                expr: quote!(#c),
            })
        }
        Expr::Macro(m) => {
            let last = m.mac.path.segments.last().map(|s| s.ident.clone());
            match last.as_ref().and_then(Kind::from_ident) {
                Some(k) => expand_fun(k, m.mac.tokens.clone()),
                None => Err(syn::Error::new(
                    m.span(),
                    "only the fx macros (grad!, value_and_grad!, jvp!, vmap!, jit!) can be composed",
                )),
            }
        }
        Expr::Call(c) => {
            let mut params = Vec::new();
            for a in &c.args {
                match a {
                    Expr::Path(p) if p.path.get_ident().is_some() => params.push(Param {
                        name: p.path.get_ident().cloned().expect("checked"),
                        ty: None,
                    }),
                    other => {
                        return Err(syn::Error::new(
                            other.span(),
                            "a call pattern names the parameters: `f(a, b)` passes each by reference; use a closure for anything else",
                        ))
                    }
                }
            }
            let decls: Vec<TokenStream> = params.iter().map(Param::decl).collect();
            let names: Vec<Ident> = params.iter().map(|p| p.name.clone()).collect();
            let f = &c.func;
            Ok(Fun {
                params,
                expr: quote!(|#(#decls),*| #f(#(#names),*)),
            })
        }
        Expr::Path(p) => Err(syn::Error::new(
            p.span(),
            "a bare function name does not say its parameters: write the call pattern `f(a, b)` (arguments by reference) or a closure with typed parameters",
        )),
        Expr::Paren(p) => function(&p.expr),
        other => Err(syn::Error::new(
            other.span(),
            "expected a function: a closure with typed parameters, `path(a, b)`, or another fx macro",
        )),
    }
}

fn option<'a>(opts: &'a [(Ident, Expr)], key: &str) -> Option<&'a Expr> {
    opts.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn check_opts(kind: Kind, opts: &[(Ident, Expr)], allowed: &[&str]) -> syn::Result<()> {
    for (k, _) in opts {
        if !allowed.contains(&k.to_string().as_str()) {
            return Err(syn::Error::new(
                k.span(),
                format!(
                    "unknown {}! option `{k}`; supported: {}",
                    kind.name(),
                    allowed
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The differentiated parameters (`wrt = a` or `wrt = (a, b)`; default the first).
fn wrt_params(kind: Kind, f: &Fun, opt: Option<&Expr>, span: Span) -> syn::Result<Vec<usize>> {
    let names: Vec<Ident> = match opt {
        None => match f.params.first() {
            Some(p) => vec![p.name.clone()],
            None => {
                return Err(syn::Error::new(
                    span,
                    format!(
                        "{}! needs a function with at least one parameter",
                        kind.name()
                    ),
                ))
            }
        },
        Some(Expr::Path(p)) if p.path.get_ident().is_some() => {
            vec![p.path.get_ident().cloned().expect("checked")]
        }
        Some(Expr::Tuple(t)) => t
            .elems
            .iter()
            .map(|e| match e {
                Expr::Path(p) if p.path.get_ident().is_some() => {
                    Ok(p.path.get_ident().cloned().expect("checked"))
                }
                other => Err(syn::Error::new(other.span(), "`wrt` names parameters")),
            })
            .collect::<syn::Result<_>>()?,
        Some(other) => {
            return Err(syn::Error::new(
                other.span(),
                "`wrt` names parameters: `wrt = w` or `wrt = (a, b)`",
            ))
        }
    };
    names
        .iter()
        .map(|n| {
            let i = f.params.iter().position(|p| p.name == *n).ok_or_else(|| {
                syn::Error::new(n.span(), format!("`{n}` is not a parameter of this function"))
            })?;
            if f.params[i].is_static() {
                return Err(syn::Error::new(
                    n.span(),
                    format!("cannot differentiate with respect to `{n}`: it is a static (non-tensor) parameter"),
                ));
            }
            Ok(i)
        })
        .collect()
}

/// Expands one macro into a composed function (used for nesting and at the top).
fn expand_fun(kind: Kind, tokens: TokenStream) -> syn::Result<Fun> {
    let span = tokens.span();
    let input = parse_input(kind, tokens)?;
    let inner = function(&input.fun)?;
    let rt = quote!(::ferrax::__rt);
    let label = format!("{}!", kind.name());
    let decls: Vec<TokenStream> = inner.params.iter().map(Param::decl).collect();
    let iexpr = &inner.expr;
    match kind {
        Kind::Grad | Kind::ValueAndGrad | Kind::Jvp => {
            check_opts(kind, &input.opts, &["wrt"])?;
            let wrt = wrt_params(kind, &inner, option(&input.opts, "wrt"), span)?;
            let single = wrt.len() == 1;
            let w_of = |refs: Vec<TokenStream>| {
                if single {
                    refs[0].clone()
                } else {
                    quote!(&(#(#rt::tree_clone(#refs)),*))
                }
            };
            let w_ref = w_of(wrt.iter().map(|&i| inner.params[i].as_ref()).collect());
            let call: Vec<TokenStream> = inner
                .params
                .iter()
                .enumerate()
                .map(|(i, p)| match wrt.iter().position(|&w| w == i) {
                    Some(k) => {
                        let w = if single {
                            quote!(__w)
                        } else {
                            let k = syn::Index::from(k);
                            quote!(&__w.#k)
                        };
                        if p.by_ref() {
                            w
                        } else {
                            quote!(#rt::tree_clone(#w))
                        }
                    }
                    None => {
                        let n = &p.name;
                        quote!(#n)
                    }
                })
                .collect();
            let (params, body) = match kind {
                Kind::Jvp => {
                    let tparams: Vec<Param> = wrt
                        .iter()
                        .map(|&i| Param {
                            name: format_ident!("tangent_{}", inner.params[i].name),
                            ty: inner.params[i].ty.clone(),
                        })
                        .collect();
                    let t_ref = w_of(tparams.iter().map(Param::as_ref).collect());
                    let mut params = inner.params.clone();
                    params.extend(tparams);
                    (
                        params,
                        quote! {
                            match #rt::jvp(#w_ref, #t_ref, |__w| __fx_f(#(#call),*)) {
                                ::std::result::Result::Ok(v) => v,
                                ::std::result::Result::Err(e) => ::std::panic!("{}: {}", #label, e),
                            }
                        },
                    )
                }
                _ => {
                    let ret = if kind == Kind::Grad {
                        quote!(__g)
                    } else {
                        quote!((__v, __g))
                    };
                    (
                        inner.params.clone(),
                        quote! {
                            match #rt::value_and_grad(#w_ref, |__w| __fx_f(#(#call),*)) {
                                ::std::result::Result::Ok((__v, __g)) => {
                                    #rt::assert_scalar_loss(&__v);
                                    #ret
                                }
                                ::std::result::Result::Err(e) => ::std::panic!("{}: {}", #label, e),
                            }
                        },
                    )
                }
            };
            let decls: Vec<TokenStream> = params.iter().map(Param::decl).collect();
            Ok(Fun {
                params,
                expr: quote! {{
                    let __fx_f = #iexpr;
                    move |#(#decls),*| { #body }
                }},
            })
        }
        Kind::Vmap => {
            check_opts(kind, &input.opts, &["in_axes", "out_axes"])?;
            let n = inner.params.len();
            let axes: Vec<Axis> = match option(&input.opts, "in_axes")
                .map(parse_axes)
                .transpose()?
            {
                None => inner
                    .params
                    .iter()
                    .map(|p| {
                        if p.is_static() {
                            Axis::None(span)
                        } else {
                            Axis::Mapped(0, span)
                        }
                    })
                    .collect(),
                Some(Axes::All(a)) => inner
                    .params
                    .iter()
                    .map(|p| match (&a, p.is_static()) {
                        (Axis::Mapped(..), true) => Axis::None(a.span()),
                        _ => a.clone(),
                    })
                    .collect(),
                Some(Axes::Each(v, s)) => {
                    if v.len() != n {
                        return Err(syn::Error::new(
                            s,
                            format!(
                                "in_axes has {} entries but the function has {n} parameters: give one axis (or `None`) per parameter",
                                v.len()
                            ),
                        ));
                    }
                    v
                }
            };
            let out = match option(&input.opts, "out_axes")
                .map(parse_axes)
                .transpose()?
            {
                Some(a) => a,
                None => Axes::All(Axis::Mapped(0, span)),
            };
            let (_, spec_val) = spec_tokens(&out);
            let mut params = Vec::new();
            let mut record = Vec::new();
            let mut examples = Vec::new();
            let mut call = Vec::new();
            let mut bd = None;
            for (p, ax) in inner.params.iter().zip(&axes) {
                let name = &p.name;
                let e = format_ident!("__ex_{}", name);
                let r = p.as_ref();
                match ax {
                    Axis::Mapped(a, s) => {
                        if p.is_static() {
                            return Err(syn::Error::new(
                                *s,
                                format!("`{name}` is a static (non-tree) parameter and cannot be mapped: its in_axes entry must be `None`"),
                            ));
                        }
                        params.push(if p.by_ref() {
                            quote!(#name: &_)
                        } else {
                            quote!(#name: _)
                        });
                        record.push(quote!(__call.mapped(#r, #a);));
                        examples.push(quote!(let #e = __ex.mapped::<#a, _>(#r)?;));
                        bd.get_or_insert(quote!(#rt::batch_dim_of::<#a, _>(#r)));
                        call.push(if p.by_ref() { quote!(&#e) } else { quote!(#e) });
                    }
                    Axis::None(_) => {
                        params.push(p.decl());
                        if p.is_static() {
                            call.push(quote!(#name));
                        } else {
                            record.push(quote!(__call.unmapped(#r);));
                            examples.push(quote!(let #e = __ex.unmapped(#r)?;));
                            call.push(if p.by_ref() { quote!(&#e) } else { quote!(#e) });
                        }
                    }
                }
            }
            let Some(bd) = bd else {
                return Err(syn::Error::new(
                    span,
                    "vmap! needs at least one mapped parameter: give an in_axes entry that is an axis",
                ));
            };
            // Parameter names are kept: an outer macro refers to them (`wrt = w`).
            let out_params: Vec<Param> = inner
                .params
                .iter()
                .zip(&axes)
                .map(|(p, ax)| match ax {
                    Axis::Mapped(..) if p.by_ref() => Param {
                        name: p.name.clone(),
                        ty: None,
                    },
                    Axis::Mapped(..) => Param {
                        name: p.name.clone(),
                        ty: Some(Type::Infer(syn::TypeInfer {
                            underscore_token: Default::default(),
                        })),
                    },
                    Axis::None(_) => p.clone(),
                })
                .collect();
            Ok(Fun {
                params: out_params,
                expr: quote! {{
                    let __fx_f = #iexpr;
                    move |#(#params),*| {
                        let mut __call = #rt::VmapCall::new(#label);
                        #(#record)*
                        let __bd = #bd;
                        match __call.run(
                            |__ex: &mut #rt::Examples| {
                                #(#examples)*
                                ::std::result::Result::Ok(__fx_f(#(#call),*))
                            },
                            #spec_val,
                            __bd,
                        ) {
                            ::std::result::Result::Ok(v) => v,
                            ::std::result::Result::Err(e) => ::std::panic!("{}: {}", #label, e),
                        }
                    }
                }},
            })
        }
        Kind::Jit => {
            check_opts(kind, &input.opts, &[])?;
            let mut record = Vec::new();
            let mut setup = Vec::new();
            let mut inline = Vec::new();
            let mut traced = Vec::new();
            for p in &inner.params {
                let n = &p.name;
                let t = format_ident!("__traced_{}", n);
                let r = p.as_ref();
                inline.push(quote!(#n));
                if p.is_static() {
                    record.push(quote!(__args.static_arg(&#n);));
                    setup.push(quote!(let #t = #n;));
                    traced.push(quote!(#t));
                } else {
                    record.push(quote!(__args.tree(#r);));
                    setup.push(quote!(let #t = __t.input(#r)?;));
                    traced.push(if p.by_ref() { quote!(&#t) } else { quote!(#t) });
                }
            }
            Ok(Fun {
                params: inner.params.clone(),
                expr: quote! {{
                    let __fx_f = #iexpr;
                    // One cache per `jit!` closure value (as `jax.jit(f)` returns a new
                    // staged function): values it captures are constants of its programs.
                    let __fx_cache = #rt::JitCache::new(#label);
                    move |#(#decls),*| {
                        let mut __args = #rt::JitArgs::new();
                        #(#record)*
                        if __args.should_inline() {
                            __fx_cache.note_inlined();
                            return __fx_f(#(#inline),*);
                        }
                        match __fx_cache.call(__args, |__t: &mut #rt::Tracing| {
                            #(#setup)*
                            ::std::result::Result::Ok(__fx_f(#(#traced),*))
                        }) {
                            ::std::result::Result::Ok((v, _)) => v,
                            ::std::result::Result::Err(e) => ::std::panic!("{}: {}", #label, e),
                        }
                    }
                }},
            })
        }
    }
}

/// Entry point of each composition macro: the closure, or the error (spanned on the
/// offending tokens) followed by a diverging stub, which type-checks at any call (a stub
/// closure would add arity errors to the one that matters).
pub fn expand(kind: Kind, tokens: TokenStream) -> TokenStream {
    match expand_fun(kind, tokens) {
        Ok(f) => f.expr,
        Err(e) => {
            let ce = e.to_compile_error();
            quote! {{ #ce; ::std::unreachable!() }}
        }
    }
}
