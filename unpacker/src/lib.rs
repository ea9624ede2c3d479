//! `envpack-unpack`: verifies a portable envpack artifact and restores it into a symlinked
//! root (`ROOT/envs/<env-id>`, `ROOT/current`, `ROOT/bin` shims, `ROOT/state`).
//! Minimal by design: no async runtime, no HTTP client.

pub mod cli_docs;
pub mod current_link;
pub mod doctor;
pub mod durability;
pub mod env_id;
pub mod env_info;
pub mod error;
pub mod fault;
pub mod kept_artifact;
pub mod layout;
pub mod progress;
pub mod provenance_check;
pub mod repair;
pub mod rollback;
pub mod root_args;
pub mod root_dirs;
pub mod root_guard;
pub mod root_lock;
pub mod root_record;
pub mod root_setup;
pub mod root_trust;
pub mod scratch;
pub mod shims;
pub mod signature_check;
pub mod staging;
pub mod state_seed;
pub mod status;
pub mod tree_copy;
pub mod unpack;
pub mod verify_artifact;
pub mod verify_root;

pub use doctor::{doctor, DoctorOptions, DoctorReport};
pub use error::UnpackError;
pub use progress::ProgressEvent;
pub use repair::{repair, RepairOptions, RepairReport};
pub use rollback::rollback;
pub use signature_check::TrustOptions;
pub use status::{status, RootStatus};
pub use unpack::{unpack, UnpackOutcome};
pub use verify_artifact::verify_artifact;
pub use verify_root::{verify_root, VerifyReport};
