//! Talking to OCI registries: references, credentials, and the distribution API.
//!
//! The distribution API is spoken here over the one HTTP client setup of `envpack-net`
//! (reqwest), with the same proxies, CA bundle, stall limit and retry count as every other
//! request. `oci-client` is not used yet: it builds a reqwest client of its own from its own
//! settings (no per-hop proxy choice, no stall limit on reads, no retries), which would split
//! the network stack again.

mod auth;
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
