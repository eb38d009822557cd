//! The hand-written kernels, embedded at compile time. Each source is compiled with the
//! prelude in front of it (one NVRTC module per file, cached like generated code).

use crate::codegen::PRELUDE;

/// Reductions over a contiguous block of axes (rows and strided forms; sum/prod/max/min).
pub const REDUCE: &str = include_str!("../kernels/reduce.cu");
/// Axis permutation by element size.
pub const TRANSPOSE: &str = include_str!("../kernels/transpose.cu");
/// Row gather and scatter-add along the leading axis.
pub const GATHER: &str = include_str!("../kernels/gather.cu");
/// Per-row bitonic sort in shared memory.
pub const SORT: &str = include_str!("../kernels/sort.cu");

/// Every embedded kernel file by name (the host syntax check walks this table).
pub const ALL: &[(&str, &str)] = &[
    ("reduce.cu", REDUCE),
    ("transpose.cu", TRANSPOSE),
    ("gather.cu", GATHER),
    ("sort.cu", SORT),
];

/// The complete source NVRTC compiles for an embedded kernel file.
pub fn source(kernel_file: &str) -> String {
    format!("{PRELUDE}\n{kernel_file}")
}
