//! `#[derive(Tree)]`: parse the struct and its `#[tree(...)]` field options, validate, and
//! expand into a `visit`/`rebuild` pair that walks the fields in declaration order.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use std::collections::HashSet;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Ident, Member, Meta, Type};

/// One field as the expansion needs it.
struct Field<'a> {
    member: Member,
    /// The path element's name: the field name without `r#`, or `None` for a position.
    name: Option<String>,
    index: usize,
    ty: &'a Type,
    is_static: bool,
}

/// Entry point: expands to the impl, or to the collected errors plus a stub impl (so the
/// user sees the derive's errors, not a cascade of "`X` is not a tree" from code using it).
pub fn derive(input: DeriveInput) -> TokenStream {
    match validate(&input) {
        Ok(fields) => expand(&input, &fields),
        Err(e) => {
            let errors = e.to_compile_error();
            let stub = stub(&input);
            quote!(#errors #stub)
        }
    }
}

fn validate(input: &DeriveInput) -> syn::Result<Vec<Field<'_>>> {
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };

    for attr in input.attrs.iter().filter(|a| a.path().is_ident("tree")) {
        push(syn::Error::new_spanned(
            attr,
            "`#[tree(...)]` goes on fields: the struct itself takes no tree options",
        ));
    }

    let fields = match &input.data {
        Data::Struct(s) => Some(&s.fields),
        Data::Enum(e) => {
            push(not_a_struct(e.enum_token.span));
            None
        }
        Data::Union(u) => {
            push(not_a_struct(u.union_token.span));
            None
        }
    };

    let mut out = Vec::new();
    if let Some(fields) = fields {
        for (index, f) in fields.iter().enumerate() {
            let is_static = match field_options(f) {
                Ok(s) => s,
                Err(e) => {
                    push(e);
                    false
                }
            };
            let (member, name) = match &f.ident {
                Some(id) => (Member::Named(id.clone()), Some(id.unraw().to_string())),
                None => (Member::Unnamed(syn::Index::from(index)), None),
            };
            out.push(Field {
                member,
                name,
                index,
                ty: &f.ty,
                is_static,
            });
        }
    }

    match errors {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn not_a_struct(span: Span) -> syn::Error {
    syn::Error::new(
        span,
        "derive(Tree) supports structs only; enums and unions have no fixed set of leaves",
    )
}

/// Reads a field's `#[tree(...)]` attributes; returns whether it is marked `static`.
fn field_options(f: &syn::Field) -> syn::Result<bool> {
    let mut is_static = false;
    let mut errors: Option<syn::Error> = None;
    for attr in f.attrs.iter().filter(|a| a.path().is_ident("tree")) {
        let result = match &attr.meta {
            Meta::List(list) if list.tokens.is_empty() => Err(syn::Error::new_spanned(
                attr,
                "empty `tree` attribute: expected `#[tree(static)]`",
            )),
            Meta::List(_) => attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("static") {
                    if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                        return Err(meta.error("`static` takes no value: write `#[tree(static)]`"));
                    }
                    if is_static {
                        return Err(meta.error("duplicate `static` option"));
                    }
                    is_static = true;
                    Ok(())
                } else {
                    let name = meta.path.to_token_stream().to_string().replace(' ', "");
                    Err(meta.error(format!(
                        "unknown tree option `{name}`: the only option is `static` (a field \
                         of plain data, cloned on rebuild and not visited)"
                    )))
                }
            }),
            _ => Err(syn::Error::new_spanned(
                attr,
                "malformed `tree` attribute: expected `#[tree(static)]`",
            )),
        };
        if let Err(e) = result {
            match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            }
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(is_static),
    }
}

fn expand(input: &DeriveInput, fields: &[Field<'_>]) -> TokenStream {
    let name = &input.ident;
    let params: HashSet<Ident> = input
        .generics
        .type_params()
        .map(|p| p.ident.clone())
        .collect();

    // Bound field types, not type parameters: `Tensor<(I, O)>: Tree` holds for any dims
    // `I`, `O`, where `I: Tree` would be false. Fields without parameters need no bound
    // (and a false one would move the error away from the field).
    let mut generics = input.generics.clone();
    {
        let wc = generics.make_where_clause();
        for f in fields.iter().filter(|f| mentions(f.ty, &params)) {
            let ty = f.ty;
            wc.predicates.push(if f.is_static {
                syn::parse_quote_spanned!(ty.span()=> #ty: ::core::clone::Clone)
            } else {
                syn::parse_quote_spanned!(ty.span()=> #ty: ::ferrax::__rt::Tree)
            });
        }
    }
    let (impl_g, ty_g, where_c) = generics.split_for_impl();
    // The batched type of the struct for `#[vmap]`: a `Stacked<Self, B, A>` (vmap.rs).
    let mut batch_generics = generics.clone();
    batch_generics
        .params
        .push(syn::parse_quote!(const __FX_A: usize));
    batch_generics
        .params
        .push(syn::parse_quote!(__FxB: ::ferrax::__rt::Dim));
    let (batch_impl_g, _, _) = batch_generics.split_for_impl();

    let visits = fields.iter().filter(|f| !f.is_static).map(|f| {
        let (ty, m, elem) = (f.ty, &f.member, path_elem(f));
        // Spanned at the field type: a field that is not a tree is reported there.
        let call = quote_spanned!(ty.span()=>
            <#ty as ::ferrax::__rt::Tree>::visit(&self.#m, __path, &mut *__f)
        );
        quote!(__path.with(#elem, |__path| #call);)
    });
    let fingerprints = fields.iter().map(|f| {
        let (ty, m) = (f.ty, &f.member);
        if f.is_static {
            // Static configuration selects the staged program when it is a `StaticArg`
            // (autoref specialization: other types fall back to contributing nothing).
            quote! {{
                #[allow(unused_imports)]
                use ::ferrax::__rt::{FpFallback as _, FpViaStatic as _};
                (&::ferrax::__rt::FpWrap(&self.#m)).__ferrax_fp(__h);
            }}
        } else {
            quote_spanned!(ty.span()=> <#ty as ::ferrax::__rt::Tree>::fingerprint(&self.#m, __h);)
        }
    });
    let rebuilt = fields.iter().map(|f| {
        let (ty, m) = (f.ty, &f.member);
        if f.is_static {
            let clone = quote_spanned!(ty.span()=>
                <#ty as ::core::clone::Clone>::clone(&self.#m)
            );
            quote!(#m: #clone)
        } else {
            let elem = path_elem(f);
            let call = quote_spanned!(ty.span()=>
                <#ty as ::ferrax::__rt::Tree>::rebuild(&self.#m, __path, &mut *__f)
            );
            quote!(#m: __path.with(#elem, |__path| #call)?)
        }
    });

    quote! {
        #[automatically_derived]
        impl #impl_g ::ferrax::__rt::Tree for #name #ty_g #where_c {
            fn visit(
                &self,
                __path: &mut ::ferrax::__rt::Path,
                __f: &mut dyn ::core::ops::FnMut(&::ferrax::__rt::Path, &::ferrax::__rt::Array),
            ) {
                #(#visits)*
            }
            fn fingerprint(&self, __h: &mut dyn ::core::hash::Hasher) {
                #(#fingerprints)*
            }
            fn rebuild(
                &self,
                __path: &mut ::ferrax::__rt::Path,
                __f: &mut dyn ::core::ops::FnMut(
                    &::ferrax::__rt::Path,
                    &::ferrax::__rt::Array,
                ) -> ::ferrax::__rt::Result<::ferrax::__rt::Array>,
            ) -> ::ferrax::__rt::Result<Self> {
                ::core::result::Result::Ok(Self { #(#rebuilt,)* })
            }
        }

        #[automatically_derived]
        impl #batch_impl_g ::ferrax::__rt::BatchAt<__FX_A, __FxB> for #name #ty_g #where_c {
            type Batched = ::ferrax::__rt::Stacked<Self, __FxB, __FX_A>;
            fn batched(
                &self,
                __leaves: &mut dyn ::core::iter::Iterator<Item = ::ferrax::__rt::Array>,
            ) -> ::ferrax::__rt::Result<Self::Batched> {
                ::ferrax::__rt::stacked_from_iter(self, __leaves)
            }
        }
    }
}

fn path_elem(f: &Field<'_>) -> TokenStream {
    match &f.name {
        Some(n) => quote!(::ferrax::__rt::PathElem::Field(#n)),
        None => {
            let i = f.index;
            quote!(::ferrax::__rt::PathElem::Index(#i))
        }
    }
}

/// Whether `ty` names one of the struct's type parameters anywhere in its tokens.
fn mentions(ty: &Type, params: &HashSet<Ident>) -> bool {
    fn walk(ts: TokenStream, params: &HashSet<Ident>) -> bool {
        ts.into_iter().any(|tt| match tt {
            TokenTree::Ident(id) => params.contains(&id),
            TokenTree::Group(g) => walk(g.stream(), params),
            _ => false,
        })
    }
    !params.is_empty() && walk(ty.to_token_stream(), params)
}

/// An impl with the right signature and no body, emitted next to errors.
fn stub(input: &DeriveInput) -> TokenStream {
    let name = &input.ident;
    let (impl_g, ty_g, where_c) = input.generics.split_for_impl();
    quote! {
        impl #impl_g ::ferrax::__rt::Tree for #name #ty_g #where_c {
            fn visit(
                &self,
                _: &mut ::ferrax::__rt::Path,
                _: &mut dyn ::core::ops::FnMut(&::ferrax::__rt::Path, &::ferrax::__rt::Array),
            ) {
                ::core::unreachable!("derive(Tree) failed")
            }
            fn rebuild(
                &self,
                _: &mut ::ferrax::__rt::Path,
                _: &mut dyn ::core::ops::FnMut(
                    &::ferrax::__rt::Path,
                    &::ferrax::__rt::Array,
                ) -> ::ferrax::__rt::Result<::ferrax::__rt::Array>,
            ) -> ::ferrax::__rt::Result<Self> {
                ::core::unreachable!("derive(Tree) failed")
            }
        }
    }
}
