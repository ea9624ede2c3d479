//! Writes the seed corpus (fuzz/corpus/<target>/) from small real inputs: layers and artifacts
//! made by envpack-layers, the example lock and spec, RECORD/METADATA of real wheels, the
//! OCI JSON of a built image layout. Run by scripts/fuzz.sh when a corpus is missing.
//!
//!   make_seeds REPO_ROOT [WHEEL_DIR] [OCI_LAYOUT_DIR]

use std::io::Read;
use std::path::{Path, PathBuf};

use envpack_layers::artifact::{write_artifact, ArtifactIndex};
use envpack_layers::compress::Compression;
use envpack_layers::digest::Sha256Digest;
use envpack_layers::layer::write_layer;
use envpack_layers::tree::scan_tree;

fn put(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create corpus dir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let repo = args.first().cloned().unwrap_or_else(|| PathBuf::from("."));
    let corpus = repo.join("fuzz/corpus");
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();

    // A small tree with a dir, files (one executable) and a relative symlink.
    let src = d.join("src");
    std::fs::create_dir_all(src.join("python/bin")).expect("mkdir");
    std::fs::write(src.join("python/bin/tool"), "#!/bin/sh\necho hi\n").expect("write");
    std::fs::set_permissions(
        src.join("python/bin/tool"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    std::fs::write(src.join("python/README"), "x".repeat(700)).expect("write");
    std::os::unix::fs::symlink("bin/tool", src.join("python/link")).expect("symlink");
    let entries = scan_tree(&src).expect("scan");

    let mut layers = Vec::new();
    let mut files = Vec::new();
    for (name, c) in [("cpython", Compression::Zstd), ("meta", Compression::Gzip)] {
        let (desc, p) = write_layer(name, &src, &entries, 1, c, d).expect("layer");
        // The decompressed tar is a layer_extract seed.
        let mut tar = Vec::new();
        envpack_layers::compress::decoder(c, std::fs::File::open(&p).expect("open layer"))
            .expect("decoder")
            .read_to_end(&mut tar)
            .expect("decompress");
        put(&corpus.join("layer_extract"), &format!("{name}.tar"), &tar);
        layers.push(desc);
        files.push(p);
    }
    let lock =
        std::fs::read(repo.join("lockfiles/local-devenv/envpack.lock")).expect("example lock");
    let index = ArtifactIndex {
        schema: 1,
        name: "seed".into(),
        env_id: "seed-linux-x86_64-000000000000".into(),
        platform: "linux-x86_64".into(),
        envpack_version: "0.1.0".into(),
        epoch: 1,
        lock_sha256: Sha256Digest::of_bytes(&lock),
        layers,
    };
    let art = d.join("seed.envpack.tar");
    write_artifact(&art, &index, &lock, &files, 1).expect("artifact");
    put(
        &corpus.join("artifact_reader"),
        "seed.envpack.tar",
        &std::fs::read(&art).expect("read"),
    );
    put(
        &corpus.join("artifact_reader"),
        "index.json",
        &serde_json::to_vec(&index).expect("index json"),
    );

    put(&corpus.join("lock_parse"), "example.lock", &lock);
    for spec in [
        "lockfiles/local-devenv/envpack.toml",
        "lockfiles/openssl-devenv/envpack.toml",
    ] {
        let bytes = std::fs::read(repo.join(spec)).expect("spec");
        let name = spec.replace('/', "_");
        put(&corpus.join("lock_parse"), &name, &bytes);
    }

    let manifest = envpack_layers::manifest::Manifest::from_entries(entries).to_bytes();
    put(&corpus.join("oci_json"), "manifest", &manifest);

    // RECORD and METADATA of real wheels.
    if let Some(wheels) = args.get(1) {
        let mut n = 0;
        for e in std::fs::read_dir(wheels).expect("wheel dir").flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("whl") || n >= 6 {
                continue;
            }
            let Ok(mut zip) = zip::ZipArchive::new(std::fs::File::open(&p).expect("open")) else {
                continue;
            };
            for i in 0..zip.len() {
                let Ok(mut f) = zip.by_index(i) else { continue };
                let name = f.name().to_string();
                if name.ends_with(".dist-info/RECORD") || name.ends_with(".dist-info/METADATA") {
                    let mut bytes = Vec::new();
                    if f.read_to_end(&mut bytes).is_ok() {
                        let seed = name.replace('/', "_");
                        let scrubbed = without_url_hosts(&String::from_utf8_lossy(&bytes));
                        put(&corpus.join("wheel_metadata"), &seed, scrubbed.as_bytes());
                    }
                }
            }
            n += 1;
        }
    }

    // The JSON documents of an OCI layout.
    if let Some(layout) = args.get(2) {
        let mut docs = vec![layout.join("index.json")];
        if let Ok(rd) = std::fs::read_dir(layout.join("blobs/sha256")) {
            docs.extend(rd.flatten().map(|e| e.path()));
        }
        for p in docs {
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            if bytes.len() < 64 * 1024 && bytes.first() == Some(&b'{') {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                put(&corpus.join("oci_json"), &name, &bytes);
            }
        }
    }
}

/// Every `http(s)://host/` in `text` with the host replaced by `index.example`: seeds are
/// committed, and the project names no package registry's host.
fn without_url_hosts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c == '/' || c.is_whitespace() || c == '>' || c == '"')
            .unwrap_or(rest.len());
        out.push_str("index.example");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}
