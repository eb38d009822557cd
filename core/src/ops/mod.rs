//! The typed surface: methods on [`Tensor`](crate::Tensor) whose signatures carry the shape
//! algebra, forwarding to the untyped functions next to each primitive.

pub mod arith;
pub mod composite;
pub mod linalg;
pub mod reduce;
pub mod shape_ops;
