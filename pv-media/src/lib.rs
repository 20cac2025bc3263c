//! PentaVision media: where and when cameras are recorded.
//!
//! This first slice holds the parts of ingest that do not need GStreamer; the pipeline modules
//! (source, record, motion, snapshot, rtmp, live) build on them.
//!
//! Module map:
//! - [`layout`]: the on-disk ingest layout: the stable per-camera directory (by MAC address when
//!   known, else by camera id) and sortable segment file names that the recovery pass parses
//!   back into (start time, camera id).
//! - [`mode`]: [`RecordingMode`] (`continuous`, `motion`, `off`).
//! - [`schedule`]: weekly recording windows and which mode applies at a given local time.
//! - [`error`]: this crate's [`Error`] and [`Result`].
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use pv_core::ids::CameraId;
//! use pv_media::layout::{CameraDir, MacAddress, parse_segment_file_name, segment_file_name};
//!
//! # fn main() -> pv_media::Result<()> {
//! let mac: MacAddress = "AA:BB:CC:DD:EE:0F".parse()?;
//! let dir = CameraDir::new(CameraId(42), Some(mac))?;
//! assert_eq!(dir.to_string(), "cameras/mac-aa-bb-cc-dd-ee-0f");
//!
//! let start = Utc.with_ymd_and_hms(2026, 11, 23, 10, 15, 0).unwrap();
//! let name = segment_file_name(start, CameraId(42))?;
//! assert_eq!(name, "20261123T101500Z-42.mp4");
//! assert_eq!(parse_segment_file_name(&name)?, (start, CameraId(42)));
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod error;
pub mod layout;
pub mod mode;
pub mod schedule;

pub use error::{Error, Result};
pub use mode::RecordingMode;
