//! Looking ahead of pubgrub. When a package's dependencies become known, their index pages are
//! fetched together, then the core metadata (PEP 658) of the version each would get. pubgrub
//! asks for them one at a time, and on a far index every ask would otherwise wait a round trip.
//!
//! The guesses go through the index's memos only. A wrong guess costs one request, never a
//! different result: the resolver still chooses and reads everything itself.

use std::collections::BTreeMap;

use envpack_layers::digest::Sha256Digest;
use envpack_net::parallel_map;
use pep440_rs::Version;
use pubgrub::Ranges;

use super::provider::{Pkg, Provider, MAX_METADATA_BYTES};
use crate::filename::PackageName;
use crate::index::{IndexFile, SimpleIndex};
use crate::metadata::{parse_core_metadata, CoreMetadata};
use crate::PypkgError;

impl Provider<'_, '_> {
    /// Fetches the pages of `deps` not seen yet, then the metadata of the wheel each would
    /// get within the ranges given here.
    pub(super) fn look_ahead(&self, deps: &[(Pkg, Ranges<Version>)]) {
        let mut ranges: BTreeMap<PackageName, Ranges<Version>> = BTreeMap::new();
        for (p, r) in deps {
            if let Pkg::Base(n) | Pkg::Extra(n, _) = p {
                let merged = match ranges.get(n) {
                    Some(have) => have.intersection(r),
                    None => r.clone(),
                };
                ranges.insert(n.clone(), merged);
            }
        }
        let index = self.resolver.index;
        let unseen: Vec<PackageName> = {
            let known = self.candidates.borrow();
            ranges
                .keys()
                .filter(|n| !known.contains_key(*n))
                .cloned()
                .collect()
        };
        index.prefetch(&unseen);
        let guesses: Vec<(IndexFile, Option<Sha256Digest>)> = ranges
            .iter()
            .filter_map(|(name, range)| self.guess(name, range))
            .filter(|(f, _)| index.cached_metadata(&f.url).is_none())
            .collect();
        if guesses.len() < 2 {
            return;
        }
        parallel_map(index.http().concurrency(), &guesses, |(file, expected)| {
            // A failure is left for the resolver's own ask to meet and report.
            if let Err(e) = index.metadata(&file.url, || pep658_metadata(index, file, *expected)) {
                tracing::debug!(file = %file.filename, error = %e, "looking ahead at metadata failed");
            }
        });
    }

    /// The wheel `name` would get within `range` if nothing narrowed it further, when the
    /// index serves its metadata alone (an sdist would have to be built, a wheel without
    /// PEP 658 metadata downloaded whole: neither is worth a guess).
    fn guess(
        &self,
        name: &PackageName,
        range: &Ranges<Version>,
    ) -> Option<(IndexFile, Option<Sha256Digest>)> {
        let all = self.candidates_unreported(name).ok()?;
        let (_, choice) = self.newest_fit(name, &all.usable, range)?;
        let expected = choice.file.metadata_sha256?;
        (choice.kind == super::DistKind::Wheel).then(|| (choice.file.clone(), expected))
    }
}

/// The PEP 658 metadata of `file`, checked against `expected` when the index gave a hash.
pub(super) fn pep658_metadata(
    index: &SimpleIndex,
    file: &IndexFile,
    expected: Option<Sha256Digest>,
) -> Result<CoreMetadata, PypkgError> {
    let url = file.metadata_url();
    let resp = index.http().get_bytes(&url, None, MAX_METADATA_BYTES)?;
    if let Some(expected) = expected {
        let actual = Sha256Digest::of_bytes(&resp.bytes);
        if actual != expected {
            return Err(PypkgError::MetadataDigestMismatch {
                url: Box::new(url),
                expected,
                actual,
            });
        }
    }
    parse_core_metadata(&resp.bytes).map_err(|source| PypkgError::Metadata {
        file: url.to_string(),
        source: Box::new(source),
    })
}

#[cfg(test)]
#[path = "lookahead_tests.rs"]
mod tests;
