//! Python packaging for envpack: project names and distribution filenames, wheel tags,
//! platform targets (from `platforms/*.toml`), core metadata, requirements, the PEP 503/691
//! index client, the PubGrub resolver, the wheel installer with its launchers, bytecode
//! compilation, and the build host's CPython.

mod bytecode;
mod entry_points;
mod error;
mod filename;
mod host_python;
mod index;
mod install;
mod launcher;
mod metadata;
mod platform;
mod requirement;
mod resolve;
mod source_archive;
mod tags;
#[cfg(test)]
mod test_server;

pub use bytecode::compile_tree;
pub use entry_points::{parse_entry_points, EntryPoint, ScriptEntryPoints};
pub use error::PypkgError;
pub use filename::PackageName;
pub use host_python::{HostPython, LazyHost};
pub use index::{IndexFile, SimpleIndex};
pub use install::{
    check_member_path, hash_matches, install_wheel, parse_record, InstallTarget, InstallWarning,
    InstalledDist, RecordEntry, WheelInput,
};
pub use launcher::{cmd_locate_env, crlf, env_bin_launchers, GeneratedFile};
pub use metadata::{parse_core_metadata, read_wheel_metadata, CoreMetadata};
pub use platform::{
    all as all_platforms, by_name as platform_by_name, host as host_platform, parse_python_version,
    LauncherKind, Layout, MarkerValues, Platform,
};
pub use requirement::parse_requirement;
pub use resolve::{
    raise_advice, BuiltWheel, DistKind, ResolveRequest, ResolvedPackage, Resolver, SdistBuilder,
    TargetNote, Unmet,
};
pub use source_archive::{extract_sdist, extract_tar_gz};
pub use tags::{compatible_tags, wheel_priority, TagRanks, WheelTag, WheelTarget};
