//! Tests of `restore.rs`, kept beside it so the module itself stays short.

use super::*;

#[test]
fn prefixes() {
    let e = |p: &str| TreeEntry {
        path: p.into(),
        kind: envpack_layers::tree::EntryKind::Dir,
    };
    let meta = vec![
        e("opt"),
        e("opt/envpack/dev/envs/dev-linux-x86_64/envpack.json"),
        e("opt/envpack/dev/envs/dev-linux-x86_64/bin"),
    ];
    assert_eq!(
        env_prefix(&meta).unwrap(),
        "opt/envpack/dev/envs/dev-linux-x86_64"
    );
    assert!(env_prefix(&[e("envpack.json")]).is_err());
}

#[test]
fn unprefixed_copy_is_the_builders_layer_byte_for_byte() {
    use envpack_layers::layer::{write_layer, write_layer_prefixed};
    let src = tempfile::tempdir().unwrap();
    let root = src.path();
    let deep = format!("lib/{}/{}", "d".repeat(90), "m".repeat(40));
    fs_err::create_dir_all(root.join(&deep)).unwrap();
    fs_err::create_dir_all(root.join("bin")).unwrap();
    fs_err::write(root.join(&deep).join("mod.py"), "x = 1\n").unwrap();
    fs_err::write(root.join("bin/tool"), vec![7u8; 1500]).unwrap();
    fs_err::write(root.join("empty"), b"").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(
            root.join("bin/tool"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("tool", root.join("bin/alias")).unwrap();
    }
    let entries = envpack_layers::tree::scan_tree(root).unwrap();
    let out = tempfile::tempdir().unwrap();
    let prefix = "opt/envpack/dev/envs/dev-linux-x86_64";
    let (_, plain) = write_layer("t", root, &entries, 42, Compression::None, out.path()).unwrap();
    let sub = out.path().join("p");
    fs_err::create_dir(&sub).unwrap();
    let (_, prefixed) =
        write_layer_prefixed("t", root, &entries, prefix, 42, Compression::None, &sub).unwrap();
    let mut rewritten = Vec::new();
    copy_unprefixed(
        &mut &fs_err::read(&prefixed).unwrap()[..],
        prefix,
        42,
        &mut rewritten,
    )
    .unwrap();
    assert!(rewritten == fs_err::read(&plain).unwrap());

    // Anything outside the env's directory is refused.
    let elsewhere = out.path().join("p2");
    fs_err::create_dir(&elsewhere).unwrap();
    let (_, other) = write_layer_prefixed(
        "t",
        root,
        &entries,
        "opt/other",
        42,
        Compression::None,
        &elsewhere,
    )
    .unwrap();
    let err = copy_unprefixed(
        &mut &fs_err::read(&other).unwrap()[..],
        prefix,
        42,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("lies outside"), "{err}");
}
