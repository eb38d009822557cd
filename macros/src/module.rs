//! `#[derive(Module)]`: a `Tree` impl (through the `Tree` derive, with `#[module(static)]` and
//! `#[module(training)]` fields made static) plus a `Module` impl that reports each leaf's
//! kind (parameter or state) and propagates train/eval mode to every submodule.
//!
//! Field options: `#[module(state)]` (the field's leaves are non-trained state, e.g. batch
//! statistics), `#[module(static)]` (plain configuration, cloned, never visited; the same
//! as `#[tree(static)]`), `#[module(training)]` (a `bool` set by `train()` / `eval()`;
//! static for the tree). Struct option: `#[module(crate = path)]`, the path of the nn crate
//! (default `::ferrax::nn`, what users of the facade have).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Member, Meta, Path};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Visited; its leaves keep the kind their own type gives (tensors: parameters).
    Var,
    /// Visited; every leaf is state.
    State,
    /// Not visited (configuration).
    Static,
    /// Not visited; a `bool` written by `set_training`.
    Training,
}

struct Field {
    member: Member,
    name: Option<String>,
    index: usize,
    ty: syn::Type,
    role: Role,
}

/// Entry point: the `Tree` impl followed by the `Module` impl, or the collected errors.
pub fn derive(mut input: DeriveInput) -> TokenStream {
    let (krate, fields) = match validate(&input) {
        Ok(v) => v,
        Err(e) => {
            // Still emit the Tree derive's output so uses of the type report the module
            // error above, not a cascade of "not a tree".
            let errors = e.to_compile_error();
            strip_module_attrs(&mut input, &[]);
            let tree = crate::tree::derive(input);
            return quote!(#errors #tree);
        }
    };
    let module_impl = expand(&input, &krate, &fields);
    strip_module_attrs(&mut input, &fields);
    let tree = crate::tree::derive(input);
    quote!(#tree #module_impl)
}

/// Removes `#[module(...)]` attributes and marks static/training fields `#[tree(static)]`
/// (unless they already are), so the Tree derive sees only its own options.
fn strip_module_attrs(input: &mut DeriveInput, fields: &[Field]) {
    input.attrs.retain(|a| !a.path().is_ident("module"));
    if let Data::Struct(s) = &mut input.data {
        for (i, f) in s.fields.iter_mut().enumerate() {
            f.attrs.retain(|a| !a.path().is_ident("module"));
            let make_static = fields
                .get(i)
                .is_some_and(|fd| matches!(fd.role, Role::Static | Role::Training));
            if make_static && !has_tree_static(f) {
                f.attrs.push(syn::parse_quote!(#[tree(static)]));
            }
        }
    }
}

fn has_tree_static(f: &syn::Field) -> bool {
    f.attrs.iter().any(|a| {
        a.path().is_ident("tree")
            && a.meta.require_list().is_ok_and(|l| {
                l.tokens
                    .to_string()
                    .split(',')
                    .any(|t| t.trim() == "static")
            })
    })
}

fn validate(input: &DeriveInput) -> syn::Result<(TokenStream, Vec<Field>)> {
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };

    let mut krate: TokenStream = quote!(::ferrax::nn);
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("module")) {
        let r = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let p: Path = meta.value()?.parse()?;
                krate = p.to_token_stream();
                Ok(())
            } else {
                Err(meta.error(
                    "unknown struct option: the only one is `crate = path` (the nn crate's path)",
                ))
            }
        });
        if let Err(e) = r {
            push(e);
        }
    }

    let fields = match &input.data {
        Data::Struct(s) => Some(&s.fields),
        Data::Enum(e) => {
            push(syn::Error::new(
                e.enum_token.span,
                "derive(Module) supports structs only",
            ));
            None
        }
        Data::Union(u) => {
            push(syn::Error::new(
                u.union_token.span,
                "derive(Module) supports structs only",
            ));
            None
        }
    };
    let mut out = Vec::new();
    for (index, f) in fields.into_iter().flatten().enumerate() {
        let mut role = if has_tree_static(f) {
            Role::Static
        } else {
            Role::Var
        };
        for attr in f.attrs.iter().filter(|a| a.path().is_ident("module")) {
            if !matches!(attr.meta, Meta::List(_)) {
                push(syn::Error::new_spanned(
                    attr,
                    "expected `#[module(state)]`, `#[module(static)]` or `#[module(training)]`",
                ));
                continue;
            }
            let r = attr.parse_nested_meta(|meta| {
                let new = if meta.path.is_ident("state") {
                    Role::State
                } else if meta.path.is_ident("static") {
                    Role::Static
                } else if meta.path.is_ident("training") {
                    Role::Training
                } else {
                    let name = meta.path.to_token_stream().to_string();
                    return Err(meta.error(format!(
                        "unknown module option `{name}`: expected `state` (non-trained \
                         variables), `static` (configuration) or `training` (the mode flag)"
                    )));
                };
                if role != Role::Var && role != new {
                    return Err(meta.error("conflicting module options on one field"));
                }
                role = new;
                Ok(())
            });
            if let Err(e) = r {
                push(e);
            }
        }
        let (member, name) = match &f.ident {
            Some(id) => (Member::Named(id.clone()), Some(id.unraw().to_string())),
            None => (Member::Unnamed(syn::Index::from(index)), None),
        };
        out.push(Field {
            member,
            name,
            index,
            ty: f.ty.clone(),
            role,
        });
    }
    match errors {
        Some(e) => Err(e),
        None => Ok((krate, out)),
    }
}

fn expand(input: &DeriveInput, krate: &TokenStream, fields: &[Field]) -> TokenStream {
    let name = &input.ident;
    let mut generics = input.generics.clone();
    {
        let params: Vec<String> = input
            .generics
            .type_params()
            .map(|p| p.ident.to_string())
            .collect();
        let wc = generics.make_where_clause();
        for f in fields
            .iter()
            .filter(|f| matches!(f.role, Role::Var | Role::State))
        {
            let tokens = f.ty.to_token_stream().to_string();
            // Bound field types that mention a type parameter (as the Tree derive does).
            if params.iter().any(|p| {
                tokens
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .any(|t| t == p)
            }) {
                let ty = &f.ty;
                wc.predicates
                    .push(syn::parse_quote_spanned!(ty.span()=> #ty: #krate::Module));
            }
        }
    }
    let (impl_g, ty_g, where_c) = generics.split_for_impl();

    let visits = fields.iter().filter_map(|f| {
        let kind = match f.role {
            Role::Var => quote!(__kind),
            Role::State => quote!(::core::option::Option::Some(#krate::VarKind::State)),
            Role::Static | Role::Training => return None,
        };
        let (ty, m) = (&f.ty, &f.member);
        let elem = match &f.name {
            Some(n) => quote!(::ferrax::__rt::PathElem::Field(#n)),
            None => {
                let i = f.index;
                quote!(::ferrax::__rt::PathElem::Index(#i))
            }
        };
        let call = quote_spanned!(ty.span()=>
            <#ty as #krate::Module>::visit_vars(&self.#m, __path, #kind, &mut *__f)
        );
        Some(quote!(__path.with(#elem, |__path| #call);))
    });
    let modes = fields.iter().filter_map(|f| {
        let (ty, m) = (&f.ty, &f.member);
        match f.role {
            Role::Var | Role::State => Some(quote_spanned!(ty.span()=>
                <#ty as #krate::Module>::set_training(&mut self.#m, __training);
            )),
            Role::Training => Some(quote_spanned!(ty.span()=> self.#m = __training;)),
            Role::Static => None,
        }
    });
    quote! {
        #[automatically_derived]
        impl #impl_g #krate::Module for #name #ty_g #where_c {
            fn visit_vars(
                &self,
                __path: &mut ::ferrax::__rt::Path,
                __kind: ::core::option::Option<#krate::VarKind>,
                __f: &mut dyn ::core::ops::FnMut(
                    &::ferrax::__rt::Path,
                    #krate::VarKind,
                    &::ferrax::__rt::Array,
                ),
            ) {
                let _ = &__kind;
                #(#visits)*
            }
            fn set_training(&mut self, __training: bool) {
                let _ = __training;
                #(#modes)*
            }
        }
    }
}
