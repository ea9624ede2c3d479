//! `audit REF`: every blob of a pushed image and its SBOM referrers checked against the lock.

use super::*;

#[test]
fn audit_of_a_pushed_image_checks_every_blob_and_its_sboms() {
    let l = locked();
    let (dir, _) = layout();
    let reg = Registry::start();
    let reference = reg.reference("team/audited", TAG);
    push(l, &reference, &["--layout", dir.to_str().unwrap()]);

    let out = envpack(l, &l.dir)
        .args(["--json", "audit", &reference])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_of(&out);
    assert_eq!(report["subject"], reference.as_str());
    assert_eq!(report["findings"], Value::Array(Vec::new()), "{report}");
    let notes = report["notes"].to_string();
    // Two platforms, two SBOM formats each, found through the fallback tags.
    assert!(notes.contains("4 SBOM referrers found"), "{notes}");

    // A blob damaged in the registry's storage is caught by its digest.
    let sbom_digest = fs_err::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            fs_err::read(p)
                .map(|b| {
                    b.len() < (4 << 20)
                        && String::from_utf8_lossy(&b).contains("\"bomFormat\":\"CycloneDX\"")
                })
                .unwrap_or(false)
        })
        .expect("a CycloneDX SBOM blob in the layout")
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let data = reg
        .storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&sbom_digest[..2])
        .join(&sbom_digest)
        .join("data");
    let mut bytes = fs_err::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    fs_err::write(&data, bytes).unwrap();
    let out = envpack(l, &l.dir)
        .args(["audit", &reference])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a damaged SBOM blob passed the audit"
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&sbom_digest),
        "the damaged blob is not named: {text}"
    );
}
