//! The motion-mode backend: one attempt is an ingest pipeline `rtspsrc → depay → parse →
//! appsink` (the main stream, never decoded) feeding an in-memory ring of whole groups of
//! pictures, a [`MotionWatcher`] on the motion stream, and one writer pipeline per recording,
//! `appsrc → splitmuxsink(mp4mux, fragmented)`.
//!
//! The ring keeps at least [`RecorderConfig::pre_roll`] plus the watcher's detection delay,
//! cut at key frames (bounded to [`RING_MAX_BYTES`]). When motion starts at `t`, a writer is
//! fed from the last key frame at or before `t − pre_roll` (time stamps re-based to zero),
//! then the live access units, until the first unit at or after `last motion + post_roll`;
//! motion within that time extends the same recording. Long recordings are cut into segments
//! of [`RecorderConfig::segment_duration`] by splitmuxsink, as in continuous mode, and every
//! closed file goes through [`Session::finish_file`] (complete, fsynced with its directory,
//! then [`RecorderEvent::SegmentFinished`](super::RecorderEvent::SegmentFinished)). A
//! recording that starts right after another starts no earlier than the key frame at or
//! before where the last one ended: at most one group of pictures is written twice, nothing
//! is lost.
//!
//! Frames are placed on the wall clock like the watcher's: the [`Clock`](pv_core::Clock)'s time at the first
//! access unit of the attempt plus the stream's time stamps, so motion times and recording
//! times agree to within the two connections' latency difference.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use pv_core::ids::CameraId;

use super::gst::SEGMENT_TOLERANCE;
use super::{AttemptEnd, Backend, EndReason, RecorderConfig, Session};
use crate::layout::segment_file_name;
use crate::tap::Track;
use crate::watch::{
    Liveness, MotionWatcher, Signal, Sink, WallMap, WatcherConfig, make, rtsp_source,
};
use crate::{Error, RecordingMode, Result};

/// How long the loop waits for input before checking stop, watchdogs and writers.
const POLL: Duration = Duration::from_millis(100);
/// How long a writer may take to finalise its last segment.
const FINISH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closed fragment may take to become a complete file on disk.
const COMPLETE_TIMEOUT: Duration = Duration::from_secs(3);
/// Kept in the ring beyond the pre-roll, for the watcher's detection delay and the two
/// connections' latency difference.
pub(crate) const RING_MARGIN: Duration = Duration::from_secs(2);
/// The most the ring holds, whatever the pre-roll (a camera with very long groups of pictures
/// at a high bit rate gets less pre-roll instead of unbounded memory).
pub(crate) const RING_MAX_BYTES: usize = 64 << 20;
/// Longest pre-roll accepted.
const MAX_PRE_ROLL: Duration = Duration::from_secs(60);
/// Longest post-roll accepted.
const MAX_POST_ROLL: Duration = Duration::from_secs(600);

/// The mode-specific checks of [`RecorderConfig::validate`].
pub(super) fn validate(c: &RecorderConfig) -> Result<()> {
    let invalid = |msg: &str| Err(Error::InvalidRecorderConfig(msg.to_owned()));
    match c.mode {
        RecordingMode::Continuous => Ok(()),
        RecordingMode::Off => invalid("mode off records nothing: start no recorder"),
        RecordingMode::Motion => {
            if c.backend == Backend::Ffmpeg {
                return invalid("motion mode needs the built-in or the GStreamer backend");
            }
            if c.pre_roll > MAX_PRE_ROLL {
                return invalid("pre_roll must be <= 60 s");
            }
            if c.post_roll > MAX_POST_ROLL {
                return invalid("post_roll must be <= 600 s");
            }
            WatcherConfig::for_recorder(c).validate()
        }
    }
}

/// One group of pictures: a key frame and what depends on it, each with its wall-clock time.
#[derive(Debug)]
struct Gop<T> {
    start: DateTime<Utc>,
    frames: Vec<(DateTime<Utc>, T)>,
    bytes: usize,
}

/// Whole groups of pictures covering at least `keep` before the newest frame.
#[derive(Debug)]
pub(crate) struct Ring<T> {
    gops: VecDeque<Gop<T>>,
    keep: chrono::Duration,
    max_bytes: usize,
    bytes: usize,
}

impl<T> Ring<T> {
    pub(crate) fn new(keep: Duration, max_bytes: usize) -> Self {
        Self {
            gops: VecDeque::new(),
            keep: chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX),
            max_bytes,
            bytes: 0,
        }
    }

    /// Add a frame; frames before the first key frame are dropped (nothing can start there).
    pub(crate) fn push(&mut self, wall: DateTime<Utc>, key: bool, bytes: usize, item: T) {
        if key {
            self.gops.push_back(Gop { start: wall, frames: Vec::new(), bytes: 0 });
        }
        let Some(gop) = self.gops.back_mut() else { return };
        gop.frames.push((wall, item));
        gop.bytes += bytes;
        self.bytes += bytes;
        // Drop the oldest group while the next one still starts early enough.
        while self.gops.len() >= 2
            && (self.gops[1].start <= wall - self.keep || self.bytes > self.max_bytes)
        {
            if let Some(old) = self.gops.pop_front() {
                self.bytes -= old.bytes;
            }
        }
    }

    /// The group to start a recording at for `target`: the last one starting at or before
    /// it, else the oldest.
    pub(crate) fn start_for(&self, target: DateTime<Utc>) -> Option<usize> {
        self.gops.iter().rposition(|g| g.start <= target).or((!self.gops.is_empty()).then_some(0))
    }

    /// Every frame from group `gop` on.
    pub(crate) fn frames_from(&self, gop: usize) -> impl Iterator<Item = &(DateTime<Utc>, T)> {
        self.gops.iter().skip(gop).flat_map(|g| g.frames.iter())
    }

    /// Wall-clock time of the oldest frame held.
    pub(crate) fn oldest(&self) -> Option<DateTime<Utc>> {
        self.gops.front().map(|g| g.start)
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

/// An access unit of the main stream.
struct Unit {
    buffer: gst::Buffer,
    caps: gst::Caps,
}

/// What the loop receives from the streaming threads.
enum Input {
    /// An access unit, with the wall-clock time and the sink's running time when it arrived.
    Frame(gst::Sample, DateTime<Utc>, Option<u64>),
    Motion(Signal),
}

/// Run one motion-mode attempt until the camera is lost or the recorder is stopped.
pub(super) fn run(s: &mut Session) -> AttemptEnd {
    let (tx, rx) = mpsc::channel::<Input>();
    let liveness = Arc::new(Liveness::new());
    let problem = Arc::new(Mutex::new(None::<String>));
    let (pipeline, _sink) = match build(s, &liveness, &problem, tx.clone()) {
        Ok(p) => p,
        Err(reason) => return AttemptEnd::Unusable { reason },
    };
    let camera = s.config.camera;
    let events = s.events.clone();
    let sink: Sink = Arc::new(move |signal: Signal| {
        let _ = tx.send(Input::Motion(signal));
        if let Some(event) = signal.event(camera)
            && events.send(event).is_err()
        {
            tracing::debug!(camera = %camera, "recorder event receiver is gone");
        }
    });
    let watcher = match MotionWatcher::start_with(
        WatcherConfig::for_recorder(&s.config),
        s.clock.clone(),
        sink,
    ) {
        Ok(w) => w,
        Err(err) => return AttemptEnd::Unusable { reason: err.to_string() },
    };
    s.tap.begin_stream();
    let mut m = Motion::new(&s.config);
    let end = drive(s, &mut m, &liveness, &pipeline, &rx);
    watcher.stop_blocking();
    let _ = pipeline.set_state(gst::State::Null);
    s.tap.end_stream();
    // What arrived before the end is still written.
    let (reason, why) = match &end {
        Ending::Stopped => (EndReason::Shutdown, None),
        Ending::Lost { reason, why } => (*reason, Some(why.clone())),
    };
    for input in rx.try_iter() {
        if let Input::Frame(sample, now, now_rt) = input {
            m.frame(s, &sample, now, now_rt);
        }
    }
    m.close(reason);
    m.finish_writers(s);
    if let Some(last) = m.last_wall {
        s.last_end = Some(s.last_end.map_or(last, |e| e.max(last)));
    }
    match why {
        None => AttemptEnd::Stopped,
        Some(why) => {
            let problem = problem.lock().unwrap_or_else(|p| p.into_inner()).clone();
            AttemptEnd::Lost {
                reason: problem.unwrap_or(why),
                streamed: m.wall.is_anchored(),
                fallback: false,
            }
        }
    }
}

/// How the loop ended.
enum Ending {
    Stopped,
    Lost { reason: EndReason, why: String },
}

fn drive(
    s: &mut Session,
    m: &mut Motion,
    liveness: &Liveness,
    pipeline: &gst::Pipeline,
    rx: &mpsc::Receiver<Input>,
) -> Ending {
    let camera = s.config.camera;
    let Some(bus) = pipeline.bus() else {
        return Ending::Lost { reason: EndReason::Error, why: "pipeline has no bus".into() };
    };
    if let Err(err) = pipeline.set_state(gst::State::Playing) {
        return Ending::Lost { reason: EndReason::Error, why: err.to_string() };
    }
    loop {
        if s.stop.is_set() {
            return Ending::Stopped;
        }
        if let Some(why) = liveness.verdict(s.config.start_timeout, s.config.stall_timeout) {
            tracing::warn!(camera = %camera, why, "camera lost");
            return Ending::Lost { reason: EndReason::Error, why };
        }
        while let Some(msg) = bus.pop() {
            match msg.view() {
                gst::MessageView::Eos(_) => {
                    return Ending::Lost {
                        reason: EndReason::Eos,
                        why: "the camera ended the stream".into(),
                    };
                }
                gst::MessageView::Error(err) => {
                    let source = err.src().map(|s| s.name().to_string()).unwrap_or_default();
                    tracing::debug!(camera = %camera, source, error = %err.error(), "pipeline error");
                    let target = super::reason::CameraTarget::of(&s.config);
                    let why = super::reason::explain_gst(
                        &target,
                        err,
                        liveness.answered.load(std::sync::atomic::Ordering::SeqCst),
                    );
                    tracing::warn!(camera = %camera, why, "camera lost");
                    return Ending::Lost { reason: EndReason::Error, why };
                }
                _ => {}
            }
        }
        match rx.recv_timeout(POLL) {
            Ok(input) => {
                m.input(s, input);
                for input in rx.try_iter().take(1000) {
                    m.input(s, input);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Ending::Lost { reason: EndReason::Error, why: "stream ended".into() };
            }
        }
        m.poll_writers(s);
    }
}

fn build(
    s: &Session,
    liveness: &Arc<Liveness>,
    problem: &Arc<Mutex<Option<String>>>,
    tx: mpsc::Sender<Input>,
) -> std::result::Result<(gst::Pipeline, gst_app::AppSink), String> {
    let c = &s.config;
    let pipeline = gst::Pipeline::with_name(&format!("record-motion-{}", c.camera));
    let src = rtsp_source(
        &c.url,
        c.username.as_deref(),
        c.password.as_deref(),
        c.transport,
        c.stall_timeout,
        liveness,
    )?;
    for factory in ["splitmuxsink", "mp4mux", "appsrc"] {
        make(factory)?;
    }
    let sink = gst_app::AppSink::builder().sync(false).build();
    let live = liveness.clone();
    let clock = s.clock.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                live.touch();
                let now_rt = sink.current_running_time().map(gst::ClockTime::nseconds);
                tx.send(Input::Frame(sample, clock.now(), now_rt))
                    .map(|()| gst::FlowSuccess::Ok)
                    .map_err(|_| gst::FlowError::Flushing)
            })
            .build(),
    );
    pipeline.add_many([&src, sink.upcast_ref()]).map_err(|e| e.to_string())?;
    let appsink = sink.clone();
    let problem = problem.clone();
    src.connect_pad_added(move |src, pad| {
        let Some(bin) = src.parent().and_downcast::<gst::Bin>() else { return };
        let Some(caps) = pad.current_caps() else { return };
        if let Err(p) = link_video(&bin, pad, &caps, &appsink) {
            tracing::warn!(problem = p, "stream cannot be recorded in motion mode");
            problem.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(p);
        }
    });
    Ok((pipeline, sink))
}

/// Link an RTP video pad through its depayloader and parser to the appsink.
fn link_video(
    bin: &gst::Bin,
    pad: &gst::Pad,
    caps: &gst::CapsRef,
    sink: &gst_app::AppSink,
) -> std::result::Result<(), String> {
    let encoding = caps
        .structure(0)
        .and_then(|st| st.get::<&str>("encoding-name").ok())
        .unwrap_or_default()
        .to_ascii_uppercase();
    let (depay, parse, out) = match encoding.as_str() {
        "H264" => ("rtph264depay", "h264parse", "video/x-h264,stream-format=avc,alignment=au"),
        "H265" => ("rtph265depay", "h265parse", "video/x-h265,stream-format=hvc1,alignment=au"),
        other => return Err(format!("video codec {other} is not supported (H.264, H.265)")),
    };
    let depay = make(depay)?;
    let parse = make(parse)?;
    let filter = make("capsfilter")?;
    let out: gst::Caps = out.parse().map_err(|_| format!("bad caps {out}"))?;
    filter.set_property("caps", &out);
    bin.add_many([&depay, &parse, &filter]).map_err(|e| e.to_string())?;
    gst::Element::link_many([&depay, &parse, &filter, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    for e in [&depay, &parse, &filter] {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    let depay_sink = depay.static_pad("sink").ok_or("depayloader has no sink pad")?;
    pad.link(&depay_sink).map_err(|e| format!("cannot link the depayloader: {e:?}"))?;
    Ok(())
}

/// One attempt's recording state, driven by the loop on the recorder thread.
struct Motion {
    pre_roll: chrono::Duration,
    post_roll: chrono::Duration,
    ring: Ring<Unit>,
    /// Maps running time to wall-clock time.
    wall: WallMap,
    /// The stream's segment (stream time to running time).
    segment: Option<gst::Segment>,
    caps: Option<gst::Caps>,
    /// The recording being written.
    active: Option<Writer>,
    /// Recordings whose last segment is being finalised.
    closing: Vec<Writer>,
    /// The active recording ends at the first unit at or after this time.
    close_at: Option<DateTime<Utc>>,
    /// A recording is wanted from this time but no key frame has arrived yet.
    pending: Option<DateTime<Utc>>,
    /// End of the last recording written (the next starts no earlier than its key frame).
    written_until: Option<DateTime<Utc>>,
    /// Wall-clock time of the newest unit.
    last_wall: Option<DateTime<Utc>>,
    writers: u32,
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Motion {
    fn new(c: &RecorderConfig) -> Self {
        let detection = Duration::from_secs(1) * c.motion.start_frames / c.motion.fps.max(1);
        Self {
            pre_roll: chrono_duration(c.pre_roll),
            post_roll: chrono_duration(c.post_roll),
            ring: Ring::new(c.pre_roll + detection + RING_MARGIN, RING_MAX_BYTES),
            wall: WallMap::default(),
            segment: None,
            caps: None,
            active: None,
            closing: Vec::new(),
            close_at: None,
            pending: None,
            written_until: None,
            last_wall: None,
            writers: 0,
        }
    }

    fn input(&mut self, s: &mut Session, input: Input) {
        match input {
            Input::Frame(sample, now, now_rt) => self.frame(s, &sample, now, now_rt),
            Input::Motion(signal) => self.signal(s, signal),
        }
    }

    /// The wall-clock time of stream time `ts`.
    fn wall(&self, ts: gst::ClockTime) -> Option<DateTime<Utc>> {
        self.wall.wall(WallMap::running_time(self.segment.as_ref(), ts))
    }

    fn frame(
        &mut self,
        s: &mut Session,
        sample: &gst::Sample,
        now: DateTime<Utc>,
        now_rt: Option<u64>,
    ) {
        let (Some(buffer), Some(caps)) = (sample.buffer_owned(), sample.caps_owned()) else {
            return;
        };
        let Some(ts) = buffer.pts().or(buffer.dts()) else { return };
        if self.segment.as_ref() != sample.segment() {
            self.segment = sample.segment().cloned();
        }
        if !self.wall.is_anchored() {
            self.wall.anchor(WallMap::running_time(self.segment.as_ref(), ts), now, now_rt);
            s.streaming(Backend::Gstreamer);
        }
        let Some(wall) = self.wall(ts) else { return };
        if self.caps.as_ref() != Some(&caps) {
            s.tap.set_gst_caps(Track::Video, &caps);
            self.caps = Some(caps.clone());
        }
        s.tap.publish_gst(Track::Video, buffer.clone());
        self.last_wall = Some(wall);
        let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let size = buffer.size();
        self.ring.push(wall, key, size, Unit { buffer: buffer.clone(), caps });
        if let Some(w) = &mut self.active {
            if self.close_at.is_some_and(|at| wall >= at) {
                self.close(EndReason::MotionEnd);
            } else {
                w.push(&buffer, wall);
            }
        } else if let Some(target) = self.pending
            && key
        {
            self.open(s, target);
        }
    }

    fn signal(&mut self, s: &mut Session, signal: Signal) {
        match signal {
            Signal::Started { at, last, .. } => self.motion(s, at, last),
            Signal::Moving { at } => self.motion(s, at, at),
            Signal::Ended { ended_at, .. } => {
                if self.active.is_some() {
                    self.extend(ended_at);
                }
            }
        }
    }

    /// Motion from `first` to `last`: record from `first − pre_roll` to `last + post_roll`.
    fn motion(&mut self, s: &mut Session, first: DateTime<Utc>, last: DateTime<Utc>) {
        if self.active.is_none() {
            self.close_at = None;
            self.open(s, first - self.pre_roll);
        }
        self.extend(last);
    }

    fn extend(&mut self, last: DateTime<Utc>) {
        let until = last + self.post_roll;
        self.close_at = Some(self.close_at.map_or(until, |c| c.max(until)));
    }

    /// Start a recording at the key frame at or before `target` (never before the end of the
    /// last recording's key frame), feeding it the ring.
    fn open(&mut self, s: &mut Session, target: DateTime<Utc>) {
        let target = self.written_until.map_or(target, |w| w.max(target));
        let Some(start) = self.ring.start_for(target) else {
            self.pending = Some(target);
            return;
        };
        self.pending = None;
        let Some((first_wall, first)) = self.ring.frames_from(start).next() else { return };
        let Some(base) = first.buffer.dts().or(first.buffer.pts()) else { return };
        let base_wall = self.wall(base).unwrap_or(*first_wall);
        let base = base.nseconds();
        self.writers += 1;
        let mut writer = match Writer::start(s, &first.caps, base, base_wall, self.writers) {
            Ok(w) => w,
            Err(err) => {
                tracing::error!(camera = %s.config.camera, error = err, "cannot start a motion recording");
                return;
            }
        };
        tracing::info!(
            camera = %s.config.camera,
            from = %first_wall,
            target = %target,
            buffered_ms = self.ring.oldest().map_or(0, |o| (target - o).num_milliseconds()),
            ring_bytes = self.ring.bytes(),
            "motion recording started"
        );
        for (wall, unit) in self.ring.frames_from(start) {
            writer.push(&unit.buffer, *wall);
        }
        self.active = Some(writer);
    }

    /// End the active recording (its last segment gets `reason`).
    fn close(&mut self, reason: EndReason) {
        self.close_at = None;
        self.pending = None;
        if let Some(mut w) = self.active.take() {
            w.finish(reason);
            self.written_until = w.end_wall.or(self.written_until);
            self.closing.push(w);
        }
    }

    fn poll_writers(&mut self, s: &mut Session) {
        if let Some(w) = &mut self.active
            && w.poll(s)
        {
            // The writer failed on its own: start over at the next motion.
            if let Some(w) = self.active.take() {
                self.written_until = w.end_wall.or(self.written_until);
                w.teardown(s);
            }
            self.close_at = None;
        }
        let mut i = 0;
        while i < self.closing.len() {
            if self.closing[i].poll(s) {
                self.closing.remove(i).teardown(s);
            } else {
                i += 1;
            }
        }
    }

    /// Wait for every closing writer (bounded by each one's deadline).
    fn finish_writers(&mut self, s: &mut Session) {
        while !self.closing.is_empty() {
            self.poll_writers(s);
            if !self.closing.is_empty() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// One recording: `appsrc → splitmuxsink`, fed re-based access units.
struct Writer {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    bus: gst::Bus,
    /// Stream time subtracted from every time stamp.
    base: u64,
    /// Wall-clock time of `base`.
    base_wall: DateTime<Utc>,
    /// Open segment files and the running time they start at.
    open: HashMap<PathBuf, u64>,
    /// The segment opened last.
    current: Option<PathBuf>,
    reserved: Arc<Mutex<Vec<PathBuf>>>,
    /// The end reason of the last segment, and how long finalising may take.
    ending: Option<(EndReason, Instant)>,
    /// Wall-clock end of the last unit pushed.
    end_wall: Option<DateTime<Utc>>,
    done: bool,
}

impl Writer {
    fn start(
        s: &Session,
        caps: &gst::Caps,
        base: u64,
        base_wall: DateTime<Utc>,
        n: u32,
    ) -> std::result::Result<Writer, String> {
        let c = &s.config;
        let pipeline = gst::Pipeline::with_name(&format!("motion-write-{}-{n}", c.camera));
        let src = gst_app::AppSrc::builder()
            .caps(caps)
            .format(gst::Format::Time)
            .is_live(false)
            .block(false)
            .max_bytes(0)
            .build();
        let splitmux = make("splitmuxsink")?;
        splitmux.set_property("async-finalize", true);
        splitmux.set_property("muxer-factory", "mp4mux");
        let fragment_ms = c.fragment_duration.as_millis().min(u128::from(u32::MAX)) as u32;
        splitmux.set_property(
            "muxer-properties",
            gst::Structure::builder("properties").field("fragment-duration", fragment_ms).build(),
        );
        splitmux.set_property(
            "sink-properties",
            gst::Structure::builder("properties").field("buffer-mode", 2i32).build(),
        );
        let max_ns =
            (c.segment_duration + SEGMENT_TOLERANCE).as_nanos().min(u128::from(u64::MAX)) as u64;
        splitmux.set_property("max-size-time", max_ns);
        let reserved = Arc::new(Mutex::new(Vec::new()));
        let dir = s.dir.clone();
        let camera = c.camera;
        let names = reserved.clone();
        splitmux.connect("format-location-full", false, move |args| {
            // Named after the wall-clock time of the segment's first unit.
            let pts = args
                .get(2)
                .and_then(|v| v.get::<gst::Sample>().ok())
                .and_then(|sample| sample.buffer().and_then(|b| b.pts()))
                .map_or(0, gst::ClockTime::nseconds);
            let start = base_wall + chrono::Duration::nanoseconds(pts as i64);
            let path = reserve_file(&dir, camera, start);
            let location = path.to_string_lossy().into_owned();
            names.lock().unwrap_or_else(|p| p.into_inner()).push(path);
            Some(location.to_value())
        });
        pipeline.add_many([src.upcast_ref(), &splitmux]).map_err(|e| e.to_string())?;
        let sink_pad =
            splitmux.request_pad_simple("video").ok_or("splitmuxsink refused a video pad")?;
        let src_pad = src.static_pad("src").ok_or("appsrc has no src pad")?;
        src_pad.link(&sink_pad).map_err(|e| format!("cannot link the writer: {e:?}"))?;
        let bus = pipeline.bus().ok_or("pipeline has no bus")?;
        if let Err(err) = pipeline.set_state(gst::State::Playing) {
            let _ = pipeline.set_state(gst::State::Null);
            return Err(err.to_string());
        }
        Ok(Writer {
            pipeline,
            src,
            bus,
            base,
            base_wall,
            open: HashMap::new(),
            current: None,
            reserved,
            ending: None,
            end_wall: None,
            done: false,
        })
    }

    fn push(&mut self, buffer: &gst::Buffer, wall: DateTime<Utc>) {
        if self.ending.is_some() || self.done {
            return;
        }
        let mut copy = buffer.copy();
        {
            let Some(b) = copy.get_mut() else { return };
            let rebase = |t: gst::ClockTime| {
                gst::ClockTime::from_nseconds(t.nseconds().saturating_sub(self.base))
            };
            b.set_pts(buffer.pts().map(rebase));
            b.set_dts(buffer.dts().map(rebase));
        }
        let duration = buffer.duration().map_or(0, gst::ClockTime::nseconds);
        self.end_wall = Some(wall + chrono::Duration::nanoseconds(duration as i64));
        if let Err(err) = self.src.push_buffer(copy) {
            tracing::warn!(error = ?err, "motion recording refused a unit");
        }
    }

    /// No more units: finalise the open segment, which ends for `reason`.
    fn finish(&mut self, reason: EndReason) {
        if self.ending.is_none() {
            self.ending = Some((reason, Instant::now() + FINISH_TIMEOUT));
            let _ = self.src.end_of_stream();
        }
    }

    /// Handle the writer's bus messages; true when it is done (EOS, error, or finalising took
    /// too long).
    fn poll(&mut self, s: &mut Session) -> bool {
        while !self.done
            && let Some(msg) = self.bus.pop()
        {
            match msg.view() {
                gst::MessageView::Element(e) => {
                    let Some(st) = e.structure() else { continue };
                    let location = st.get::<String>("location").ok().map(PathBuf::from);
                    let rt = st.get::<u64>("running-time").ok().or_else(|| {
                        st.get::<gst::ClockTime>("running-time").ok().map(gst::ClockTime::nseconds)
                    });
                    match (st.name().as_str(), location, rt) {
                        ("splitmuxsink-fragment-opened", Some(location), Some(rt)) => {
                            tracing::debug!(location = %location.display(), rt, "motion segment opened");
                            self.open.insert(location.clone(), rt);
                            self.current = Some(location);
                        }
                        ("splitmuxsink-fragment-closed", Some(location), Some(rt)) => {
                            let Some(start) = self.open.remove(&location) else { continue };
                            let reason = match self.ending {
                                Some((reason, _)) if self.current.as_ref() == Some(&location) => {
                                    reason
                                }
                                _ => EndReason::Duration,
                            };
                            self.close_file(s, &location, start, Some(rt), reason);
                        }
                        _ => {}
                    }
                }
                gst::MessageView::Eos(_) => self.done = true,
                gst::MessageView::Error(err) => {
                    tracing::error!(camera = %s.config.camera, error = %err.error(), debug = ?err.debug(), "motion recording failed");
                    if self.ending.is_none() {
                        self.ending = Some((EndReason::Error, Instant::now()));
                    }
                    self.done = true;
                }
                _ => {}
            }
        }
        if self.ending.is_some_and(|(_, deadline)| Instant::now() >= deadline) {
            tracing::warn!(camera = %s.config.camera, "motion segment not finalised in time; tearing down");
            self.done = true;
        }
        self.done
    }

    fn close_file(
        &self,
        s: &mut Session,
        path: &Path,
        start: u64,
        end: Option<u64>,
        reason: EndReason,
    ) {
        let started_at = self.base_wall + chrono::Duration::nanoseconds(start as i64);
        let wait = if end.is_some() { COMPLETE_TIMEOUT } else { Duration::ZERO };
        let fallback_ns = end.map_or(0, |e| e.saturating_sub(start));
        let media_start = self.base.saturating_add(start);
        s.finish_file(
            path,
            Some(started_at),
            media_start,
            fallback_ns,
            reason,
            Backend::Gstreamer,
            wait,
        );
    }

    /// Stop the pipeline; keep what is whole of files never closed, remove unused ones.
    fn teardown(mut self, s: &mut Session) {
        let _ = self.pipeline.set_state(gst::State::Null);
        let reason = self.ending.map_or(EndReason::Error, |(r, _)| r);
        for (location, start) in std::mem::take(&mut self.open) {
            self.close_file(s, &location, start, None, reason);
        }
        let reserved =
            std::mem::take(&mut *self.reserved.lock().unwrap_or_else(|p| p.into_inner()));
        for path in reserved {
            if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Create the segment file starting at `start` with `create_new`, moving to the next second
/// if a file of that name exists, and return its path.
fn reserve_file(dir: &Path, camera: CameraId, start: DateTime<Utc>) -> PathBuf {
    for i in 0..600 {
        let Ok(name) = segment_file_name(start + chrono::Duration::seconds(i), camera) else {
            break;
        };
        let path = dir.join(name);
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => return path,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                tracing::error!(camera = %camera, path = %path.display(), error = %e, "cannot create segment file");
                return path;
            }
        }
    }
    dir.join(format!("unnamed-{}-{camera}.mp4", start.timestamp_nanos_opt().unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn t(ms: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::milliseconds(ms)
    }

    /// 15 fps, a key frame every second.
    fn fill(ring: &mut Ring<u32>, seconds: u32) {
        for i in 0..seconds * 15 {
            let ms = i64::from(i) * 1000 / 15;
            ring.push(t(ms), i % 15 == 0, 100, i);
        }
    }

    #[test]
    fn the_ring_keeps_whole_gops_covering_the_pre_roll() {
        let mut ring = Ring::new(Duration::from_millis(2500), usize::MAX);
        // Frames before the first key frame are dropped.
        ring.push(t(-100), false, 100, 999);
        assert_eq!(ring.start_for(t(0)), None);
        fill(&mut ring, 10);
        // Newest frame at 9.933 s: 2.5 s back is 7.433 s; the GOP at 7 s covers it.
        assert_eq!(ring.oldest(), Some(t(7000)));
        assert_eq!(ring.bytes(), 100 * 15 * 3);
        assert_eq!(ring.frames_from(0).next().map(|(_, i)| *i), Some(105));
        // Start at the last key frame at or before the target, else the oldest.
        assert_eq!(ring.start_for(t(8500)), Some(1));
        assert_eq!(ring.start_for(t(9000)), Some(2));
        assert_eq!(ring.start_for(t(1000)), Some(0));
        let from: Vec<u32> = ring.frames_from(2).map(|(_, i)| *i).collect();
        assert_eq!(from, (135..150).collect::<Vec<_>>());
    }

    #[test]
    fn the_ring_is_bounded_in_bytes() {
        let mut ring = Ring::new(Duration::from_secs(60), 100 * 40);
        fill(&mut ring, 10);
        assert!(ring.bytes() <= 100 * 40, "{}", ring.bytes());
        assert_eq!(ring.oldest(), Some(t(8000)));
    }

    #[test]
    fn motion_mode_settings_are_checked() {
        let camera = CameraId(1);
        let mut c = RecorderConfig::new(
            camera,
            "rtsp://127.0.0.1/cam",
            "/tmp/x",
            crate::layout::CameraDir::new(camera, None).unwrap(),
        );
        c.mode = RecordingMode::Motion;
        assert!(c.validate().is_ok());
        let bad = [
            RecorderConfig { mode: RecordingMode::Off, ..c.clone() },
            RecorderConfig { backend: Backend::Ffmpeg, ..c.clone() },
            RecorderConfig { pre_roll: Duration::from_secs(61), ..c.clone() },
            RecorderConfig { post_roll: Duration::from_secs(601), ..c.clone() },
            RecorderConfig { motion_url: Some("http://x/sub".into()), ..c.clone() },
        ];
        for c in bad {
            let err = c.validate().unwrap_err();
            assert_eq!(err.kind(), pv_core::ErrorKind::InvalidInput, "{c:?}: {err}");
        }
        assert!(!c.falls_back());
        assert!(RecorderConfig { mode: RecordingMode::Continuous, ..c }.falls_back());
    }
}
