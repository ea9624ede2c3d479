//! Tests of `artifact.rs`, kept beside it so the module itself stays short.

use super::*;
use crate::compress::Compression;
use crate::layer::write_layer;
use crate::tree::scan_tree;

struct Fixture {
    _dir: tempfile::TempDir,
    artifact: PathBuf,
    index: ArtifactIndex,
    lock: Vec<u8>,
    layer_files: Vec<PathBuf>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut layers = Vec::new();
    let mut layer_files = Vec::new();
    for (name, c) in [("python", Compression::Zstd), ("config", Compression::Gzip)] {
        let src = d.join(format!("src-{name}"));
        fs_err::create_dir_all(src.join(name)).unwrap();
        fs_err::write(src.join(name).join("file.txt"), name.repeat(1000)).unwrap();
        let entries = scan_tree(&src).unwrap();
        let (desc, p) = write_layer(name, &src, &entries, 1, c, d).unwrap();
        layers.push(desc);
        layer_files.push(p);
    }
    let lock = b"schema = 1\n".to_vec();
    let index = ArtifactIndex {
        schema: 1,
        name: "dev".into(),
        env_id: "abc".into(),
        platform: "linux-x86_64".into(),
        envpack_version: "0.1.0".into(),
        epoch: 1,
        lock_sha256: Sha256Digest::of_bytes(&lock),
        layers,
    };
    let artifact = d.join("env.tar");
    write_artifact(&artifact, &index, &lock, &layer_files, 1).unwrap();
    Fixture {
        _dir: dir,
        artifact,
        index,
        lock,
        layer_files,
    }
}

#[test]
fn write_read_round_trip() {
    let f = fixture();
    let r = ArtifactReader::open(&f.artifact).unwrap();
    assert_eq!(r.index(), &f.index);
    assert_eq!(r.lock_bytes(), f.lock);
    r.verify_layers().unwrap();
    for i in 0..2 {
        let mut tar = Vec::new();
        r.open_layer(i).unwrap().read_to_end(&mut tar).unwrap();
        assert_eq!(Sha256Digest::of_bytes(&tar), f.index.layers[i].diff_id);
    }
    let names: Vec<String> = tar::Archive::new(fs_err::File::open(&f.artifact).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names[..2], [INDEX_NAME, LOCK_NAME]);
    assert_eq!(
        names[2],
        format!("blobs/sha256/{}", f.index.layers[0].digest.to_hex())
    );
    assert!(r.open_layer(2).is_err());
}

#[test]
fn deterministic_and_canonical() {
    let f = fixture();
    let a = fs_err::read(&f.artifact).unwrap();
    let again = f.artifact.with_extension("2.tar");
    let (d, n) = write_artifact(&again, &f.index, &f.lock, &f.layer_files, 1).unwrap();
    assert_eq!(fs_err::read(&again).unwrap(), a);
    assert_eq!((d, n), (Sha256Digest::of_bytes(&a), a.len() as u64));
    let json = String::from_utf8(f.index.to_canonical_json()).unwrap();
    assert!(json.starts_with("{\"env_id\":\"abc\",\"envpack_version\":\"0.1.0\",\"epoch\":1,\"layers\":[{\"compression\":\"zstd\",\"diff_id\":\"sha256:"), "{json}");
    assert!(json.ends_with("}\n") && !json.contains(' '));
    assert_eq!(ArtifactIndex::from_json(json.as_bytes()).unwrap(), f.index);
}

#[test]
fn tampered_layer_is_named() {
    let f = fixture();
    let mut bytes = fs_err::read(&f.artifact).unwrap();
    // Flip a byte in the middle of the second blob ("config").
    let r = ArtifactReader::open(&f.artifact).unwrap();
    let (off, size) = r.ranges[1];
    bytes[(off + size / 2) as usize] ^= 0x55;
    fs_err::write(&f.artifact, &bytes).unwrap();
    let r = ArtifactReader::open(&f.artifact).unwrap();
    let err = r.verify_layers().unwrap_err().to_string();
    assert!(err.contains("\"config\""), "{err}");
    let mut sink = Vec::new();
    assert!(r.open_layer(1).unwrap().read_to_end(&mut sink).is_err());
}

#[test]
fn declared_sizes_bound_decompression() {
    let f = fixture();
    let d = f.artifact.parent().unwrap();
    let r = ArtifactReader::open(&f.artifact).unwrap();
    r.verify_uncompressed().unwrap();
    // The index claims less than the layer expands to: reading stops at the claim.
    let mut small = f.index.clone();
    small.layers[0].uncompressed_size = 1024;
    let out = d.join("small.tar");
    write_artifact(&out, &small, &f.lock, &f.layer_files, 1).unwrap();
    let r = ArtifactReader::open(&out).unwrap();
    let err = r.verify_uncompressed().unwrap_err().to_string();
    assert!(
        err.contains("decompresses to more than the 1024 bytes"),
        "{err}"
    );
    let mut buf = vec![0u8; 4096];
    let mut stream = r.open_layer(0).unwrap();
    let mut total = 0;
    let stopped = loop {
        match stream.read(&mut buf) {
            Ok(0) => break false,
            Ok(n) => total += n,
            Err(_) => break true,
        }
    };
    // Exactly the declared bytes come out before the error, whatever the read size.
    assert!(stopped && total == 1024, "{total}");
    // A claim larger than the layer fails at the end.
    let mut big = f.index.clone();
    big.layers[1].uncompressed_size += 1;
    write_artifact(&out, &big, &f.lock, &f.layer_files, 1).unwrap();
    let err = ArtifactReader::open(&out)
        .unwrap()
        .verify_uncompressed()
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"config\""), "{err}");
}

#[test]
fn unhashed_layers_check_length_but_not_digest() {
    let f = fixture();
    let d = f.artifact.parent().unwrap();
    let read_all = |r: &ArtifactReader, i: usize, hashed: bool| {
        let mut s = if hashed {
            r.open_layer(i).unwrap()
        } else {
            r.open_layer_unhashed(i).unwrap()
        };
        let mut v = Vec::new();
        s.read_to_end(&mut v).map(|_| v).map_err(|e| e.to_string())
    };
    let mut wrong_diff = f.index.clone();
    wrong_diff.layers[0].diff_id = Sha256Digest::of_bytes(b"not the layer");
    let out = d.join("diff.tar");
    write_artifact(&out, &wrong_diff, &f.lock, &f.layer_files, 1).unwrap();
    let r = ArtifactReader::open(&out).unwrap();
    let err = read_all(&r, 0, true).unwrap_err();
    assert!(err.contains("mismatch"), "{err}");
    let tar = read_all(&r, 0, false).unwrap();
    assert_eq!(Sha256Digest::of_bytes(&tar), f.index.layers[0].diff_id);

    let mut long = f.index.clone();
    long.layers[0].uncompressed_size += 512;
    write_artifact(&out, &long, &f.lock, &f.layer_files, 1).unwrap();
    let r = ArtifactReader::open(&out).unwrap();
    let err = read_all(&r, 0, false).unwrap_err();
    assert!(err.contains("the index declares"), "{err}");
}

#[test]
fn structural_errors() {
    let f = fixture();
    let d = f.artifact.parent().unwrap();
    // Wrong lock.
    let mut idx = f.index.clone();
    idx.lock_sha256 = Sha256Digest::of_bytes(b"other");
    assert!(write_artifact(&d.join("x.tar"), &idx, &f.lock, &f.layer_files, 1).is_err());
    // Layer file does not match its digest.
    let swapped = vec![f.layer_files[1].clone(), f.layer_files[0].clone()];
    assert!(write_artifact(&d.join("x.tar"), &f.index, &f.lock, &swapped, 1).is_err());
    assert!(!d.join("x.tar").exists());
    // Truncated artifact: blobs missing.
    let bytes = fs_err::read(&f.artifact).unwrap();
    let r = ArtifactReader::open(&f.artifact).unwrap();
    let cut = d.join("cut.tar");
    fs_err::write(&cut, &bytes[..(r.ranges[1].0 - 512) as usize]).unwrap();
    assert!(ArtifactReader::open(&cut).is_err());
    // Lock altered after writing.
    let mut altered = bytes.clone();
    let pos = bytes.windows(10).position(|w| w == b"schema = 1").unwrap();
    altered[pos + 9] = b'2';
    let alt = d.join("alt.tar");
    fs_err::write(&alt, &altered).unwrap();
    let err = ArtifactReader::open(&alt).unwrap_err();
    assert!(matches!(err, LayersError::DigestMismatch { .. }), "{err}");
    // Not an artifact at all.
    let plain = d.join("plain.tar");
    fs_err::write(
        &plain,
        [&file_header("x", 0, 0o644, 0).unwrap()[..], &END_OF_ARCHIVE].concat(),
    )
    .unwrap();
    assert!(ArtifactReader::open(&plain).is_err());
}
