//! Debugging switches: `debug_nans` (error on the first primitive that produces a NaN or Inf).

use crate::array::Array;
use crate::error::{Error, Result};
use crate::storage::Storage;
use std::cell::Cell;
use std::sync::OnceLock;

thread_local! {
    static NANS_SCOPED: Cell<Option<bool>> = const { Cell::new(None) };
}

fn nans_from_env() -> bool {
    static ENV: OnceLock<bool> = OnceLock::new();
    *ENV.get_or_init(|| std::env::var("FERRAX_DEBUG_NANS").is_ok_and(|v| !v.is_empty() && v != "0"))
}

/// Whether NaN checking is on (the `FERRAX_DEBUG_NANS` env var, or a [`debug_nans`] scope).
pub fn debug_nans_enabled() -> bool {
    NANS_SCOPED.with(|c| c.get()).unwrap_or_else(nans_from_env)
}

/// Runs `f` with NaN checking switched on or off on this thread.
pub fn debug_nans<R>(on: bool, f: impl FnOnce() -> R) -> R {
    let prev = NANS_SCOPED.with(|c| c.replace(Some(on)));
    struct Restore(Option<bool>);
    impl Drop for Restore {
        fn drop(&mut self) {
            NANS_SCOPED.with(|c| c.set(self.0));
        }
    }
    let _r = Restore(prev);
    f()
}

/// Returns an error naming `op` if any float output holds a NaN or Inf (when enabled).
pub fn check_outputs(op: &str, outs: &[Array]) -> Result<()> {
    if !debug_nans_enabled() {
        return Ok(());
    }
    for (k, o) in outs.iter().enumerate() {
        let Some(s) = o.storage_arc() else { continue };
        let bad = match &**s {
            Storage::F32(v) => v.iter().position(|x| !x.is_finite()),
            Storage::F64(v) => v.iter().position(|x| !x.is_finite()),
            Storage::BF16(v) => v.iter().position(|x| !x.is_finite()),
            Storage::F16(v) => v.iter().position(|x| !x.is_finite()),
            _ => None,
        };
        if let Some(i) = bad {
            return Err(Error::NonFinite(format!(
                "debug_nans: `{op}` produced {} at flat index {i} of output {k} ({})",
                s.get_f64(i),
                o.aval()
            )));
        }
    }
    Ok(())
}
