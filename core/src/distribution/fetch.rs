//! Reading what an index names: `http(s)://` through the process's
//! [`HttpClient`] (with the `https` feature, a blocking `ureq` client with
//! timeouts, bounded redirects and size caps), `file://` and plain paths
//! offline.

use std::sync::Arc;
#[cfg(feature = "https")]
use std::time::Duration;

use parking_lot::RwLock;

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
    /// return its first `limit + 1` bytes, which the caller refuses. A body
    /// shorter than its `Content-Length` (the connection closed early) is
    /// [`HttpError::Failed`], never a short body.
    fn get(&self, url: &str, limit: u64) -> std::result::Result<Vec<u8>, HttpError>;

    /// [`get`](Self::get), with the URL the body was finally read from
    /// (after redirects): an index's relative file URLs resolve against it.
    /// The default calls `get` and reports `url` itself.
    fn get_final(
        &self,
        url: &str,
        limit: u64,
    ) -> std::result::Result<(Vec<u8>, String), HttpError> {
        self.get(url, limit).map(|body| (body, url.to_string()))
    }
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
pub(crate) fn http_client() -> Option<Arc<dyn HttpClient>> {
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
/// The whole of one request, from connecting through the status and header
/// lines to the last byte of the body, in milliseconds (lowered by tests).
#[cfg(feature = "https")]
static REQUEST_TIMEOUT_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(60_000);

/// The built-in client: one blocking `ureq` agent per read, rustls with
/// the bundled web PKI roots.
#[cfg(feature = "https")]
struct Ureq;

#[cfg(feature = "https")]
impl HttpClient for Ureq {
    fn get(&self, url: &str, limit: u64) -> std::result::Result<Vec<u8>, HttpError> {
        self.get_final(url, limit).map(|(body, _)| body)
    }

    fn get_final(
        &self,
        url: &str,
        limit: u64,
    ) -> std::result::Result<(Vec<u8>, String), HttpError> {
        use ureq::ResponseExt;
        let total =
            Duration::from_millis(REQUEST_TIMEOUT_MS.load(std::sync::atomic::Ordering::Relaxed));
        // `timeout_global` covers the whole call: a server trickling its
        // header lines is cut off at it as one trickling its body is.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT.min(total)))
            .timeout_global(Some(total))
            .max_redirects(MAX_REDIRECTS)
            .build()
            .into();
        let mut response = agent
            .get(url)
            .call()
            .map_err(|e| HttpError::Failed(e.to_string()))?;
        let final_url = response.get_uri().to_string();
        let declared = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => HttpError::TooLarge,
                other => HttpError::Failed(other.to_string()),
            })?;
        if let Some(declared) = declared {
            if (body.len() as u64) < declared && declared <= limit {
                return Err(HttpError::Failed(format!(
                    "the connection closed after {} of {declared} bytes (truncated body)",
                    body.len()
                )));
            }
        }
        Ok((body, final_url))
    }
}

/// Lowers the built-in client's overall deadline (tests only).
#[cfg(all(test, feature = "https"))]
pub(crate) fn set_request_timeout_for_tests(ms: u64) {
    REQUEST_TIMEOUT_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
}

pub(crate) use super::location::{open_regular, Location};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

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

    /// A server answering each connection with `answer` (called with the
    /// stream after the request is read), on a thread of its own.
    #[cfg(feature = "https")]
    fn serve(answer: fn(&mut std::net::TcpStream)) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(4) {
                let Ok(mut stream) = stream else { continue };
                std::thread::spawn(move || {
                    let mut request = [0u8; 4096];
                    let _ = std::io::Read::read(&mut stream, &mut request);
                    answer(&mut stream);
                });
            }
        });
        format!("http://{address}/index.json")
    }

    #[cfg(feature = "https")]
    #[test]
    fn the_builtin_client_cuts_off_trickled_headers_and_refuses_a_short_body() {
        use std::io::Write;
        // Header lines, one every 100 ms, for 30 s: cut off at the deadline.
        let trickle = serve(|stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n");
            for i in 0..300 {
                if stream
                    .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                    .is_err()
                {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = stream.write_all(b"Content-Length: 2\r\n\r\n{}");
        });
        // A body shorter than its Content-Length.
        let short = serve(|stream| {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":");
        });
        set_request_timeout_for_tests(1_000);
        let trickled = Ureq.get_final(&trickle, 1024);
        let truncated = Ureq.get_final(&short, 1024);
        set_request_timeout_for_tests(60_000);
        match trickled {
            Err(HttpError::Failed(reason)) => assert!(
                reason.to_lowercase().contains("timeout")
                    || reason.to_lowercase().contains("timed out"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        match truncated {
            Err(HttpError::Failed(_)) => {}
            other => panic!("a truncated body was accepted: {other:?}"),
        }
    }
}
