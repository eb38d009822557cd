//! ferrax-infer: NumPyro-style distributions, effect handlers, NUTS/HMC and SVI (filled in by [E8]).
