#!/usr/bin/env bash
# GPU check: build with the CUDA backend, run the test suite with the GPU as the requested
# default device, run the GPU tests of ferrax-cuda (which skip, saying why, without a
# device), then the GPU benchmarks. Needs an NVIDIA GPU, its driver, NVRTC and cuBLAS;
# uses nothing from the network (cargo runs --offline: dependencies must be vendored or
# already fetched).
set -euo pipefail
cd "$(dirname "$0")/.."

export FERRAX_DEVICE="${FERRAX_DEVICE:-cuda:0}"
export FERRAX_CUDA_CACHE="${FERRAX_CUDA_CACHE:-$PWD/target/ferrax-cuda-cache}"
CARGO="cargo --offline"

echo "== nvidia-smi"
nvidia-smi -L || echo "(nvidia-smi not found)"

echo "== build --features cuda"
$CARGO build --features cuda --all-targets

echo "== ferrax-cuda GPU tests (must not print 'skipping' on a GPU machine)"
$CARGO test -p ferrax-cuda -- --nocapture 2>&1 | tee target/gpu-tests.log
if grep -q "^skipping" target/gpu-tests.log; then
    echo "FAIL: GPU tests skipped on this machine:"; grep "^skipping" target/gpu-tests.log; exit 1
fi

echo "== device routing on the GPU (must not print 'skipping')"
$CARGO test --features cuda --test device -- --nocapture 2>&1 | tee target/gpu-device.log
if grep -q "^skipping" target/gpu-device.log; then
    echo "FAIL: device tests skipped on this machine"; exit 1
fi

echo "== facade suite with FERRAX_DEVICE=$FERRAX_DEVICE"
# The facade registers the CUDA backend at start-up (feature `cuda`), so every staged call
# (#[jit], #[grad], #[vmap], fx::...) on host arguments runs its whole program on the GPU
# and brings the results back; eager ops on host arrays stay on the host.
$CARGO test --features cuda

echo "== library crates (host: they do not link ferrax-cuda, so cuda:N does not resolve there)"
env -u FERRAX_DEVICE $CARGO test --workspace --exclude ferrax --exclude ferrax-cuda

echo "== GPU benchmarks"
$CARGO run --release -p ferrax-cuda --example gpu_bench
