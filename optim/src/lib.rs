//! ferrax-optim: Optax-style gradient transformations, optimizers and schedules (filled in by [E5]).
