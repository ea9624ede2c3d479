//! Progress events reported while unpacking, for a caller to display.

/// A step of an unpack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// Every layer's digest is being checked (before anything is extracted).
    VerifyingLayers {
        /// Number of layers.
        count: usize,
    },
    /// A layer is being extracted.
    Extracting {
        /// The layer's name.
        layer: String,
    },
    /// `current` is being switched to the new env.
    Switching {
        /// The env becoming current.
        env_id: String,
    },
}

impl std::fmt::Display for ProgressEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProgressEvent::VerifyingLayers { count } => write!(f, "verifying {count} layers"),
            ProgressEvent::Extracting { layer } => write!(f, "extracting layer {layer}"),
            ProgressEvent::Switching { env_id } => write!(f, "switching current to {env_id}"),
        }
    }
}
