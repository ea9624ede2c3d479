//! OCI image documents and layouts: configs, manifests and indexes built with oci-spec, their
//! read model, the layout writer, oci-archive writer and reader, and the layout reader.

mod archive;
mod archive_reader;
mod config;
mod document;
mod index;
mod layout;
mod layout_reader;

use std::path::PathBuf;

use envpack_layers::digest::Sha256Digest;
use oci_spec::image::{Descriptor, History};

pub use archive::write_layout_archive;
pub use archive_reader::{extract_layout_archive, is_layout_archive};
pub use config::{container_env, image_config, LayerRecord, OciPlatform};
pub use document::{
    media_type_of, ConfigLayers, Document, Entry, EntryPlatform, MAX_MANIFEST_BYTES, REF_NAME,
};
pub use index::{
    image_annotations, image_index, image_manifest, layout_index, oci_platform, parse_annotation,
    validate_tag, AnnotationInputs,
};
pub use layout::{descriptor, layer_media_type, LayoutWriter, OCI_LAYOUT};
pub use layout_reader::{is_index_type, is_manifest_type, Desc, LayoutReader};

/// A base image to build on, pinned to a digest and stored locally (see `pull_base`); with
/// `None` the image is `FROM scratch`.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// Reference it was resolved from (for `org.opencontainers.image.base.name`).
    pub name: String,
    /// Manifest digest (`sha256:…`).
    pub digest: String,
    /// The base config's `rootfs.diff_ids`.
    pub diff_ids: Vec<Sha256Digest>,
    /// The base config's history entries.
    pub history: Vec<History>,
    /// The base manifest's layer descriptors, reused as-is.
    pub layers: Vec<Descriptor>,
    /// The base config's PATH, if it sets one.
    pub path: Option<String>,
    /// Local files holding `layers`, in the same order (copied into the layout).
    pub files: Vec<PathBuf>,
}
