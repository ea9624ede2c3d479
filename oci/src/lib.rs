//! OCI for envpack: image references, a registry client (credentials, challenges, retries,
//! blob and manifest transfer), and OCI image documents, layouts and oci-archives, written
//! and read. Knows nothing of Python packaging or of how an env is assembled: platforms come
//! in as OCI os/arch/variant values.

mod error;
mod image;
mod registry;

pub use error::{OciError, Result};
pub use image::*;
pub use registry::*;
