//! `envpack audit` of a lock's Conan recipes from remotes: each still the remote's latest
//! revision (else the lock is stale) and its pinned revision still served with the lock's
//! files.

use envpack_net::HttpClient;

use super::report::AuditReport;
use crate::conan_recipes::{latest_revision, revision_files, RecipeRef};
use crate::lock::Lock;

/// Asks each recipe's remote about the revision the lock pins.
pub fn audit_remote_recipes(lock: &Lock, http: &HttpClient) -> AuditReport {
    let mut r = AuditReport::new("conan remotes");
    for recipe in &lock.conan_recipes {
        let Some(remote) = &recipe.remote else {
            continue;
        };
        r.checked += 1;
        let item = format!("conan recipe {} from remote {remote}", recipe.pinned());
        let Some(url) = lock
            .conan_remotes
            .iter()
            .find(|x| &x.name == remote)
            .map(|x| x.url.as_str())
        else {
            r.find(item, "the lock pins no remote of that name");
            continue;
        };
        let parsed = match RecipeRef::parse(&recipe.reference) {
            Ok(p) => p,
            Err(e) => {
                r.find(item, e);
                continue;
            }
        };
        match latest_revision(http, url, &parsed) {
            Ok(latest) if latest != recipe.revision => r.find(
                item.clone(),
                format!(
                    "the remote's latest revision is now {latest}: the lock is stale; re-run `envpack lock` to move to it"
                ),
            ),
            Ok(_) => {}
            Err(e) => r.find(item.clone(), format!("{e:#}")),
        }
        match revision_files(http, url, &parsed, &recipe.revision) {
            Ok(files) if files != recipe.files => r.find(
                item,
                "the remote serves other files for the pinned revision than the lock holds",
            ),
            Ok(_) => {}
            Err(e) => r.find(item, format!("the pinned revision: {e:#}")),
        }
    }
    r
}
