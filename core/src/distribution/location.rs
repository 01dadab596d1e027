//! Where an index or a file it names is: an http(s) URL or a local file;
//! parsing them (odd bytes give typed errors), resolving an index's
//! relative URLs (after redirects, without its query), where its signature
//! is, and reading one (regular files only; http(s) through the process's
//! [`HttpClient`](super::HttpClient)).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::fetch::{http_client, HttpError};
use crate::error::{Error, Result};

/// Where a URL or path points: a URL, or a local file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    Http(String),
    File(PathBuf),
}

impl Location {
    /// `http(s)://...`, `file:///...` (or `file://localhost/...`), or a path.
    pub(crate) fn parse(text: &str) -> Result<Location> {
        let refused = |reason: &str| Error::Fetch {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            if text.chars().any(|c| c.is_control() || c == ' ') {
                return Err(refused("a URL may not hold spaces or control characters"));
            }
            return Ok(Location::Http(text.to_string()));
        }
        if lower.starts_with("file://") {
            let rest = text.get("file://".len()..).unwrap_or_default();
            let path = if rest.starts_with('/') {
                rest
            } else if rest
                .get(..10)
                .is_some_and(|host| host.eq_ignore_ascii_case("localhost/"))
            {
                rest.get("localhost".len()..).unwrap_or_default()
            } else {
                return Err(refused(
                    "a file:// URL names a local absolute path (file:///...)",
                ));
            };
            // The query and fragment are no part of a file's path.
            let path = path.split(['?', '#']).next().unwrap_or_default();
            return Ok(Location::File(path_from_bytes(percent_decode(path))));
        }
        if lower.contains("://") {
            return Err(refused(
                "only http://, https://, file:// and plain paths are read",
            ));
        }
        if text.is_empty() {
            return Err(refused("an empty path names no index"));
        }
        Ok(Location::File(PathBuf::from(text)))
    }

    /// `relative` (a URL or path an index names) resolved against this
    /// location (the index's), as Helm and pip resolve them (RFC 3986: the
    /// index's query is not carried to its files). An index read over
    /// http(s) may name only http(s) URLs: a `file://` URL or a local path
    /// in a remote index is refused (it would read this machine's files).
    pub(crate) fn join(&self, relative: &str) -> Result<Location> {
        let lower = relative.to_ascii_lowercase();
        let has_scheme = relative.split_once(':').is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && scheme
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
        }) && lower.contains("://");
        match self {
            Location::File(index) => {
                if has_scheme {
                    return Location::parse(relative);
                }
                if relative.is_empty() {
                    return Err(Error::Fetch {
                        url: self.url(),
                        reason: "the index names a file with an empty URL".into(),
                    });
                }
                let base = index.parent().unwrap_or(Path::new("."));
                Ok(Location::File(base.join(relative)))
            }
            Location::Http(index) => {
                let refused = |reason: &str| Error::Fetch {
                    url: relative.to_string(),
                    reason: format!("{reason} (named by the remote index {index})"),
                };
                if has_scheme || lower.starts_with("file:") {
                    return match Location::parse(relative)? {
                        http @ Location::Http(_) => Ok(http),
                        Location::File(_) => Err(refused(
                            "a remote index may name only http(s) URLs, not local files",
                        )),
                    };
                }
                if relative.is_empty() || relative.chars().any(|c| c.is_control() || c == ' ') {
                    return Err(refused("not a usable relative URL"));
                }
                let (scheme_end, origin_end, path_end) = http_parts(index);
                if let Some(rest) = relative.strip_prefix("//") {
                    // Scheme-relative: another host, this scheme.
                    return Ok(Location::Http(format!("{}//{rest}", &index[..scheme_end])));
                }
                if relative.starts_with('/') {
                    return Ok(Location::Http(format!(
                        "{}{relative}",
                        &index[..origin_end]
                    )));
                }
                if relative.starts_with('?') || relative.starts_with('#') {
                    return Ok(Location::Http(format!("{}{relative}", &index[..path_end])));
                }
                let path = &index[..path_end];
                let base = match path[origin_end..].rfind('/') {
                    Some(i) => &path[..=origin_end + i],
                    None => return Ok(Location::Http(format!("{path}/{relative}"))),
                };
                Ok(Location::Http(format!("{base}{relative}")))
            }
        }
    }

    /// Where this index's minisign signature is: the path with `.minisig`
    /// added (a URL's query and fragment kept after it, so
    /// `index.json?token=abc` is signed at `index.json.minisig?token=abc`).
    pub(crate) fn signature(&self) -> Location {
        match self {
            Location::File(path) => {
                let mut text = path.as_os_str().to_owned();
                text.push(".minisig");
                Location::File(PathBuf::from(text))
            }
            Location::Http(url) => {
                let (_, _, path_end) = http_parts(url);
                Location::Http(format!("{}.minisig{}", &url[..path_end], &url[path_end..]))
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
        self.read_final(limit).map(|(bytes, _)| bytes)
    }

    /// [`read`](Self::read), with where the bytes were finally read from
    /// (an http(s) URL after its redirects; a file is where it is).
    pub(crate) fn read_final(&self, limit: u64) -> Result<(Vec<u8>, Location)> {
        let fail = |reason: String| Error::Fetch {
            url: self.url(),
            reason,
        };
        match self {
            Location::File(path) => {
                let file = open_regular(path, true).map_err(|e| fail(e.to_string()))?;
                let mut bytes = Vec::new();
                file.take(limit + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| fail(e.to_string()))?;
                if bytes.len() as u64 > limit {
                    return Err(fail(format!("larger than the limit of {limit} bytes")));
                }
                Ok((bytes, self.clone()))
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
                match client.get_final(url, limit) {
                    Ok((bytes, _)) if bytes.len() as u64 > limit => Err(too_large()),
                    Ok((bytes, final_url)) => {
                        let lower = final_url.to_ascii_lowercase();
                        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                            return Err(fail(format!(
                                "redirected to {final_url:?}: only http(s) is followed"
                            )));
                        }
                        Ok((bytes, Location::Http(final_url)))
                    }
                    Err(HttpError::TooLarge) => Err(too_large()),
                    Err(HttpError::Failed(reason)) => Err(fail(reason)),
                }
            }
        }
    }
}

/// Where an http(s) URL's scheme (`https:`), origin (`https://host:port`)
/// and path (before `?` or `#`) end, as byte offsets (all at ASCII bytes).
fn http_parts(url: &str) -> (usize, usize, usize) {
    let scheme_end = url.find(':').map_or(0, |i| i + 1);
    let after_slashes = url.find("://").map_or(0, |i| i + 3);
    let origin_end = url[after_slashes..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_slashes + i);
    let path_end = url[origin_end..]
        .find(['?', '#'])
        .map_or(url.len(), |i| origin_end + i);
    (scheme_end, origin_end, path_end)
}

/// Opens `path` for reading only if it is a regular file: a FIFO, a device
/// or a folder is refused without blocking (it is opened non-blocking and
/// checked on the open handle, so nothing can swap it in between). With
/// `follow` false, a symbolic link at `path` is refused too.
pub(crate) fn open_regular(path: &Path, follow: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
        options.custom_flags(libc::O_NONBLOCK | nofollow);
    }
    let file = options.open(path).map_err(|e| {
        #[cfg(unix)]
        if !follow && e.raw_os_error() == Some(libc::ELOOP) {
            return std::io::Error::other(format!(
                "{} is a symbolic link (refused)",
                path.display()
            ));
        }
        e
    })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(std::io::Error::other(format!(
            "{} is not a regular file (a folder, FIFO, socket or device is refused)",
            path.display()
        )));
    }
    Ok(file)
}

/// `%20` and the like in a `file://` URL's path, as bytes (a `%` not
/// followed by two hex digits is kept as it is).
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// A path from decoded bytes: exactly those bytes on Unix.
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        PathBuf::from(std::ffi::OsString::from_vec(bytes))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percent_before_a_multibyte_character_is_no_panic() {
        for url in [
            "file:///srv/%aé/index.json",
            "file:///srv/%é/index.json",
            "file:///srv/é%",
            "file:///%",
            "file:///%%",
            "file://é/x",
            "file://localhosé/x",
        ] {
            // A location or a typed error: never a panic.
            let _ = Location::parse(url);
        }
        assert_eq!(
            Location::parse("file:///srv/%aé/%41%20b.json").unwrap(),
            Location::File(PathBuf::from("/srv/%aé/A b.json"))
        );
        let err = Location::parse("file://host/x").unwrap_err();
        assert!(matches!(err, Error::Fetch { .. }), "{err}");
        let base = Location::parse("https://h.test/%aé/index.json").unwrap();
        for relative in ["é", "%é", "/é", "?é", "//é", "é://x", "\\é"] {
            let _ = base.join(relative);
        }
    }

    #[test]
    fn a_query_is_kept_for_the_signature_and_left_off_relative_files() {
        let index = Location::parse("https://h.test/p/index.json?token=a/b").unwrap();
        assert_eq!(
            index.signature(),
            Location::Http("https://h.test/p/index.json.minisig?token=a/b".into())
        );
        assert_eq!(
            index.join("alpha/1.0.0/alpha.rhai").unwrap(),
            Location::Http("https://h.test/p/alpha/1.0.0/alpha.rhai".into())
        );
        assert_eq!(
            index.join("/root.rhai").unwrap(),
            Location::Http("https://h.test/root.rhai".into())
        );
        let bare = Location::parse("https://h.test?x=1").unwrap();
        assert_eq!(
            bare.join("a.rhai").unwrap(),
            Location::Http("https://h.test/a.rhai".into())
        );
        assert_eq!(
            bare.signature(),
            Location::Http("https://h.test.minisig?x=1".into())
        );
    }

    #[test]
    fn a_remote_index_may_not_name_local_files() {
        let index = Location::parse("https://h.test/index.json").unwrap();
        for local in [
            "file:///etc/passwd",
            "FILE:///etc/passwd",
            "file:/etc/passwd",
        ] {
            let err = index.join(local).unwrap_err();
            assert!(
                err.to_string().contains("only http(s) URLs"),
                "{local}: {err}"
            );
        }
        // A path in a remote index stays on its server.
        assert_eq!(
            index.join("/etc/passwd").unwrap(),
            Location::Http("https://h.test/etc/passwd".into())
        );
        // A local index may name local files.
        let local = Location::parse("/srv/index.json").unwrap();
        assert!(matches!(
            local.join("file:///srv/a.rhai"),
            Ok(Location::File(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_folder_is_refused_without_blocking() {
        let dir = std::env::temp_dir().join(format!("mr-fetch-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("index.json");
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for location in [Location::File(fifo.clone()), Location::File(dir.clone())] {
            let err = location.read(16).unwrap_err();
            assert!(err.to_string().contains("cannot fetch"), "{err}");
            assert!(format!("{err:?}").contains("not a regular file"), "{err:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
