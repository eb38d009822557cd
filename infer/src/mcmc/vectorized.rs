//! The `vectorized` chain method: every chain's gradient evaluations are gathered and
//! run together through one vmapped, compiled program ([`BatchedPotential`]). Each chain's
//! tree building (data-dependent control flow) runs on its own light thread; a chain that
//! needs a gradient parks its point here, and the last active chain to arrive runs the
//! batch for everyone, so the model's arithmetic executes once per lockstep round for
//! all chains (padded with a copy of a parked point while some chains wait elsewhere).

use super::nuts::GradFn;
use crate::error::{Error, Result};
use crate::potential::BatchedPotential;
use std::sync::{Condvar, Mutex};

struct State {
    bp: BatchedPotential,
    active: usize,
    pending: Vec<Option<Vec<f64>>>,
    results: Vec<Option<std::result::Result<(f64, Vec<f64>), String>>>,
    batches: usize,
}

/// Gathers the chains' gradient requests into batched evaluations.
pub(crate) struct Batcher {
    state: Mutex<State>,
    cv: Condvar,
}

impl Batcher {
    pub(crate) fn new(bp: BatchedPotential) -> Batcher {
        let c = bp.num_chains();
        Batcher {
            state: Mutex::new(State {
                bp,
                active: c,
                pending: vec![None; c],
                results: (0..c).map(|_| None).collect(),
                batches: 0,
            }),
            cv: Condvar::new(),
        }
    }

    /// Number of batched evaluations run so far.
    pub(crate) fn batches(&self) -> usize {
        self.lock().batches
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A chain that panicked poisons the lock; the state stays consistent because every
        // mutation completes under the guard.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run_if_ready(st: &mut State) {
        let waiting = st.pending.iter().filter(|p| p.is_some()).count();
        if waiting == 0 || waiting < st.active {
            return;
        }
        let pad = st
            .pending
            .iter()
            .flatten()
            .next()
            .cloned()
            .unwrap_or_default();
        let zs: Vec<&[f64]> = st
            .pending
            .iter()
            .map(|p| p.as_deref().unwrap_or(&pad))
            .collect();
        let out = st.bp.value_and_grad(&zs);
        st.batches += 1;
        match out {
            Ok(rows) => {
                for (i, row) in rows.into_iter().enumerate() {
                    if st.pending[i].take().is_some() {
                        st.results[i] = Some(Ok(row));
                    }
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for i in 0..st.pending.len() {
                    if st.pending[i].take().is_some() {
                        st.results[i] = Some(Err(msg.clone()));
                    }
                }
            }
        }
    }

    fn eval(&self, chain: usize, z: &[f64]) -> Result<(f64, Vec<f64>)> {
        let mut st = self.lock();
        st.pending[chain] = Some(z.to_vec());
        Self::run_if_ready(&mut st);
        self.cv.notify_all();
        loop {
            if let Some(r) = st.results[chain].take() {
                return r.map_err(|m| Error::invalid("Mcmc(vectorized)", m));
            }
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn finish(&self) {
        let mut st = self.lock();
        st.active = st.active.saturating_sub(1);
        Self::run_if_ready(&mut st);
        self.cv.notify_all();
    }

    /// The gradient function of one chain; dropping it retires the chain.
    pub(crate) fn handle(&self, chain: usize) -> ChainHandle<'_> {
        ChainHandle {
            batcher: self,
            chain,
        }
    }
}

/// One chain's view of the batcher.
pub(crate) struct ChainHandle<'a> {
    batcher: &'a Batcher,
    chain: usize,
}

impl GradFn for ChainHandle<'_> {
    fn eval(&self, z: &[f64]) -> Result<(f64, Vec<f64>)> {
        self.batcher.eval(self.chain, z)
    }
}

impl Drop for ChainHandle<'_> {
    fn drop(&mut self) {
        self.batcher.finish();
    }
}
