//! `Array`: the untyped, non-generic tensor every typed [`Tensor`](crate::Tensor) forwards to.
//! It is either concrete (an `Arc`-shared host buffer, or a buffer on a registered device,
//! see [`crate::device`]) or a tracer (a variable of the trace being recorded on this
//! thread); primitives are applied through [`bind`].

use crate::dtype::{DType, Elem};
use crate::error::{Error, Result};
use crate::prim::Primitive;
use crate::storage::Storage;
use std::fmt;
use std::sync::Arc;

pub use crate::device::Device;

/// The abstract value of an array: shape and dtype, no data. What shape rules compute.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AVal {
    /// Sizes, outermost first.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
}

impl AVal {
    /// Builds an abstract value.
    pub fn new(shape: impl Into<Vec<usize>>, dtype: DType) -> Self {
        AVal {
            shape: shape.into(),
            dtype,
        }
    }
    /// Element count.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
}

impl fmt::Display for AVal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:?}", self.dtype, self.shape)
    }
}

/// A variable of a trace being recorded (filled in by the staging engine).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tracer {
    /// Which trace this variable belongs to.
    pub trace: u64,
    /// The SSA variable id inside that trace.
    pub var: u32,
}

#[derive(Clone)]
pub(crate) enum Repr {
    Host(Arc<Storage>),
    Tracer(Tracer),
    /// On a registered device (never the host).
    Device(Arc<crate::device::DeviceValue>),
}

/// An untyped tensor: shape and dtype at run time. Cheap to clone (buffers are shared).
#[derive(Clone)]
pub struct Array {
    pub(crate) aval: AVal,
    pub(crate) repr: Repr,
}

impl fmt::Debug for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Host(_) => write!(
                f,
                "Array({}, {})",
                self.aval,
                crate::format::format_array(self)
            ),
            Repr::Tracer(t) => write!(f, "Tracer({}, trace {}, var {})", self.aval, t.trace, t.var),
            Repr::Device(d) => write!(
                f,
                "Array({}, {}, {})",
                self.aval,
                d.device,
                crate::format::format_array(self)
            ),
        }
    }
}

impl Array {
    /// A host array from a storage and a shape; checks the element count.
    pub fn from_storage(shape: impl Into<Vec<usize>>, data: Storage) -> Result<Array> {
        let shape = shape.into();
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::shape(
                "from_vec",
                format!(
                    "shape {shape:?} holds {n} elements, but {} were given",
                    data.len()
                ),
            ));
        }
        Ok(Array {
            aval: AVal {
                shape,
                dtype: data.dtype(),
            },
            repr: Repr::Host(Arc::new(data)),
        })
    }
    /// A host array from a typed vector.
    pub fn from_vec<E: Elem>(shape: impl Into<Vec<usize>>, v: Vec<E>) -> Result<Array> {
        Array::from_storage(shape, E::into_storage(v))
    }
    /// A rank-0 host array.
    pub fn scalar<E: Elem>(x: E) -> Array {
        Array::from_storage(Vec::new(), E::into_storage(vec![x])).expect("one element")
    }
    /// A host array of zeros.
    pub fn zeros(shape: &[usize], dtype: DType) -> Array {
        let n = shape.iter().product();
        Array::from_storage(shape.to_vec(), Storage::zeros(dtype, n)).expect("sized")
    }
    /// A host array filled with `x` converted to `dtype`.
    pub fn full(shape: &[usize], dtype: DType, x: f64) -> Array {
        let n = shape.iter().product();
        Array::from_storage(shape.to_vec(), Storage::full(dtype, n, x)).expect("sized")
    }
    pub(crate) fn from_tracer(aval: AVal, t: Tracer) -> Array {
        Array {
            aval,
            repr: Repr::Tracer(t),
        }
    }
    /// Shape and dtype.
    pub fn aval(&self) -> &AVal {
        &self.aval
    }
    /// Sizes, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.aval.shape
    }
    /// Element type.
    pub fn dtype(&self) -> DType {
        self.aval.dtype
    }
    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.aval.shape.len()
    }
    /// Element count.
    pub fn numel(&self) -> usize {
        self.aval.numel()
    }
    /// The device holding the buffer (tracers report the host).
    pub fn device(&self) -> Device {
        match &self.repr {
            Repr::Device(d) => d.device,
            _ => Device::Cpu,
        }
    }
    /// Whether the buffer lives on a registered device (not the host, not a tracer).
    pub fn is_on_device(&self) -> bool {
        matches!(self.repr, Repr::Device(_))
    }
    /// A copy on device `to` (the same array if it is already there). Host to device
    /// uploads; device to host downloads. The result is committed to `to`: an op meeting an
    /// array committed to another registered device is an error naming both.
    pub fn to_device(&self, to: &Device) -> Result<Array> {
        crate::device::to_device(self, *to)
    }
    /// Whether this is a variable of a trace being recorded.
    pub fn is_tracer(&self) -> bool {
        matches!(self.repr, Repr::Tracer(_))
    }
    /// The tracer, if this is one.
    pub fn tracer(&self) -> Option<Tracer> {
        match self.repr {
            Repr::Tracer(t) => Some(t),
            Repr::Host(_) | Repr::Device(_) => None,
        }
    }
    /// The host buffer (a device array downloads once and keeps the copy); an error naming
    /// `what` if this is a tracer or the download failed.
    pub fn storage(&self, what: &str) -> Result<&Storage> {
        match &self.repr {
            Repr::Host(s) => Ok(s),
            Repr::Device(d) => Ok(&**d.host(what, &self.aval)?),
            Repr::Tracer(_) => Err(Error::Concretization(format!(
                "{what}: cannot read the value of a traced tensor {} inside a staged function; \
                 its value exists only when the compiled program runs. Use tensor ops \
                 (`where_`, `cond`, `while_loop`) instead of Rust control flow on it, or \
                 `debug_print!` to see it",
                self.aval
            ))),
        }
    }
    /// The shared host buffer (for snapshotting without copying); a device array
    /// downloads once and shares the copy (`None` if that failed, or for a tracer).
    pub fn storage_arc(&self) -> Option<&Arc<Storage>> {
        match &self.repr {
            Repr::Host(s) => Some(s),
            Repr::Device(d) => d.host("storage_arc", &self.aval).ok(),
            Repr::Tracer(_) => None,
        }
    }
    /// Copies the elements out as a typed vector; errors on a dtype mismatch or a tracer.
    pub fn to_vec<E: Elem>(&self) -> Result<Vec<E>> {
        let s = self.storage("to_vec")?;
        E::slice(s).map(|v| v.to_vec()).ok_or_else(|| {
            Error::dtype(
                "to_vec",
                format!("array holds {}, asked for {}", self.dtype(), E::DTYPE),
            )
        })
    }
    /// Whether two host arrays hold bit-identical data with the same shape and dtype.
    pub fn bit_eq(&self, other: &Array) -> bool {
        match (self.storage_arc(), other.storage_arc()) {
            (Some(a), Some(b)) => {
                self.aval == other.aval
                    && with_storage!(&**a, x, T => {
                        let y = T::slice_of(b);
                        y.is_some_and(|y| x.iter().zip(y).all(|(p, q)| p.to_bits_u64() == q.to_bits_u64()))
                    })
            }
            _ => false,
        }
    }
}

/// Bit-level equality helper for [`Array::bit_eq`].
pub(crate) trait Bits: Sized {
    fn to_bits_u64(&self) -> u64;
    fn slice_of(s: &Storage) -> Option<&[Self]>;
}
macro_rules! bits {
    ($t:ty, $f:expr) => {
        impl Bits for $t {
            #[allow(clippy::redundant_closure_call)]
            fn to_bits_u64(&self) -> u64 {
                ($f)(*self)
            }
            fn slice_of(s: &Storage) -> Option<&[Self]> {
                <$t as Elem>::slice(s)
            }
        }
    };
}
bits!(f32, |x: f32| x.to_bits() as u64);
bits!(f64, |x: f64| x.to_bits());
bits!(half::bf16, |x: half::bf16| x.to_bits() as u64);
bits!(half::f16, |x: half::f16| x.to_bits() as u64);
bits!(i32, |x: i32| x as u32 as u64);
bits!(i64, |x: i64| x as u64);
bits!(u32, |x: u32| x as u64);
bits!(bool, |x: bool| x as u64);

/// A borrowed view of a host input handed to a primitive's kernel.
#[derive(Clone, Copy, Debug)]
pub struct HostView<'a> {
    /// Sizes, outermost first.
    pub shape: &'a [usize],
    /// The contiguous row-major data.
    pub data: &'a Storage,
}

/// Applies a primitive: checks shapes with its shape rule, then either records an equation
/// (when an input is a tracer) or runs its host kernel. Every op goes through here.
pub fn bind(prim: Arc<dyn Primitive>, ins: &[&Array]) -> Result<Vec<Array>> {
    let avals: Vec<AVal> = ins.iter().map(|a| a.aval.clone()).collect();
    let out_avals = prim.abstract_eval(&avals)?;
    // One discriminant test per operand on the host path.
    if ins.iter().any(|a| !matches!(a.repr, Repr::Host(_))) {
        if ins.iter().any(|a| a.is_tracer()) {
            return crate::trace::record(prim, ins, out_avals);
        }
        let outs = crate::device::eager(prim.clone(), ins)?;
        crate::trace::after_eager(prim.as_ref(), &outs)?;
        return Ok(outs);
    }
    let views: Vec<HostView<'_>> = ins
        .iter()
        .map(|a| match &a.repr {
            Repr::Host(s) => HostView {
                shape: &a.aval.shape,
                data: s,
            },
            Repr::Tracer(_) | Repr::Device(_) => unreachable!("checked above"),
        })
        .collect();
    let t0 = crate::profiler::is_active().then(std::time::Instant::now);
    let outs = prim.eval(&views, &out_avals)?;
    if let Some(t0) = t0 {
        crate::profiler::record_step(prim.name(), t0.elapsed());
    }
    debug_assert_eq!(
        outs.len(),
        out_avals.len(),
        "{}: kernel output count",
        prim.name()
    );
    let outs: Vec<Array> = outs
        .into_iter()
        .zip(out_avals)
        .map(|(s, aval)| {
            debug_assert_eq!(s.len(), aval.numel(), "{}: kernel output size", prim.name());
            debug_assert_eq!(
                s.dtype(),
                aval.dtype,
                "{}: kernel output dtype",
                prim.name()
            );
            Array {
                aval,
                repr: Repr::Host(Arc::new(s)),
            }
        })
        .collect();
    crate::trace::after_eager(prim.as_ref(), &outs)?;
    Ok(outs)
}

/// [`bind`] for the common single-output case.
pub fn bind1(prim: impl Primitive, ins: &[&Array]) -> Result<Array> {
    let mut outs = bind(Arc::new(prim), ins)?;
    Ok(outs.pop().expect("one output"))
}
