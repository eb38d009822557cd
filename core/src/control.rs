//! Runtime of the control-flow rewriting done by `#[jit]` / `#[grad]` / `#[vmap]`: the macro
//! turns `if`, `while` and `for i in lo..hi` into calls of [`if_`], [`while_`] and [`for_`],
//! and these traits choose by the condition's *type* what runs. A `bool` (or a plain integer
//! bound) runs the ordinary Rust statement; a scalar bool tensor stages `cond` /
//! `while_loop`, and a scalar integer tensor bound stages `fori_loop`. Forms that cannot be
//! staged keep their Rust syntax, with the condition passed through a check trait that only
//! `bool` (or a plain integer) implements, whose error says what to write instead.
//!
//! The generated closure gets the loop-carried / branch-assigned variables (found by the
//! macro from the assignments in the body) as a nested tuple `(a, (b, ()))` and returns them,
//! so a tensor path can thread them through the staged primitive as a tree.

use crate::array::Array;
use crate::dtype::{DType, Int};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::tree::{leaves, Path, Tree};
use std::cell::RefCell;

/// Unwraps the result of a staged control-flow construct. The user's function returns plain
/// values (not `Result`), so a structural mistake found while tracing (branches disagreeing
/// on a shape) panics with the construct and the error, like a mismatched `Dyn` operator.
#[track_caller]
fn staged<T>(what: &str, r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("staged `{what}`: {e}"),
    }
}

/// A tree of `template`'s structure with these leaves (same order as [`leaves`]).
fn rebuild_from<T: Tree>(what: &'static str, template: &T, new: &[Array]) -> Result<T> {
    let mut it = new.iter();
    let t = template.rebuild(&mut Path::default(), &mut |p, _| {
        it.next().cloned().ok_or_else(|| {
            Error::invalid(what, format!("missing value for leaf `{}`", p.describe()))
        })
    })?;
    if it.next().is_some() {
        return Err(Error::invalid(
            what,
            format!("{} values for {} leaves", new.len(), leaves(template).len()),
        ));
    }
    Ok(t)
}

// ---- conditions -------------------------------------------------------------------------

/// A value that can be the condition of a rewritten `if` or `while`: the macros pass the
/// condition by reference (`cond_value(&(c))`) so that a tensor condition held in a variable
/// is not moved by the statement, as a `bool` would not be.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the condition of an `if` or `while` in a staged function",
    label = "a `bool` or a scalar bool tensor (`Tensor<(), bool>`) is needed here",
    note = "compare a tensor to get a bool tensor (`x.gt(&y)`), or read a plain value outside of staged code"
)]
pub trait CondValue {
    /// `bool` or `Tensor<(), bool>`.
    type Value;
    /// The condition, copied (a tensor copy shares its buffer).
    fn cond_value(&self) -> Self::Value;
}

impl CondValue for bool {
    type Value = bool;
    #[inline(always)]
    fn cond_value(&self) -> bool {
        *self
    }
}

impl CondValue for Tensor<(), bool> {
    type Value = Tensor<(), bool>;
    fn cond_value(&self) -> Tensor<(), bool> {
        self.clone()
    }
}

impl<T: CondValue + ?Sized> CondValue for &T {
    type Value = T::Value;
    #[inline(always)]
    fn cond_value(&self) -> T::Value {
        (**self).cond_value()
    }
}

/// The condition of a rewritten `if` / `while` (see [`CondValue`]).
#[inline(always)]
pub fn cond_value<T: CondValue + ?Sized>(c: &T) -> T::Value {
    c.cond_value()
}

// ---- if ---------------------------------------------------------------------------------

/// A condition of a rewritten `if`: `bool` runs the branch as Rust does; a scalar bool
/// tensor traces both branches into a `cond` (or, when its value is already known, runs the
/// chosen branch). `f(branch, carried)` runs the `if` with the condition replaced by
/// `branch` and returns `(value, carried)`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the condition of an `if` in a staged function",
    label = "a `bool` or a scalar bool tensor (`Tensor<(), bool>`) is needed here",
    note = "compare a tensor to get a bool tensor (`x.gt(&y)`), or read a plain value outside of staged code"
)]
pub trait IfCond<K, V, F> {
    /// Runs the `if`.
    fn run_if(self, carried: K, f: F) -> (V, K);
}

impl<K, V, F: FnOnce(bool, K) -> (V, K)> IfCond<K, V, F> for bool {
    #[inline(always)]
    fn run_if(self, carried: K, f: F) -> (V, K) {
        f(self, carried)
    }
}

impl<K, V, F> IfCond<K, V, F> for Tensor<(), bool>
where
    K: Tree,
    V: Tree,
    F: FnOnce(bool, K) -> (V, K) + Clone,
{
    #[track_caller]
    fn run_if(self, carried: K, f: F) -> (V, K) {
        staged("if", tensor_if(self.array(), carried, f))
    }
}

/// `if c { .. } else { .. }` as rewritten by the ferrax macros (see [`IfCond`]).
#[inline(always)]
#[track_caller]
pub fn if_<C, K, V, F>(c: C, carried: K, f: F) -> (V, K)
where
    F: FnOnce(bool, K) -> (V, K),
    C: IfCond<K, V, F>,
{
    c.run_if(carried, f)
}

fn tensor_if<K: Tree, V: Tree, F>(pred: &Array, carried: K, f: F) -> Result<(V, K)>
where
    F: FnOnce(bool, K) -> (V, K) + Clone,
{
    if !pred.is_tracer() {
        // A known condition selects its branch now, as a Rust `if` would.
        let b = pred.to_vec::<bool>()?.first().copied().unwrap_or(false);
        return Ok(f(b, carried));
    }
    let ops = leaves(&carried);
    // Each branch consumes its own copy of the closure (and of what it captured by value).
    let fs = [RefCell::new(Some(f.clone())), RefCell::new(Some(f))];
    let template: RefCell<Option<(V, K)>> = RefCell::new(None);
    let branch = |b: bool, a: &[Array]| -> Result<Vec<Array>> {
        let f = fs[usize::from(b)]
            .borrow_mut()
            .take()
            .ok_or_else(|| Error::invalid("if", "a branch was traced twice"))?;
        let out = f(b, rebuild_from("if", &carried, a)?);
        let l = leaves(&out);
        template.borrow_mut().get_or_insert(out);
        Ok(l)
    };
    let on_true = |a: &[Array]| branch(true, a);
    let on_false = |a: &[Array]| branch(false, a);
    let outs = crate::prim::cond::cond(pred, &on_true, &on_false, &ops)?;
    let template = template
        .into_inner()
        .ok_or_else(|| Error::invalid("if", "no branch was traced"))?;
    rebuild_from("if", &template, &outs)
}

// ---- while ------------------------------------------------------------------------------

/// A condition of a rewritten `while`: `bool` loops in Rust; a scalar bool tensor runs the
/// loop in Rust while it and the carried variables are known values (plain eager code) and
/// stages a `while_loop` over the carried variables as soon as one of them is traced. `f(true, carried)` evaluates the condition,
/// `f(false, carried)` runs the body.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the condition of a `while` in a staged function",
    label = "a `bool` or a scalar bool tensor (`Tensor<(), bool>`) is needed here",
    note = "with a tensor condition, the variables the loop assigns are its carried state: they must be trees (tensors, tuples, `Vec`s, `#[derive(Tree)]` structs)"
)]
pub trait WhileCond<K, F>: Sized {
    /// Runs the loop.
    fn run_while(carried: K, f: F) -> K;
}

impl<K, F: FnMut(bool, K) -> (Option<bool>, K)> WhileCond<K, F> for bool {
    #[inline(always)]
    fn run_while(mut carried: K, mut f: F) -> K {
        loop {
            let (c, k) = f(true, carried);
            if c != Some(true) {
                return k;
            }
            carried = f(false, k).1;
        }
    }
}

impl<K, F> WhileCond<K, F> for Tensor<(), bool>
where
    K: Tree,
    F: FnMut(bool, K) -> (Option<Tensor<(), bool>>, K),
{
    #[track_caller]
    fn run_while(carried: K, f: F) -> K {
        staged("while", tensor_while(carried, f))
    }
}

/// `while c { .. }` as rewritten by the ferrax macros (see [`WhileCond`]).
#[inline(always)]
#[track_caller]
pub fn while_<C, K, F>(carried: K, f: F) -> K
where
    F: FnMut(bool, K) -> (Option<C>, K),
    C: WhileCond<K, F>,
{
    C::run_while(carried, f)
}

fn tensor_while<K: Tree, F>(mut carried: K, mut f: F) -> Result<K>
where
    F: FnMut(bool, K) -> (Option<Tensor<(), bool>>, K),
{
    loop {
        let (c, k) = f(true, carried);
        carried = k;
        let c = c.ok_or_else(|| Error::invalid("while", "the condition gave no value"))?;
        // Staged as soon as anything the loop carries is traced: unrolling a loop whose
        // body records traced operations would grow the program with the trip count.
        if c.is_tracer() || leaves(&carried).iter().any(Array::is_tracer) {
            break;
        }
        if !c.item()? {
            return Ok(carried);
        }
        carried = f(false, carried).1;
    }
    // From here the condition depends on traced values: stage the rest of the loop, starting
    // from the current carried values.
    let init = leaves(&carried);
    let f = RefCell::new(f);
    let cond_fn = |a: &[Array]| -> Result<Array> {
        let k = rebuild_from("while", &carried, a)?;
        let (c, _) = (f.borrow_mut())(true, k);
        c.map(Tensor::into_array)
            .ok_or_else(|| Error::invalid("while", "the condition gave no value"))
    };
    let body_fn = |a: &[Array]| -> Result<Vec<Array>> {
        let k = rebuild_from("while", &carried, a)?;
        let (_, k) = (f.borrow_mut())(false, k);
        Ok(leaves(&k))
    };
    let out = crate::prim::while_loop::while_loop(cond_fn, body_fn, &init)?;
    rebuild_from("while", &carried, &out)
}

// ---- for --------------------------------------------------------------------------------

/// The upper bound of a rewritten `for i in lo..hi` (with `lo: L`), and the type of `i`:
/// plain integers loop in Rust with `i` of their type; a scalar integer tensor stages a
/// `fori_loop` and `i` is a `Tensor<(), i32>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the bound of a `for` loop in a staged function (with a lower bound of type `{L}`)",
    label = "plain integers of one type, or a scalar integer tensor with an `i32` or tensor lower bound, are needed here",
    note = "with a tensor bound the loop becomes `fori_loop` and its index is a `Tensor<(), i32>`"
)]
pub trait ForHi<L> {
    /// The type of the loop index.
    type Idx;
}

/// Runs a rewritten `for` loop (see [`ForHi`]); `f(i, carried)` runs the body.
pub trait ForRun<L, K, F>: ForHi<L> + Sized {
    /// Runs the loop.
    fn run_for(lo: L, hi: Self, carried: K, f: F) -> K;
}

macro_rules! plain_for {
    ($($t:ty),*) => {$(
        impl ForHi<$t> for $t {
            type Idx = $t;
        }
        impl<K, F: FnMut($t, K) -> K> ForRun<$t, K, F> for $t {
            #[inline(always)]
            fn run_for(lo: $t, hi: $t, mut carried: K, mut f: F) -> K {
                for i in lo..hi {
                    carried = f(i, carried);
                }
                carried
            }
        }
    )*};
}
plain_for!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, char);

/// A lower bound of a `for` loop with a tensor upper bound.
pub trait ForLo {
    /// The bound as a scalar array.
    fn lo_array(self) -> Array;
}
impl ForLo for i32 {
    fn lo_array(self) -> Array {
        Array::scalar(self)
    }
}
impl<I: Int> ForLo for Tensor<(), I> {
    fn lo_array(self) -> Array {
        self.into_array()
    }
}
impl<I: Int> ForLo for &Tensor<(), I> {
    fn lo_array(self) -> Array {
        self.array().clone()
    }
}

macro_rules! tensor_for {
    ($($hi:ty),*) => {$(
        impl<I: Int, L: ForLo> ForHi<L> for $hi {
            type Idx = Tensor<(), i32>;
        }
        impl<I: Int, L: ForLo, K: Tree, F: FnMut(Tensor<(), i32>, K) -> K> ForRun<L, K, F> for $hi {
            #[track_caller]
            fn run_for(lo: L, hi: Self, carried: K, f: F) -> K {
                let hi: &Tensor<(), I> = &hi;
                staged("for", tensor_for(lo.lo_array(), hi.array(), carried, f))
            }
        }
    )*};
}
tensor_for!(Tensor<(), I>, &Tensor<(), I>);

/// `for i in lo..hi { .. }` as rewritten by the ferrax macros (see [`ForHi`]).
#[inline(always)]
#[track_caller]
pub fn for_<L, H, K, F>(lo: L, hi: H, carried: K, f: F) -> K
where
    H: ForHi<L> + ForRun<L, K, F>,
    F: FnMut(<H as ForHi<L>>::Idx, K) -> K,
{
    H::run_for(lo, hi, carried, f)
}

/// A concrete integer scalar's value.
fn known_int(a: &Array) -> Option<i64> {
    if a.is_tracer() || a.rank() != 0 {
        return None;
    }
    let v = a.storage("for").ok()?.get_f64(0);
    Some(v as i64)
}

fn tensor_for<K: Tree, F>(lo: Array, hi: &Array, carried: K, f: F) -> Result<K>
where
    F: FnMut(Tensor<(), i32>, K) -> K,
{
    for (what, a) in [("lower", &lo), ("upper", hi)] {
        if a.rank() != 0 || a.dtype().is_float() || a.dtype() == DType::Bool {
            return Err(Error::dtype(
                "for",
                format!(
                    "the {what} bound must be an integer scalar, got {}",
                    a.aval()
                ),
            ));
        }
    }
    let init = leaves(&carried);
    let f = RefCell::new(f);
    let body = |i: &Array, c: &[Array]| -> Result<Vec<Array>> {
        let i = crate::prim::convert::convert(i, DType::I32)?;
        let k = rebuild_from("for", &carried, c)?;
        let k = (f.borrow_mut())(Tensor::from_array(i)?, k);
        Ok(leaves(&k))
    };
    let out = match (known_int(&lo), known_int(hi)) {
        // Known bounds: a `scan` of hi - lo steps (differentiable), as `lax.fori_loop` does
        // with concrete bounds.
        (Some(l), Some(h)) if l >= 0 => {
            let l = usize::try_from(l).map_err(|e| Error::invalid("for", e.to_string()))?;
            let h = usize::try_from(h.max(0)).map_err(|e| Error::invalid("for", e.to_string()))?;
            crate::prim::while_loop::fori_loop(l, h, body, &init)?
        }
        _ => crate::prim::while_loop::fori_loop_traced(&lo, hi, body, &init)?,
    };
    rebuild_from("for", &carried, &out)
}

// ---- forms that stay Rust ---------------------------------------------------------------

#[diagnostic::on_unimplemented(
    message = "an `if` on a tensor condition cannot `return`, `break`, `continue` or use `?` in its branches",
    label = "this condition is a `{Self}`, so both branches are traced into a `cond`",
    note = "compute a value in each branch and act on it after the `if`: `let y = if c {{ a }} else {{ b }};` (or select elementwise with `where_(&c, &a, &b)`)"
)]
pub trait IfNoEscape {
    /// The plain condition.
    fn plain(self) -> bool;
}
impl IfNoEscape for bool {
    #[inline(always)]
    fn plain(self) -> bool {
        self
    }
}
/// The condition of a statement the macros left as Rust; only `bool` passes.
#[inline(always)]
pub fn if_no_escape<C: IfNoEscape>(c: C) -> bool {
    c.plain()
}

#[diagnostic::on_unimplemented(
    message = "an `if` on a tensor condition cannot assign to a field, an index or through a reference",
    label = "this condition is a `{Self}`, so both branches are traced into a `cond`",
    note = "assign a local variable declared before the `if` (or make the `if` produce the value) and store it afterwards: `let w = if c {{ a }} else {{ b }}; model.w = w;`"
)]
pub trait IfNoPlace {
    /// The plain condition.
    fn plain(self) -> bool;
}
impl IfNoPlace for bool {
    #[inline(always)]
    fn plain(self) -> bool {
        self
    }
}
/// The condition of a statement the macros left as Rust; only `bool` passes.
#[inline(always)]
pub fn if_no_place<C: IfNoPlace>(c: C) -> bool {
    c.plain()
}

#[diagnostic::on_unimplemented(
    message = "an `if` on a tensor condition cannot initialize a variable declared without a value",
    label = "this condition is a `{Self}`, so both branches are traced into a `cond`",
    note = "give the variable the `if`'s value instead: `let x = if c {{ a }} else {{ b }};`"
)]
pub trait IfNoInit {
    /// The plain condition.
    fn plain(self) -> bool;
}
impl IfNoInit for bool {
    #[inline(always)]
    fn plain(self) -> bool {
        self
    }
}
/// The condition of a statement the macros left as Rust; only `bool` passes.
#[inline(always)]
pub fn if_no_init<C: IfNoInit>(c: C) -> bool {
    c.plain()
}

#[diagnostic::on_unimplemented(
    message = "a `while` on a tensor condition cannot `break`, `continue`, `return` or use `?` in its body",
    label = "this condition is a `{Self}`, so the loop is staged as a `while_loop`",
    note = "carry a flag instead: declare `let mut go = Tensor::<(), bool>::scalar(true);` before the loop, test it in the condition (`while &go & &c {{ .. }}`) and assign it in the body where you would `break`"
)]
pub trait WhileNoEscape {
    /// The plain condition.
    fn plain(self) -> bool;
}
impl WhileNoEscape for bool {
    #[inline(always)]
    fn plain(self) -> bool {
        self
    }
}
/// The condition of a statement the macros left as Rust; only `bool` passes.
#[inline(always)]
pub fn while_no_escape<C: WhileNoEscape>(c: C) -> bool {
    c.plain()
}

#[diagnostic::on_unimplemented(
    message = "a `while` on a tensor condition cannot assign to a field, an index or through a reference",
    label = "this condition is a `{Self}`, so the loop is staged as a `while_loop`",
    note = "the loop's state is the local variables it assigns: copy the field into a local before the loop (`let mut w = model.w.clone();`), assign the local, and store it after the loop"
)]
pub trait WhileNoPlace {
    /// The plain condition.
    fn plain(self) -> bool;
}
impl WhileNoPlace for bool {
    #[inline(always)]
    fn plain(self) -> bool {
        self
    }
}
/// The condition of a statement the macros left as Rust; only `bool` passes.
#[inline(always)]
pub fn while_no_place<C: WhileNoPlace>(c: C) -> bool {
    c.plain()
}

#[diagnostic::on_unimplemented(
    message = "a `while` on a tensor condition must assign a variable declared before the loop",
    label = "this condition is a `{Self}`, so the loop is staged as a `while_loop` whose state is the variables it assigns",
    note = "this loop assigns none, so its condition could never change: assign the loop state with `x = ...` (methods taking `&mut self` are not seen as assignments)"
)]
pub trait WhileNoCarry {
    /// The plain condition.
    fn plain(self) -> bool;
}
impl WhileNoCarry for bool {
    #[inline(always)]
    fn plain(self) -> bool {
        self
    }
}
/// The condition of a statement the macros left as Rust; only `bool` passes.
#[inline(always)]
pub fn while_no_carry<C: WhileNoCarry>(c: C) -> bool {
    c.plain()
}

#[diagnostic::on_unimplemented(
    message = "a `for` loop with a tensor bound cannot `break`, `continue`, `return` or use `?` in its body",
    label = "this bound is a `{Self}`, so the loop is staged as a `fori_loop`",
    note = "use a `while` on a tensor condition with a carried flag instead (`while &i.lt(&n) & &go {{ .. }}`), or a plain integer bound"
)]
pub trait ForNoEscape<L> {
    /// The bound, as the lower bound's type.
    fn plain(self) -> L;
}
/// The range of a `for` the macros left as Rust; only plain integers of one type pass. The
/// index takes the lower bound's type, so integer inference works as in the original loop.
#[inline(always)]
pub fn for_no_escape<L, H: ForNoEscape<L>>(lo: L, hi: H) -> std::ops::Range<L> {
    lo..hi.plain()
}

#[diagnostic::on_unimplemented(
    message = "a `for` loop with a tensor bound cannot assign to a field, an index or through a reference",
    label = "this bound is a `{Self}`, so the loop is staged as a `fori_loop`",
    note = "the loop's state is the local variables it assigns: copy the field into a local before the loop (`let mut w = model.w.clone();`), assign the local, and store it after the loop"
)]
pub trait ForNoPlace<L> {
    /// The bound, as the lower bound's type.
    fn plain(self) -> L;
}
/// The range of a `for` the macros left as Rust; only plain integers of one type pass. The
/// index takes the lower bound's type, so integer inference works as in the original loop.
#[inline(always)]
pub fn for_no_place<L, H: ForNoPlace<L>>(lo: L, hi: H) -> std::ops::Range<L> {
    lo..hi.plain()
}

#[diagnostic::on_unimplemented(
    message = "a `for` loop with a tensor bound must assign a variable declared before the loop",
    label = "this bound is a `{Self}`, so the loop is staged as a `fori_loop` whose state is the variables it assigns",
    note = "assign the loop state with `x = ...` (methods taking `&mut self` are not seen as assignments)"
)]
pub trait ForNoCarry<L> {
    /// The bound, as the lower bound's type.
    fn plain(self) -> L;
}
/// The range of a `for` the macros left as Rust; only plain integers of one type pass. The
/// index takes the lower bound's type, so integer inference works as in the original loop.
#[inline(always)]
pub fn for_no_carry<L, H: ForNoCarry<L>>(lo: L, hi: H) -> std::ops::Range<L> {
    lo..hi.plain()
}

macro_rules! for_plain_impls {
    ($($t:ty),*) => {$(
        impl ForNoEscape<$t> for $t {
            #[inline(always)]
            fn plain(self) -> $t {
                self
            }
        }
        impl ForNoPlace<$t> for $t {
            #[inline(always)]
            fn plain(self) -> $t {
                self
            }
        }
        impl ForNoCarry<$t> for $t {
            #[inline(always)]
            fn plain(self) -> $t {
                self
            }
        }
    )*};
}
for_plain_impls!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, char);
