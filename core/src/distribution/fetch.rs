//! Reading what an index names: `http(s)://` through the process's
//! [`HttpClient`] (with the `https` feature, a blocking `ureq` client with
//! timeouts, bounded redirects and size caps), `file://` and plain paths
//! offline.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
#[cfg(feature = "https")]
use std::time::Duration;

use parking_lot::RwLock;

use crate::error::{Error, Result};

/// What reads `http://` and `https://` locations for package indexes.
///
/// With the `https` feature (on by default) the core reads them itself
/// through `ureq` and rustls; an embedder can route them through its own
/// client instead (a proxy, credentials, the system's certificate store)
/// with [`set_http_client`]. The Python package builds the core without
/// `https` and reads through Python's `urllib`, so it honours the proxies
/// and certificates Python is set up with.
///
/// ```
/// use module_registry::distribution::{set_http_client, HttpClient, HttpError};
///
/// struct Offline;
/// impl HttpClient for Offline {
///     fn get(&self, url: &str, _limit: u64) -> Result<Vec<u8>, HttpError> {
///         Err(HttpError::Failed(format!("offline, not reading {url}")))
///     }
/// }
/// set_http_client(Some(std::sync::Arc::new(Offline)));
/// let err = module_registry::ModuleRegistry::new()
///     .package_index("https://packages.invalid/index.json")
///     .unwrap_err();
/// assert!(err.to_string().contains("offline"));
/// set_http_client(None);
/// ```
pub trait HttpClient: Send + Sync {
    /// The body of a `GET` of `url`, following redirects. A body longer
    /// than `limit` bytes is [`HttpError::TooLarge`]; a client may also
    /// return its first `limit + 1` bytes, which the caller refuses.
    fn get(&self, url: &str, limit: u64) -> std::result::Result<Vec<u8>, HttpError>;
}

/// Why an [`HttpClient`] read nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The body is longer than the limit asked for.
    TooLarge,
    /// Anything else: refused, unreachable, a status other than success,
    /// too many redirects, too slow. The text says which.
    Failed(String),
}

static HTTP_CLIENT: RwLock<Option<Arc<dyn HttpClient>>> = RwLock::new(None);

/// Routes every `http(s)://` read of this process through `client`
/// (`None`: back to the built-in one, or to none without `https`).
pub fn set_http_client(client: Option<Arc<dyn HttpClient>>) {
    *HTTP_CLIENT.write() = client;
}

/// The client set with [`set_http_client`], else the built-in one.
fn http_client() -> Option<Arc<dyn HttpClient>> {
    if let Some(client) = HTTP_CLIENT.read().clone() {
        return Some(client);
    }
    #[cfg(feature = "https")]
    {
        Some(Arc::new(Ureq))
    }
    #[cfg(not(feature = "https"))]
    {
        None
    }
}

/// The largest package index read.
pub const MAX_INDEX_BYTES: u64 = 16 * 1024 * 1024;
/// The largest file of a package read.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Redirects followed before giving up.
#[cfg(feature = "https")]
const MAX_REDIRECTS: u32 = 5;
#[cfg(feature = "https")]
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole of one request, body included.
#[cfg(feature = "https")]
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The built-in client: one blocking `ureq` agent per read, rustls with
/// the bundled web PKI roots.
#[cfg(feature = "https")]
struct Ureq;

#[cfg(feature = "https")]
impl HttpClient for Ureq {
    fn get(&self, url: &str, limit: u64) -> std::result::Result<Vec<u8>, HttpError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .max_redirects(MAX_REDIRECTS)
            .build()
            .into();
        let mut response = agent
            .get(url)
            .call()
            .map_err(|e| HttpError::Failed(e.to_string()))?;
        response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => HttpError::TooLarge,
                other => HttpError::Failed(other.to_string()),
            })
    }
}

/// Where a URL or path points: a URL, or a local file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    Http(String),
    File(PathBuf),
}

impl Location {
    /// `http(s)://...`, `file:///...`, or a path.
    pub(crate) fn parse(text: &str) -> Result<Location> {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Ok(Location::Http(text.to_string()));
        }
        if let Some(path) = text.strip_prefix("file://") {
            return Ok(Location::File(PathBuf::from(percent_decode(path))));
        }
        if lower.contains("://") {
            return Err(Error::Fetch {
                url: text.to_string(),
                reason: "only http://, https://, file:// and plain paths are read".into(),
            });
        }
        Ok(Location::File(PathBuf::from(text)))
    }

    /// `relative` (a URL or path an index names) resolved against this
    /// location (the index's), as Helm and pip resolve them.
    pub(crate) fn join(&self, relative: &str) -> Result<Location> {
        let lower = relative.to_ascii_lowercase();
        if lower.contains("://") {
            return Location::parse(relative);
        }
        match self {
            Location::File(index) => {
                let base = index.parent().unwrap_or(Path::new("."));
                Ok(Location::File(base.join(relative)))
            }
            Location::Http(index) => {
                let base = match index.rfind('/') {
                    Some(i) if i >= index.find("://").map_or(0, |j| j + 3) => &index[..=i],
                    _ => index.as_str(),
                };
                if relative.starts_with('/') {
                    let origin_end = index
                        .find("://")
                        .and_then(|j| index[j + 3..].find('/').map(|k| j + 3 + k))
                        .unwrap_or(index.len());
                    return Ok(Location::Http(format!(
                        "{}{relative}",
                        &index[..origin_end]
                    )));
                }
                Ok(Location::Http(format!("{base}{relative}")))
            }
        }
    }

    /// The location as text: the URL, or `file://` and the absolute path.
    pub(crate) fn url(&self) -> String {
        match self {
            Location::Http(url) => url.clone(),
            Location::File(path) => {
                let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                format!("file://{}", absolute.display())
            }
        }
    }

    /// Its bytes, at most `limit` of them.
    pub(crate) fn read(&self, limit: u64) -> Result<Vec<u8>> {
        let fail = |reason: String| Error::Fetch {
            url: self.url(),
            reason,
        };
        match self {
            Location::File(path) => {
                let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
                let mut bytes = Vec::new();
                file.take(limit + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| fail(e.to_string()))?;
                if bytes.len() as u64 > limit {
                    return Err(fail(format!("larger than the limit of {limit} bytes")));
                }
                Ok(bytes)
            }
            Location::Http(url) => {
                let too_large = || fail(format!("larger than the limit of {limit} bytes"));
                let client = http_client().ok_or_else(|| {
                    fail(
                        "this build reads no http(s) URLs (no `https` feature and no \
                         client set with `distribution::set_http_client`)"
                            .into(),
                    )
                })?;
                match client.get(url, limit) {
                    Ok(bytes) if bytes.len() as u64 > limit => Err(too_large()),
                    Ok(bytes) => Ok(bytes),
                    Err(HttpError::TooLarge) => Err(too_large()),
                    Err(HttpError::Failed(reason)) => Err(fail(reason)),
                }
            }
        }
    }
}

/// `%20` and the like in a `file://` URL's path.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client answering from a table, as an embedder's own would.
    struct Table;

    impl HttpClient for Table {
        fn get(&self, url: &str, limit: u64) -> std::result::Result<Vec<u8>, HttpError> {
            match url.rsplit('/').next() {
                Some("ok") => Ok(b"{}".to_vec()),
                Some("long") => Ok(vec![b'x'; limit as usize + 1]),
                Some("huge") => Err(HttpError::TooLarge),
                _ => Err(HttpError::Failed("HTTP status 404".into())),
            }
        }
    }

    #[test]
    fn an_embedders_client_reads_http_and_its_answers_are_checked() {
        // One test sets and clears the process-wide client.
        set_http_client(Some(Arc::new(Table)));
        let read = |name: &str| Location::parse(&format!("https://example.test/{name}"))?.read(16);
        let outcome = (read("ok"), read("long"), read("huge"), read("gone"));
        set_http_client(None);
        assert_eq!(outcome.0.unwrap(), b"{}");
        for err in [outcome.1.unwrap_err(), outcome.2.unwrap_err()] {
            assert!(
                err.to_string()
                    .contains("larger than the limit of 16 bytes"),
                "{err}"
            );
        }
        let err = outcome.3.unwrap_err();
        assert!(
            matches!(&err, Error::Fetch { url, reason } if url.ends_with("/gone") && reason == "HTTP status 404"),
            "{err}"
        );
    }
}
