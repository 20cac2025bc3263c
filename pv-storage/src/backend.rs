//! The backend trait every storage kind implements, and the factory that builds one from a
//! resolved configuration.
//!
//! Most kinds run on Apache OpenDAL ([`opendal`](self::opendal)); kinds OpenDAL has no service
//! for (SMB, implicit FTPS, SCP, Box, MEGA) implement [`Backend`] in their own file and add an
//! arm to [`build`]. A backend deals in relative key strings (already validated as
//! [`Key`](crate::Key)s) and returns [`Error::Remote`] with a sentence for people on failure;
//! [`remote_error`] and [`redact`] help with that.

use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use md5::{Digest, Md5};
use tokio::io::AsyncReadExt;

use crate::crypt::{self, Encryptor};
use crate::definition::ResolvedConfig;
use crate::error::RemoteKind;
use crate::module::ObjectMeta;
use crate::{Error, Result};

pub(crate) mod box_api;
pub(crate) mod ftps_implicit;
pub(crate) mod mega;
pub(crate) mod opendal;
pub(crate) mod scp;
pub(crate) mod smb;

/// A stream of bytes read from a backend.
pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// How a write should be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteOptions {
    /// Part size for multipart/chunked uploads; `None` lets the backend choose.
    pub chunk: Option<usize>,
    /// Parts in flight at once.
    pub concurrent: usize,
}

/// What a backend can do (beyond the provider definition's claims).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BackendCaps {
    /// Writes are sent in parts (the body is streamed); otherwise the backend buffers it whole.
    pub multipart: bool,
    /// Range reads.
    pub range: bool,
    /// Signed read URLs.
    pub presign: bool,
    /// A plain 32-hex-digit ETag of a single-part upload is the MD5 of the content.
    pub etag_is_md5: bool,
}

/// The bytes of one upload: a file read piece by piece (encrypted on the fly when a key is
/// given), or a buffer. It computes the MD5 of exactly the bytes handed out.
pub(crate) struct Body {
    source: Source,
    encryptor: Option<Encryptor>,
    /// Plaintext bytes not yet read.
    plain_left: u64,
    /// Whether the encryption header was handed out.
    header_sent: bool,
    /// Whether the final chunk was produced.
    finished: bool,
    md5: Md5,
    size: u64,
    piece: usize,
}

enum Source {
    File(tokio::fs::File),
    Memory(Bytes),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body").field("size", &self.size).finish_non_exhaustive()
    }
}

/// Bytes read from the file per piece when not encrypting.
const PIECE: usize = 1024 * 1024;

impl Body {
    /// A body reading `file` of `plain_len` bytes, encrypted with `key` when given.
    pub fn file(file: tokio::fs::File, plain_len: u64, key: Option<&[u8; 32]>) -> Body {
        Body::new(Source::File(file), plain_len, key)
    }

    /// A body from a buffer, encrypted with `key` when given.
    pub fn bytes(data: impl Into<Bytes>, key: Option<&[u8; 32]>) -> Body {
        let data = data.into();
        let len = data.len() as u64;
        Body::new(Source::Memory(data), len, key)
    }

    fn new(source: Source, plain_len: u64, key: Option<&[u8; 32]>) -> Body {
        let encryptor = key.map(Encryptor::new);
        let size = if encryptor.is_some() { crypt::encrypted_len(plain_len) } else { plain_len };
        // Encrypted pieces are several whole chunks; plain pieces are 1 MiB.
        let piece = if encryptor.is_some() { 16 * crypt::CHUNK } else { PIECE };
        Body {
            source,
            encryptor,
            plain_left: plain_len,
            header_sent: false,
            finished: false,
            md5: Md5::new(),
            size,
            piece,
        }
    }

    /// Total bytes this body yields (the ciphertext length when encrypting).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// MD5 (hex) of the bytes handed out so far; of the whole body once `next` returned `None`.
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5.clone().finalize())
    }

    async fn read_plain(&mut self, want: usize) -> Result<Bytes> {
        match &mut self.source {
            Source::Memory(data) => {
                let n = want.min(data.len());
                Ok(data.split_to(n))
            }
            Source::File(file) => {
                let mut buf = vec![0u8; want];
                let mut filled = 0;
                while filled < want {
                    let n = file
                        .read(&mut buf[filled..])
                        .await
                        .map_err(|e| Error::io("segment file", e))?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled < want {
                    return Err(Error::io(
                        "segment file",
                        std::io::Error::other(
                            "the file became shorter while it was being uploaded",
                        ),
                    ));
                }
                buf.truncate(filled);
                Ok(Bytes::from(buf))
            }
        }
    }

    /// The next piece, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Bytes>> {
        let out = match self.encryptor.take() {
            None => {
                if self.plain_left == 0 {
                    return Ok(None);
                }
                let want = usize::try_from(self.plain_left).unwrap_or(usize::MAX).min(self.piece);
                let data = self.read_plain(want).await?;
                self.plain_left -= data.len() as u64;
                data
            }
            Some(mut enc) => {
                if self.finished {
                    self.encryptor = Some(enc);
                    return Ok(None);
                }
                let mut out = Vec::with_capacity(self.piece + 4096);
                if !self.header_sent {
                    out.extend_from_slice(enc.header());
                    self.header_sent = true;
                }
                while out.len() < self.piece && !self.finished {
                    let want =
                        usize::try_from(self.plain_left).unwrap_or(usize::MAX).min(crypt::CHUNK);
                    let plain = self.read_plain(want).await?;
                    self.plain_left -= plain.len() as u64;
                    let last = self.plain_left == 0;
                    out.extend_from_slice(&enc.chunk(&plain, last)?);
                    self.finished = last;
                }
                self.encryptor = Some(enc);
                Bytes::from(out)
            }
        };
        self.md5.update(&out);
        Ok(Some(out))
    }
}

/// One storage backend: a bucket, a drive folder, a server path.
#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// What the backend stores into, for messages: `bucket cams`, `https://dav.example.com/`.
    fn target(&self) -> String;

    /// What it can do.
    fn caps(&self) -> BackendCaps;

    /// Connect and sign in: the cheapest call that proves the credentials and target work
    /// (list one entry or stat the root).
    async fn check(&self) -> Result<()>;

    /// Write `body` to `key`, replacing any object there. On failure nothing partial may be left
    /// behind where the service allows it (abort multipart uploads).
    async fn write(&self, key: &str, body: &mut Body, options: WriteOptions) -> Result<()>;

    /// Read a whole object or a byte range of it.
    async fn read(&self, key: &str, range: Option<Range<u64>>) -> Result<Vec<u8>>;

    /// Read a whole object as a stream; backends that can should override this.
    async fn read_stream(&self, key: &str) -> Result<ByteStream> {
        let data = self.read(key, None).await?;
        Ok(Box::pin(futures_util::stream::once(async move { Ok(Bytes::from(data)) })))
    }

    /// Metadata of `key`, `None` when absent.
    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>>;

    /// Every object whose key starts with `prefix` (recursively).
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;

    /// Delete `key`; deleting an absent object succeeds.
    async fn delete(&self, key: &str) -> Result<()>;

    /// A signed URL to read `key` for `ttl`, `None` when the backend cannot sign.
    async fn presign_read(&self, _key: &str, _ttl: Duration) -> Result<Option<String>> {
        Ok(None)
    }
}

/// Settings of the layers around a backend.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerSettings {
    /// Time limit of one call (and of one I/O step within it).
    pub op_timeout: Duration,
    /// Bytes per second, when limited.
    pub bandwidth: Option<u64>,
    /// Largest part written at once (for the throttle's burst).
    pub chunk: usize,
    /// Parallel uploads of the module.
    pub parallel: u32,
}

/// Build the backend for `cfg.backend`.
pub(crate) async fn build(
    kind: &str,
    cfg: &ResolvedConfig,
    layers: LayerSettings,
) -> Result<Arc<dyn Backend>> {
    match kind {
        "s3" | "gcs" | "azblob" | "b2" | "dropbox" | "onedrive" | "gdrive" | "pcloud"
        | "webdav" | "sftp" | "fs" | "memory" => {
            Ok(Arc::new(opendal::OpendalBackend::new(kind, cfg, layers)?))
        }
        // Explicit FTPS on suppaftp (OpenDAL's drops the tail of large TLS uploads); plain FTP
        // stays on OpenDAL.
        "ftp" if ftps_implicit::wants_explicit_tls(cfg) => Ok(Arc::new(
            ftps_implicit::FtpsImplicitBackend::explicit_from_resolved(cfg, layers.op_timeout)?,
        )),
        "ftp" => Ok(Arc::new(opendal::OpendalBackend::new(kind, cfg, layers)?)),
        // OpenDAL's swift service behind the Keystone v3 / Rackspace sign-in and token renewal.
        "swift" => crate::swift_auth::build_backend(cfg, layers).await,
        // Custom backends: one file each in backend/, one arm each here.
        "smb" => Ok(Arc::new(smb::SmbBackend::from_resolved(cfg, layers.op_timeout)?)),
        "ftps_implicit" => {
            Ok(Arc::new(ftps_implicit::FtpsImplicitBackend::from_resolved(cfg, layers.op_timeout)?))
        }
        "box" => Ok(Arc::new(box_api::BoxBackend::from_resolved(cfg, layers.op_timeout)?)),
        "scp" => Ok(Arc::new(scp::ScpBackend::from_resolved(cfg, layers.op_timeout)?)),
        "mega" => Ok(Arc::new(mega::MegaBackend::from_resolved(cfg, layers.op_timeout)?)),
        other => Err(Error::Provider(format!("the storage backend \"{other}\" is unknown"))),
    }
}

/// A readable name of a backend kind.
pub(crate) fn kind_name(kind: &str) -> &str {
    match kind {
        "s3" => "S3",
        "gcs" => "Google Cloud Storage",
        "azblob" => "Azure Blob",
        "swift" => "OpenStack Swift",
        "b2" => "Backblaze B2",
        "dropbox" => "Dropbox",
        "onedrive" => "OneDrive",
        "gdrive" => "Google Drive",
        "pcloud" => "pCloud",
        "webdav" => "WebDAV",
        "ftp" => "FTP",
        "ftps_implicit" => "implicit FTPS",
        "sftp" => "SFTP",
        "scp" => "SCP",
        "smb" => "SMB",
        "mega" => "MEGA",
        "box" => "Box",
        "fs" => "local path",
        "memory" => "in-memory",
        other => other,
    }
}

/// Remove secrets from a text: URL query strings (signatures, SAS tokens), user info in URLs, and
/// every given secret value.
pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret.as_str(), "***");
    }
    // Query strings of URLs may carry signatures or SAS tokens.
    static QUERY: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    static USERINFO: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    if let Some(re) =
        QUERY.get_or_init(|| regex::Regex::new(r"(https?://[^\s?)\]]*)\?[^\s)\]]*").ok())
    {
        out = re.replace_all(&out, "$1?…").into_owned();
    }
    if let Some(re) = USERINFO.get_or_init(|| regex::Regex::new(r"(\w+://)[^/\s@]+@").ok()) {
        out = re.replace_all(&out, "$1").into_owned();
    }
    out
}

/// An [`Error::Remote`].
pub(crate) fn remote_error(
    op: &'static str,
    kind: RemoteKind,
    message: impl Into<String>,
) -> Error {
    let retryable = matches!(
        kind,
        RemoteKind::Unreachable | RemoteKind::Timeout | RemoteKind::RateLimited | RemoteKind::Other
    );
    Error::Remote { op, message: message.into(), kind, retryable }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn redact_removes_secrets_and_queries() {
        let text = "error sending request for url (https://acct.blob.core.windows.net/c/x?sv=2020&sig=abcd) with key SECRETKEY and ftp://user:pw@host/";
        let out = redact(text, &["SECRETKEY".to_owned()]);
        assert!(!out.contains("sig=abcd"), "{out}");
        assert!(!out.contains("SECRETKEY"), "{out}");
        assert!(!out.contains("user:pw"), "{out}");
        assert!(out.contains("https://acct.blob.core.windows.net/c/x?…"), "{out}");
    }

    #[tokio::test]
    async fn body_encrypts_and_hashes() {
        let key = [3u8; 32];
        let plain: Vec<u8> = (0..(crypt::CHUNK * 20 + 5)).map(|i| (i % 253) as u8).collect();
        let mut body = Body::bytes(plain.clone(), Some(&key));
        let mut out = Vec::new();
        while let Some(piece) = body.next().await.unwrap() {
            out.extend_from_slice(&piece);
        }
        assert_eq!(out.len() as u64, body.size());
        assert_eq!(body.md5_hex(), hex::encode(Md5::digest(&out)));
        assert_eq!(crypt::decrypt_bytes(&key, &out).unwrap(), plain);
        // Empty, plain and encrypted.
        let mut empty = Body::bytes(Vec::new(), None);
        assert!(empty.next().await.unwrap().is_none());
        let mut empty = Body::bytes(Vec::new(), Some(&key));
        let piece = empty.next().await.unwrap().unwrap();
        assert_eq!(piece.len() as u64, crypt::encrypted_len(0));
        assert!(empty.next().await.unwrap().is_none());
    }
}
