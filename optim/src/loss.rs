//! Losses (placeholder)
