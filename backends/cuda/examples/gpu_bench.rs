//! GPU benchmarks for scripts/gpu-check.sh: B1 (f32 square matmul through CudaExecutable,
//! cuBLAS) and B2 (an elementwise chain fused into one generated kernel), device-resident
//! arguments, timed after a warm-up with a stream sync. B3 and B10 (whole train steps) are
//! not wired to the GPU executor yet and are reported as such. Prints one row per case.

use ferrax_core::prim::binary::{binary, BinaryOp};
use ferrax_core::prim::unary::{unary, UnaryOp};
use ferrax_core::trace::trace_fn;
use ferrax_core::{AVal, DType, Storage};
use ferrax_cuda::{CudaDevice, CudaExecutable, DeviceArray};
use std::time::Instant;

fn time(
    dev: &CudaDevice,
    exe: &CudaExecutable,
    avals: &[AVal],
    iters: usize,
) -> Result<f64, ferrax_cuda::Error> {
    let mk = || -> Result<Vec<DeviceArray>, ferrax_cuda::Error> {
        avals
            .iter()
            .map(|a| {
                Ok(DeviceArray {
                    aval: a.clone(),
                    buf: dev.upload(&Storage::F32(vec![0.5; a.numel()]))?,
                })
            })
            .collect()
    };
    let _ = exe.run_device(dev, mk()?)?; // warm-up: compiles and caches kernels
    dev.synchronize()?;
    let mut total = 0.0;
    for _ in 0..iters {
        let args = mk()?;
        dev.synchronize()?;
        let t0 = Instant::now();
        let _ = exe.run_device(dev, args)?;
        dev.synchronize()?;
        total += t0.elapsed().as_secs_f64();
    }
    Ok(total / iters as f64)
}

fn main() {
    let dev = match CudaDevice::get(0) {
        Ok(d) => d,
        Err(e) => {
            println!("skipping GPU benchmarks: {e}");
            return;
        }
    };
    println!("device: {}", dev.name().unwrap_or_else(|e| e.to_string()));
    println!("{:<6} {:<34} {:>14}", "bench", "case", "result");
    for n in [256usize, 1024, 2048] {
        let a = AVal::new(vec![n, n], DType::F32);
        let prog = trace_fn(&[a.clone(), a.clone()], |x| {
            Ok(vec![ferrax_core::prim::dot_general::dot_general(
                &x[0],
                &x[1],
                &[1],
                &[0],
                &[],
                &[],
            )?])
        })
        .map(|(p, _)| p);
        let r = prog
            .map_err(ferrax_cuda::Error::from)
            .and_then(|p| CudaExecutable::compile(&p))
            .and_then(|e| time(&dev, &e, &[a.clone(), a], 20));
        match r {
            Ok(s) => println!(
                "{:<6} {:<34} {:>9.1} GFLOP/s",
                "B1",
                format!("matmul f32 n={n}"),
                2.0 * (n as f64).powi(3) / s / 1e9
            ),
            Err(e) => println!("{:<6} {:<34} error: {e}", "B1", format!("matmul f32 n={n}")),
        }
    }
    for n in [1usize << 20, 1 << 24] {
        let a = AVal::new(vec![n], DType::F32);
        let prog = trace_fn(&[a.clone(), a.clone()], |x| {
            let t = binary(BinaryOp::Mul, &x[0], &x[1])?;
            let t = unary(UnaryOp::Tanh, &binary(BinaryOp::Add, &t, &x[0])?)?;
            Ok(vec![binary(
                BinaryOp::Mul,
                &unary(UnaryOp::Exp, &t)?,
                &x[1],
            )?])
        })
        .map(|(p, _)| p);
        let r = prog
            .map_err(ferrax_cuda::Error::from)
            .and_then(|p| CudaExecutable::compile(&p))
            .and_then(|e| time(&dev, &e, &[a.clone(), a], 50));
        match r {
            // Two f32 inputs read and one written: 12 bytes per element of traffic.
            Ok(s) => println!(
                "{:<6} {:<34} {:>11.1} GB/s",
                "B2",
                format!("fused chain n=2^{}", n.trailing_zeros()),
                12.0 * n as f64 / s / 1e9
            ),
            Err(e) => println!(
                "{:<6} {:<34} error: {e}",
                "B2",
                format!("fused chain n={n}")
            ),
        }
    }
    println!("{:<6} {:<34} {:>14}", "B3", "MLP train step", "not wired");
    println!(
        "{:<6} {:<34} {:>14}",
        "B10", "GPT block train step", "not wired"
    );
}
