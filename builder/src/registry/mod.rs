//! Talking to OCI registries: references, credentials, and the distribution API.
//!
//! The client speaks HTTP directly (ureq, rustls) rather than through `oci-client`: pushes
//! must send the layout's exact manifest bytes and stream multi-hundred-MB blobs from disk,
//! and a small sync client keeps both simple and keeps tokio out of the builder.

pub mod challenge;
pub mod client;
pub mod credentials;
pub mod error;
mod operations;
pub mod reference;
pub mod retry;

pub use client::{ClientOptions, RegistryClient};
pub use error::{RegistryError, Result};
pub use reference::Reference;

#[cfg(test)]
mod network_tests;
