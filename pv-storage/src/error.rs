//! pv-storage's error type.

use std::path::PathBuf;

use pv_core::ErrorKind;

/// pv-storage's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An object key that breaks the key rules (see [`Key`](crate::Key)).
    #[error("invalid storage key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A listing prefix that could never match a valid key's directory part.
    #[error("invalid storage prefix {prefix:?}: {reason}")]
    InvalidPrefix {
        /// The prefix as given.
        prefix: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// No object has this key.
    #[error("no object with key {key:?}")]
    NotFound {
        /// The key looked up.
        key: String,
    },
    /// The key cannot be stored next to existing objects on this backend (on local disk, `a`
    /// and `a/b` cannot both exist because `a` would have to be a file and a directory).
    #[error("storage key {key:?} conflicts with an existing object: {reason}")]
    Conflict {
        /// The key being written.
        key: String,
        /// What it conflicts with.
        reason: &'static str,
    },
    /// The store's root exists but is not a directory.
    #[error("storage root {0} is not a directory")]
    RootNotADirectory(PathBuf),
    /// A file-system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Classify this error. A full disk or exhausted quota is [`ErrorKind::Unavailable`] (it can
    /// clear once retention frees space); other I/O failures are [`ErrorKind::Internal`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidKey { .. }
            | Error::InvalidPrefix { .. }
            | Error::RootNotADirectory(_) => ErrorKind::InvalidInput,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                    ErrorKind::Unavailable
                }
                _ => ErrorKind::Internal,
            },
        }
    }

    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// pv-storage's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
