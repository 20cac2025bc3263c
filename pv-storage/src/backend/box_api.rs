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
                "Box needs the app's client ID and client secret to refresh its access token.".to_owned(),
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
            upload: trim(cfg.get("upload_url").unwrap_or_else(|| "https://upload.box.com/api/2.0".to_owned())),
            token_url: cfg.get("token_url").unwrap_or_else(|| "https://api.box.com/oauth2/token".to_owned()),
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
        let (Some(refresh), Some(id), Some(secret)) = (t.refresh.clone(), &self.client_id, &self.client_secret) else {
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
            let detail = body["error_description"].as_str().or(body["error"].as_str()).unwrap_or("no reason given");
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
            remote("connect", RemoteKind::Other, true, "Box answered the token request without a token.".to_owned())
        })?;
        t.access = Some(access.clone());
        t.expires = Some(Instant::now() + Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600)));
        if let Some(r) = body["refresh_token"].as_str() {
            t.refresh = Some(r.to_owned());
        }
        Ok(access)
    }

    fn net_error(&self, op: &'static str, e: &reqwest::Error) -> Error {
        let host = e.url().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_else(|| "Box".to_owned());
        if e.is_timeout() {
            remote(op, RemoteKind::Timeout, true, format!("{host} did not answer in time."))
        } else if e.is_connect() {
            remote(op, RemoteKind::Unreachable, true, format!("{host} cannot be reached; check the network."))
        } else {
            remote(
                op,
                RemoteKind::Other,
                true,
                format!("The request to {host} failed: {}.", redact(&e.to_string(), &self.secrets())),
            )
        }
    }

    /// The error for a Box error response (`{"type":"error","code":…,"message":…}`).
    fn api_error(&self, op: &'static str, what: &str, status: StatusCode, body: &Value) -> Error {
        let code = body["code"].as_str().unwrap_or("");
        let message = redact(body["message"].as_str().unwrap_or(""), &self.secrets());
        let detail = if message.is_empty() { String::new() } else { format!(" ({message})") };
        let (kind, retryable, text) = match status.as_u16() {
            401 => (RemoteKind::Auth, false, format!("Box refused the sign-in{detail}; connect the Box account again.")),
            403 => (RemoteKind::Permission, false, format!("The Box account may not {op} {what}{detail}.")),
            404 => (RemoteKind::NotFound, false, format!("{what} does not exist on Box{detail}.")),
            409 => (RemoteKind::Other, true, format!("{what} changed on Box while writing{detail}; try again.")),
            429 => (RemoteKind::RateLimited, true, format!("Box asks to slow down{detail}.")),
            507 => (RemoteKind::Other, false, format!("The Box account is out of storage space{detail}.")),
            s if s >= 500 => (RemoteKind::Other, true, format!("Box had a server error {s} during {op} of {what}{detail}.")),
            s => (RemoteKind::Other, false, format!("Box answered {s} {code} to {op} of {what}{detail}.")),
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
            let resp = build(&self.http).bearer_auth(token).send().await.map_err(|e| self.net_error(op, &e))?;
            if resp.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
                continue;
            }
            return Ok(resp);
        }
        Err(remote(op, RemoteKind::Auth, false, "Box refused the sign-in; connect the Box account again.".to_owned()))
    }

    /// JSON body of a successful response, or the Box error.
    async fn json_of(&self, op: &'static str, what: &str, resp: reqwest::Response) -> Result<Value> {
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
    async fn folder_id(&self, op: &'static str, path: &str, create: bool) -> Result<Option<String>> {
        let full: Vec<String> =
            self.root.iter().cloned().chain(path.split('/').filter(|s| !s.is_empty()).map(str::to_owned)).collect();
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
            let found = self.items(op, &id).await?.into_iter().find(|i| i.kind == "folder" && i.name == name);
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
        let folder = self
            .folder_id("write", dir, true)
            .await?
            .ok_or_else(|| remote("write", RemoteKind::Other, true, "The Box folder could not be created.".to_owned()))?;
        let existing = self.items("write", &folder).await?.into_iter().find(|i| i.kind == "file" && i.name == name);
        let what = format!("\"{key}\"");
        let (stored, sent_sha1) = if body.size() >= self.threshold {
            self.upload_session(&folder, name, existing.as_ref().map(|i| i.id.as_str()), body, &what).await?
        } else {
            self.upload_direct(&folder, name, existing.as_ref().map(|i| i.id.as_str()), body, &what).await?
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
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        let request = self
            .http
            .post(&url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
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
            Some(id) => (format!("{}/files/{id}/upload_sessions", self.upload), json!({ "file_size": size, "file_name": name })),
            None => (
                format!("{}/files/upload_sessions", self.upload),
                json!({ "folder_id": folder, "file_size": size, "file_name": name }),
            ),
        };
        let resp = self.send("write", |c| c.post(&url).json(&payload)).await?;
        let session = self.json_of("write", what, resp).await?;
        let part_size = session["part_size"].as_u64().filter(|p| *p > 0).ok_or_else(|| {
            remote("write", RemoteKind::Other, true, "Box opened an upload session without a part size.".to_owned())
        })?;
        let sid = session["id"].as_str().unwrap_or_default().to_owned();
        let endpoint = |key: &str, fallback: String| {
            session["session_endpoints"][key].as_str().map(str::to_owned).unwrap_or(fallback)
        };
        let part_url = endpoint("upload_part", format!("{}/files/upload_sessions/{sid}", self.upload));
        let commit_url = endpoint("commit", format!("{}/files/upload_sessions/{sid}/commit", self.upload));
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
        Err(remote("write", RemoteKind::Timeout, true, format!("Box did not finish assembling {what} in time.")))
    }

    async fn read_range(&self, key: &str, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        let what = format!("\"{key}\"");
        let item = self
            .find("read", key)
            .await?
            .ok_or_else(|| remote("read", RemoteKind::NotFound, false, format!("{what} does not exist on Box.")))?;
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
                        Some(r) => rb.header(reqwest::header::RANGE, format!("bytes={}-{}", r.start, r.end.min(item.size) - 1)),
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
        Err(remote("read", RemoteKind::Timeout, true, format!("Box did not make {what} ready for download in time.")))
    }

    async fn list_prefix(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let start = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
        let Some(start_id) = self.folder_id("list", start, false).await? else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        let mut pending = vec![(start.to_owned(), start_id)];
        while let Some((dir, id)) = pending.pop() {
            for item in self.items("list", &id).await? {
                let key = if dir.is_empty() { item.name.clone() } else { format!("{dir}/{}", item.name) };
                if item.kind == "folder" {
                    let as_dir = format!("{key}/");
                    if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                        pending.push((key, item.id));
                    }
                } else if item.kind == "file" && key.starts_with(prefix) {
                    out.push(ObjectMeta { key, size: item.size, etag: None, last_modified: item.modified });
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
        self.json_of("connect", &format!("the folder with id {}", self.root_id), resp).await.map(|_| ())
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
