//! Talking to OCI registries: references, credentials, and the distribution API.
//!
//! The distribution API is spoken here over the one HTTP client setup of `envpack-net`
//! (reqwest), with the same proxies, CA bundle, stall limit and retry count as every other
//! request. `oci-client` (0.18) is not used, for two reasons measured on it:
//! - it reads every body whole, with no limit: a registry answering a manifest GET with 1 GiB
//!   made it hold 2.1 GB and return the bytes as a manifest. Here manifests and indexes stop at
//!   [`crate::MAX_MANIFEST_BYTES`], token answers at 1 MiB and error bodies at 4 KiB, and a
//!   caller of oci-client can't add such a cap from outside;
//! - it builds its reqwest client only from its own `ClientConfig` (no retries, its own
//!   proxy and certificate handling), and cannot take the client `envpack-net` configures.
//!
//! Either needs a change in oci-client; until then it would make a second network stack with
//! a memory-exhaustion hole.

mod auth;
mod challenge;
mod client;
mod credentials;
mod operations;
mod reference;
mod retry;

pub use client::{ClientOptions, Mount, RegistryClient, MANIFEST_ACCEPT};
pub use credentials::Credentials;
pub use reference::{check_digest, tag_problem, Reference};
pub use retry::RetryPolicy;

#[cfg(test)]
mod network_tests;
