//! pv-face's error type.

use pv_core::ErrorKind;

/// pv-face's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two embeddings (or an embedding and the gallery) have different lengths; they come from
    /// different models and cannot be compared.
    #[error("embedding dimension mismatch: expected {expected}, got {actual}")]
    DimensionMismatch {
        /// The length of the reference (the query, for gallery matching).
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// An embedding that cannot be compared: empty, all zeros, or holding NaN or infinity.
    #[error("invalid embedding: {0}")]
    InvalidEmbedding(&'static str),
    /// A match threshold out of range: a distance must be finite and at least 0, a cosine
    /// similarity between -1 and 1.
    #[error(
        "invalid match threshold {0}: a distance must be 0 or more, a similarity between -1 and 1"
    )]
    InvalidThreshold(f32),
    /// The bytes are not a JPEG or PNG picture, or the picture is damaged.
    #[error("{0}")]
    NotAnImage(String),
    /// The picture is larger than PentaVision accepts (encoded size or pixel count).
    #[error("{0}")]
    ImageTooLarge(String),
    /// A model file is missing, damaged, not an ONNX model, or has inputs or outputs of the
    /// wrong shape.
    #[error("face model {}: {message}", path.display())]
    Model {
        /// The model file.
        path: std::path::PathBuf,
        /// What is wrong with it, in words for the person who configured it.
        message: String,
    },
    /// The picture shows no face.
    #[error("no face was found in the picture")]
    NoFace,
    /// Downloading a model failed.
    #[error("{0}")]
    Fetch(String),
    /// A file's SHA-256 digest is not the expected one.
    #[error("{} has SHA-256 {actual}, expected {expected}", path.display())]
    Checksum {
        /// The file checked.
        path: std::path::PathBuf,
        /// The digest expected (hex).
        expected: String,
        /// The digest found (hex).
        actual: String,
    },
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(String),
    /// A verification pairs file (LFW format) that cannot be read; the message names the line.
    #[error("{0}")]
    InvalidPairs(String),
}

impl Error {
    /// Classify this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::DimensionMismatch { .. }
            | Error::InvalidEmbedding(_)
            | Error::InvalidThreshold(_)
            | Error::NotAnImage(_)
            | Error::ImageTooLarge(_)
            | Error::NoFace
            | Error::InvalidPairs(_) => ErrorKind::InvalidInput,
            Error::Model { .. } | Error::Fetch(_) => ErrorKind::Unavailable,
            Error::Checksum { .. } | Error::Io(_) => ErrorKind::Internal,
        }
    }
}

/// pv-face's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
