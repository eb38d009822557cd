//! Checks of the generated CUDA C that need no GPU. The host C++ compiler builds each
//! generated kernel against `tests/host/cuda_host_stub.h` (CUDA built-ins as host stand-ins)
//! and *runs* it as one thread walking every element; the results must match ferrax's CPU
//! executor. This checks syntax and types, the broadcast index maps, the operand wiring and
//! the bf16/f16 conversions; it cannot check NVRTC-specific behaviour or device math
//! accuracy (the GPU tests do, where a GPU is present). A deliberately broken source must be
//! rejected, so the check is known to be able to fail.

use ferrax_core::ir::Program;
use ferrax_core::prim::binary::{binary, BinaryOp};
use ferrax_core::prim::broadcast_in_dim::broadcast_in_dim;
use ferrax_core::prim::unary::{unary, UnaryOp};
use ferrax_core::trace::trace_fn;
use ferrax_core::{AVal, Array, DType, Storage};
use ferrax_cuda::codegen::{FusedKernel, PRELUDE};
use ferrax_cuda::CudaExecutable;
use std::path::PathBuf;
use std::process::Command;

fn cxx() -> Option<String> {
    let cands = [
        std::env::var("CXX").ok(),
        Some("g++".into()),
        Some("clang++".into()),
    ];
    cands.into_iter().flatten().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn stub_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("host")
}

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ferrax-cuda-host");
    std::fs::create_dir_all(&d).expect("scratch dir");
    d.join(name)
}

/// Compiles `src` (after the stub header); `run` also links and runs it, returning stdout.
fn host_compile(cxx: &str, name: &str, src: &str, run: bool) -> Result<String, String> {
    let file = scratch(&format!("{name}.cpp"));
    std::fs::write(&file, format!("#include \"cuda_host_stub.h\"\n{src}")).expect("write source");
    let exe = scratch(name);
    let mut cmd = Command::new(cxx);
    cmd.arg("-std=c++17")
        .arg("-Wall")
        .arg("-Werror")
        .arg("-Wno-unused-function")
        .arg("-Wno-unused-variable");
    cmd.arg("-I").arg(stub_dir());
    if run {
        cmd.arg("-O1").arg("-o").arg(&exe).arg(&file).arg("-lm");
    } else {
        cmd.arg("-fsyntax-only").arg(&file);
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    if !run {
        return Ok(String::new());
    }
    let out = Command::new(&exe).output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "host run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Element bits as u64 plus the C storage type.
fn bits(s: &Storage) -> (&'static str, Vec<u64>) {
    match s {
        Storage::F32(v) => ("float", v.iter().map(|x| x.to_bits() as u64).collect()),
        Storage::F64(v) => ("double", v.iter().map(|x| x.to_bits()).collect()),
        Storage::BF16(v) => (
            "unsigned short",
            v.iter().map(|x| x.to_bits() as u64).collect(),
        ),
        Storage::F16(v) => (
            "unsigned short",
            v.iter().map(|x| x.to_bits() as u64).collect(),
        ),
        other => panic!("test inputs are floats, got {:?}", other.dtype()),
    }
}

fn from_bits(dt: DType, b: &[u64]) -> Storage {
    match dt {
        DType::F32 => Storage::F32(b.iter().map(|&x| f32::from_bits(x as u32)).collect()),
        DType::F64 => Storage::F64(b.iter().map(|&x| f64::from_bits(x)).collect()),
        DType::BF16 => Storage::BF16(b.iter().map(|&x| half::bf16::from_bits(x as u16)).collect()),
        DType::F16 => Storage::F16(b.iter().map(|&x| half::f16::from_bits(x as u16)).collect()),
        _ => unreachable!(),
    }
}

/// Runs a generated kernel on the host with the given region inputs; returns its outputs.
fn run_kernel(cxx: &str, k: &FusedKernel, ins: &[&Storage]) -> Result<Vec<Storage>, String> {
    let mut main = String::from("#include <stdio.h>\nint main() {\n");
    let mut call = Vec::new();
    let size = |t: &str| match t {
        "double" => 8,
        "float" => 4,
        _ => 2,
    };
    for (j, s) in ins.iter().enumerate() {
        let (ct, b) = bits(s);
        let lits: Vec<String> = b.iter().map(|x| format!("{x}ull")).collect();
        main += &format!(
            "    static const unsigned long long b{j}[] = {{{}}};\n    static {ct} in{j}[{}];\n    \
             for (int i = 0; i < {}; ++i) {{ memcpy(&in{j}[i], &b{j}[i], {}); }}\n",
            lits.join(","),
            b.len().max(1),
            b.len(),
            size(ct)
        );
        call.push(format!("in{j}"));
    }
    let (ct, _) = bits(&from_bits(k.dtype, &[0]));
    for j in 0..k.outputs.len() {
        main += &format!("    static {ct} out{j}[{}];\n", k.numel.max(1));
        call.push(format!("out{j}"));
    }
    call.push(format!("{}ull", k.numel));
    main += &format!("    {}({});\n", k.name, call.join(", "));
    for j in 0..k.outputs.len() {
        main += &format!(
            "    for (int i = 0; i < {}; ++i) {{ unsigned long long b = 0; memcpy(&b, &out{j}[i], {}); \
             printf(\"%llu\\n\", b); }}\n",
            k.numel,
            size(ct)
        );
    }
    main += "    return 0;\n}\n";
    let out = host_compile(cxx, &k.name, &format!("{}\n{main}", k.source), true)?;
    let vals: Vec<u64> = out
        .lines()
        .map(|l| l.trim().parse().expect("bits"))
        .collect();
    Ok(vals
        .chunks(k.numel.max(1))
        .map(|c| from_bits(k.dtype, c))
        .collect())
}

fn as_f64(s: &Storage) -> Vec<f64> {
    match s {
        Storage::F32(v) => v.iter().map(|&x| x as f64).collect(),
        Storage::F64(v) => v.clone(),
        Storage::BF16(v) => v.iter().map(|x| x.to_f64()).collect(),
        Storage::F16(v) => v.iter().map(|x| x.to_f64()).collect(),
        _ => unreachable!(),
    }
}

fn close(a: f64, b: f64, rtol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= rtol * (1e-30 + a.abs().max(b.abs()))
}

fn input(shape: &[usize], dt: DType, seed: u32) -> Array {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| 0.05 + (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f64 / 1111.0)
        .collect();
    let s = match dt {
        DType::F32 => Storage::F32(v.iter().map(|&x| x as f32).collect()),
        DType::F64 => Storage::F64(v),
        DType::BF16 => Storage::BF16(v.iter().map(|&x| half::bf16::from_f64(x)).collect()),
        DType::F16 => Storage::F16(v.iter().map(|&x| half::f16::from_f64(x)).collect()),
        _ => unreachable!(),
    };
    Array::from_storage(shape.to_vec(), s).expect("input")
}

/// Compiles `prog` for CUDA, runs its (single) kernel on the host and compares with the CPU.
fn check_program(cxx: &str, what: &str, prog: &Program, args: &[Array], rtol: f64) {
    let exe = CudaExecutable::compile(prog).unwrap_or_else(|e| panic!("{what}: {e}"));
    let ks = exe.fused_kernels();
    assert_eq!(
        ks.len(),
        1,
        "{what}: expected one fused kernel, got steps {:?}",
        exe.describe()
    );
    assert_eq!(
        ks[0].eqns.len(),
        exe.program().eqns.len(),
        "{what}: not fully fused: {:?}",
        exe.describe()
    );
    let k = ks[0];
    let p = exe.program();
    let ins: Vec<&Storage> = k
        .inputs
        .iter()
        .map(|v| {
            let j = p
                .inputs
                .iter()
                .position(|x| x == v)
                .unwrap_or_else(|| panic!("{what}: kernel input is not an argument"));
            args[j].storage("test").expect("host")
        })
        .collect();
    let got = run_kernel(cxx, k, &ins)
        .unwrap_or_else(|e| panic!("{what}: host compile/run failed:\n{e}\n{}", k.source));
    let want = ferrax_core::exec::Executable::compile(prog)
        .and_then(|e| e.run(args))
        .expect("cpu run");
    for (oi, v) in p.outputs.iter().enumerate() {
        let j = k
            .outputs
            .iter()
            .position(|x| x == v)
            .unwrap_or_else(|| panic!("{what}: output not stored"));
        let (g, w) = (
            as_f64(&got[j]),
            as_f64(want[oi].storage("test").expect("host")),
        );
        assert_eq!(g.len(), w.len(), "{what}");
        for (i, (a, b)) in g.iter().zip(&w).enumerate() {
            assert!(
                close(*a, *b, rtol),
                "{what}: element {i}: generated {a}, cpu {b}\n{}",
                k.source
            );
        }
    }
}

fn tol(dt: DType) -> f64 {
    match dt {
        DType::F64 => 1e-12,
        DType::F32 => 2e-6,
        // One unit in the last place of the 16-bit formats.
        DType::BF16 => 8e-3,
        _ => 1e-3,
    }
}

#[test]
fn every_unary_and_binary_op_runs_on_the_host_like_the_cpu() {
    let Some(cxx) = cxx() else {
        eprintln!("skipping: no host C++ compiler (g++/clang++/$CXX) to check generated CUDA C");
        return;
    };
    for dt in [DType::F32, DType::F64] {
        let aval = AVal::new(vec![37], dt);
        let x = input(&[37], dt, 1);
        let y = input(&[37], dt, 7);
        // One program applying every unary op with a device form to x (so one compile).
        let ops: Vec<UnaryOp> = UnaryOp::ALL
            .iter()
            .copied()
            .filter(|op| op.cuda_expr("x", dt).is_some())
            .collect();
        assert!(ops.len() >= 30, "unary ops with a CUDA form: {}", ops.len());
        let (prog, _) = trace_fn(std::slice::from_ref(&aval), |a| {
            ops.iter().map(|&op| unary(op, &a[0])).collect()
        })
        .expect("trace unary");
        check_program(
            &cxx,
            &format!("unary table {dt}"),
            &prog,
            std::slice::from_ref(&x),
            tol(dt),
        );
        let bops: Vec<BinaryOp> = BinaryOp::ALL
            .iter()
            .copied()
            .filter(|op| op.cuda_expr("a", "b", dt).is_some())
            .collect();
        let (prog, _) = trace_fn(&[aval.clone(), aval.clone()], |a| {
            bops.iter().map(|&op| binary(op, &a[0], &a[1])).collect()
        })
        .expect("trace binary");
        check_program(&cxx, &format!("binary table {dt}"), &prog, &[x, y], tol(dt));
    }
}

#[test]
fn fused_chains_with_broadcasts_match_the_cpu() {
    let Some(cxx) = cxx() else {
        eprintln!("skipping: no host C++ compiler (g++/clang++/$CXX) to check generated CUDA C");
        return;
    };
    for dt in [DType::F32, DType::F64, DType::BF16, DType::F16] {
        // gelu-ish chain: tanh(x * w + b) * x with w a row vector and b a scalar.
        let shapes = [vec![5, 7], vec![7], vec![]];
        let avals: Vec<AVal> = shapes.iter().map(|s| AVal::new(s.clone(), dt)).collect();
        let (prog, _) = trace_fn(&avals, |a| {
            let w = broadcast_in_dim(&a[1], &[5, 7], &[1])?;
            let b = broadcast_in_dim(&a[2], &[5, 7], &[])?;
            let t = binary(BinaryOp::Add, &binary(BinaryOp::Mul, &a[0], &w)?, &b)?;
            let u = unary(UnaryOp::Tanh, &t)?;
            Ok(vec![
                binary(BinaryOp::Mul, &u, &a[0])?,
                unary(UnaryOp::Exp, &t)?,
            ])
        })
        .expect("trace chain");
        let args: Vec<Array> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| input(s, dt, i as u32))
            .collect();
        check_program(&cxx, &format!("chain {dt}"), &prog, &args, tol(dt));

        // A column broadcast and a middle-axis broadcast (general index maps).
        let shapes = [vec![3, 4, 5], vec![3], vec![4]];
        let avals: Vec<AVal> = shapes.iter().map(|s| AVal::new(s.clone(), dt)).collect();
        let (prog, _) = trace_fn(&avals, |a| {
            let c = broadcast_in_dim(&a[1], &[3, 4, 5], &[0])?;
            let m = broadcast_in_dim(&a[2], &[3, 4, 5], &[1])?;
            let s = binary(BinaryOp::Sub, &a[0], &c)?;
            Ok(vec![binary(
                BinaryOp::Max,
                &unary(UnaryOp::Logistic, &s)?,
                &m,
            )?])
        })
        .expect("trace bcast");
        let args: Vec<Array> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| input(s, dt, 11 + i as u32))
            .collect();
        check_program(&cxx, &format!("broadcasts {dt}"), &prog, &args, tol(dt));
    }
}

#[test]
fn half_conversions_in_the_prelude_match_the_half_crate() {
    let Some(cxx) = cxx() else {
        eprintln!("skipping: no host C++ compiler (g++/clang++/$CXX) to check the prelude");
        return;
    };
    // Every f16 and bf16 bit pattern widens exactly; a spread of f32 patterns (including
    // ties, subnormals, overflow, NaN and infinities) narrows with round-to-nearest-even.
    let mut f32s: Vec<u32> = (0..200_000u32)
        .map(|i| i.wrapping_mul(2_654_435_761) ^ (i << 7))
        .collect();
    f32s.extend([
        0,
        0x8000_0000,
        0x7f80_0000,
        0xff80_0000,
        0x7fc0_0000,
        0x7f80_0001,
        0x477f_f000,
        0x477f_efff,
    ]);
    f32s.extend([
        0x3380_0000,
        0x3300_0000,
        0x3300_0001,
        0x3880_0000,
        0x387f_ffff,
        0x3f80_8000,
        0x3f81_8000,
    ]);
    let lits: Vec<String> = f32s.iter().map(|x| format!("{x}u")).collect();
    let src = format!(
        "{PRELUDE}\n#include <stdio.h>\nstatic const unsigned xs[] = {{{}}};\nint main() {{\n\
         for (unsigned h = 0; h < 65536; ++h) printf(\"%u %u\\n\", __float_as_uint(fx_f16_to_f32((unsigned short)h)), \
         __float_as_uint(fx_bf16_to_f32((unsigned short)h)));\n\
         for (unsigned i = 0; i < sizeof(xs) / 4; ++i) {{ float f = __uint_as_float(xs[i]); \
         printf(\"%u %u\\n\", (unsigned)fx_f32_to_f16(f), (unsigned)fx_f32_to_bf16(f)); }}\nreturn 0;\n}}\n",
        lits.join(",")
    );
    let out = host_compile(&cxx, "half_conv", &src, true).unwrap_or_else(|e| panic!("{e}"));
    let rows: Vec<(u32, u32)> = out
        .lines()
        .map(|l| {
            let mut it = l.split(' ').map(|t| t.parse::<u32>().expect("u32"));
            (it.next().expect("a"), it.next().expect("b"))
        })
        .collect();
    assert_eq!(rows.len(), 65536 + f32s.len());
    for h in 0..65536u32 {
        let (f, b) = rows[h as usize];
        let want_f = half::f16::from_bits(h as u16).to_f32();
        let want_b = half::bf16::from_bits(h as u16).to_f32();
        assert!(
            f == want_f.to_bits() || (want_f.is_nan() && f32::from_bits(f).is_nan()),
            "f16 {h:#06x}: {f:#x} vs {want_f}"
        );
        // NaN payloads are not semantic: the half crate quiets a signalling NaN while the
        // prelude's shift keeps its bits; both are NaN.
        assert!(
            b == want_b.to_bits() || (want_b.is_nan() && f32::from_bits(b).is_nan()),
            "bf16 {h:#06x}"
        );
    }
    for (i, &x) in f32s.iter().enumerate() {
        let (f, b) = rows[65536 + i];
        let v = f32::from_bits(x);
        let want_f = half::f16::from_f32(v);
        let want_b = half::bf16::from_f32(v);
        if v.is_nan() {
            assert!(
                half::f16::from_bits(f as u16).is_nan() && half::bf16::from_bits(b as u16).is_nan(),
                "NaN {x:#x}"
            );
        } else {
            assert_eq!(f as u16, want_f.to_bits(), "f32 {x:#010x} ({v:e}) -> f16");
            assert_eq!(b as u16, want_b.to_bits(), "f32 {x:#010x} ({v:e}) -> bf16");
        }
    }
}

#[test]
fn embedded_kernels_pass_a_host_syntax_check() {
    let Some(cxx) = cxx() else {
        eprintln!("skipping: no host C++ compiler (g++/clang++/$CXX) to check the .cu kernels");
        return;
    };
    for (name, src) in ferrax_cuda::kernels::ALL {
        host_compile(
            &cxx,
            &format!("syntax_{}", name.replace('.', "_")),
            &ferrax_cuda::kernels::source(src),
            false,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn the_host_check_rejects_broken_source() {
    let Some(cxx) = cxx() else {
        eprintln!("skipping: no host C++ compiler (g++/clang++/$CXX)");
        return;
    };
    // An undefined helper and a type error: both must fail the check that the tests above
    // rely on, or those tests would prove nothing.
    for (i, bad) in [
        "extern \"C\" __global__ void k(float* o) { o[0] = fx_undefined(1.0f); }",
        "extern \"C\" __global__ void k(float* o) { o = 1.0f; }",
    ]
    .iter()
    .enumerate()
    {
        let r = host_compile(
            &cxx,
            &format!("broken{i}"),
            &format!("{PRELUDE}\n{bad}"),
            false,
        );
        assert!(r.is_err(), "broken source {i} was accepted");
    }
}
