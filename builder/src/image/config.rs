//! The image configuration of one platform: env vars, rootfs diff_ids, history, created time.

use oci_spec::image::{
    Arch, ConfigBuilder, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder, Os,
    RootFsBuilder,
};

use super::error::Result;
use super::BaseImage;
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

/// `epoch` (seconds since 1970, UTC) as RFC 3339, e.g. `2023-11-14T22:13:20Z`.
pub fn rfc3339(epoch: u64) -> String {
    let days = epoch / 86_400;
    let secs = epoch % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's civil-from-days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
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
    let created = rfc3339(epoch);
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
    fn rfc3339_table() {
        for (epoch, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (4_102_444_799, "2099-12-31T23:59:59Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(epoch), want, "{epoch}");
        }
    }

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
