//! The stream tap: a camera's encoded stream in memory, for consumers other than the recorder.
//!
//! The GStreamer recorder hands every access unit that leaves its parsers (video: H.264 `avc`
//! or H.265 `hvc1`, one access unit per buffer, length-prefixed NAL units, parameter sets in
//! the track's `codec_data`; audio: raw AAC frames) to the camera's [`StreamTap`]. Snapshots
//! ([`crate::snapshot`]), RTMP pushes ([`crate::rtmp`]) and live viewers ([`crate::live`])
//! read the tap, so they need no second RTSP connection to the camera and nothing is decoded
//! unless a consumer decodes it.
//!
//! The tap's API carries no GStreamer type: an [`AccessUnit`] is owned bytes ([`Bytes`]),
//! time stamps, a key-frame flag and the stream generation; tracks are described by
//! [`VideoParams`] and [`AudioParams`] (codec, `codec_data`, size, rate). A consumer that is
//! not GStreamer (a WebRTC sender, an upload, a face detector) neither builds nor reads
//! GStreamer types, and a producer that is not GStreamer (another RTSP client) can feed a tap
//! through [`StreamTap::begin_stream`], [`StreamTap::set_video`], [`StreamTap::publish`] and
//! [`StreamTap::end_stream`]. The GStreamer recorder's buffers are wrapped, not copied
//! (`Bytes` owning the mapped buffer); GStreamer consumers convert back inside pv-media.
//!
//! A tap is owned by whoever owns the camera (the recording service) and outlives the
//! recorders that feed it: a restarted recorder feeds the same tap
//! ([`crate::record::Recorder::start_with_tap`]), consumers see a new generation, never a new
//! tap.
//!
//! A tap holds:
//! - [`TapInfo`]: the current parameters of the video and audio tracks, whether the camera is
//!   streaming, and a *generation* number that changes whenever the stream restarts (a new
//!   recorder attempt after a reconnect) or its parameters change. Published on a watch channel
//!   ([`StreamTap::watch`]).
//! - the last video key frame with the parameters needed to decode it
//!   ([`StreamTap::key_frame`]): `codec_data` carries SPS/PPS (and VPS), so the frame alone
//!   decodes.
//! - the access units since that key frame (at most [`GOP_MAX_BYTES`]), so a new consumer
//!   ([`StreamTap::subscribe`]) starts at once from a key frame instead of waiting up to a
//!   group of pictures.
//! - a bounded broadcast channel ([`tokio::sync::broadcast`], [`CAPACITY`] units) of every new
//!   access unit. Publishing never waits: a consumer that falls more than [`CAPACITY`] units
//!   behind loses the oldest ones; its [`Subscription`] then skips to the next key frame by
//!   itself (the one place that handles lag), so the recorder is never slowed by a consumer
//!   and no consumer sees a broken group of pictures.
//!
//! Only the GStreamer backend feeds a tap. A camera recorded by the ffmpeg fallback has a tap
//! that never goes live; snapshots of such cameras come from segment files
//! ([`crate::snapshot::from_file`]).
//!
//! ```no_run
//! # async fn demo(recorder: &pv_media::record::Recorder) {
//! let tap = recorder.tap();
//! let mut sub = tap.subscribe();
//! // The current group of pictures first, then every later unit; after a lag or a restart
//! // of the stream the subscription resumes at the next key frame.
//! while let Some(unit) = sub.recv().await {
//!     println!("{:?} key={} {} bytes", unit.track(), unit.is_key_frame(), unit.len());
//! }
//! # }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use bytes::Bytes;
use tokio::sync::{broadcast, watch};

pub(crate) mod gst;

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
    /// The audio track (AAC, or G.711 from the built-in RTSP client).
    Audio,
}

/// A video codec the tap carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VideoCodec {
    /// H.264 (access units of length-prefixed NAL units, `codec_data` an
    /// AVCDecoderConfigurationRecord).
    H264,
    /// H.265 (length-prefixed NAL units, `codec_data` an HEVCDecoderConfigurationRecord).
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
}

impl fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a consumer needs to set up the video track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoParams {
    /// The codec.
    pub codec: VideoCodec,
    /// The decoder configuration record (`avcC` / `hvcC`): profile, level, NAL length size and
    /// the parameter sets.
    pub codec_data: Bytes,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rate as numerator and denominator, when the stream says.
    pub framerate: Option<(u32, u32)>,
}

/// An audio codec the tap carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AudioCodec {
    /// AAC (raw frames, `codec_data` an AudioSpecificConfig).
    Aac,
    /// G.711 mu-law (raw 8-bit samples, one byte per sample and channel; `codec_data` empty).
    Pcmu,
    /// G.711 A-law (raw 8-bit samples, one byte per sample and channel; `codec_data` empty).
    Pcma,
}

/// What a consumer needs to set up the audio track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioParams {
    /// The codec.
    pub codec: AudioCodec,
    /// The AudioSpecificConfig (AAC); empty for G.711.
    pub codec_data: Bytes,
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u32,
}

/// One encoded access unit (a video frame, an AAC frame or a block of G.711 samples) as the
/// camera sent it.
///
/// Cloning is cheap (a reference count). Time stamps are the producer's: continuous within
/// one [`generation`](AccessUnit::generation), unrelated across generations.
#[derive(Debug, Clone)]
pub struct AccessUnit {
    track: Track,
    data: Bytes,
    pts: Option<Duration>,
    dts: Option<Duration>,
    duration: Option<Duration>,
    key: bool,
    generation: u64,
    received_at: Instant,
}

impl AccessUnit {
    /// A unit for [`StreamTap::publish`]: its bytes (video: length-prefixed NAL units), time
    /// stamps and whether it is a video key frame. Its generation is set when published.
    pub fn new(
        track: Track,
        data: Bytes,
        pts: Option<Duration>,
        dts: Option<Duration>,
        duration: Option<Duration>,
        key: bool,
    ) -> AccessUnit {
        AccessUnit {
            track,
            data,
            pts,
            dts,
            duration,
            key: key && track == Track::Video,
            generation: 0,
            received_at: Instant::now(),
        }
    }

    /// The track.
    pub fn track(&self) -> Track {
        self.track
    }

    /// The encoded bytes (H.264/H.265: length-prefixed NAL units; AAC: one raw frame; G.711:
    /// a block of samples).
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The stream generation the unit belongs to (see [`TapInfo::generation`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A video key frame (decodable without earlier frames, given the track's parameters).
    pub fn is_key_frame(&self) -> bool {
        self.key
    }

    /// Presentation time stamp.
    pub fn pts(&self) -> Option<Duration> {
        self.pts
    }

    /// Decoding time stamp.
    pub fn dts(&self) -> Option<Duration> {
        self.dts
    }

    /// Decoding time stamp, else the presentation time stamp.
    pub fn dts_or_pts(&self) -> Option<Duration> {
        self.dts.or(self.pts)
    }

    /// Duration, when known.
    pub fn duration(&self) -> Option<Duration> {
        self.duration
    }

    /// When the unit entered the tap (for latency measurements).
    pub fn received_at(&self) -> Instant {
        self.received_at
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the unit carries no bytes.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// What the tap currently carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TapInfo {
    /// Changes whenever the stream restarts or its parameters change; time stamps and
    /// parameters are only comparable within one generation. 0: nothing was ever published.
    pub generation: u64,
    /// The producer is connected and the camera's stream flows into the tap.
    pub live: bool,
    /// The video track.
    pub video: Option<VideoParams>,
    /// The audio track (see [`AudioCodec`]; consumers that cannot carry the codec skip it).
    pub audio: Option<AudioParams>,
    /// The camera announced an audio track the producer takes (its parameters may not be known
    /// yet).
    pub audio_expected: bool,
}

impl TapInfo {
    /// The video codec, when the video track is known.
    pub fn video_codec(&self) -> Option<VideoCodec> {
        self.video.as_ref().map(|v| v.codec)
    }

    /// Video width and height in pixels, when known.
    pub fn dimensions(&self) -> Option<(u32, u32)> {
        self.video.as_ref().map(|v| (v.width, v.height))
    }

    /// Live, with video parameters, and with audio parameters when audio is expected: a
    /// consumer can set up every track it will see.
    pub fn is_ready(&self) -> bool {
        self.live && self.video.is_some() && (!self.audio_expected || self.audio.is_some())
    }
}

/// The last video key frame and what is needed to decode it.
#[derive(Debug, Clone)]
pub struct KeyFrame {
    params: VideoParams,
    unit: AccessUnit,
}

impl KeyFrame {
    /// The video track's parameters at the time of the frame (`codec_data` holds the
    /// parameter sets).
    pub fn params(&self) -> &VideoParams {
        &self.params
    }

    /// The encoded frame.
    pub fn unit(&self) -> &AccessUnit {
        &self.unit
    }

    /// The codec.
    pub fn codec(&self) -> VideoCodec {
        self.params.codec
    }

    /// The generation it belongs to.
    pub fn generation(&self) -> u64 {
        self.unit.generation
    }

    /// How long ago it entered the tap.
    pub fn age(&self) -> Duration {
        self.unit.received_at.elapsed()
    }
}

/// A consumer of a tap: the current group of pictures, then every later unit, in order.
///
/// This is the one place that handles a consumer falling behind: when the broadcast dropped
/// units for it, or the stream restarted (a new generation), or the consumer asks
/// ([`Subscription::resync`]), it skips everything up to the next video key frame, so a
/// consumer never sees a group of pictures with a hole in it. Audio is skipped along with the
/// video it belongs to.
#[derive(Debug)]
pub struct Subscription {
    info: TapInfo,
    info_rx: watch::Receiver<TapInfo>,
    backlog: VecDeque<AccessUnit>,
    receiver: broadcast::Receiver<AccessUnit>,
    waiting_for_key: bool,
    skipped: u64,
}

impl Subscription {
    /// The tap's info for the units being received: as when subscribing, refreshed when a unit
    /// of a new generation arrives.
    pub fn info(&self) -> &TapInfo {
        &self.info
    }

    /// The tap's info now, on a watch channel.
    pub fn watch(&self) -> watch::Receiver<TapInfo> {
        self.info_rx.clone()
    }

    /// The next unit; `None` when the tap is gone (every handle dropped). Skips to the next key
    /// frame after a lag, a new generation or [`Subscription::resync`].
    pub async fn recv(&mut self) -> Option<AccessUnit> {
        loop {
            let unit = match self.backlog.pop_front() {
                Some(unit) => unit,
                None => match self.receiver.recv().await {
                    Ok(unit) => unit,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        self.lagged(n);
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            };
            if let Some(unit) = self.accept(unit) {
                return Some(unit);
            }
        }
    }

    /// The next unit if one is waiting: `Ok(None)` when none is, `Err(())` when the tap is
    /// gone.
    #[allow(clippy::result_unit_err)]
    pub fn try_recv(&mut self) -> Result<Option<AccessUnit>, ()> {
        loop {
            let unit = match self.backlog.pop_front() {
                Some(unit) => unit,
                None => match self.receiver.try_recv() {
                    Ok(unit) => unit,
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        self.lagged(n);
                        continue;
                    }
                    Err(broadcast::error::TryRecvError::Empty) => return Ok(None),
                    Err(broadcast::error::TryRecvError::Closed) => return Err(()),
                },
            };
            if let Some(unit) = self.accept(unit) {
                return Ok(Some(unit));
            }
        }
    }

    /// Skip everything up to the next video key frame (a consumer whose own queue overflowed).
    pub fn resync(&mut self) {
        self.waiting_for_key = true;
    }

    /// Whether the subscription is skipping to the next key frame.
    pub fn is_resyncing(&self) -> bool {
        self.waiting_for_key
    }

    /// Units skipped so far (lost to lag or dropped while waiting for a key frame).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    fn lagged(&mut self, n: u64) {
        self.skipped += n;
        self.waiting_for_key = true;
    }

    fn accept(&mut self, unit: AccessUnit) -> Option<AccessUnit> {
        let new_generation = unit.generation != self.info.generation;
        // Also refresh when the info changed within the generation (a track became known).
        if new_generation || self.info_rx.has_changed().unwrap_or(false) {
            let now = self.info_rx.borrow_and_update().clone();
            self.info = if now.generation == unit.generation {
                now
            } else {
                // The tap moved on again; keep the unit's generation so the next one refreshes.
                TapInfo { generation: unit.generation, ..now }
            };
        }
        if new_generation {
            self.waiting_for_key = true;
        }
        if self.waiting_for_key {
            if !unit.is_key_frame() {
                self.skipped += 1;
                return None;
            }
            self.waiting_for_key = false;
        }
        Some(unit)
    }
}

/// One continuous timeline over a subscription's units, across generations: a consumer that
/// sends the stream on (live view, HLS) places each unit on it, so a camera that reconnects
/// continues where it left off instead of jumping in time. Starts at zero at the first key
/// frame; a new generation starts one frame interval after the last video frame.
#[derive(Debug, Clone)]
pub struct Timeline {
    generation: Option<u64>,
    base: Duration,
    offset: Duration,
    last_video: Option<Duration>,
    frame: Duration,
}

impl Timeline {
    /// A timeline whose frame interval is `frame` until video frames tell otherwise.
    pub fn new(frame: Duration) -> Timeline {
        Timeline {
            generation: None,
            base: Duration::ZERO,
            offset: Duration::ZERO,
            last_video: None,
            frame,
        }
    }

    /// The unit's (decoding) time on the timeline; None before the first key frame of a
    /// generation, and for units without a time stamp or before that key frame.
    pub fn place(&mut self, unit: &AccessUnit) -> Option<Duration> {
        let t = unit.dts_or_pts()?;
        if self.generation != Some(unit.generation) {
            if !unit.is_key_frame() {
                return None;
            }
            if let Some(last) = self.last_video {
                self.offset = last + self.frame;
            }
            self.generation = Some(unit.generation);
            self.base = t;
        }
        let at = t.checked_sub(self.base)? + self.offset;
        if unit.track == Track::Video {
            if let Some(last) = self.last_video.filter(|l| at > *l) {
                self.frame = (at - last).min(Duration::from_secs(1));
            }
            self.last_video = Some(self.last_video.map_or(at, |l| l.max(at)));
        }
        Some(at)
    }

    /// The current frame interval (from the last two video frames, else the initial guess).
    pub fn frame_interval(&self) -> Duration {
        self.frame
    }
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
    /// An empty tap (not live, no key frame).
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

    /// The info on a watch channel: changes of generation, parameters and liveness.
    pub fn watch(&self) -> watch::Receiver<TapInfo> {
        self.inner.info.subscribe()
    }

    /// The last video key frame, if one was received (also after the camera was lost: check
    /// [`KeyFrame::age`] or [`TapInfo::live`]).
    pub fn key_frame(&self) -> Option<KeyFrame> {
        self.lock().key_frame.clone()
    }

    /// Start consuming: the current group of pictures, then what follows.
    pub fn subscribe(&self) -> Subscription {
        let state = self.lock();
        let backlog: VecDeque<AccessUnit> =
            if state.gop_open { state.gop.iter().cloned().collect() } else { VecDeque::new() };
        Subscription {
            info: state.info.clone(),
            info_rx: self.inner.info.subscribe(),
            waiting_for_key: backlog.is_empty(),
            backlog,
            receiver: self.inner.units.subscribe(),
            skipped: 0,
        }
    }

    /// Wait until the tap is live with video and a key frame from this generation (a new
    /// consumer can start at once); false when `timeout` passes first.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut watch = self.watch();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let state = self.lock();
                if state.info.live && state.info.video.is_some() && state.gop_open {
                    return true;
                }
            }
            // Key frames do not change the info: look again at least every 100 ms.
            let step = (tokio::time::Instant::now() + Duration::from_millis(100)).min(deadline);
            let _ = tokio::time::timeout_at(step, watch.changed()).await;
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
        }
    }

    /// How many consumers are subscribed.
    pub fn receiver_count(&self) -> usize {
        self.inner.units.receiver_count()
    }

    /// Whether `other` is a handle to the same tap.
    pub fn same_tap(&self, other: &StreamTap) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
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

    /// Producer: a new stream starts (a recorder attempt): new generation, tracks not known
    /// yet.
    pub fn begin_stream(&self) {
        let mut state = self.lock();
        state.info.generation += 1;
        state.info.live = true;
        state.info.video = None;
        state.info.audio = None;
        state.info.audio_expected = false;
        state.reset_gop();
        self.update_info(&state);
    }

    /// Producer: the stream has an audio track whose parameters will follow.
    pub fn expect_audio(&self) {
        let mut state = self.lock();
        state.info.audio_expected = true;
        self.update_info(&state);
    }

    /// Producer: the video track is known or changed. A change of parameters already set
    /// starts a new generation.
    pub fn set_video(&self, params: VideoParams) {
        let mut state = self.lock();
        if Self::replace(&mut state, |s| &mut s.info.video, params) {
            self.update_info(&state);
        }
    }

    /// Producer: the audio track is known or changed (see [`StreamTap::set_video`]).
    pub fn set_audio(&self, params: AudioParams) {
        let mut state = self.lock();
        state.info.audio_expected = true;
        Self::replace(&mut state, |s| &mut s.info.audio, params);
        self.update_info(&state);
    }

    /// Set a track; true when something changed. A change of a known track starts a new
    /// generation.
    fn replace<T: PartialEq>(
        state: &mut State,
        slot: impl Fn(&mut State) -> &mut Option<T>,
        value: T,
    ) -> bool {
        let changed = match slot(state) {
            Some(old) if *old == value => return false,
            Some(_) => true,
            None => false,
        };
        *slot(state) = Some(value);
        if changed {
            state.info.generation += 1;
            state.reset_gop();
        }
        true
    }

    /// Producer: an access unit arrived. Never waits for consumers.
    pub fn publish(&self, mut unit: AccessUnit) {
        let mut state = self.lock();
        unit.generation = state.info.generation;
        if unit.is_key_frame() {
            state.reset_gop();
            if let Some(params) = state.info.video.clone() {
                state.gop_open = true;
                state.key_frame = Some(KeyFrame { params, unit: unit.clone() });
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

    /// Producer: the stream ended (the recorder attempt is over). The last key frame is kept.
    pub fn end_stream(&self) {
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

    fn params(width: u32) -> VideoParams {
        VideoParams {
            codec: VideoCodec::H264,
            codec_data: Bytes::from_static(&[1, 0x64, 0, 0x28, 0xff, 0xe0, 0]),
            width,
            height: 720,
            framerate: Some((30, 1)),
        }
    }

    fn frame(key: bool, size: usize) -> AccessUnit {
        let t = Some(Duration::from_millis(size as u64));
        AccessUnit::new(Track::Video, Bytes::from(vec![0u8; size]), t, t, None, key)
    }

    fn audio() -> AccessUnit {
        AccessUnit::new(Track::Audio, Bytes::from_static(&[1, 2]), None, None, None, true)
    }

    #[tokio::test]
    async fn a_subscriber_gets_the_gop_then_everything_after_it() {
        let tap = StreamTap::new();
        assert!(tap.key_frame().is_none());
        tap.begin_stream();
        assert!(!tap.info().is_ready());
        tap.set_video(params(1280));
        assert!(tap.info().is_ready());
        assert_eq!(tap.info().dimensions(), Some((1280, 720)));
        tap.publish(frame(false, 10)); // before any key frame: not kept
        tap.publish(frame(true, 11));
        tap.publish(frame(false, 12));
        let mut sub = tap.subscribe();
        assert_eq!(sub.recv().await.unwrap().len(), 11);
        assert_eq!(sub.recv().await.unwrap().len(), 12);
        tap.publish(frame(false, 13));
        assert_eq!(sub.try_recv().unwrap().unwrap().len(), 13);
        assert!(sub.try_recv().unwrap().is_none());
        assert_eq!(tap.key_frame().unwrap().unit().len(), 11);
        assert_eq!(tap.key_frame().unwrap().codec(), VideoCodec::H264);
        assert!(!audio().is_key_frame(), "only video units are key frames");

        // Same parameters: same generation; other parameters or a new stream: a new one.
        let g = tap.info().generation;
        tap.set_video(params(1280));
        assert_eq!(tap.info().generation, g, "same parameters: same generation");
        tap.set_video(params(640));
        assert_eq!(tap.info().generation, g + 1);
        assert!(tap.subscribe().backlog.is_empty());
        tap.end_stream();
        assert!(!tap.info().live);
        assert!(tap.key_frame().is_some(), "the last key frame outlives the stream");
    }

    #[tokio::test]
    async fn a_new_generation_resumes_at_its_first_key_frame_with_its_info() {
        let tap = StreamTap::new();
        tap.begin_stream();
        tap.set_video(params(1280));
        tap.publish(frame(true, 20));
        let mut sub = tap.subscribe();
        assert_eq!(sub.recv().await.unwrap().len(), 20);
        // The recorder restarts on the same tap with other parameters.
        tap.end_stream();
        tap.begin_stream();
        tap.set_video(params(640));
        tap.publish(frame(false, 21)); // no key frame yet in the new generation: skipped
        tap.publish(audio());
        tap.publish(frame(true, 22));
        let unit = sub.recv().await.unwrap();
        assert_eq!(unit.len(), 22);
        assert_eq!(unit.generation(), sub.info().generation);
        assert_eq!(sub.info().dimensions(), Some((640, 720)));
        assert_eq!(sub.skipped(), 2);
    }

    #[tokio::test]
    async fn a_subscription_made_before_the_tracks_are_known_learns_them() {
        let tap = StreamTap::new();
        tap.begin_stream();
        let mut sub = tap.subscribe();
        assert!(sub.info().video.is_none());
        tap.set_video(params(1280));
        tap.publish(frame(true, 5));
        assert_eq!(sub.recv().await.unwrap().len(), 5);
        assert_eq!(sub.info().dimensions(), Some((1280, 720)));
    }

    #[tokio::test]
    async fn a_lagging_subscriber_resumes_at_the_next_key_frame() {
        let tap = StreamTap::new();
        tap.begin_stream();
        tap.set_video(params(1280));
        let mut stalled = tap.subscribe();
        let started = Instant::now();
        for i in 0..(CAPACITY * 20) {
            tap.publish(frame(i % 30 == 0, 100 + i));
        }
        assert!(started.elapsed() < Duration::from_secs(2), "the publisher never waits");
        let first = stalled.recv().await.unwrap();
        assert!(first.is_key_frame(), "after a lag the subscription resumes at a key frame");
        assert!(stalled.skipped() > 0);
        // Asked to resync, it skips to the next key frame too.
        while stalled.try_recv().unwrap().is_some() {}
        stalled.resync();
        tap.publish(frame(false, 3));
        tap.publish(frame(true, 4));
        assert_eq!(stalled.recv().await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn a_subscription_ends_when_the_tap_is_gone() {
        let tap = StreamTap::new();
        let mut sub = tap.subscribe();
        drop(tap);
        assert!(sub.recv().await.is_none());
    }

    #[test]
    fn a_timeline_continues_across_generations() {
        let unit = |g: u64, ms: u64, key: bool| {
            let t = Some(Duration::from_millis(ms));
            AccessUnit {
                generation: g,
                ..AccessUnit::new(Track::Video, Bytes::new(), t, t, None, key)
            }
        };
        let mut line = Timeline::new(Duration::from_millis(40));
        assert_eq!(line.place(&unit(1, 5000, false)), None, "nothing before a key frame");
        assert_eq!(line.place(&unit(1, 5000, true)), Some(Duration::ZERO));
        assert_eq!(line.place(&unit(1, 5033, false)), Some(Duration::from_millis(33)));
        assert_eq!(line.frame_interval(), Duration::from_millis(33));
        // The camera reconnects: its clock starts again; the timeline goes on.
        assert_eq!(line.place(&unit(2, 100, false)), None);
        assert_eq!(line.place(&unit(2, 120, true)), Some(Duration::from_millis(66)));
        assert_eq!(line.place(&unit(2, 153, false)), Some(Duration::from_millis(99)));
    }

    #[test]
    fn the_gop_kept_for_new_subscribers_is_bounded() {
        let tap = StreamTap::new();
        tap.begin_stream();
        tap.set_video(params(1280));
        tap.publish(frame(true, 1000));
        for _ in 0..(GOP_MAX_BYTES / 100_000 + 1) {
            tap.publish(frame(false, 100_000));
        }
        assert!(tap.subscribe().backlog.is_empty(), "an oversized GOP is dropped");
        tap.publish(frame(true, 1000));
        assert_eq!(tap.subscribe().backlog.len(), 1);
    }
}
