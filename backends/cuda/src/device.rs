//! Devices and buffers: finding CUDA at run time without panicking, one context and one
//! stream per device, typed device buffers and host <-> device transfer of [`Storage`].
//!
//! cudarc loads libcuda, NVRTC and cuBLAS lazily and *panics* when one is missing, so every
//! entry point here first asks [`probe`], which only tries to open the libraries.

use crate::compile::KernelCache;
use crate::error::{Error, Result};
use cudarc::driver::{CudaContext, CudaSlice, CudaStream};
use ferrax_core::{DType, Device, Storage};
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

/// Which CUDA libraries this process can load (nothing is initialized by asking).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Libraries {
    /// The driver library (libcuda.so / nvcuda.dll).
    pub driver: bool,
    /// The runtime compiler (libnvrtc).
    pub nvrtc: bool,
    /// cuBLAS (libcublas).
    pub cublas: bool,
}

/// Looks for the CUDA libraries without loading any symbol from them.
pub fn libraries() -> Libraries {
    // SAFETY: these only try `dlopen` on candidate names and drop the handle; no symbol
    // of the library is called.
    unsafe {
        Libraries {
            driver: cudarc::driver::sys::is_culib_present(),
            nvrtc: cudarc::nvrtc::sys::is_culib_present(),
            cublas: cudarc::cublas::sys::is_culib_present(),
        }
    }
}

/// `Ok` when the driver, NVRTC and cuBLAS libraries can all be loaded; otherwise an error
/// naming the first one missing. Call before anything that touches cudarc.
pub fn probe() -> Result<()> {
    let l = libraries();
    if !l.driver {
        return Err(Error::Unavailable(
            "no CUDA driver (libcuda.so / nvcuda.dll not found)".to_string(),
        ));
    }
    if !l.nvrtc {
        return Err(Error::Unavailable(
            "no NVRTC (libnvrtc not found)".to_string(),
        ));
    }
    if !l.cublas {
        return Err(Error::Unavailable(
            "no cuBLAS (libcublas not found)".to_string(),
        ));
    }
    Ok(())
}

/// Number of CUDA devices (0 when the driver is missing).
pub fn device_count() -> usize {
    if !libraries().driver {
        return 0;
    }
    CudaContext::device_count().map_or(0, |n| n.max(0) as usize)
}

/// Parses a device string: `cpu`, `cuda`, `cuda:N`, `gpu`, `gpu:N`.
pub fn parse_device(s: &str) -> Result<Device> {
    let t = s.trim().to_ascii_lowercase();
    if t == "cpu" {
        return Ok(Device::Cpu);
    }
    let rest = t.strip_prefix("cuda").or_else(|| t.strip_prefix("gpu"));
    match rest {
        Some("") => Ok(Device::cuda(0)),
        Some(r) => r
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .map(Device::cuda)
            .ok_or_else(|| Error::BadDevice(s.to_string())),
        None => Err(Error::BadDevice(s.to_string())),
    }
}

/// The default device requested by the environment (`FERRAX_DEVICE=cuda:0`), `cpu` if unset.
pub fn default_device() -> Result<Device> {
    match std::env::var("FERRAX_DEVICE") {
        Ok(s) if !s.trim().is_empty() => parse_device(&s),
        _ => Ok(Device::Cpu),
    }
}

/// A CUDA device: its context, the stream all of its work is queued on (so kernels run in
/// order without host synchronization), a cuBLAS handle and the loaded-kernel cache.
pub struct CudaDevice {
    ordinal: usize,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: OnceLock<std::result::Result<cudarc::cublas::CudaBlas, String>>,
    pub(crate) kernels: Mutex<KernelCache>,
}

impl fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CudaDevice")
            .field("ordinal", &self.ordinal)
            .finish()
    }
}

impl CudaDevice {
    /// Opens device `ordinal`. Errors (never panics) when a library or the device is missing.
    pub fn new(ordinal: usize) -> Result<Arc<CudaDevice>> {
        probe()?;
        let count = CudaContext::device_count()
            .map_err(|e| Error::Unavailable(format!("the CUDA driver failed to start: {e}")))?;
        let count = count.max(0) as usize;
        if ordinal >= count {
            return Err(Error::NoDevice { ordinal, count });
        }
        let ctx = CudaContext::new(ordinal)?;
        let stream = ctx.new_stream()?;
        let (major, minor) = ctx.compute_capability()?;
        let arch = format!("compute_{major}{minor}");
        Ok(Arc::new(CudaDevice {
            ordinal,
            ctx,
            stream,
            blas: OnceLock::new(),
            kernels: Mutex::new(KernelCache::new(arch)),
        }))
    }

    /// The process-wide handle of device `ordinal`, opened on first use.
    pub fn get(ordinal: usize) -> Result<Arc<CudaDevice>> {
        static DEVICES: OnceLock<Mutex<Vec<Option<Arc<CudaDevice>>>>> = OnceLock::new();
        let m = DEVICES.get_or_init(|| Mutex::new(Vec::new()));
        let mut v = m
            .lock()
            .map_err(|_| Error::Driver("device table poisoned".into()))?;
        if let Some(Some(d)) = v.get(ordinal) {
            return Ok(d.clone());
        }
        let d = CudaDevice::new(ordinal)?;
        if v.len() <= ordinal {
            v.resize(ordinal + 1, None);
        }
        v[ordinal] = Some(d.clone());
        Ok(d)
    }

    /// The device ordinal.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// As a ferrax [`Device`].
    pub fn device(&self) -> Device {
        Device::cuda(self.ordinal as u32)
    }

    /// The device's name as the driver reports it.
    pub fn name(&self) -> Result<String> {
        Ok(self.ctx.name()?)
    }

    /// The context.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// The stream all of this device's work is queued on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Waits for all queued work (only needed before the host reads a result).
    pub fn synchronize(&self) -> Result<()> {
        Ok(self.stream.synchronize()?)
    }

    /// The cuBLAS handle (bound to this device's stream), created on first use.
    pub fn blas(&self) -> Result<&cudarc::cublas::CudaBlas> {
        self.blas
            .get_or_init(|| {
                cudarc::cublas::CudaBlas::new(self.stream.clone()).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| Error::Blas(e.clone()))
    }

    /// Copies a host buffer to the device.
    pub fn upload(&self, s: &Storage) -> Result<DeviceBuffer> {
        let st = &self.stream;
        Ok(match s {
            Storage::F32(v) => DeviceBuffer::F32(st.clone_htod(v)?),
            Storage::F64(v) => DeviceBuffer::F64(st.clone_htod(v)?),
            // bf16/f16 travel as their bits: the kernels convert (see the prelude).
            Storage::BF16(v) => DeviceBuffer::BF16(st.clone_htod(v.reinterpret_cast())?),
            Storage::F16(v) => DeviceBuffer::F16(st.clone_htod(v.reinterpret_cast())?),
            Storage::I32(v) => DeviceBuffer::I32(st.clone_htod(v)?),
            Storage::I64(v) => DeviceBuffer::I64(st.clone_htod(v)?),
            Storage::U32(v) => DeviceBuffer::U32(st.clone_htod(v)?),
            // bool is one byte on both sides, 0 or 1.
            Storage::Bool(v) => {
                let bytes: Vec<u8> = v.iter().map(|&b| b as u8).collect();
                DeviceBuffer::Bool(st.clone_htod(&bytes)?)
            }
        })
    }

    /// Copies a device buffer back to the host (synchronizes with the stream).
    pub fn download(&self, b: &DeviceBuffer) -> Result<Storage> {
        let st = &self.stream;
        Ok(match b {
            DeviceBuffer::F32(d) => Storage::F32(st.clone_dtoh(d)?),
            DeviceBuffer::F64(d) => Storage::F64(st.clone_dtoh(d)?),
            DeviceBuffer::BF16(d) => {
                Storage::BF16(st.clone_dtoh(d)?.reinterpret_cast::<half::bf16>().to_vec())
            }
            DeviceBuffer::F16(d) => {
                Storage::F16(st.clone_dtoh(d)?.reinterpret_cast::<half::f16>().to_vec())
            }
            DeviceBuffer::I32(d) => Storage::I32(st.clone_dtoh(d)?),
            DeviceBuffer::I64(d) => Storage::I64(st.clone_dtoh(d)?),
            DeviceBuffer::U32(d) => Storage::U32(st.clone_dtoh(d)?),
            DeviceBuffer::Bool(d) => {
                Storage::Bool(st.clone_dtoh(d)?.into_iter().map(|b| b != 0).collect())
            }
        })
    }

    /// A zero-filled device buffer.
    pub fn zeros(&self, dtype: DType, n: usize) -> Result<DeviceBuffer> {
        let st = &self.stream;
        Ok(match dtype {
            DType::F32 => DeviceBuffer::F32(st.alloc_zeros(n)?),
            DType::F64 => DeviceBuffer::F64(st.alloc_zeros(n)?),
            DType::BF16 => DeviceBuffer::BF16(st.alloc_zeros(n)?),
            DType::F16 => DeviceBuffer::F16(st.alloc_zeros(n)?),
            DType::I32 => DeviceBuffer::I32(st.alloc_zeros(n)?),
            DType::I64 => DeviceBuffer::I64(st.alloc_zeros(n)?),
            DType::U32 => DeviceBuffer::U32(st.alloc_zeros(n)?),
            DType::Bool => DeviceBuffer::Bool(st.alloc_zeros(n)?),
        })
    }
}

/// A typed buffer in device memory (row-major, like [`Storage`]). bf16/f16 are stored as
/// their 16-bit patterns and bool as bytes, so no device type needs the `half` feature of
/// cudarc.
#[derive(Debug)]
pub enum DeviceBuffer {
    F32(CudaSlice<f32>),
    F64(CudaSlice<f64>),
    BF16(CudaSlice<u16>),
    F16(CudaSlice<u16>),
    I32(CudaSlice<i32>),
    I64(CudaSlice<i64>),
    U32(CudaSlice<u32>),
    Bool(CudaSlice<u8>),
}

impl DeviceBuffer {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            DeviceBuffer::F32(_) => DType::F32,
            DeviceBuffer::F64(_) => DType::F64,
            DeviceBuffer::BF16(_) => DType::BF16,
            DeviceBuffer::F16(_) => DType::F16,
            DeviceBuffer::I32(_) => DType::I32,
            DeviceBuffer::I64(_) => DType::I64,
            DeviceBuffer::U32(_) => DType::U32,
            DeviceBuffer::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            DeviceBuffer::F32(d) => d.len(),
            DeviceBuffer::F64(d) => d.len(),
            DeviceBuffer::BF16(d) | DeviceBuffer::F16(d) => d.len(),
            DeviceBuffer::I32(d) => d.len(),
            DeviceBuffer::I64(d) => d.len(),
            DeviceBuffer::U32(d) => d.len(),
            DeviceBuffer::Bool(d) => d.len(),
        }
    }

    /// Whether the buffer has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
