//! PentaVision face recognition.
//!
//! This first slice is the model-independent part: comparing face embeddings and matching one
//! against the enrolled gallery. Detection, alignment and the embedding model (tract) build on
//! it and hand [`gallery::best_match`] the vectors they produce.
//!
//! Module map:
//! - [`gallery`]: L2 normalisation, Euclidean distance, cosine similarity, and
//!   [`best_match`](gallery::best_match) with negative examples that veto an identity.
//! - [`error`]: this crate's [`Error`] and [`Result`].
//!
//! ```
//! use pv_core::ids::IdentityId;
//! use pv_face::gallery::{GalleryEntry, best_match};
//!
//! # fn main() -> pv_face::Result<()> {
//! let gallery: Vec<GalleryEntry> = vec![
//!     (IdentityId(1), vec![1.0, 0.0, 0.0], false),
//!     (IdentityId(2), vec![0.0, 1.0, 0.0], false),
//! ];
//! let hit = best_match(&[0.9, 0.1, 0.0], &gallery, 0.5)?.expect("close to identity 1");
//! assert_eq!(hit.identity, IdentityId(1));
//! assert!(best_match(&[0.0, 0.0, 1.0], &gallery, 0.5)?.is_none());
//! assert!(best_match(&[1.0, 0.0], &gallery, 0.5).is_err()); // wrong dimension
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod error;
pub mod gallery;

pub use error::{Error, Result};
