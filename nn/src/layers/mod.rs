//! The layers: dense, convolution and pooling, normalization, dropout, attention and the
//! transformer block, recurrent cells.

pub mod attention;
pub mod conv;
pub mod dropout;
pub mod linear;
pub mod norm;
pub mod recurrent;
