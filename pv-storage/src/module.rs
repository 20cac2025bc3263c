//! [`StorageModule`]: one configured storage instance (a bucket, a drive folder, a server path)
//! with its key template, part size, parallelism, bandwidth limit and optional encryption.
//!
//! [`StorageModule::connect`] checks the values against the provider's fields, resolves defaults
//! and quirks, and builds the backend with its layers (time-out, then retry, throttle,
//! concurrency limit). [`StorageModule::test`] is the Test of "Test → Save": sign in, write a
//! temporary object, read it back, compare, delete — each step timed, failures explained.
//! [`StorageModule::upload_file`] streams a file (encrypting it on the fly when configured) and
//! verifies the stored object before reporting success.

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;

use crate::backend::{self, Backend, Body, LayerSettings, WriteOptions};
use crate::crypt;
use crate::definition::{self, Provider};
use crate::error::RemoteKind;
use crate::template::{KeyContext, KeyTemplate};
use crate::{Error, Key, Result};

/// Default time limit of one storage call.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(120);
/// Smallest part on S3 and most multipart services.
pub const MIN_PART: u64 = 5 * 1024 * 1024;
/// Part size when neither the module nor the provider sets one.
pub const DEFAULT_CHUNK: u64 = 8 * 1024 * 1024;
/// Size of the test object.
pub const TEST_OBJECT_BYTES: usize = 64 * 1024;
/// Folder of test objects.
pub const TEST_PREFIX: &str = ".pentavision-test";

/// The per-instance settings that are not provider fields.
#[derive(Clone)]
pub struct ModuleSettings {
    /// The instance's name.
    pub name: String,
    /// Where segments go.
    pub key_template: KeyTemplate,
    /// Part size for multipart uploads; `None` = the provider's minimum or 8 MiB.
    pub chunk_size: Option<u64>,
    /// Parallel uploads (and parts in flight per upload).
    pub parallel: u32,
    /// Upload bandwidth limit.
    pub bandwidth_bytes_per_sec: Option<u64>,
    /// AES-256-GCM key for client-side encryption.
    pub encryption_key: Option<[u8; 32]>,
    /// Time limit of one storage call.
    pub op_timeout: Duration,
}

impl fmt::Debug for ModuleSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleSettings")
            .field("name", &self.name)
            .field("key_template", &self.key_template)
            .field("chunk_size", &self.chunk_size)
            .field("parallel", &self.parallel)
            .field("bandwidth_bytes_per_sec", &self.bandwidth_bytes_per_sec)
            .field("encrypted", &self.encryption_key.is_some())
            .field("op_timeout", &self.op_timeout)
            .finish()
    }
}

impl ModuleSettings {
    /// Settings with defaults: the default key template, 4 parallel uploads, no limit, no
    /// encryption, a 120 s call time limit.
    pub fn new(name: impl Into<String>) -> Self {
        ModuleSettings {
            name: name.into(),
            key_template: KeyTemplate::default(),
            chunk_size: None,
            parallel: 4,
            bandwidth_bytes_per_sec: None,
            encryption_key: None,
            op_timeout: DEFAULT_OP_TIMEOUT,
        }
    }
}

/// An object's metadata.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectMeta {
    /// The object key.
    pub key: String,
    /// Size in bytes (as stored: the ciphertext size for encrypted modules).
    pub size: u64,
    /// The service's ETag, without quotes.
    pub etag: Option<String>,
    /// When the object was last written.
    pub last_modified: Option<DateTime<Utc>>,
}

/// The outcome of a connection test.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TestReport {
    /// Every step passed.
    pub ok: bool,
    /// The steps run, in order (it stops at the first failure, except that the temporary object
    /// is still deleted after a failed read or compare).
    pub steps: Vec<TestStep>,
    /// Total time.
    pub total_ms: u64,
}

/// One step of a connection test.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TestStep {
    /// `connect`, `write`, `read`, `compare` or `delete`.
    pub step: String,
    /// What people see: "Connect and sign in", …
    pub label: String,
    /// Whether it passed.
    pub ok: bool,
    /// How long it took.
    pub millis: u64,
    /// Why it failed (or a note), for people.
    pub message: Option<String>,
}

/// A verified upload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Uploaded {
    /// Where it went.
    pub key: Key,
    /// Bytes stored (the ciphertext size when encrypting).
    pub size: u64,
    /// MD5 (hex) of the bytes stored.
    pub checksum: Option<String>,
    /// How long the upload took, verification included.
    pub millis: u64,
}

struct Inner {
    provider_id: String,
    backend_kind: String,
    settings: ModuleSettings,
    backend: Arc<dyn Backend>,
    /// Part size used for uploads.
    chunk: u64,
    /// Most parts per upload, when the service limits them.
    max_parts: Option<u32>,
}

/// One configured storage instance. Cheap to clone.
#[derive(Clone)]
pub struct StorageModule {
    inner: Arc<Inner>,
}

impl fmt::Debug for StorageModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageModule")
            .field("provider", &self.inner.provider_id)
            .field("backend", &self.inner.backend_kind)
            .field("target", &self.inner.backend.target())
            .field("settings", &self.inner.settings)
            .finish()
    }
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl StorageModule {
    /// Check the values, resolve defaults and quirks, and build the backend. This does not talk
    /// to the service (except for backends that must sign in to be built); use [`test`](Self::test).
    pub async fn connect(
        provider: &Provider,
        config: &Map<String, Value>,
        secrets: &Map<String, Value>,
        settings: ModuleSettings,
    ) -> Result<StorageModule> {
        provider.validate(config, secrets).map_err(Error::InvalidConfig)?;
        let resolved = definition::resolve(provider, config, secrets)?;
        let caps = &provider.definition.capabilities;
        let min_part = caps.min_part_size.unwrap_or(0);
        let chunk =
            settings.chunk_size.unwrap_or(DEFAULT_CHUNK.max(min_part)).max(min_part).max(64 * 1024);
        let max_parts = provider.definition.quirks.max_parts.or(caps.max_parts);
        Self::build(&provider.definition.id, &resolved, settings, chunk, max_parts).await
    }

    /// A module over a backend of `kind` with raw values (no provider definition), for tests and
    /// embedding: `memory` needs nothing, `fs` needs `{"root": "/path"}`.
    pub async fn from_backend(
        kind: &str,
        config: &Map<String, Value>,
        secrets: &Map<String, Value>,
        settings: ModuleSettings,
    ) -> Result<StorageModule> {
        let resolved = definition::ResolvedConfig {
            provider: kind.to_owned(),
            backend: kind.to_owned(),
            values: config.clone(),
            secrets: secrets.clone(),
            ..Default::default()
        };
        let chunk = settings.chunk_size.unwrap_or(DEFAULT_CHUNK).max(64 * 1024);
        Self::build(kind, &resolved, settings, chunk, None).await
    }

    async fn build(
        provider_id: &str,
        resolved: &definition::ResolvedConfig,
        settings: ModuleSettings,
        chunk: u64,
        max_parts: Option<u32>,
    ) -> Result<StorageModule> {
        let layers = LayerSettings {
            op_timeout: settings.op_timeout,
            bandwidth: settings.bandwidth_bytes_per_sec,
            chunk: usize::try_from(chunk).unwrap_or(usize::MAX),
            parallel: settings.parallel.max(1),
        };
        let backend = backend::build(&resolved.backend, resolved, layers).await?;
        Ok(StorageModule {
            inner: Arc::new(Inner {
                provider_id: provider_id.to_owned(),
                backend_kind: resolved.backend.clone(),
                settings,
                backend,
                chunk,
                max_parts,
            }),
        })
    }

    /// The provider id.
    pub fn provider_id(&self) -> &str {
        &self.inner.provider_id
    }

    /// The backend kind (`s3`, `fs`, …).
    pub fn backend_kind(&self) -> &str {
        &self.inner.backend_kind
    }

    /// The instance's name.
    pub fn name(&self) -> &str {
        &self.inner.settings.name
    }

    /// The settings.
    pub fn settings(&self) -> &ModuleSettings {
        &self.inner.settings
    }

    /// Whether uploads are encrypted.
    pub fn encrypted(&self) -> bool {
        self.inner.settings.encryption_key.is_some()
    }

    /// What the module stores into, for messages (`bucket cams`).
    pub fn target(&self) -> String {
        self.inner.backend.target()
    }

    /// The key a segment goes to.
    pub fn key_for(&self, ctx: &KeyContext) -> Result<Key> {
        // `{provider}` and `{module}` left empty by the caller are this module's own, so a job
        // that fails over to another module is named after the module that holds it.
        if ctx.provider.is_empty() || ctx.module.is_empty() {
            let mut own = ctx.clone();
            if own.provider.is_empty() {
                own.provider = self.provider_id().to_owned();
            }
            if own.module.is_empty() {
                own.module = self.name().to_owned();
            }
            return self.inner.settings.key_template.render(&own);
        }
        self.inner.settings.key_template.render(ctx)
    }

    /// Part size for an upload of `size` bytes: the module's chunk size, grown so that the
    /// upload needs at most the service's part limit (Scaleway: 1,000).
    pub fn chunk_for(&self, size: u64) -> u64 {
        let mut chunk = self.inner.chunk;
        if let Some(max) = self.inner.max_parts.filter(|m| *m > 0) {
            chunk = chunk.max(size.div_ceil(u64::from(max))).max(MIN_PART);
        }
        chunk
    }

    fn write_options(&self, size: u64) -> WriteOptions {
        let caps = self.inner.backend.caps();
        if caps.multipart {
            WriteOptions {
                chunk: Some(usize::try_from(self.chunk_for(size)).unwrap_or(usize::MAX)),
                concurrent: self.inner.settings.parallel.max(1) as usize,
            }
        } else {
            WriteOptions { chunk: None, concurrent: 1 }
        }
    }

    /// Connection test: sign in, write a 64 KiB random object under `.pentavision-test/`, read it
    /// back, compare, delete it. Never fails as a call: failures are in the report.
    pub async fn test(&self) -> TestReport {
        let start = Instant::now();
        let mut steps = Vec::new();
        let backend = &self.inner.backend;
        let push = |steps: &mut Vec<TestStep>,
                    step: &str,
                    label: &str,
                    t: Instant,
                    r: std::result::Result<Option<String>, String>| {
            let ok = r.is_ok();
            let message = match r {
                Ok(note) => note,
                Err(message) => Some(message),
            };
            steps.push(TestStep {
                step: step.into(),
                label: label.into(),
                ok,
                millis: millis(t),
                message,
            });
            ok
        };

        let t = Instant::now();
        let connect = backend.check().await.map(|()| None).map_err(|e| e.to_string());
        if !push(&mut steps, "connect", "Connect and sign in", t, connect) {
            return finish(steps, start);
        }

        let name: [u8; 16] = rand::random();
        let key = format!("{TEST_PREFIX}/{}.bin", hex::encode(name));
        let mut data = vec![0u8; TEST_OBJECT_BYTES];
        rand::Rng::fill(&mut rand::rng(), &mut data[..]);

        let t = Instant::now();
        let mut body = Body::bytes(data.clone(), None);
        let write =
            backend.write(&key, &mut body, WriteOptions { chunk: None, concurrent: 1 }).await;
        if !push(
            &mut steps,
            "write",
            "Write a test object",
            t,
            write.map(|()| None).map_err(|e| e.to_string()),
        ) {
            // A failed write may still have left something behind; try to clean up quietly.
            let _ = backend.delete(&key).await;
            return finish(steps, start);
        }

        let t = Instant::now();
        let read = backend.read(&key, None).await;
        let read_ok = match read {
            Ok(back) => {
                push(&mut steps, "read", "Read it back", t, Ok(None));
                let t = Instant::now();
                let same = back == data;
                let message = if same {
                    Ok(None)
                } else {
                    Err(format!(
                        "the object read back differs from what was written ({} bytes written, {} read): the service or a proxy in between changes data",
                        data.len(),
                        back.len()
                    ))
                };
                push(&mut steps, "compare", "Compare", t, message)
            }
            Err(e) => push(&mut steps, "read", "Read it back", t, Err(e.to_string())),
        };

        let t = Instant::now();
        let delete =
            backend.delete(&key).await.map(|()| None).map_err(|e| {
                format!("{e} (the test object {key} was left behind; delete it by hand)")
            });
        let delete_ok = push(&mut steps, "delete", "Delete the test object", t, delete);
        let _ = read_ok && delete_ok;
        finish(steps, start)
    }

    /// Upload the file at `path` to `key` (encrypted when the module has a key), then verify the
    /// stored object: its size, and its MD5 where the service gives one.
    pub async fn upload_file(&self, key: &Key, path: &Path) -> Result<Uploaded> {
        let start = Instant::now();
        let file = tokio::fs::File::open(path).await.map_err(|e| Error::io(path, e))?;
        let plain_len = file.metadata().await.map_err(|e| Error::io(path, e))?.len();
        let mut body = Body::file(file, plain_len, self.inner.settings.encryption_key.as_ref());
        let size = body.size();
        let options = self.write_options(size);
        self.inner.backend.write(key.as_str(), &mut body, options).await?;
        let md5 = body.md5_hex();
        // Some servers (FTP over TLS) finish storing a moment after the client closed the
        // transfer: look again a few times before calling the upload short.
        let mut meta = None;
        for attempt in 0..6u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
            meta = self.inner.backend.stat(key.as_str()).await?;
            if meta.as_ref().is_some_and(|m| m.size == size) {
                break;
            }
        }
        let meta = meta.ok_or_else(|| {
            Error::Verify(format!(
                "{} does not show {key} after the upload finished; it will be uploaded again",
                self.target()
            ))
        })?;
        if meta.size != size {
            return Err(Error::Verify(format!(
                "{key} on {} has {} bytes but {size} were sent; it will be uploaded again",
                self.target(),
                meta.size
            )));
        }
        if self.inner.backend.caps().etag_is_md5
            && let Some(etag) = meta.etag.as_deref()
            && is_md5_hex(etag)
            && !etag.eq_ignore_ascii_case(&md5)
        {
            return Err(Error::Verify(format!(
                "{key} on {} has checksum {etag} but {md5} was sent; it will be uploaded again",
                self.target()
            )));
        }
        Ok(Uploaded { key: key.clone(), size, checksum: Some(md5), millis: millis(start) })
    }

    /// Download `key` into `dest` (decrypting when the module encrypts): written to a temporary
    /// file next to `dest`, synced, then renamed. Returns the bytes written.
    pub async fn download_to(&self, key: &Key, dest: &Path) -> Result<u64> {
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let file_name =
            dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let suffix: u64 = rand::random();
        let tmp = dir.join(format!(".{file_name}.{suffix:016x}.part"));
        let result = self.download_into(key, &tmp).await;
        match result {
            Ok(n) => {
                tokio::fs::rename(&tmp, dest).await.map_err(|e| Error::io(dest, e))?;
                Ok(n)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    async fn download_into(&self, key: &Key, tmp: &Path) -> Result<u64> {
        let mut file = tokio::fs::File::create(tmp).await.map_err(|e| Error::io(tmp, e))?;
        let mut stream = self.inner.backend.read_stream(key.as_str()).await?;
        let mut decryptor = self.inner.settings.encryption_key.as_ref().map(crypt::Decryptor::new);
        let mut written = 0u64;
        while let Some(piece) = stream.next().await {
            let piece = piece?;
            let out = match decryptor.as_mut() {
                Some(d) => d.update(&piece)?,
                None => piece.to_vec(),
            };
            file.write_all(&out).await.map_err(|e| Error::io(tmp, e))?;
            written += out.len() as u64;
        }
        if let Some(d) = decryptor {
            let out = d.finish()?;
            file.write_all(&out).await.map_err(|e| Error::io(tmp, e))?;
            written += out.len() as u64;
        }
        file.flush().await.map_err(|e| Error::io(tmp, e))?;
        file.sync_all().await.map_err(|e| Error::io(tmp, e))?;
        Ok(written)
    }

    /// Read an object or a byte range of it. For an encrypted module the range is of the
    /// plaintext (only the chunks covering it are fetched and decrypted).
    pub async fn read(&self, key: &Key, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        let Some(enc_key) = self.inner.settings.encryption_key.as_ref() else {
            return self.inner.backend.read(key.as_str(), range).await;
        };
        let data = self.inner.backend.read(key.as_str(), None).await?;
        let plain = crypt::decrypt_bytes(enc_key, &data)?;
        Ok(match range {
            None => plain,
            Some(r) => {
                let end = usize::try_from(r.end).unwrap_or(usize::MAX).min(plain.len());
                let start = usize::try_from(r.start).unwrap_or(usize::MAX).min(end);
                plain[start..end].to_vec()
            }
        })
    }

    /// Metadata of an object, `None` when absent.
    pub async fn stat(&self, key: &Key) -> Result<Option<ObjectMeta>> {
        self.inner.backend.stat(key.as_str()).await
    }

    /// Every object whose key starts with `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.inner.backend.list(prefix).await
    }

    /// Delete an object (absent objects are fine).
    pub async fn delete(&self, key: &Key) -> Result<()> {
        self.inner.backend.delete(key.as_str()).await
    }

    /// A signed URL to read `key` for `ttl`; `None` when the backend cannot sign or the module
    /// encrypts (the URL would serve ciphertext).
    pub async fn presign_read(&self, key: &Key, ttl: Duration) -> Result<Option<String>> {
        if self.encrypted() {
            return Ok(None);
        }
        self.inner.backend.presign_read(key.as_str(), ttl).await
    }
}

fn finish(steps: Vec<TestStep>, start: Instant) -> TestReport {
    let ok = !steps.is_empty() && steps.iter().all(|s| s.ok);
    TestReport { ok, steps, total_ms: millis(start) }
}

fn is_md5_hex(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether an error means the credentials or permissions are wrong (not worth retrying soon).
pub fn is_auth_error(e: &Error) -> bool {
    matches!(e.remote_kind(), Some(RemoteKind::Auth | RemoteKind::Permission))
}
