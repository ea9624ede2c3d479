//! Where a value sits in a TOML document, so a problem found after parsing (an unknown
//! platform, a missing profile file) is reported at its line and column like a syntax error.
//!
//! serde's derive loses positions once a document is typed; rather than wrapping every spec
//! field in `Spanned`, the text is parsed a second time into toml's span-keeping tree, only
//! when there is an error to place.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One step of a path into a document: a table key or an array index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Key<'a> {
    /// A key of a table (dotted keys and `[headers]` are tables too).
    Name(&'a str),
    /// An element of an array.
    Index(usize),
}

/// 1-based line and column of the value at `path` in `text`, or of the deepest part of the
/// path that exists; `None` when not even the first step does (or the text doesn't parse).
pub fn place(text: &str, path: &[Key]) -> Option<(usize, usize)> {
    let root = DeTable::parse(text).ok()?;
    let span = walk(root.get_ref(), path)?;
    Some(line_col(text, span.start))
}

fn walk(table: &DeTable, path: &[Key]) -> Option<Range<usize>> {
    let (first, rest) = path.split_first()?;
    let Key::Name(name) = first else {
        return None;
    };
    let (key, value) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *name)?;
    Some(descend(value, rest).unwrap_or_else(|| {
        // A `[header]` table's own span is not where anyone looks; its key is.
        if matches!(value.get_ref(), DeValue::Table(_)) && !rest.is_empty() {
            key.span()
        } else {
            value.span()
        }
    }))
}

fn descend(value: &Spanned<DeValue>, path: &[Key]) -> Option<Range<usize>> {
    match (value.get_ref(), path.first()) {
        (_, None) => Some(value.span()),
        (DeValue::Table(t), Some(Key::Name(_))) => walk(t, path),
        (DeValue::Array(a), Some(Key::Index(i))) => {
            let item = a.get(*i)?;
            Some(descend(item, &path[1..]).unwrap_or_else(|| item.span()))
        }
        _ => None,
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(1, |l| l.chars().count() + 1);
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Key::{Index as I, Name as N};

    const DOC: &str = "[env]\nname = \"x\"\nplatforms = [\"linux-x86_64\", \"plan9\"]\n\n\
[conan]\nprofiles = { default = \"p/a\", msvc = { windows-x86_64 = \"p/m\" } }\n\n\
[platforms.linux-x86_64]\nglibc = \"2.28\"\n";

    #[test]
    fn places_values_by_path() {
        type Case<'a> = (&'a [Key<'a>], Option<(usize, usize)>);
        let cases: &[Case] = &[
            (&[N("env"), N("name")], Some((2, 8))),
            (&[N("env"), N("platforms"), I(1)], Some((3, 30))),
            (&[N("env"), N("platforms")], Some((3, 13))),
            (&[N("conan"), N("profiles"), N("default")], Some((6, 24))),
            (
                &[N("conan"), N("profiles"), N("msvc"), N("windows-x86_64")],
                Some((6, 57)),
            ),
            // The deepest step that exists: the array itself, the header's key.
            (&[N("env"), N("platforms"), I(7)], Some((3, 13))),
            (
                &[N("platforms"), N("linux-x86_64"), N("nope")],
                Some((8, 12)),
            ),
            (&[N("nope")], None),
            (&[], None),
        ];
        for (path, want) in cases {
            assert_eq!(place(DOC, path), *want, "{path:?}");
        }
        assert_eq!(place("not [toml", &[N("env")]), None);
    }

    #[test]
    fn line_col_counts_characters_from_one() {
        let t = "a\nbé c\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 2), (2, 1));
        assert_eq!(line_col(t, 5), (2, 3));
        // Inside a character: its start; past the end: the end.
        assert_eq!(line_col(t, 4), (2, 2));
        assert_eq!(line_col(t, 99), (3, 1));
    }
}
