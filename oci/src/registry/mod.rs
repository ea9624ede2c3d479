//! Talking to OCI registries: references, credentials, and the distribution API.
//!
//! The client speaks HTTP directly (ureq, rustls) rather than through `oci-client`: pushes
//! must send the layout's exact manifest bytes and stream multi-hundred-MB blobs from disk,
//! and a small sync client keeps both simple and keeps tokio out of the builder.

mod challenge;
mod client;
mod credentials;
mod operations;
mod reference;
mod retry;

pub use client::{ClientOptions, Mount, RegistryClient, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES};
pub use credentials::Credentials;
pub use reference::{check_digest, tag_problem, Reference};
pub use retry::RetryPolicy;

#[cfg(test)]
mod network_tests;
