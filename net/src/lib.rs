//! The network stack and the download cache: blocking HTTP(S) and `file://` fetching with
//! bounded retries, resume by range and stall timeouts, the `--offline` guard, settings from
//! `ENVPACK_HTTP_*`, and the content-addressed cache every download lands in.

mod cache;
mod error;
mod http;
mod meter;
mod pool;
mod settings;

pub use cache::{Cache, CachedBlob};
pub use error::NetError;
/// Loopback servers for network tests: an HTTPS origin with a test CA, a counting proxy.
#[cfg(any(test, feature = "test-support"))]
pub use http::test_servers;
pub use http::{
    describe_error, is_certificate_error, is_proxy_refusal, Agent, DownloadSink, HttpClient,
    HttpConfig, HttpResponse, NoProxy, ProxyServer, ProxySettings, SendError, Timeouts, TrustRoots,
    DEFAULT_CONCURRENCY, MAX_REDIRECTS,
};
pub use meter::Meter;
pub use pool::{parallel_map, try_parallel_map, Memo, SingleFlight};
pub use settings::{http_config, http_config_from};
