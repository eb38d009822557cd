//! NVRTC compilation with a two-level cache. A module is keyed by the hash of its source,
//! the GPU architecture and the NVRTC version: in memory per device (loaded modules), and
//! on disk as PTX (so a fresh process skips NVRTC). The disk entry stores the source next to
//! the PTX and is used only if the source matches, so a hash collision is a miss, not a
//! wrong kernel.

use crate::codegen::fnv1a;
use crate::error::{Error, Result};
use cudarc::driver::{CudaContext, CudaFunction, CudaModule};
use cudarc::nvrtc::{CompileOptions, Ptx};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The NVRTC version as `major.minor`, part of every cache key (a new toolkit may emit
/// different PTX). Only call after [`probe`](crate::device::probe) succeeded.
pub fn nvrtc_version() -> Result<String> {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: NVRTC is present (checked by the caller through `probe`); the function only
    // writes two ints.
    let r = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    if r != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(Error::Unavailable(format!("nvrtcVersion failed: {r:?}")));
    }
    Ok(format!("{major}.{minor}"))
}

/// The on-disk cache directory: `FERRAX_CUDA_CACHE`, else `$XDG_CACHE_HOME/ferrax/cuda`,
/// else `$HOME/.cache/ferrax/cuda`, else the system temp dir.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FERRAX_CUDA_CACHE") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("ferrax").join("cuda")
}

/// The cache key of a source for an architecture and toolkit.
pub fn cache_key(source: &str, arch: &str, toolkit: &str) -> String {
    let mut bytes = Vec::with_capacity(source.len() + 64);
    bytes.extend_from_slice(source.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(arch.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(toolkit.as_bytes());
    format!("{:016x}-{arch}-nvrtc{toolkit}", fnv1a(&bytes))
}

/// Counters of the cache (tests and the benchmark script read them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Modules found loaded in memory.
    pub memory_hits: u64,
    /// Modules loaded from PTX on disk.
    pub disk_hits: u64,
    /// Modules compiled by NVRTC.
    pub compiles: u64,
}

/// The per-device module cache.
#[derive(Debug)]
pub struct KernelCache {
    arch: String,
    toolkit: Option<String>,
    modules: HashMap<String, Arc<CudaModule>>,
    stats: CacheStats,
}

impl KernelCache {
    pub(crate) fn new(arch: String) -> Self {
        KernelCache {
            arch,
            toolkit: None,
            modules: HashMap::new(),
            stats: CacheStats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The function `name` of the module compiled from `source`, compiling on a miss.
    pub(crate) fn function(
        &mut self,
        ctx: &Arc<CudaContext>,
        source: &str,
        name: &str,
    ) -> Result<CudaFunction> {
        let toolkit = match &self.toolkit {
            Some(t) => t.clone(),
            None => {
                let t = nvrtc_version()?;
                self.toolkit = Some(t.clone());
                t
            }
        };
        let key = cache_key(source, &self.arch, &toolkit);
        let module = if let Some(m) = self.modules.get(&key) {
            self.stats.memory_hits += 1;
            m.clone()
        } else {
            let ptx = match read_disk(&key, source) {
                Some(ptx) => {
                    self.stats.disk_hits += 1;
                    ptx
                }
                None => {
                    let ptx = compile(source, name, &self.arch)?;
                    self.stats.compiles += 1;
                    // A cache that cannot be written only costs a recompile next time.
                    let _ = write_disk(&key, source, &ptx);
                    ptx
                }
            };
            let m = ctx.load_module(Ptx::from_src(ptx))?;
            self.modules.insert(key, m.clone());
            m
        };
        Ok(module.load_function(name)?)
    }
}

/// Compiles CUDA C to PTX text for `arch` (`compute_90`).
pub fn compile(source: &str, name: &str, arch: &str) -> Result<String> {
    let opts = CompileOptions {
        options: vec![
            format!("--gpu-architecture={arch}"),
            "--std=c++17".to_string(),
        ],
        name: Some(format!("{name}.cu")),
        ..Default::default()
    };
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(source, opts).map_err(|e| Error::Compile {
        name: name.to_string(),
        log: match e {
            cudarc::nvrtc::CompileError::CompileError { log, .. } => {
                log.to_string_lossy().into_owned()
            }
            other => format!("{other:?}"),
        },
    })?;
    let bytes = ptx.as_bytes().ok_or_else(|| Error::Compile {
        name: name.to_string(),
        log: "NVRTC returned no PTX image".to_string(),
    })?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8(bytes[..end].to_vec()).map_err(|e| Error::Compile {
        name: name.to_string(),
        log: format!("PTX is not UTF-8: {e}"),
    })
}

fn read_disk(key: &str, source: &str) -> Option<String> {
    let dir = cache_dir();
    let src = std::fs::read_to_string(dir.join(format!("{key}.cu"))).ok()?;
    if src != source {
        return None;
    }
    std::fs::read_to_string(dir.join(format!("{key}.ptx"))).ok()
}

fn write_disk(key: &str, source: &str, ptx: &str) -> Result<()> {
    let dir = cache_dir();
    let err = |e: std::io::Error| Error::Cache {
        path: dir.display().to_string(),
        msg: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(err)?;
    // Write the PTX first and the source last: a reader accepts an entry only when the
    // source matches, so a crash between the two writes leaves a miss, never a mismatch.
    let tmp = dir.join(format!("{key}.ptx.tmp{}", std::process::id()));
    std::fs::write(&tmp, ptx).map_err(err)?;
    std::fs::rename(&tmp, dir.join(format!("{key}.ptx"))).map_err(err)?;
    std::fs::write(dir.join(format!("{key}.cu")), source).map_err(err)?;
    Ok(())
}
