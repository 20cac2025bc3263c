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
    /// A match threshold that is negative, NaN or infinite.
    #[error("invalid match threshold {0}: must be a finite distance >= 0")]
    InvalidThreshold(f32),
}

impl Error {
    /// Classify this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::DimensionMismatch { .. }
            | Error::InvalidEmbedding(_)
            | Error::InvalidThreshold(_) => ErrorKind::InvalidInput,
        }
    }
}

/// pv-face's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
