//! pv-storage's error type.

use std::path::PathBuf;

use pv_core::ErrorKind;

use crate::definition::FieldError;

/// What kind of failure a remote storage service reported, so callers can choose a retry policy
/// and people can be told what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteKind {
    /// The credentials were refused (wrong key, expired token, bad signature).
    Auth,
    /// The credentials are valid but lack a permission for this operation.
    Permission,
    /// The bucket, container, folder or object does not exist.
    NotFound,
    /// The service could not be reached (DNS, refused connection, TLS failure).
    Unreachable,
    /// The service did not answer in time.
    Timeout,
    /// The service asked us to slow down.
    RateLimited,
    /// Anything else.
    Other,
}

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
    /// A remote storage service refused or failed an operation. `message` is a sentence for
    /// people (it never contains secrets).
    #[error("{message}")]
    Remote {
        /// The operation: `connect`, `write`, `read`, `stat`, `list`, `delete`, `presign`.
        op: &'static str,
        /// What went wrong and, where known, what to do about it.
        message: String,
        /// The kind of failure.
        kind: RemoteKind,
        /// Whether trying again later may succeed.
        retryable: bool,
    },
    /// An object key template that cannot be used.
    #[error("{0}")]
    InvalidTemplate(String),
    /// Configuration values that do not pass the provider's rules, one entry per field.
    #[error("{}", join_field_errors(.0))]
    InvalidConfig(Vec<FieldError>),
    /// A provider definition or backend problem (unknown provider, backend not available).
    #[error("{0}")]
    Provider(String),
    /// An uploaded object did not match what was sent (size or checksum).
    #[error("{0}")]
    Verify(String),
    /// Encrypted data that cannot be decrypted: wrong key, damaged or truncated data.
    #[error("{0}")]
    Crypt(String),
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
            Error::InvalidTemplate(_) | Error::InvalidConfig(_) | Error::Provider(_) => {
                ErrorKind::InvalidInput
            }
            Error::Remote { kind, .. } => match kind {
                RemoteKind::NotFound => ErrorKind::NotFound,
                RemoteKind::Auth | RemoteKind::Permission => ErrorKind::PermissionDenied,
                RemoteKind::Unreachable | RemoteKind::Timeout | RemoteKind::RateLimited => {
                    ErrorKind::Unavailable
                }
                RemoteKind::Other => ErrorKind::Internal,
            },
            Error::Verify(_) => ErrorKind::Unavailable,
            Error::Crypt(_) => ErrorKind::InvalidInput,
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

    /// Whether trying the same operation again later may succeed (network trouble, time-outs,
    /// throttling, a verification mismatch after an interrupted upload).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Remote { retryable, .. } => *retryable,
            Error::Verify(_) => true,
            Error::Io { source, .. } => !matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ),
            _ => false,
        }
    }

    /// The remote failure kind, when this is a remote error.
    pub fn remote_kind(&self) -> Option<RemoteKind> {
        match self {
            Error::Remote { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

fn join_field_errors(errors: &[FieldError]) -> String {
    if errors.is_empty() {
        return "the configuration is not valid".to_owned();
    }
    errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; ")
}

/// pv-storage's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
