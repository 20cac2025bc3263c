//! PentaVision storage: where recorded segments go — local disks and off-site storage modules.
//!
//! A *provider* is a kind of storage with a form (Amazon S3, Wasabi, Google Drive, SFTP, a local
//! path…): a folder with `definition.json` and `template.html`, built in or dropped into
//! `DATA_DIR/modules/`. A *module* is one configured instance of a provider (two S3 buckets are
//! two modules). Every module runs on a *backend* kind (`s3`, `gcs`, `sftp`, `fs`…).
//!
//! Module map:
//! - [`key`]: [`Key`], a validated object key (relative, `/`-separated, no `.`/`..` segments), so
//!   a key valid on one backend is valid on all of them and can never escape a root directory.
//! - [`local`]: [`LocalStore`], a synchronous store rooted at a directory whose `put` is atomic
//!   and durable (the recorder's own segment store).
//! - [`definition`]: [`ProviderDefinition`], field validation, and the [`Registry`] of built-in
//!   and dropped providers (a malformed folder is a [`LoadNotice`], never a failed start).
//! - [`template`]: [`KeyTemplate`], object key templates such as
//!   `{provider}/{camera}/{year}/{month}/{day}/{segment}.mp4`.
//! - [`module`]: [`StorageModule`], one configured instance: connection test, verified streaming
//!   uploads, downloads, range reads, listing, deletion, signed URLs.
//! - [`swift_auth`]: Keystone v3 and Rackspace identity sign-in for Swift, with a token cache that
//!   renews five minutes before expiry.
//! - [`crypt`]: optional client-side encryption (AES-256-GCM in 64 KiB chunks; the format is
//!   documented there so any tool can decrypt).
//! - `backend` (internal): the `Backend` trait and its OpenDAL implementation; kinds OpenDAL has
//!   no service for get their own file there.
//! - [`error`]: this crate's [`Error`] and [`Result`]; every message is a sentence for people and
//!   never contains a secret.
//!
//! Why Apache OpenDAL: one API over some fifty storage services (S3 and its compatibles, GCS,
//! Azure, Swift, B2, Dropbox, OneDrive, Google Drive, WebDAV, FTP, SFTP, local files), with
//! multipart writers that abort cleanly, capability discovery, and layers for time-outs, retries,
//! throttling and concurrency limits; it is an Apache Software Foundation project with active
//! maintenance and a behaviour test suite per service, which a small team could not match by
//! writing a client per vendor.
//!
//! Why `async-trait` for the `Backend` trait: backends are chosen at run time and kept as
//! `Arc<dyn Backend>`; native `async fn` in traits is not object-safe, and the boxed future per
//! call costs nothing next to a network round trip.
//!
//! ```
//! # fn main() -> pv_storage::Result<()> {
//! let dir = tempfile::tempdir().map_err(|e| pv_storage::Error::io(".", e))?;
//! let store = pv_storage::LocalStore::open(dir.path())?;
//! store.put("cameras/id-42/20261123T101500Z-42.mp4", b"segment bytes")?;
//! assert_eq!(store.get("cameras/id-42/20261123T101500Z-42.mp4")?, b"segment bytes");
//! assert_eq!(store.list("cameras/")?.len(), 1);
//! assert!(store.put("../escape", b"x").is_err());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub(crate) mod backend;
pub mod crypt;
pub mod definition;
pub mod error;
pub mod key;
pub mod local;
pub mod module;
pub mod queue;
pub mod swift_auth;
pub mod template;

pub use definition::{
    Capabilities, Category, Field, FieldError, FieldKind, LoadNotice, OAuthSpec, Provider,
    ProviderDefinition, ProviderSource, Quirks, Registry, SelectOption,
};
pub use error::{Error, RemoteKind, Result};
pub use key::Key;
pub use local::LocalStore;
pub use module::{ModuleSettings, ObjectMeta, StorageModule, TestReport, TestStep, Uploaded};
pub use template::{KeyContext, KeyTemplate};
