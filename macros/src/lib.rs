//! ferrax-macros: the attribute and derive macros of ferrax (`#[jit]`, `#[grad]`, `#[vmap]`,
//! `#[derive(Tree)]`, `#[derive(Module)]`). Thin entry points: parse -> validate -> expand;
//! generated code names runtime items through `::ferrax::__rt`.

use proc_macro::TokenStream;

mod grad;
mod jit;
mod module;
mod tree;

/// Implements `Tree` for a struct: every field is a subtree unless marked `#[tree(static)]`.
///
/// Leaf paths use the field names (`l1.w`) or, for tuple structs, the field positions
/// (`0.w`); a `Vec` of submodules adds the index (`layers.3.b`). A `#[tree(static)]` field
/// holds plain data (a size, a flag, a config): it is cloned on rebuild and never visited,
/// so its type needs `Clone` but not `Tree`. Generic structs get a `Tree` bound on each
/// non-static field type that mentions a type parameter (`Vec<T>: Tree`), so shape and
/// element parameters (`S: Shape`, `const N: usize`) need no extra bounds.
///
/// Enums and unions are rejected: a tree has one fixed set of leaves.
#[proc_macro_derive(Tree, attributes(tree))]
pub fn derive_tree(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    tree::derive(input).into()
}

/// Implements `Tree` and ferrax-nn's `Module` for a struct of layers and tensors (Flax NNX
/// style). Tensor and submodule fields are variables: tensors are parameters unless the
/// field is `#[module(state)]` (non-trained state such as batch statistics); submodules
/// report their own kinds. `#[module(static)]` (or `#[tree(static)]`) marks configuration,
/// `#[module(training)]` a `bool` that `train()` / `eval()` set. `#[module(crate = path)]`
/// names the nn crate when it is not `::ferrax::nn`.
#[proc_macro_derive(Module, attributes(module, tree))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    module::derive(input).into()
}

/// Stages a function: on the first call for a given key (generic parameters, leaf shapes and
/// dtypes, static argument values, device) the body is traced into a program, optimized,
/// compiled and cached; later calls run the cached executable.
///
/// Arguments that are trees (tensors, `#[derive(Tree)]` structs, tuples, `Vec`s of them) are
/// traced leaf by leaf; scalars and strings are static (part of the key), and
/// `#[jit(static_args(a, b))]` makes other arguments static (they must implement
/// `StaticArg`). `&mut` tree arguments are threaded: their new values are written back after
/// each call. Called inside another staged function, the body is inlined. With
/// `FERRAX_DISABLE_JIT=1` (or inside `ferrax::jit::disable_jit`) the body runs eagerly.
///
/// Companions: `f::stats()` (cache counters) and `f::trace(args)` (the staged program).
#[proc_macro_attribute]
pub fn jit(attr: TokenStream, item: TokenStream) -> TokenStream {
    jit::expand(attr.into(), item.into()).into()
}

/// Differentiates a function with a scalar (`Tensor<()>`) output. The function stays as
/// written; companions on `f::` compute its derivatives with types checked by rustc:
///
/// - `f::grad(args)`: the gradient, with the type of the differentiated argument (a struct
///   of parameters gets the same struct back; several `wrt` arguments give a tuple);
/// - `f::value_and_grad(args)`: `(value, grad)`, staged and cached like `#[jit]`;
/// - `f::vjp(args)`: `(value, pullback)`; `f::jvp(args, tangents...)`: `(value, tangent)`.
///
/// Options: `wrt = name` or `wrt = (a, b)` (default: the first argument), `has_aux` (the
/// function returns `(loss, aux)`; `grad` then returns `(grad, aux)`). Integer leaves get
/// zero gradients. Helpers and methods called by the body are differentiated through
/// tracing; nothing else needs an annotation.
#[proc_macro_attribute]
pub fn grad(attr: TokenStream, item: TokenStream) -> TokenStream {
    grad::expand(attr.into(), item.into()).into()
}
