//! `[conan] recipes` and `sources`: the Conan content an env carries besides its home.

use serde::Deserialize;

/// A Conan recipe (or `python_requires` package) carried in the env.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecipeSpec {
    /// `name/version[@user/channel]`; `envpack lock` pins its revision.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The recipe's folder (holding `conanfile.py`), relative to the spec's directory.
    #[serde(default)]
    pub path: Option<String>,
    /// Or: the `[conan] remotes` entry `envpack lock` downloads its latest revision from.
    #[serde(default)]
    pub remote: Option<String>,
}

/// An upstream source archive a recipe downloads, served to Conan offline by its sha256.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Where `lock` and `build` fetch it (`https://`, `http://` or `file://`).
    pub url: String,
    /// Its sha256, checked at `lock` when given (pinned from the download otherwise).
    #[serde(default)]
    pub sha256: Option<String>,
}
