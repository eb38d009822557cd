//! The `argreduce` primitive (being written).
