//! Typed linear algebra: `matmul` (vectors, matrices, batched, numpy rules) with the inner
//! dims in the signature, `dot`, `outer`, `one_hot`, `einsum`, and `conv2d` whose output
//! spatial dims the caller names and a const assertion (or, with run-time options, a
//! run-time check) verifies.
//!
//! ```
//! use ferrax_core::{Tensor, C};
//! let a = Tensor::<(C<2>, C<3>)>::from_vec(vec![1., 2., 3., 4., 5., 6.]).unwrap();
//! let b = Tensor::<(C<3>, C<1>)>::from_vec(vec![1., 0., -1.]).unwrap();
//! let c: Tensor<(C<2>, C<1>)> = a.matmul(&b);
//! assert_eq!(c.to_vec().unwrap(), vec![-2., -2.]);
//! ```

use crate::array::Array;
use crate::dim::{Dim, C};
use crate::dtype::{Elem, Float, Int};
use crate::error::{Error, Result};
use crate::ops::arith::Num;
use crate::prim::broadcast_in_dim::broadcast_in_dim;
use crate::prim::compare::eq;
use crate::prim::conv::{conv2d as lax_conv2d, Padding};
use crate::prim::convert::convert;
use crate::prim::dot_general::{dot_general, matmul as lax_matmul};
use crate::prim::iota::iota;
use crate::prim::reduce::reduce_sum;
use crate::prim::transpose::transpose;
use crate::shape::{type_shape_string, Shape};
use crate::tensor::Tensor;

/// Shapes that multiply under numpy's `matmul` rules with equal inner (and batch) dim
/// types: `(K)·(K)`, `(K)·(K,N)`, `(M,K)·(K)`, `(M,K)·(K,N)`, `(B,M,K)·(B,K,N)`,
/// `(B,M,K)·(K,N)`, `(M,K)·(B,K,N)`, `(A,B,M,K)·(A,B,K,N)`, `(A,B,M,K)·(K,N)`.
#[diagnostic::on_unimplemented(
    message = "cannot matmul `{Self}` by `{R}`: the inner dims (and any batch dims) must be equal",
    label = "shapes do not multiply",
    note = "matmul contracts the last axis of the lhs with the second-to-last axis of the rhs (the only one, for a vector)"
)]
pub trait MatMul<R: Shape>: Shape {
    /// The product's shape.
    type Out: Shape;
    /// [`Checked`] when a dim that must agree is `Dyn` (the product can fail at run
    /// time), else [`Unchecked`].
    type Check;
}

/// Marks a product whose agreeing dims are all static: it cannot fail.
#[derive(Debug)]
pub enum Unchecked {}
/// Marks a product with a `Dyn` dim that must agree: it is checked at run time.
#[derive(Debug)]
pub enum Checked {}

/// [`Checked`] or [`Unchecked`], joinable: a product is checked if any agreeing dim is.
pub trait CheckMark {
    /// `Checked` if either `Self` or `O` is.
    type Or<O: CheckMark>: CheckMark;
}
impl CheckMark for Unchecked {
    type Or<O: CheckMark> = O;
}
impl CheckMark for Checked {
    type Or<O: CheckMark> = Checked;
}
type Join<A, B> = <A as CheckMark>::Or<B>;

/// Whether a dim needs a run-time check when it must equal another.
pub trait DimCheck: Dim {
    /// [`Checked`] for `Dyn`, [`Unchecked`] for `C<N>`.
    type Check: CheckMark;
}
impl<const N: usize> DimCheck for C<N> {
    type Check = Unchecked;
}
impl DimCheck for crate::Dyn {
    type Check = Checked;
}

/// Implemented only by [`Unchecked`]: the bound that keeps the infallible `matmul` to
/// static agreeing dims.
#[diagnostic::on_unimplemented(
    message = "this matmul has a `Dyn` inner or batch dim, so it can fail at run time",
    label = "call `try_matmul` here (it returns a `Result`)",
    note = "`matmul` needs the dims that must agree to be static `C<N>`; with `Dyn` call `try_matmul`"
)]
pub trait NoRuntimeCheck {}
impl NoRuntimeCheck for Unchecked {}

macro_rules! matmul_impl {
    ([$($g:ident),*] $l:ty, $r:ty => $o:ty; $check:ty) => {
        impl<$($g: DimCheck),*> MatMul<$r> for $l {
            type Out = $o;
            type Check = $check;
        }
    };
}
matmul_impl!([K] (K,), (K,) => (); K::Check);
matmul_impl!([K, N] (K,), (K, N) => (N,); K::Check);
matmul_impl!([M, K] (M, K), (K,) => (M,); K::Check);
matmul_impl!([M, K, N] (M, K), (K, N) => (M, N); K::Check);
matmul_impl!([B, M, K, N] (B, M, K), (B, K, N) => (B, M, N); Join<B::Check, K::Check>);
matmul_impl!([B, M, K, N] (B, M, K), (K, N) => (B, M, N); K::Check);
matmul_impl!([B, M, K, N] (M, K), (B, K, N) => (B, M, N); K::Check);
matmul_impl!([A, B, M, K, N] (A, B, M, K), (A, B, K, N) => (A, B, M, N); Join<A::Check, Join<B::Check, K::Check>>);
matmul_impl!([A, B, M, K, N] (A, B, M, K), (K, N) => (A, B, M, N); K::Check);

/// `Self` with one more trailing axis `D` (ranks 0..=5).
pub trait AppendDim<D: Dim>: Shape {
    /// The extended shape.
    type Out: Shape;
}
impl<D: Dim> AppendDim<D> for () {
    type Out = (D,);
}
macro_rules! append_impl {
    ($($g:ident),+) => {
        impl<$($g: Dim,)+ D: Dim> AppendDim<D> for ($($g,)+) {
            type Out = ($($g,)+ D);
        }
    };
}
append_impl!(A0);
append_impl!(A0, A1);
append_impl!(A0, A1, A2);
append_impl!(A0, A1, A2, A3);
append_impl!(A0, A1, A2, A3, A4);

impl<S: Shape, E: Num> Tensor<S, E> {
    /// numpy's `matmul` with the shape algebra in the types: a mismatched inner dim is a
    /// compile error. When a dim that must agree is `Dyn` this does not compile either
    /// (the error points to [`Tensor::try_matmul`], which checks at run time).
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let x = Tensor::<(C<4>, C<2>, C<3>)>::ones();
    /// let w = Tensor::<(C<3>, C<5>)>::ones();
    /// let y: Tensor<(C<4>, C<2>, C<5>)> = x.matmul(&w);
    /// assert_eq!(y.to_vec().unwrap()[0], 3.0);
    /// ```
    pub fn matmul<R: Shape>(&self, rhs: &Tensor<R, E>) -> Tensor<<S as MatMul<R>>::Out, E>
    where
        S: MatMul<R>,
        <S as MatMul<R>>::Check: NoRuntimeCheck,
    {
        let out = lax_matmul(self.array(), rhs.array())
            .expect("matmul: the shape rule holds for static inner dims");
        Tensor::from_array_unchecked(out)
    }

    /// [`Tensor::matmul`] for shapes with `Dyn` inner or batch dims: a run-time mismatch is
    /// an error naming both shapes.
    ///
    /// ```
    /// use ferrax_core::{Dyn, Tensor, C};
    /// let a = Tensor::<(C<2>, Dyn)>::ones_shape((C, Dyn(3)));
    /// let b = Tensor::<(Dyn, C<2>)>::ones_shape((Dyn(4), C));
    /// let err = a.try_matmul(&b).unwrap_err().to_string();
    /// assert!(err.contains("[2, 3]") && err.contains("[4, 2]"), "{err}");
    /// ```
    pub fn try_matmul<R: Shape>(
        &self,
        rhs: &Tensor<R, E>,
    ) -> Result<Tensor<<S as MatMul<R>>::Out, E>>
    where
        S: MatMul<R>,
    {
        Ok(Tensor::from_array_unchecked(lax_matmul(
            self.array(),
            rhs.array(),
        )?))
    }
}

impl<K: Dim, E: Num> Tensor<(K,), E> {
    /// The inner product of two vectors.
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let a = Tensor::<(C<3>,)>::from_vec(vec![1., 2., 3.]).unwrap();
    /// assert_eq!(a.dot(&a).item().unwrap(), 14.0);
    /// ```
    pub fn dot(&self, rhs: &Tensor<(K,), E>) -> Tensor<(), E>
    where
        K: DimCheck,
        K::Check: NoRuntimeCheck,
    {
        self.matmul(rhs)
    }
    /// [`Tensor::dot`] for `Dyn` lengths: a mismatch is an error naming both shapes.
    pub fn try_dot(&self, rhs: &Tensor<(K,), E>) -> Result<Tensor<(), E>>
    where
        K: DimCheck,
    {
        self.try_matmul(rhs)
    }
}

impl<M: Dim, E: Num> Tensor<(M,), E> {
    /// The outer product `self[i] * rhs[j]`.
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let a = Tensor::<(C<2>,)>::from_vec(vec![1., 2.]).unwrap();
    /// let b = Tensor::<(C<3>,)>::from_vec(vec![1., 0., -1.]).unwrap();
    /// assert_eq!(a.outer(&b).to_vec().unwrap(), vec![1., 0., -1., 2., 0., -2.]);
    /// ```
    pub fn outer<N: Dim>(&self, rhs: &Tensor<(N,), E>) -> Tensor<(M, N), E> {
        let out = dot_general(self.array(), rhs.array(), &[], &[], &[], &[])
            .expect("outer: no dims need to agree");
        Tensor::from_array_unchecked(out)
    }
}

/// One-hot encoding on arrays: `[.., n]` of `dtype` with a one where `labels == index`.
/// Labels outside `0..n` (negative included) give a row of zeros, as `jax.nn.one_hot`.
pub fn one_hot_array(labels: &Array, n: usize, dtype: crate::DType) -> Result<Array> {
    if !labels.dtype().is_int() {
        return Err(Error::dtype(
            "one_hot",
            format!("labels must be integers, got {}", labels.dtype()),
        ));
    }
    let r = labels.rank();
    let mut shape = labels.shape().to_vec();
    shape.push(n);
    let dims: Vec<usize> = (0..r).collect();
    let wide = broadcast_in_dim(labels, &shape, &dims)?;
    let idx = iota(labels.dtype(), &shape, r)?;
    convert(&eq(&wide, &idx)?, dtype)
}

/// One-hot encoding: appends an axis of size `N`.
///
/// ```
/// use ferrax_core::{ops::linalg::one_hot, Tensor, C};
/// let y = Tensor::<(C<3>,), i32>::from_vec(vec![2, 0, 7]).unwrap();
/// let h: Tensor<(C<3>, C<4>)> = one_hot::<4, _, _, _>(&y);
/// assert_eq!(h.to_vec().unwrap(), vec![0., 0., 1., 0., 1., 0., 0., 0., 0., 0., 0., 0.]);
/// ```
pub fn one_hot<const N: usize, S, L, E>(
    labels: &Tensor<S, L>,
) -> Tensor<<S as AppendDim<C<N>>>::Out, E>
where
    S: AppendDim<C<N>>,
    L: Int,
    E: Elem,
{
    let out = one_hot_array(labels.array(), N, E::DTYPE).expect("one_hot: integer labels");
    Tensor::from_array_unchecked(out)
}

impl<S: Shape, L: Int> Tensor<S, L> {
    /// One-hot encoding of integer labels (see [`one_hot`]): `labels.one_hot::<10, f32>()`.
    pub fn one_hot<const N: usize, E: Elem>(&self) -> Tensor<<S as AppendDim<C<N>>>::Out, E>
    where
        S: AppendDim<C<N>>,
    {
        one_hot::<N, S, L, E>(self)
    }
}

/// A parsed einsum operand or output: one letter per axis.
fn letters(op: &'static str, spec: &str, s: &str) -> Result<Vec<char>> {
    let v: Vec<char> = s.trim().chars().collect();
    for (i, &c) in v.iter().enumerate() {
        if !c.is_ascii_alphabetic() {
            return Err(Error::unsupported(
                op,
                format!("spec {spec:?}: only letters name axes (no ellipsis), found {c:?}"),
            ));
        }
        if v[..i].contains(&c) {
            return Err(Error::unsupported(
                op,
                format!("spec {spec:?}: letter {c:?} repeats within one term (diagonals are not supported)"),
            ));
        }
    }
    Ok(v)
}

/// Sums `x` (axes named by `names`) over the letters not in `keep`.
fn sum_out(x: &Array, names: &mut Vec<char>, keep: &[char]) -> Result<Array> {
    let axes: Vec<usize> = (0..names.len())
        .filter(|&i| !keep.contains(&names[i]))
        .collect();
    if axes.is_empty() {
        return Ok(x.clone());
    }
    names.retain(|c| keep.contains(c));
    reduce_sum(x, &axes)
}

/// Einstein summation over letters naming axes, for any number of operands (contracted
/// pairwise from the left with `dot_general`): `"ij,jk->ik"`, `"bij,bjk->bik"`,
/// `"i,j->ij"`, `"ij->ji"`, `"bi,bi->b"`, `"ij->"`. Without `->` the output is the letters
/// appearing once, sorted (numpy's rule). Ellipses and repeated letters within one operand
/// are not supported.
///
/// ```
/// use ferrax_core::{Array, ops::linalg::einsum};
/// let a = Array::from_vec(vec![2, 3], vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
/// let t = einsum("ij->ji", &[&a]).unwrap();
/// assert_eq!(t.shape(), &[3, 2]);
/// assert_eq!(einsum("ij,ij->i", &[&a, &a]).unwrap().to_vec::<f32>().unwrap(), vec![14., 77.]);
/// ```
pub fn einsum(spec: &str, operands: &[&Array]) -> Result<Array> {
    const OP: &str = "einsum";
    let (lhs, out) = match spec.split_once("->") {
        Some((l, o)) => (l, Some(o)),
        None => (spec, None),
    };
    let terms: Vec<Vec<char>> = lhs
        .split(',')
        .map(|t| letters(OP, spec, t))
        .collect::<Result<_>>()?;
    if terms.len() != operands.len() || operands.is_empty() {
        return Err(Error::invalid(
            OP,
            format!(
                "spec {spec:?} names {} operands, {} were given",
                terms.len(),
                operands.len()
            ),
        ));
    }
    let shapes: Vec<&[usize]> = operands.iter().map(|a| a.shape()).collect();
    let mut size = std::collections::HashMap::new();
    for (t, x) in terms.iter().zip(operands) {
        if t.len() != x.rank() {
            return Err(Error::shape(
                OP,
                format!(
                    "spec {spec:?}: term {:?} names {} axes, operand has shape {:?}",
                    t.iter().collect::<String>(),
                    t.len(),
                    x.shape()
                ),
            ));
        }
        for (&c, &n) in t.iter().zip(x.shape()) {
            if *size.entry(c).or_insert(n) != n {
                return Err(Error::shape(
                    OP,
                    format!(
                        "spec {spec:?}: letter {c:?} has sizes {} and {n} in shapes {shapes:?}",
                        size[&c]
                    ),
                ));
            }
        }
    }
    let out: Vec<char> = match out {
        Some(o) => letters(OP, spec, o)?,
        None => {
            let mut once: Vec<char> = size
                .keys()
                .copied()
                .filter(|c| terms.iter().flatten().filter(|d| *d == c).count() == 1)
                .collect();
            once.sort_unstable();
            once
        }
    };
    if let Some(c) = out.iter().find(|c| !size.contains_key(c)) {
        return Err(Error::invalid(
            OP,
            format!("spec {spec:?}: output letter {c:?} names no input axis"),
        ));
    }
    let dtype = operands[0].dtype();
    if let Some(x) = operands.iter().find(|x| x.dtype() != dtype) {
        return Err(Error::dtype_mismatch(OP, dtype, x.dtype()));
    }

    let mut names = terms[0].clone();
    let mut acc = operands[0].clone();
    for i in 1..=terms.len() {
        // Letters still needed after this step: the output's and those of later operands.
        let mut keep: Vec<char> = out.clone();
        keep.extend(terms.iter().skip(i + 1).flatten());
        if i == terms.len() {
            acc = sum_out(&acc, &mut names, &keep)?;
            break;
        }
        let mut rn = terms[i].clone();
        let mut keep_l = keep.clone();
        keep_l.extend(&rn);
        acc = sum_out(&acc, &mut names, &keep_l)?;
        let mut keep_r = keep.clone();
        keep_r.extend(&names);
        let rhs = sum_out(operands[i], &mut rn, &keep_r)?;
        let shared: Vec<char> = names.iter().copied().filter(|c| rn.contains(c)).collect();
        let batch: Vec<char> = shared
            .iter()
            .copied()
            .filter(|c| keep.contains(c))
            .collect();
        let contract: Vec<char> = shared
            .iter()
            .copied()
            .filter(|c| !keep.contains(c))
            .collect();
        let pos = |v: &[char], c: &char| v.iter().position(|d| d == c).expect("letter present");
        let lb: Vec<usize> = batch.iter().map(|c| pos(&names, c)).collect();
        let rb: Vec<usize> = batch.iter().map(|c| pos(&rn, c)).collect();
        let lc: Vec<usize> = contract.iter().map(|c| pos(&names, c)).collect();
        let rc: Vec<usize> = contract.iter().map(|c| pos(&rn, c)).collect();
        acc = dot_general(&acc, &rhs, &lc, &rc, &lb, &rb)?;
        let mut new_names = batch.clone();
        new_names.extend(names.iter().filter(|c| !shared.contains(c)));
        new_names.extend(rn.iter().filter(|c| !shared.contains(c)));
        names = new_names;
    }
    let perm: Vec<usize> = out
        .iter()
        .map(|c| {
            names
                .iter()
                .position(|d| d == c)
                .expect("output letters survive")
        })
        .collect();
    transpose(&acc, &perm)
}

impl<S: Shape, E: Elem> Tensor<S, E> {
    /// [`einsum`] with the output shape named by the caller and checked at run time.
    ///
    /// ```
    /// use ferrax_core::{Tensor, C};
    /// let a = Tensor::<(C<2>, C<3>)>::ones();
    /// let b = Tensor::<(C<3>, C<4>)>::ones();
    /// let c = Tensor::<(C<2>, C<4>)>::einsum("ij,jk->ik", &[a.array(), b.array()]).unwrap();
    /// assert_eq!(c.to_vec().unwrap()[0], 3.0);
    /// ```
    pub fn einsum(spec: &str, operands: &[&Array]) -> Result<Self> {
        let out = einsum(spec, operands)?;
        if out.dtype() != E::DTYPE || S::from_dims(out.shape()).is_none() {
            return Err(Error::shape(
                "einsum",
                format!(
                    "spec {spec:?} gives {}{:?}, the result type is {}{}",
                    out.dtype(),
                    out.shape(),
                    E::DTYPE,
                    type_shape_string::<S>()
                ),
            ));
        }
        Ok(Tensor::from_array_unchecked(out))
    }
}

/// Run-time options of [`Tensor::conv2d`]: strides, padding rule and kernel dilation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dOpts {
    /// `(height, width)` strides.
    pub stride: (usize, usize),
    /// The padding rule.
    pub padding: Padding,
    /// `(height, width)` kernel dilation.
    pub dilation: (usize, usize),
}

// Options select the compiled program: changing only the padding of a jitted conv must recompile.
crate::impl_static_arg_via_hash!(Conv2dOpts);

impl Default for Conv2dOpts {
    fn default() -> Self {
        Conv2dOpts {
            stride: (1, 1),
            padding: Padding::Valid,
            dilation: (1, 1),
        }
    }
}

impl Conv2dOpts {
    /// Stride 1, `SAME` padding, no dilation.
    pub fn same() -> Self {
        Conv2dOpts {
            padding: Padding::Same,
            ..Self::default()
        }
    }
    /// Stride 1, no padding, no dilation.
    pub fn valid() -> Self {
        Self::default()
    }
    /// Sets the strides.
    pub fn stride(mut self, h: usize, w: usize) -> Self {
        self.stride = (h, w);
        self
    }
    /// Sets the kernel dilation.
    pub fn dilation(mut self, h: usize, w: usize) -> Self {
        self.dilation = (h, w);
        self
    }
}

/// A stride as a value whose type carries it, so [`Tensor::conv2d_same`] and
/// [`Tensor::conv2d_valid`] can check the output size at compile time: `Stride::<2>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stride<const S: usize>;

/// Feature groups implied by the channel counts, checked at compile time.
const fn conv_groups(ci: usize, cig: usize, co: usize) -> usize {
    assert!(
        cig > 0 && ci.is_multiple_of(cig) && co.is_multiple_of(ci / cig),
        "conv2d: the kernel's input channels (HWIO's I) must divide the input channels C, and the group count C / I must divide the output channels O"
    );
    ci / cig
}

impl<B: Dim, const H: usize, const W: usize, const CI: usize, E: Float>
    Tensor<(B, C<H>, C<W>, C<CI>), E>
{
    /// A 2-D convolution, NHWC input and HWIO kernel `(KH, KW, CI / groups, CO)`; the
    /// group count is `CI / I`. The output spatial dims `OH, OW` are named by the caller
    /// (usually through the result's type) and checked at run time against the options:
    /// a wrong guess is an error naming both shapes.
    ///
    /// ```
    /// use ferrax_core::{ops::linalg::Conv2dOpts, Tensor, C};
    /// let x = Tensor::<(C<2>, C<8>, C<8>, C<3>)>::ones();
    /// let w = Tensor::<(C<3>, C<3>, C<3>, C<4>)>::ones();
    /// let y: Tensor<(C<2>, C<4>, C<4>, C<4>)> = x.conv2d(&w, &Conv2dOpts::same().stride(2, 2)).unwrap();
    /// assert_eq!(y.to_vec().unwrap()[0], 27.0); // SAME pads (0, 1): the first window is inside
    /// ```
    pub fn conv2d<
        const KH: usize,
        const KW: usize,
        const CIG: usize,
        const CO: usize,
        const OH: usize,
        const OW: usize,
    >(
        &self,
        w: &Tensor<(C<KH>, C<KW>, C<CIG>, C<CO>), E>,
        opts: &Conv2dOpts,
    ) -> Result<Tensor<(B, C<OH>, C<OW>, C<CO>), E>> {
        let groups = const { conv_groups(CI, CIG, CO) };
        let y = lax_conv2d(
            self.array(),
            w.array(),
            opts.stride,
            &opts.padding,
            opts.dilation,
            groups,
        )?;
        if y.shape()[1..3] != [OH, OW] {
            return Err(Error::shape(
                "conv2d",
                format!(
                    "input {:?} with kernel {:?} and {opts:?} gives output {:?}, but the result type names spatial dims ({OH}, {OW})",
                    self.dims(),
                    w.dims(),
                    y.shape()
                ),
            ));
        }
        Ok(Tensor::from_array_unchecked(y))
    }

    /// A 2-D `SAME` convolution with stride `S` and no dilation: the output's spatial dims
    /// are `ceil(H / S)`, `ceil(W / S)`, checked at compile time against the `OH, OW` the
    /// caller names.
    ///
    /// ```
    /// use ferrax_core::{ops::linalg::Stride, Tensor, C};
    /// let x = Tensor::<(C<1>, C<28>, C<28>, C<1>)>::ones();
    /// let w = Tensor::<(C<3>, C<3>, C<1>, C<32>)>::ones();
    /// let y: Tensor<(C<1>, C<28>, C<28>, C<32>)> = x.conv2d_same(&w, Stride::<1>);
    /// assert_eq!(y.to_vec().unwrap()[0], 4.0);
    /// ```
    ///
    /// Naming the wrong output size stops the build (a const assertion, reported when the
    /// call is compiled to code, so `cargo check` alone does not show it):
    ///
    /// ```compile_fail
    /// use ferrax_core::{ops::linalg::Stride, Tensor, C};
    /// let x = Tensor::<(C<1>, C<28>, C<28>, C<1>)>::ones();
    /// let w = Tensor::<(C<3>, C<3>, C<1>, C<8>)>::ones();
    /// let y: Tensor<(C<1>, C<28>, C<28>, C<8>)> = x.conv2d_same(&w, Stride::<2>); // 14x14
    /// ```
    pub fn conv2d_same<
        const KH: usize,
        const KW: usize,
        const CIG: usize,
        const CO: usize,
        const S: usize,
        const OH: usize,
        const OW: usize,
    >(
        &self,
        w: &Tensor<(C<KH>, C<KW>, C<CIG>, C<CO>), E>,
        _stride: Stride<S>,
    ) -> Tensor<(B, C<OH>, C<OW>, C<CO>), E> {
        let groups = const {
            assert!(S > 0, "conv2d_same: the stride must be positive");
            assert!(
                OH == H.div_ceil(S) && OW == W.div_ceil(S),
                "conv2d_same: output spatial dims must be ceil(H / S) x ceil(W / S)"
            );
            conv_groups(CI, CIG, CO)
        };
        let y = lax_conv2d(
            self.array(),
            w.array(),
            (S, S),
            &Padding::Same,
            (1, 1),
            groups,
        )
        .expect("conv2d_same: shapes checked at compile time");
        Tensor::from_array_unchecked(y)
    }

    /// A 2-D `VALID` convolution with stride `S` and no dilation: the output's spatial dims
    /// are `(H - KH) / S + 1`, `(W - KW) / S + 1`, checked at compile time.
    ///
    /// ```
    /// use ferrax_core::{ops::linalg::Stride, Tensor, C};
    /// let x = Tensor::<(C<1>, C<5>, C<5>, C<2>)>::ones();
    /// let w = Tensor::<(C<3>, C<3>, C<2>, C<1>)>::ones();
    /// let y: Tensor<(C<1>, C<2>, C<2>, C<1>)> = x.conv2d_valid(&w, Stride::<2>);
    /// assert_eq!(y.to_vec().unwrap(), vec![18.0; 4]);
    /// ```
    ///
    /// A kernel whose input channels do not divide the input's is rejected the same way:
    ///
    /// ```compile_fail
    /// use ferrax_core::{ops::linalg::Stride, Tensor, C};
    /// let x = Tensor::<(C<1>, C<5>, C<5>, C<3>)>::ones();
    /// let w = Tensor::<(C<3>, C<3>, C<2>, C<1>)>::ones();
    /// let y: Tensor<(C<1>, C<3>, C<3>, C<1>)> = x.conv2d_valid(&w, Stride::<1>);
    /// ```
    pub fn conv2d_valid<
        const KH: usize,
        const KW: usize,
        const CIG: usize,
        const CO: usize,
        const S: usize,
        const OH: usize,
        const OW: usize,
    >(
        &self,
        w: &Tensor<(C<KH>, C<KW>, C<CIG>, C<CO>), E>,
        _stride: Stride<S>,
    ) -> Tensor<(B, C<OH>, C<OW>, C<CO>), E> {
        let groups = const {
            assert!(S > 0, "conv2d_valid: the stride must be positive");
            assert!(
                H >= KH && W >= KW,
                "conv2d_valid: the kernel must fit inside the input"
            );
            assert!(
                OH == (H - KH) / S + 1 && OW == (W - KW) / S + 1,
                "conv2d_valid: output spatial dims must be (H - KH) / S + 1 x (W - KW) / S + 1"
            );
            conv_groups(CI, CIG, CO)
        };
        let y = lax_conv2d(
            self.array(),
            w.array(),
            (S, S),
            &Padding::Valid,
            (1, 1),
            groups,
        )
        .expect("conv2d_valid: shapes checked at compile time");
        Tensor::from_array_unchecked(y)
    }
}
