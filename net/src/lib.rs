//! The network stack and the download cache: blocking HTTP(S) and `file://` fetching with
//! bounded retries, resume by range and stall timeouts, the `--offline` guard, settings from
//! `ENVPACK_HTTP_*`, and the content-addressed cache every download lands in.

mod cache;
mod error;
mod http;
mod settings;

pub use cache::{Cache, CachedBlob};
pub use error::NetError;
pub use http::{DownloadSink, HttpClient, HttpConfig, HttpResponse};
pub use settings::{http_config, http_config_from};
