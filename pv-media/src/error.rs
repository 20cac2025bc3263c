//! pv-media's error type.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use pv_core::ErrorKind;
use pv_core::ids::CameraId;

/// pv-media's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A MAC address could not be parsed or cannot identify a camera.
    #[error("invalid MAC address {value:?}: {reason}")]
    InvalidMacAddress {
        /// The text as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A camera id that cannot appear in a path (camera ids are positive).
    #[error("invalid camera id {0}: camera ids are positive")]
    InvalidCameraId(CameraId),
    /// A segment start time that does not fit the fixed-width file name (years 0000..=9999).
    #[error("segment start {0} cannot be written in a file name: the year must be 0000..=9999")]
    UnrepresentableTime(DateTime<Utc>),
    /// A file name that is not a segment file name.
    #[error("{name:?} is not a segment file name: {reason}")]
    InvalidSegmentName {
        /// The file name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A directory name that is not a camera directory name.
    #[error("{name:?} is not a camera directory name: {reason}")]
    InvalidCameraDir {
        /// The directory name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An unknown recording mode.
    #[error("unknown recording mode {0:?}: expected continuous, motion or off")]
    InvalidRecordingMode(String),
    /// A schedule entry with out-of-range or contradictory fields.
    #[error("invalid schedule entry: {0}")]
    InvalidSchedule(String),
    /// A camera stream URL the recorder cannot use.
    #[error("invalid stream URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given, credentials removed.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A video frame whose size or buffer does not add up.
    #[error("invalid frame: {0}")]
    InvalidFrame(String),
    /// A motion zone or motion setting out of range.
    #[error("invalid motion zone: {0}")]
    InvalidZone(String),
    /// A recorder setting out of range.
    #[error("invalid recorder setting: {0}")]
    InvalidRecorderConfig(String),
    /// GStreamer could not be initialised, lacks an element, or refused a pipeline.
    #[error("GStreamer: {0}")]
    Gstreamer(String),
    /// A file-system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A helper process (ffmpeg) could not be started or failed.
    #[error("{program}: {reason}")]
    Process {
        /// The program.
        program: &'static str,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    /// Classify this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidMacAddress { .. }
            | Error::InvalidCameraId(_)
            | Error::UnrepresentableTime(_)
            | Error::InvalidSegmentName { .. }
            | Error::InvalidCameraDir { .. }
            | Error::InvalidRecordingMode(_)
            | Error::InvalidSchedule(_)
            | Error::InvalidUrl { .. }
            | Error::InvalidRecorderConfig(_)
            | Error::InvalidFrame(_)
            | Error::InvalidZone(_) => ErrorKind::InvalidInput,
            Error::Gstreamer(_) | Error::Io { .. } | Error::Process { .. } => ErrorKind::Internal,
        }
    }

    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

impl From<gstreamer::glib::Error> for Error {
    fn from(err: gstreamer::glib::Error) -> Self {
        Error::Gstreamer(err.to_string())
    }
}

impl From<gstreamer::glib::BoolError> for Error {
    fn from(err: gstreamer::glib::BoolError) -> Self {
        Error::Gstreamer(err.to_string())
    }
}

impl From<gstreamer::StateChangeError> for Error {
    fn from(err: gstreamer::StateChangeError) -> Self {
        Error::Gstreamer(err.to_string())
    }
}

/// pv-media's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
