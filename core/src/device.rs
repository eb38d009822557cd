//! Devices: where an array's buffer lives, the run-time registry of device backends (a
//! device crate such as `ferrax-cuda` registers one), the default device, and the routing of
//! eager ops and compiled programs whose operands live on a registered device.
//!
//! Placement follows JAX: a host array is *uncommitted* (it moves to the device of the other
//! operands when it meets one, by an upload), an array moved with [`Array::to_device`] is
//! *committed* to its device, and two committed arrays on different devices in one op or one
//! staged call are an [`Error::DeviceMismatch`] naming the op and both devices. A staged call
//! whose arguments all live on the host runs on the default device ([`default_device`]);
//! when that is a registered device the arguments are uploaded, the whole program runs there,
//! and the results come back to the host (they were not committed anywhere). Arguments
//! committed to a device keep everything there: results stay on it, nothing is downloaded
//! until a host read (`to_vec`, `item`, printing).

use crate::array::{AVal, Array, Repr};
use crate::error::{Error, Result};
use crate::exec::Executable;
use crate::ir::Program;
use crate::prim::Primitive;
use crate::storage::Storage;
use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

/// Where a buffer lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// Host memory; every array starts here.
    #[default]
    Cpu,
    /// Device `ordinal` of a registered [`Backend`] named `backend` (`cuda:0`).
    Ext {
        /// The backend's [`Backend::name`].
        backend: &'static str,
        /// Which of its devices.
        ordinal: u32,
    },
}

impl Device {
    /// CUDA device `ordinal` (needs the `ferrax-cuda` backend registered to be used).
    pub const fn cuda(ordinal: u32) -> Device {
        Device::Ext {
            backend: "cuda",
            ordinal,
        }
    }
    /// Whether this is the host.
    pub fn is_cpu(&self) -> bool {
        matches!(self, Device::Cpu)
    }
    /// Parses `cpu`, `NAME` or `NAME:N` for a registered backend `NAME` (`gpu` means
    /// `cuda`); the error lists the registered backends.
    pub fn parse(s: &str) -> Result<Device> {
        match split_device(s)? {
            None => Ok(Device::Cpu),
            Some((name, ordinal)) => {
                let b = backend(&name)?;
                Ok(Device::Ext {
                    backend: b.name(),
                    ordinal,
                })
            }
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Ext { backend, ordinal } => write!(f, "{backend}:{ordinal}"),
        }
    }
}

/// `cpu` -> `None`; `name[:n]` -> `(name, n)`.
fn split_device(s: &str) -> Result<Option<(String, u32)>> {
    let t = s.trim().to_ascii_lowercase();
    if t.is_empty() || t == "cpu" || t == "host" {
        return Ok(None);
    }
    let (name, ord) = match t.split_once(':') {
        Some((n, o)) => {
            let o = o.parse::<u32>().map_err(|_| {
                Error::Device(format!(
                    "device {s:?}: the ordinal after ':' must be a non-negative integer"
                ))
            })?;
            (n.to_string(), o)
        }
        None => (t.clone(), 0),
    };
    let name = if name == "gpu" { "cuda".into() } else { name };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::Device(format!(
            "device {s:?}: expected `cpu`, `NAME` or `NAME:N`"
        )));
    }
    Ok(Some((name, ord)))
}

/// A buffer in a device's memory, owned by its backend. Core never looks inside: it hands
/// the buffer back to the backend that made it (downcast with [`DeviceBuffer::as_any`]).
pub trait DeviceBuffer: Send + Sync + fmt::Debug {
    /// For the backend to recover its concrete type.
    fn as_any(&self) -> &dyn Any;
}

/// A program compiled by a [`Backend`] for one of its devices.
pub trait DeviceExecutable: Send + Sync {
    /// Runs on one buffer per program input (in order; all on this executable's device);
    /// returns one buffer per program output. Must not read anything back to the host
    /// between its kernels.
    fn run(&self, args: &[Arc<dyn DeviceBuffer>]) -> Result<Vec<Arc<dyn DeviceBuffer>>>;
}

/// A device backend, registered at run time with [`register_backend`]. Non-generic on
/// purpose: core routes to it through `dyn`, and only off the host path.
pub trait Backend: Send + Sync {
    /// The name in device strings (`cuda` in `cuda:0`).
    fn name(&self) -> &'static str;
    /// How many devices it can reach now.
    fn device_count(&self) -> usize;
    /// Checks that device `ordinal` is usable, saying why not (default: against
    /// [`Backend::device_count`]; a backend that can tell more, such as a missing driver,
    /// should).
    fn check(&self, ordinal: u32) -> Result<()> {
        let n = self.device_count();
        if ordinal as usize >= n {
            return Err(Error::Device(format!(
                "device {}:{ordinal}: backend `{}` reaches {n} device(s)",
                self.name(),
                self.name()
            )));
        }
        Ok(())
    }
    /// Copies a host buffer of abstract value `aval` to device `ordinal`.
    fn upload(&self, ordinal: u32, aval: &AVal, data: &Storage) -> Result<Arc<dyn DeviceBuffer>>;
    /// Copies a buffer it made back to the host.
    fn download(&self, buf: &dyn DeviceBuffer) -> Result<Storage>;
    /// Compiles a program for device `ordinal`. Constants of `program` are host arrays.
    fn compile(&self, ordinal: u32, program: &Program) -> Result<Box<dyn DeviceExecutable>>;
}

static REGISTRY: RwLock<Vec<Arc<dyn Backend>>> = RwLock::new(Vec::new());

/// Registers a device backend (replacing one of the same name), so `NAME:N` devices resolve.
pub fn register_backend(b: Arc<dyn Backend>) {
    let mut r = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    r.retain(|x| x.name() != b.name());
    r.push(b);
}

/// Names of the registered backends.
pub fn registered_backends() -> Vec<&'static str> {
    let r = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    r.iter().map(|b| b.name()).collect()
}

/// The registered backend `name`.
pub fn backend(name: &str) -> Result<Arc<dyn Backend>> {
    let r = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    r.iter().find(|b| b.name() == name).cloned().ok_or_else(|| {
        let known: Vec<_> = r.iter().map(|b| b.name()).collect();
        Error::Device(format!(
            "no device backend `{name}` is registered (registered: {}); for `cuda` build \
             with the `cuda` feature of ferrax or call `ferrax_cuda::register()`",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ))
    })
}

/// The backend serving `d`, with `d`'s ordinal checked against its device count.
pub(crate) fn backend_of(d: Device) -> Result<(Arc<dyn Backend>, u32)> {
    match d {
        Device::Cpu => Err(Error::Device(
            "the host has no device backend (internal routing error)".into(),
        )),
        Device::Ext {
            backend: name,
            ordinal,
        } => {
            let b = backend(name)?;
            b.check(ordinal)?;
            Ok((b, ordinal))
        }
    }
}

thread_local! {
    static DEFAULT: Cell<Option<Device>> = const { Cell::new(None) };
}

/// `FERRAX_DEVICE`, split once (the backend name is resolved at use, so a backend may be
/// registered after the first read).
fn env_device() -> &'static std::result::Result<Option<(String, u32)>, String> {
    static ENV: OnceLock<std::result::Result<Option<(String, u32)>, String>> = OnceLock::new();
    ENV.get_or_init(|| match std::env::var("FERRAX_DEVICE") {
        Ok(s) => split_device(&s).map_err(|e| format!("FERRAX_DEVICE: {e}")),
        Err(_) => Ok(None),
    })
}

/// The device staged calls on host arguments run on: the innermost [`with_default_device`]
/// scope, else `FERRAX_DEVICE` (`cpu`, `cuda:0`, ...), else the host.
pub fn default_device() -> Result<Device> {
    if let Some(d) = DEFAULT.with(|d| d.get()) {
        return Ok(d);
    }
    match env_device() {
        Ok(None) => Ok(Device::Cpu),
        Ok(Some((name, ordinal))) => {
            let b = backend(name)
                .map_err(|e| Error::Device(format!("FERRAX_DEVICE={name}:{ordinal}: {e}")))?;
            Ok(Device::Ext {
                backend: b.name(),
                ordinal: *ordinal,
            })
        }
        Err(e) => Err(Error::Device(e.clone())),
    }
}

/// Runs `f` with `d` as this thread's default device.
pub fn with_default_device<R>(d: Device, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Device>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEFAULT.with(|d| d.set(self.0));
        }
    }
    let _r = Restore(DEFAULT.with(|c| c.replace(Some(d))));
    f()
}

/// The payload of an array on a registered device: its buffer, the backend that owns it,
/// and the host copy once something read it (arrays are immutable, so it never goes stale).
pub(crate) struct DeviceValue {
    pub(crate) device: Device,
    backend: Arc<dyn Backend>,
    pub(crate) buf: Arc<dyn DeviceBuffer>,
    host: OnceLock<Arc<Storage>>,
}

impl DeviceValue {
    /// The host copy (downloaded on first use).
    pub(crate) fn host(&self, what: &str, aval: &AVal) -> Result<&Arc<Storage>> {
        if let Some(s) = self.host.get() {
            return Ok(s);
        }
        let s = self.backend.download(&*self.buf).map_err(|e| {
            Error::Device(format!(
                "{what}: download of {aval} from {}: {e}",
                self.device
            ))
        })?;
        if s.dtype() != aval.dtype || s.len() != aval.numel() {
            return Err(Error::Device(format!(
                "{what}: backend `{}` downloaded {} {} elements for {aval}",
                self.backend.name(),
                s.len(),
                s.dtype()
            )));
        }
        let _ = self.host.set(Arc::new(s));
        Ok(self.host.get().expect("just set"))
    }
}

// Arrays were unwind-safe before devices existed and tests rely on it: a device value is
// immutable once built (its host copy is written at most once, whole), so a panic cannot
// leave it half-updated, whatever the backend's buffer type holds.
impl std::panic::RefUnwindSafe for DeviceValue {}
impl std::panic::UnwindSafe for DeviceValue {}

impl fmt::Debug for DeviceValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceValue({}, {:?})", self.device, self.buf)
    }
}

fn device_array(
    aval: AVal,
    device: Device,
    backend: Arc<dyn Backend>,
    buf: Arc<dyn DeviceBuffer>,
) -> Array {
    Array {
        aval,
        repr: Repr::Device(Arc::new(DeviceValue {
            device,
            backend,
            buf,
            host: OnceLock::new(),
        })),
    }
}

/// Moves (copies) `a` to device `to`. Host -> device uploads, device -> host downloads,
/// device -> other device goes through the host.
pub(crate) fn to_device(a: &Array, to: Device) -> Result<Array> {
    if let Repr::Tracer(_) = a.repr {
        return Err(Error::invalid(
            "to_device",
            format!(
                "cannot move a traced value {} to {to}: inside a staged function placement \
                 follows the arguments; move the arguments before the call",
                a.aval
            ),
        ));
    }
    if a.device() == to {
        return Ok(a.clone());
    }
    let host = a.storage("to_device")?;
    match to {
        Device::Cpu => Ok(Array {
            aval: a.aval.clone(),
            repr: Repr::Host(match &a.repr {
                Repr::Device(d) => d.host("to_device", &a.aval)?.clone(),
                _ => Arc::new(host.clone()),
            }),
        }),
        Device::Ext { .. } => {
            let (b, ordinal) = backend_of(to)?;
            let buf = b.upload(ordinal, &a.aval, host)?;
            Ok(device_array(a.aval.clone(), to, b, buf))
        }
    }
}

/// The error for two committed devices meeting in `op`.
pub(crate) fn mismatch(op: impl Into<String>, a: Device, b: Device) -> Error {
    Error::DeviceMismatch {
        op: op.into(),
        a,
        b,
    }
}

/// The one external device among `arrays` (host arrays follow it), or `Cpu` if none;
/// an error naming `op` and both devices if two differ.
pub(crate) fn committed_device<'a>(
    op: &dyn Fn() -> String,
    arrays: impl IntoIterator<Item = &'a Array>,
) -> Result<Device> {
    let mut dev = Device::Cpu;
    for a in arrays {
        if let Repr::Device(d) = &a.repr {
            if dev.is_cpu() {
                dev = d.device;
            } else if dev != d.device {
                return Err(mismatch(op(), dev, d.device));
            }
        }
    }
    Ok(dev)
}

/// Where a staged call runs: the committed device of its leaves, else the default device.
/// On host leaves this is a discriminant test per leaf plus a thread-local read.
pub(crate) fn placement(name: &str, leaves: &[Array]) -> Result<Device> {
    let d = committed_device(&|| format!("jit `{name}`"), leaves)?;
    if d.is_cpu() {
        default_device()
    } else {
        Ok(d)
    }
}

/// A compiled staged program and where it runs.
pub(crate) enum Compiled {
    /// The CPU executor.
    Cpu(Executable),
    /// A backend's executable for one device.
    Ext(ExtExecutable),
}

pub(crate) struct ExtExecutable {
    device: Device,
    backend: Arc<dyn Backend>,
    ordinal: u32,
    exe: Box<dyn DeviceExecutable>,
    in_avals: Vec<AVal>,
    out_avals: Vec<AVal>,
}

/// `p` with every device constant replaced by its host copy (backends get host constants).
fn host_consts(p: &Program) -> Result<Program> {
    let mut p = p.clone();
    for (_, a) in &mut p.consts {
        if let Repr::Device(_) = a.repr {
            *a = to_device(a, Device::Cpu)?;
        }
    }
    Ok(p)
}

impl Compiled {
    /// Compiles `prog` for `device`.
    pub(crate) fn compile(prog: &Program, device: Device) -> Result<Compiled> {
        match device {
            Device::Cpu => Ok(Compiled::Cpu(Executable::compile(prog)?)),
            Device::Ext { .. } => {
                let (backend, ordinal) = backend_of(device)?;
                let prog = host_consts(prog)?;
                let exe = backend.compile(ordinal, &prog)?;
                Ok(Compiled::Ext(ExtExecutable {
                    device,
                    backend,
                    ordinal,
                    exe,
                    in_avals: prog.inputs.iter().map(|v| prog.aval(*v).clone()).collect(),
                    out_avals: prog.outputs.iter().map(|v| prog.aval(*v).clone()).collect(),
                }))
            }
        }
    }

    /// Runs on the call's leaves (taking them, so the CPU executor can donate buffers).
    pub(crate) fn run_owned(&self, leaves: Vec<Array>) -> Result<Vec<Array>> {
        match self {
            Compiled::Cpu(exe) => exe.run_owned(leaves),
            Compiled::Ext(x) => x.run(&leaves),
        }
    }
}

impl ExtExecutable {
    fn run(&self, leaves: &[Array]) -> Result<Vec<Array>> {
        let what = || format!("program on {}", self.device);
        if leaves.len() != self.in_avals.len() {
            return Err(Error::invalid(
                "device run",
                format!(
                    "{}: takes {} arguments, got {}",
                    what(),
                    self.in_avals.len(),
                    leaves.len()
                ),
            ));
        }
        let mut committed = false;
        let mut bufs = Vec::with_capacity(leaves.len());
        for (a, want) in leaves.iter().zip(&self.in_avals) {
            if &a.aval != want {
                return Err(Error::shape(
                    "device run",
                    format!("{}: argument has {}, expects {want}", what(), a.aval),
                ));
            }
            match &a.repr {
                Repr::Device(d) if d.device == self.device => {
                    committed = true;
                    bufs.push(d.buf.clone());
                }
                Repr::Device(d) => return Err(mismatch(what(), self.device, d.device)),
                Repr::Host(s) => bufs.push(self.backend.upload(self.ordinal, &a.aval, s)?),
                Repr::Tracer(_) => {
                    return Err(Error::invalid(
                        "device run",
                        "a compiled program runs on concrete arrays",
                    ))
                }
            }
        }
        let outs = self.exe.run(&bufs)?;
        if outs.len() != self.out_avals.len() {
            return Err(Error::Device(format!(
                "{}: backend `{}` returned {} outputs, the program has {}",
                what(),
                self.backend.name(),
                outs.len(),
                self.out_avals.len()
            )));
        }
        let outs = outs
            .into_iter()
            .zip(&self.out_avals)
            .map(|(b, aval)| device_array(aval.clone(), self.device, self.backend.clone(), b));
        if committed {
            Ok(outs.collect())
        } else {
            // Nothing was committed to the device: it ran there because it is the default,
            // and the results go back where the arguments came from.
            outs.map(|a| to_device(&a, Device::Cpu)).collect()
        }
    }
}

/// An eager op with an operand on a registered device: the op as a one-equation program,
/// compiled by that device's backend and run there (host operands are uploaded).
pub(crate) fn eager(prim: Arc<dyn Primitive>, ins: &[&Array]) -> Result<Vec<Array>> {
    let device = committed_device(&|| prim.name().to_string(), ins.iter().copied())?;
    let scope = crate::trace::TraceScope::begin();
    let tracers: Vec<Array> = ins
        .iter()
        .map(|a| scope.new_input(a.aval.clone()))
        .collect();
    let refs: Vec<&Array> = tracers.iter().collect();
    let outs = crate::array::bind(prim, &refs)?;
    let (prog, captured) = scope.finish(&outs)?;
    if !captured.is_empty() {
        return Err(Error::invalid(
            "device eager op",
            "a one-op program captured an outer value",
        ));
    }
    let exe = Compiled::compile(&prog, device)?;
    let args: Vec<Array> = ins.iter().map(|a| (*a).clone()).collect();
    exe.run_owned(args)
}
