//! ferrax-macros: the attribute and derive macros of ferrax (`#[jit]`, `#[grad]`, `#[vmap]`,
//! `#[derive(Tree)]`, `#[derive(Module)]`). Thin entry points: parse -> validate -> expand;
//! generated code names runtime items through `::ferrax::__rt`.

use proc_macro::TokenStream;

mod compose;
mod grad;
mod jit;
mod module;
mod rewrite;
mod tree;
mod vmap;

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
///
/// Control flow on tensors is staged: in the body, `if c { .. } else { .. }` with `c` a
/// `Tensor<(), bool>` becomes `cond`, `while c { .. }` becomes `while_loop`, and
/// `for i in lo..hi` with `hi` a `Tensor<(), I: Int>` becomes `fori_loop` (`i` is then a
/// `Tensor<(), i32>`; a known bound gives a differentiable `scan`, a traced one a
/// `while_loop`). The variables declared before the statement and assigned (`x = ..`,
/// `x += ..`) inside it are its carried state (they must be trees); values it only reads are
/// captured. With `bool` / integer conditions the same code runs as plain Rust (unrolled
/// while tracing). The type decides, so the same function works with both. Not stageable,
/// and reported at compile time with what to write instead when the condition is a tensor:
/// `return`, `?`, `break` / `continue` out of the statement, assignments to fields, indices
/// or through references, initializing a `let x;` in an `if`, and loops that assign no
/// variable. `if let`, `while let`, `match` and `for` over iterators are left as written.
/// Within a staged `if`, values the branches use must be `Clone` (both branches run while
/// tracing), so they cannot call `&mut self` methods on outer values.
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

/// Batches a function: the companion `f::vmap` maps it over a batch axis. Mapped arguments
/// and the outputs get the batch dim `B` (`C<N>` or `Dyn`, inferred from the arguments)
/// inserted at their axis, computed by rustc: `x: &Tensor<(C<784>,)>` mapped at 0 takes a
/// `&Tensor<(B, C<784>)>`; a `#[derive(Tree)]` output becomes `Stacked<T, B>` (one array per
/// leaf with the batch axis); tuples and `Vec`s batch leaf by leaf. Mismatched batch sizes of
/// static dims are compile errors.
///
/// Options: `in_axes = (None, 0, 1)` (one entry per argument; `None` broadcasts the argument,
/// a tree's entry applies to all its leaves; a single `0` maps every tree argument; default:
/// every tree argument at 0, static arguments unmapped) and `out_axes = 0 | None | (0, None)`
/// (per output element of a tuple output). The body is traced once per call on one example
/// and batched primitive by primitive, so it works eagerly and inside `#[jit]`.
///
/// `#[vmap]` cannot share a function with `#[jit]`/`#[grad]` (each generates the companion
/// `f`): compose with `fx::jit!`, `fx::grad!`, `fx::vmap!` instead.
#[proc_macro_attribute]
pub fn vmap(attr: TokenStream, item: TokenStream) -> TokenStream {
    vmap::expand(attr.into(), item.into()).into()
}

/// `fx::grad!(f, wrt = w)`: the gradient closure of a scalar function (see the facade's
/// `ferrax::fx` module for the composition surface).
#[proc_macro]
pub fn fx_grad(input: TokenStream) -> TokenStream {
    compose::expand(compose::Kind::Grad, input.into()).into()
}

/// `fx::value_and_grad!(f, wrt = w)`: a closure returning `(value, gradient)`.
#[proc_macro]
pub fn fx_value_and_grad(input: TokenStream) -> TokenStream {
    compose::expand(compose::Kind::ValueAndGrad, input.into()).into()
}

/// `fx::jvp!(f, wrt = x)`: a closure taking the parameters then one tangent per `wrt`
/// parameter, returning `(value, tangent)`.
#[proc_macro]
pub fn fx_jvp(input: TokenStream) -> TokenStream {
    compose::expand(compose::Kind::Jvp, input.into()).into()
}

/// `fx::vmap!(f, in_axes = (None, 0), out_axes = 0)`: a closure mapping `f` over a batch.
#[proc_macro]
pub fn fx_vmap(input: TokenStream) -> TokenStream {
    compose::expand(compose::Kind::Vmap, input.into()).into()
}

/// `fx::jit!(f)`: a staged closure with its own executable cache.
#[proc_macro]
pub fn fx_jit(input: TokenStream) -> TokenStream {
    compose::expand(compose::Kind::Jit, input.into()).into()
}
