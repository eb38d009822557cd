//! Batching as a program transformation: a program written for one example is re-emitted
//! over arrays carrying a batch axis, primitive by primitive through their `batch` rules.
//! A primitive without a rule falls back to running once per example and stacking, which
//! is always correct (and slow), so every primitive batches.

use crate::array::{AVal, Array};
use crate::dim::{Dim, Dyn};
use crate::dtype::Elem;
use crate::error::{Error, Result};
use crate::ir::{Program, Var};
use crate::prim::concatenate::stack;
use crate::prim::reshape::reshape;
use crate::prim::slice::slice_in_dim;
use crate::prim::transpose::transpose;
use crate::shape_axes::{InsertAxis, RemoveAxis};
use crate::tensor::Tensor;
use crate::trace::{trace_fn, TraceScope};
use crate::tree::Tree;
use std::collections::HashMap;
use std::marker::PhantomData;

/// Moves axis `from` of `x` to position `to`.
pub fn move_axis(x: &Array, from: usize, to: usize) -> Result<Array> {
    if from == to {
        return Ok(x.clone());
    }
    let mut perm: Vec<usize> = (0..x.rank()).filter(|&a| a != from).collect();
    perm.insert(to, from);
    transpose(x, &perm)
}

/// Example `i` of `x` along `axis` (the axis removed).
pub fn index_axis(x: &Array, axis: usize, i: usize) -> Result<Array> {
    let s = slice_in_dim(x, axis, i, i + 1, 1)?;
    let mut shape = x.shape().to_vec();
    shape.remove(axis);
    reshape(&s, &shape)
}

fn batch_size(args: &[Array], dims: &[Option<usize>]) -> Result<usize> {
    let mut size = None;
    for (a, d) in args.iter().zip(dims) {
        if let Some(d) = d {
            let n = *a.shape().get(*d).ok_or_else(|| {
                Error::invalid(
                    "vmap",
                    format!("batch axis {d} out of range for shape {:?}", a.shape()),
                )
            })?;
            match size {
                None => size = Some(n),
                Some(m) if m != n => {
                    return Err(Error::shape(
                        "vmap",
                        format!("batched operands disagree on the batch size: {m} vs {n}"),
                    ))
                }
                _ => {}
            }
        }
    }
    size.ok_or_else(|| Error::invalid("vmap", "no operand is batched"))
}

/// The per-example fallback: run the primitive on each example and stack along axis 0.
fn batch_by_loop(
    prim: &std::sync::Arc<dyn crate::prim::Primitive>,
    args: &[Array],
    dims: &[Option<usize>],
) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
    let n = batch_size(args, dims)?;
    let mut per_out: Vec<Vec<Array>> = Vec::new();
    for i in 0..n {
        let ex: Vec<Array> = args
            .iter()
            .zip(dims)
            .map(|(a, d)| match d {
                Some(d) => index_axis(a, *d, i),
                None => Ok(a.clone()),
            })
            .collect::<Result<_>>()?;
        let refs: Vec<&Array> = ex.iter().collect();
        let outs = crate::array::bind(prim.clone(), &refs)?;
        if per_out.is_empty() {
            per_out = vec![Vec::with_capacity(n); outs.len()];
        }
        for (k, o) in outs.into_iter().enumerate() {
            per_out[k].push(o);
        }
    }
    let outs = per_out
        .iter()
        .map(|xs| {
            let refs: Vec<&Array> = xs.iter().collect();
            stack(&refs, 0)
        })
        .collect::<Result<Vec<_>>>()?;
    let dims = vec![Some(0); outs.len()];
    Ok((outs, dims))
}

/// Emits `p` over batched arguments (`in_dims[i]` = the batch axis of argument `i`, or
/// `None` if it is shared by all examples). Returns the outputs with their batch axes.
pub fn batch_emit(
    p: &Program,
    args: &[Array],
    in_dims: &[Option<usize>],
) -> Result<(Vec<Array>, Vec<Option<usize>>)> {
    let mut env: HashMap<Var, (Array, Option<usize>)> = HashMap::with_capacity(p.avals.len());
    for ((v, a), d) in p.inputs.iter().zip(args).zip(in_dims) {
        env.insert(*v, (a.clone(), *d));
    }
    for (v, a) in &p.consts {
        env.insert(*v, (a.clone(), None));
    }
    for e in &p.eqns {
        let ins: Vec<Array> = e.ins.iter().map(|v| env[v].0.clone()).collect();
        let dims: Vec<Option<usize>> = e.ins.iter().map(|v| env[v].1).collect();
        let (outs, out_dims) = if dims.iter().all(|d| d.is_none()) {
            let refs: Vec<&Array> = ins.iter().collect();
            let outs = crate::array::bind(e.prim.clone(), &refs)?;
            let n = outs.len();
            (outs, vec![None; n])
        } else {
            match e.prim.batch(&ins, &dims) {
                Ok(r) => r,
                Err(Error::Unsupported { .. }) => batch_by_loop(&e.prim, &ins, &dims)?,
                Err(err) => return Err(err),
            }
        };
        for ((o, a), d) in e.outs.iter().zip(outs).zip(out_dims) {
            env.insert(*o, (a, d));
        }
    }
    Ok(p.outputs.iter().map(|v| env[v].clone()).unzip())
}

/// Places an output's batch axis at `out_axis`, broadcasting outputs that do not depend on
/// the batch (as `jax.vmap` does); `None` requires an unbatched output.
pub fn finish_output(
    x: Array,
    dim: Option<usize>,
    out_axis: Option<usize>,
    size: usize,
) -> Result<Array> {
    match (dim, out_axis) {
        (Some(d), Some(o)) => move_axis(&x, d, o),
        (None, Some(o)) => {
            let mut shape = x.shape().to_vec();
            shape.insert(o, size);
            let dims: Vec<usize> = (0..x.rank()).map(|i| if i < o { i } else { i + 1 }).collect();
            crate::prim::broadcast_in_dim::broadcast_in_dim(&x, &shape, &dims)
        }
        (None, None) => Ok(x),
        (Some(_), None) => Err(Error::invalid(
            "vmap",
            "an output with out_axes=None depends on the mapped axis; it must be the same for every example",
        )),
    }
}

/// `jax.vmap` on array functions: maps `f` over axis `in_axes[i]` of each argument (`None`
/// = broadcast to every example) and stacks results along `out_axes[j]`. `f` is traced once
/// on one example's shapes; works eagerly and inside staged functions.
pub fn vmap(
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
    args: &[Array],
    in_axes: &[Option<usize>],
    out_axes: &[Option<usize>],
) -> Result<Vec<Array>> {
    if in_axes.len() != args.len() {
        return Err(Error::invalid(
            "vmap",
            format!("{} arguments but {} in_axes", args.len(), in_axes.len()),
        ));
    }
    let size = batch_size(args, in_axes)?;
    let avals: Vec<AVal> = args
        .iter()
        .zip(in_axes)
        .map(|(a, d)| {
            let mut s = a.shape().to_vec();
            if let Some(d) = d {
                s.remove(*d);
            }
            AVal::new(s, a.dtype())
        })
        .collect();
    let (prog, captured) = trace_fn(&avals, f)?;
    let mut all_args = args.to_vec();
    let mut dims = in_axes.to_vec();
    for c in captured {
        all_args.push(c);
        dims.push(None);
    }
    let (outs, out_dims) = batch_emit(&prog, &all_args, &dims)?;
    if out_axes.len() != outs.len() && out_axes.len() != 1 {
        return Err(Error::invalid(
            "vmap",
            format!("{} outputs but {} out_axes", outs.len(), out_axes.len()),
        ));
    }
    outs.into_iter()
        .zip(out_dims)
        .enumerate()
        .map(|(i, (o, d))| {
            finish_output(
                o,
                d,
                out_axes[if out_axes.len() == 1 { 0 } else { i }],
                size,
            )
        })
        .collect()
}

// ---- tree-level vmap --------------------------------------------------------------------

/// `vmap` over trees: `in_axes[i]` applies to every leaf of the tree `args[i]` (`None`
/// broadcasts the whole tree to every example), as an in_axes entry for a pytree does in
/// `jax.vmap`. `f` receives the example leaves flattened in argument order and returns
/// output leaves; `out_axes` applies per output (one entry for all, or one each).
pub fn vmap_trees(
    f: impl FnOnce(&[Array]) -> Result<Vec<Array>>,
    args: &[Vec<Array>],
    in_axes: &[Option<usize>],
    out_axes: &[Option<usize>],
) -> Result<Vec<Array>> {
    if in_axes.len() != args.len() {
        return Err(Error::invalid(
            "vmap",
            format!(
                "{} argument trees but {} in_axes",
                args.len(),
                in_axes.len()
            ),
        ));
    }
    let mut leaves = Vec::new();
    let mut axes = Vec::new();
    for (tree, ax) in args.iter().zip(in_axes) {
        for leaf in tree {
            leaves.push(leaf.clone());
            axes.push(*ax);
        }
    }
    vmap(f, &leaves, &axes, out_axes)
}

// ---- typed batching: the runtime of `#[vmap]` and `fx::vmap!` ------------------------------

/// A tree whose batched form has a type: every leaf gets a batch axis of dim `B` inserted at
/// axis `A` (`Tensor<S, E>` becomes `Tensor<S + B at A, E>`; tuples, `Vec`s, arrays,
/// `Option`s and `Box`es batch leaf by leaf; a `#[derive(Tree)]` struct becomes
/// [`Stacked<Self, B, A>`]). This is how `#[vmap]` computes its output types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no batched type with a batch axis at {A}",
    label = "cannot insert a batch axis at {A} into every leaf of this",
    note = "tensors batch to a tensor of rank + 1 (rank 6 at most); trees batch leaf by leaf; `#[derive(Tree)]` structs batch to `Stacked<Self, B>`"
)]
pub trait BatchAt<const A: usize, B: Dim>: Tree {
    /// The batched tree.
    type Batched: Tree;
    /// Builds the batched tree from batched leaves (visit order); `self` gives the
    /// structure (an example's value; its leaves are only read for their shapes).
    fn batched(&self, leaves: &mut dyn Iterator<Item = Array>) -> Result<Self::Batched>;
}

/// A tree whose leaves all carry a batch axis at `A` of one dim, `BatchDim`: the inverse of
/// [`BatchAt`]. `#[vmap]` infers the batch dim of its mapped arguments through it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be mapped over axis {A}",
    label = "this has no batch axis {A} on every leaf, or its leaves disagree on the batch dim",
    note = "mapped arguments are tensors with the batch axis added, tuples/`Vec`s of them, or `Stacked<T, B>` for batched structs"
)]
pub trait UnbatchAt<const A: usize>: Tree {
    /// One example's tree.
    type Example: Tree;
    /// The batch dim (`C<N>` or `Dyn`).
    type BatchDim: Dim;
    /// The example tree whose leaves are `f(batched_leaf)`, in visit order.
    fn example(&self, f: &mut dyn FnMut(&Array) -> Result<Array>) -> Result<Self::Example>;
}

fn next_leaf(it: &mut dyn Iterator<Item = Array>) -> Result<Array> {
    it.next()
        .ok_or_else(|| Error::invalid("vmap", "fewer batched leaves than the output has"))
}

impl<S, E, const A: usize, B: Dim> BatchAt<A, B> for Tensor<S, E>
where
    S: InsertAxis<A, B>,
    E: Elem,
{
    type Batched = Tensor<<S as InsertAxis<A, B>>::Out, E>;
    fn batched(&self, leaves: &mut dyn Iterator<Item = Array>) -> Result<Self::Batched> {
        Tensor::from_array(next_leaf(leaves)?)
    }
}

impl<S, E, const A: usize> UnbatchAt<A> for Tensor<S, E>
where
    S: RemoveAxis<A>,
    E: Elem,
{
    type Example = Tensor<<S as RemoveAxis<A>>::Out, E>;
    type BatchDim = <S as RemoveAxis<A>>::Removed;
    fn example(&self, f: &mut dyn FnMut(&Array) -> Result<Array>) -> Result<Self::Example> {
        Tensor::from_array(f(self.array())?)
    }
}

impl<const A: usize, B: Dim> BatchAt<A, B> for Array {
    type Batched = Array;
    fn batched(&self, leaves: &mut dyn Iterator<Item = Array>) -> Result<Array> {
        next_leaf(leaves)
    }
}

impl<const A: usize> UnbatchAt<A> for Array {
    type Example = Array;
    type BatchDim = Dyn;
    fn example(&self, f: &mut dyn FnMut(&Array) -> Result<Array>) -> Result<Array> {
        f(self)
    }
}

impl<const A: usize, B: Dim> BatchAt<A, B> for () {
    type Batched = ();
    fn batched(&self, _: &mut dyn Iterator<Item = Array>) -> Result<()> {
        Ok(())
    }
}

impl<T: BatchAt<A, B>, const A: usize, B: Dim> BatchAt<A, B> for Vec<T> {
    type Batched = Vec<T::Batched>;
    fn batched(&self, leaves: &mut dyn Iterator<Item = Array>) -> Result<Self::Batched> {
        self.iter().map(|t| t.batched(leaves)).collect()
    }
}

impl<T: UnbatchAt<A>, const A: usize> UnbatchAt<A> for Vec<T> {
    type Example = Vec<T::Example>;
    type BatchDim = T::BatchDim;
    fn example(&self, f: &mut dyn FnMut(&Array) -> Result<Array>) -> Result<Self::Example> {
        self.iter().map(|t| t.example(f)).collect()
    }
}

impl<T: BatchAt<A, B>, const A: usize, B: Dim, const N: usize> BatchAt<A, B> for [T; N] {
    type Batched = [T::Batched; N];
    fn batched(&self, leaves: &mut dyn Iterator<Item = Array>) -> Result<Self::Batched> {
        let v = self
            .iter()
            .map(|t| t.batched(leaves))
            .collect::<Result<Vec<_>>>()?;
        Ok(v.try_into()
            .unwrap_or_else(|_| unreachable!("one element batched per element")))
    }
}

impl<T: UnbatchAt<A>, const A: usize, const N: usize> UnbatchAt<A> for [T; N] {
    type Example = [T::Example; N];
    type BatchDim = T::BatchDim;
    fn example(&self, f: &mut dyn FnMut(&Array) -> Result<Array>) -> Result<Self::Example> {
        let v = self
            .iter()
            .map(|t| t.example(f))
            .collect::<Result<Vec<_>>>()?;
        Ok(v.try_into()
            .unwrap_or_else(|_| unreachable!("one example per element")))
    }
}

impl<T: BatchAt<A, B>, const A: usize, B: Dim> BatchAt<A, B> for Option<T> {
    type Batched = Option<T::Batched>;
    fn batched(&self, leaves: &mut dyn Iterator<Item = Array>) -> Result<Self::Batched> {
        self.as_ref().map(|t| t.batched(leaves)).transpose()
    }
}

impl<T: UnbatchAt<A>, const A: usize> UnbatchAt<A> for Option<T> {
    type Example = Option<T::Example>;
    type BatchDim = T::BatchDim;
    fn example(&self, f: &mut dyn FnMut(&Array) -> Result<Array>) -> Result<Self::Example> {
        self.as_ref().map(|t| t.example(f)).transpose()
    }
}

impl<T: BatchAt<A, B>, const A: usize, B: Dim> BatchAt<A, B> for Box<T> {
    type Batched = Box<T::Batched>;
    fn batched(&self, leaves: &mut dyn Iterator<Item = Array>) -> Result<Self::Batched> {
        Ok(Box::new((**self).batched(leaves)?))
    }
}

impl<T: UnbatchAt<A>, const A: usize> UnbatchAt<A> for Box<T> {
    type Example = Box<T::Example>;
    type BatchDim = T::BatchDim;
    fn example(&self, f: &mut dyn FnMut(&Array) -> Result<Array>) -> Result<Self::Example> {
        Ok(Box::new((**self).example(f)?))
    }
}

macro_rules! tuple_batch {
    ($T0:ident 0 $(, $T:ident $i:tt)*) => {
        impl<$T0: BatchAt<AX, BD>, $($T: BatchAt<AX, BD>,)* const AX: usize, BD: Dim>
            BatchAt<AX, BD> for ($T0, $($T,)*)
        {
            type Batched = ($T0::Batched, $($T::Batched,)*);
            fn batched(&self, leaves: &mut dyn Iterator<Item = Array>) -> Result<Self::Batched> {
                Ok((self.0.batched(leaves)?, $(self.$i.batched(leaves)?,)*))
            }
        }
        // Every element must agree on the batch dim: a (C<4>, C<5>) pair is a type error.
        impl<$T0: UnbatchAt<AX>, $($T: UnbatchAt<AX, BatchDim = $T0::BatchDim>,)* const AX: usize>
            UnbatchAt<AX> for ($T0, $($T,)*)
        {
            type Example = ($T0::Example, $($T::Example,)*);
            type BatchDim = $T0::BatchDim;
            fn example(
                &self,
                f: &mut dyn FnMut(&Array) -> Result<Array>,
            ) -> Result<Self::Example> {
                Ok((self.0.example(f)?, $(self.$i.example(f)?,)*))
            }
        }
    };
}
tuple_batch!(T0 0);
tuple_batch!(T0 0, T1 1);
tuple_batch!(T0 0, T1 1, T2 2);
tuple_batch!(T0 0, T1 1, T2 2, T3 3);
tuple_batch!(T0 0, T1 1, T2 2, T3 3, T4 4);
tuple_batch!(T0 0, T1 1, T2 2, T3 3, T4 4, T5 5);

/// A batch of trees of type `T` held as one array per leaf, each with the batch axis (dim
/// `B`) at `A`: the batched form of a `#[derive(Tree)]` struct, whose own field types fix the
/// example shapes. Per-example gradients of a model are a `Stacked<Model, C<N>>`.
///
/// It is a [`Tree`] (its leaves are the batched arrays at the struct's paths), so it can be
/// staged, differentiated, vmapped again, saved and summarized like any tree.
pub struct Stacked<T, B: Dim, const A: usize = 0> {
    // The structure: an example whose leaves are read only for their shapes and dtypes (it
    // may hold tracers of a finished trace, so it is never handed out).
    template: T,
    leaves: Vec<Array>,
    batch: B,
}

impl<T: Tree, B: Dim, const A: usize> std::fmt::Debug for Stacked<T, B, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: Vec<String> = crate::tree::paths(&self.template)
            .iter()
            .zip(&self.leaves)
            .map(|(p, a)| format!("{p}: {:?}", a.shape()))
            .collect();
        write!(
            f,
            "Stacked(batch {} at axis {A}; {})",
            self.batch.size(),
            rows.join(", ")
        )
    }
}

impl<T: Tree, B: Dim, const A: usize> Stacked<T, B, A> {
    /// Checks batched `leaves` against `template`'s leaves (the same shape with the batch
    /// axis inserted at `A`, the same dtype, one batch size fitting `B`).
    pub fn from_leaves(template: T, leaves: Vec<Array>) -> Result<Self> {
        let want = crate::tree::leaves_with_paths(&template);
        if want.len() != leaves.len() {
            return Err(Error::Tree(format!(
                "Stacked: the structure has {} leaves but {} batched leaves were given",
                want.len(),
                leaves.len()
            )));
        }
        let mut size = B::STATIC;
        for ((p, ex), l) in want.iter().zip(&leaves) {
            let mut s = l.shape().to_vec();
            if A >= s.len() || l.dtype() != ex.dtype() {
                return Err(Error::Tree(format!(
                    "Stacked: leaf {} is {} {:?}, which is not a batch of {} {:?} along axis {A}",
                    p.describe(),
                    l.dtype(),
                    l.shape(),
                    ex.dtype(),
                    ex.shape()
                )));
            }
            let n = s.remove(A);
            if s != ex.shape() {
                return Err(Error::Tree(format!(
                    "Stacked: leaf {} has shape {:?}, which is not a batch of {:?} along axis {A}",
                    p.describe(),
                    l.shape(),
                    ex.shape()
                )));
            }
            match size {
                Some(m) if m != n => {
                    return Err(Error::shape(
                        "Stacked",
                        format!("leaf {} has batch size {n}, expected {m}", p.describe()),
                    ))
                }
                _ => size = Some(n),
            }
        }
        let n = size.unwrap_or(0);
        let batch = B::from_size(n).ok_or_else(|| {
            Error::shape(
                "Stacked",
                format!("batch size {n} does not fit the batch dim"),
            )
        })?;
        Ok(Stacked {
            template,
            leaves,
            batch,
        })
    }

    /// Stacks examples along axis `A` (all of `T`'s structure; at least one example).
    pub fn stack(examples: &[T]) -> Result<Self> {
        let first = examples
            .first()
            .ok_or_else(|| Error::invalid("Stacked::stack", "no examples to stack"))?;
        let per: Vec<Vec<Array>> = examples.iter().map(crate::tree::leaves).collect();
        let leaves = (0..per[0].len())
            .map(|k| {
                let col: Vec<&Array> = per.iter().map(|ls| &ls[k]).collect();
                stack(&col, A)
            })
            .collect::<Result<Vec<_>>>()?;
        let template = crate::ad::tree_clone(first);
        Self::from_leaves(template, leaves)
    }

    /// The batch size.
    pub fn len(&self) -> usize {
        self.batch.size()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batch dim value.
    pub fn batch_dim(&self) -> B {
        self.batch
    }

    /// The batched leaves in visit order.
    pub fn leaves(&self) -> &[Array] {
        &self.leaves
    }

    fn rebuild_template(&self, mut f: impl FnMut(&Array) -> Result<Array>) -> Result<T> {
        let mut k = 0;
        self.template
            .rebuild(&mut crate::tree::Path::default(), &mut |_, _| {
                let r = f(&self.leaves[k]);
                k += 1;
                r
            })
    }

    /// Example `i`.
    pub fn get(&self, i: usize) -> Result<T> {
        if i >= self.len() {
            return Err(Error::invalid(
                "Stacked::get",
                format!("example {i} out of range for a batch of {}", self.len()),
            ));
        }
        self.rebuild_template(|l| index_axis(l, A, i))
    }

    /// Every example, in order.
    pub fn unstack(&self) -> Result<Vec<T>> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }

    /// The sum over the batch, leaf by leaf.
    pub fn sum(&self) -> Result<T> {
        self.rebuild_template(|l| crate::prim::reduce::reduce_sum(l, &[A]))
    }

    /// The mean over the batch, leaf by leaf (float leaves).
    pub fn mean(&self) -> Result<T> {
        let n = self.len() as f64;
        self.rebuild_template(|l| {
            let s = crate::prim::reduce::reduce_sum(l, &[A])?;
            let d = Array::full(s.shape(), s.dtype(), n);
            crate::prim::binary::div(&s, &d)
        })
    }
}

impl<T: Tree, B: Dim, const A: usize> Tree for Stacked<T, B, A> {
    fn visit(&self, path: &mut crate::tree::Path, f: &mut dyn FnMut(&crate::tree::Path, &Array)) {
        let mut k = 0;
        self.template.visit(path, &mut |p, _| {
            f(p, &self.leaves[k]);
            k += 1;
        });
    }
    fn rebuild(
        &self,
        path: &mut crate::tree::Path,
        f: &mut dyn FnMut(&crate::tree::Path, &Array) -> Result<Array>,
    ) -> Result<Self> {
        let mut k = 0;
        let mut new = Vec::with_capacity(self.leaves.len());
        self.template.visit(path, &mut |p, _| {
            new.push(f(p, &self.leaves[k]));
            k += 1;
        });
        let new = new.into_iter().collect::<Result<Vec<_>>>()?;
        Self::from_leaves(crate::ad::tree_clone(&self.template), new)
    }
    fn fingerprint(&self, h: &mut dyn std::hash::Hasher) {
        self.template.fingerprint(h)
    }
}

impl<T: Tree, B0: Dim, const A0: usize, const A: usize, B: Dim> BatchAt<A, B>
    for Stacked<T, B0, A0>
{
    type Batched = Stacked<Stacked<T, B0, A0>, B, A>;
    fn batched(&self, leaves: &mut dyn Iterator<Item = Array>) -> Result<Self::Batched> {
        stacked_from_iter(self, leaves)
    }
}

impl<T: Tree, B: Dim, const A: usize> UnbatchAt<A> for Stacked<T, B, A> {
    type Example = T;
    type BatchDim = B;
    fn example(&self, f: &mut dyn FnMut(&Array) -> Result<Array>) -> Result<T> {
        self.rebuild_template(f)
    }
}

/// The batched form of a struct: `Stacked<T, B, A>` over the next `leaf_count(t)` leaves.
/// Called by the `BatchAt` impl `#[derive(Tree)]` generates.
#[doc(hidden)]
pub fn stacked_from_iter<T: Tree, B: Dim, const A: usize>(
    t: &T,
    leaves: &mut dyn Iterator<Item = Array>,
) -> Result<Stacked<T, B, A>> {
    let n = crate::tree::leaf_count(t);
    let ls = leaves.take(n).collect::<Vec<_>>();
    Stacked::from_leaves(crate::ad::tree_clone(t), ls)
}

// Output axis spec of `#[vmap]` / `fx::vmap!`: `Ax<A>` (the axis marker of the shape
// algebra) batches an output at axis `A`. Imported privately so that diagnostics keep
// naming it `shape_axes::Ax`.
use crate::shape_axes::Ax;

/// Output axis spec: not batched (the output must not depend on the mapped axis).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoAx;

/// How an output tree `R` is finished under an out_axes spec (`Ax<A>`, `NoAx`, or a tuple
/// of specs for a tuple output), with batch dim `B`.
#[diagnostic::on_unimplemented(
    message = "out_axes `{Self}` does not fit the output `{R}`",
    note = "a tuple of out_axes needs a tuple output with one entry per element"
)]
pub trait OutSpec<R, B: Dim> {
    /// The batched output type.
    type Out;
    /// Consumes `R`'s leaves from `o`.
    fn finish(o: &mut VmapOut, template: &R) -> Result<Self::Out>;
}

impl<R: BatchAt<A, B>, B: Dim, const A: usize> OutSpec<R, B> for Ax<A> {
    type Out = R::Batched;
    fn finish(o: &mut VmapOut, template: &R) -> Result<R::Batched> {
        let n = crate::tree::leaf_count(template);
        let leaves = o.take(n, Some(A))?;
        template.batched(&mut leaves.into_iter())
    }
}

impl<R: Tree, B: Dim> OutSpec<R, B> for NoAx {
    type Out = R;
    fn finish(o: &mut VmapOut, template: &R) -> Result<R> {
        let n = crate::tree::leaf_count(template);
        let leaves = o.take(n, None)?;
        crate::tree::unflatten(template, leaves)
    }
}

macro_rules! tuple_spec {
    ($($S:ident $R:ident $i:tt),+) => {
        impl<$($S: OutSpec<$R, BD>, $R,)+ BD: Dim> OutSpec<($($R,)+), BD> for ($($S,)+) {
            type Out = ($($S::Out,)+);
            fn finish(o: &mut VmapOut, template: &($($R,)+)) -> Result<Self::Out> {
                Ok(($($S::finish(o, &template.$i)?,)+))
            }
        }
    };
}
tuple_spec!(S0 R0 0);
tuple_spec!(S0 R0 0, S1 R1 1);
tuple_spec!(S0 R0 0, S1 R1 1, S2 R2 2);
tuple_spec!(S0 R0 0, S1 R1 1, S2 R2 2, S3 R3 3);

/// A `vmap` call being assembled by generated code: argument trees with their (tree-level)
/// axes, then [`VmapCall::run`] traces one example and batches the program.
#[derive(Debug)]
pub struct VmapCall {
    op: &'static str,
    leaves: Vec<Array>,
    axes: Vec<Option<usize>>,
}

/// The example inputs handed to the traced body, in argument order.
#[derive(Debug)]
pub struct Examples {
    ins: std::vec::IntoIter<Array>,
}

impl Examples {
    fn next(&mut self) -> Result<Array> {
        self.ins
            .next()
            .ok_or_else(|| Error::invalid("vmap", "more example leaves requested than recorded"))
    }
    /// One example of a mapped argument (its type is `X::Example`).
    pub fn mapped<const A: usize, X: UnbatchAt<A>>(&mut self, x: &X) -> Result<X::Example> {
        x.example(&mut |_| self.next())
    }
    /// A broadcast (unmapped) argument, as the traced body sees it.
    pub fn unmapped<T: Tree>(&mut self, t: &T) -> Result<T> {
        t.rebuild(&mut crate::tree::Path::default(), &mut |_, _| self.next())
    }
}

/// The batched outputs of a [`VmapCall`] with the traced result as the structure.
#[derive(Debug)]
pub struct VmapOut {
    outs: std::vec::IntoIter<(Array, Option<usize>)>,
    size: usize,
}

impl VmapOut {
    fn take(&mut self, n: usize, axis: Option<usize>) -> Result<Vec<Array>> {
        let size = self.size;
        (0..n)
            .map(|_| {
                let (a, d) = self.outs.next().ok_or_else(|| {
                    Error::invalid("vmap", "the output has fewer leaves than expected")
                })?;
                finish_output(a, d, axis, size)
            })
            .collect()
    }
}

/// `PhantomData` of the batch dim of a mapped argument: lets generated code name `B`
/// without writing a type.
#[doc(hidden)]
pub fn batch_dim_of<const A: usize, X: UnbatchAt<A>>(_: &X) -> PhantomData<X::BatchDim> {
    PhantomData
}

impl VmapCall {
    /// A call of the function `op` (named in errors).
    pub fn new(op: &'static str) -> Self {
        VmapCall {
            op,
            leaves: Vec::new(),
            axes: Vec::new(),
        }
    }
    /// Records a tree mapped over axis `axis` of every leaf.
    pub fn mapped<T: Tree>(&mut self, t: &T, axis: usize) {
        crate::tree::for_each_leaf(t, |_, a| {
            self.leaves.push(a.clone());
            self.axes.push(Some(axis));
        });
    }
    /// Records a tree broadcast to every example.
    pub fn unmapped<T: Tree>(&mut self, t: &T) {
        crate::tree::for_each_leaf(t, |_, a| {
            self.leaves.push(a.clone());
            self.axes.push(None);
        });
    }
    /// Traces `f` on one example (built by `f` from [`Examples`], in recording order) and
    /// batches it; `finish` then shapes the outputs under an out_axes spec of batch dim `B`.
    pub fn run<R: Tree, S: OutSpec<R, B>, B: Dim>(
        self,
        f: impl FnOnce(&mut Examples) -> Result<R>,
        _spec: S,
        _batch: PhantomData<B>,
    ) -> Result<S::Out> {
        let op = self.op;
        let size = batch_size(&self.leaves, &self.axes).map_err(|e| rename(e, op))?;
        if B::from_size(size).is_none() {
            return Err(Error::shape(
                op,
                format!("batch size {size} does not fit the batch dim"),
            ));
        }
        let scope = TraceScope::begin();
        let ins: Vec<Array> = self
            .leaves
            .iter()
            .zip(&self.axes)
            .map(|(a, d)| {
                let mut s = a.shape().to_vec();
                if let Some(d) = d {
                    s.remove(*d);
                }
                scope.new_input(AVal::new(s, a.dtype()))
            })
            .collect();
        let mut ex = Examples {
            ins: ins.into_iter(),
        };
        let r = f(&mut ex)?;
        let outs = crate::tree::leaves(&r);
        let (prog, captured) = scope.finish(&outs)?;
        let mut args = self.leaves;
        let mut dims = self.axes;
        for c in captured {
            args.push(c);
            dims.push(None);
        }
        let (outs, out_dims) = batch_emit(&prog, &args, &dims)?;
        let mut o = VmapOut {
            outs: outs
                .into_iter()
                .zip(out_dims)
                .collect::<Vec<_>>()
                .into_iter(),
            size,
        };
        S::finish(&mut o, &r).map_err(|e| rename(e, op))
    }
}

/// Errors of the shared engine name `vmap`; generated calls name the user's function.
fn rename(e: Error, op: &'static str) -> Error {
    match e {
        Error::Invalid { op: "vmap", msg } => Error::invalid(op, msg),
        Error::Shape { op: "vmap", msg } => Error::shape(op, msg),
        other => other,
    }
}
