//! Decoded frames from a tap: a [`FrameSampler`] turns a camera's encoded stream into a few
//! small RGB pictures a second, each with the wall-clock time it was taken, for analysis that
//! needs pixels (face recognition).
//!
//! Pipeline, one per stream generation:
//!
//! `appsrc (the tap's units) → decodebin → videorate (at most SamplerConfig::fps, frames are only
//! dropped) → videoconvert (RGB) → videoscale (at most SamplerConfig::max_width) → appsink`
//!
//! - The sampler reads its own [`Subscription`](crate::tap::Subscription) of the tap, so it
//!   starts from the tap's current group of pictures and never slows the recorder: a sampler
//!   that falls behind skips to the next key frame. The decoder decodes every frame of the
//!   stream (inter frames need their references) but only `fps` frames a second are converted
//!   and scaled. Sample the camera's sub stream when it has one: decoding a main stream costs
//!   several times more.
//! - Frames are packed RGB8, at most [`SamplerConfig::max_width`] wide (never scaled up), even
//!   width and height, aspect ratio kept.
//! - Each frame carries the wall-clock time it was taken ([`RgbFrame::at`]): the [`Clock`]'s
//!   time when the first key frame of the generation entered the tap, plus the stream's own
//!   time stamps from there.
//! - Frames go to a channel of capacity 1 with `try_send`: a consumer slower than `fps` loses
//!   frames (it always gets a recent one) and never holds up the stream.
//! - A restart of the stream or a change of its parameters (a new tap generation) rebuilds the
//!   pipeline; a decoder error is logged and decoding starts again at the next key frame (after
//!   repeated errors, with a back-off of up to 30 s). The sampler never panics and ends when
//!   the tap is gone, the receiver is dropped, or [`FrameSampler::stop`] is called.
//!
//! ```no_run
//! # async fn demo(recorder: &pv_media::record::Recorder) -> pv_media::Result<()> {
//! use std::sync::Arc;
//! use pv_core::SystemClock;
//! use pv_media::frames::{FrameSampler, SamplerConfig};
//!
//! let config = SamplerConfig { fps: 2, max_width: 640 };
//! let (sampler, mut frames) =
//!     FrameSampler::start(&recorder.tap(), config, Arc::new(SystemClock::new()))?;
//! while let Some(frame) = frames.recv().await {
//!     // frame.data: frame.width * frame.height * 3 bytes of RGB.
//!     println!("{}x{} at {}", frame.width, frame.height, frame.at);
//! #   break;
//! }
//! sampler.stop().await;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use pv_core::Clock;
use tokio::sync::{mpsc, watch};

use crate::tap::gst::{buffer_of, video_caps};
use crate::tap::{AccessUnit, StreamTap, Subscription, Track, VideoParams};
use crate::{Error, Result};

/// The highest frame rate a sampler takes.
pub const MAX_FPS: u32 = 15;
/// Encoded bytes the decoder may have waiting before the sampler skips to the next key frame.
const MAX_QUEUE_BYTES: u64 = 16 << 20;
/// How often the worker looks at the pipeline's bus when no unit arrives.
const TICK: Duration = Duration::from_millis(100);
/// The longest wait before decoding is tried again after repeated decoder errors.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a [`FrameSampler`] samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplerConfig {
    /// Frames per second, 1..=15 (default 2). A stream slower than this gives all its frames.
    pub fps: u32,
    /// Wider frames are scaled down to this width, aspect ratio kept (default 640; 16..=7680).
    pub max_width: u32,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig { fps: 2, max_width: 640 }
    }
}

impl SamplerConfig {
    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_FPS).contains(&self.fps) {
            return Err(Error::InvalidRecorderConfig(format!(
                "frames sampled per second must be 1 to {MAX_FPS}"
            )));
        }
        if !(16..=7680).contains(&self.max_width) {
            return Err(Error::InvalidRecorderConfig(
                "the width of sampled frames must be 16 to 7680 pixels".into(),
            ));
        }
        Ok(())
    }

    /// The size frames of a `width`×`height` stream come out at: at most
    /// [`max_width`](SamplerConfig::max_width) wide, never scaled up, even width and height,
    /// aspect ratio kept.
    pub fn output_size(&self, width: u32, height: u32) -> (u32, u32) {
        let (width, height) = (width.max(2), height.max(2));
        if width <= self.max_width {
            return (width & !1, height & !1);
        }
        let w = self.max_width & !1;
        let h = (u64::from(height) * u64::from(w) + u64::from(width) / 2) / u64::from(width);
        (w, (h as u32).max(2) & !1)
    }
}

/// One decoded frame.
#[derive(Clone)]
pub struct RgbFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Packed RGB8, row by row: `width * height * 3` bytes.
    pub data: Bytes,
    /// The wall-clock time the frame was taken.
    pub at: DateTime<Utc>,
}

impl fmt::Debug for RgbFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RgbFrame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bytes", &self.data.len())
            .field("at", &self.at)
            .finish()
    }
}

/// A running sampler of one tap (see the module documentation). Dropping it stops it without
/// waiting.
#[derive(Debug)]
pub struct FrameSampler {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl FrameSampler {
    /// Start decoding `tap`'s video on a new thread: frames at about `config.fps` to the
    /// returned channel (capacity 1; a slow consumer loses frames, never blocks the tap).
    /// A tap that is not live yet is sampled once it is.
    pub fn start(
        tap: &StreamTap,
        config: SamplerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<(FrameSampler, mpsc::Receiver<RgbFrame>)> {
        config.validate()?;
        crate::init()?;
        for factory in ["appsrc", "decodebin", "videorate", "videoconvert", "videoscale", "appsink"]
        {
            if gst::ElementFactory::find(factory).is_none() {
                return Err(Error::Gstreamer(format!("element {factory} is not installed")));
            }
        }
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_time().build().map_err(|e| {
                Error::Process { program: "frame sampler", reason: format!("runtime: {e}") }
            })?;
        let (frames_tx, frames) = mpsc::channel(1);
        let (stop, stop_rx) = watch::channel(false);
        let worker = Worker {
            sub: tap.subscribe(),
            config,
            clock,
            frames: frames_tx,
            stop: stop_rx,
            delivered: Arc::new(AtomicU64::new(0)),
            failures: 0,
            retry_at: None,
        };
        let thread = std::thread::Builder::new()
            .name("frame-sampler".into())
            .spawn(move || runtime.block_on(worker.run()))
            .map_err(|e| Error::Process {
                program: "frame sampler",
                reason: format!("cannot start thread: {e}"),
            })?;
        Ok((FrameSampler { stop, thread: Some(thread) }, frames))
    }

    /// Stop decoding and wait for the thread; the frame channel then closes.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// [`FrameSampler::stop`] for synchronous callers.
    pub fn stop_blocking(mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FrameSampler {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The sampler thread: reads the subscription, runs one [`Session`] per generation.
struct Worker {
    sub: Subscription,
    config: SamplerConfig,
    clock: Arc<dyn Clock>,
    frames: mpsc::Sender<RgbFrame>,
    stop: watch::Receiver<bool>,
    /// Frames sent so far (by the appsink callbacks).
    delivered: Arc<AtomicU64>,
    /// Decoder errors in a row without a frame in between.
    failures: u32,
    /// No new pipeline before this (back-off after repeated errors).
    retry_at: Option<Instant>,
}

impl Worker {
    async fn run(mut self) {
        let mut session: Option<Session> = None;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *self.stop.borrow() || self.frames.is_closed() {
                break;
            }
            tokio::select! {
                biased;
                changed = self.stop.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    continue;
                }
                unit = self.sub.recv() => match unit {
                    Some(unit) => self.handle(&mut session, unit),
                    None => break,
                },
                _ = tick.tick() => {}
            }
            if let Some(reason) = session.as_ref().and_then(Session::bus_error) {
                session = None;
                self.failed(&reason);
                self.sub.resync();
            }
        }
        drop(session);
        tracing::debug!("frame sampler stopped");
    }

    fn handle(&mut self, session: &mut Option<Session>, unit: AccessUnit) {
        if unit.track() != Track::Video {
            return;
        }
        if session.as_ref().is_some_and(|s| s.generation != unit.generation()) {
            tracing::debug!(generation = unit.generation(), "frame sampler: new stream generation");
            *session = None;
        }
        if session.is_none() {
            if !unit.is_key_frame() || self.retry_at.is_some_and(|t| Instant::now() < t) {
                return;
            }
            let info = self.sub.info();
            let Some(params) = info.video.clone().filter(|_| info.generation == unit.generation())
            else {
                return;
            };
            match Session::start(&params, &unit, self) {
                Ok(s) => *session = Some(s),
                Err(reason) => {
                    self.failed(&reason);
                    return;
                }
            }
        }
        if let Some(s) = session.as_mut() {
            s.push(&unit);
        }
    }

    /// A pipeline failed: log it, and wait for the next key frame (with a back-off after
    /// repeated failures).
    fn failed(&mut self, reason: &str) {
        if self.delivered.swap(0, Ordering::Relaxed) > 0 {
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        let delay = if self.failures <= 1 {
            Duration::ZERO
        } else {
            (Duration::from_secs(1) * 2u32.saturating_pow(self.failures - 2)).min(MAX_BACKOFF)
        };
        self.retry_at = Some(Instant::now() + delay);
        if self.failures == 1 {
            tracing::warn!(
                reason,
                "frame sampler: decoding failed; retrying at the next key frame"
            );
        } else {
            tracing::debug!(
                reason,
                failures = self.failures,
                delay_ms = delay.as_millis() as u64,
                "frame sampler: decoding failed again"
            );
        }
    }
}

/// One generation's pipeline.
struct Session {
    generation: u64,
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    /// The tap time stamp that becomes 0 in the pipeline.
    base: Duration,
    /// Skipping to the next key frame (the decoder fell behind).
    dropping: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn make(factory: &str) -> std::result::Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("GStreamer element {factory} is not installed"))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What the appsink callback needs to turn samples into frames.
struct Output {
    frames: mpsc::Sender<RgbFrame>,
    delivered: Arc<AtomicU64>,
    clock: Arc<dyn Clock>,
    /// Wall-clock time of pipeline time `anchor_ns`.
    anchor: DateTime<Utc>,
    anchor_ns: u64,
    /// The shortest distance between two frames sent (a guard behind `videorate`).
    min_interval_ns: u64,
    last_ns: Mutex<Option<u64>>,
}

impl Output {
    fn sample(&self, sample: &gst::Sample) -> std::result::Result<(), String> {
        let buffer = sample.buffer_owned().ok_or("sample without buffer")?;
        let pts = buffer.pts().map(gst::ClockTime::nseconds);
        if let Some(pts) = pts {
            let mut last = self.last_ns.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|l| pts < l.saturating_add(self.min_interval_ns)) {
                return Ok(());
            }
            *last = Some(pts);
        }
        let st = sample.caps().and_then(|c| c.structure(0)).ok_or("sample without caps")?;
        let dim = |name: &str| st.get::<i32>(name).ok().and_then(|v| u32::try_from(v).ok());
        let (Some(width), Some(height)) = (dim("width"), dim("height")) else {
            return Err("sample without size".into());
        };
        let row = width as usize * 3;
        let rows = height as usize;
        let size = buffer.size();
        // RGB rows are padded to 4 bytes unless the buffer's size says otherwise.
        let stride = match size.checked_div(rows) {
            Some(s) if s >= row && size.is_multiple_of(rows) => s,
            _ => row.next_multiple_of(4),
        };
        if size < stride * rows.saturating_sub(1) + row || rows == 0 {
            return Err(format!("{width}x{height} frame in {size} bytes"));
        }
        let data = if stride == row && size == row * rows {
            let map = buffer.into_mapped_buffer_readable().map_err(|_| "unreadable buffer")?;
            Bytes::from_owner(map)
        } else {
            let map = buffer.map_readable().map_err(|_| "unreadable buffer")?;
            let mut packed = Vec::with_capacity(row * rows);
            for y in 0..rows {
                packed.extend_from_slice(&map[y * stride..y * stride + row]);
            }
            Bytes::from(packed)
        };
        let at = match pts {
            Some(pts) => {
                self.anchor + chrono::Duration::nanoseconds(pts as i64 - self.anchor_ns as i64)
            }
            None => self.clock.now(),
        };
        if self.frames.try_send(RgbFrame { width, height, data, at }).is_ok() {
            self.delivered.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl Session {
    /// Build and start the pipeline for `params`, starting at the key frame `key`.
    fn start(
        params: &VideoParams,
        key: &AccessUnit,
        w: &Worker,
    ) -> std::result::Result<Session, String> {
        let base = key.dts_or_pts().unwrap_or_default();
        let key_pts = key.pts().unwrap_or(base).saturating_sub(base);
        // The key frame entered the tap `received_at.elapsed()` ago.
        let age = chrono::Duration::from_std(key.received_at().elapsed()).unwrap_or_default();
        let output = Output {
            frames: w.frames.clone(),
            delivered: w.delivered.clone(),
            clock: w.clock.clone(),
            anchor: w.clock.now() - age,
            anchor_ns: nanos(key_pts),
            min_interval_ns: 1_000_000_000 / u64::from(w.config.fps) * 9 / 10,
            last_ns: Mutex::new(None),
        };
        let (width, height) = w.config.output_size(params.width, params.height);

        let pipeline = gst::Pipeline::with_name("frame-sampler");
        let src = gst_app::AppSrc::builder()
            .caps(&video_caps(params))
            .format(gst::Format::Time)
            .is_live(true)
            .stream_type(gst_app::AppStreamType::Stream)
            .block(false)
            .max_bytes(MAX_QUEUE_BYTES * 2)
            .build();
        let decode = make("decodebin")?;
        let rate = make("videorate")?;
        rate.set_property("drop-only", true);
        rate.set_property("max-rate", i32::try_from(w.config.fps).unwrap_or(2));
        let convert = make("videoconvert")?;
        let scale = make("videoscale")?;
        let filter = make("capsfilter")?;
        let caps = gst::Caps::builder("video/x-raw")
            .field("format", "RGB")
            .field("width", i32::try_from(width).unwrap_or(640))
            .field("height", i32::try_from(height).unwrap_or(360))
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build();
        filter.set_property("caps", &caps);
        let sink = gst_app::AppSink::builder().sync(false).max_buffers(1).drop(true).build();
        pipeline
            .add_many([
                src.upcast_ref(),
                &decode,
                &rate,
                &convert,
                &scale,
                &filter,
                sink.upcast_ref(),
            ])
            .map_err(|e| e.to_string())?;
        src.link(&decode).map_err(|e| e.to_string())?;
        gst::Element::link_many([&rate, &convert, &scale, &filter, sink.upcast_ref()])
            .map_err(|e| e.to_string())?;
        // One decoder thread: a few frames a second gain nothing from frame threading.
        decode.connect("element-added", false, |args| {
            if let Some(e) = args.get(1).and_then(|v| v.get::<gst::Element>().ok())
                && e.find_property("max-threads")
                    .is_some_and(|p| p.value_type() == i32::static_type())
            {
                e.set_property("max-threads", 1i32);
            }
            None
        });
        let rate_sink = rate.static_pad("sink").ok_or("videorate has no sink pad")?;
        decode.connect_pad_added(move |_, pad| {
            let raw = pad
                .current_caps()
                .or_else(|| Some(pad.query_caps(None)))
                .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/x-raw")))
                .unwrap_or(false);
            if raw && !rate_sink.is_linked() {
                let _ = pad.link(&rate_sink);
            }
        });
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Err(err) = output.sample(&sample) {
                        tracing::debug!(error = err, "frame sampler: frame dropped");
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let session =
            Session { generation: key.generation(), pipeline, src, base, dropping: false };
        if let Err(err) = session.pipeline.set_state(gst::State::Playing) {
            return Err(session.bus_error().unwrap_or_else(|| err.to_string()));
        }
        tracing::debug!(
            codec = %params.codec,
            from = format!("{}x{}", params.width, params.height),
            to = format!("{width}x{height}"),
            fps = w.config.fps,
            "frame sampler decoding"
        );
        Ok(session)
    }

    /// Feed one video unit (time stamps moved so the session's first key frame is at 0).
    fn push(&mut self, unit: &AccessUnit) {
        if self.dropping {
            if !unit.is_key_frame() {
                return;
            }
            self.dropping = false;
        }
        if self.src.current_level_bytes() > MAX_QUEUE_BYTES {
            tracing::debug!(
                "frame sampler: the decoder is slower than the camera; skipping to the next key frame"
            );
            self.dropping = true;
            return;
        }
        let Some(t) = unit.dts_or_pts() else { return };
        if t < self.base {
            return;
        }
        let retime = |t: Option<Duration>| {
            t.map(|t| gst::ClockTime::from_nseconds(nanos(t.saturating_sub(self.base))))
        };
        let mut buffer = buffer_of(unit);
        {
            let b = buffer.make_mut();
            b.set_pts(retime(unit.pts()));
            b.set_dts(retime(unit.dts()));
        }
        let _ = self.src.push_buffer(buffer);
    }

    /// The first error on the bus (or the end of the stream), if any.
    fn bus_error(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        while let Some(msg) = bus.pop() {
            match msg.view() {
                gst::MessageView::Error(e) => {
                    let source = e.src().map(|s| s.name().to_string()).unwrap_or_default();
                    tracing::debug!(debug = ?e.debug(), "frame sampler pipeline error");
                    return Some(format!("{source}: {}", e.error()));
                }
                gst::MessageView::Eos(_) => return Some("the decoder ended the stream".into()),
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn frames_are_scaled_down_to_even_sizes_keeping_the_aspect_ratio() {
        let c = SamplerConfig::default();
        assert_eq!(c.output_size(1920, 1080), (640, 360));
        assert_eq!(c.output_size(640, 480), (640, 480));
        assert_eq!(c.output_size(320, 240), (320, 240), "never scaled up");
        assert_eq!(c.output_size(641, 361), (640, 360));
        let c = SamplerConfig { fps: 2, max_width: 321 };
        assert_eq!(c.output_size(1280, 720), (320, 180));
        assert_eq!(c.output_size(2560, 1920), (320, 240));
    }

    #[test]
    fn settings_are_checked() {
        assert!(SamplerConfig::default().validate().is_ok());
        for bad in [
            SamplerConfig { fps: 0, max_width: 640 },
            SamplerConfig { fps: 16, max_width: 640 },
            SamplerConfig { fps: 2, max_width: 8 },
        ] {
            let err = bad.validate().unwrap_err();
            assert_eq!(err.kind(), pv_core::ErrorKind::InvalidInput, "{bad:?}: {err}");
        }
    }
}
