//! The GStreamer backend: one attempt is one pipeline, `rtspsrc → depay → parse →
//! splitmuxsink(mp4mux, fragmented)`, supervised from its bus on the recorder thread.
//!
//! A pad probe after each parser hands every access unit and caps change to the camera's
//! [`StreamTap`](crate::tap::StreamTap). A probe rather than a `tee` branch: the recording path
//! keeps its elements, allocation and latency; the tap gets the buffers by reference and
//! never pushes back (its broadcast drops units for consumers that fall behind).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use gstreamer as gst;
use gstreamer::prelude::*;
use pv_core::Clock;
use pv_core::ids::CameraId;

use super::{AttemptEnd, Backend, EndReason, Session};
use crate::layout::segment_file_name;
use crate::tap::{StreamTap, Track};

/// How long the bus loop waits for a message before checking stop and watchdogs.
const POLL: Duration = Duration::from_millis(100);
/// How long EOS may take to finalise the open segment.
const FINISH_TIMEOUT: Duration = Duration::from_secs(10);
/// Added to the segment length given to splitmuxsink, which cuts before the GOP that would
/// exceed it: without it, key-frame timestamp jitter turns 3 × 1 s GOPs into a 2 s segment.
pub(super) const SEGMENT_TOLERANCE: Duration = Duration::from_millis(200);
/// How long a closed fragment may take to become a complete file on disk.
const COMPLETE_TIMEOUT: Duration = Duration::from_secs(3);

/// State shared between the pipeline's streaming threads and the bus loop.
struct Shared {
    started: Instant,
    /// Milliseconds since `started` (+1) of the last video buffer; 0: none yet.
    last_data_ms: AtomicU64,
    /// The camera answered DESCRIBE with streams.
    answered: AtomicBool,
    /// The source ended the video stream (EOS passed the parser).
    source_eos: AtomicBool,
    /// Why the stream cannot be recorded by this backend (unsupported codec, missing element).
    problem: Mutex<Option<String>>,
    /// Segment files created for splitmuxsink this attempt.
    reserved: Mutex<Vec<PathBuf>>,
}

impl Shared {
    fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64 + 1;
        self.last_data_ms.store(ms, Ordering::Relaxed);
    }

    fn set_problem(&self, problem: String) {
        tracing::warn!(problem, "stream cannot be recorded by GStreamer");
        let mut p = self.problem.lock().unwrap_or_else(|p| p.into_inner());
        p.get_or_insert(problem);
    }

    fn problem(&self) -> Option<String> {
        self.problem.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

struct OpenFragment {
    rt_start: u64,
}

/// How the attempt is ending.
struct Finishing {
    reason: EndReason,
    why: Option<String>,
    deadline: Instant,
}

/// Run one GStreamer attempt until the camera is lost or the recorder is stopped.
pub(super) fn run(s: &mut Session) -> AttemptEnd {
    let shared = Arc::new(Shared {
        started: Instant::now(),
        last_data_ms: AtomicU64::new(0),
        answered: AtomicBool::new(false),
        source_eos: AtomicBool::new(false),
        problem: Mutex::new(None),
        reserved: Mutex::new(Vec::new()),
    });
    s.tap.begin_stream();
    let (pipeline, splitmux) = match build(s, &shared) {
        Ok(p) => p,
        Err(reason) => {
            s.tap.end_stream();
            return AttemptEnd::Unusable { reason };
        }
    };
    let end = drive(s, &shared, &pipeline, &splitmux);
    let _ = pipeline.set_state(gst::State::Null);
    s.tap.end_stream();
    end
}

/// RTSPS: cameras present self-signed certificates for their IP address, so an unknown
/// authority and a name that does not match are accepted (as ffmpeg and the cameras' own
/// apps do); an expired, revoked, not yet valid or insecure certificate is still refused.
pub(crate) fn accept_camera_certificates(src: &gst::Element, url: &str) {
    if url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("rtsps://")) {
        src.set_property_from_str(
            "tls-validation-flags",
            "not-activated+expired+revoked+insecure+generic-error",
        );
    }
}

fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("GStreamer element {factory} is not installed"))
}

fn build(s: &Session, shared: &Arc<Shared>) -> Result<(gst::Pipeline, gst::Element), String> {
    let c = &s.config;
    let pipeline = gst::Pipeline::with_name(&format!("record-{}", c.camera));
    let src = make("rtspsrc")?;
    src.set_property("location", &c.url);
    accept_camera_certificates(&src, &c.url);
    // Over TCP nothing arrives out of order: no jitter-buffer delay, so live viewers and
    // pushes get each frame as soon as it is parsed. UDP keeps a short reorder window.
    src.set_property("latency", if c.transport == super::Transport::Tcp { 0u32 } else { 200 });
    src.set_property_from_str("protocols", c.transport.as_str());
    let timeout_us = c.stall_timeout.as_micros().min(u128::from(u64::MAX)) as u64;
    src.set_property("tcp-timeout", timeout_us);
    src.set_property("timeout", timeout_us);
    if let Some(user) = &c.username {
        src.set_property("user-id", user);
    }
    if let Some(pass) = &c.password {
        src.set_property("user-pw", pass);
    }
    let splitmux = make("splitmuxsink")?;
    make("mp4mux")?;
    splitmux.set_property("async-finalize", true);
    splitmux.set_property("muxer-factory", "mp4mux");
    let fragment_ms = c.fragment_duration.as_millis().min(u128::from(u32::MAX)) as u32;
    splitmux.set_property(
        "muxer-properties",
        gst::Structure::builder("properties").field("fragment-duration", fragment_ms).build(),
    );
    // Unbuffered file writes: each fragment reaches the kernel when mp4mux emits it, so a
    // killed process loses at most the fragment in progress (filesink would otherwise hold up
    // to 64 KiB in user space).
    splitmux.set_property(
        "sink-properties",
        gst::Structure::builder("properties").field("buffer-mode", 2i32).build(),
    );
    let max_ns =
        (c.segment_duration + SEGMENT_TOLERANCE).as_nanos().min(u128::from(u64::MAX)) as u64;
    splitmux.set_property("max-size-time", max_ns);

    let dir = s.dir.clone();
    let camera = c.camera;
    let clock = s.clock.clone();
    let reserve_shared = shared.clone();
    splitmux.connect("format-location-full", false, move |_| {
        let path = reserve_file(&dir, camera, clock.as_ref());
        let location = path.to_string_lossy().into_owned();
        reserve_shared.reserved.lock().unwrap_or_else(|p| p.into_inner()).push(path);
        Some(location.to_value())
    });

    let record_audio = c.record_audio;
    let select_shared = shared.clone();
    let select_tap = s.tap.clone();
    src.connect("select-stream", false, move |args| {
        let caps = args.get(2).and_then(|v| v.get::<gst::Caps>().ok());
        let chosen = caps.as_ref().map(|caps| choose(caps, record_audio));
        select_shared.answered.store(true, Ordering::SeqCst);
        let selected = match chosen {
            Some(Ok(Some(chain))) => {
                if !chain.video {
                    select_tap.expect_audio();
                }
                true
            }
            Some(Ok(None)) => false,
            Some(Err(problem)) => {
                select_shared.set_problem(problem);
                false
            }
            None => false,
        };
        Some(selected.to_value())
    });

    let pad_shared = shared.clone();
    let sink = splitmux.clone();
    let pad_tap = s.tap.clone();
    src.connect_pad_added(move |src, pad| {
        let Some(bin) = src.parent().and_downcast::<gst::Bin>() else { return };
        let Some(caps) = pad.current_caps() else { return };
        let Ok(Some(chain)) = choose(&caps, record_audio) else { return };
        if let Err(problem) = link_chain(&bin, pad, &sink, chain, &pad_shared, &pad_tap) {
            pad_shared.set_problem(problem);
        }
    });

    pipeline.add_many([&src, &splitmux]).map_err(|e| e.to_string())?;
    Ok((pipeline, splitmux))
}

/// The elements that record one RTP stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chain {
    pub(crate) depay: &'static str,
    pub(crate) parse: &'static str,
    pub(crate) caps: &'static str,
    sink_pad: &'static str,
    pub(crate) video: bool,
}

/// Which chain records a stream with these caps: `Ok(None)` to leave it out, `Err` when it is
/// video this backend cannot record.
pub(crate) fn choose(caps: &gst::CapsRef, record_audio: bool) -> Result<Option<Chain>, String> {
    let Some(st) = caps.structure(0) else { return Ok(None) };
    let media = st.get::<&str>("media").unwrap_or_default();
    let encoding = st.get::<&str>("encoding-name").unwrap_or_default().to_ascii_uppercase();
    match (media, encoding.as_str()) {
        ("video", "H264") => Ok(Some(Chain {
            depay: "rtph264depay",
            parse: "h264parse",
            caps: "video/x-h264,stream-format=avc,alignment=au",
            sink_pad: "video",
            video: true,
        })),
        ("video", "H265") => Ok(Some(Chain {
            depay: "rtph265depay",
            parse: "h265parse",
            caps: "video/x-h265,stream-format=hvc1,alignment=au",
            sink_pad: "video",
            video: true,
        })),
        ("video", other) => Err(format!("video codec {other} is not supported (H.264, H.265)")),
        ("audio", "MPEG4-GENERIC") if record_audio => Ok(Some(Chain {
            depay: "rtpmp4gdepay",
            parse: "aacparse",
            caps: "audio/mpeg,mpegversion=4,stream-format=raw",
            sink_pad: "audio_%u",
            video: false,
        })),
        ("audio", other) => {
            if record_audio {
                tracing::info!(
                    codec = other,
                    "audio left out: MP4 cannot hold it without transcoding"
                );
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

fn link_chain(
    bin: &gst::Bin,
    pad: &gst::Pad,
    splitmux: &gst::Element,
    chain: Chain,
    shared: &Arc<Shared>,
    tap: &StreamTap,
) -> Result<(), String> {
    let depay = make(chain.depay)?;
    let parse = make(chain.parse)?;
    let filter = make("capsfilter")?;
    let caps: gst::Caps = chain.caps.parse().map_err(|_| format!("bad caps {}", chain.caps))?;
    filter.set_property("caps", &caps);
    bin.add_many([&depay, &parse, &filter]).map_err(|e| e.to_string())?;
    gst::Element::link_many([&depay, &parse, &filter]).map_err(|e| e.to_string())?;
    let sink_pad = splitmux
        .request_pad_simple(chain.sink_pad)
        .ok_or_else(|| format!("splitmuxsink refused a {} pad", chain.sink_pad))?;
    let src_pad = filter.static_pad("src").ok_or("capsfilter has no src pad")?;
    src_pad.link(&sink_pad).map_err(|e| format!("cannot link {}: {e:?}", chain.parse))?;
    if chain.video {
        let shared = shared.clone();
        src_pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                match &info.data {
                    Some(gst::PadProbeData::Buffer(_)) => shared.touch(),
                    Some(gst::PadProbeData::Event(e)) if e.type_() == gst::EventType::Eos => {
                        shared.source_eos.store(true, Ordering::SeqCst);
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );
    }
    add_tap_probe(&src_pad, tap, if chain.video { Track::Video } else { Track::Audio });
    for e in [&depay, &parse, &filter] {
        e.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    let depay_sink = depay.static_pad("sink").ok_or("depayloader has no sink pad")?;
    pad.link(&depay_sink).map_err(|e| format!("cannot link {}: {e:?}", chain.depay))?;
    Ok(())
}

/// Hand every buffer and caps change leaving `pad` to the tap (by reference; never blocks).
pub(crate) fn add_tap_probe(pad: &gst::Pad, tap: &StreamTap, track: Track) {
    let tap = tap.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER
            | gst::PadProbeType::BUFFER_LIST
            | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            match &info.data {
                Some(gst::PadProbeData::Buffer(buffer)) => tap.publish_gst(track, buffer.clone()),
                Some(gst::PadProbeData::BufferList(list)) => {
                    for buffer in list.iter_owned() {
                        tap.publish_gst(track, buffer);
                    }
                }
                Some(gst::PadProbeData::Event(e)) => {
                    if let gst::EventView::Caps(c) = e.view() {
                        tap.set_gst_caps(track, c.caps());
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Create the segment file for a new fragment with `create_new`, moving to the next second if
/// a file of that name exists, and return its path.
fn reserve_file(dir: &Path, camera: CameraId, clock: &dyn Clock) -> PathBuf {
    let now = clock.now();
    for i in 0..600 {
        let Ok(name) = segment_file_name(now + chrono::Duration::seconds(i), camera) else {
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
    dir.join(format!("unnamed-{}-{camera}.mp4", now.timestamp_nanos_opt().unwrap_or_default()))
}

fn drive(
    s: &mut Session,
    shared: &Arc<Shared>,
    pipeline: &gst::Pipeline,
    splitmux: &gst::Element,
) -> AttemptEnd {
    let camera = s.config.camera;
    let Some(bus) = pipeline.bus() else {
        return AttemptEnd::Unusable { reason: "pipeline has no bus".into() };
    };
    let target = super::reason::CameraTarget::of(&s.config);
    if let Err(err) = pipeline.set_state(gst::State::Playing) {
        let reason = first_error(&bus, &target).unwrap_or_else(|| {
            tracing::debug!(camera = %camera, error = %err, "pipeline did not start");
            format!("recording from {} could not start", target.host)
        });
        return AttemptEnd::Lost { reason, streamed: false, fallback: false };
    }
    let mut open: HashMap<PathBuf, OpenFragment> = HashMap::new();
    let mut current: Option<PathBuf> = None;
    // (wall clock, running time) at one instant: maps running time to wall-clock time.
    let mut anchor: Option<(DateTime<Utc>, u64)> = None;
    let mut streamed = false;
    let mut finishing: Option<Finishing> = None;
    let mut camera_eos = false;

    loop {
        if finishing.is_none() {
            let verdict = if s.stop.is_set() {
                Some((EndReason::Shutdown, None))
            } else {
                watchdog(s, shared).map(|why| (EndReason::Error, Some(why)))
            };
            if let Some((reason, why)) = verdict {
                if let Some(why) = &why {
                    tracing::warn!(camera = %camera, why, "camera lost");
                }
                if current.is_none() {
                    finishing = Some(Finishing { reason, why, deadline: Instant::now() });
                    break;
                }
                send_eos(pipeline, splitmux, reason);
                finishing =
                    Some(Finishing { reason, why, deadline: Instant::now() + FINISH_TIMEOUT });
            }
        }
        if let Some(f) = &finishing
            && Instant::now() >= f.deadline
        {
            tracing::warn!(camera = %camera, "segment not finalised in time; tearing down");
            break;
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(POLL.as_millis() as u64))
        else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Element(e) => {
                let Some(st) = e.structure() else { continue };
                let location = st.get::<String>("location").ok().map(PathBuf::from);
                let rt = st.get::<u64>("running-time").ok().or_else(|| {
                    st.get::<gst::ClockTime>("running-time").ok().map(gst::ClockTime::nseconds)
                });
                match (st.name().as_str(), location, rt) {
                    ("splitmuxsink-fragment-opened", Some(location), Some(rt)) => {
                        if anchor.is_none() {
                            let now_rt = pipeline
                                .current_running_time()
                                .map_or(rt, gst::ClockTime::nseconds);
                            anchor = Some((s.clock.now(), now_rt));
                        }
                        tracing::debug!(camera = %camera, location = %location.display(), rt, "segment opened");
                        open.insert(location.clone(), OpenFragment { rt_start: rt });
                        current = Some(location);
                        if !streamed {
                            streamed = true;
                            s.streaming(Backend::Gstreamer);
                        }
                    }
                    ("splitmuxsink-fragment-closed", Some(location), Some(rt)) => {
                        let Some(frag) = open.remove(&location) else { continue };
                        // A rotation closes the old segment before the next one opens, so a
                        // close is a rotation unless the attempt is ending or the camera
                        // ended the stream (its EOS passed the parser before this close).
                        let reason = match &finishing {
                            Some(f) => f.reason,
                            None if shared.source_eos.load(Ordering::SeqCst) => EndReason::Eos,
                            None => EndReason::Duration,
                        };
                        close_fragment(s, &location, frag.rt_start, Some(rt), anchor, reason);
                    }
                    _ => {}
                }
            }
            gst::MessageView::Eos(_) => {
                if finishing.is_none() {
                    camera_eos = true;
                }
                break;
            }
            gst::MessageView::Error(err) => {
                let source = err.src().map(|s| s.name().to_string()).unwrap_or_default();
                tracing::debug!(camera = %camera, source, error = %err.error(), "pipeline error");
                let answered = shared.answered.load(Ordering::SeqCst);
                let why = super::reason::explain_gst(&target, err, answered);
                if finishing.is_some() {
                    continue;
                }
                tracing::warn!(camera = %camera, why, "camera lost");
                if current.is_none() {
                    finishing = Some(Finishing {
                        reason: EndReason::Error,
                        why: Some(why),
                        deadline: Instant::now(),
                    });
                    break;
                }
                send_eos(pipeline, splitmux, EndReason::Error);
                finishing = Some(Finishing {
                    reason: EndReason::Error,
                    why: Some(why),
                    deadline: Instant::now() + FINISH_TIMEOUT,
                });
            }
            gst::MessageView::Warning(w) => {
                tracing::debug!(camera = %camera, warning = %w.error(), debug = ?w.debug(), "pipeline warning");
            }
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    // Fragments never closed (teardown after a timeout): keep what is whole.
    let reason = finishing.as_ref().map_or(EndReason::Eos, |f| f.reason);
    for (location, frag) in open {
        close_fragment(s, &location, frag.rt_start, None, anchor, reason);
    }
    // Files created for a fragment that never received data.
    let reserved = std::mem::take(&mut *shared.reserved.lock().unwrap_or_else(|p| p.into_inner()));
    for path in reserved {
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&path);
        }
    }
    match finishing {
        Some(Finishing { reason: EndReason::Shutdown, .. }) => AttemptEnd::Stopped,
        Some(Finishing { why, .. }) => {
            let problem = shared.problem();
            let answered = shared.answered.load(Ordering::SeqCst);
            let reason = match (&problem, why) {
                (Some(p), _) => p.clone(),
                (None, Some(why)) => why,
                (None, None) => "camera lost".to_owned(),
            };
            AttemptEnd::Lost { reason, streamed, fallback: !streamed && answered }
        }
        None => {
            let reason = if camera_eos { "the camera ended the stream" } else { "stream ended" };
            AttemptEnd::Lost { reason: reason.to_owned(), streamed, fallback: false }
        }
    }
}

/// Whether the camera counts as lost: no video within the start timeout, or none for the
/// stall timeout.
fn watchdog(s: &Session, shared: &Shared) -> Option<String> {
    let elapsed = shared.started.elapsed();
    let last = shared.last_data_ms.load(Ordering::Relaxed);
    if last == 0 {
        if elapsed > s.config.start_timeout {
            return Some(match shared.problem() {
                Some(p) => p,
                None if shared.answered.load(Ordering::SeqCst) => format!(
                    "no recordable video within {} s (the stream is not valid H.264/H.265?)",
                    s.config.start_timeout.as_secs()
                ),
                None => format!(
                    "timed out waiting for the camera at {} (no answer within {} s)",
                    super::reason::CameraTarget::of(&s.config).host,
                    s.config.start_timeout.as_secs()
                ),
            });
        }
        return None;
    }
    let idle = elapsed.saturating_sub(Duration::from_millis(last - 1));
    (idle > s.config.stall_timeout)
        .then(|| format!("no media from the camera for {} s", idle.as_secs()))
}

/// Finalise the open segment: EOS from the source on a clean stop, straight into the sink's
/// pads when the source is gone.
fn send_eos(pipeline: &gst::Pipeline, splitmux: &gst::Element, reason: EndReason) {
    if reason == EndReason::Shutdown {
        pipeline.send_event(gst::event::Eos::new());
    } else {
        for pad in splitmux.sink_pads() {
            pad.send_event(gst::event::Eos::new());
        }
    }
}

fn first_error(bus: &gst::Bus, target: &super::reason::CameraTarget) -> Option<String> {
    let msg = bus.timed_pop_filtered(gst::ClockTime::ZERO, &[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(err) => Some(super::reason::explain_gst(target, err, false)),
        _ => None,
    }
}

/// A segment file was closed (or the pipeline was torn down with it open): hand it to
/// [`Session::finish_file`] with its wall-clock start.
fn close_fragment(
    s: &mut Session,
    path: &Path,
    rt_start: u64,
    rt_end: Option<u64>,
    anchor: Option<(DateTime<Utc>, u64)>,
    reason: EndReason,
) {
    let started_at = anchor.map(|(wall, rt)| {
        wall - chrono::Duration::nanoseconds(rt.saturating_sub(rt_start) as i64)
            + chrono::Duration::nanoseconds(rt_start.saturating_sub(rt) as i64)
    });
    let wait = if rt_end.is_some() { COMPLETE_TIMEOUT } else { Duration::ZERO };
    let fallback_ns = rt_end.map_or(0, |end| end.saturating_sub(rt_start));
    s.finish_file(path, started_at, rt_start, fallback_ns, reason, Backend::Gstreamer, wait);
}
