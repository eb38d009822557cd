//! Device plumbing on the CPU: a mock backend (buffers in its own map, programs run by
//! core's CPU executor, every upload/download/compile/run counted per device ordinal) checks
//! placement, transfers, the mixed-device errors and that staged calls on device arrays run
//! as one backend program with no downloads. Each test uses its own ordinal, so the
//! counters of tests running in parallel do not mix.

use ferrax::device::{
    default_device, register_backend, with_default_device, Backend, DeviceBuffer, DeviceExecutable,
};
use ferrax::exec::Executable;
use ferrax::ir::Program;
use ferrax::prelude::*;
use ferrax::{AVal, Storage};
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

const ORDINALS: usize = 8;

#[derive(Default)]
struct Counters {
    uploads: AtomicU64,
    downloads: AtomicU64,
    compiles: AtomicU64,
    runs: AtomicU64,
}

#[derive(Default)]
struct Mem {
    bufs: Mutex<HashMap<u64, Array>>,
    next: AtomicU64,
}

#[derive(Debug)]
struct MockBuf {
    ordinal: u32,
    id: u64,
    mem: Arc<Mem>,
}

impl std::fmt::Debug for Mem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mem")
    }
}

impl Drop for MockBuf {
    fn drop(&mut self) {
        self.mem.bufs.lock().unwrap().remove(&self.id);
    }
}

impl DeviceBuffer for MockBuf {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct Mock {
    mem: Arc<Mem>,
    counters: Vec<Counters>,
}

impl Mock {
    fn store(&self, ordinal: u32, a: Array) -> Arc<dyn DeviceBuffer> {
        let id = self.mem.next.fetch_add(1, Ordering::Relaxed);
        self.mem.bufs.lock().unwrap().insert(id, a);
        Arc::new(MockBuf {
            ordinal,
            id,
            mem: self.mem.clone(),
        })
    }
    fn c(&self, ordinal: u32) -> &Counters {
        &self.counters[ordinal as usize]
    }
}

struct MockExe {
    mock: Arc<Mock>,
    ordinal: u32,
    exe: Executable,
}

impl DeviceExecutable for MockExe {
    fn run(&self, args: &[Arc<dyn DeviceBuffer>]) -> Result<Vec<Arc<dyn DeviceBuffer>>, Error> {
        let mut host = Vec::with_capacity(args.len());
        for b in args {
            let b = b.as_any().downcast_ref::<MockBuf>().expect("a mock buffer");
            assert_eq!(b.ordinal, self.ordinal, "argument on another mock device");
            host.push(self.mock.mem.bufs.lock().unwrap()[&b.id].clone());
        }
        self.mock
            .c(self.ordinal)
            .runs
            .fetch_add(1, Ordering::Relaxed);
        let outs = self.exe.run_owned(host)?;
        Ok(outs
            .into_iter()
            .map(|a| self.mock.store(self.ordinal, a))
            .collect())
    }
}

struct MockBackend(Arc<Mock>);

impl Backend for MockBackend {
    fn name(&self) -> &'static str {
        "mock"
    }
    fn device_count(&self) -> usize {
        ORDINALS
    }
    fn upload(
        &self,
        ordinal: u32,
        aval: &AVal,
        data: &Storage,
    ) -> Result<Arc<dyn DeviceBuffer>, Error> {
        self.0.c(ordinal).uploads.fetch_add(1, Ordering::Relaxed);
        let a = Array::from_storage(aval.shape.clone(), data.clone())?;
        Ok(self.0.store(ordinal, a))
    }
    fn download(&self, buf: &dyn DeviceBuffer) -> Result<Storage, Error> {
        let b = buf
            .as_any()
            .downcast_ref::<MockBuf>()
            .expect("a mock buffer");
        self.0
            .c(b.ordinal)
            .downloads
            .fetch_add(1, Ordering::Relaxed);
        let a = self.0.mem.bufs.lock().unwrap()[&b.id].clone();
        Ok(a.storage("mock download")?.clone())
    }
    fn compile(&self, ordinal: u32, program: &Program) -> Result<Box<dyn DeviceExecutable>, Error> {
        self.0.c(ordinal).compiles.fetch_add(1, Ordering::Relaxed);
        for (_, a) in &program.consts {
            assert!(!a.is_on_device(), "backends are promised host constants");
        }
        Ok(Box::new(MockExe {
            mock: self.0.clone(),
            ordinal,
            exe: Executable::compile(program)?,
        }))
    }
}

fn mock() -> &'static Arc<Mock> {
    static M: OnceLock<Arc<Mock>> = OnceLock::new();
    M.get_or_init(|| {
        let m = Arc::new(Mock {
            mem: Arc::new(Mem::default()),
            counters: (0..ORDINALS).map(|_| Counters::default()).collect(),
        });
        register_backend(Arc::new(MockBackend(m.clone())));
        m
    })
}

/// `(uploads, downloads, compiles, runs)` of mock device `ordinal`.
fn counts(ordinal: u32) -> (u64, u64, u64, u64) {
    let c = mock().c(ordinal);
    (
        c.uploads.load(Ordering::Relaxed),
        c.downloads.load(Ordering::Relaxed),
        c.compiles.load(Ordering::Relaxed),
        c.runs.load(Ordering::Relaxed),
    )
}

fn dev(ordinal: u32) -> Device {
    mock();
    Device::parse(&format!("mock:{ordinal}")).unwrap()
}

fn t4(v: [f32; 4]) -> Tensor<(C<4>,)> {
    Tensor::from_vec(v.to_vec()).unwrap()
}

#[test]
fn to_device_round_trip_and_lazy_download() {
    let d = dev(0);
    assert_eq!(d.to_string(), "mock:0");
    let x = Tensor::<(C<2>, C<3>)>::from_vec(vec![1.5, -2.0, 0.0, 3.25, 1e-8, -7.0]).unwrap();
    assert_eq!(x.device(), Device::Cpu);
    let xd = x.to_device(&d).unwrap();
    assert_eq!(xd.device(), d);
    assert!(xd.array().is_on_device());
    assert_eq!(counts(0), (1, 0, 0, 0), "one upload, nothing else");
    // Same device: no copy.
    let again = xd.to_device(&d).unwrap();
    assert_eq!(counts(0).0, 1);
    // Host reads download once and keep the copy.
    assert_eq!(xd.to_vec().unwrap(), x.to_vec().unwrap());
    assert_eq!(again.to_vec().unwrap(), x.to_vec().unwrap());
    assert_eq!(counts(0).1, 1, "the host copy is shared by clones");
    let back = xd.to_device(&Device::Cpu).unwrap();
    assert_eq!(back.device(), Device::Cpu);
    assert!(back.array().bit_eq(x.array()));
    assert_eq!(counts(0).1, 1);
    assert!(format!("{:?}", xd.array()).contains("mock:0"));
    // An ordinal the backend does not have, and a backend nobody registered.
    let e = x
        .to_device(&dev(ORDINALS as u32 + 3))
        .unwrap_err()
        .to_string();
    assert!(e.contains("mock:11") && e.contains("8 device"), "{e}");
    let e = Device::parse("nope:0").unwrap_err().to_string();
    assert!(e.contains("`nope`") && e.contains("mock"), "{e}");
    assert!(Device::parse("mock:x").is_err());
    assert_eq!(Device::parse("cpu").unwrap(), Device::Cpu);
}

#[jit]
fn pair(a: &Tensor<(C<4>,)>, b: &Tensor<(C<4>,)>) -> Tensor<(C<4>,)> {
    a * b + a
}

#[test]
fn mixed_devices_are_errors_naming_both() {
    let (d1, d2) = (dev(1), dev(2));
    let a = t4([1.0, 2.0, 3.0, 4.0]).to_device(&d1).unwrap();
    let b = t4([0.5, -1.0, 2.0, 0.0]).to_device(&d2).unwrap();
    let e = ferrax::prim::binary::add(a.array(), b.array()).unwrap_err();
    assert_eq!(
        e,
        Error::DeviceMismatch {
            op: "add".into(),
            a: d1,
            b: d2
        }
    );
    let msg = e.to_string();
    assert!(
        msg.starts_with("add:") && msg.contains("mock:1") && msg.contains("mock:2"),
        "{msg}"
    );
    // A staged call checks its arguments the same way (the jit wrapper panics with it).
    let p = std::panic::catch_unwind(|| pair(&a, &b)).unwrap_err();
    let p = p.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        p.contains("jit `pair`") && p.contains("mock:1") && p.contains("mock:2"),
        "{p}"
    );
    // A host operand is uncommitted: it follows the device operand (one upload), and the
    // op runs there as a one-equation program.
    let (u0, _, _, r0) = counts(1);
    let h = t4([10.0, 20.0, 30.0, 40.0]);
    let s = ferrax::prim::binary::add(a.array(), h.array()).unwrap();
    assert_eq!(s.device(), d1);
    assert_eq!(counts(1).0 - u0, 1);
    assert_eq!(counts(1).3 - r0, 1);
    assert_eq!(s.to_vec::<f32>().unwrap(), vec![11.0, 22.0, 33.0, 44.0]);
}

#[jit]
fn step(w: &Tensor<(C<4>,)>, x: &Tensor<(C<4>,)>) -> Tensor<(C<4>,)> {
    ((w * x) + w).tanh() * 0.9 + x.exp() * 0.01
}

fn step_naive(w: &[f32], x: &[f32]) -> Vec<f32> {
    w.iter()
        .zip(x)
        .map(|(&w, &x)| {
            ((w as f64 * x as f64 + w as f64).tanh() * 0.9 + (x as f64).exp() * 0.01) as f32
        })
        .collect()
}

#[test]
fn jit_on_device_runs_once_per_call_without_downloads() {
    let d = dev(3);
    let (w0, x0) = ([0.3f32, -1.2, 2.0, 0.0], [0.5f32, 1.5, -0.25, 2.0]);
    let mut w = t4(w0).to_device(&d).unwrap();
    let x = t4(x0).to_device(&d).unwrap();
    let before = step::stats();
    let mut expect = w0.to_vec();
    for _ in 0..5 {
        w = step(&w, &x);
        assert_eq!(w.device(), d, "results stay on the arguments' device");
        expect = step_naive(&expect, &x0);
    }
    // Two uploads (w, x), one compile, one backend run per call, no download between steps.
    assert_eq!(counts(3), (2, 0, 1, 5));
    assert_eq!(step::stats().compiles - before.compiles, 1);
    let got = w.to_vec().unwrap();
    assert_eq!(counts(3).1, 1, "only the final read downloads");
    for (g, e) in got.iter().zip(&expect) {
        assert!((g - e).abs() <= 1e-5, "device {g} vs naive {e}");
    }
}

#[grad]
fn sq_loss(w: &Tensor<(C<4>,)>, x: &Tensor<(C<4>,)>) -> Tensor<()> {
    ((w * x) - 1.0).square().sum()
}

#[test]
fn grad_on_device_runs_on_the_backend() {
    let d = dev(5);
    let (w0, x0) = ([0.3f32, -1.2, 2.0, 0.0], [0.5f32, 1.5, -0.25, 2.0]);
    let w = t4(w0).to_device(&d).unwrap();
    let x = t4(x0).to_device(&d).unwrap();
    let g = sq_loss::grad(&w, &x);
    assert_eq!(g.device(), d);
    let (_, dl, _, runs) = counts(5);
    assert_eq!((dl, runs), (0, 1), "one program, nothing read back");
    // d/dw sum((w x - 1)^2) = 2 (w x - 1) x
    for ((g, w), x) in g.to_vec().unwrap().iter().zip(w0).zip(x0) {
        let e = 2.0 * (w * x - 1.0) * x;
        assert!((g - e).abs() <= 1e-5, "grad {g} vs closed form {e}");
    }
}

#[jit]
fn scoped(a: &Tensor<(C<4>,)>) -> (Tensor<(C<4>,)>, Tensor<()>) {
    let y = a.sin() * 2.0;
    let s = y.sum();
    (y, s)
}

#[test]
fn default_device_scope_routes_host_calls() {
    let d = dev(4);
    let outer = default_device().unwrap();
    assert_ne!(outer, d);
    let a = t4([0.1, -0.7, 1.3, 2.9]);
    let (cpu_y, cpu_s) = with_default_device(Device::Cpu, || scoped(&a));
    let (y, s) = with_default_device(d, || {
        assert_eq!(default_device().unwrap(), d);
        with_default_device(Device::Cpu, || {
            assert_eq!(default_device().unwrap(), Device::Cpu)
        });
        assert_eq!(
            default_device().unwrap(),
            d,
            "an inner scope restores the outer one"
        );
        scoped(&a)
    });
    assert_eq!(default_device().unwrap(), outer);
    // Host arguments were placed by the default: uploaded, run there, results back home.
    assert_eq!(counts(4), (1, 2, 1, 1));
    assert_eq!(y.device(), Device::Cpu);
    assert_eq!(s.device(), Device::Cpu);
    // Same executor underneath, so the same bits; and both agree with the closed form.
    assert!(y.array().bit_eq(cpu_y.array()));
    assert!(s.array().bit_eq(cpu_s.array()));
    let e: f64 = [0.1f64, -0.7, 1.3, 2.9].iter().map(|v| 2.0 * v.sin()).sum();
    assert!((s.item().unwrap() as f64 - e).abs() <= 1e-5);
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_backend_registers_itself_at_start_up() {
    // No code ran `ferrax::cuda::register()`: the facade's start-up hook did.
    assert!(ferrax::device::registered_backends().contains(&"cuda"));
    let d = Device::parse("cuda:0").unwrap();
    assert_eq!(d, Device::cuda(0));
    // Without a GPU the device is unusable, and says why instead of panicking.
    if ferrax::cuda::probe().is_err() {
        let e = t4([1.0; 4]).to_device(&d).unwrap_err().to_string();
        assert!(e.contains("cuda"), "{e}");
    }
}

#[cfg(feature = "cuda")]
#[test]
fn staged_calls_on_cuda_arrays_stay_on_the_gpu() {
    if let Err(e) = ferrax::cuda::probe() {
        eprintln!("skipping: {e}");
        return;
    }
    let d = Device::cuda(0);
    let (w0, x0) = ([0.3f32, -1.2, 2.0, 0.0], [0.5f32, 1.5, -0.25, 2.0]);
    let mut w = t4(w0).to_device(&d).unwrap();
    let x = t4(x0).to_device(&d).unwrap();
    let mut expect = w0.to_vec();
    for _ in 0..5 {
        w = step(&w, &x);
        assert_eq!(w.device(), d);
        expect = step_naive(&expect, &x0);
    }
    for (g, e) in w.to_vec().unwrap().iter().zip(&expect) {
        assert!((g - e).abs() <= 1e-5, "gpu {g} vs naive {e}");
    }
    // An eager op with a host operand runs on the GPU too.
    let s = ferrax::prim::binary::add(x.array(), t4([1.0; 4]).array()).unwrap();
    assert_eq!(s.device(), d);
    let want: Vec<f32> = x0.iter().map(|v| v + 1.0).collect();
    assert_eq!(s.to_vec::<f32>().unwrap(), want);
}
