//! Answering a registry's auth challenges: Basic with the credentials, Bearer with a token
//! from the challenge's token service (itself retried like every request).

use reqwest::Method;
use url::Url;

use super::challenge::Challenge;
use super::client::{error_body, read_limited, RegistryClient};
use crate::error::{OciError, Result};

impl RegistryClient {
    /// Answers a challenge: Basic sends the credentials, Bearer fetches a token.
    pub(super) fn authorize(&self, ch: &Challenge, method: &Method, url: &Url) -> Result<()> {
        let value = match ch.scheme.as_str() {
            "basic" => match &self.credentials {
                Some(c) => c.basic_header(),
                None => {
                    return Err(OciError::Unauthorized {
                        method: method.to_string(),
                        url: url.to_string(),
                        status: 401,
                        hint: self.no_credentials_hint(),
                    })
                }
            },
            "bearer" => format!("Bearer {}", self.fetch_token(ch)?),
            other => {
                return Err(OciError::Protocol {
                    what: format!("authenticating to {}", self.registry),
                    detail: format!(
                        "unsupported auth scheme \"{}\"",
                        envpack_layers::shown_name(other)
                    ),
                })
            }
        };
        if let Ok(mut g) = self.authorization.lock() {
            *g = Some(value);
        }
        Ok(())
    }

    fn fetch_token(&self, ch: &Challenge) -> Result<String> {
        let realm = ch.params.get("realm").ok_or_else(|| OciError::Protocol {
            what: format!("authenticating to {}", self.registry),
            detail: "Bearer challenge without realm".into(),
        })?;
        let mut url = Url::parse(realm).map_err(|e| OciError::Protocol {
            what: format!("authenticating to {}", self.registry),
            detail: format!(
                "bad token realm \"{}\": {e}",
                envpack_layers::shown_name(realm)
            ),
        })?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = ch.params.get("service") {
                q.append_pair("service", s);
            }
            let mut scopes: Vec<&str> = Vec::new();
            if let Some(s) = ch.params.get("scope") {
                scopes.extend(s.split(' '));
            }
            scopes.extend(self.extra_scopes.iter().map(String::as_str));
            scopes.dedup();
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let what = format!("GET {url}");
        let token = self.retry.run(&what, |_| {
            let mut resp = self.get(&url, self.credentials.as_ref().map(|c| c.basic_header()))?;
            let status = resp.status().as_u16();
            if status == 401 || status == 403 {
                return Err(OciError::Unauthorized {
                    method: "GET".into(),
                    url: url.to_string(),
                    status,
                    hint: format!(
                        "; the token service refused the credentials for {}",
                        self.registry
                    ),
                });
            }
            if status != 200 {
                return Err(OciError::Status {
                    method: "GET".into(),
                    url: url.to_string(),
                    status,
                    body: error_body(&mut resp),
                });
            }
            let bytes = read_limited(&mut resp, 1 << 20, url.as_str())?;
            let v: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| OciError::Protocol {
                    what: format!("GET {url}"),
                    detail: format!("token response is not JSON: {e}"),
                })?;
            v.get("token")
                .or_else(|| v.get("access_token"))
                .and_then(|t| t.as_str())
                .map(str::to_string)
                .ok_or_else(|| OciError::Protocol {
                    what: format!("GET {url}"),
                    detail: "token response without token".into(),
                })
        })?;
        Ok(token)
    }
}
