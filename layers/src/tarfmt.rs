//! Byte-exact tar headers (ustar, plus PAX records only when ustar cannot hold a value).

use crate::error::{LayersError, Result};
use crate::tree::{validate_link_target, validate_rel_path, EntryKind, TreeEntry};

/// Size of a tar block.
pub const BLOCK: usize = 512;

/// Two zero blocks that end a tar archive.
pub const END_OF_ARCHIVE: [u8; 1024] = [0; 1024];

/// Name given to PAX extended headers; fixed so output never depends on the entry.
const PAX_NAME: &str = "PaxHeader";

/// Largest size the 11-digit octal ustar size field can hold.
const USTAR_MAX_SIZE: u64 = 0o77777777777;

/// Zero bytes needed after `size` bytes of data to reach a block boundary.
pub fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// Header block(s) for one tree entry at mtime `epoch`.
pub fn entry_header(entry: &TreeEntry, epoch: u64) -> Result<Vec<u8>> {
    validate_rel_path(&entry.path)?;
    match &entry.kind {
        EntryKind::Dir => headers(
            &format!("{}/", entry.path),
            b'5',
            entry.mode(),
            0,
            "",
            epoch,
        ),
        EntryKind::File { size, .. } => headers(&entry.path, b'0', entry.mode(), *size, "", epoch),
        EntryKind::Symlink { target } => {
            validate_link_target(&entry.path, target)?;
            headers(&entry.path, b'2', entry.mode(), 0, target, epoch)
        }
    }
}

/// Header block(s) for a plain file, as used in the outer artifact tar.
pub fn file_header(path: &str, size: u64, mode: u32, epoch: u64) -> Result<Vec<u8>> {
    validate_rel_path(path)?;
    if mode & !0o777 != 0 {
        return Err(LayersError::format(
            "tar header",
            format!("{path}: mode {mode:o} has bits beyond 0777"),
        ));
    }
    headers(path, b'0', mode, size, "", epoch)
}

/// Splits `name` into ustar (prefix, name) fields, or `None` when it does not fit.
fn ustar_split(name: &str) -> Option<(&str, &str)> {
    if !name.is_ascii() {
        return None;
    }
    if name.len() <= 100 {
        return Some(("", name));
    }
    // Shortest prefix that leaves a non-empty name of at most 100 bytes.
    let body = name.strip_suffix('/').unwrap_or(name);
    for (i, b) in body.bytes().enumerate() {
        if b != b'/' {
            continue;
        }
        let (prefix, rest) = (&name[..i], &name[i + 1..]);
        if rest.len() <= 100 {
            return (prefix.len() <= 155).then_some((prefix, rest));
        }
    }
    None
}

/// One PAX record: "<len> <key>=<value>\n", where len counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while base + len.to_string().len() != len {
        len = base + len.to_string().len();
    }
    let mut rec = format!("{len} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    debug_assert_eq!(rec.len(), len);
    rec
}

fn headers(
    name: &str,
    typeflag: u8,
    mode: u32,
    size: u64,
    link: &str,
    epoch: u64,
) -> Result<Vec<u8>> {
    if epoch > USTAR_MAX_SIZE {
        return Err(LayersError::format(
            "tar header",
            format!("epoch {epoch} does not fit the ustar mtime field"),
        ));
    }
    let mut pax: Vec<u8> = Vec::new();
    let link_fits = link.is_ascii() && link.len() <= 100;
    if !link_fits {
        pax.extend(pax_record("linkpath", link.as_bytes()));
    }
    let split = ustar_split(name);
    if split.is_none() {
        pax.extend(pax_record("path", name.as_bytes()));
    }
    if size > USTAR_MAX_SIZE {
        pax.extend(pax_record("size", size.to_string().as_bytes()));
    }
    let mut out = Vec::with_capacity(BLOCK * 3);
    if !pax.is_empty() {
        let ext = ustar_block(("", PAX_NAME), b'x', 0o644, pax.len() as u64, "", epoch);
        out.extend_from_slice(&ext);
        out.extend_from_slice(&pax);
        out.resize(out.len() + padding(pax.len() as u64), 0);
    }
    // Fallback values when PAX carries the real ones: truncated, deterministic.
    let (prefix, short) = split.unwrap_or(("", truncate(name, 100)));
    let link = if link_fits { link } else { truncate(link, 100) };
    let size = size.min(USTAR_MAX_SIZE);
    out.extend_from_slice(&ustar_block(
        (prefix, short),
        typeflag,
        mode,
        size,
        link,
        epoch,
    ));
    Ok(out)
}

/// Longest prefix of `s` of at most `n` bytes that ends on a char boundary.
fn truncate(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn put_octal(block: &mut [u8], start: usize, width: usize, value: u64) {
    let digits = format!("{value:0w$o}", w = width - 1);
    block[start..start + width - 1].copy_from_slice(digits.as_bytes());
    block[start + width - 1] = 0;
}

fn ustar_block(
    (prefix, name): (&str, &str),
    typeflag: u8,
    mode: u32,
    size: u64,
    link: &str,
    epoch: u64,
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name.as_bytes());
    put_octal(&mut b, 100, 8, u64::from(mode));
    put_octal(&mut b, 108, 8, 0);
    put_octal(&mut b, 116, 8, 0);
    put_octal(&mut b, 124, 12, size);
    put_octal(&mut b, 136, 12, epoch);
    b[156] = typeflag;
    b[157..157 + link.len()].copy_from_slice(link.as_bytes());
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    b[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    // The checksum is computed with its own field read as spaces.
    b[148..156].fill(b' ');
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let digits = format!("{sum:06o}");
    b[148..154].copy_from_slice(digits.as_bytes());
    b[154] = 0;
    b[155] = b' ';
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Sha256Digest;
    use std::io::Read;

    fn file(path: &str, size: u64) -> TreeEntry {
        TreeEntry {
            path: path.into(),
            kind: EntryKind::File {
                size,
                sha256: Sha256Digest::of_bytes(b""),
                executable: false,
            },
        }
    }

    fn field(b: &[u8], start: usize, len: usize) -> &str {
        let f = &b[start..start + len];
        let end = f.iter().position(|&x| x == 0).unwrap_or(len);
        std::str::from_utf8(&f[..end]).unwrap()
    }

    fn checksum_ok(b: &[u8]) -> bool {
        let mut c = b[..BLOCK].to_vec();
        c[148..156].fill(b' ');
        let sum: u32 = c.iter().map(|&x| u32::from(x)).sum();
        field(b, 148, 8).trim() == format!("{sum:06o}")
    }

    /// Reads back one header with the `tar` crate (an independent parser).
    fn parse_back(hdr: &[u8], data: &[u8]) -> (Vec<u8>, Option<Vec<u8>>, u64, u32, u8) {
        let mut bytes = hdr.to_vec();
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len() + padding(data.len() as u64), 0);
        bytes.extend_from_slice(&END_OF_ARCHIVE);
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut entries = ar.entries().unwrap();
        let mut e = entries.next().unwrap().unwrap();
        let path = e.path_bytes().into_owned();
        let link = e.link_name_bytes().map(|l| l.into_owned());
        let h = e.header().clone();
        let mut content = Vec::new();
        e.read_to_end(&mut content).unwrap();
        assert_eq!(content, data);
        drop(e);
        assert!(entries.next().is_none());
        (
            path,
            link,
            h.mtime().unwrap(),
            h.mode().unwrap(),
            h.entry_type().as_byte(),
        )
    }

    #[test]
    fn padding_table() {
        for (size, pad) in [(0, 0), (1, 511), (511, 1), (512, 0), (513, 511), (1024, 0)] {
            assert_eq!(padding(size), pad, "{size}");
        }
    }

    #[test]
    fn header_table() {
        let long_dir = "d".repeat(50);
        let n100 = "n".repeat(100);
        let n101 = "n".repeat(101);
        let split_ok = format!("{}/{}", "p".repeat(150), "n".repeat(99));
        let prefix_too_long = format!("{}/{}", "p".repeat(156), "n".repeat(10));
        let many = format!("{long_dir}/{long_dir}/{long_dir}/{long_dir}/x");
        // (path, kind, expected block count, whether PAX is used)
        let cases: Vec<(TreeEntry, usize, bool)> = vec![
            (file("a.txt", 5), 1, false),
            (file(&n100, 0), 1, false),
            (file(&n101, 0), 3, true),
            (file(&split_ok, 0), 1, false),
            (file(&prefix_too_long, 0), 3, true),
            (file(&many, 0), 1, false),
            (file("héllo/wörld", 1), 3, true),
            (
                TreeEntry {
                    path: "dir".into(),
                    kind: EntryKind::Dir,
                },
                1,
                false,
            ),
            (
                TreeEntry {
                    path: n100.clone(),
                    kind: EntryKind::Dir,
                },
                3,
                true,
            ),
            (
                TreeEntry {
                    path: "bin/py".into(),
                    kind: EntryKind::Symlink {
                        target: "t".repeat(100),
                    },
                },
                1,
                false,
            ),
            (
                TreeEntry {
                    path: "bin/py".into(),
                    kind: EntryKind::Symlink {
                        target: "t".repeat(101),
                    },
                },
                3,
                true,
            ),
            (
                TreeEntry {
                    path: "bin/py".into(),
                    kind: EntryKind::Symlink {
                        target: "ü".into()
                    },
                },
                3,
                true,
            ),
        ];
        for (entry, blocks, pax) in cases {
            let h = entry_header(&entry, 1_700_000_000).unwrap();
            assert_eq!(h.len(), blocks * BLOCK, "{}", entry.path);
            assert_eq!(h[156] == b'x', pax, "{}", entry.path);
            for blk in h.chunks(BLOCK).step_by(2) {
                assert!(checksum_ok(blk), "{}", entry.path);
                assert_eq!(&blk[257..265], b"ustar\x0000");
                assert_eq!(field(blk, 108, 8), "0000000");
                assert_eq!(field(blk, 116, 8), "0000000");
                assert_eq!(field(blk, 265, 32), "");
                assert_eq!(field(blk, 297, 32), "");
                assert_eq!(field(blk, 136, 12), format!("{:011o}", 1_700_000_000));
            }
            if pax {
                assert_eq!(field(&h, 0, 100), "PaxHeader");
            }
            let size = match entry.kind {
                EntryKind::File { size, .. } => size as usize,
                _ => 0,
            };
            let data = vec![b'z'; size];
            let (path, link, mtime, mode, ty) = parse_back(&h, &data);
            let want_path = if entry.is_dir() {
                format!("{}/", entry.path)
            } else {
                entry.path.clone()
            };
            assert_eq!(path, want_path.as_bytes());
            assert_eq!(mtime, 1_700_000_000);
            assert_eq!(mode, entry.mode());
            match &entry.kind {
                EntryKind::Symlink { target } => {
                    assert_eq!(ty, b'2');
                    assert_eq!(link.unwrap(), target.as_bytes());
                }
                EntryKind::Dir => assert_eq!(ty, b'5'),
                EntryKind::File { .. } => assert_eq!(ty, b'0'),
            }
        }
    }

    #[test]
    fn exact_bytes_of_a_simple_header() {
        let h = entry_header(&file("a", 5), 0).unwrap();
        assert_eq!(field(&h, 0, 100), "a");
        assert_eq!(field(&h, 100, 8), "0000644");
        assert_eq!(field(&h, 124, 12), "00000000005");
        // Same checksum as Python's tarfile gives for this header in USTAR_FORMAT.
        assert_eq!(&h[148..156], b"006103\0 ");
        assert!(h[329..345].iter().all(|&x| x == 0));
        assert_eq!(h[156], b'0');
    }

    #[test]
    fn pax_record_lengths_self_consistent() {
        for n in [0usize, 1, 5, 90, 94, 95, 96, 990, 995, 1000] {
            let v = vec![b'v'; n];
            let r = pax_record("path", &v);
            let (len, _) = std::str::from_utf8(&r).unwrap().split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), r.len(), "{n}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert!(entry_header(&file("../x", 0), 0).is_err());
        assert!(entry_header(&file("/x", 0), 0).is_err());
        let bad_link = TreeEntry {
            path: "l".into(),
            kind: EntryKind::Symlink {
                target: "/etc".into(),
            },
        };
        assert!(entry_header(&bad_link, 0).is_err());
        assert!(file_header("x", 0, 0o4755, 0).is_err());
        assert!(entry_header(&file("x", 0), 1 << 40).is_err());
    }

    #[test]
    fn huge_size_goes_to_pax() {
        let h = file_header("big", 1 << 40, 0o644, 0).unwrap();
        assert_eq!(h[156], b'x');
        assert!(String::from_utf8_lossy(&h[BLOCK..2 * BLOCK]).contains(" size=1099511627776\n"));
    }
}
