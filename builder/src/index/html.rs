//! PEP 503 HTML project pages (with PEP 592 yanks, PEP 658/714 metadata, PEP 503 requires-python).

use url::Url;

use super::{parse_sha256_hex, IndexFile};

/// Replaces the HTML character references that occur in attribute values and link text.
pub fn html_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let decoded = after.find(';').filter(|&end| end <= 10).and_then(|end| {
            let ent = &after[..end];
            let ch = match ent {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => ent
                    .strip_prefix("#x")
                    .or_else(|| ent.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            ch.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A start tag: lowercased name and (lowercased name, unescaped value) attributes.
#[derive(Debug, PartialEq, Eq)]
struct Tag {
    name: String,
    attrs: Vec<(String, Option<String>)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<Option<&str>> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }
}

/// Parses the inside of `<...>` (without the brackets).
fn parse_tag(inner: &str) -> Option<Tag> {
    let b = inner.as_bytes();
    let mut i = 0;
    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'/' {
        i += 1;
    }
    let name = inner[..i].to_ascii_lowercase();
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let mut attrs = Vec::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        let aname = inner[start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let value = if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                let ve = inner[vs..]
                    .bytes()
                    .position(|c| c == q)
                    .map_or(b.len(), |p| vs + p);
                i = (ve + 1).min(b.len());
                &inner[vs..ve]
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                &inner[vs..i]
            };
            attrs.push((aname, Some(html_unescape(value))));
        } else {
            attrs.push((aname, None));
        }
    }
    Some(Tag { name, attrs })
}

/// The last path segment of a URL, percent-decoded.
pub(super) fn url_filename(url: &Url) -> Option<String> {
    let last = url.path_segments()?.next_back()?;
    let decoded: Vec<u8> = percent_decode(last);
    String::from_utf8(decoded).ok().filter(|s| !s.is_empty())
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// `Some(hash?)` when a PEP 658/714 metadata attribute announces a `.metadata` file.
fn metadata_attr(v: Option<&str>) -> Option<Option<envpack_layers::digest::Sha256Digest>> {
    match v {
        None => Some(None),
        Some(s) if s.eq_ignore_ascii_case("false") => None,
        Some(s) => Some(s.strip_prefix("sha256=").and_then(parse_sha256_hex)),
    }
}

/// Parses a project page fetched from `page_url` into its distribution files.
pub fn parse_project_html(page_url: &Url, html: &str) -> Vec<IndexFile> {
    let mut base = page_url.clone();
    let mut files = Vec::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        if rest.starts_with("!--") {
            rest = rest.find("-->").map_or("", |e| &rest[e + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        let Some(tag) = parse_tag(&rest[..gt]) else {
            continue;
        };
        rest = &rest[gt + 1..];
        let href = tag.attr("href").flatten();
        if tag.name == "base" {
            if let Some(b) = href.and_then(|h| base.join(h).ok()) {
                base = b;
            }
            continue;
        }
        if tag.name != "a" {
            continue;
        }
        let Some(mut url) = href.and_then(|h| base.join(h).ok()) else {
            continue;
        };
        let sha256 = url
            .fragment()
            .and_then(|f| f.strip_prefix("sha256="))
            .and_then(parse_sha256_hex);
        url.set_fragment(None);
        let Some(filename) = url_filename(&url) else {
            continue;
        };
        let metadata_sha256 = match tag.attr("data-core-metadata") {
            Some(v) => metadata_attr(v),
            None => tag.attr("data-dist-info-metadata").and_then(metadata_attr),
        };
        files.push(IndexFile {
            filename,
            url,
            sha256,
            size: None,
            requires_python: tag
                .attr("data-requires-python")
                .flatten()
                .map(str::to_string)
                .filter(|s| !s.trim().is_empty()),
            yanked: tag.attr("data-yanked").map(|v| v.unwrap_or("").to_string()),
            metadata_sha256,
        });
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use envpack_layers::digest::Sha256Digest;

    const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn unescape_table() {
        for (raw, want) in [
            ("&gt;=3.8", ">=3.8"),
            ("a&amp;b", "a&b"),
            ("&#60;&#x3E;&quot;&#39;", "<>\"'"),
            ("R&D", "R&D"),
            ("&unknown;", "&unknown;"),
            ("&", "&"),
        ] {
            assert_eq!(html_unescape(raw), want, "{raw}");
        }
    }

    #[test]
    fn parses_links_and_attributes() {
        let page = Url::parse("http://127.0.0.1:8000/simple/demo/").unwrap();
        let html = format!(
            r#"<!DOCTYPE html><html><body><!-- <a href="commented-1.0.tar.gz">x</a> -->
<h1>Links for demo</h1>
<a href="../../files/demo-1.0-py3-none-any.whl#sha256={H1}" data-requires-python="&gt;=3.8" data-core-metadata="sha256={H2}">demo-1.0-py3-none-any.whl</a><br/>
<A HREF='demo-0.9.tar.gz#md5=abc' data-yanked="broken &amp; bad">demo-0.9.tar.gz</A>
<a href="https://files.example/x/demo%2B-0.8.zip" data-yanked data-dist-info-metadata="true">z</a>
<a href="demo-0.7.tar.gz" data-requires-python="" data-core-metadata="false">w</a>
</body></html>"#
        );
        let files = parse_project_html(&page, &html);
        assert_eq!(files.len(), 4, "{files:?}");
        let f = &files[0];
        assert_eq!(f.filename, "demo-1.0-py3-none-any.whl");
        assert_eq!(
            f.url.as_str(),
            "http://127.0.0.1:8000/files/demo-1.0-py3-none-any.whl"
        );
        assert_eq!(f.sha256, Some(Sha256Digest::from_hex(H1).unwrap()));
        assert_eq!(f.requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(
            f.metadata_sha256,
            Some(Some(Sha256Digest::from_hex(H2).unwrap()))
        );
        assert_eq!(f.yanked, None);
        let f = &files[1];
        assert_eq!((f.filename.as_str(), f.sha256), ("demo-0.9.tar.gz", None));
        assert_eq!(
            f.url.as_str(),
            "http://127.0.0.1:8000/simple/demo/demo-0.9.tar.gz"
        );
        assert_eq!(f.yanked.as_deref(), Some("broken & bad"));
        assert_eq!(f.metadata_sha256, None);
        let f = &files[2];
        assert_eq!(f.filename, "demo+-0.8.zip");
        assert_eq!(
            (f.yanked.as_deref(), f.metadata_sha256),
            (Some(""), Some(None))
        );
        let f = &files[3];
        assert_eq!(
            (f.requires_python.as_deref(), f.metadata_sha256),
            (None, None)
        );
    }

    #[test]
    fn base_tag_and_garbage() {
        let page = Url::parse("http://h/simple/p/").unwrap();
        let files = parse_project_html(
            &page,
            r#"<base href="http://mirror/pkgs/"><a href="p-1.tar.gz">p</a><a>no href</a><a href="">"#,
        );
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].url.as_str(), "http://mirror/pkgs/p-1.tar.gz");
        assert!(parse_project_html(&page, "<<<>>> < a href=").is_empty());
    }
}
