//! Reading the two trees and the wheels for the differential test.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use envpack_pypkg::parse_entry_points;
use envpack_pypkg::{Layout, Platform};

/// One file of a tree.
#[derive(Debug)]
pub struct File {
    /// Its bytes.
    pub data: Vec<u8>,
    /// Its permission bits.
    pub mode: u32,
}

/// Files by relative path.
pub type Tree = BTreeMap<String, File>;

/// Every file under `root` by `/`-separated relative path (links are not expected at all).
pub fn walk(root: &Path) -> Tree {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Tree::new();
    for e in walkdir::WalkDir::new(root) {
        let e = e.unwrap();
        let ft = e.file_type();
        assert!(!ft.is_symlink(), "link {}", e.path().display());
        if ft.is_file() {
            let rel = e.path().strip_prefix(root).unwrap();
            let rel = rel.to_str().unwrap().replace('\\', "/");
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            let data = fs_err::read(e.path()).unwrap();
            out.insert(rel, File { data, mode });
        }
    }
    out
}

/// `..` and `.` resolved in a `/`-separated relative path.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(p),
        }
    }
    parts.join("/")
}

/// Where an env-relative envpack path is in a `pip --target` dir: site-packages is the top,
/// the scripts dir is `bin/`, headers are under `include/python/<project>/`, other `.data/data`
/// files are relative to the top (pip's home scheme, whose `lib/python` becomes the top).
pub fn to_pip_namespace(platform: &Platform, path: &str) -> String {
    let site = format!("{}/", platform.site_packages(11));
    let scripts = format!("{}/", platform.scripts_dir());
    let headers = match platform.layout {
        Layout::Unix => "python/include/site/python3.11/",
        Layout::Windows => "python/Include/site/",
    };
    if let Some(rest) = path.strip_prefix(&site) {
        rest.to_string()
    } else if let Some(rest) = path.strip_prefix(&scripts) {
        format!("bin/{rest}")
    } else if let Some(rest) = path.strip_prefix(headers) {
        format!("include/python/{rest}")
    } else {
        path.strip_prefix("python/").unwrap_or(path).to_string()
    }
}

/// What the comparison needs to know about a wheel beyond what got installed.
pub struct WheelFacts {
    /// The `.dist-info` dir name.
    pub dist_info: String,
    /// Console and GUI entry point names.
    pub entry_points: Vec<(String, String, String)>,
    /// `.data/scripts` files whose first line is `#!python…`: name and wheel bytes.
    pub python_scripts: BTreeMap<String, Vec<u8>>,
}

/// The facts of the wheel at `path`, whose `.dist-info` is the top-level dir holding `WHEEL`.
pub fn wheel_facts(path: &Path) -> WheelFacts {
    let mut z = zip::ZipArchive::new(fs_err::File::open(path).unwrap()).unwrap();
    let dist_info = z
        .file_names()
        .filter_map(|n| n.strip_suffix("/WHEEL"))
        .find(|d| d.ends_with(".dist-info") && !d.contains('/'))
        .unwrap_or_else(|| panic!("no .dist-info/WHEEL in {}", path.display()))
        .to_string();
    let dist_info = dist_info.as_str();
    let data_scripts = format!("{}.data/scripts/", dist_info.trim_end_matches(".dist-info"));
    let mut entry_points = Vec::new();
    let mut python_scripts = BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let name = f.name().to_string();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        if name == format!("{dist_info}/entry_points.txt") {
            let eps = parse_entry_points(std::str::from_utf8(&data).unwrap()).unwrap();
            for ep in eps.console.into_iter().chain(eps.gui) {
                entry_points.push((ep.name, ep.module, ep.attr));
            }
        } else if let Some(script) = name.strip_prefix(&data_scripts) {
            if data.starts_with(b"#!python") {
                python_scripts.insert(script.to_string(), data);
            }
        }
    }
    WheelFacts {
        dist_info: dist_info.to_string(),
        entry_points,
        python_scripts,
    }
}
