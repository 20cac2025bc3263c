//! Box backend over Box's REST API (OpenDAL has no Box service).
//!
//! Configuration:
//! - `root_folder_id` (default `0`, "All Files") and `root` (optional path below it);
//! - secrets `refresh_token`, `client_id`, `client_secret` (OAuth 2; the access token is
//!   refreshed on its own) or a short-lived `access_token` alone;
//! - advanced: `api_url` (default `https://api.box.com/2.0`), `upload_url` (default
//!   `https://upload.box.com/api/2.0`), `token_url` (default
//!   `https://api.box.com/oauth2/token`), `chunked_threshold` (bytes, default 50 MB, at
//!   least 20 MB: Box's smallest upload session).
//!
//! Box rotates refresh tokens: each refresh returns a new one and the old one stops working.
//! The current one is kept in memory and offered by [`BoxBackend::current_refresh_token`] so
//! the caller can store it.
//!
//! Uploads: a file below the threshold goes as one multipart `POST /files/content` (or
//! `POST /files/{id}/content` for a new version of an existing file), streamed; larger files
//! use an upload session (`POST /files/upload_sessions`, `PUT` each part with its SHA-1 in a
//! `Digest` header and its `Content-Range`, `POST …/commit` with the whole file's SHA-1; the
//! session is deleted on failure). The SHA-1 Box reports for the stored file is compared with
//! the one of the bytes sent. Keys map to folders walked from the root folder by name (folder
//! ids are cached; missing folders are created on write).

use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use tokio::sync::Mutex;

use super::smb::remote;
use super::{Backend, BackendCaps, Body, WriteOptions, redact};
use crate::definition::ResolvedConfig;
use crate::error::RemoteKind;
use crate::module::ObjectMeta;
use crate::{Error, Result};

/// Box's smallest upload session.
const MIN_SESSION_SIZE: u64 = 20_000_000;
/// Box's largest direct upload.
const MAX_DIRECT_SIZE: u64 = 50_000_000;
/// Items per folder listing page (Box's maximum).
const PAGE: usize = 1000;

/// OAuth state.
struct Tokens {
    access: Option<String>,
    expires: Option<Instant>,
    refresh: Option<String>,
}

/// A file or folder in a listing.
#[derive(Debug, Clone)]
struct Item {
    id: String,
    kind: String,
    name: String,
    size: u64,
    modified: Option<DateTime<Utc>>,
    sha1: Option<String>,
}

/// The Box backend.
pub(crate) struct BoxBackend {
    http: reqwest::Client,
    api: String,
    upload: String,
    token_url: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    root_id: String,
    root: Vec<String>,
    threshold: u64,
    tokens: Mutex<Tokens>,
    /// Folder path (relative to the root, `/`-separated, "" = root) → folder id.
    folders: std::sync::Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for BoxBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoxBackend")
            .field("api", &self.api)
            .field("root_id", &self.root_id)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn item_of(v: &Value) -> Item {
    Item {
        id: v["id"].as_str().unwrap_or_default().to_owned(),
        kind: v["type"].as_str().unwrap_or_default().to_owned(),
        name: v["name"].as_str().unwrap_or_default().to_owned(),
        size: v["size"].as_u64().unwrap_or(0),
        modified: v["modified_at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc)),
        sha1: v["sha1"].as_str().map(str::to_owned),
    }
}

impl BoxBackend {
    /// Build from a module's resolved configuration; `timeout` bounds each request.
    pub(crate) fn from_resolved(cfg: &ResolvedConfig, timeout: Duration) -> Result<Self> {
        let refresh = cfg.secret("refresh_token");
        let access = cfg.secret("access_token");
        let client_id = cfg.any("client_id");
        let client_secret = cfg.secret("client_secret");
        if refresh.is_none() && access.is_none() {
            return Err(Error::Provider(
                "Box needs a refresh token (connect the account) or an access token.".to_owned(),
            ));
        }
        if refresh.is_some() && (client_id.is_none() || client_secret.is_none()) {
            return Err(Error::Provider(
                "Box needs the app's client ID and client secret to refresh its access token."
                    .to_owned(),
            ));
        }
        let threshold = match cfg.get("chunked_threshold") {
            None => MAX_DIRECT_SIZE,
            Some(t) => t
                .parse::<u64>()
                .ok()
                .filter(|t| (MIN_SESSION_SIZE..=MAX_DIRECT_SIZE).contains(t))
                .ok_or_else(|| {
                    Error::Provider(format!(
                        "The chunked upload threshold must be a byte count from {MIN_SESSION_SIZE} to {MAX_DIRECT_SIZE}, not \"{t}\"."
                    ))
                })?,
        };
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Provider(format!("The HTTP client could not be set up: {e}.")))?;
        let trim = |s: String| s.trim_end_matches('/').to_owned();
        Ok(Self {
            http,
            api: trim(cfg.get("api_url").unwrap_or_else(|| "https://api.box.com/2.0".to_owned())),
            upload: trim(
                cfg.get("upload_url")
                    .unwrap_or_else(|| "https://upload.box.com/api/2.0".to_owned()),
            ),
            token_url: cfg
                .get("token_url")
                .unwrap_or_else(|| "https://api.box.com/oauth2/token".to_owned()),
            client_id,
            client_secret,
            root_id: cfg.get("root_folder_id").unwrap_or_else(|| "0".to_owned()),
            root: cfg
                .get("root")
                .unwrap_or_default()
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            threshold,
            tokens: Mutex::new(Tokens { access, expires: None, refresh }),
            folders: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The refresh token in use now (Box replaces it on every refresh): store it.
    #[allow(dead_code)]
    pub(crate) async fn current_refresh_token(&self) -> Option<String> {
        self.tokens.lock().await.refresh.clone()
    }

    fn secrets(&self) -> Vec<String> {
        self.client_secret.iter().cloned().collect()
    }

    /// A valid access token, refreshed when expired or when `force`.
    async fn token(&self, force: bool) -> Result<String> {
        let mut t = self.tokens.lock().await;
        let fresh = t.expires.is_none_or(|e| Instant::now() + Duration::from_secs(60) < e);
        if let Some(a) = &t.access
            && fresh
            && !force
        {
            return Ok(a.clone());
        }
        let (Some(refresh), Some(id), Some(secret)) =
            (t.refresh.clone(), &self.client_id, &self.client_secret)
        else {
            return match (&t.access, force) {
                (Some(a), false) => Ok(a.clone()),
                _ => Err(remote(
                    "connect",
                    RemoteKind::Auth,
                    false,
                    "Box refused the access token and no refresh token is set: connect the Box account again.".to_owned(),
                )),
            };
        };
        let resp = self
            .http
            .post(&self.token_url)
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
                ("client_id", id.as_str()),
                ("client_secret", secret.as_str()),
            ])
            .send()
            .await
            .map_err(|e| self.net_error("connect", &e))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let detail = body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or("no reason given");
            return Err(remote(
                "connect",
                RemoteKind::Auth,
                false,
                format!(
                    "Box refused to renew the access token ({}: {}); connect the Box account again.",
                    status.as_u16(),
                    redact(detail, &self.secrets())
                ),
            ));
        }
        let access = body["access_token"].as_str().map(str::to_owned).ok_or_else(|| {
            remote(
                "connect",
                RemoteKind::Other,
                true,
                "Box answered the token request without a token.".to_owned(),
            )
        })?;
        t.access = Some(access.clone());
        t.expires =
            Some(Instant::now() + Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600)));
        if let Some(r) = body["refresh_token"].as_str() {
            t.refresh = Some(r.to_owned());
        }
        Ok(access)
    }

    fn net_error(&self, op: &'static str, e: &reqwest::Error) -> Error {
        let host = e
            .url()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "Box".to_owned());
        if e.is_timeout() {
            remote(op, RemoteKind::Timeout, true, format!("{host} did not answer in time."))
        } else if e.is_connect() {
            remote(
                op,
                RemoteKind::Unreachable,
                true,
                format!("{host} cannot be reached; check the network."),
            )
        } else {
            remote(
                op,
                RemoteKind::Other,
                true,
                format!(
                    "The request to {host} failed: {}.",
                    redact(&e.to_string(), &self.secrets())
                ),
            )
        }
    }

    /// The error for a Box error response (`{"type":"error","code":…,"message":…}`).
    fn api_error(&self, op: &'static str, what: &str, status: StatusCode, body: &Value) -> Error {
        let code = body["code"].as_str().unwrap_or("");
        let message = redact(body["message"].as_str().unwrap_or(""), &self.secrets());
        let detail = if message.is_empty() { String::new() } else { format!(" ({message})") };
        let (kind, retryable, text) = match status.as_u16() {
            401 => (
                RemoteKind::Auth,
                false,
                format!("Box refused the sign-in{detail}; connect the Box account again."),
            ),
            403 => (
                RemoteKind::Permission,
                false,
                format!("The Box account may not {op} {what}{detail}."),
            ),
            404 => (RemoteKind::NotFound, false, format!("{what} does not exist on Box{detail}.")),
            409 => (
                RemoteKind::Other,
                true,
                format!("{what} changed on Box while writing{detail}; try again."),
            ),
            429 => (RemoteKind::RateLimited, true, format!("Box asks to slow down{detail}.")),
            507 => (
                RemoteKind::Other,
                false,
                format!("The Box account is out of storage space{detail}."),
            ),
            s if s >= 500 => (
                RemoteKind::Other,
                true,
                format!("Box had a server error {s} during {op} of {what}{detail}."),
            ),
            s => (
                RemoteKind::Other,
                false,
                format!("Box answered {s} {code} to {op} of {what}{detail}."),
            ),
        };
        remote(op, kind, retryable, text)
    }

    /// Send a request built by `build` with a bearer token; on 401 refresh once and retry.
    async fn send(
        &self,
        op: &'static str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        for attempt in 0..2 {
            let token = self.token(attempt > 0).await?;
            let resp = build(&self.http)
                .bearer_auth(token)
                .send()
                .await
                .map_err(|e| self.net_error(op, &e))?;
            if resp.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
                continue;
            }
            return Ok(resp);
        }
        Err(remote(
            op,
            RemoteKind::Auth,
            false,
            "Box refused the sign-in; connect the Box account again.".to_owned(),
        ))
    }

    /// JSON body of a successful response, or the Box error.
    async fn json_of(
        &self,
        op: &'static str,
        what: &str,
        resp: reqwest::Response,
    ) -> Result<Value> {
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() { Ok(body) } else { Err(self.api_error(op, what, status, &body)) }
    }

    /// Every item of a folder (all pages).
    async fn items(&self, op: &'static str, folder_id: &str) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        let mut offset = 0usize;
        loop {
            let url = format!("{}/folders/{folder_id}/items", self.api);
            let resp = self
                .send(op, |c| {
                    c.get(&url).query(&[
                        ("fields", "id,type,name,size,modified_at,sha1"),
                        ("limit", &PAGE.to_string()),
                        ("offset", &offset.to_string()),
                    ])
                })
                .await?;
            let body = self.json_of(op, "a folder", resp).await?;
            let entries = body["entries"].as_array().cloned().unwrap_or_default();
            let total = body["total_count"].as_u64().unwrap_or(0) as usize;
            offset += entries.len();
            out.extend(entries.iter().map(item_of));
            if entries.is_empty() || offset >= total {
                return Ok(out);
            }
        }
    }

    /// The id of the folder at `path` (relative to the module root); `None` when missing and
    /// not `create`.
    async fn folder_id(
        &self,
        op: &'static str,
        path: &str,
        create: bool,
    ) -> Result<Option<String>> {
        let full: Vec<String> = self
            .root
            .iter()
            .cloned()
            .chain(path.split('/').filter(|s| !s.is_empty()).map(str::to_owned))
            .collect();
        let mut id = self.root_id.clone();
        let mut walked = String::new();
        for name in full {
            if !walked.is_empty() {
                walked.push('/');
            }
            walked.push_str(&name);
            let cached = self.folders.lock().ok().and_then(|f| f.get(&walked).cloned());
            if let Some(c) = cached {
                id = c;
                continue;
            }
            let found = self
                .items(op, &id)
                .await?
                .into_iter()
                .find(|i| i.kind == "folder" && i.name == name);
            let next = match found {
                Some(f) => f.id,
                None if create => self.create_folder(&id, &name).await?,
                None => return Ok(None),
            };
            if let Ok(mut f) = self.folders.lock() {
                f.insert(walked.clone(), next.clone());
            }
            id = next;
        }
        Ok(Some(id))
    }

    async fn create_folder(&self, parent: &str, name: &str) -> Result<String> {
        let url = format!("{}/folders", self.api);
        let payload = json!({ "name": name, "parent": { "id": parent } });
        let resp = self.send("write", |c| c.post(&url).json(&payload)).await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body["id"].as_str().unwrap_or_default().to_owned());
        }
        if status == StatusCode::CONFLICT {
            // Created meanwhile (or by another writer): use the existing folder.
            let conflicts = &body["context_info"]["conflicts"];
            let existing = conflicts[0]["id"].as_str().or(conflicts["id"].as_str());
            if let Some(id) = existing {
                return Ok(id.to_owned());
            }
        }
        Err(self.api_error("write", &format!("the folder \"{name}\""), status, &body))
    }

    fn split(key: &str) -> (&str, &str) {
        key.rsplit_once('/').unwrap_or(("", key))
    }

    fn clear_cache(&self) {
        if let Ok(mut f) = self.folders.lock() {
            f.clear();
        }
    }

    /// The file item at `key`, if any.
    async fn find(&self, op: &'static str, key: &str) -> Result<Option<Item>> {
        let (dir, name) = Self::split(key);
        let Some(folder) = self.folder_id(op, dir, false).await? else { return Ok(None) };
        match self.items(op, &folder).await {
            Ok(items) => Ok(items.into_iter().find(|i| i.kind == "file" && i.name == name)),
            Err(e) if e.remote_kind() == Some(RemoteKind::NotFound) => {
                self.clear_cache();
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn write_body(&self, key: &str, body: &mut Body) -> Result<()> {
        let (dir, name) = Self::split(key);
        let folder = self.folder_id("write", dir, true).await?.ok_or_else(|| {
            remote(
                "write",
                RemoteKind::Other,
                true,
                "The Box folder could not be created.".to_owned(),
            )
        })?;
        let existing = self
            .items("write", &folder)
            .await?
            .into_iter()
            .find(|i| i.kind == "file" && i.name == name);
        let what = format!("\"{key}\"");
        let (stored, sent_sha1) = if body.size() >= self.threshold {
            self.upload_session(
                &folder,
                name,
                existing.as_ref().map(|i| i.id.as_str()),
                body,
                &what,
            )
            .await?
        } else {
            self.upload_direct(&folder, name, existing.as_ref().map(|i| i.id.as_str()), body, &what)
                .await?
        };
        match stored.sha1 {
            Some(sha) if !sha.eq_ignore_ascii_case(&sent_sha1) => Err(Error::Verify(format!(
                "Box stored {what} with SHA-1 {sha}, but the bytes sent have SHA-1 {sent_sha1}."
            ))),
            _ if stored.size != body.size() => Err(Error::Verify(format!(
                "Box stored {} bytes of {what} instead of {}.",
                stored.size,
                body.size()
            ))),
            _ => Ok(()),
        }
    }

    /// One multipart POST, the file part streamed from `body`. Returns the stored file and the
    /// SHA-1 (hex) of the bytes sent.
    async fn upload_direct(
        &self,
        folder: &str,
        name: &str,
        existing: Option<&str>,
        body: &mut Body,
        what: &str,
    ) -> Result<(Item, String)> {
        let url = match existing {
            Some(id) => format!("{}/files/{id}/content", self.upload),
            None => format!("{}/files/content", self.upload),
        };
        let boundary = format!("pentavision-{:016x}", rand::random::<u64>());
        let attributes = match existing {
            Some(_) => json!({ "name": name }),
            None => json!({ "name": name, "parent": { "id": folder } }),
        };
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"attributes\"\r\nContent-Type: application/json\r\n\r\n{attributes}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            name.replace(['"', '\r', '\n'], "_")
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let length = head.len() as u64 + body.size() + tail.len() as u64;
        let token = self.token(false).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<std::result::Result<Bytes, std::io::Error>>(4);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let request = self
            .http
            .post(&url)
            .bearer_auth(token)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(reqwest::Body::wrap_stream(stream))
            .send();
        let feed = async {
            let mut sha = Sha1::new();
            if tx.send(Ok(Bytes::from(head))).await.is_err() {
                return Ok(hex::encode(sha.finalize()));
            }
            loop {
                match body.next().await {
                    Ok(Some(piece)) => {
                        sha.update(&piece);
                        if tx.send(Ok(piece)).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => {
                        let _ = tx.send(Ok(Bytes::from(tail))).await;
                        break;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other("the upload was stopped"))).await;
                        return Err(e);
                    }
                }
            }
            drop(tx);
            Ok(hex::encode(sha.finalize()))
        };
        let (sent, fed) = tokio::join!(request, feed);
        let sha = fed?;
        let resp = sent.map_err(|e| self.net_error("write", &e))?;
        let status = resp.status();
        let json: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(self.api_error("write", what, status, &json));
        }
        Ok((item_of(&json["entries"][0]), sha))
    }

    /// A chunked upload session. Returns the stored file and the SHA-1 (hex) of the bytes sent.
    async fn upload_session(
        &self,
        folder: &str,
        name: &str,
        existing: Option<&str>,
        body: &mut Body,
        what: &str,
    ) -> Result<(Item, String)> {
        let size = body.size();
        let (url, payload) = match existing {
            Some(id) => (
                format!("{}/files/{id}/upload_sessions", self.upload),
                json!({ "file_size": size, "file_name": name }),
            ),
            None => (
                format!("{}/files/upload_sessions", self.upload),
                json!({ "folder_id": folder, "file_size": size, "file_name": name }),
            ),
        };
        let resp = self.send("write", |c| c.post(&url).json(&payload)).await?;
        let session = self.json_of("write", what, resp).await?;
        let part_size = session["part_size"].as_u64().filter(|p| *p > 0).ok_or_else(|| {
            remote(
                "write",
                RemoteKind::Other,
                true,
                "Box opened an upload session without a part size.".to_owned(),
            )
        })?;
        let sid = session["id"].as_str().unwrap_or_default().to_owned();
        let endpoint = |key: &str, fallback: String| {
            session["session_endpoints"][key].as_str().map(str::to_owned).unwrap_or(fallback)
        };
        let part_url =
            endpoint("upload_part", format!("{}/files/upload_sessions/{sid}", self.upload));
        let commit_url =
            endpoint("commit", format!("{}/files/upload_sessions/{sid}/commit", self.upload));
        let abort_url = endpoint("abort", format!("{}/files/upload_sessions/{sid}", self.upload));
        let result = self.session_parts(&part_url, &commit_url, part_size, size, body, what).await;
        if result.is_err() {
            let _ = self.send("write", |c| c.request(Method::DELETE, &abort_url)).await;
        }
        result
    }

    async fn session_parts(
        &self,
        part_url: &str,
        commit_url: &str,
        part_size: u64,
        size: u64,
        body: &mut Body,
        what: &str,
    ) -> Result<(Item, String)> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut whole = Sha1::new();
        let mut parts = Vec::new();
        let mut offset = 0u64;
        let mut buf: Vec<u8> = Vec::with_capacity(usize::try_from(part_size).unwrap_or(0));
        let mut done = false;
        while !done {
            // Fill one part (the body hands out pieces of about 1 MiB).
            while (buf.len() as u64) < part_size {
                match body.next().await? {
                    Some(piece) => buf.extend_from_slice(&piece),
                    None => {
                        done = true;
                        break;
                    }
                }
            }
            let take = (buf.len() as u64).min(part_size) as usize;
            if take == 0 {
                break;
            }
            let rest = buf.split_off(take);
            let part = Bytes::from(std::mem::replace(&mut buf, rest));
            whole.update(&part);
            let digest = format!("sha={}", b64.encode(Sha1::digest(&part)));
            let range = format!("bytes {}-{}/{size}", offset, offset + part.len() as u64 - 1);
            let resp = self
                .send("write", |c| {
                    c.put(part_url)
                        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                        .header("digest", &digest)
                        .header(reqwest::header::CONTENT_RANGE, &range)
                        .body(part.clone())
                })
                .await?;
            let json = self.json_of("write", what, resp).await?;
            parts.push(json["part"].clone());
            offset += part.len() as u64;
            if !buf.is_empty() {
                done = false;
            }
        }
        let sha = whole.finalize();
        let digest = format!("sha={}", b64.encode(sha));
        let payload = json!({ "parts": parts });
        // Box answers 202 while it still assembles the parts: wait as told and ask again.
        for _ in 0..30 {
            let resp = self
                .send("write", |c| c.post(commit_url).header("digest", &digest).json(&payload))
                .await?;
            if resp.status() == StatusCode::ACCEPTED {
                let wait = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait.min(30))).await;
                continue;
            }
            let json = self.json_of("write", what, resp).await?;
            return Ok((item_of(&json["entries"][0]), hex::encode(sha)));
        }
        Err(remote(
            "write",
            RemoteKind::Timeout,
            true,
            format!("Box did not finish assembling {what} in time."),
        ))
    }

    async fn read_range(&self, key: &str, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        let what = format!("\"{key}\"");
        let item = self.find("read", key).await?.ok_or_else(|| {
            remote("read", RemoteKind::NotFound, false, format!("{what} does not exist on Box."))
        })?;
        if let Some(r) = &range
            && (r.start >= r.end || r.start >= item.size)
        {
            return Ok(Vec::new());
        }
        let url = format!("{}/files/{}/content", self.api, item.id);
        for _ in 0..10 {
            let resp = self
                .send("read", |c| {
                    let rb = c.get(&url);
                    match &range {
                        Some(r) => rb.header(
                            reqwest::header::RANGE,
                            format!("bytes={}-{}", r.start, r.end.min(item.size) - 1),
                        ),
                        None => rb,
                    }
                })
                .await?;
            let status = resp.status();
            if status == StatusCode::ACCEPTED {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            if !status.is_success() {
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                return Err(self.api_error("read", &what, status, &body));
            }
            let data = resp.bytes().await.map_err(|e| self.net_error("read", &e))?;
            let mut data = data.to_vec();
            // A server that ignores Range sends everything: cut the range out.
            if let Some(r) = &range
                && status == StatusCode::OK
            {
                let end = (r.end as usize).min(data.len());
                data = data.get(r.start as usize..end).map(<[u8]>::to_vec).unwrap_or_default();
            }
            return Ok(data);
        }
        Err(remote(
            "read",
            RemoteKind::Timeout,
            true,
            format!("Box did not make {what} ready for download in time."),
        ))
    }

    async fn list_prefix(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let start = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
        let Some(start_id) = self.folder_id("list", start, false).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut pending = vec![(start.to_owned(), start_id)];
        while let Some((dir, id)) = pending.pop() {
            for item in self.items("list", &id).await? {
                let key =
                    if dir.is_empty() { item.name.clone() } else { format!("{dir}/{}", item.name) };
                if item.kind == "folder" {
                    let as_dir = format!("{key}/");
                    if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                        pending.push((key, item.id));
                    }
                } else if item.kind == "file" && key.starts_with(prefix) {
                    out.push(ObjectMeta {
                        key,
                        size: item.size,
                        etag: None,
                        last_modified: item.modified,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete_key(&self, key: &str) -> Result<()> {
        let Some(item) = self.find("delete", key).await? else { return Ok(()) };
        let url = format!("{}/files/{}", self.api, item.id);
        let resp = self.send("delete", |c| c.delete(&url)).await?;
        let status = resp.status();
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        Err(self.api_error("delete", &format!("\"{key}\""), status, &body))
    }
}

#[async_trait]
impl Backend for BoxBackend {
    fn target(&self) -> String {
        format!("Box folder {} /{}", self.root_id, self.root.join("/"))
    }

    fn caps(&self) -> BackendCaps {
        BackendCaps { multipart: true, range: true, presign: false, etag_is_md5: false }
    }

    async fn check(&self) -> Result<()> {
        let url = format!("{}/folders/{}", self.api, self.root_id);
        let resp = self.send("connect", |c| c.get(&url).query(&[("fields", "id,name")])).await?;
        self.json_of("connect", &format!("the folder with id {}", self.root_id), resp)
            .await
            .map(|_| ())
    }

    async fn write(&self, key: &str, body: &mut Body, _options: WriteOptions) -> Result<()> {
        let result = self.write_body(key, body).await;
        if result.as_ref().err().and_then(Error::remote_kind) == Some(RemoteKind::NotFound) {
            self.clear_cache();
        }
        result
    }

    async fn read(&self, key: &str, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        self.read_range(key, range).await
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>> {
        Ok(self.find("stat", key).await?.map(|i| ObjectMeta {
            key: key.to_owned(),
            size: i.size,
            etag: None,
            last_modified: i.modified,
        }))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.list_prefix(prefix).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.delete_key(key).await
    }
}

#[cfg(test)]
mod tests {
    //! A local server speaking the slice of Box's API the backend uses: OAuth refresh (with
    //! rotation), folder items, folder creation (409 on a taken name), multipart upload and
    //! new version, upload sessions (part size, `Digest`, `Content-Range`, commit answering 202
    //! once), download through a 302 to a download host with `Range`, delete.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::sync::{Arc, Mutex as StdMutex};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    const PART: u64 = 8 * 1024 * 1024;

    /// An upload session: (parent, name, size, existing file id, parts by offset, commit calls).
    type Session = (String, String, u64, Option<String>, HashMap<u64, Vec<u8>>, u32);

    #[derive(Default)]
    struct State {
        token: String,
        refresh: String,
        refreshes: u32,
        next_id: u64,
        /// id → (name, parent id, is_folder, content)
        items: HashMap<String, (String, String, bool, Vec<u8>)>,
        sessions: HashMap<String, Session>,
        direct_uploads: u32,
        session_uploads: u32,
        aborted: u32,
    }

    impl State {
        fn id(&mut self) -> String {
            self.next_id += 1;
            format!("{}", 1000 + self.next_id)
        }
        fn file_json(&self, id: &str) -> Value {
            let (name, parent, folder, data) = &self.items[id];
            json!({ "type": if *folder { "folder" } else { "file" }, "id": id, "name": name,
                    "size": data.len(), "sha1": hex::encode(Sha1::digest(data)),
                    "modified_at": "2026-12-05T10:00:00-08:00", "parent": { "id": parent } })
        }
        fn child(&self, parent: &str, name: &str) -> Option<String> {
            self.items
                .iter()
                .find(|(_, (n, p, _, _))| n == name && p == parent)
                .map(|(id, _)| id.clone())
        }
    }

    struct Req {
        method: String,
        path: String,
        query: HashMap<String, String>,
        headers: HashMap<String, String>,
        body: Vec<u8>,
    }

    fn error(status: u16, code: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let body = json!({ "type": "error", "status": status, "code": code, "message": format!("mock: {code}") });
        (status, vec![], body.to_string().into_bytes())
    }

    fn ok(status: u16, v: Value) -> (u16, Vec<(String, String)>, Vec<u8>) {
        (
            status,
            vec![("content-type".into(), "application/json".into())],
            v.to_string().into_bytes(),
        )
    }

    fn handle(st: &mut State, r: Req) -> (u16, Vec<(String, String)>, Vec<u8>) {
        if r.path == "/oauth2/token" {
            let form: HashMap<String, String> = url_form(&r.body);
            if form.get("grant_type").map(String::as_str) != Some("refresh_token")
                || form.get("refresh_token") != Some(&st.refresh)
                || form.get("client_secret").map(String::as_str) != Some("client-secret-xyz")
            {
                return (
                    400,
                    vec![],
                    json!({"error":"invalid_grant","error_description":"Invalid refresh token"})
                        .to_string()
                        .into_bytes(),
                );
            }
            st.refreshes += 1;
            st.token = format!("access-{}", st.refreshes);
            st.refresh = format!("refresh-{}", st.refreshes);
            return ok(
                200,
                json!({ "access_token": st.token, "expires_in": 3600, "refresh_token": st.refresh, "token_type": "bearer" }),
            );
        }
        if let Some(id) = r.path.strip_prefix("/download/") {
            let data = st.items[id].3.clone();
            if let Some(range) = r.headers.get("range") {
                let (a, b) = range.trim_start_matches("bytes=").split_once('-').unwrap();
                let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                return (206, vec![], data[a..=b.min(data.len() - 1)].to_vec());
            }
            return (200, vec![], data);
        }
        if r.headers.get("authorization") != Some(&format!("Bearer {}", st.token)) {
            return error(401, "unauthorized");
        }
        let parts: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        match (r.method.as_str(), parts.as_slice()) {
            ("GET", ["2.0", "folders", id]) => {
                if *id == "0" || st.items.get(*id).is_some_and(|i| i.2) {
                    ok(200, json!({ "type": "folder", "id": id, "name": "All Files" }))
                } else {
                    error(404, "not_found")
                }
            }
            ("GET", ["2.0", "folders", id, "items"]) => {
                assert!(r.query["fields"].contains("sha1"));
                let limit: usize = r.query["limit"].parse().unwrap();
                let offset: usize = r.query["offset"].parse().unwrap();
                let mut ids: Vec<String> =
                    st.items.iter().filter(|(_, i)| i.1 == *id).map(|(k, _)| k.clone()).collect();
                ids.sort();
                let entries: Vec<Value> =
                    ids.iter().skip(offset).take(limit.min(2)).map(|i| st.file_json(i)).collect();
                // Pages of two entries exercise the pagination.
                ok(
                    200,
                    json!({ "total_count": ids.len(), "entries": entries, "offset": offset, "limit": limit }),
                )
            }
            ("POST", ["2.0", "folders"]) => {
                let v: Value = serde_json::from_slice(&r.body).unwrap();
                let (name, parent) = (
                    v["name"].as_str().unwrap().to_owned(),
                    v["parent"]["id"].as_str().unwrap().to_owned(),
                );
                if let Some(existing) = st.child(&parent, &name) {
                    let mut e: Value =
                        serde_json::from_slice(&error(409, "item_name_in_use").2).unwrap();
                    e["context_info"] =
                        json!({ "conflicts": [ { "type": "folder", "id": existing } ] });
                    return ok(409, e);
                }
                let id = st.id();
                st.items.insert(id.clone(), (name, parent, true, vec![]));
                ok(201, st.file_json(&id))
            }
            ("POST", ["api", "2.0", "files", "content"])
            | ("POST", ["api", "2.0", "files", _, "content"]) => {
                let ctype = r.headers["content-type"].clone();
                let boundary = ctype.split("boundary=").nth(1).unwrap().to_owned();
                assert_eq!(r.headers["content-length"].parse::<usize>().unwrap(), r.body.len());
                let (attributes, file) = multipart(&r.body, &boundary);
                let attributes: Value = serde_json::from_slice(&attributes).unwrap();
                st.direct_uploads += 1;
                let id = if parts.len() == 5 {
                    let id = parts[3].to_owned();
                    st.items.get_mut(&id).unwrap().3 = file;
                    id
                } else {
                    let (name, parent) = (
                        attributes["name"].as_str().unwrap().to_owned(),
                        attributes["parent"]["id"].as_str().unwrap().to_owned(),
                    );
                    if let Some(existing) = st.child(&parent, &name) {
                        let mut e: Value =
                            serde_json::from_slice(&error(409, "item_name_in_use").2).unwrap();
                        e["context_info"] =
                            json!({ "conflicts": { "type": "file", "id": existing } });
                        return ok(409, e);
                    }
                    let id = st.id();
                    st.items.insert(id.clone(), (name, parent, false, file));
                    id
                };
                ok(201, json!({ "total_count": 1, "entries": [st.file_json(&id)] }))
            }
            ("POST", ["api", "2.0", "files", "upload_sessions"])
            | ("POST", ["api", "2.0", "files", _, "upload_sessions"]) => {
                let v: Value = serde_json::from_slice(&r.body).unwrap();
                let size = v["file_size"].as_u64().unwrap();
                if size < MIN_SESSION_SIZE {
                    return error(400, "file_size_too_small");
                }
                let existing = (parts.len() == 5).then(|| parts[3].to_owned());
                let parent = v["folder_id"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| st.items[existing.as_ref().unwrap()].1.clone());
                let sid = format!("S{}", st.id());
                st.sessions.insert(
                    sid.clone(),
                    (
                        parent,
                        v["file_name"].as_str().unwrap().to_owned(),
                        size,
                        existing,
                        HashMap::new(),
                        0,
                    ),
                );
                ok(
                    201,
                    json!({ "id": sid, "type": "upload_session", "part_size": PART, "total_parts": size.div_ceil(PART),
                    "num_parts_processed": 0, "session_expires_at": "2026-12-12T10:00:00Z",
                    "session_endpoints": {
                        "upload_part": format!("{}/api/2.0/files/upload_sessions/{sid}", r.headers["x-base"]),
                        "commit": format!("{}/api/2.0/files/upload_sessions/{sid}/commit", r.headers["x-base"]),
                        "abort": format!("{}/api/2.0/files/upload_sessions/{sid}", r.headers["x-base"]),
                    } }),
                )
            }
            ("PUT", ["api", "2.0", "files", "upload_sessions", sid]) => {
                let b64 = base64::engine::general_purpose::STANDARD;
                let digest = format!("sha={}", b64.encode(Sha1::digest(&r.body)));
                if r.headers.get("digest") != Some(&digest) {
                    return error(412, "sha1_mismatch");
                }
                let range = r.headers["content-range"].trim_start_matches("bytes ").to_owned();
                let (span, total) = range.split_once('/').unwrap();
                let (a, b) = span.split_once('-').unwrap();
                let (a, b, total): (u64, u64, u64) =
                    (a.parse().unwrap(), b.parse().unwrap(), total.parse().unwrap());
                let session = st.sessions.get_mut(*sid).unwrap();
                assert_eq!(total, session.2);
                assert_eq!(b - a + 1, r.body.len() as u64);
                if a % PART != 0 || (r.body.len() as u64 != PART && b + 1 != total) {
                    return error(416, "range_not_satisfiable");
                }
                session.4.insert(a, r.body.clone());
                ok(
                    200,
                    json!({ "part": { "part_id": format!("P{a}"), "offset": a, "size": r.body.len(), "sha1": hex::encode(Sha1::digest(&r.body)) } }),
                )
            }
            ("POST", ["api", "2.0", "files", "upload_sessions", sid, "commit"]) => {
                let v: Value = serde_json::from_slice(&r.body).unwrap();
                let session = st.sessions.get_mut(*sid).unwrap();
                session.5 += 1;
                if session.5 == 1 {
                    return (202, vec![("retry-after".into(), "0".into())], vec![]);
                }
                let mut offsets: Vec<u64> = session.4.keys().copied().collect();
                offsets.sort();
                assert_eq!(v["parts"].as_array().unwrap().len(), offsets.len());
                let data: Vec<u8> = offsets.iter().flat_map(|o| session.4[o].clone()).collect();
                let b64 = base64::engine::general_purpose::STANDARD;
                if r.headers.get("digest")
                    != Some(&format!("sha={}", b64.encode(Sha1::digest(&data))))
                    || data.len() as u64 != session.2
                {
                    return error(422, "bad_digest");
                }
                let (parent, name, _, existing, _, _) = st.sessions.remove(*sid).unwrap();
                st.session_uploads += 1;
                let id = match existing {
                    Some(id) => id,
                    None => st.id(),
                };
                st.items.insert(id.clone(), (name, parent, false, data));
                ok(201, json!({ "total_count": 1, "entries": [st.file_json(&id)] }))
            }
            ("DELETE", ["api", "2.0", "files", "upload_sessions", sid]) => {
                st.sessions.remove(*sid);
                st.aborted += 1;
                (204, vec![], vec![])
            }
            ("GET", ["2.0", "files", id, "content"]) => {
                if !st.items.contains_key(*id) {
                    return error(404, "not_found");
                }
                (
                    302,
                    vec![("location".into(), format!("{}/download/{id}", r.headers["x-base"]))],
                    vec![],
                )
            }
            ("DELETE", ["2.0", "files", id]) => {
                if st.items.remove(*id).is_some() {
                    (204, vec![], vec![])
                } else {
                    error(404, "not_found")
                }
            }
            _ => error(404, "not_found"),
        }
    }

    fn url_form(body: &[u8]) -> HashMap<String, String> {
        String::from_utf8_lossy(body)
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.replace("%2F", "/").replace('+', " ")))
            .collect()
    }

    fn multipart(body: &[u8], boundary: &str) -> (Vec<u8>, Vec<u8>) {
        let delim = format!("--{boundary}");
        let find = |hay: &[u8], needle: &[u8], from: usize| {
            hay[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
        };
        let mut out = Vec::new();
        let mut pos = find(body, delim.as_bytes(), 0).unwrap() + delim.len();
        while &body[pos..pos + 2] != b"--" {
            let head_end = find(body, b"\r\n\r\n", pos).unwrap() + 4;
            let next = find(body, format!("\r\n{delim}").as_bytes(), head_end).unwrap();
            out.push(body[head_end..next].to_vec());
            pos = next + 2 + delim.len();
        }
        assert_eq!(out.len(), 2, "attributes then file");
        (out[0].clone(), out[1].clone())
    }

    /// Serve the mock on a free port; returns the base URL and the shared state.
    async fn serve() -> (String, Arc<StdMutex<State>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(StdMutex::new(State {
            token: "stale".into(),
            refresh: "refresh-0".into(),
            ..State::default()
        }));
        let (st, b) = (state.clone(), base.clone());
        tokio::spawn(async move {
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                let (st, b) = (st.clone(), b.clone());
                tokio::spawn(async move {
                    let (rd, mut wr) = sock.into_split();
                    let mut rd = BufReader::new(rd);
                    loop {
                        let mut line = String::new();
                        if rd.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut it = line.split_whitespace();
                        let (method, target) =
                            (it.next().unwrap().to_owned(), it.next().unwrap().to_owned());
                        let mut headers = HashMap::new();
                        loop {
                            let mut h = String::new();
                            rd.read_line(&mut h).await.unwrap();
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            let (k, v) = h.split_once(':').unwrap();
                            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                        }
                        assert!(
                            !headers.contains_key("transfer-encoding"),
                            "uploads carry a Content-Length"
                        );
                        let len: usize =
                            headers.get("content-length").map(|l| l.parse().unwrap()).unwrap_or(0);
                        let mut body = vec![0u8; len];
                        rd.read_exact(&mut body).await.unwrap();
                        headers.insert("x-base".into(), b.clone());
                        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                        let query = url_form(query.as_bytes());
                        let req = Req { method, path: path.to_owned(), query, headers, body };
                        let (status, hdrs, body) = handle(&mut st.lock().unwrap(), req);
                        let mut resp =
                            format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                        for (k, v) in hdrs {
                            resp.push_str(&format!("{k}: {v}\r\n"));
                        }
                        resp.push_str("\r\n");
                        wr.write_all(resp.as_bytes()).await.unwrap();
                        wr.write_all(&body).await.unwrap();
                    }
                });
            }
        });
        (base, state)
    }

    fn backend(base: &str, refresh: &str) -> BoxBackend {
        let cfg = ResolvedConfig::for_tests(
            "box",
            json!({ "api_url": format!("{base}/2.0"), "upload_url": format!("{base}/api/2.0"),
                    "token_url": format!("{base}/oauth2/token"), "root": "nvr", "chunked_threshold": 20_000_000 }),
            json!({ "refresh_token": refresh, "client_id": "client-id", "client_secret": "client-secret-xyz" }),
        );
        BoxBackend::from_resolved(&cfg, Duration::from_secs(30)).unwrap()
    }

    async fn put(b: &BoxBackend, key: &str, data: &[u8]) -> Result<()> {
        let mut body = Body::bytes(data.to_vec(), None);
        b.write(key, &mut body, WriteOptions { chunk: None, concurrent: 1 }).await
    }

    fn pattern(size: usize, seed: u32) -> Vec<u8> {
        let mut x = seed | 1;
        (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    #[tokio::test]
    async fn box_write_read_stat_list_overwrite_delete() {
        let (base, state) = serve().await;
        let b = backend(&base, "refresh-0");
        b.check().await.unwrap();
        // The stale token was refused once, refreshed, and the rotated refresh token kept.
        assert_eq!(b.current_refresh_token().await.as_deref(), Some("refresh-1"));

        let key = "front door/2026/12/05/ünïcode 001.mp4";
        let data = pattern(300_000, 7);
        assert!(b.stat(key).await.unwrap().is_none());
        put(&b, key, &data).await.unwrap();
        let meta = b.stat(key).await.unwrap().unwrap();
        assert_eq!(meta.size, data.len() as u64);
        assert!(meta.last_modified.is_some());
        assert_eq!(b.read(key, None).await.unwrap(), data);
        assert_eq!(b.read(key, Some(10..20)).await.unwrap(), &data[10..20]);
        assert_eq!(b.read(key, Some(299_990..400_000)).await.unwrap(), &data[299_990..]);

        let others = [
            "front door/2026/12/06/b.mp4",
            "front door/2026/12/06/c.mp4",
            "front door/2026/12/06/d.mp4",
            "back/e.mp4",
        ];
        for (i, k) in others.iter().enumerate() {
            put(&b, k, format!("file {i}").as_bytes()).await.unwrap();
        }
        let listed: Vec<String> =
            b.list("front door/2026/12/0").await.unwrap().into_iter().map(|m| m.key).collect();
        assert_eq!(listed, vec![key, others[0], others[1], others[2]]);
        assert_eq!(b.list("").await.unwrap().len(), 5);
        assert!(b.list("nothing/").await.unwrap().is_empty());

        // Overwrite uploads a new version of the same file.
        put(&b, key, b"short").await.unwrap();
        assert_eq!(b.read(key, None).await.unwrap(), b"short");
        assert_eq!(b.list("front door/2026/12/05/").await.unwrap().len(), 1);

        b.delete(key).await.unwrap();
        assert!(b.stat(key).await.unwrap().is_none());
        b.delete(key).await.unwrap();
        let err = b.read(key, None).await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::NotFound), "{err}");
        assert_eq!(state.lock().unwrap().direct_uploads, 6);
        // Folders were created once each even though a fresh backend walks them again.
        let b2 = backend(&base, "refresh-1");
        put(&b2, others[0], b"again").await.unwrap();
        let folders = state.lock().unwrap().items.values().filter(|i| i.2).count();
        assert_eq!(folders, 7, "nvr, front door, 2026, 12, 05, 06, back");
    }

    #[tokio::test]
    async fn box_large_file_uses_an_upload_session() {
        let (base, state) = serve().await;
        let b = backend(&base, "refresh-0");
        let size = 3 * PART as usize + 12_345; // 25.2 MB: four parts, the last one short
        let data = pattern(size, 99);
        put(&b, "cam/big.mp4", &data).await.unwrap();
        assert_eq!(state.lock().unwrap().session_uploads, 1);
        assert_eq!(state.lock().unwrap().direct_uploads, 0);
        assert_eq!(b.stat("cam/big.mp4").await.unwrap().unwrap().size, size as u64);
        let back = b.read("cam/big.mp4", None).await.unwrap();
        assert!(back == data, "content differs after a round trip");
        // A new version of the existing file through a session, encrypted this time.
        let key = [9u8; 32];
        let mut body = Body::bytes(data.clone(), Some(&key));
        b.write("cam/big.mp4", &mut body, WriteOptions { chunk: None, concurrent: 1 })
            .await
            .unwrap();
        let stored = b.read("cam/big.mp4", None).await.unwrap();
        assert_eq!(crate::crypt::decrypt_bytes(&key, &stored).unwrap(), data);
        assert_eq!(state.lock().unwrap().session_uploads, 2);
        assert_eq!(b.list("cam/").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn box_errors_are_sentences_without_secrets() {
        let (base, _state) = serve().await;
        let b = backend(&base, "revoked-refresh-token");
        let err = b.check().await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Auth), "{err}");
        assert!(err.to_string().contains("connect the Box account again"), "{err}");
        for secret in ["revoked-refresh-token", "client-secret-xyz"] {
            assert!(!err.to_string().contains(secret) && !format!("{b:?}").contains(secret));
        }
        let cfg = ResolvedConfig::for_tests("box", json!({}), json!({ "refresh_token": "x" }));
        let err = BoxBackend::from_resolved(&cfg, Duration::from_secs(5)).unwrap_err();
        assert!(err.to_string().contains("client ID and client secret"), "{err}");

        let closed =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let b = backend(&format!("http://127.0.0.1:{closed}"), "refresh-0");
        let err = b.check().await.unwrap_err();
        assert_eq!(err.remote_kind(), Some(RemoteKind::Unreachable), "{err}");
    }
}
