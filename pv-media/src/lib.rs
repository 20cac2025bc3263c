//! PentaVision media: where, when and how cameras are recorded.
//!
//! Recording never decodes or encodes: RTSP is depayloaded, parsed and cut into fragmented MP4
//! segments by GStreamer (ffmpeg `-c copy` as a per-camera fallback). The same parsed stream
//! feeds an in-memory tap for RTMP pushes (never decoded) and snapshots (one key frame
//! decoded on demand). This crate never touches the database: recorders emit
//! [`record::RecorderEvent`]s and the composition layer writes rows.
//!
//! Module map:
//! - [`record`]: one supervised recorder per camera ([`record::Recorder`]): status over a watch
//!   channel, finished segments and recording gaps as events, reconnects with capped back-off,
//!   ffmpeg fallback.
//! - [`tap`]: a camera's encoded stream in memory ([`tap::StreamTap`], fed by the recorder):
//!   current caps, the last key frame, a bounded broadcast of access units that never slows
//!   the recorder.
//! - [`snapshot`]: JPEG of the latest key frame of a tap, or of a key frame of a segment file
//!   (cameras on the ffmpeg fallback), decoded on demand.
//! - [`rtmp`]: push a tap to an RTMP/RTMPS endpoint without transcoding
//!   ([`rtmp::RtmpPush`]): H.264 and AAC in FLV, reconnects with capped back-off, status on a
//!   watch channel.
//! - [`live`]: live view over WebRTC ([`live::WebRtcServer`], str0m): a tap sent to every
//!   viewer as H.264 RTP without transcoding, one UDP socket per address for all viewers,
//!   ICE-lite host candidates, a bounded place in the tap per viewer.
//! - [`fmp4`]: a fragmented-MP4 writer for Media Source Extensions (init segment, one
//!   fragment per frame), the MSE fallback of live view.
//! - [`hls`]: HLS from a tap (fMP4 segments cut at key frames, kept in memory, the live
//!   playlist), for browsers without Media Source.
//! - [`export`]: join finished segment files of one camera into one MP4 without transcoding,
//!   optionally trimmed at key frames.
//! - [`probe`]: check an RTSP URL before a camera is saved ([`probe::probe`]): video codec,
//!   picture size, frame rate and audio codec, or a clear reason why it cannot be used.
//! - [`recovery`]: the start-up scan of a camera's ingest directory: complete, repaired and
//!   discarded segment files, for reconciliation with the database.
//! - [`watch`]: a supervised motion watcher per camera ([`watch::MotionWatcher`]): the sub
//!   stream decoded at a low rate and resolution, motion start/end events with hysteresis.
//!   Motion-mode recorders run one and keep the main stream's pre-roll in memory.
//! - [`frames`]: decoded RGB frames of a tap at a low rate and size, each with its wall-clock
//!   time ([`frames::FrameSampler`]), for analysis that needs pixels (faces).
//! - [`motion`]: motion detection on luma frames (blur, running-average background, per-zone
//!   thresholds and masks, lighting-change rejection), plain Rust.
//! - [`mp4`]: a small reader for the MP4 boxes the recorder writes (completeness, codec,
//!   size, duration, the last complete fragment).
//! - `testcam` (feature `testkit`): a simulated RTSP camera serving pre-encoded clips.
//! - [`layout`]: the on-disk ingest layout: the stable per-camera directory (by MAC address when
//!   known, else by camera id) and sortable segment file names that the recovery pass parses
//!   back into (start time, camera id).
//! - [`mac`]: a camera's MAC address from the kernel neighbour table (`/proc/net/arp`).
//! - [`onvif`]: ONVIF WS-Discovery of cameras on the LAN.
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
pub mod export;
pub mod fmp4;
pub mod frames;
pub mod hls;
pub(crate) mod ingest;
pub mod layout;
pub mod live;
pub mod mac;
pub mod mode;
pub mod motion;
pub mod mp4;
pub mod onvif;
pub mod probe;
pub mod record;
pub mod recovery;
pub mod rtmp;
pub mod schedule;
pub mod snapshot;
pub mod tap;
#[cfg(feature = "testkit")]
pub mod testcam;
pub mod watch;

pub use error::{Error, Result};
pub use mode::RecordingMode;

/// Initialise GStreamer (idempotent, cheap after the first call). Every entry point that builds
/// a pipeline calls it; call it early to fail fast when the GStreamer libraries are missing.
pub fn init() -> Result<()> {
    gstreamer::init().map_err(Error::from)
}
