//! pv-media integration tests: simulated RTSP cameras (`pv_media::testcam`), real recorders,
//! ffprobe on every finished segment, camera loss, kill -9 and recovery, bad input, motion
//! watching and motion-mode recording.
//!
//! Segments are 3 s long so the whole suite stays fast; independent scenarios run in parallel
//! inside one test where they share a wait.

mod bad_input;
mod crash;
mod export;
mod fmp4;
mod ingest;
mod live_pull;
mod motion;
mod motion_mode;
mod probe;
mod record;
mod rtmp;
mod snapshot;
mod support;
mod testcam;
