//! The bundle's text files, as pure functions: PEP 503 pages for its `simple/` index, the
//! `SHA256SUMS` lists, and the name checks that keep every path a lock names inside the bundle.
//!
//! The pages are written by hand (a few lines of HTML) rather than by a template crate: they
//! must be byte-stable so two bundles of one lock are identical.

use envpack_layers::digest::Sha256Digest;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Characters left as they are in a link's path: what file names on an index use.
const HREF_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~')
    .remove(b'+')
    .remove(b'!');

/// A name the lock gives for a file or directory of the bundle: one plain path component.
pub fn check_component(what: &str, name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.len() > 255
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || c == ':' || c.is_control());
    if bad {
        return Err(format!(
            "{what} \"{}\" is not a plain file name (no separators, `..`, drive letters or control characters)",
            name.escape_debug()
        ));
    }
    Ok(())
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `simple/index.html`: one link per project, in the order given (sorted by the caller).
pub fn root_page(projects: &[&str]) -> String {
    let mut out = page_head("Simple index");
    for p in projects {
        let href = utf8_percent_encode(p, HREF_KEEP);
        out.push_str(&format!(
            "<a href=\"{href}/\">{}</a><br/>\n",
            escape_html(p)
        ));
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// `simple/<project>/index.html`: the project's files, linked to `../../files/` with their
/// sha256 as the URL fragment PEP 503 describes.
pub fn project_page(project: &str, files: &[(&str, Sha256Digest)]) -> String {
    let mut out = page_head(&format!("Links for {project}"));
    for (name, sha) in files {
        let href = utf8_percent_encode(name, HREF_KEEP);
        out.push_str(&format!(
            "<a href=\"../../files/{href}#sha256={}\">{}</a><br/>\n",
            sha.to_hex(),
            escape_html(name)
        ));
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn page_head(title: &str) -> String {
    let title = escape_html(title);
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.0\">\n<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n"
    )
}

/// `sha256sum`-style lines (`<hex>  <path>`), sorted by path, as `sha256sum -c` reads them.
pub fn sha256sums<'a>(entries: impl IntoIterator<Item = (&'a str, Sha256Digest)>) -> String {
    let mut lines: Vec<(&str, Sha256Digest)> = entries.into_iter().collect();
    lines.sort_by(|a, b| a.0.cmp(b.0));
    lines
        .iter()
        .map(|(path, sha)| format!("{}  {path}\n", sha.to_hex()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(byte: u8) -> Sha256Digest {
        Sha256Digest::from_hex(&format!("{byte:02x}").repeat(32)).unwrap()
    }

    #[test]
    fn plain_names_pass_and_paths_do_not() {
        for ok in [
            "conan-2.21.0.tar.gz",
            "cpython-3.11.7+envpack1-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz",
            "envpack1",
            "a..b",
        ] {
            assert_eq!(check_component("file", ok), Ok(()), "{ok}");
        }
        for bad in [
            "", ".", "..", "../x", "a/b", "a\\b", "C:x", "x\0", "x\ny", "/etc",
        ] {
            let err = check_component("file", bad).unwrap_err();
            assert!(err.starts_with("file "), "{bad:?}: {err}");
        }
        assert!(check_component("file", &"a".repeat(256)).is_err());
    }

    #[test]
    fn project_pages_link_into_files_with_the_hash() {
        let page = project_page(
            "conan",
            &[("conan-2.21.0.tar.gz", sha(1)), ("x+local&<y>.whl", sha(2))],
        );
        let want = format!(
            "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.0\">\n<title>Links for conan</title>\n</head>\n<body>\n<h1>Links for conan</h1>\n\
             <a href=\"../../files/conan-2.21.0.tar.gz#sha256={}\">conan-2.21.0.tar.gz</a><br/>\n\
             <a href=\"../../files/x+local%26%3Cy%3E.whl#sha256={}\">x+local&amp;&lt;y&gt;.whl</a><br/>\n\
             </body>\n</html>\n",
            "01".repeat(32),
            "02".repeat(32)
        );
        assert_eq!(page, want);
    }

    #[test]
    fn the_root_page_lists_projects_as_directories() {
        let page = root_page(&["conan", "patch-ng"]);
        assert!(page.contains("<title>Simple index</title>"), "{page}");
        assert!(
            page.contains(
                "<a href=\"conan/\">conan</a><br/>\n<a href=\"patch-ng/\">patch-ng</a><br/>\n"
            ),
            "{page}"
        );
    }

    #[test]
    fn sums_are_sorted_by_path() {
        let text = sha256sums([("b/x", sha(2)), ("a", sha(1))]);
        assert_eq!(
            text,
            format!("{}  a\n{}  b/x\n", "01".repeat(32), "02".repeat(32))
        );
    }
}
