//! ferrax-macros: the attribute and derive macros of ferrax (`#[jit]`, `#[grad]`, `#[vmap]`,
//! `#[derive(Tree)]`, `#[derive(Module)]`). Thin entry points: parse -> validate -> expand;
//! generated code names runtime items through `::ferrax::__rt`.

use proc_macro::TokenStream;

/// Implements `Tree` for a struct: every field is a subtree unless marked `#[tree(static)]`.
#[proc_macro_derive(Tree, attributes(tree))]
pub fn derive_tree(input: TokenStream) -> TokenStream {
    let _ = input;
    TokenStream::new()
}
