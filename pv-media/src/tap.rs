//! The stream tap: a camera's encoded stream in memory, for consumers other than the recorder.
//!
//! The GStreamer recorder copies every access unit that leaves its parsers (video: H.264 `avc`
//! or H.265 `hvc1`, one access unit per buffer, parameter sets in the caps' `codec_data`; audio:
//! raw AAC frames) into the camera's [`StreamTap`]. Snapshots ([`crate::snapshot`]) and RTMP
//! pushes ([`crate::rtmp`]) read the tap, so they need no second RTSP connection to the camera
//! and nothing is decoded unless a consumer decodes it. The buffers are GStreamer buffers
//! shared by reference count with the recording pipeline: the tap copies no media data.
//!
//! A tap holds:
//! - [`TapInfo`]: the current caps of the video and audio tracks, whether the camera is
//!   streaming, and a *generation* number that changes whenever the stream restarts (a new
//!   recorder attempt after a reconnect) or its caps change. Published on a watch channel
//!   ([`StreamTap::watch`]).
//! - the last video key frame with the caps needed to decode it ([`StreamTap::key_frame`]):
//!   `codec_data` carries SPS/PPS (and VPS), so the frame alone decodes.
//! - the access units since that key frame (at most [`GOP_MAX_BYTES`]), so a new consumer
//!   ([`StreamTap::subscribe`]) starts at once from a key frame instead of waiting up to a
//!   group of pictures.
//! - a bounded broadcast channel ([`tokio::sync::broadcast`], [`CAPACITY`] units) of every new
//!   access unit. Publishing never waits: a consumer that falls more than [`CAPACITY`] units
//!   behind loses the oldest ones (it sees [`broadcast::error::RecvError::Lagged`] and should
//!   skip to the next key frame); the recorder is never slowed by a consumer.
//!
//! Only the GStreamer backend feeds a tap. A camera recorded by the ffmpeg fallback has a tap
//! that never goes live; snapshots of such cameras come from segment files
//! ([`crate::snapshot::from_file`]).
//!
//! ```no_run
//! # async fn demo(recorder: &pv_media::record::Recorder) {
//! let tap = recorder.tap();
//! let mut sub = tap.subscribe();
//! for unit in sub.backlog.drain(..) {
//!     println!("{:?} {} bytes (backlog)", unit.track(), unit.len());
//! }
//! while let Ok(unit) = sub.receiver.recv().await {
//!     println!("{:?} key={} {} bytes", unit.track(), unit.is_key_frame(), unit.len());
//! }
//! # }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gstreamer as gst;
use tokio::sync::{broadcast, watch};

/// Access units the broadcast channel holds for a consumer that is behind (about 6 s of a
/// 30 fps camera with AAC audio). A consumer further behind loses the oldest units.
pub const CAPACITY: usize = 512;
/// The most the tap keeps of the current group of pictures for new subscribers; a longer GOP
/// is not kept (new subscribers then wait for the next key frame).
pub const GOP_MAX_BYTES: usize = 8 << 20;
/// The most access units kept of the current group of pictures.
const GOP_MAX_UNITS: usize = 2048;

/// Which track an access unit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    /// The video track.
    Video,
    /// The AAC audio track.
    Audio,
}

/// A video codec the tap carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VideoCodec {
    /// H.264 (`video/x-h264`, `stream-format=avc`).
    H264,
    /// H.265 (`video/x-h265`, `stream-format=hvc1`).
    H265,
}

impl VideoCodec {
    /// `h264` or `h265` (as in [`crate::record::SegmentFinished::video_codec`]).
    pub fn as_str(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "h265",
        }
    }

    /// The codec of video caps, if it is one the tap carries.
    pub fn from_caps(caps: &gst::CapsRef) -> Option<VideoCodec> {
        match caps.structure(0)?.name().as_str() {
            "video/x-h264" => Some(VideoCodec::H264),
            "video/x-h265" => Some(VideoCodec::H265),
            _ => None,
        }
    }
}

impl fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One encoded access unit (a video frame or an AAC frame) as the recorder received it.
///
/// Cloning is cheap (a reference count). Time stamps are those of the recording pipeline:
/// continuous within one [`generation`](AccessUnit::generation), unrelated across generations.
#[derive(Debug, Clone)]
pub struct AccessUnit {
    track: Track,
    buffer: gst::Buffer,
    generation: u64,
}

impl AccessUnit {
    /// The track.
    pub fn track(&self) -> Track {
        self.track
    }

    /// The GStreamer buffer (shared with the recorder: do not expect it to be writable).
    pub fn buffer(&self) -> &gst::Buffer {
        &self.buffer
    }

    /// The stream generation the unit belongs to (see [`TapInfo::generation`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A video key frame (decodable without earlier frames, given the caps).
    pub fn is_key_frame(&self) -> bool {
        self.track == Track::Video && !self.buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)
    }

    /// Presentation time stamp.
    pub fn pts(&self) -> Option<Duration> {
        self.buffer.pts().map(|t| Duration::from_nanos(t.nseconds()))
    }

    /// Decoding time stamp, else the presentation time stamp.
    pub fn dts_or_pts(&self) -> Option<Duration> {
        self.buffer.dts_or_pts().map(|t| Duration::from_nanos(t.nseconds()))
    }

    /// Duration, when known.
    pub fn duration(&self) -> Option<Duration> {
        self.buffer.duration().map(|t| Duration::from_nanos(t.nseconds()))
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.buffer.size()
    }

    /// Whether the unit carries no bytes.
    pub fn is_empty(&self) -> bool {
        self.buffer.size() == 0
    }

    /// A copy of the bytes (H.264/H.265: length-prefixed NAL units).
    pub fn to_vec(&self) -> Vec<u8> {
        self.buffer.map_readable().map(|m| m.as_slice().to_vec()).unwrap_or_default()
    }
}

/// What the tap currently carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TapInfo {
    /// Changes whenever the stream restarts or its caps change; time stamps and caps are only
    /// comparable within one generation. 0: nothing was ever published.
    pub generation: u64,
    /// The recorder is connected and the camera's stream flows into the tap.
    pub live: bool,
    /// Caps of the video track (with `codec_data`, width, height, frame rate).
    pub video: Option<gst::Caps>,
    /// Caps of the audio track (AAC, `stream-format=raw` with `codec_data`).
    pub audio: Option<gst::Caps>,
    /// The camera announced an audio track the recorder takes (its caps may not be known yet).
    pub audio_expected: bool,
}

impl TapInfo {
    /// The video codec, when video caps are known.
    pub fn video_codec(&self) -> Option<VideoCodec> {
        self.video.as_ref().and_then(|c| VideoCodec::from_caps(c))
    }

    /// Video width and height in pixels, when known.
    pub fn dimensions(&self) -> Option<(u32, u32)> {
        self.video.as_ref().and_then(|c| caps_dimensions(c))
    }

    /// Live, with video caps, and with audio caps when audio is expected: a consumer can set
    /// up every track it will see.
    pub fn is_ready(&self) -> bool {
        self.live && self.video.is_some() && (!self.audio_expected || self.audio.is_some())
    }
}

/// Width and height of video caps.
pub(crate) fn caps_dimensions(caps: &gst::CapsRef) -> Option<(u32, u32)> {
    let st = caps.structure(0)?;
    let w = st.get::<i32>("width").ok()?;
    let h = st.get::<i32>("height").ok()?;
    Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?))
}

/// The last video key frame and what is needed to decode it.
#[derive(Debug, Clone)]
pub struct KeyFrame {
    caps: gst::Caps,
    buffer: gst::Buffer,
    generation: u64,
    received_at: Instant,
}

impl KeyFrame {
    /// Video caps at the time of the frame (`codec_data` holds the parameter sets).
    pub fn caps(&self) -> &gst::Caps {
        &self.caps
    }

    /// The encoded frame.
    pub fn buffer(&self) -> &gst::Buffer {
        &self.buffer
    }

    /// The codec.
    pub fn codec(&self) -> Option<VideoCodec> {
        VideoCodec::from_caps(&self.caps)
    }

    /// The generation it belongs to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How long ago the recorder received it.
    pub fn age(&self) -> Duration {
        self.received_at.elapsed()
    }
}

/// A new consumer's view: the current info, the units since the last key frame, and the
/// channel of every later unit. No unit is missing or repeated between `backlog` and
/// `receiver`.
#[derive(Debug)]
pub struct Subscription {
    /// The tap's info when subscribing.
    pub info: TapInfo,
    /// The current group of pictures (starting with a key frame), or empty when none is kept.
    pub backlog: Vec<AccessUnit>,
    /// Every unit published after `backlog`.
    pub receiver: broadcast::Receiver<AccessUnit>,
}

/// A camera's in-memory stream (see the module documentation). Cloning gives another handle
/// to the same tap.
#[derive(Clone)]
pub struct StreamTap {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    units: broadcast::Sender<AccessUnit>,
    info: watch::Sender<TapInfo>,
}

#[derive(Default)]
struct State {
    info: TapInfo,
    key_frame: Option<KeyFrame>,
    gop: Vec<AccessUnit>,
    gop_bytes: usize,
    /// `gop` starts at a key frame and is being extended.
    gop_open: bool,
}

impl State {
    fn reset_gop(&mut self) {
        self.gop.clear();
        self.gop_bytes = 0;
        self.gop_open = false;
    }
}

impl fmt::Debug for StreamTap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.info();
        f.debug_struct("StreamTap")
            .field("generation", &info.generation)
            .field("live", &info.live)
            .field("video", &info.video_codec())
            .field("audio", &info.audio.is_some())
            .field("receivers", &self.inner.units.receiver_count())
            .finish()
    }
}

impl Default for StreamTap {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamTap {
    /// An empty tap (not live, no key frame). Recorders create their own
    /// ([`crate::record::Recorder::tap`]).
    pub fn new() -> StreamTap {
        let (units, _) = broadcast::channel(CAPACITY);
        let (info, _) = watch::channel(TapInfo::default());
        StreamTap { inner: Arc::new(Inner { state: Mutex::new(State::default()), units, info }) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current info.
    pub fn info(&self) -> TapInfo {
        self.lock().info.clone()
    }

    /// The info on a watch channel: changes of generation, caps and liveness.
    pub fn watch(&self) -> watch::Receiver<TapInfo> {
        self.inner.info.subscribe()
    }

    /// The last video key frame, if one was received (also after the camera was lost: check
    /// [`KeyFrame::age`] or [`TapInfo::live`]).
    pub fn key_frame(&self) -> Option<KeyFrame> {
        self.lock().key_frame.clone()
    }

    /// Start consuming: the current group of pictures and a receiver of what follows.
    pub fn subscribe(&self) -> Subscription {
        let state = self.lock();
        Subscription {
            info: state.info.clone(),
            backlog: if state.gop_open { state.gop.clone() } else { Vec::new() },
            receiver: self.inner.units.subscribe(),
        }
    }

    /// How many consumers are subscribed.
    pub fn receiver_count(&self) -> usize {
        self.inner.units.receiver_count()
    }

    fn update_info(&self, state: &State) {
        let info = state.info.clone();
        self.inner.info.send_if_modified(|current| {
            if *current == info {
                false
            } else {
                *current = info;
                true
            }
        });
    }

    /// A new stream starts (a recorder attempt): new generation, caps not known yet.
    pub(crate) fn begin_stream(&self) {
        let mut state = self.lock();
        state.info.generation += 1;
        state.info.live = true;
        state.info.video = None;
        state.info.audio = None;
        state.info.audio_expected = false;
        state.reset_gop();
        self.update_info(&state);
    }

    /// The stream has an audio track whose caps will follow.
    pub(crate) fn expect_audio(&self) {
        let mut state = self.lock();
        state.info.audio_expected = true;
        self.update_info(&state);
    }

    /// A track's caps are known or changed. A change of caps already set starts a new
    /// generation.
    pub(crate) fn set_caps(&self, track: Track, caps: gst::Caps) {
        let mut state = self.lock();
        let slot = match track {
            Track::Video => &mut state.info.video,
            Track::Audio => &mut state.info.audio,
        };
        match slot {
            Some(old) if *old == caps => return,
            Some(_) => {
                *slot = Some(caps);
                state.info.generation += 1;
                state.reset_gop();
            }
            None => *slot = Some(caps),
        }
        if track == Track::Audio {
            state.info.audio_expected = true;
        }
        self.update_info(&state);
    }

    /// An access unit left the parser. Never waits for consumers.
    pub(crate) fn publish(&self, track: Track, buffer: gst::Buffer) {
        let mut state = self.lock();
        let unit = AccessUnit { track, buffer, generation: state.info.generation };
        if unit.is_key_frame() {
            state.reset_gop();
            if let Some(caps) = state.info.video.clone() {
                state.gop_open = true;
                state.key_frame = Some(KeyFrame {
                    caps,
                    buffer: unit.buffer.clone(),
                    generation: unit.generation,
                    received_at: Instant::now(),
                });
            }
        }
        if state.gop_open {
            if state.gop.len() < GOP_MAX_UNITS && state.gop_bytes + unit.len() <= GOP_MAX_BYTES {
                state.gop_bytes += unit.len();
                state.gop.push(unit.clone());
            } else {
                state.reset_gop();
            }
        }
        // Err: nobody is listening; the unit is dropped.
        let _ = self.inner.units.send(unit);
    }

    /// The stream ended (the recorder attempt is over). The last key frame is kept.
    pub(crate) fn end_stream(&self) {
        let mut state = self.lock();
        state.info.live = false;
        state.reset_gop();
        self.update_info(&state);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn caps() -> gst::Caps {
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("width", 1280i32)
            .field("height", 720i32)
            .build()
    }

    fn frame(key: bool, size: usize) -> gst::Buffer {
        let mut b = gst::Buffer::from_mut_slice(vec![0u8; size]);
        if !key {
            b.get_mut().unwrap().set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        b
    }

    #[test]
    fn a_subscriber_gets_the_gop_then_everything_after_it() {
        crate::init().unwrap();
        let tap = StreamTap::new();
        assert!(tap.key_frame().is_none());
        tap.begin_stream();
        assert!(!tap.info().is_ready());
        tap.set_caps(Track::Video, caps());
        assert!(tap.info().is_ready());
        assert_eq!(tap.info().dimensions(), Some((1280, 720)));
        tap.publish(Track::Video, frame(false, 10)); // before any key frame: not kept
        tap.publish(Track::Video, frame(true, 11));
        tap.publish(Track::Video, frame(false, 12));
        let mut sub = tap.subscribe();
        assert_eq!(sub.backlog.iter().map(AccessUnit::len).collect::<Vec<_>>(), [11, 12]);
        tap.publish(Track::Video, frame(false, 13));
        assert_eq!(sub.receiver.try_recv().unwrap().len(), 13);
        assert_eq!(tap.key_frame().unwrap().buffer().size(), 11);
        assert_eq!(tap.key_frame().unwrap().codec(), Some(VideoCodec::H264));

        // A caps change is a new generation; a new stream too.
        let g = tap.info().generation;
        tap.set_caps(Track::Video, caps());
        assert_eq!(tap.info().generation, g, "same caps: same generation");
        let mut other = caps();
        other.get_mut().unwrap().set("width", 640i32);
        tap.set_caps(Track::Video, other);
        assert_eq!(tap.info().generation, g + 1);
        assert!(tap.subscribe().backlog.is_empty());
        tap.end_stream();
        assert!(!tap.info().live);
        assert!(tap.key_frame().is_some(), "the last key frame outlives the stream");
    }

    #[test]
    fn a_stalled_subscriber_never_blocks_the_publisher() {
        crate::init().unwrap();
        let tap = StreamTap::new();
        tap.begin_stream();
        tap.set_caps(Track::Video, caps());
        let mut stalled = tap.subscribe();
        let started = Instant::now();
        for i in 0..(CAPACITY * 20) {
            tap.publish(Track::Video, frame(i % 30 == 0, 100));
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        match stalled.receiver.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(n)) => assert!(n > 0),
            other => panic!("expected Lagged, got {other:?}"),
        }
    }

    #[test]
    fn the_gop_kept_for_new_subscribers_is_bounded() {
        crate::init().unwrap();
        let tap = StreamTap::new();
        tap.begin_stream();
        tap.set_caps(Track::Video, caps());
        tap.publish(Track::Video, frame(true, 1000));
        for _ in 0..(GOP_MAX_BYTES / 100_000 + 1) {
            tap.publish(Track::Video, frame(false, 100_000));
        }
        assert!(tap.subscribe().backlog.is_empty(), "an oversized GOP is dropped");
        tap.publish(Track::Video, frame(true, 1000));
        assert_eq!(tap.subscribe().backlog.len(), 1);
    }
}
