//! Errors: the crate-wide [`ErrorKind`] classification and pv-core's own [`Error`].
//!
//! Every PentaVision crate has one error type with a `kind()` returning [`ErrorKind`]; pv-web maps
//! the kind to an HTTP status in one place and shows internal messages to nobody.

use std::path::PathBuf;

/// What kind of failure happened, independent of which crate produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The thing asked for does not exist.
    NotFound,
    /// The caller sent something malformed or out of range.
    InvalidInput,
    /// The caller is known but may not do this.
    PermissionDenied,
    /// The caller is not authenticated.
    Unauthenticated,
    /// The request conflicts with current state (duplicate name, stale version, …).
    Conflict,
    /// A dependency (database, storage, camera) is not reachable right now.
    Unavailable,
    /// A bug or an unexpected failure; details go to the log, not to the caller.
    Internal,
}

/// pv-core's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid. The message names the file, key and line where known.
    #[error("{0}")]
    Config(String),
    /// A database could not be reached or refused a statement.
    #[error("{db} database: {source}")]
    Database {
        /// Which logical database (`users`, `faces`, `records`).
        db: &'static str,
        /// The driver's error.
        #[source]
        source: sea_orm::DbErr,
    },
    /// The database schema is newer than this binary understands.
    #[error(
        "{db} database has schema migration '{migration}' that this PentaVision {version} does not know; the database was upgraded by a newer release. Run that release or restore a backup taken before the upgrade."
    )]
    SchemaTooNew {
        /// Which logical database.
        db: &'static str,
        /// The unknown migration's name.
        migration: String,
        /// This binary's version.
        version: &'static str,
    },
    /// A file-system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Something was looked up and is not there.
    #[error("{0}")]
    NotFound(String),
    /// A caller supplied bad input.
    #[error("{0}")]
    InvalidInput(String),
    /// The request conflicts with what is stored (a duplicate name, …).
    #[error("{0}")]
    Conflict(String),
}

impl Error {
    /// Classify this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) | Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Database { source, .. } => match source {
                sea_orm::DbErr::RecordNotFound(_) => ErrorKind::NotFound,
                sea_orm::DbErr::Conn(_) | sea_orm::DbErr::ConnectionAcquire(_) => {
                    ErrorKind::Unavailable
                }
                _ => ErrorKind::Internal,
            },
            Error::SchemaTooNew { .. } => ErrorKind::Unavailable,
            Error::Io { .. } => ErrorKind::Internal,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
        }
    }

    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// Render an error and its causes as one line (`what: why: root cause`), skipping a cause whose
/// text the line already contains. The binaries print fatal errors this way: one line,
/// non-zero exit.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        let part = e.to_string().replace('\n', " ");
        if !line.contains(&part) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&part);
        }
        current = e.source();
    }
    line
}

/// pv-core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_causes_without_repeats() {
        let io = std::io::Error::other("disk on fire\nreally");
        let e = Error::io("/data/x", io);
        assert_eq!(one_line(&e), "/data/x: disk on fire really");
    }
}
