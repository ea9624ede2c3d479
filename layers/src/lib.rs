//! Deterministic layers.
