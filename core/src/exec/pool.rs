//! Output-buffer recycling for the executor: large buffers it hands out are remembered, and
//! once every other holder dropped them (the pool holds the last reference) a later region
//! of the same size and dtype writes into them instead of allocating. A fresh allocation of
//! tens of megabytes costs a page fault per 4 KiB page on first touch, which is slower than
//! the whole fused pass that fills it.
//!
//! The pool is per thread (a driver loop runs on one thread; tests stay isolated) and
//! bounded; [`clear_buffer_pool`] releases what it holds.

use crate::storage::Storage;
use std::cell::RefCell;
use std::sync::Arc;

/// Buffers smaller than this come cheaply from the allocator's free lists: not tracked.
const MIN_BYTES: usize = 1 << 20;
/// At most this many buffers are remembered ...
const MAX_HELD: usize = 8;
/// ... holding at most this many bytes in all.
const MAX_BYTES: usize = 1 << 29;

thread_local! {
    static POOL: RefCell<Vec<Arc<Storage>>> = const { RefCell::new(Vec::new()) };
}

/// Releases every buffer the executor's pool holds on this thread.
pub fn clear_buffer_pool() {
    POOL.with(|p| p.borrow_mut().clear());
}

/// Bytes of the buffers the pool holds on this thread that nobody else references (memory
/// kept for reuse).
pub fn pooled_idle_bytes() -> usize {
    POOL.with(|p| {
        p.borrow()
            .iter()
            .filter(|s| Arc::strong_count(s) == 1)
            .map(|s| s.size_bytes())
            .sum()
    })
}

/// A buffer of `len` elements of `dtype` that nobody else holds, removed from the pool.
pub(crate) fn take(dtype: crate::dtype::DType, len: usize) -> Option<Storage> {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let i = p
            .iter()
            .position(|s| s.len() == len && s.dtype() == dtype && Arc::strong_count(s) == 1)?;
        Arc::try_unwrap(p.remove(i)).ok()
    })
}

/// Remembers a buffer handed out (a program output) or dropped by the executor, so it can
/// be reused once its other holders let go.
pub(crate) fn keep(s: &Arc<Storage>) {
    if s.size_bytes() < MIN_BYTES {
        return;
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.iter().any(|q| Arc::ptr_eq(q, s)) {
            return;
        }
        p.push(s.clone());
        // Evict the oldest first; an evicted buffer still in use just stops being tracked.
        let mut bytes: usize = p.iter().map(|q| q.size_bytes()).sum();
        while p.len() > MAX_HELD || bytes > MAX_BYTES {
            bytes -= p[0].size_bytes();
            p.remove(0);
        }
    })
}

/// Drops the pool's reference to `s`, so that its strong count says whether the caller's
/// value is shared (a program argument about to be checked for in-place reuse).
pub(crate) fn forget(s: &Arc<Storage>) {
    if s.size_bytes() < MIN_BYTES {
        return;
    }
    POOL.with(|p| p.borrow_mut().retain(|q| !Arc::ptr_eq(q, s)));
}
