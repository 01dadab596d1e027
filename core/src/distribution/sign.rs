//! Index signatures in the minisign format: keys and signatures that the
//! standard `minisign` tool reads and writes too.

use std::io::Cursor;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes a new key pair: `PREFIX.key` (the secret key, not encrypted: no
/// password is asked, so it works in scripts and CI; keep it as you would
/// any secret; on Unix it is created readable by its owner only, mode
/// 0600) and `PREFIX.pub`. Refuses to overwrite either (a symbolic link at
/// either name included).
pub fn keygen(prefix: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    // PREFIX.key, also for a prefix holding a dot (`team.v2` gives
    // `team.v2.key`, not `team.key`).
    let with = |suffix: &str| {
        let mut path = prefix.as_os_str().to_owned();
        path.push(suffix);
        std::path::PathBuf::from(path)
    };
    let secret_path = with(".key");
    let public_path = with(".pub");
    for path in [&secret_path, &public_path] {
        if path.symlink_metadata().is_ok() {
            return Err(Error::InvalidInput {
                message: format!("{} exists: a key is never overwritten", path.display()),
            });
        }
    }
    let failed = |e: minisign::PError| Error::InvalidInput {
        message: format!("cannot make a key pair: {e}"),
    };
    let pair = minisign::KeyPair::generate_unencrypted_keypair().map_err(failed)?;
    let secret = pair
        .sk
        .to_box(Some("module-registry secret key (not encrypted)"))
        .map_err(failed)?
        .into_string();
    let public = pair.pk.to_box().map_err(failed)?.into_string();
    write_new(&secret_path, secret.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public_path, public.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&secret_path);
        return Err(e);
    }
    Ok((secret_path, public_path))
}

/// Signs `data` with the secret key in `key_file`; the signature's text.
pub fn sign(data: &[u8], key_file: &Path) -> Result<String> {
    let text = read_text(key_file)?;
    let bad = |e: minisign::PError| Error::InvalidInput {
        message: format!(
            "{} is not a usable minisign secret key: {e}",
            key_file.display()
        ),
    };
    let secret = minisign::SecretKeyBox::from_string(&text)
        .and_then(minisign::SecretKeyBox::into_unencrypted_secret_key)
        .map_err(bad)?;
    let signature = minisign::sign(None, &secret, Cursor::new(data), None, None).map_err(bad)?;
    Ok(signature.into_string())
}

/// Checks that `signature` (minisign text) signs `data` with the public key
/// in `public_key_file`; `subject` names the data in the error.
pub fn verify(data: &[u8], signature: &str, public_key_file: &Path, subject: &str) -> Result<()> {
    let refused = |reason: String| Error::Signature {
        subject: subject.to_string(),
        reason,
    };
    let text = read_text(public_key_file)?;
    let public = minisign::PublicKeyBox::from_string(&text)
        .and_then(minisign::PublicKeyBox::into_public_key)
        .map_err(|e| {
            refused(format!(
                "{} is not a minisign public key: {e}",
                public_key_file.display()
            ))
        })?;
    let signature = minisign::SignatureBox::from_string(signature)
        .map_err(|e| refused(format!("the signature cannot be read: {e}")))?;
    minisign::verify(&public, &signature, Cursor::new(data), true, false, false)
        .map_err(|e| refused(format!("it was not signed by the trusted key: {e}")))
}

/// A key file's text: a regular file (a FIFO or device is refused rather
/// than waited on or read without end) of at most 64 KiB.
fn read_text(path: &Path) -> Result<String> {
    use std::io::Read;
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let file = super::fetch::open_regular(path, true).map_err(io)?;
    let mut text = String::new();
    file.take(64 * 1024 + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    if text.len() > 64 * 1024 {
        return Err(Error::InvalidInput {
            message: format!("{} is larger than a key file (64 KiB)", path.display()),
        });
    }
    Ok(text)
}

/// Creates `path` with `bytes` (on Unix with permissions `mode`, set as it
/// is created, so it is never readable by others even for a moment),
/// failing if anything (a symbolic link included) is at `path`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| {
            let _ = std::fs::remove_file(path);
            io(e)
        })
}
