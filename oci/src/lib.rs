//! OCI for envpack: image references, a registry client (credentials, challenges, retries,
//! blob and manifest transfer), and OCI image documents, layouts and oci-archives, written
//! and read. Knows nothing of Python packaging or of how an env is assembled: platforms come
//! in as OCI os/arch/variant values.

mod error;
mod image;
mod push;
mod registry;

pub use error::{OciError, Result};
pub use image::*;
pub use push::{fallback_tag, push_layout, BlobAction, BlobOutcome, PushOptions, PushReport};
pub use registry::*;
