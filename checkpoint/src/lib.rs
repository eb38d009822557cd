//! ferrax-checkpoint: Orbax-style atomic, async checkpointing with safetensors data (filled in by [E6]).
