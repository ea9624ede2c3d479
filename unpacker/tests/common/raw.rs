//! Hand-made tar bytes and artifacts, bypassing every check of the real writers, so tests
//! can feed the unpacker exactly the hostile input they describe.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use envpack_layers::artifact::ArtifactIndex;
use envpack_layers::compress::{encoder, Compression};
use envpack_layers::digest::Sha256Digest;
use envpack_layers::layer::LayerDesc;
use envpack_layers::manifest::Manifest;
use envpack_layers::tarfmt::{entry_header, padding};
use envpack_layers::tree::{EntryKind, TreeEntry};

use super::EPOCH;

pub const REGULAR: u8 = b'0';
pub const HARDLINK: u8 = b'1';
pub const SYMLINK: u8 = b'2';
pub const CHAR_DEV: u8 = b'3';
pub const BLOCK_DEV: u8 = b'4';
pub const DIRECTORY: u8 = b'5';
pub const FIFO: u8 = b'6';

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

/// Recomputes a header's checksum field (sum of bytes with the field as spaces).
pub fn fix_checksum(h: &mut [u8]) {
    h[148..156].fill(b' ');
    let sum: u64 = h[..512].iter().map(|b| *b as u64).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
}

/// One ustar header block with raw fields; names longer than the field are cut.
pub fn header(name: &[u8], ty: u8, mode: u32, size: u64, link: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    if size < 0o77777777777 {
        octal(&mut h[124..136], size);
    } else {
        // GNU base-256 for sizes the octal field cannot hold.
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut h[136..148], EPOCH);
    h[156] = ty;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    fix_checksum(&mut h);
    h
}

/// Header, data and padding of one entry whose size field matches `data`.
pub fn entry(name: &[u8], ty: u8, mode: u32, data: &[u8], link: &[u8]) -> Vec<u8> {
    let mut out = header(name, ty, mode, data.len() as u64, link);
    out.extend_from_slice(data);
    out.resize(out.len() + padding(data.len() as u64), 0);
    out
}

pub fn file(name: &str, data: &[u8]) -> Vec<u8> {
    entry(name.as_bytes(), REGULAR, 0o644, data, b"")
}

pub fn dir(name: &str) -> Vec<u8> {
    entry(format!("{name}/").as_bytes(), DIRECTORY, 0o755, b"", b"")
}

pub fn symlink(name: &str, target: &str) -> Vec<u8> {
    entry(name.as_bytes(), SYMLINK, 0o777, b"", target.as_bytes())
}

/// A PAX record with a correct length prefix.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while body + len.to_string().len() != len {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// A local PAX extended header carrying `records` verbatim.
pub fn pax(records: &[u8]) -> Vec<u8> {
    entry(b"PaxHeader", b'x', 0o644, records, b"")
}

/// A GNU long name ('L') or long link ('K') pseudo-entry.
pub fn gnu_long(ty: u8, value: &[u8]) -> Vec<u8> {
    let mut data = value.to_vec();
    data.push(0);
    entry(b"././@LongLink", ty, 0o644, &data, b"")
}

pub fn end() -> Vec<u8> {
    vec![0u8; 1024]
}

/// A well-formed tar entry (through the layers crate's writer) plus its manifest line.
pub fn good(entry: TreeEntry, data: &[u8]) -> (Vec<u8>, TreeEntry) {
    let mut out = entry_header(&entry, EPOCH).unwrap();
    out.extend_from_slice(data);
    out.resize(out.len() + padding(data.len() as u64), 0);
    (out, entry)
}

pub fn good_dir(path: &str) -> (Vec<u8>, TreeEntry) {
    good(
        TreeEntry {
            path: path.into(),
            kind: EntryKind::Dir,
        },
        b"",
    )
}

pub fn good_file(path: &str, data: &[u8], executable: bool) -> (Vec<u8>, TreeEntry) {
    good(
        TreeEntry {
            path: path.into(),
            kind: EntryKind::File {
                size: data.len() as u64,
                sha256: Sha256Digest::of_bytes(data),
                executable,
            },
        },
        data,
    )
}

pub fn compress(c: Compression, data: &[u8]) -> Vec<u8> {
    let mut enc = encoder(c, Vec::new()).unwrap();
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A small env given as raw layer tars (without end-of-archive blocks), with its manifest.
/// Tests append hostile bytes to a layer, then [`EnvLayers::into_parts`] wraps everything
/// with correct digests so the check reaches extraction.
pub struct EnvLayers {
    pub env_id: String,
    pub platform: String,
    /// (layer name, tar bytes without the end blocks), meta last.
    pub layers: Vec<(String, Vec<u8>)>,
    pub manifest: Vec<TreeEntry>,
    /// Append the two zero blocks to every layer.
    pub end_blocks: bool,
    /// Writes the meta layer's `manifest` as a link to this target instead of the file.
    pub manifest_link: Option<String>,
}

impl EnvLayers {
    /// python: bin/, bin/tool, lib/, lib/ok.txt; conan: conan-home/, conan-home/global.conf;
    /// meta: envpack.json and the manifest (added in `into_parts`).
    pub fn small(env_id: &str) -> Self {
        let mut manifest = Vec::new();
        let mut layer = |items: Vec<(Vec<u8>, TreeEntry)>| {
            let mut tar = Vec::new();
            for (bytes, e) in items {
                tar.extend(bytes);
                manifest.push(e);
            }
            tar
        };
        let python = layer(vec![
            good_dir("bin"),
            good_file("bin/tool", b"#!/bin/sh\necho tool\n", true),
            good_dir("lib"),
            good_file("lib/ok.txt", b"ok\n", false),
        ]);
        let conan = layer(vec![
            good_dir("conan-home"),
            good_file(
                "conan-home/global.conf",
                b"core:non_interactive=True\n",
                false,
            ),
        ]);
        let meta = Vec::new();
        EnvLayers {
            env_id: env_id.into(),
            platform: "linux-x86_64".into(),
            layers: vec![
                ("python".into(), python),
                ("conan".into(), conan),
                ("meta".into(), meta),
            ],
            manifest,
            end_blocks: true,
            manifest_link: None,
        }
    }

    pub fn layer_mut(&mut self, name: &str) -> &mut Vec<u8> {
        &mut self.layers.iter_mut().find(|(n, _)| n == name).unwrap().1
    }

    /// Adds a file both to a layer and to the manifest.
    pub fn add_file(&mut self, layer: &str, path: &str, data: &[u8]) {
        let (bytes, e) = good_file(path, data, false);
        self.layer_mut(layer).extend(bytes);
        self.manifest.push(e);
    }

    /// Compresses the layers and builds the index; the meta layer (last) gets an
    /// `envpack.json` agreeing with the index, then the manifest.
    pub fn into_parts(mut self) -> ArtifactParts {
        let lock = format!("# lock for {}\n", self.env_id).into_bytes();
        let (meta_name, mut meta_tar) = self.layers.pop().unwrap();
        assert_eq!(meta_name, "meta");
        let mut descs = Vec::new();
        let mut blobs = Vec::new();
        let mut layer_info = Vec::new();
        for (name, tar) in std::mem::take(&mut self.layers) {
            let (desc, blob) = self.finish_layer(name, tar);
            layer_info
                .push(serde_json::json!({"name": desc.name, "diff_id": desc.diff_id.to_string()}));
            descs.push(desc);
            blobs.push(blob);
        }
        let info = serde_json::json!({
            "schema": 1, "name": "hostile", "env_id": self.env_id, "platform": self.platform,
            "envpack_version": "0.1.0", "epoch": EPOCH,
            "lock_sha256": Sha256Digest::of_bytes(&lock).to_string(), "layers": layer_info,
        });
        let (b, e) = good_file("envpack.json", info.to_string().as_bytes(), false);
        meta_tar.extend(b);
        self.manifest.push(e);
        let manifest_bytes = Manifest::from_entries(std::mem::take(&mut self.manifest)).to_bytes();
        match &self.manifest_link {
            Some(target) => meta_tar.extend(symlink("manifest", target)),
            None => meta_tar.extend(good_file("manifest", &manifest_bytes, false).0),
        }
        let (desc, blob) = self.finish_layer(meta_name, meta_tar);
        descs.push(desc);
        blobs.push(blob);
        let index = ArtifactIndex {
            schema: 1,
            name: "hostile".into(),
            env_id: self.env_id,
            platform: self.platform,
            envpack_version: "0.1.0".into(),
            epoch: EPOCH,
            lock_sha256: Sha256Digest::of_bytes(&lock),
            layers: descs,
        };
        ArtifactParts { index, lock, blobs }
    }

    fn finish_layer(&self, name: String, mut tar: Vec<u8>) -> (LayerDesc, Vec<u8>) {
        {
            if self.end_blocks {
                tar.extend(end());
            }
            let c = if name == "conan" {
                Compression::Gzip
            } else {
                Compression::Zstd
            };
            let blob = compress(c, &tar);
            let desc = LayerDesc {
                name,
                digest: Sha256Digest::of_bytes(&blob),
                size: blob.len() as u64,
                diff_id: Sha256Digest::of_bytes(&tar),
                uncompressed_size: tar.len() as u64,
                compression: c,
            };
            (desc, blob)
        }
    }
}

/// The pieces of an artifact before they are laid out as the outer tar.
pub struct ArtifactParts {
    pub index: ArtifactIndex,
    pub lock: Vec<u8>,
    /// Compressed blob per layer, parallel to `index.layers`.
    pub blobs: Vec<Vec<u8>>,
}

impl ArtifactParts {
    /// Outer members in the artifact's order: index, lock, distinct blobs.
    pub fn members(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = vec![
            (
                "envpack-artifact.json".to_string(),
                self.index.to_canonical_json(),
            ),
            ("envpack.lock".to_string(), self.lock.clone()),
        ];
        let mut seen = BTreeMap::new();
        for (l, blob) in self.index.layers.iter().zip(&self.blobs) {
            if seen.insert(l.digest, ()).is_none() {
                out.push((format!("blobs/sha256/{}", l.digest.to_hex()), blob.clone()));
            }
        }
        out
    }
}

/// The outer artifact tar of `members`, with end blocks.
pub fn outer_tar(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in members {
        out.extend(file(name, data));
    }
    out.extend(end());
    out
}

/// Writes `bytes` as `dir/<name>.tar`.
pub fn write_to(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    fs_err::create_dir_all(dir).unwrap();
    let p = dir.join(format!("{name}.tar"));
    fs_err::write(&p, bytes).unwrap();
    p
}
