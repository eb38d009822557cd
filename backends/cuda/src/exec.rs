//! Running a program on a GPU. Compilation (optimize, partition, generate CUDA C) needs no
//! device; running does. Fused regions run as generated kernels, `dot_general` of the
//! matmul form through cuBLAS (strided batched, transposes as flags), reductions over a
//! contiguous block of axes and transposes through the embedded kernels. Every other
//! equation runs its host kernel on downloaded operands and uploads the results: correct for
//! every primitive, but a host round trip (see `describe` for which steps do that).
//!
//! All work is queued on the device's one stream, so kernels run in order without host
//! synchronization; the host waits only when it downloads a result.

use crate::codegen::{partition, FusedKernel, Step};
use crate::device::{CudaDevice, DeviceBuffer};
use crate::error::{Error, Result};
use crate::kernels;
use cudarc::cublas::{sys::cublasOperation_t, Gemm, GemmConfig, StridedBatchedConfig};
use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};
use ferrax_core::ir::Program;
use ferrax_core::prim::dot_general::DotGeneral;
use ferrax_core::prim::reduce::{Reduce, ReduceOp};
use ferrax_core::prim::transpose::Transpose;
use ferrax_core::{AVal, Array, DType, HostView, Storage};
use std::sync::{Arc, OnceLock};

/// A value on the device: its abstract value and buffer.
#[derive(Debug)]
pub struct DeviceArray {
    /// Shape and dtype.
    pub aval: AVal,
    /// The data.
    pub buf: DeviceBuffer,
}

/// How a step runs (see [`CudaExecutable::describe`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepRoute {
    /// A generated fused kernel.
    Fused,
    /// cuBLAS.
    Blas,
    /// An embedded hand-written kernel.
    Kernel,
    /// The primitive's host kernel (download, run, upload).
    Host,
}

/// A program compiled for CUDA devices.
#[derive(Debug)]
pub struct CudaExecutable {
    prog: Program,
    steps: Vec<Step>,
    /// The program's constants on the device they were first uploaded to (ordinal).
    consts: OnceLock<(usize, Vec<Arc<DeviceArray>>)>,
}

const BLOCK: u32 = 256;

fn grid_for(n: usize) -> LaunchConfig {
    // Grid-stride loops: cap the grid, each thread walks several elements.
    let blocks = n.div_ceil(BLOCK as usize).clamp(1, 65_535) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// The matmul form of a dot_general: leading batch axes on both sides, one free and one
/// contracted axis each. `(batch, m, n, k, lhs_contract_last, rhs_contract_first)`.
fn matmul_form(
    d: &DotGeneral,
    l: &AVal,
    r: &AVal,
) -> Option<(usize, usize, usize, usize, bool, bool)> {
    let nb = d.lhs_batch.len();
    if l.rank() != nb + 2 || r.rank() != nb + 2 || d.lhs_contract.len() != 1 {
        return None;
    }
    let lead: Vec<usize> = (0..nb).collect();
    if d.lhs_batch != lead || d.rhs_batch != lead {
        return None;
    }
    let (lc, rc) = (d.lhs_contract[0], d.rhs_contract[0]);
    if lc < nb || rc < nb {
        return None;
    }
    let lhs_last = lc == nb + 1;
    let rhs_first = rc == nb;
    let batch: usize = l.shape[..nb].iter().product();
    let k = l.shape[lc];
    let m = l.shape[if lhs_last { nb } else { nb + 1 }];
    let n = r.shape[if rhs_first { nb + 1 } else { nb }];
    Some((batch, m, n, k, lhs_last, rhs_first))
}

/// A reduce over a contiguous block of axes: `(outer, r, inner)`.
fn reduce_form(red: &Reduce, x: &AVal) -> Option<(usize, usize, usize)> {
    let (&a0, &a1) = (red.axes.first()?, red.axes.last()?);
    if red.axes.len() != a1 - a0 + 1 {
        return None;
    }
    let outer = x.shape[..a0].iter().product();
    let r = x.shape[a0..=a1].iter().product();
    let inner = x.shape[a1 + 1..].iter().product();
    Some((outer, r, inner))
}

/// Transpose parameters passed by value to the kernel (layout of `FxPerm` in transpose.cu).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct FxPerm {
    rank: u64,
    out_shape: [u64; 6],
    in_stride: [u64; 6],
}
// SAFETY: plain-old-data with the C layout of the kernel's struct.
unsafe impl DeviceRepr for FxPerm {}

impl CudaExecutable {
    /// Optimizes a program and generates its kernels (no device needed).
    pub fn compile(prog: &Program) -> Result<CudaExecutable> {
        let prog = ferrax_core::ir::passes::optimize(prog)?;
        let steps = partition(&prog);
        Ok(CudaExecutable {
            prog,
            steps,
            consts: OnceLock::new(),
        })
    }

    /// The optimized program.
    pub fn program(&self) -> &Program {
        &self.prog
    }

    /// The generated kernels, in step order.
    pub fn fused_kernels(&self) -> Vec<&FusedKernel> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::Kernel(k) => Some(k),
                Step::Single(_) => None,
            })
            .collect()
    }

    fn route(&self, s: &Step) -> StepRoute {
        let Step::Single(i) = s else {
            return StepRoute::Fused;
        };
        let e = &self.prog.eqns[*i];
        let float =
            |v: &ferrax_core::ir::Var| matches!(self.prog.aval(*v).dtype, DType::F32 | DType::F64);
        let any = e.prim.as_any();
        if let Some(d) = any.downcast_ref::<DotGeneral>() {
            if e.ins.iter().all(float)
                && matmul_form(d, self.prog.aval(e.ins[0]), self.prog.aval(e.ins[1])).is_some()
            {
                return StepRoute::Blas;
            }
        }
        if let Some(r) = any.downcast_ref::<Reduce>() {
            if e.ins.iter().all(float) && reduce_form(r, self.prog.aval(e.ins[0])).is_some() {
                return StepRoute::Kernel;
            }
        }
        if any.downcast_ref::<Transpose>().is_some() && self.prog.aval(e.ins[0]).rank() <= 6 {
            return StepRoute::Kernel;
        }
        StepRoute::Host
    }

    /// One line per step: `fused[...]`, or the primitive name with its route.
    pub fn describe(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Kernel(k) => {
                    let names: Vec<&str> = k
                        .eqns
                        .iter()
                        .map(|&i| self.prog.eqns[i].prim.name())
                        .collect();
                    format!("fused[{}]", names.join(","))
                }
                Step::Single(i) => {
                    format!("{} ({:?})", self.prog.eqns[*i].prim.name(), self.route(s))
                }
            })
            .collect()
    }

    /// Runs on host arrays: uploads the arguments, runs, downloads the results.
    pub fn run(&self, dev: &CudaDevice, args: &[Array]) -> Result<Vec<Array>> {
        let mut dargs = Vec::with_capacity(args.len());
        for a in args {
            dargs.push(DeviceArray {
                aval: a.aval().clone(),
                buf: dev.upload(a.storage("cuda upload")?)?,
            });
        }
        let outs = self.run_device(dev, dargs)?;
        outs.iter()
            .map(|o| {
                Ok(Array::from_storage(
                    o.aval.shape.clone(),
                    dev.download(&o.buf)?,
                )?)
            })
            .collect()
    }

    /// Runs on device arrays; results stay on the device (as fresh buffers).
    pub fn run_device(&self, dev: &CudaDevice, args: Vec<DeviceArray>) -> Result<Vec<DeviceArray>> {
        let outs = self.run_shared(dev, args.into_iter().map(Arc::new).collect())?;
        outs.iter()
            .map(|a| {
                Ok(DeviceArray {
                    aval: a.aval.clone(),
                    buf: clone_buf(dev, &a.buf)?,
                })
            })
            .collect()
    }

    /// Runs on shared device arrays (what the ferrax device backend holds); results stay
    /// on the device and share buffers with the arguments when the program returns one
    /// unchanged. Nothing is read back to the host except by `Host` steps (see `describe`).
    pub fn run_shared(
        &self,
        dev: &CudaDevice,
        args: Vec<Arc<DeviceArray>>,
    ) -> Result<Vec<Arc<DeviceArray>>> {
        let p = &self.prog;
        if args.len() != p.inputs.len() {
            return Err(Error::Mismatch {
                op: "CudaExecutable::run",
                expected: format!("{} arguments", p.inputs.len()),
                got: args.len().to_string(),
            });
        }
        // Last use of every variable, so buffers are freed as soon as they die.
        let mut last_use = vec![usize::MAX; p.avals.len()];
        for (si, s) in self.steps.iter().enumerate() {
            let ins: Vec<_> = match s {
                Step::Kernel(k) => k.inputs.clone(),
                Step::Single(i) => p.eqns[*i].ins.clone(),
            };
            for v in ins {
                last_use[v.index()] = si;
            }
        }
        for v in &p.outputs {
            last_use[v.index()] = usize::MAX;
        }
        let mut env: Vec<Option<Arc<DeviceArray>>> = (0..p.avals.len()).map(|_| None).collect();
        for (a, &v) in args.into_iter().zip(&p.inputs) {
            if &a.aval != p.aval(v) {
                return Err(Error::Mismatch {
                    op: "CudaExecutable::run",
                    expected: p.aval(v).to_string(),
                    got: a.aval.to_string(),
                });
            }
            env[v.index()] = Some(a);
        }
        // Constants go up once per executable (for the first device it runs on).
        let uploaded;
        let consts = match self.consts.get() {
            Some((ord, c)) if *ord == dev.ordinal() => c,
            _ => {
                let mut c = Vec::with_capacity(p.consts.len());
                for (_, a) in &p.consts {
                    c.push(Arc::new(DeviceArray {
                        aval: a.aval().clone(),
                        buf: dev.upload(a.storage("cuda const")?)?,
                    }));
                }
                uploaded = c;
                let _ = self.consts.set((dev.ordinal(), uploaded.clone()));
                &uploaded
            }
        };
        for ((v, _), a) in p.consts.iter().zip(consts) {
            env[v.index()] = Some(a.clone());
        }
        for (si, s) in self.steps.iter().enumerate() {
            let results = match s {
                Step::Kernel(k) => run_fused(dev, p, k, &env)?,
                Step::Single(i) => self.run_single(dev, *i, &env, self.route(s))?,
            };
            for (v, a) in results {
                env[v.index()] = Some(Arc::new(a));
            }
            for (v, lu) in last_use.iter().enumerate() {
                if *lu == si {
                    env[v] = None;
                }
            }
        }
        let mut outs = Vec::with_capacity(p.outputs.len());
        for v in &p.outputs {
            let a = env[v.index()]
                .as_ref()
                .ok_or_else(|| Error::unsupported("run", "output not computed"))?;
            outs.push(a.clone());
        }
        Ok(outs)
    }

    fn run_single(
        &self,
        dev: &CudaDevice,
        i: usize,
        env: &[Option<Arc<DeviceArray>>],
        route: StepRoute,
    ) -> Result<Vec<(ferrax_core::ir::Var, DeviceArray)>> {
        let p = &self.prog;
        let e = &p.eqns[i];
        let operand = |k: usize| -> Result<&DeviceArray> {
            env[e.ins[k].index()]
                .as_deref()
                .ok_or_else(|| Error::unsupported(e.prim.name(), "operand missing"))
        };
        let out = e.outs[0];
        let out_aval = p.aval(out).clone();
        let any = e.prim.as_any();
        let buf = match route {
            StepRoute::Blas => {
                let d = any
                    .downcast_ref::<DotGeneral>()
                    .ok_or_else(|| Error::unsupported("dot_general", "route"))?;
                let (l, r) = (operand(0)?, operand(1)?);
                let form = matmul_form(d, &l.aval, &r.aval)
                    .ok_or_else(|| Error::unsupported("dot_general", "form"))?;
                matmul(dev, &l.buf, &r.buf, form)?
            }
            StepRoute::Kernel if any.downcast_ref::<Reduce>().is_some() => {
                let red = any
                    .downcast_ref::<Reduce>()
                    .ok_or_else(|| Error::unsupported("reduce", "route"))?;
                let x = operand(0)?;
                let form = reduce_form(red, &x.aval)
                    .ok_or_else(|| Error::unsupported("reduce", "form"))?;
                reduce(dev, red.op, &x.buf, form)?
            }
            StepRoute::Kernel => {
                let t = any
                    .downcast_ref::<Transpose>()
                    .ok_or_else(|| Error::unsupported("transpose", "route"))?;
                let x = operand(0)?;
                transpose(dev, &t.perm, &x.aval, &x.buf)?
            }
            StepRoute::Host | StepRoute::Fused => {
                let mut host = Vec::with_capacity(e.ins.len());
                for k in 0..e.ins.len() {
                    host.push(dev.download(&operand(k)?.buf)?);
                }
                let views: Vec<HostView<'_>> = e
                    .ins
                    .iter()
                    .zip(&host)
                    .map(|(v, s)| HostView {
                        shape: &p.aval(*v).shape,
                        data: s,
                    })
                    .collect();
                let avals: Vec<AVal> = e.outs.iter().map(|v| p.aval(*v).clone()).collect();
                let outs: Vec<Storage> = e.prim.eval(&views, &avals)?;
                let mut res = Vec::with_capacity(outs.len());
                for ((v, aval), s) in e.outs.iter().zip(avals).zip(outs) {
                    res.push((
                        *v,
                        DeviceArray {
                            aval,
                            buf: dev.upload(&s)?,
                        },
                    ));
                }
                return Ok(res);
            }
        };
        Ok(vec![(
            out,
            DeviceArray {
                aval: out_aval,
                buf,
            },
        )])
    }
}

fn clone_buf(dev: &CudaDevice, b: &DeviceBuffer) -> Result<DeviceBuffer> {
    let st = dev.stream();
    Ok(match b {
        DeviceBuffer::F32(d) => DeviceBuffer::F32(st.clone_dtod(d)?),
        DeviceBuffer::F64(d) => DeviceBuffer::F64(st.clone_dtod(d)?),
        DeviceBuffer::BF16(d) => DeviceBuffer::BF16(st.clone_dtod(d)?),
        DeviceBuffer::F16(d) => DeviceBuffer::F16(st.clone_dtod(d)?),
        DeviceBuffer::I32(d) => DeviceBuffer::I32(st.clone_dtod(d)?),
        DeviceBuffer::I64(d) => DeviceBuffer::I64(st.clone_dtod(d)?),
        DeviceBuffer::U32(d) => DeviceBuffer::U32(st.clone_dtod(d)?),
        DeviceBuffer::Bool(d) => DeviceBuffer::Bool(st.clone_dtod(d)?),
    })
}

fn function(dev: &CudaDevice, source: &str, name: &str) -> Result<cudarc::driver::CudaFunction> {
    let mut cache = dev
        .kernels
        .lock()
        .map_err(|_| Error::Driver("kernel cache poisoned".into()))?;
    cache.function(dev.context(), source, name)
}

/// Launches a generated kernel over typed slices of one element type.
fn launch_fused<T: DeviceRepr + cudarc::driver::ValidAsZeroBits>(
    dev: &CudaDevice,
    k: &FusedKernel,
    ins: &[&CudaSlice<T>],
) -> Result<Vec<CudaSlice<T>>> {
    let f = function(dev, &k.source, &k.name)?;
    let mut outs: Vec<CudaSlice<T>> = Vec::with_capacity(k.outputs.len());
    for _ in &k.outputs {
        outs.push(dev.stream().alloc_zeros::<T>(k.numel)?);
    }
    if k.numel == 0 {
        return Ok(outs);
    }
    let n = k.numel as u64;
    let mut b = dev.stream().launch_builder(&f);
    for x in ins {
        b.arg(*x);
    }
    for o in outs.iter_mut() {
        b.arg(o);
    }
    b.arg(&n);
    // SAFETY: the argument list matches the generated signature (inputs, outputs, n), every
    // full input and output has `numel` elements and broadcast inputs are indexed within
    // their own shape by construction (codegen::broadcast_index).
    unsafe { b.launch(grid_for(k.numel)) }?;
    Ok(outs)
}

fn run_fused(
    dev: &CudaDevice,
    p: &Program,
    k: &FusedKernel,
    env: &[Option<Arc<DeviceArray>>],
) -> Result<Vec<(ferrax_core::ir::Var, DeviceArray)>> {
    let mut ins = Vec::with_capacity(k.inputs.len());
    for v in &k.inputs {
        ins.push(
            env[v.index()]
                .as_ref()
                .ok_or_else(|| Error::unsupported("fused", "operand missing"))?,
        );
    }
    macro_rules! typed {
        ($variant:ident) => {{
            let mut s = Vec::with_capacity(ins.len());
            for a in &ins {
                match &a.buf {
                    DeviceBuffer::$variant(d) => s.push(d),
                    other => return Err(Error::dtype("fused", k.dtype, other.dtype())),
                }
            }
            launch_fused(dev, k, &s)?
                .into_iter()
                .map(DeviceBuffer::$variant)
                .collect::<Vec<_>>()
        }};
    }
    let bufs = match k.dtype {
        DType::F32 => typed!(F32),
        DType::F64 => typed!(F64),
        DType::BF16 => typed!(BF16),
        DType::F16 => typed!(F16),
        dt => return Err(Error::unsupported("fused", format!("regions of {dt}"))),
    };
    Ok(k.outputs
        .iter()
        .zip(bufs)
        .map(|(v, buf)| {
            (
                *v,
                DeviceArray {
                    aval: p.aval(*v).clone(),
                    buf,
                },
            )
        })
        .collect())
}

/// `C = op(A) · op(B)` per batch, row-major, through the column-major trick:
/// `C^T = op(B)^T · op(A)^T`, so cuBLAS gets B first.
fn matmul(
    dev: &CudaDevice,
    l: &DeviceBuffer,
    r: &DeviceBuffer,
    (batch, m, n, k, lhs_last, rhs_first): (usize, usize, usize, usize, bool, bool),
) -> Result<DeviceBuffer> {
    let blas = dev.blas()?;
    let to_i = |x: usize| {
        i32::try_from(x).map_err(|_| Error::unsupported("dot_general", "dimension over i32::MAX"))
    };
    let (mi, ni, ki) = (to_i(m)?, to_i(n)?, to_i(k)?);
    // Row-major B [k, n] is column-major B^T (n x k, ld n): no transpose. B [n, k]: transpose.
    let (transa, lda) = if rhs_first {
        (cublasOperation_t::CUBLAS_OP_N, ni)
    } else {
        (cublasOperation_t::CUBLAS_OP_T, ki)
    };
    let (transb, ldb) = if lhs_last {
        (cublasOperation_t::CUBLAS_OP_N, ki)
    } else {
        (cublasOperation_t::CUBLAS_OP_T, mi)
    };
    Ok(match (l, r) {
        (DeviceBuffer::F32(a), DeviceBuffer::F32(b)) => {
            let mut c = dev.stream().alloc_zeros::<f32>(batch * m * n)?;
            let gemm = GemmConfig {
                transa,
                transb,
                m: ni,
                n: mi,
                k: ki,
                alpha: 1.0f32,
                lda,
                ldb,
                beta: 0.0f32,
                ldc: ni,
            };
            let cfg = StridedBatchedConfig {
                gemm,
                batch_size: to_i(batch)?,
                stride_a: (k * n) as i64,
                stride_b: (m * k) as i64,
                stride_c: (m * n) as i64,
            };
            // SAFETY: buffer sizes are batch*k*n, batch*m*k and batch*m*n, matching the
            // strides and leading dimensions above.
            unsafe { blas.gemm_strided_batched(cfg, b, a, &mut c) }?;
            DeviceBuffer::F32(c)
        }
        (DeviceBuffer::F64(a), DeviceBuffer::F64(b)) => {
            let mut c = dev.stream().alloc_zeros::<f64>(batch * m * n)?;
            let gemm = GemmConfig {
                transa,
                transb,
                m: ni,
                n: mi,
                k: ki,
                alpha: 1.0f64,
                lda,
                ldb,
                beta: 0.0f64,
                ldc: ni,
            };
            let cfg = StridedBatchedConfig {
                gemm,
                batch_size: to_i(batch)?,
                stride_a: (k * n) as i64,
                stride_b: (m * k) as i64,
                stride_c: (m * n) as i64,
            };
            // SAFETY: as above.
            unsafe { blas.gemm_strided_batched(cfg, b, a, &mut c) }?;
            DeviceBuffer::F64(c)
        }
        _ => return Err(Error::dtype("dot_general", l.dtype(), r.dtype())),
    })
}

fn reduce(
    dev: &CudaDevice,
    op: ReduceOp,
    x: &DeviceBuffer,
    (outer, r, inner): (usize, usize, usize),
) -> Result<DeviceBuffer> {
    let opn = match op {
        ReduceOp::Sum => "sum",
        ReduceOp::Prod => "prod",
        ReduceOp::Max => "max",
        ReduceOp::Min => "min",
    };
    let src = kernels::source(kernels::REDUCE);
    let (ro, rr, ri) = (outer as u64, r as u64, inner as u64);
    macro_rules! go {
        ($variant:ident, $t:ty, $suffix:literal) => {{
            let DeviceBuffer::$variant(xs) = x else {
                unreachable!("matched by the caller")
            };
            let mut out = dev.stream().alloc_zeros::<$t>(outer * inner)?;
            if outer * inner > 0 {
                if inner == 1 {
                    let f = function(dev, &src, &format!("fx_reduce_rows_{opn}_{}", $suffix))?;
                    let mut b = dev.stream().launch_builder(&f);
                    b.arg(xs).arg(&mut out).arg(&rr);
                    let cfg = LaunchConfig {
                        grid_dim: (outer as u32, 1, 1),
                        block_dim: (256, 1, 1),
                        shared_mem_bytes: 0,
                    };
                    // SAFETY: one block per row of `r` elements; 256 threads match the
                    // kernel's shared buffer (FX_REDUCE_THREADS).
                    unsafe { b.launch(cfg) }?;
                } else {
                    let f = function(dev, &src, &format!("fx_reduce_strided_{opn}_{}", $suffix))?;
                    let mut b = dev.stream().launch_builder(&f);
                    b.arg(xs).arg(&mut out).arg(&ro).arg(&rr).arg(&ri);
                    // SAFETY: x has outer*r*inner elements, out has outer*inner.
                    unsafe { b.launch(grid_for(outer * inner)) }?;
                }
            }
            DeviceBuffer::$variant(out)
        }};
    }
    if outer > u32::MAX as usize {
        return Err(Error::unsupported("reduce", "more than 2^32 rows"));
    }
    Ok(match x {
        DeviceBuffer::F32(_) => go!(F32, f32, "f32"),
        DeviceBuffer::F64(_) => go!(F64, f64, "f64"),
        other => {
            return Err(Error::unsupported(
                "reduce",
                format!("{} on the device", other.dtype()),
            ))
        }
    })
}

fn transpose(
    dev: &CudaDevice,
    perm: &[usize],
    x: &AVal,
    buf: &DeviceBuffer,
) -> Result<DeviceBuffer> {
    let rank = x.rank();
    let in_st = ferrax_core::prim::strides(&x.shape);
    let mut p = FxPerm {
        rank: rank as u64,
        out_shape: [1; 6],
        in_stride: [0; 6],
    };
    for (d, &a) in perm.iter().enumerate() {
        p.out_shape[d] = x.shape[a] as u64;
        p.in_stride[d] = in_st[a] as u64;
    }
    let n = x.numel();
    let nn = n as u64;
    let src = kernels::source(kernels::TRANSPOSE);
    // Kernels move elements by size; a device pointer's element type does not matter to
    // the launch, so each buffer is passed as it is.
    macro_rules! go {
        ($variant:ident, $t:ty, $bytes:literal, $xs:expr) => {{
            let mut out = dev.stream().alloc_zeros::<$t>(n)?;
            if n > 0 {
                let f = function(dev, &src, concat!("fx_transpose_b", $bytes))?;
                let mut b = dev.stream().launch_builder(&f);
                b.arg($xs).arg(&mut out).arg(&p).arg(&nn);
                // SAFETY: element sizes match the kernel's; offsets computed from the
                // permuted strides stay below numel.
                unsafe { b.launch(grid_for(n)) }?;
            }
            DeviceBuffer::$variant(out)
        }};
    }
    Ok(match buf {
        DeviceBuffer::F32(d) => go!(F32, f32, "4", d),
        DeviceBuffer::F64(d) => go!(F64, f64, "8", d),
        DeviceBuffer::BF16(d) => go!(BF16, u16, "2", d),
        DeviceBuffer::F16(d) => go!(F16, u16, "2", d),
        DeviceBuffer::I32(d) => go!(I32, i32, "4", d),
        DeviceBuffer::I64(d) => go!(I64, i64, "8", d),
        DeviceBuffer::U32(d) => go!(U32, u32, "4", d),
        DeviceBuffer::Bool(d) => go!(Bool, u8, "1", d),
    })
}
