//! The CUDA device of ferrax-core: a [`Backend`] over [`CudaDevice`] and
//! [`CudaExecutable`], so arrays moved with `to_device(&Device::cuda(n))` live in GPU
//! memory, eager ops on them run as one-op programs on the GPU, and staged calls (`#[jit]`,
//! `#[grad]`, `#[vmap]`) run their whole program on the device's stream with results kept
//! there. Registered by [`register`] (the facade does it at start-up with its `cuda`
//! feature, so `FERRAX_DEVICE=cuda:0` needs no code).

use crate::device::CudaDevice;
use crate::exec::{CudaExecutable, DeviceArray};
use ferrax_core::device::{self as core_device, Backend, DeviceExecutable};
use ferrax_core::ir::Program;
use ferrax_core::{AVal, Storage};
use std::any::Any;
use std::sync::Arc;

/// A CUDA buffer as ferrax-core holds it: shared, because an output of one call is often
/// an argument of the next and a program may return an argument unchanged.
#[derive(Debug)]
struct CudaBuffer {
    ordinal: u32,
    arr: Arc<DeviceArray>,
}

impl core_device::DeviceBuffer for CudaBuffer {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl From<crate::Error> for ferrax_core::Error {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Core(e) => e,
            e => ferrax_core::Error::Device(format!("cuda: {e}")),
        }
    }
}

fn buffer(b: &dyn core_device::DeviceBuffer) -> ferrax_core::Result<&CudaBuffer> {
    b.as_any().downcast_ref::<CudaBuffer>().ok_or_else(|| {
        ferrax_core::Error::Device(format!(
            "cuda: a buffer of another backend was handed to CUDA: {b:?}"
        ))
    })
}

fn open(ordinal: u32) -> ferrax_core::Result<Arc<CudaDevice>> {
    Ok(CudaDevice::get(ordinal as usize)?)
}

/// The CUDA [`Backend`] (name `cuda`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CudaBackend;

impl Backend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }
    fn device_count(&self) -> usize {
        crate::device::device_count()
    }
    fn check(&self, ordinal: u32) -> ferrax_core::Result<()> {
        open(ordinal).map(|_| ())
    }
    fn upload(
        &self,
        ordinal: u32,
        aval: &AVal,
        data: &Storage,
    ) -> ferrax_core::Result<Arc<dyn core_device::DeviceBuffer>> {
        let dev = open(ordinal)?;
        let buf = dev.upload(data)?;
        Ok(Arc::new(CudaBuffer {
            ordinal,
            arr: Arc::new(DeviceArray {
                aval: aval.clone(),
                buf,
            }),
        }))
    }
    fn download(&self, buf: &dyn core_device::DeviceBuffer) -> ferrax_core::Result<Storage> {
        let b = buffer(buf)?;
        Ok(open(b.ordinal)?.download(&b.arr.buf)?)
    }
    fn compile(
        &self,
        ordinal: u32,
        program: &Program,
    ) -> ferrax_core::Result<Box<dyn DeviceExecutable>> {
        let dev = open(ordinal)?;
        let exe = CudaExecutable::compile(program)?;
        Ok(Box::new(CudaProgram { dev, ordinal, exe }))
    }
}

/// A program compiled for one CUDA device.
struct CudaProgram {
    dev: Arc<CudaDevice>,
    ordinal: u32,
    exe: CudaExecutable,
}

impl DeviceExecutable for CudaProgram {
    fn run(
        &self,
        args: &[Arc<dyn core_device::DeviceBuffer>],
    ) -> ferrax_core::Result<Vec<Arc<dyn core_device::DeviceBuffer>>> {
        let mut dargs = Vec::with_capacity(args.len());
        for a in args {
            let b = buffer(&**a)?;
            if b.ordinal != self.ordinal {
                return Err(ferrax_core::Error::Device(format!(
                    "cuda: an argument on cuda:{} reached a program compiled for cuda:{}",
                    b.ordinal, self.ordinal
                )));
            }
            dargs.push(b.arr.clone());
        }
        let outs = self.exe.run_shared(&self.dev, dargs)?;
        Ok(outs
            .into_iter()
            .map(|arr| {
                Arc::new(CudaBuffer {
                    ordinal: self.ordinal,
                    arr,
                }) as Arc<dyn core_device::DeviceBuffer>
            })
            .collect())
    }
}

/// Registers the CUDA backend with ferrax-core, so `cuda:N` devices (and
/// `FERRAX_DEVICE=cuda:N`) resolve. Idempotent; needs no GPU (using a device does).
pub fn register() {
    core_device::register_backend(Arc::new(CudaBackend));
}
