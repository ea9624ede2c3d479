//! Deterministic layers: tree model, manifests, reproducible tar layers, the portable
//! artifact format, safe extraction and verification. Shared by builder and unpacker.

pub mod artifact;
pub mod canonical;
pub mod compress;
pub mod digest;
pub mod error;
pub mod extract;
pub mod file_writers;
pub mod layer;
pub mod links;
pub mod manifest;
pub mod read_ahead;
pub mod tar_guard;
pub mod tarfmt;
pub mod time;
pub mod tree;
pub mod verify;
mod zstd_frames;
mod zstd_parallel;

pub use error::{shown_name, LayersError, Result};
pub use zstd_frames::FRAME_SIZE;
