//! MEGA backend over the `megalib` crate (MEGA's API with its client-side encryption).
//!
//! Configuration: `email` (required), secret `password`, `root` (optional folder path under
//! the Cloud Drive). MEGA has no public test server, so this backend is covered by its
//! configuration tests only; it signs in on the first call and keeps the session.
//!
//! MEGA encrypts every file on this side with per-chunk MACs and needs a seekable source, so a
//! write first spools the body to a private temporary file, then uploads it under a temporary
//! name and renames it over the key (removing the previous version). Range reads download from
//! the range start and stop keeping bytes at its end.

use std::ops::Range;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use megalib::{MegaError, Node, NodeType, SessionHandle};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::smb::remote;
use super::{Backend, BackendCaps, Body, WriteOptions, redact};
use crate::definition::ResolvedConfig;
use crate::error::RemoteKind;
use crate::module::ObjectMeta;
use crate::{Error, Key, Result};

/// The MEGA backend.
pub(crate) struct MegaBackend {
    email: String,
    password: String,
    root: Vec<String>,
    timeout: Duration,
    session: Mutex<Option<SessionHandle>>,
}

impl std::fmt::Debug for MegaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MegaBackend")
            .field("email", &self.email)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// A sink keeping at most `limit` bytes (for range reads).
struct Capped {
    data: Arc<StdMutex<Vec<u8>>>,
    limit: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut d) = self.data.lock() {
            let room = self.limit.saturating_sub(d.len());
            d.extend_from_slice(&buf[..buf.len().min(room)]);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl MegaBackend {
    /// Build from a module's resolved configuration; `timeout` bounds the sign-in.
    pub(crate) fn from_resolved(cfg: &ResolvedConfig, timeout: Duration) -> Result<Self> {
        // The provider form calls it `username` (MEGA signs in with an e-mail address).
        let email = cfg
            .any("email")
            .or_else(|| cfg.any("username"))
            .ok_or_else(|| Error::Provider("The MEGA e-mail address is required.".to_owned()))?;
        if !email.contains('@') {
            return Err(Error::Provider(format!("\"{email}\" is not an e-mail address.")));
        }
        let password = cfg
            .secret("password")
            .ok_or_else(|| Error::Provider("The MEGA password is required.".to_owned()))?;
        Ok(Self {
            email,
            password,
            root: cfg
                .get("root")
                .unwrap_or_default()
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            timeout,
            session: Mutex::new(None),
        })
    }

    fn map_err(&self, op: &'static str, what: &str, e: MegaError) -> Error {
        let secrets = [self.password.clone()];
        match e {
            MegaError::ApiError { code, message } => {
                let message = redact(&message, &secrets);
                let (kind, retryable, text) = match code {
                    -9 => (RemoteKind::NotFound, false, format!("{what} does not exist on MEGA.")),
                    -11 => (
                        RemoteKind::Permission,
                        false,
                        format!("MEGA denied access to {what} ({message})."),
                    ),
                    -15 | -16 => (
                        RemoteKind::Auth,
                        false,
                        "MEGA refused the session; sign in again.".to_owned(),
                    ),
                    -17 => (
                        RemoteKind::Other,
                        false,
                        "The MEGA account is over its storage quota.".to_owned(),
                    ),
                    -4 | -6 => {
                        (RemoteKind::RateLimited, true, "MEGA asks to slow down.".to_owned())
                    }
                    -3 => (RemoteKind::Other, true, "MEGA is busy; trying again later.".to_owned()),
                    c => (
                        RemoteKind::Other,
                        true,
                        format!("MEGA answered error {c} to {op} of {what} ({message})."),
                    ),
                };
                remote(op, kind, retryable, text)
            }
            MegaError::ServerBusy => {
                remote(op, RemoteKind::Other, true, "MEGA is busy; trying again later.".to_owned())
            }
            MegaError::RequestError(e) if e.is_timeout() => {
                remote(op, RemoteKind::Timeout, true, "MEGA did not answer in time.".to_owned())
            }
            MegaError::RequestError(e) if e.is_connect() => remote(
                op,
                RemoteKind::Unreachable,
                true,
                "MEGA cannot be reached; check the network.".to_owned(),
            ),
            MegaError::HttpError(429) => {
                remote(op, RemoteKind::RateLimited, true, "MEGA asks to slow down.".to_owned())
            }
            other => remote(
                op,
                RemoteKind::Other,
                true,
                format!("MEGA failed to {op} {what}: {}.", redact(&other.to_string(), &secrets)),
            ),
        }
    }

    async fn session(&self, op: &'static str) -> Result<SessionHandle> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let login = SessionHandle::login(&self.email, &self.password);
        let s = match tokio::time::timeout(self.timeout, login).await {
            Err(_) => {
                return Err(remote(
                    op,
                    RemoteKind::Timeout,
                    true,
                    "MEGA did not complete the sign-in in time.".to_owned(),
                ));
            }
            Ok(Err(MegaError::ApiError { code: -9 | -2 | -16, .. })) => {
                return Err(remote(
                    op,
                    RemoteKind::Auth,
                    false,
                    format!("MEGA refused the e-mail address or password of {}.", self.email),
                ));
            }
            Ok(Err(e)) => return Err(self.map_err(op, "the account", e)),
            Ok(Ok(s)) => s,
        };
        s.fetch_nodes().await.map_err(|e| self.map_err(op, "the file list", e))?;
        *guard = Some(s.clone());
        Ok(s)
    }

    async fn root_node(&self, s: &SessionHandle, op: &'static str) -> Result<Node> {
        s.root_nodes()
            .await
            .map_err(|e| self.map_err(op, "the Cloud Drive", e))?
            .into_iter()
            .find(|n| n.node_type == NodeType::Root)
            .ok_or_else(|| {
                remote(
                    op,
                    RemoteKind::NotFound,
                    false,
                    "The MEGA account has no Cloud Drive.".to_owned(),
                )
            })
    }

    /// The folder at `dir` (relative to the module root), created when `create`.
    async fn folder(
        &self,
        s: &SessionHandle,
        op: &'static str,
        dir: &str,
        create: bool,
    ) -> Result<Option<Node>> {
        let mut node = self.root_node(s, op).await?;
        let parts: Vec<String> = self
            .root
            .iter()
            .cloned()
            .chain(dir.split('/').filter(|p| !p.is_empty()).map(str::to_owned))
            .collect();
        for name in parts {
            let child = s
                .child_node_by_name(&node, &name)
                .await
                .map_err(|e| self.map_err(op, "a folder", e))?;
            node = match child {
                Some(c) if c.node_type == NodeType::Folder => c,
                Some(_) => {
                    return Err(remote(
                        op,
                        RemoteKind::Other,
                        false,
                        format!("\"{name}\" is a file on MEGA, not a folder."),
                    ));
                }
                None if create => s
                    .create_folder_in(&name, &node)
                    .await
                    .map_err(|e| self.map_err(op, &format!("the folder \"{name}\""), e))?,
                None => return Ok(None),
            };
        }
        Ok(Some(node))
    }

    async fn file(&self, s: &SessionHandle, op: &'static str, key: &str) -> Result<Option<Node>> {
        let (dir, name) = key.rsplit_once('/').unwrap_or(("", key));
        let Some(folder) = self.folder(s, op, dir, false).await? else { return Ok(None) };
        let child = s
            .child_node_by_name(&folder, name)
            .await
            .map_err(|e| self.map_err(op, &format!("\"{key}\""), e))?;
        Ok(child.filter(|n| n.node_type == NodeType::File))
    }

    fn meta(key: String, n: &Node) -> ObjectMeta {
        ObjectMeta {
            key,
            size: n.size,
            etag: None,
            last_modified: DateTime::<Utc>::from_timestamp(n.timestamp, 0),
        }
    }
}

#[async_trait]
impl Backend for MegaBackend {
    fn target(&self) -> String {
        format!("MEGA {} /{}", self.email, self.root.join("/"))
    }

    fn caps(&self) -> BackendCaps {
        BackendCaps { multipart: true, range: true, presign: false, etag_is_md5: false }
    }

    async fn check(&self) -> Result<()> {
        let s = self.session("connect").await?;
        self.folder(&s, "connect", "", true).await.map(|_| ())
    }

    async fn write(&self, key: &str, body: &mut Body, _options: WriteOptions) -> Result<()> {
        let what = format!("\"{key}\"");
        // Spool the body: MEGA's encryption needs a seekable source.
        let spool =
            std::env::temp_dir().join(format!("pentavision-mega-{:016x}", rand::random::<u64>()));
        let result = async {
            let mut file =
                tokio::fs::File::create(&spool).await.map_err(|e| Error::io(&spool, e))?;
            while let Some(piece) = body.next().await? {
                file.write_all(&piece).await.map_err(|e| Error::io(&spool, e))?;
            }
            file.flush().await.map_err(|e| Error::io(&spool, e))?;
            drop(file);
            let s = self.session("write").await?;
            let (dir, name) = key.rsplit_once('/').unwrap_or(("", key));
            let folder = self.folder(&s, "write", dir, true).await?.ok_or_else(|| {
                remote(
                    "write",
                    RemoteKind::Other,
                    true,
                    "The MEGA folder could not be created.".to_owned(),
                )
            })?;
            let temp_name =
                format!("{}{name}.{:016x}", Key::RESERVED_PREFIX, rand::random::<u64>());
            // A local file: blocking reads through the adapter are short.
            let reader = futures_util::io::AllowStdIo::new(
                std::fs::File::open(&spool).map_err(|e| Error::io(&spool, e))?,
            );
            let uploaded = s
                .upload_reader_to_node(reader, &temp_name, body.size(), &folder)
                .await
                .map_err(|e| self.map_err("write", &what, e))?;
            if let Some(old) = s
                .child_node_by_name(&folder, name)
                .await
                .map_err(|e| self.map_err("write", &what, e))?
            {
                s.remove_node(&old).await.map_err(|e| self.map_err("write", &what, e))?;
            }
            if let Err(e) = s.rename_node(&uploaded, name).await {
                let _ = s.remove_node(&uploaded).await;
                return Err(self.map_err("write", &what, e));
            }
            if uploaded.size != body.size() {
                return Err(Error::Verify(format!(
                    "MEGA stored {} bytes of {what} instead of {}.",
                    uploaded.size,
                    body.size()
                )));
            }
            Ok(())
        }
        .await;
        let _ = tokio::fs::remove_file(&spool).await;
        result
    }

    async fn read(&self, key: &str, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        let what = format!("\"{key}\"");
        let s = self.session("read").await?;
        let node = self.file(&s, "read", key).await?.ok_or_else(|| {
            remote("read", RemoteKind::NotFound, false, format!("{what} does not exist on MEGA."))
        })?;
        let range = range.unwrap_or(0..node.size);
        let end = range.end.min(node.size);
        let start = range.start.min(end);
        if start == end {
            return Ok(Vec::new());
        }
        let data = Arc::new(StdMutex::new(Vec::new()));
        let sink = Capped {
            data: data.clone(),
            limit: usize::try_from(end - start).unwrap_or(usize::MAX),
        };
        s.download_to_writer_with_offset(&node, Box::new(sink), start)
            .await
            .map_err(|e| self.map_err("read", &what, e))?;
        let out = data.lock().map(|d| d.clone()).unwrap_or_default();
        Ok(out)
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let s = self.session("stat").await?;
        Ok(self.file(&s, "stat", key).await?.map(|n| Self::meta(key.to_owned(), &n)))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let s = self.session("list").await?;
        let start = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
        let Some(folder) = self.folder(&s, "list", start, false).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut pending = vec![(start.to_owned(), folder.handle.clone())];
        while let Some((dir, handle)) = pending.pop() {
            for n in s
                .children_by_handle(&handle)
                .await
                .map_err(|e| self.map_err("list", "a folder", e))?
            {
                let key = if dir.is_empty() { n.name.clone() } else { format!("{dir}/{}", n.name) };
                match n.node_type {
                    NodeType::Folder => {
                        let as_dir = format!("{key}/");
                        if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                            pending.push((key, n.handle.clone()));
                        }
                    }
                    NodeType::File
                        if key.starts_with(prefix) && !n.name.starts_with(Key::RESERVED_PREFIX) =>
                    {
                        out.push(Self::meta(key, &n));
                    }
                    _ => {}
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let s = self.session("delete").await?;
        match self.file(&s, "delete", key).await? {
            Some(n) => s
                .remove_node(&n)
                .await
                .map_err(|e| self.map_err("delete", &format!("\"{key}\""), e)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn mega_config_is_checked_and_the_password_hidden() {
        let cfg = ResolvedConfig::for_tests(
            "mega",
            json!({ "email": "cams@example.com", "root": "/nvr/a/" }),
            json!({ "password": "Sekrit-123" }),
        );
        let b = MegaBackend::from_resolved(&cfg, Duration::from_secs(5)).unwrap();
        assert_eq!(b.root, vec!["nvr", "a"]);
        assert!(!format!("{b:?}").contains("Sekrit-123"));
        assert_eq!(b.target(), "MEGA cams@example.com /nvr/a");
        let err = MegaBackend::from_resolved(
            &ResolvedConfig::for_tests(
                "mega",
                json!({ "email": "cams" }),
                json!({ "password": "x" }),
            ),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not an e-mail address"), "{err}");
        let err = MegaBackend::from_resolved(
            &ResolvedConfig::for_tests("mega", json!({ "email": "a@b.c" }), json!({})),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(err.to_string().contains("password is required"), "{err}");
        let e = b.map_err(
            "write",
            "\"x\"",
            MegaError::ApiError { code: -17, message: "Sekrit-123".into() },
        );
        assert_eq!(e.remote_kind(), Some(RemoteKind::Other));
        let e =
            b.map_err("read", "\"x\"", MegaError::ApiError { code: -9, message: String::new() });
        assert_eq!(e.remote_kind(), Some(RemoteKind::NotFound));
        let e = b.map_err(
            "read",
            "\"x\"",
            MegaError::ApiError { code: -99, message: "Sekrit-123".into() },
        );
        assert!(!e.to_string().contains("Sekrit-123"), "{e}");
    }
}
