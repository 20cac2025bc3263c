//! Snapshots: one JPEG decoded on demand from a camera's latest key frame.
//!
//! [`from_tap`] decodes the last key frame a recorder put into its [`StreamTap`] (the frame
//! and its caps, whose `codec_data` holds the parameter sets, are all a decoder needs);
//! [`from_file`] takes the last (or first) key frame of a segment file instead, for cameras
//! recorded by the ffmpeg fallback, which has no tap, or the key frame at or before a moment
//! of the file (timeline thumbnails; [`key_frame_offsets`] lists the file's key frames so
//! callers can cache pictures by key frame). Only that one frame is decoded:
//!
//! `appsrc → h264parse/h265parse → avdec_h264/avdec_h265 → videoconvert → videoscale → jpegenc
//! → appsink`
//!
//! GStreamer does the work because it is already how pv-media handles media (no second media
//! stack), and its libav decoders (`gstreamer1.0-libav`) decode every H.264/H.265 profile
//! cameras send; `openh264dec` and `libde265dec` are used when libav is not installed.
//! Snapshot calls block for up to [`SnapshotOptions::timeout`]; from async code run them with
//! `tokio::task::spawn_blocking`.
//!
//! ```no_run
//! # fn demo(recorder: &pv_media::record::Recorder) -> Result<(), pv_media::snapshot::SnapshotError> {
//! use pv_media::snapshot::{self, SnapshotOptions};
//! let options = SnapshotOptions { max_width: Some(640), ..SnapshotOptions::default() };
//! let jpeg = snapshot::from_tap(&recorder.tap(), &options)?;
//! println!("{}x{}, {} bytes", jpeg.width, jpeg.height, jpeg.data.len());
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use pv_core::ErrorKind;

use crate::tap::gst::{buffer_of, caps_dimensions, video_caps, video_codec};
use crate::tap::{KeyFrame, StreamTap, VideoCodec};

/// How a snapshot is made.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// Scale down (keeping the aspect ratio) to at most this width; never scaled up. Default:
    /// none (full size).
    pub max_width: Option<u32>,
    /// How long decoding (and, for files, reading) may take (default 5 s).
    pub timeout: Duration,
    /// Refuse a tap key frame older than this (default: none; the last frame of a camera that
    /// went away is still returned).
    pub max_age: Option<Duration>,
    /// JPEG quality, 1..=100 (default 85).
    pub quality: u8,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        Self { max_width: None, timeout: Duration::from_secs(5), max_age: None, quality: 85 }
    }
}

/// A JPEG picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jpeg {
    /// The JPEG file's bytes.
    pub data: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Which key frame of a file [`from_file`] decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FramePick {
    /// The first key frame (fast: only the start of the file is read).
    First,
    /// The last key frame (the file is demuxed to its end; nothing is decoded but that frame).
    #[default]
    Last,
    /// The last key frame at or before this offset from the file's first video frame (the
    /// first key frame when the offset is before it). The file is demuxed only up to the
    /// offset; an offset past the end gives the last key frame. The offsets
    /// [`key_frame_offsets`] lists pick exactly those frames.
    AtOrBefore(Duration),
}

/// Why no snapshot could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The tap has no key frame: the camera has not streamed since the recorder started, or
    /// it is recorded by the ffmpeg fallback (use [`from_file`]).
    #[error("no key frame from the camera yet")]
    NoFrame,
    /// The tap's last key frame is older than [`SnapshotOptions::max_age`].
    #[error("the last key frame from the camera is {} s old", age.as_secs())]
    Stale {
        /// Its age.
        age: Duration,
    },
    /// A segment file without a video key frame.
    #[error("{}: no video key frame in the file", path.display())]
    NoFrameInFile {
        /// The file.
        path: PathBuf,
    },
    /// A file that cannot be read as MP4.
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What the demuxer said.
        reason: String,
    },
    /// No decoder for the codec is installed.
    #[error("no {codec} decoder is installed (tried {tried}; install gstreamer1.0-libav)")]
    DecoderMissing {
        /// `h264` or `h265`.
        codec: &'static str,
        /// The decoder elements looked for.
        tried: String,
    },
    /// Another GStreamer element the snapshot needs is missing.
    #[error("GStreamer element {0} is not installed")]
    MissingElement(&'static str),
    /// The stream is not H.264 or H.265.
    #[error("cannot make a snapshot of {0}")]
    Unsupported(String),
    /// Decoding took longer than [`SnapshotOptions::timeout`].
    #[error("snapshot timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The decoding pipeline failed.
    #[error("snapshot failed: {0}")]
    Failed(String),
    /// GStreamer could not be initialised, or a file could not be read.
    #[error(transparent)]
    Media(#[from] crate::Error),
}

impl SnapshotError {
    /// Classify this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SnapshotError::NoFrame | SnapshotError::Stale { .. } | SnapshotError::Timeout(_) => {
                ErrorKind::Unavailable
            }
            SnapshotError::NoFrameInFile { .. } => ErrorKind::NotFound,
            SnapshotError::Unsupported(_) | SnapshotError::BadFile { .. } => {
                ErrorKind::InvalidInput
            }
            SnapshotError::DecoderMissing { .. }
            | SnapshotError::MissingElement(_)
            | SnapshotError::Failed(_) => ErrorKind::Internal,
            SnapshotError::Media(e) => e.kind(),
        }
    }
}

/// JPEG of the tap's latest key frame.
pub fn from_tap(tap: &StreamTap, options: &SnapshotOptions) -> Result<Jpeg, SnapshotError> {
    let frame = tap.key_frame().ok_or(SnapshotError::NoFrame)?;
    if let Some(max) = options.max_age
        && frame.age() > max
    {
        return Err(SnapshotError::Stale { age: frame.age() });
    }
    from_key_frame(&frame, options)
}

/// JPEG of one key frame.
pub fn from_key_frame(frame: &KeyFrame, options: &SnapshotOptions) -> Result<Jpeg, SnapshotError> {
    encode(
        &video_caps(frame.params()),
        &buffer_of(frame.unit()),
        options,
        Deadline::after(options.timeout),
    )
}

/// JPEG of the key frame `pick` names in an MP4 segment file. A file still being written (or
/// cut short) gives its last key frame that could be read.
pub fn from_file(
    path: &Path,
    pick: FramePick,
    options: &SnapshotOptions,
) -> Result<Jpeg, SnapshotError> {
    let deadline = Deadline::after(options.timeout);
    if !path.is_file() {
        let err = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        return Err(crate::Error::io(path, err).into());
    }
    let (caps, buffer) = read_key_frame(path, pick, deadline)?;
    encode(&caps, &buffer, options, deadline)
}

/// The offsets of a segment file's video key frames from its first video frame, in order
/// (the first is zero). Nothing is decoded; the file is demuxed to its end, or to the last
/// complete fragment of a file still being written. Used to map a moment to the key frame
/// [`FramePick::AtOrBefore`] would decode, e.g. to cache pictures by key frame. Blocks for up
/// to `timeout`.
pub fn key_frame_offsets(path: &Path, timeout: Duration) -> Result<Vec<Duration>, SnapshotError> {
    let deadline = Deadline::after(timeout);
    if !path.is_file() {
        let err = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        return Err(crate::Error::io(path, err).into());
    }
    let mut offsets = Vec::new();
    scan_video(path, deadline, |offset, key, _| {
        if key {
            offsets.push(offset);
        }
        Scan::Continue
    })?;
    if offsets.is_empty() {
        return Err(SnapshotError::NoFrameInFile { path: path.to_path_buf() });
    }
    Ok(offsets)
}

/// When a snapshot must be done, and the time it was given.
#[derive(Clone, Copy)]
struct Deadline {
    at: Instant,
    total: Duration,
}

impl Deadline {
    fn after(total: Duration) -> Deadline {
        Deadline { at: Instant::now() + total, total }
    }

    /// How long to wait for the next step (at most 100 ms, to look at the bus between
    /// waits), or the timeout error.
    fn step(&self) -> Result<gst::ClockTime, SnapshotError> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(SnapshotError::Timeout(self.total));
        }
        Ok(gst::ClockTime::from_nseconds(left.min(Duration::from_millis(100)).as_nanos() as u64))
    }
}

fn make(factory: &'static str) -> Result<gst::Element, SnapshotError> {
    gst::ElementFactory::make(factory).build().map_err(|_| SnapshotError::MissingElement(factory))
}

/// Pipeline teardown on every path out.
struct Running(gst::Pipeline);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// The first error on the bus, if any.
fn bus_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    let msg = bus.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(e) => Some(e.error().to_string()),
        _ => None,
    }
}

/// What [`scan_video`]'s visitor wants next.
enum Scan {
    /// Read on.
    Continue,
    /// Stop reading.
    Stop,
}

/// Demux `path` and show `visit` every video buffer in file order: its offset from the
/// first video buffer (presentation time, else decode time), whether it is a key frame, and
/// the sample (caps and buffer). A read error after at least one buffer ends the scan
/// quietly (a file cut short, or still being written, gives what came before the damage).
fn scan_video(
    path: &Path,
    deadline: Deadline,
    mut visit: impl FnMut(Duration, bool, &gst::Sample) -> Scan,
) -> Result<(), SnapshotError> {
    crate::init()?;
    let pipeline = gst::Pipeline::with_name("snapshot-read");
    let src = make("filesrc")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let demux = make("qtdemux")?;
    let sink = gst_app::AppSink::builder().sync(false).max_buffers(64).build();
    pipeline
        .add_many([&src, &demux, sink.upcast_ref()])
        .map_err(|e| SnapshotError::Failed(e.to_string()))?;
    src.link(&demux).map_err(|e| SnapshotError::Failed(e.to_string()))?;
    let sink_pad = sink.static_pad("sink");
    demux.connect_pad_added(move |_, pad| {
        let is_video = pad
            .current_caps()
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
            .unwrap_or_else(|| pad.name().starts_with("video"));
        if let Some(sink_pad) = &sink_pad
            && is_video
            && !sink_pad.is_linked()
        {
            let _ = pad.link(sink_pad);
        }
    });
    let running = Running(pipeline);
    running.0.set_state(gst::State::Playing).map_err(|_| {
        SnapshotError::Failed(
            bus_error(&running.0).unwrap_or_else(|| format!("cannot read {}", path.display())),
        )
    })?;
    let mut base: Option<gst::ClockTime> = None;
    loop {
        match sink.try_pull_sample(deadline.step()?) {
            Some(sample) => {
                let Some(buffer) = sample.buffer() else { continue };
                let Some(ts) = buffer.pts().or_else(|| buffer.dts()) else { continue };
                let first = *base.get_or_insert(ts);
                let offset = Duration::from_nanos(ts.nseconds().saturating_sub(first.nseconds()));
                let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                if let Scan::Stop = visit(offset, key, &sample) {
                    return Ok(());
                }
            }
            None if sink.is_eos() => return Ok(()),
            None => {
                if let Some(err) = bus_error(&running.0) {
                    if base.is_some() {
                        tracing::debug!(path = %path.display(), error = err, "snapshot: file read stopped early");
                        return Ok(());
                    }
                    return Err(SnapshotError::BadFile { path: path.to_path_buf(), reason: err });
                }
            }
        }
    }
}

/// Demux `path` and return the caps and buffer of the video key frame `pick` names.
fn read_key_frame(
    path: &Path,
    pick: FramePick,
    deadline: Deadline,
) -> Result<(gst::Caps, gst::Buffer), SnapshotError> {
    let mut found: Option<(gst::Caps, gst::Buffer)> = None;
    scan_video(path, deadline, |offset, key, sample| {
        if let FramePick::AtOrBefore(at) = pick
            && offset > at
            && found.is_some()
        {
            return Scan::Stop;
        }
        if !key {
            return Scan::Continue;
        }
        if let (Some(caps), Some(buffer)) = (sample.caps_owned(), sample.buffer_owned()) {
            found = Some((caps, buffer));
            if pick == FramePick::First {
                return Scan::Stop;
            }
        }
        Scan::Continue
    })?;
    found.ok_or_else(|| SnapshotError::NoFrameInFile { path: path.to_path_buf() })
}

/// The decoder for a codec: libav first, then the alternatives.
fn decoder(codec: VideoCodec) -> Result<(gst::Element, gst::Element), SnapshotError> {
    let (parser, candidates): (&'static str, &[&str]) = match codec {
        VideoCodec::H264 => ("h264parse", &["avdec_h264", "openh264dec"]),
        VideoCodec::H265 => ("h265parse", &["avdec_h265", "libde265dec"]),
    };
    let decoder = candidates
        .iter()
        .find_map(|name| gst::ElementFactory::make(name).build().ok())
        .ok_or_else(|| SnapshotError::DecoderMissing {
        codec: codec.as_str(),
        tried: candidates.join(", "),
    })?;
    Ok((make(parser)?, decoder))
}

/// The output size: at most `max_width` wide, even dimensions, aspect ratio kept.
fn scaled(width: u32, height: u32, max_width: Option<u32>) -> (u32, u32) {
    match max_width {
        Some(max) if max >= 2 && width > max => {
            let w = max & !1;
            let h = (u64::from(height) * u64::from(w) + u64::from(width) / 2) / u64::from(width);
            (w, (h as u32).max(2) & !1)
        }
        _ => (width, height),
    }
}

/// Decode one key frame and encode it as JPEG.
fn encode(
    caps: &gst::Caps,
    buffer: &gst::Buffer,
    options: &SnapshotOptions,
    deadline: Deadline,
) -> Result<Jpeg, SnapshotError> {
    crate::init()?;
    let codec = video_codec(caps).ok_or_else(|| {
        SnapshotError::Unsupported(
            caps.structure(0).map_or_else(|| "empty caps".to_owned(), |s| s.name().to_string()),
        )
    })?;
    let (parse, decode) = decoder(codec)?;
    let pipeline = gst::Pipeline::with_name("snapshot");
    let src =
        gst_app::AppSrc::builder().caps(caps).format(gst::Format::Time).is_live(false).build();
    let convert = make("videoconvert")?;
    let scale = make("videoscale")?;
    let filter = make("capsfilter")?;
    let jpegenc = make("jpegenc")?;
    jpegenc.set_property("quality", i32::from(options.quality.clamp(1, 100)));
    let sink = gst_app::AppSink::builder().sync(false).build();
    let mut raw = gst::Caps::builder("video/x-raw");
    if let Some((w, h)) = caps_dimensions(caps) {
        let (w, h) = scaled(w, h, options.max_width);
        raw = raw.field("width", w as i32).field("height", h as i32);
    } else if let Some(max) = options.max_width {
        raw = raw.field("width", gst::IntRange::new(2, max as i32));
    }
    filter.set_property("caps", raw.build());
    let elements = [src.upcast_ref(), &parse, &decode, &convert, &scale, &filter, &jpegenc];
    pipeline
        .add_many(elements.iter().copied().chain([sink.upcast_ref()]))
        .map_err(|e| SnapshotError::Failed(e.to_string()))?;
    gst::Element::link_many(elements.iter().copied().chain([sink.upcast_ref()]))
        .map_err(|e| SnapshotError::Failed(format!("cannot link the decoder: {e}")))?;
    let running = Running(pipeline);
    running
        .0
        .set_state(gst::State::Playing)
        .map_err(|e| SnapshotError::Failed(bus_error(&running.0).unwrap_or(e.to_string())))?;
    // The recorder's time stamps mean nothing here; one frame at 0.
    let mut frame = buffer.copy();
    {
        let b = frame.make_mut();
        b.set_pts(gst::ClockTime::ZERO);
        b.set_dts(gst::ClockTime::ZERO);
        b.set_duration(gst::ClockTime::NONE);
        b.unset_flags(gst::BufferFlags::DELTA_UNIT);
    }
    src.push_buffer(frame).map_err(|e| SnapshotError::Failed(format!("push: {e:?}")))?;
    let _ = src.end_of_stream();
    loop {
        if let Some(sample) = sink.try_pull_sample(deadline.step()?) {
            let data = sample
                .buffer()
                .and_then(|b| b.map_readable().ok().map(|m| m.as_slice().to_vec()))
                .ok_or_else(|| SnapshotError::Failed("the encoder gave an empty picture".into()))?;
            let (width, height) = sample
                .caps()
                .and_then(caps_dimensions)
                .ok_or_else(|| SnapshotError::Failed("the encoder gave no size".into()))?;
            return Ok(Jpeg { data, width, height });
        }
        if let Some(err) = bus_error(&running.0) {
            return Err(SnapshotError::Failed(err));
        }
        if sink.is_eos() {
            return Err(SnapshotError::Failed("the decoder gave no picture".into()));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scaling_keeps_the_aspect_ratio_with_even_sizes() {
        assert_eq!(scaled(1280, 720, None), (1280, 720));
        assert_eq!(scaled(1280, 720, Some(640)), (640, 360));
        assert_eq!(scaled(1280, 720, Some(2000)), (1280, 720));
        assert_eq!(scaled(1920, 1080, Some(321)), (320, 180));
        assert_eq!(scaled(704, 576, Some(352)), (352, 288));
    }

    #[test]
    fn an_empty_tap_has_no_frame() {
        let err = from_tap(&StreamTap::new(), &SnapshotOptions::default()).unwrap_err();
        assert!(matches!(err, SnapshotError::NoFrame), "{err}");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let err = from_file(
            Path::new("/nonexistent/x.mp4"),
            FramePick::Last,
            &SnapshotOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.mp4"), "{err}");
    }
}
