//! The image configuration of one platform: env vars, rootfs diff_ids, history, created time.

use oci_spec::image::{
    Arch, ConfigBuilder, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder, Os,
    RootFsBuilder,
};

use super::BaseImage;
use crate::error::Result;
use envpack_layers::digest::Sha256Digest;

/// PATH entries a container gets after the env's own `bin/` (the usual Linux default).
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The OCI os/arch/variant of a platform, as its `platforms/*.toml` gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciPlatform {
    /// GOOS value.
    pub os: String,
    /// GOARCH value.
    pub arch: String,
    /// CPU variant, if any.
    pub variant: Option<String>,
}

/// One layer as the config records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    /// Layer name, shown in `history`.
    pub name: String,
    /// Digest of the uncompressed tar.
    pub diff_id: Sha256Digest,
}

/// The container environment: the root's shims first on PATH, the writable CONAN_HOME (in the
/// state dir named `slot`), and the env id; a base image's PATH (when it has one) replaces the
/// default system part.
pub fn container_env(
    image_root: &str,
    slot: &str,
    env_id: &str,
    base_path: Option<&str>,
) -> Vec<String> {
    let system = base_path.unwrap_or(SYSTEM_PATH);
    vec![
        format!("PATH={image_root}/bin:{system}"),
        format!("CONAN_HOME={image_root}/state/{slot}/conan-home"),
        format!("ENVPACK_ENV={env_id}"),
    ]
}

/// The image configuration for one platform; `layers` are ours, after any base layers.
pub fn image_config(
    platform: &OciPlatform,
    env: Vec<String>,
    layers: &[LayerRecord],
    epoch: u64,
    base: Option<&BaseImage>,
) -> Result<ImageConfiguration> {
    let created = envpack_layers::time::rfc3339(epoch);
    let mut diff_ids: Vec<String> = Vec::new();
    let mut history = Vec::new();
    if let Some(base) = base {
        diff_ids.extend(base.diff_ids.iter().map(|d| d.to_string()));
        history.extend(base.history.iter().cloned());
    }
    for l in layers {
        diff_ids.push(l.diff_id.to_string());
        history.push(
            HistoryBuilder::default()
                .created(created.clone())
                .created_by(format!("envpack: {}", l.name))
                .build()?,
        );
    }
    let mut builder = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(Arch::from(platform.arch.as_str()))
        .os(Os::from(platform.os.as_str()))
        .config(ConfigBuilder::default().env(env).build()?)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(diff_ids)
                .build()?,
        )
        .history(history);
    if let Some(v) = &platform.variant {
        builder = builder.variant(v.clone());
    }
    Ok(builder.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use envpack_layers::canonical::to_canonical_vec;

    #[test]
    fn env_puts_shims_first_and_conan_home_in_state() {
        let env = container_env(
            "/opt/envpack/dev",
            "dev-linux-x86_64",
            "dev-linux-x86_64-abc",
            None,
        );
        assert_eq!(
            env,
            [
                "PATH=/opt/envpack/dev/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "CONAN_HOME=/opt/envpack/dev/state/dev-linux-x86_64/conan-home",
                "ENVPACK_ENV=dev-linux-x86_64-abc",
            ]
        );
        let env = container_env("/r", "s", "e", Some("/usr/bin"));
        assert_eq!(env[0], "PATH=/r/bin:/usr/bin");
    }

    #[test]
    fn config_json_is_canonical_and_complete() {
        let p = OciPlatform {
            os: "linux".into(),
            arch: "arm64".into(),
            variant: Some("v8".into()),
        };
        let layers = [
            LayerRecord {
                name: "cpython".into(),
                diff_id: Sha256Digest([1; 32]),
            },
            LayerRecord {
                name: "root".into(),
                diff_id: Sha256Digest([2; 32]),
            },
        ];
        let cfg = image_config(&p, vec!["A=1".into()], &layers, 1_700_000_000, None).unwrap();
        let text = String::from_utf8(to_canonical_vec(&cfg).unwrap()).unwrap();
        let d1 = format!("sha256:{}", "01".repeat(32));
        let d2 = format!("sha256:{}", "02".repeat(32));
        assert_eq!(
            text,
            format!(
                r#"{{"architecture":"arm64","config":{{"Env":["A=1"]}},"created":"2023-11-14T22:13:20Z","history":[{{"created":"2023-11-14T22:13:20Z","created_by":"envpack: cpython"}},{{"created":"2023-11-14T22:13:20Z","created_by":"envpack: root"}}],"os":"linux","rootfs":{{"diff_ids":["{d1}","{d2}"],"type":"layers"}},"variant":"v8"}}"#
            )
        );
    }

    #[test]
    fn base_layers_come_first() {
        let p = OciPlatform {
            os: "linux".into(),
            arch: "amd64".into(),
            variant: None,
        };
        let base = BaseImage {
            name: "debian".into(),
            digest: "sha256:00".into(),
            diff_ids: vec![Sha256Digest([9; 32])],
            history: vec![HistoryBuilder::default()
                .created_by("base")
                .build()
                .unwrap()],
            layers: Vec::new(),
            path: None,
            files: Vec::new(),
        };
        let layers = [LayerRecord {
            name: "meta".into(),
            diff_id: Sha256Digest([3; 32]),
        }];
        let cfg = image_config(&p, vec![], &layers, 0, Some(&base)).unwrap();
        assert_eq!(cfg.rootfs().diff_ids().len(), 2);
        assert_eq!(
            cfg.rootfs().diff_ids()[0],
            format!("sha256:{}", "09".repeat(32))
        );
        assert_eq!(cfg.history().as_ref().unwrap().len(), 2);
        assert!(cfg.variant().is_none());
    }
}
