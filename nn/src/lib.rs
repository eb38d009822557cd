//! ferrax-nn: Flax-NNX-style modules, initializers, losses and metrics (filled in by [E7]).
