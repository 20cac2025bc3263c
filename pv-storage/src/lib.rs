//! PentaVision storage: where recorded segments and snapshots are kept.
//!
//! This first slice is the object-key model every backend shares and a durable local-disk store.
//! The `Backend` trait, the provider modules (OpenDAL-based, async), the upload queue and health
//! checks build on it; the local store's synchronous `std::fs` API becomes the local backend of
//! that trait (run on a blocking thread) when the OpenDAL work lands.
//!
//! Module map:
//! - [`key`]: [`Key`], a validated object key (relative, `/`-separated, no `.`/`..` segments), so
//!   a key valid on one backend is valid on all of them and can never escape a root directory.
//! - [`local`]: [`LocalStore`], a store rooted at a directory whose `put` is atomic and durable
//!   (temporary file, fsync, rename, fsync of the directory).
//! - [`error`]: this crate's [`Error`] and [`Result`].
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

pub mod error;
pub mod key;
pub mod local;

pub use error::{Error, Result};
pub use key::Key;
pub use local::LocalStore;
