//! Reading what an index names: `http(s)://` through one blocking client
//! (timeouts, bounded redirects, size caps), `file://` and plain paths
//! offline.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// The largest package index read.
pub const MAX_INDEX_BYTES: u64 = 16 * 1024 * 1024;
/// The largest file of a package read.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Redirects followed before giving up.
const MAX_REDIRECTS: u32 = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole of one request, body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

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
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_connect(Some(CONNECT_TIMEOUT))
                    .timeout_global(Some(REQUEST_TIMEOUT))
                    .max_redirects(MAX_REDIRECTS)
                    .build()
                    .into();
                let mut response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
                response
                    .body_mut()
                    .with_config()
                    .limit(limit)
                    .read_to_vec()
                    .map_err(|e| match e {
                        ureq::Error::BodyExceedsLimit(_) => {
                            fail(format!("larger than the limit of {limit} bytes"))
                        }
                        other => fail(other.to_string()),
                    })
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
