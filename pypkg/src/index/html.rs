//! PEP 503 HTML project pages (with PEP 592 yanks, PEP 658/714 metadata, PEP 503 requires-python).

use url::Url;

use super::{parse_sha256_hex, IndexFile};

/// The last path segment of a URL, percent-decoded.
pub(super) fn url_filename(url: &Url) -> Option<String> {
    let last = url.path_segments()?.next_back()?;
    percent_encoding::percent_decode_str(last)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
        .filter(|s| !s.is_empty())
}

/// `Some(hash?)` when a PEP 658/714 metadata attribute announces a `.metadata` file.
fn metadata_attr(v: &str) -> Option<Option<envpack_layers::digest::Sha256Digest>> {
    if v.eq_ignore_ascii_case("false") {
        return None;
    }
    Some(v.strip_prefix("sha256=").and_then(parse_sha256_hex))
}

/// Parses a project page fetched from `page_url` into its distribution files.
///
/// html5gum tokenizes the page as a browser would (comments, unquoted and single-quoted
/// attributes, names in any case, character references in attribute values); only `<base>`
/// and `<a>` start tags are read. A valueless attribute reads as empty, which PEP 592 and
/// PEP 714 treat as the bare attribute.
pub fn parse_project_html(page_url: &Url, html: &str) -> Vec<IndexFile> {
    let mut base = page_url.clone();
    let mut base_seen = false;
    let mut files = Vec::new();
    // Naive state switching makes `<script>`, `<style>`, `<textarea>`... raw text, as a browser
    // (and pip) reads them: an `<a>` written inside one is not a link.
    let mut emitter = html5gum::DefaultEmitter::default();
    emitter.naively_switch_states(true);
    for token in html5gum::Tokenizer::new_with_emitter(html, emitter) {
        let Ok(html5gum::Token::StartTag(tag)) = token else {
            continue;
        };
        let attr = |name: &str| {
            tag.attributes
                .get(name.as_bytes())
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let href = attr("href");
        if tag.name.as_slice() == b"base" {
            // Only the first `<base href>` sets the document's base URL (HTML), resolved
            // against the page's own.
            if !base_seen {
                if let Some(b) = href.and_then(|h| page_url.join(&h).ok()) {
                    base = b;
                    base_seen = true;
                }
            }
            continue;
        }
        if tag.name.as_slice() != b"a" {
            continue;
        }
        let Some(mut url) = href.and_then(|h| base.join(&h).ok()) else {
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
        let metadata_sha256 = match attr("data-core-metadata") {
            Some(v) => metadata_attr(&v),
            None => attr("data-dist-info-metadata").and_then(|v| metadata_attr(&v)),
        };
        files.push(IndexFile {
            filename,
            url,
            sha256,
            size: None,
            requires_python: attr("data-requires-python").filter(|s| !s.trim().is_empty()),
            yanked: attr("data-yanked"),
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

    /// The `data-yanked` reason of a one-link page whose attribute is written `raw`.
    fn yanked_as_read(raw: &str) -> Option<String> {
        let page = Url::parse("http://h/simple/p/").unwrap();
        let html = format!(r#"<a href="p-1.tar.gz" data-yanked="{raw}">p</a>"#);
        parse_project_html(&page, &html).remove(0).yanked
    }

    #[test]
    fn unescape_table() {
        for (raw, want) in [
            ("&gt;=3.8", ">=3.8"),
            ("a&amp;b", "a&b"),
            ("&#60;&#x3E;&quot;&#39;", "<>\"'"),
            ("R&D", "R&D"),
            ("&unknown;", "&unknown;"),
            ("&", "&"),
            ("&eacute;t&eacute; &#x1F600;", "\u{e9}t\u{e9} \u{1F600}"),
            ("&amp=x", "&amp=x"),
        ] {
            assert_eq!(yanked_as_read(raw).as_deref(), Some(want), "{raw}");
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
    fn tokenizer_cases() {
        let page = Url::parse("http://h/simple/p/").unwrap();
        let urls = |html: &str| -> Vec<String> {
            parse_project_html(&page, html)
                .into_iter()
                .map(|f| f.url.to_string())
                .collect()
        };
        for (html, want) in [
            (
                "<a href=p-1.tar.gz>x</a>",
                vec!["http://h/simple/p/p-1.tar.gz"],
            ),
            (
                "<a\n  HREF = \"p-1.tar.gz\"\n>x</a>",
                vec!["http://h/simple/p/p-1.tar.gz"],
            ),
            (
                "<a href=\" p-1.tar.gz \">",
                vec!["http://h/simple/p/p-1.tar.gz"],
            ),
            (
                "<a href=\"p-1.tar.gz?a=1&amp;b=2\">",
                vec!["http://h/simple/p/p-1.tar.gz?a=1&b=2"],
            ),
            (
                "<a href=\"p-1.tar.gz\" href=\"p-2.tar.gz\">",
                vec!["http://h/simple/p/p-1.tar.gz"],
            ),
            (
                "<!-- <a href=\"p-0.tar.gz\"> --><a href=\"p-1.tar.gz\">",
                vec!["http://h/simple/p/p-1.tar.gz"],
            ),
            (
                "<base href=\"/files/\"/><a href=\"p-1.tar.gz\"/>",
                vec!["http://h/files/p-1.tar.gz"],
            ),
            (
                "<abbr href=\"p-1.tar.gz\"><area href=\"p-2.tar.gz\">",
                vec![],
            ),
            ("</a href=\"p-1.tar.gz\">", vec![]),
            // Raw text, as a browser reads it: no links inside.
            (
                "<script>var s = '<a href=\"p-0.tar.gz\">';</script><a href=\"p-1.tar.gz\">",
                vec!["http://h/simple/p/p-1.tar.gz"],
            ),
            (
                "<style>a::after { content: '<a href=p-0.tar.gz>' }</style><textarea><a href=p-2.tar.gz></textarea>",
                vec![],
            ),
            // Only the first <base href> counts, and it is resolved against the page.
            (
                "<base href=\"/files/\"><base href=\"sub/\"><a href=\"p-1.tar.gz\">",
                vec!["http://h/files/p-1.tar.gz"],
            ),
            (
                "<base target=\"_top\"><base href=\"/files/\"><a href=\"p-1.tar.gz\">",
                vec!["http://h/files/p-1.tar.gz"],
            ),
        ] {
            assert_eq!(urls(html), want, "{html}");
        }
        let files = parse_project_html(
            &page,
            "<a href='p-1.tar.gz' DATA-YANKED Data-Requires-Python='&lt;4' data-core-metadata>",
        );
        assert_eq!(files[0].yanked.as_deref(), Some(""));
        assert_eq!(files[0].requires_python.as_deref(), Some("<4"));
        assert_eq!(files[0].metadata_sha256, Some(None));
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
