//! CUDA C generation for fused elementwise regions. A program is cut into kernel steps
//! (chains of elementwise equations and broadcasts of one shape and float dtype) and single
//! steps (everything else). A kernel step becomes one grid-stride CUDA kernel: broadcast
//! operands are read through an index map, intermediates live in registers, and only the
//! values used after the region are stored. Each primitive supplies its scalar expression
//! through [`Elementwise::cuda_expr`](ferrax_core::prim::Elementwise::cuda_expr); this module
//! never names a primitive.
//!
//! The partition is this crate's own (core's CPU partition is private and tuned for chunked
//! host loops), but follows the same rule: one open region at a time, flushed before any
//! step that reads one of its values.

use ferrax_core::ir::{Program, Var};
use ferrax_core::DType;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// The device prelude (`fx_*` helpers, bf16/f16 conversions) every generated source starts with.
pub const PRELUDE: &str = include_str!("../kernels/prelude.cuh");

/// One step of a program on the device.
#[derive(Debug, Clone)]
pub enum Step {
    /// A generated kernel for a fused elementwise region.
    Kernel(FusedKernel),
    /// Equation `i` of the program, run by its own device kernel or the host fallback.
    Single(usize),
}

/// A fused elementwise region with its generated CUDA C.
#[derive(Debug, Clone)]
pub struct FusedKernel {
    /// The kernel's entry point (`fx_fused_<hash>`), unique per body.
    pub name: String,
    /// Complete CUDA C source: the prelude plus the kernel.
    pub source: String,
    /// Element type of every operand and result.
    pub dtype: DType,
    /// Elements of the region's shape (one thread-iteration each).
    pub numel: usize,
    /// Region inputs, in kernel parameter order (before the outputs).
    pub inputs: Vec<Var>,
    /// Region results stored to memory, in kernel parameter order (after the inputs).
    pub outputs: Vec<Var>,
    /// The equations fused, in program order.
    pub eqns: Vec<usize>,
}

/// Storage and compute C types of a dtype the generator handles (f32, f64, bf16, f16).
fn c_types(dt: DType) -> Option<(&'static str, &'static str)> {
    match dt {
        DType::F32 => Some(("float", "float")),
        DType::F64 => Some(("double", "double")),
        DType::BF16 | DType::F16 => Some(("unsigned short", "float")),
        _ => None,
    }
}

/// The dtype whose CUDA math an op is written in: f64 stays f64, the rest compute in f32.
fn compute_dtype(dt: DType) -> DType {
    if dt == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

fn load(dt: DType, e: &str) -> String {
    match dt {
        DType::BF16 => format!("fx_bf16_to_f32({e})"),
        DType::F16 => format!("fx_f16_to_f32({e})"),
        _ => e.to_string(),
    }
}

fn store(dt: DType, e: &str) -> String {
    match dt {
        DType::BF16 => format!("fx_f32_to_bf16({e})"),
        DType::F16 => format!("fx_f32_to_f16({e})"),
        _ => e.to_string(),
    }
}

/// Rounds a computed value to the storage precision once per primitive, as the host does.
fn round(dt: DType, e: &str) -> String {
    match dt {
        DType::BF16 => format!("fx_round_bf16({e})"),
        DType::F16 => format!("fx_round_f16({e})"),
        _ => e.to_string(),
    }
}

/// The expression for equation `i` given operand expressions, if it has a device form.
fn eqn_expr(p: &Program, i: usize, args: &[String]) -> Option<String> {
    let e = &p.eqns[i];
    let k = e.prim.elementwise()?;
    let dt = p.aval(*e.outs.first()?).dtype;
    k.cuda_expr(args, compute_dtype(dt))
}

/// Whether equation `i` can be a member of a generated kernel as an elementwise op.
fn is_elementwise(p: &Program, i: usize) -> bool {
    let e = &p.eqns[i];
    let [out] = e.outs.as_slice() else {
        return false;
    };
    let oa = p.aval(*out);
    let Some(k) = e.prim.elementwise() else {
        return false;
    };
    c_types(oa.dtype).is_some()
        && k.arity() == e.ins.len()
        && e.ins.iter().all(|v| p.aval(*v) == oa)
        && {
            let dummy: Vec<String> = (0..e.ins.len()).map(|j| format!("a{j}")).collect();
            eqn_expr(p, i, &dummy).is_some()
        }
}

/// Whether equation `i` only replicates its operand (a broadcast) of a supported dtype.
fn is_broadcast(p: &Program, i: usize) -> bool {
    let e = &p.eqns[i];
    e.prim.broadcast_pattern().is_some()
        && e.ins.len() == 1
        && e.outs.len() == 1
        && c_types(p.aval(e.outs[0]).dtype).is_some()
        && p.aval(e.ins[0]).dtype == p.aval(e.outs[0]).dtype
}

/// Cuts a program into kernel steps and single steps (in a valid execution order).
pub fn partition(p: &Program) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut open_key: Option<(Vec<usize>, DType)> = None;
    let mut open_defs: HashSet<Var> = HashSet::new();
    let flush = |open: &mut Vec<usize>, defs: &mut HashSet<Var>, steps: &mut Vec<Step>| {
        if !open.is_empty() {
            steps.push(Step::Kernel(generate(p, &std::mem::take(open))));
        }
        defs.clear();
    };
    for (i, e) in p.eqns.iter().enumerate() {
        let uses_open = e.ins.iter().any(|v| open_defs.contains(v));
        // A broadcast reads its operand through an index map, so the operand must exist in
        // memory: it cannot be a value computed inside the open region.
        let fusible = is_elementwise(p, i) || (is_broadcast(p, i) && !uses_open);
        if fusible {
            let out = p.aval(e.outs[0]);
            let key = (out.shape.clone(), out.dtype);
            if open_key.as_ref() != Some(&key) {
                flush(&mut open, &mut open_defs, &mut steps);
                open_key = Some(key);
            }
            open.push(i);
            open_defs.extend(e.outs.iter().copied());
        } else {
            if uses_open {
                flush(&mut open, &mut open_defs, &mut steps);
                open_key = None;
            }
            steps.push(Step::Single(i));
        }
    }
    flush(&mut open, &mut open_defs, &mut steps);
    steps
}

/// The C expression for the flat index into a broadcast operand, given the flat output
/// index `i`. Axes the operand does not vary along (size 1, or absent) contribute nothing.
pub fn broadcast_index(in_shape: &[usize], out_shape: &[usize], dims: &[usize]) -> String {
    let in_n: usize = in_shape.iter().product();
    if in_n <= 1 {
        return "0".to_string();
    }
    let mut in_stride_of_out = vec![0usize; out_shape.len()];
    let st = ferrax_core::prim::strides(in_shape);
    for (a, &d) in dims.iter().enumerate() {
        if in_shape[a] != 1 {
            in_stride_of_out[d] = st[a];
        }
    }
    let out_st = ferrax_core::prim::strides(out_shape);
    let mut terms = Vec::new();
    for d in 0..out_shape.len() {
        let s = in_stride_of_out[d];
        if s == 0 {
            continue;
        }
        // (i / out_stride) % size, the coordinate along output axis d.
        let mut coord = if out_st[d] == 1 {
            "i".to_string()
        } else {
            format!("(i / {}ull)", out_st[d])
        };
        if d > 0 {
            coord = format!("({coord} % {}ull)", out_shape[d]);
        }
        terms.push(if s == 1 {
            coord
        } else {
            format!("{coord} * {s}ull")
        });
    }
    terms.join(" + ")
}

/// FNV-1a, 64 bits: a stable hash for kernel names and cache keys (std's hasher may change
/// between Rust releases, which would orphan the disk cache).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Generates the kernel for a region (equations of one output shape and dtype).
pub fn generate(p: &Program, eqns: &[usize]) -> FusedKernel {
    let first_out = p.eqns[eqns[0]].outs[0];
    let out_aval = p.aval(first_out).clone();
    let dt = out_aval.dtype;
    let (st, ct) = c_types(dt).unwrap_or(("float", "float"));
    let mut inputs: Vec<Var> = Vec::new();
    let mut input_of: HashMap<Var, usize> = HashMap::new();
    let mut defined: HashSet<Var> = HashSet::new();
    let mut body = String::new();
    let mut input_idx = |v: Var, inputs: &mut Vec<Var>| -> usize {
        *input_of.entry(v).or_insert_with(|| {
            inputs.push(v);
            inputs.len() - 1
        })
    };
    for &i in eqns {
        let e = &p.eqns[i];
        let out = e.outs[0];
        let expr = if let Some((shape, dims)) = e.prim.broadcast_pattern() {
            let k = input_idx(e.ins[0], &mut inputs);
            let idx = broadcast_index(&p.aval(e.ins[0]).shape, shape, dims);
            load(dt, &format!("in{k}[{idx}]"))
        } else {
            let args: Vec<String> = e
                .ins
                .iter()
                .map(|v| {
                    if defined.contains(v) {
                        format!("v{}", v.0)
                    } else {
                        let k = input_idx(*v, &mut inputs);
                        load(dt, &format!("in{k}[i]"))
                    }
                })
                .collect();
            let x = eqn_expr(p, i, &args).unwrap_or_else(|| "0".to_string());
            round(dt, &x)
        };
        defined.insert(out);
        let _ = writeln!(body, "        const {ct} v{} = {expr};", out.0);
    }
    // Results read after the region (by a later step or as program outputs) are stored.
    let in_region: HashSet<usize> = eqns.iter().copied().collect();
    let mut used_outside: HashSet<Var> = p.outputs.iter().copied().collect();
    for (i, e) in p.eqns.iter().enumerate() {
        if !in_region.contains(&i) {
            used_outside.extend(e.ins.iter().copied());
        }
    }
    let outputs: Vec<Var> = eqns
        .iter()
        .map(|&i| p.eqns[i].outs[0])
        .filter(|v| used_outside.contains(v))
        .collect();
    for (k, v) in outputs.iter().enumerate() {
        let _ = writeln!(
            body,
            "        out{k}[i] = {};",
            store(dt, &format!("v{}", v.0))
        );
    }
    let mut params: Vec<String> = (0..inputs.len())
        .map(|k| format!("const {st}* __restrict__ in{k}"))
        .collect();
    params.extend((0..outputs.len()).map(|k| format!("{st}* __restrict__ out{k}")));
    params.push("fx_u64 n".to_string());
    let kernel_body = format!(
        "(\n    {}) {{\n    for (fx_u64 i = (fx_u64)blockIdx.x * blockDim.x + threadIdx.x; i < n;\n         \
         i += (fx_u64)blockDim.x * gridDim.x) {{\n{body}    }}\n}}\n",
        params.join(",\n    ")
    );
    let name = format!("fx_fused_{:016x}", fnv1a(kernel_body.as_bytes()));
    let source = format!("{PRELUDE}\nextern \"C\" __global__ void {name}{kernel_body}");
    FusedKernel {
        name,
        source,
        dtype: dt,
        numel: out_aval.numel(),
        inputs,
        outputs,
        eqns: eqns.to_vec(),
    }
}
