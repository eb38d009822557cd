//! The runtime of `#[jit]`: a per-function cache of compiled executables keyed by the
//! argument types (generic parameters), leaf shapes and dtypes (so `Dyn` sizes), static
//! argument values and device. The macro generates a thin wrapper around these calls.

use crate::array::{AVal, Array, Device, Repr};
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::trace::TraceScope;
use crate::tree::{Path, Tree};
use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Values usable as static (non-traced) arguments of a staged function: hashed into the
/// cache key, so a new value compiles a new executable. Implement it for your own
/// configuration types with [`impl_static_arg_via_hash!`](crate::impl_static_arg_via_hash).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a static argument of a staged function",
    label = "static arguments must be hashable: they select which compiled program runs",
    note = "implement `ferrax::StaticArg` (for `Hash` types: `ferrax::impl_static_arg_via_hash!(YourType);`), or make the argument a tree (tensors) so it is traced"
)]
pub trait StaticArg {
    /// Feeds the value into the cache key.
    fn hash_static(&self, h: &mut dyn Hasher);
}

/// Implements [`StaticArg`] for types that implement `Hash`.
#[macro_export]
macro_rules! impl_static_arg_via_hash {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::jit::StaticArg for $t {
            fn hash_static(&self, mut h: &mut dyn ::std::hash::Hasher) {
                ::std::hash::Hash::hash(self, &mut h)
            }
        }
    )*};
}

impl_static_arg_via_hash!(
    bool, char, u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);
impl_static_arg_via_hash!(String, str, (), Device);

impl StaticArg for f32 {
    fn hash_static(&self, mut h: &mut dyn Hasher) {
        self.to_bits().hash(&mut h)
    }
}
impl StaticArg for f64 {
    fn hash_static(&self, mut h: &mut dyn Hasher) {
        self.to_bits().hash(&mut h)
    }
}
impl<T: StaticArg + ?Sized> StaticArg for &T {
    fn hash_static(&self, h: &mut dyn Hasher) {
        (**self).hash_static(h)
    }
}
impl<T: StaticArg> StaticArg for Option<T> {
    fn hash_static(&self, mut h: &mut dyn Hasher) {
        self.is_some().hash(&mut h);
        if let Some(x) = self {
            x.hash_static(h)
        }
    }
}
impl<T: StaticArg> StaticArg for [T] {
    fn hash_static(&self, mut h: &mut dyn Hasher) {
        self.len().hash(&mut h);
        for x in self {
            x.hash_static(h)
        }
    }
}
impl<T: StaticArg, const N: usize> StaticArg for [T; N] {
    fn hash_static(&self, h: &mut dyn Hasher) {
        self[..].hash_static(h)
    }
}
impl<T: StaticArg> StaticArg for Vec<T> {
    fn hash_static(&self, h: &mut dyn Hasher) {
        self[..].hash_static(h)
    }
}
macro_rules! static_tuple {
    ($($T:ident $i:tt),+) => {
        impl<$($T: StaticArg),+> StaticArg for ($($T,)+) {
            fn hash_static(&self, h: &mut dyn Hasher) {
                $(self.$i.hash_static(h);)+
            }
        }
    };
}
static_tuple!(A 0);
static_tuple!(A 0, B 1);
static_tuple!(A 0, B 1, C 2);
static_tuple!(A 0, B 1, C 2, D 3);

thread_local! {
    static DISABLED: Cell<Option<bool>> = const { Cell::new(None) };
}

fn disabled_by_env() -> bool {
    static ENV: OnceLock<bool> = OnceLock::new();
    *ENV.get_or_init(|| {
        std::env::var("FERRAX_DISABLE_JIT").is_ok_and(|v| !v.is_empty() && v != "0")
    })
}

/// Whether staged functions run their bodies eagerly (`FERRAX_DISABLE_JIT=1` or a
/// [`disable_jit`] scope).
pub fn jit_disabled() -> bool {
    DISABLED.with(|d| d.get()).unwrap_or_else(disabled_by_env)
}

/// Runs `f` with `#[jit]` functions executing their bodies eagerly, op by op (debugging).
pub fn disable_jit<R>(f: impl FnOnce() -> R) -> R {
    let prev = DISABLED.with(|d| d.replace(Some(true)));
    struct Restore(Option<bool>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DISABLED.with(|d| d.set(self.0));
        }
    }
    let _r = Restore(prev);
    f()
}

/// Cache statistics of one staged function, or of all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitStats {
    /// Calls served by a cached executable.
    pub hits: u64,
    /// Calls that had to trace and compile.
    pub misses: u64,
    /// Executables compiled (equal to misses unless two threads raced).
    pub compiles: u64,
    /// Calls inlined into an enclosing trace or run eagerly (jit disabled).
    pub inlined: u64,
}

static GLOBAL: [AtomicU64; 4] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

/// Statistics summed over every staged function of the process.
pub fn global_jit_stats() -> JitStats {
    JitStats {
        hits: GLOBAL[0].load(Ordering::Relaxed),
        misses: GLOBAL[1].load(Ordering::Relaxed),
        compiles: GLOBAL[2].load(Ordering::Relaxed),
        inlined: GLOBAL[3].load(Ordering::Relaxed),
    }
}

/// The cache key of one call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct JitKey {
    generics: Vec<&'static str>,
    avals: Vec<AVal>,
    statics: u64,
    device: Device,
}

struct Entry {
    exe: crate::device::Compiled,
    /// The traced return value (tracer leaves): the structure results are rebuilt into.
    template: Mutex<Box<dyn Any + Send>>,
    n_result_leaves: usize,
}

/// What a call to a staged function is made of: its generic parameters, tree leaves and
/// static values. Built by generated code.
#[derive(Default)]
pub struct JitArgs {
    generics: Vec<&'static str>,
    leaves: Vec<Array>,
    statics: std::collections::hash_map::DefaultHasher,
}

impl std::fmt::Debug for JitArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitArgs")
            .field("generics", &self.generics)
            .field("leaves", &self.leaves.len())
            .finish()
    }
}

impl JitArgs {
    /// Starts an empty argument list.
    pub fn new() -> Self {
        Self::default()
    }
    /// Records a generic parameter (type name or const value).
    pub fn generic(&mut self, name: &'static str) {
        self.generics.push(name);
    }
    /// Records a const generic value.
    pub fn const_generic(&mut self, v: impl StaticArg) {
        v.hash_static(&mut self.statics);
    }
    /// Records a tree argument: its leaves are traced.
    pub fn tree<T: Tree>(&mut self, t: &T) {
        t.visit(&mut Path::default(), &mut |_, a| {
            self.leaves.push(a.clone())
        });
        t.fingerprint(&mut self.statics);
    }
    /// Donates the buffers of a `&mut` tree argument (already recorded with [`tree`]) to
    /// the call: each leaf the caller holds alone (its buffer's only other reference is the
    /// recorded copy) is replaced by an empty placeholder until the new leaves are written
    /// back, so the buffer is unique inside the executable, which may then write an output
    /// into it instead of allocating. Leaves shared elsewhere are left alone (the executable
    /// never writes into a shared buffer). Call it after [`should_inline`] said no.
    ///
    /// [`tree`]: JitArgs::tree
    /// [`should_inline`]: JitArgs::should_inline
    pub fn donate<T: Tree>(&mut self, t: &mut T) {
        let donated = t.rebuild(&mut Path::default(), &mut |_, a| {
            Ok(match &a.repr {
                Repr::Host(s) => {
                    crate::exec::forget_pooled(s);
                    if Arc::strong_count(s) == 2
                        && self
                            .leaves
                            .iter()
                            .any(|l| matches!(&l.repr, Repr::Host(q) if Arc::ptr_eq(q, s)))
                    {
                        Array {
                            aval: a.aval.clone(),
                            repr: Repr::Host(Arc::new(Storage::zeros(a.aval.dtype, 0))),
                        }
                    } else {
                        a.clone()
                    }
                }
                Repr::Tracer(_) | Repr::Device(_) => a.clone(),
            })
        });
        if let Ok(d) = donated {
            *t = d;
        }
    }
    /// Records a static argument: its value is part of the key.
    pub fn static_arg<T: StaticArg + ?Sized>(&mut self, v: &T) {
        v.hash_static(&mut self.statics);
    }
    /// Whether the body should run directly: inside another trace (inlining) or with jit
    /// disabled.
    pub fn should_inline(&self) -> bool {
        jit_disabled() || self.leaves.iter().any(|a| a.is_tracer())
    }
}

/// The tracing side of a cache miss: turns arguments into tracers and collects the
/// values of `&mut` arguments after the body ran.
#[derive(Debug)]
pub struct Tracing {
    scope: TraceScope,
    mutated: Vec<Array>,
}

impl Tracing {
    /// A copy of a tree argument whose leaves are fresh input tracers.
    pub fn input<T: Tree>(&mut self, t: &T) -> Result<T> {
        let scope = &self.scope;
        t.rebuild(&mut Path::default(), &mut |_, a| {
            Ok(scope.new_input(a.aval().clone()))
        })
    }
    /// Records the final value of a `&mut` tree argument (written back after each call).
    pub fn mutated<T: Tree>(&mut self, t: &T) {
        t.visit(&mut Path::default(), &mut |_, a| {
            self.mutated.push(a.clone())
        });
    }
}

/// The compiled-executable cache of one staged function (a `static` in generated code).
pub struct JitCache {
    name: &'static str,
    entries: OnceLock<Mutex<HashMap<JitKey, Arc<Entry>>>>,
    stats: [AtomicU64; 4],
}

impl std::fmt::Debug for JitCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitCache")
            .field("name", &self.name)
            .field("stats", &self.stats())
            .finish()
    }
}

impl JitCache {
    /// An empty cache for the function `name`.
    pub const fn new(name: &'static str) -> Self {
        JitCache {
            name,
            entries: OnceLock::new(),
            stats: [
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
                AtomicU64::new(0),
            ],
        }
    }

    fn bump(&self, i: usize) {
        self.stats[i].fetch_add(1, Ordering::Relaxed);
        GLOBAL[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Records an inlined (or eager) call.
    pub fn note_inlined(&self) {
        self.bump(3);
    }

    /// This function's statistics.
    pub fn stats(&self) -> JitStats {
        JitStats {
            hits: self.stats[0].load(Ordering::Relaxed),
            misses: self.stats[1].load(Ordering::Relaxed),
            compiles: self.stats[2].load(Ordering::Relaxed),
            inlined: self.stats[3].load(Ordering::Relaxed),
        }
    }

    /// Number of compiled executables held.
    pub fn len(&self) -> usize {
        self.entries
            .get()
            .map_or(0, |m| m.lock().expect("jit cache").len())
    }

    /// Whether nothing was compiled yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn map(&self) -> &Mutex<HashMap<JitKey, Arc<Entry>>> {
        self.entries.get_or_init(|| Mutex::new(HashMap::new()))
    }

    fn key(args: &JitArgs, device: Device) -> JitKey {
        JitKey {
            generics: args.generics.clone(),
            avals: args.leaves.iter().map(|a| a.aval().clone()).collect(),
            statics: args.statics.finish(),
            device,
        }
    }

    /// Traces (on a miss) and runs. Returns the result rebuilt into its structure and the
    /// new leaves of the `&mut` arguments, in the order `trace` recorded them.
    pub fn call<R: Tree + Send + 'static>(
        &self,
        args: JitArgs,
        trace: impl FnOnce(&mut Tracing) -> Result<R>,
    ) -> Result<(R, std::vec::IntoIter<Array>)> {
        let device = crate::device::placement(self.name, &args.leaves)?;
        let key = Self::key(&args, device);
        let found = self.map().lock().expect("jit cache").get(&key).cloned();
        let entry = match found {
            Some(e) => {
                self.bump(0);
                e
            }
            None => {
                self.bump(1);
                let e = Arc::new(self.compile(&key, trace)?);
                self.bump(2);
                self.map().lock().expect("jit cache").insert(key, e.clone());
                e
            }
        };
        let outs = entry.exe.run_owned(args.leaves)?;
        let mut it = outs.into_iter();
        let template = entry.template.lock().expect("jit template");
        let template = template.downcast_ref::<R>().ok_or_else(|| {
            Error::invalid(
                "jit",
                format!("`{}`: cached result type differs", self.name),
            )
        })?;
        let mut res_leaves = it
            .by_ref()
            .take(entry.n_result_leaves)
            .collect::<Vec<_>>()
            .into_iter();
        let r = template.rebuild(&mut Path::default(), &mut |p, _| {
            res_leaves
                .next()
                .ok_or_else(|| Error::Tree(format!("missing result leaf `{p}`")))
        })?;
        Ok((r, it.collect::<Vec<_>>().into_iter()))
    }

    /// The program of one call, without running it (like `jax.make_jaxpr`).
    pub fn trace_program<R: Tree>(
        &self,
        trace: impl FnOnce(&mut Tracing) -> Result<R>,
    ) -> Result<crate::ir::Program> {
        let mut t = Tracing {
            scope: TraceScope::begin(),
            mutated: Vec::new(),
        };
        let r = trace(&mut t)?;
        let mut outs = crate::tree::leaves(&r);
        outs.extend(t.mutated);
        let (prog, captured) = t.scope.finish(&outs)?;
        if !captured.is_empty() {
            return Err(Error::invalid(
                "jit",
                "a staged function captured a traced value",
            ));
        }
        Ok(prog)
    }

    fn compile<R: Tree + Send + 'static>(
        &self,
        key: &JitKey,
        trace: impl FnOnce(&mut Tracing) -> Result<R>,
    ) -> Result<Entry> {
        let mut t = Tracing {
            scope: TraceScope::begin(),
            mutated: Vec::new(),
        };
        let r = trace(&mut t)?;
        let res = crate::tree::leaves(&r);
        let n_result_leaves = res.len();
        let mut outs = res;
        outs.extend(t.mutated);
        let (prog, captured) = t.scope.finish(&outs)?;
        if !captured.is_empty() {
            return Err(Error::invalid(
                "jit",
                format!(
                    "`{}` captured a traced value from an enclosing trace",
                    self.name
                ),
            ));
        }
        if cfg!(debug_assertions) {
            crate::ir::verify(&prog)?;
        }
        debug_assert_eq!(prog.inputs.len(), key.avals.len());
        let exe = crate::device::Compiled::compile(&prog, key.device)?;
        Ok(Entry {
            exe,
            template: Mutex::new(Box::new(r)),
            n_result_leaves,
        })
    }
}

/// Rebuilds a `&mut` argument from its new leaves (generated code calls this after a run).
pub fn write_back<T: Tree>(old: &T, leaves: &mut std::vec::IntoIter<Array>) -> Result<T> {
    old.rebuild(&mut Path::default(), &mut |p, _| {
        leaves
            .next()
            .ok_or_else(|| Error::Tree(format!("missing leaf `{p}` of a `&mut` argument")))
    })
}

/// Autoref specialization used by `#[derive(Tree)]` for `#[tree(static)]` fields: a field
/// whose type implements [`StaticArg`] feeds the cache key (so a model whose static
/// configuration changes recompiles); any other static field is skipped.
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub struct FpWrap<'a, T: ?Sized>(pub &'a T);

#[doc(hidden)]
pub trait FpViaStatic {
    fn __ferrax_fp(&self, h: &mut dyn Hasher);
}
impl<T: StaticArg + ?Sized> FpViaStatic for FpWrap<'_, T> {
    fn __ferrax_fp(&self, h: &mut dyn Hasher) {
        self.0.hash_static(h)
    }
}

#[doc(hidden)]
pub trait FpFallback {
    fn __ferrax_fp(&self, h: &mut dyn Hasher);
}
impl<T: ?Sized> FpFallback for &FpWrap<'_, T> {
    fn __ferrax_fp(&self, _h: &mut dyn Hasher) {}
}
