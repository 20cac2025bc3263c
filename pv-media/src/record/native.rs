//! The built-in backend (the default): RTSP read by `ingest::rtsp` (the `retina`
//! client) and fragmented MP4 written by `ingest::segment`, on the recorder's own
//! thread.
//!
//! One attempt is one RTSP session. The thread runs a current-thread tokio runtime: every RTP
//! packet is read, depacketised and turned into an access unit inline, without a hand-off to
//! another thread; a unit goes to the camera's [`StreamTap`](crate::tap::StreamTap) (a
//! reference count, never a copy) and to the open segment, which queues it and writes a
//! whole fragment (`moof` + `mdat`, one vectored write) per key frame or
//! [`RecorderConfig::fragment_duration`](super::RecorderConfig::fragment_duration). That is
//! the whole difference from the GStreamer backend, whose `rtspsrc` passes every packet
//! through a jitter buffer and an RTP session on threads of their own.
//!
//! Segments are cut at the first key frame at or after the segment length (less
//! [`SEGMENT_TOLERANCE`]) and at a change of the video parameters (a new init segment is
//! needed); every closed file goes through [`Session::finish_file`] (checked, fsynced with its
//! directory, then `SegmentFinished`). Frames are placed on the wall clock as the
//! [`Clock`](pv_core::Clock)'s time at the first frame plus the stream's time stamps. Frames
//! can only arrive late, so the smallest lateness of a segment's frames is the camera clock's
//! drift from the machine's; beyond [`MAX_DRIFT`] the next segment's times are corrected by
//! it (a busy machine that reads frames late moves nothing).
//!
//! In motion mode ([`RecordingMode::Motion`]) the same access units also go to an in-memory
//! ring of whole groups of pictures covering the pre-roll (never decoded), a
//! [`MotionWatcher`] decodes the motion stream, and on motion a recording starts at the key
//! frame at or before `motion − pre_roll` (the ring first, then live units) and ends at the
//! first unit at or after `last motion + post_roll`, cut into segments like continuous
//! recordings and flagged `motion`. A recording that starts right after another starts no
//! earlier than where the last one ended, at a key frame.
//!
//! A stream this backend cannot record (a video codec other than H.264/H.265, `rtsps://`, a
//! description it cannot read) ends the attempt with `fallback`, and the recorder goes on with
//! GStreamer, saying why in its state.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pv_core::ids::CameraId;

use super::gst::SEGMENT_TOLERANCE;
use super::motion::{RING_MARGIN, RING_MAX_BYTES, Ring};
use super::{AttemptEnd, Backend, EndReason, RecorderConfig, Session};
use crate::RecordingMode;
use crate::ingest::audio::{AacOut, AacTranscoder};
use crate::ingest::rtsp::{RtspSource, SourceError, SourceEvent, SourceOptions};
use crate::ingest::segment::SegmentWriter;
use crate::layout::segment_file_name;
use crate::tap::{AccessUnit, AudioCodec, AudioParams, Track, VideoParams};
use crate::watch::{MotionWatcher, Signal, Sink, WatcherConfig};

/// How long the loop waits for the next event before checking stop and the start timeout.
const POLL: Duration = Duration::from_millis(200);
/// Largest difference between the camera's clock and the machine's before a new segment is
/// anchored afresh on the machine's.
pub(crate) const MAX_DRIFT: Duration = Duration::from_millis(500);

/// Run one attempt until the camera is lost or the recorder is stopped.
pub(super) fn run(s: &mut Session) -> AttemptEnd {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return AttemptEnd::Unusable { reason: format!("cannot start the RTSP client: {e}") };
        }
    };
    let (signals_tx, signals) = std::sync::mpsc::channel::<Signal>();
    let watcher = if s.config.mode == RecordingMode::Motion {
        let camera = s.config.camera;
        let events = s.events.clone();
        let sink: Sink = Arc::new(move |signal: Signal| {
            let _ = signals_tx.send(signal);
            if let Some(event) = signal.event(camera)
                && events.send(event).is_err()
            {
                tracing::debug!(camera = %camera, "recorder event receiver is gone");
            }
        });
        match MotionWatcher::start_with(
            WatcherConfig::for_recorder(&s.config),
            s.clock.clone(),
            sink,
        ) {
            Ok(w) => Some(w),
            Err(err) => return AttemptEnd::Unusable { reason: err.to_string() },
        }
    } else {
        None
    };
    s.tap.begin_stream();
    let mut ingest = Ingest::new(&s.config, signals);
    let end = runtime.block_on(drive(s, &mut ingest));
    if let Some(w) = watcher {
        w.stop_blocking();
    }
    // What is open is closed properly, whatever ended the attempt.
    let reason = match &end {
        Ending::Stopped => EndReason::Shutdown,
        Ending::Lost { eos: true, .. } => EndReason::Eos,
        _ => EndReason::Error,
    };
    ingest.close(s, reason);
    if let Some(last) = ingest.last_wall {
        s.last_end = Some(s.last_end.map_or(last, |e| e.max(last)));
    }
    s.tap.end_stream();
    let streamed = ingest.streamed;
    match end {
        Ending::Stopped => AttemptEnd::Stopped,
        Ending::Lost { reason, .. } => AttemptEnd::Lost { reason, streamed, fallback: false },
        Ending::Unsupported(reason) => AttemptEnd::Lost { reason, streamed, fallback: true },
    }
}

/// How the loop ended.
enum Ending {
    Stopped,
    Lost { reason: String, eos: bool },
    Unsupported(String),
}

async fn drive(s: &mut Session, ingest: &mut Ingest) -> Ending {
    let c = &s.config;
    let opts = SourceOptions {
        url: c.url.clone(),
        username: c.username.clone(),
        password: c.password.clone(),
        transport: c.transport,
        audio: c.record_audio,
        connect_timeout: c.start_timeout,
        stall_timeout: c.stall_timeout,
        user_agent: format!("PentaVision/{}", env!("CARGO_PKG_VERSION")),
    };
    let started = Instant::now();
    let connect = RtspSource::connect(&opts);
    tokio::pin!(connect);
    // Connecting can take up to the start timeout: keep an eye on stop meanwhile.
    let mut source = loop {
        tokio::select! {
            r = &mut connect => match r {
                Ok(source) => break source,
                Err(e) => return ending(s, &e, false),
            },
            () = tokio::time::sleep(POLL) => {
                if s.stop.is_set() {
                    return Ending::Stopped;
                }
            }
        }
    };
    if source.has_audio() {
        s.tap.expect_audio();
    }
    let end = pump(s, ingest, &mut source, started).await;
    // TEARDOWN, so a camera with few session slots has this one back at once.
    source.close().await;
    end
}

async fn pump(
    s: &mut Session,
    ingest: &mut Ingest,
    source: &mut RtspSource,
    started: Instant,
) -> Ending {
    loop {
        if s.stop.is_set() {
            return Ending::Stopped;
        }
        if !ingest.streamed && started.elapsed() > s.config.start_timeout {
            // The camera answered but sent nothing recordable: GStreamer may do better.
            return Ending::Unsupported(format!(
                "no recordable video within {} s (the stream is not valid H.264/H.265?)",
                s.config.start_timeout.as_secs()
            ));
        }
        // `next` is cancel-safe: a unit half read stays in the source for the next call.
        let event = match tokio::time::timeout(POLL, source.next()).await {
            Err(_) => {
                ingest.signals(s);
                continue;
            }
            Ok(Err(e)) => return ending(s, &e, ingest.streamed),
            Ok(Ok(event)) => event,
        };
        ingest.signals(s);
        match event {
            SourceEvent::Video(params) => ingest.video(s, params),
            SourceEvent::Audio(params) => ingest.audio(s, params),
            SourceEvent::Unit(unit) => {
                if let Err(reason) = ingest.unit(s, unit) {
                    return Ending::Lost { reason, eos: false };
                }
            }
        }
    }
}

/// How the attempt ends after `e`: in words for people, and whether GStreamer should try. A
/// camera that answered but gave nothing recordable goes to GStreamer too, as GStreamer's own
/// failures of that kind go to ffmpeg.
fn ending(s: &Session, e: &SourceError, streamed: bool) -> Ending {
    let target = super::reason::CameraTarget::of(&s.config);
    let reason = super::reason::explain_native(&target, &s.config.url, e);
    match e {
        SourceError::Unsupported(_) => Ending::Unsupported(reason),
        SourceError::Lost(t) if !streamed && t.contains("no key frame") => {
            Ending::Unsupported(reason)
        }
        SourceError::Auth(_) | SourceError::Lost(_) => Ending::Lost { reason, eos: false },
    }
}

/// One open segment file.
struct Open {
    writer: SegmentWriter,
    path: PathBuf,
    started_at: DateTime<Utc>,
    /// Decoding time of its first video frame.
    first_dts: Duration,
}

/// Motion mode's state: what is buffered and when the recording ends.
struct Gate {
    ring: Ring<AccessUnit>,
    signals: std::sync::mpsc::Receiver<Signal>,
    pre_roll: chrono::Duration,
    post_roll: chrono::Duration,
    /// A recording is on (segments are being written).
    active: bool,
    /// Motion was seen but no key frame is buffered yet: start at the next one.
    pending: Option<DateTime<Utc>>,
    /// The active recording ends at the first unit at or after this time.
    close_at: Option<DateTime<Utc>>,
    /// Wall-clock end of the last recording: the next one starts no earlier.
    written_until: Option<DateTime<Utc>>,
}

/// The attempt's state: track parameters, the wall-clock anchor and the open segment.
struct Ingest {
    motion: bool,
    video: Option<VideoParams>,
    audio: Option<AudioParams>,
    /// (wall-clock time, stream time) of one frame: places stream times on the wall clock.
    anchor: Option<(DateTime<Utc>, Duration)>,
    open: Option<Open>,
    /// The video parameters changed: the next key frame starts a new segment.
    params_changed: bool,
    streamed: bool,
    /// Smallest lateness of a video frame against the anchor since the last segment began.
    lateness: Option<chrono::Duration>,
    /// Decoding time of the last video frame and the frame interval seen.
    last_dts: Option<Duration>,
    frame: Duration,
    /// Wall-clock end of the last video frame written to a segment.
    last_wall: Option<DateTime<Utc>>,
    /// G.711 audio is turned into AAC (see `ingest::audio`).
    transcoder: Option<AacTranscoder>,
    /// The camera's audio cannot be recorded: its units are dropped.
    drop_audio: bool,
    gate: Gate,
}

impl Ingest {
    fn new(c: &RecorderConfig, signals: std::sync::mpsc::Receiver<Signal>) -> Self {
        let detection = Duration::from_secs(1) * c.motion.start_frames / c.motion.fps.max(1);
        Self {
            motion: c.mode == RecordingMode::Motion,
            video: None,
            audio: None,
            anchor: None,
            open: None,
            params_changed: false,
            streamed: false,
            lateness: None,
            last_dts: None,
            frame: Duration::ZERO,
            last_wall: None,
            transcoder: None,
            drop_audio: false,
            gate: Gate {
                ring: Ring::new(c.pre_roll + detection + RING_MARGIN, RING_MAX_BYTES),
                signals,
                pre_roll: chrono_duration(c.pre_roll),
                post_roll: chrono_duration(c.post_roll),
                active: false,
                pending: None,
                close_at: None,
                written_until: None,
            },
        }
    }

    fn video(&mut self, s: &Session, params: VideoParams) {
        if self.video.as_ref() != Some(&params) {
            if self.video.is_some() {
                tracing::info!(camera = %s.config.camera, "video parameters changed; new segment at the next key frame");
                self.params_changed = true;
            }
            s.tap.set_video(params.clone());
            self.video = Some(params);
        }
    }

    fn audio(&mut self, s: &Session, params: AudioParams) {
        if matches!(params.codec, AudioCodec::Pcmu | AudioCodec::Pcma) {
            // The camera's G.711 parameters: what is recorded is the transcoder's AAC.
            self.transcoder = None;
            match AacTranscoder::new(&params) {
                Ok(t) => {
                    let aac = t.params().clone();
                    self.transcoder = Some(t);
                    self.drop_audio = false;
                    self.aac(s, aac);
                }
                Err(e) => {
                    tracing::warn!(camera = %s.config.camera, error = e, "G.711 audio left out");
                    self.drop_audio = true;
                }
            }
            return;
        }
        self.transcoder = None;
        self.drop_audio = false;
        self.aac(s, params);
    }

    /// The recorded audio track is known or changed.
    fn aac(&mut self, s: &Session, params: AudioParams) {
        if self.audio.as_ref() != Some(&params) {
            s.tap.set_audio(params.clone());
            if self.audio.is_some() {
                self.params_changed = true;
            }
            self.audio = Some(params);
        }
    }

    /// Wall-clock time of stream time `t`.
    fn wall(&self, t: Duration) -> Option<DateTime<Utc>> {
        let (wall, at) = self.anchor?;
        Some(if t >= at { wall + chrono_duration(t - at) } else { wall - chrono_duration(at - t) })
    }

    /// Motion mode: act on what the watcher saw.
    fn signals(&mut self, s: &mut Session) {
        if !self.motion {
            return;
        }
        while let Ok(signal) = self.gate.signals.try_recv() {
            let (first, last) = match signal {
                Signal::Started { at, last, .. } => (Some(at), last),
                Signal::Moving { at } => (Some(at), at),
                Signal::Ended { ended_at, .. } => (None, ended_at),
            };
            if let Some(first) = first
                && !self.gate.active
                && self.gate.pending.is_none()
            {
                self.gate.close_at = None;
                self.begin_recording(s, first - self.gate.pre_roll);
            }
            if self.gate.active || self.gate.pending.is_some() {
                let until = last + self.gate.post_roll;
                self.gate.close_at = Some(self.gate.close_at.map_or(until, |c| c.max(until)));
            }
        }
    }

    /// Motion mode: start a recording at the buffered key frame at or before `target` (never
    /// before the end of the last recording), writing the ring's units from there.
    fn begin_recording(&mut self, s: &mut Session, target: DateTime<Utc>) {
        let target = self.gate.written_until.map_or(target, |w| w.max(target));
        let units: Vec<AccessUnit> = match self.gate.ring.start_for(target) {
            Some(start) => self.gate.ring.frames_from(start).map(|(_, u)| u.clone()).collect(),
            None => Vec::new(),
        };
        let Some(first) = units.first() else {
            self.gate.pending = Some(target);
            return;
        };
        tracing::info!(
            camera = %s.config.camera,
            target = %target,
            buffered = units.len(),
            ring_bytes = self.gate.ring.bytes(),
            "motion recording started"
        );
        let t = first.dts_or_pts().unwrap_or_default();
        if let Err(e) = self.start(s, t) {
            tracing::error!(camera = %s.config.camera, error = e, "cannot start a motion recording");
            return;
        }
        if self.open.is_none() {
            // No video parameters yet: try again at the next key frame.
            self.gate.pending = Some(target);
            return;
        }
        self.gate.pending = None;
        self.gate.active = true;
        for unit in &units {
            if let Err(e) = self.write(unit) {
                tracing::error!(camera = %s.config.camera, error = e, "motion recording failed");
                self.end_recording(s, EndReason::Error);
                return;
            }
        }
    }

    /// Motion mode: the active recording is over.
    fn end_recording(&mut self, s: &mut Session, reason: EndReason) {
        self.close(s, reason);
        self.gate.active = false;
        self.gate.close_at = None;
        self.gate.pending = None;
    }

    fn unit(&mut self, s: &mut Session, unit: AccessUnit) -> Result<(), String> {
        if unit.track() == Track::Audio {
            if self.drop_audio {
                return Ok(());
            }
            if let Some(t) = &mut self.transcoder {
                for out in t.push(&unit) {
                    match out {
                        AacOut::Params(p) => self.aac(s, p),
                        AacOut::Unit(u) => self.handle(s, u)?,
                    }
                }
                return Ok(());
            }
        }
        self.handle(s, unit)
    }

    fn handle(&mut self, s: &mut Session, unit: AccessUnit) -> Result<(), String> {
        let track = unit.track();
        let t = unit.dts_or_pts().unwrap_or_default();
        if track == Track::Video {
            if let Some(last) = self.last_dts
                && t > last
            {
                self.frame = t - last;
            }
            self.last_dts = Some(t);
            let now = s.clock.now();
            match self.wall(t) {
                None => {
                    self.anchor = Some((now, t));
                    if self.motion && !self.streamed {
                        // Motion mode streams once frames arrive, recording or not.
                        self.streamed = true;
                        s.streaming(Backend::Native);
                    }
                }
                // Frames arrive late (network, a busy machine), never early: the smallest
                // lateness seen is the camera clock's drift from the machine's.
                Some(w) => {
                    let late = now - w;
                    self.lateness = Some(self.lateness.map_or(late, |l| l.min(late)));
                }
            }
        }
        s.tap.publish(unit.clone());
        if self.motion {
            let Some(wall) = self.wall(t) else { return Ok(()) };
            let key = track == Track::Video && unit.is_key_frame();
            self.gate.ring.push(wall, key, unit.len(), unit.clone());
            if !self.gate.active {
                if key && let Some(target) = self.gate.pending {
                    // The ring now holds a key frame: the recording can begin, this unit
                    // included.
                    self.begin_recording(s, target);
                }
                return Ok(());
            }
            if self.gate.close_at.is_some_and(|at| wall >= at) {
                self.end_recording(s, EndReason::MotionEnd);
                return Ok(());
            }
        }
        if track == Track::Video && unit.is_key_frame() {
            let rotate = match &self.open {
                None => !self.motion,
                Some(o) => {
                    self.params_changed
                        || t.saturating_sub(o.first_dts) + SEGMENT_TOLERANCE
                            >= s.config.segment_duration
                }
            };
            if rotate {
                self.close(s, EndReason::Duration);
                if let Some(late) = self.lateness.take()
                    && late.abs().to_std().unwrap_or(Duration::MAX) > MAX_DRIFT
                    && let Some((wall, at)) = self.anchor
                {
                    tracing::debug!(camera = %s.config.camera, drift_ms = late.num_milliseconds(), "stream clock drifted; segment times corrected");
                    self.anchor = Some((wall + late, at));
                }
                self.params_changed = false;
                self.start(s, t)?;
            }
        }
        self.write(&unit)
    }

    /// Queue `unit` in the open segment, if any.
    fn write(&mut self, unit: &AccessUnit) -> Result<(), String> {
        let Some(o) = &mut self.open else { return Ok(()) };
        if let Err(e) = o.writer.push(unit) {
            return Err(format!("cannot write {}: {e}", o.path.display()));
        }
        if unit.track() == Track::Video
            && let Some(t) = unit.dts_or_pts()
        {
            let end = self.wall(t + unit.duration().unwrap_or(self.frame));
            self.last_wall = end.or(self.last_wall);
        }
        Ok(())
    }

    /// Open a segment whose first frame (a key frame) is at stream time `t`.
    fn start(&mut self, s: &mut Session, t: Duration) -> Result<(), String> {
        let Some(video) = self.video.clone() else {
            // No parameters yet: wait for the next key frame.
            return Ok(());
        };
        let Some(started_at) = self.wall(t) else { return Ok(()) };
        let audio = self.audio.clone().filter(|_| s.config.record_audio);
        let (writer, path) = create(
            &s.dir,
            s.config.camera,
            started_at,
            &video,
            audio.as_ref(),
            s.config.fragment_duration,
        )?;
        tracing::debug!(camera = %s.config.camera, path = %path.display(), "segment opened");
        self.open = Some(Open { writer, path, started_at, first_dts: t });
        if !self.streamed {
            self.streamed = true;
            s.streaming(Backend::Native);
        }
        Ok(())
    }

    /// Finish the open segment, if any, and hand it to [`Session::finish_file`].
    fn close(&mut self, s: &mut Session, reason: EndReason) {
        let Some(o) = self.open.take() else { return };
        let fallback_ns = match o.writer.finish() {
            Ok(summary) => {
                u64::try_from(summary.end_dts.saturating_sub(summary.first_dts).as_nanos())
                    .unwrap_or(u64::MAX)
            }
            Err(e) => {
                // What reached the file is still checked (and cut to its last whole fragment).
                tracing::error!(camera = %s.config.camera, path = %o.path.display(), error = %e, "segment not finished cleanly");
                0
            }
        };
        let media_start_ns = u64::try_from(o.first_dts.as_nanos()).unwrap_or(u64::MAX);
        s.finish_file(
            &o.path,
            Some(o.started_at),
            media_start_ns,
            fallback_ns,
            reason,
            Backend::Native,
            Duration::ZERO,
        );
        if self.motion {
            self.gate.written_until = self.last_wall.or(self.gate.written_until);
        }
    }
}

/// Create the segment file for a segment starting at `start`, moving to the next second if a
/// file of that name exists.
fn create(
    dir: &Path,
    camera: CameraId,
    start: DateTime<Utc>,
    video: &VideoParams,
    audio: Option<&AudioParams>,
    fragment: Duration,
) -> Result<(SegmentWriter, PathBuf), String> {
    for i in 0..600 {
        let name = segment_file_name(start + chrono::Duration::seconds(i), camera)
            .map_err(|e| e.to_string())?;
        let path = dir.join(name);
        if path.exists() {
            continue;
        }
        return match SegmentWriter::create(&path, video, audio, fragment) {
            Ok(w) => Ok((w, path)),
            Err(e) => Err(format!("cannot create segment file {}: {e}", path.display())),
        };
    }
    Err(format!("no free segment file name in {}", dir.display()))
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
