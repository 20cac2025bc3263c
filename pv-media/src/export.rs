//! Export: finished segment files of one camera joined into one MP4, never transcoded.
//!
//! [`export`] reads the segments in the order given, each with its own
//! `filesrc → qtdemux → appsink` (H.264/H.265 video, AAC audio), moves every access unit onto
//! one continuous timeline (each file starts where the previous one's video ended, so the
//! output plays from 0 without holes or overlaps even when the recordings had gaps between
//! them) and writes it through `appsrc → h264parse/h265parse → mp4mux faststart=true →
//! filesink`: a plain (not fragmented) MP4 with its index at the front, ready for browsers and
//! players to stream.
//!
//! A joining loop of our own rather than `splitmuxsrc`: `splitmuxsrc` offsets each part by the
//! duration its demuxer reports, which for fragmented files cut short (the recovery pass keeps
//! them) is not where the media ends; here the offsets come from the access units themselves,
//! and trimming is a filter on the same loop.
//!
//! Trimming: [`ExportOptions::from`] and [`ExportOptions::to`] are positions on the joined
//! timeline (0 = the start of the first file). The output starts at the last key frame at or
//! before `from` (so it covers `from`, starting up to one group of pictures early) and ends
//! before the first video frame at or after `to`. Without them the whole segments are
//! exported.
//!
//! All files must have the same video codec, frame size and parameter sets (one camera with
//! unchanged settings); a file that differs is refused ([`ExportError::Mismatch`]) rather than
//! written into an MP4 that players cannot decode. Audio is exported only when every file has
//! an AAC track. The output is written to a temporary file next to `out`, fsynced and renamed,
//! so `out` is either complete or absent.
//!
//! ```no_run
//! # fn demo() -> Result<(), pv_media::export::ExportError> {
//! use std::path::PathBuf;
//! use pv_media::export::{self, ExportOptions};
//! let files = [PathBuf::from("a.mp4"), PathBuf::from("b.mp4"), PathBuf::from("c.mp4")];
//! let summary = export::export(&files, "clip.mp4".as_ref(), &ExportOptions::default())?;
//! println!("{} ms, {} bytes", summary.duration.as_millis(), summary.size_bytes);
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use pv_core::ErrorKind;

use crate::mp4;
use crate::tap::VideoCodec;

/// What [`export`] writes.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Start of the range on the joined timeline (default: the start). The output starts at
    /// the last key frame at or before it.
    pub from: Option<Duration>,
    /// End of the range on the joined timeline, exclusive (default: the end).
    pub to: Option<Duration>,
    /// Export AAC audio when every file has it (default true).
    pub audio: bool,
    /// How long the whole export may take (default 10 minutes).
    pub timeout: Duration,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self { from: None, to: None, audio: true, timeout: Duration::from_secs(600) }
    }
}

/// What [`export`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// The output file.
    pub path: PathBuf,
    /// Where the output starts on the joined timeline (the key frame at or before `from`).
    pub start: Duration,
    /// Duration of the video written.
    pub duration: Duration,
    /// The video codec.
    pub video_codec: VideoCodec,
    /// Whether AAC audio was written.
    pub audio: bool,
    /// Video frames written.
    pub frames: u64,
    /// Size of the output in bytes.
    pub size_bytes: u64,
}

/// Why an export failed. The output file is not left behind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// No input files.
    #[error("nothing to export: no segment files given")]
    NoFiles,
    /// A range with `from` at or after `to`.
    #[error("invalid export range: {0}")]
    InvalidRange(String),
    /// The range holds no video.
    #[error("the export range holds no video")]
    EmptyRange,
    /// A file that cannot be read as a segment.
    #[error("{}: {reason}", path.display())]
    BadSegment {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file whose stream differs from the first file's.
    #[error("{}: cannot be joined with the first file: {reason}", path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A GStreamer element the export needs is not installed.
    #[error("GStreamer element {0} is not installed")]
    MissingElement(&'static str),
    /// The export took longer than [`ExportOptions::timeout`].
    #[error("export timed out after {} s", .0.as_secs())]
    Timeout(Duration),
    /// Writing the output failed.
    #[error("export failed: {0}")]
    Failed(String),
    /// GStreamer could not be initialised, or a file operation failed.
    #[error(transparent)]
    Media(#[from] crate::Error),
}

impl ExportError {
    /// Classify this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ExportError::NoFiles
            | ExportError::InvalidRange(_)
            | ExportError::EmptyRange
            | ExportError::BadSegment { .. }
            | ExportError::Mismatch { .. } => ErrorKind::InvalidInput,
            ExportError::Timeout(_) => ErrorKind::Unavailable,
            ExportError::MissingElement(_) | ExportError::Failed(_) => ErrorKind::Internal,
            ExportError::Media(e) => e.kind(),
        }
    }
}

/// Join `files` (finished segments of one camera, in playback order) into one MP4 at `out`.
/// Blocks until done; from async code run it with `tokio::task::spawn_blocking`.
pub fn export(
    files: &[impl AsRef<Path>],
    out: &Path,
    options: &ExportOptions,
) -> Result<ExportSummary, ExportError> {
    let started = Instant::now();
    if files.is_empty() {
        return Err(ExportError::NoFiles);
    }
    if let (Some(from), Some(to)) = (options.from, options.to)
        && from >= to
    {
        return Err(ExportError::InvalidRange(format!(
            "from {} ms is not before to {} ms",
            from.as_millis(),
            to.as_millis()
        )));
    }
    crate::init()?;
    let files: Vec<&Path> = files.iter().map(AsRef::as_ref).collect();
    let plan = check_files(&files, options.audio)?;
    for factory in ["filesrc", "qtdemux", plan.codec_parser(), "mp4mux", "filesink"] {
        if gst::ElementFactory::find(factory).is_none() {
            return Err(ExportError::MissingElement(factory));
        }
    }
    let tmp = temp_path(out);
    let deadline = started + options.timeout;
    let joiner = Arc::new(Mutex::new(Joiner::new(&plan, options, &tmp)));
    let result = run(&files, &plan, &joiner, deadline, options.timeout);
    let summary = result.and_then(|()| lock(&joiner).finish(deadline, options.timeout));
    let summary = match summary {
        Ok(s) => s,
        Err(e) => {
            lock(&joiner).abort();
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    crate::record::fsync_file_and_dir(&tmp)?;
    std::fs::rename(&tmp, out).map_err(|e| crate::Error::io(out, e))?;
    crate::record::fsync_file_and_dir(out)?;
    let size_bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    tracing::info!(
        out = %out.display(),
        files = files.len(),
        duration_ms = summary.duration.as_millis() as u64,
        bytes = size_bytes,
        took_ms = started.elapsed().as_millis() as u64,
        "export written"
    );
    Ok(ExportSummary { path: out.to_path_buf(), size_bytes, ..summary })
}

/// `DIR/.NAME.partial` beside the output.
fn temp_path(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    out.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}

fn lock(joiner: &Mutex<Joiner>) -> MutexGuard<'_, Joiner> {
    joiner.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the files hold, from their MP4 boxes.
struct Plan {
    codec: VideoCodec,
    audio: bool,
}

impl Plan {
    fn codec_parser(&self) -> &'static str {
        match self.codec {
            VideoCodec::H264 => "h264parse",
            VideoCodec::H265 => "h265parse",
        }
    }
}

/// Read every file's boxes: video present, one codec and frame size, audio in all or none.
fn check_files(files: &[&Path], want_audio: bool) -> Result<Plan, ExportError> {
    let mut first: Option<(String, Option<u32>, Option<u32>)> = None;
    let mut audio = want_audio;
    for path in files {
        let bad = |reason: String| ExportError::BadSegment { path: path.to_path_buf(), reason };
        let info = mp4::inspect(path).map_err(|e| bad(e.to_string()))?;
        if info.valid_len == 0 {
            return Err(bad("no complete fragment".into()));
        }
        let video = info.video.as_ref().ok_or_else(|| bad("no video track".into()))?;
        let this = (video.codec.clone(), video.width, video.height);
        match &first {
            None => first = Some(this),
            Some(f) if *f == this => {}
            Some(f) => {
                return Err(ExportError::Mismatch {
                    path: path.to_path_buf(),
                    reason: format!(
                        "{} {:?}x{:?}, not {} {:?}x{:?}",
                        this.0, this.1, this.2, f.0, f.1, f.2
                    ),
                });
            }
        }
        audio &= info.audio.as_ref().is_some_and(|a| a.codec == "aac");
    }
    let codec = match first.as_ref().map(|f| f.0.as_str()) {
        Some("h264") => VideoCodec::H264,
        Some("h265") => VideoCodec::H265,
        other => {
            return Err(ExportError::BadSegment {
                path: files[0].to_path_buf(),
                reason: format!("video codec {} cannot be exported", other.unwrap_or("unknown")),
            });
        }
    };
    Ok(Plan { codec, audio })
}

fn make(factory: &'static str) -> Result<gst::Element, ExportError> {
    gst::ElementFactory::make(factory).build().map_err(|_| ExportError::MissingElement(factory))
}

/// Wait up to `left` of the deadline for the next bus step (at most 100 ms).
fn step(deadline: Instant, timeout: Duration) -> Result<gst::ClockTime, ExportError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ExportError::Timeout(timeout));
    }
    Ok(gst::ClockTime::from_nseconds(left.min(Duration::from_millis(100)).as_nanos() as u64))
}

/// Read the files one after the other into the joiner.
fn run(
    files: &[&Path],
    plan: &Plan,
    joiner: &Arc<Mutex<Joiner>>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), ExportError> {
    for path in files {
        if lock(joiner).done {
            break;
        }
        lock(joiner).begin_file(path);
        read_file(path, plan, joiner, deadline, timeout)?;
        if let Some(err) = lock(joiner).error.take() {
            return Err(err);
        }
        lock(joiner).end_file();
    }
    Ok(())
}

fn read_file(
    path: &Path,
    plan: &Plan,
    joiner: &Arc<Mutex<Joiner>>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), ExportError> {
    let bad = |reason: String| ExportError::BadSegment { path: path.to_path_buf(), reason };
    let pipeline = gst::Pipeline::with_name("export-read");
    let src = make("filesrc")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let demux = make("qtdemux")?;
    // Not async: qtdemux feeds both sinks from one thread, so the pipeline must not wait for
    // each of them to preroll.
    let appsink = || gst_app::AppSink::builder().sync(false).build();
    let vsink = appsink();
    let asink = plan.audio.then(appsink);
    for sink in [Some(&vsink), asink.as_ref()].into_iter().flatten() {
        sink.set_async(false);
    }
    pipeline.add_many([&src, &demux, vsink.upcast_ref()]).map_err(|e| bad(e.to_string()))?;
    if let Some(a) = &asink {
        pipeline.add(a).map_err(|e| bad(e.to_string()))?;
    }
    src.link(&demux).map_err(|e| bad(e.to_string()))?;
    for (sink, track) in [(Some(&vsink), Media::Video), (asink.as_ref(), Media::Audio)] {
        let Some(sink) = sink else { continue };
        let j = joiner.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Flushing)?;
                    lock(&j).sample(track, &sample)
                })
                .build(),
        );
    }
    let vpad = vsink.static_pad("sink");
    let apad = asink.as_ref().and_then(|a| a.static_pad("sink"));
    demux.connect_pad_added(move |_, pad| {
        let name = pad.name();
        let target = if name.starts_with("video") {
            vpad.as_ref()
        } else if name.starts_with("audio") {
            apad.as_ref()
        } else {
            None
        };
        if let Some(target) = target
            && !target.is_linked()
        {
            let _ = pad.link(target);
        }
    });
    struct Teardown(gst::Pipeline);
    impl Drop for Teardown {
        fn drop(&mut self) {
            let _ = self.0.set_state(gst::State::Null);
        }
    }
    let pipeline = Teardown(pipeline);
    let bus = pipeline.0.bus().ok_or_else(|| bad("pipeline has no bus".into()))?;
    pipeline.0.set_state(gst::State::Playing).map_err(|e| bad(e.to_string()))?;
    loop {
        let Some(msg) = bus.timed_pop_filtered(
            step(deadline, timeout)?,
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => return Ok(()),
            gst::MessageView::Error(e) => {
                let j = lock(joiner);
                if j.error.is_some() || j.done {
                    return Ok(());
                }
                // A file cut short (kept by the recovery pass) ends where the damage starts.
                if j.file_frames > 0 {
                    tracing::warn!(path = %path.display(), error = %e.error(), "export: segment read stopped early");
                    return Ok(());
                }
                return Err(bad(e.error().to_string()));
            }
            _ => {}
        }
    }
}

/// Which appsink a sample came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    Video,
    Audio,
}

/// A unit on the joined timeline: the buffer re-stamped, and its decode time.
struct Unit {
    media: Media,
    buffer: gst::Buffer,
    at: u64,
}

/// The output pipeline.
struct Output {
    pipeline: gst::Pipeline,
    video: gst_app::AppSrc,
    audio: Option<gst_app::AppSrc>,
}

impl Output {
    fn build(plan: &Plan, video_caps: &gst::Caps, tmp: &Path) -> Result<Output, ExportError> {
        let pipeline = gst::Pipeline::with_name("export-write");
        let appsrc = |caps: Option<&gst::Caps>| {
            let b = gst_app::AppSrc::builder()
                .format(gst::Format::Time)
                .is_live(false)
                .block(true)
                .max_bytes(32 << 20);
            match caps {
                Some(c) => b.caps(c).build(),
                None => b.build(),
            }
        };
        let video = appsrc(Some(video_caps));
        let parse = make(plan.codec_parser())?;
        let mux = make("mp4mux")?;
        mux.set_property("faststart", true);
        let faststart_file = tmp.with_extension("moov");
        mux.set_property("faststart-file", faststart_file.to_string_lossy().as_ref());
        let sink = make("filesink")?;
        sink.set_property("location", tmp.to_string_lossy().as_ref());
        let fail = |e: gst::glib::BoolError| ExportError::Failed(e.to_string());
        pipeline.add_many([video.upcast_ref(), &parse, &mux, &sink]).map_err(fail)?;
        video.link(&parse).map_err(fail)?;
        parse.link_pads(Some("src"), &mux, Some("video_%u")).map_err(fail)?;
        mux.link(&sink).map_err(fail)?;
        let audio = if plan.audio {
            let asrc = appsrc(None);
            pipeline.add(&asrc).map_err(fail)?;
            asrc.link_pads(Some("src"), &mux, Some("audio_%u")).map_err(fail)?;
            Some(asrc)
        } else {
            None
        };
        pipeline.set_state(gst::State::Playing).map_err(|e| ExportError::Failed(e.to_string()))?;
        Ok(Output { pipeline, video, audio })
    }

    fn push(&self, unit: Unit, t0: u64) -> Result<(), gst::FlowError> {
        let shift = |t: Option<gst::ClockTime>| {
            t.map(|t| gst::ClockTime::from_nseconds(t.nseconds().saturating_sub(t0)))
        };
        let mut buffer = unit.buffer;
        {
            let b = buffer.make_mut();
            let (pts, dts) = (b.pts(), b.dts());
            b.set_pts(shift(pts));
            b.set_dts(shift(dts));
        }
        match unit.media {
            Media::Video => self.video.push_buffer(buffer).map(|_| ()),
            Media::Audio => match &self.audio {
                Some(a) => a.push_buffer(buffer).map(|_| ()),
                None => Ok(()),
            },
        }
    }

    fn error(&self) -> Option<String> {
        let msg = self.pipeline.bus()?.pop_filtered(&[gst::MessageType::Error])?;
        match msg.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Re-stamps every unit onto the joined timeline, trims, and feeds the output.
struct Joiner {
    plan: Plan,
    from: Option<u64>,
    to: Option<u64>,
    tmp: PathBuf,
    output: Option<Output>,
    video_caps: Option<gst::Caps>,
    /// The first file's audio caps (the output's).
    audio_caps: Option<gst::Caps>,
    /// The output's audio caps are set.
    audio_caps_set: bool,
    /// The file being read.
    file: PathBuf,
    /// Its first video time stamp (None until its first video unit).
    file_base: Option<u64>,
    /// Audio of this file seen before its first video unit.
    early_audio: Vec<gst::Buffer>,
    /// Where this file starts on the joined timeline.
    offset: u64,
    /// End of the video read so far, on the joined timeline.
    end: u64,
    file_frames: u64,
    frame_ns: u64,
    /// The output has begun; `t0` is its start on the joined timeline.
    started: bool,
    t0: u64,
    /// The group of pictures that may hold `from`, held until the next key frame.
    pending: Vec<Unit>,
    audio_last: Option<u64>,
    video_end_out: u64,
    frames: u64,
    /// `to` was reached.
    done: bool,
    error: Option<ExportError>,
}

impl Joiner {
    fn new(plan: &Plan, options: &ExportOptions, tmp: &Path) -> Joiner {
        let ns = |d: Duration| d.as_nanos().min(u128::from(u64::MAX)) as u64;
        Joiner {
            plan: Plan { codec: plan.codec, audio: plan.audio },
            from: options.from.map(ns),
            to: options.to.map(ns),
            tmp: tmp.to_path_buf(),
            output: None,
            video_caps: None,
            audio_caps: None,
            audio_caps_set: false,
            file: PathBuf::new(),
            file_base: None,
            early_audio: Vec::new(),
            offset: 0,
            end: 0,
            file_frames: 0,
            frame_ns: 40_000_000,
            started: false,
            t0: 0,
            pending: Vec::new(),
            audio_last: None,
            video_end_out: 0,
            frames: 0,
            done: false,
            error: None,
        }
    }

    fn begin_file(&mut self, path: &Path) {
        self.file = path.to_path_buf();
        self.file_base = None;
        self.early_audio.clear();
        self.offset = self.end;
        self.file_frames = 0;
    }

    fn end_file(&mut self) {
        self.early_audio.clear();
    }

    fn fail(&mut self, err: ExportError) -> gst::FlowError {
        self.error.get_or_insert(err);
        gst::FlowError::Error
    }

    /// A sample from a reader's appsink.
    fn sample(
        &mut self,
        media: Media,
        sample: &gst::Sample,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        if self.done {
            return Err(gst::FlowError::Eos);
        }
        if self.error.is_some() {
            return Err(gst::FlowError::Error);
        }
        let Some(buffer) = sample.buffer_owned() else { return Ok(gst::FlowSuccess::Ok) };
        match media {
            Media::Video => {
                if let Some(caps) = sample.caps()
                    && let Err(reason) = self.check_caps(caps)
                {
                    let path = self.file.clone();
                    return Err(self.fail(ExportError::Mismatch { path, reason }));
                }
                if self.file_base.is_none() {
                    let Some(ts) = buffer.dts_or_pts() else { return Ok(gst::FlowSuccess::Ok) };
                    self.file_base = Some(ts.nseconds());
                    for early in std::mem::take(&mut self.early_audio) {
                        self.place(Media::Audio, early)?;
                    }
                }
                self.place(Media::Video, buffer)?;
            }
            Media::Audio => {
                if self.audio_caps.is_none() {
                    self.audio_caps = sample.caps().map(|c| c.to_owned());
                }
                if self.file_base.is_none() {
                    self.early_audio.push(buffer);
                    return Ok(gst::FlowSuccess::Ok);
                }
                self.place(Media::Audio, buffer)?;
            }
        }
        if self.done { Err(gst::FlowError::Eos) } else { Ok(gst::FlowSuccess::Ok) }
    }

    /// Video caps must match the first file's (codec, size, parameter sets).
    fn check_caps(&mut self, caps: &gst::CapsRef) -> Result<(), String> {
        let Some(first) = &self.video_caps else {
            self.video_caps = Some(caps.to_owned());
            return Ok(());
        };
        let key = |c: &gst::CapsRef| {
            c.structure(0).map(|s| {
                (
                    s.name().to_string(),
                    s.get::<i32>("width").ok(),
                    s.get::<i32>("height").ok(),
                    s.get::<gst::Buffer>("codec_data")
                        .ok()
                        .and_then(|b| b.map_readable().ok().map(|m| m.as_slice().to_vec())),
                )
            })
        };
        let (a, b) = (key(first), key(caps));
        if a == b {
            return Ok(());
        }
        Err(match (a, b) {
            (Some(a), Some(b)) if a.0 != b.0 || a.1 != b.1 || a.2 != b.2 => {
                format!("{} {:?}x{:?}, not {} {:?}x{:?}", b.0, b.1, b.2, a.0, a.1, a.2)
            }
            _ => "different stream parameters (SPS/PPS): the camera's settings changed".into(),
        })
    }

    /// Put a buffer of the current file on the joined timeline and pass it on.
    fn place(&mut self, media: Media, buffer: gst::Buffer) -> Result<(), gst::FlowError> {
        let (Some(base), Some(ts)) = (self.file_base, buffer.dts_or_pts()) else { return Ok(()) };
        let ts = ts.nseconds();
        if ts < base {
            return Ok(());
        }
        let shift = |t: Option<gst::ClockTime>| {
            t.map(|t| {
                gst::ClockTime::from_nseconds(t.nseconds().saturating_sub(base) + self.offset)
            })
        };
        let at = ts - base + self.offset;
        let mut buffer = buffer;
        {
            let b = buffer.make_mut();
            let (pts, dts) = (b.pts(), b.dts());
            b.set_pts(shift(pts));
            b.set_dts(shift(dts));
        }
        if media == Media::Video {
            if let Some(d) = buffer.duration() {
                self.frame_ns = d.nseconds().max(1);
            }
            let pts_end = buffer.pts().map_or(at, gst::ClockTime::nseconds).max(at);
            self.end = self.end.max(pts_end + self.frame_ns);
            self.file_frames += 1;
        }
        self.emit(Unit { media, buffer, at })
    }

    /// Trim and write.
    fn emit(&mut self, unit: Unit) -> Result<(), gst::FlowError> {
        if let Some(to) = self.to
            && unit.at >= to
        {
            if unit.media == Media::Video {
                self.done = true;
            }
            return Ok(());
        }
        if !self.started {
            let key = unit.media == Media::Video
                && !unit.buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
            match self.from {
                None if key => {}
                Some(from) if key && unit.at <= from => {
                    self.pending.clear();
                    self.pending.push(unit);
                    return Ok(());
                }
                Some(_) if key => {}
                _ => {
                    if !self.pending.is_empty() {
                        self.pending.push(unit);
                    }
                    return Ok(());
                }
            }
            self.start(unit.at)?;
        }
        self.write(unit)
    }

    /// Begin the output at the held key frame, else at `at`.
    fn start(&mut self, at: u64) -> Result<(), gst::FlowError> {
        self.started = true;
        let pending = std::mem::take(&mut self.pending);
        self.t0 = pending.first().map_or(at, |u| u.at);
        for unit in pending {
            self.write(unit)?;
        }
        Ok(())
    }

    fn write(&mut self, unit: Unit) -> Result<(), gst::FlowError> {
        if unit.at < self.t0 {
            return Ok(());
        }
        if self.output.is_none() {
            let Some(caps) = self.video_caps.clone() else { return Ok(()) };
            match Output::build(&self.plan, &caps, &self.tmp) {
                Ok(out) => self.output = Some(out),
                Err(e) => return Err(self.fail(e)),
            }
        }
        if !self.audio_caps_set
            && let (Some(out), Some(caps)) = (self.output.as_ref(), self.audio_caps.as_ref())
            && let Some(a) = &out.audio
        {
            a.set_caps(Some(caps));
            self.audio_caps_set = true;
        }
        let out_at = unit.at - self.t0;
        match unit.media {
            Media::Video => {
                let end = unit.buffer.pts().map_or(unit.at, gst::ClockTime::nseconds).max(unit.at)
                    + self.frame_ns;
                self.video_end_out = self.video_end_out.max(end - self.t0);
                self.frames += 1;
            }
            Media::Audio => {
                if !self.audio_caps_set || self.audio_last.is_some_and(|last| out_at < last) {
                    return Ok(());
                }
                self.audio_last = Some(out_at);
            }
        }
        let t0 = self.t0;
        let Some(out) = self.output.as_ref() else { return Ok(()) };
        let pushed =
            out.push(unit, t0).map_err(|e| out.error().unwrap_or_else(|| format!("{e:?}")));
        pushed.map_err(|reason| self.fail(ExportError::Failed(reason)))
    }

    /// All files read: flush a held GOP that covers `from`, end the output and wait for the
    /// file to be written.
    fn finish(
        &mut self,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<ExportSummary, ExportError> {
        if !self.started && !self.pending.is_empty() {
            if self.from.is_some_and(|from| from >= self.end) {
                return Err(ExportError::EmptyRange);
            }
            let at = self.pending.first().map_or(0, |u| u.at);
            self.start(at).map_err(|_| self.error.take().unwrap_or(ExportError::EmptyRange))?;
        }
        if let Some(err) = self.error.take() {
            return Err(err);
        }
        let Some(out) = self.output.as_ref() else { return Err(ExportError::EmptyRange) };
        if self.frames == 0 {
            return Err(ExportError::EmptyRange);
        }
        let _ = out.video.end_of_stream();
        if let Some(a) = &out.audio {
            let _ = a.end_of_stream();
        }
        let bus = out.pipeline.bus().ok_or_else(|| ExportError::Failed("no bus".into()))?;
        loop {
            let Some(msg) = bus.timed_pop_filtered(
                step(deadline, timeout)?,
                &[gst::MessageType::Eos, gst::MessageType::Error],
            ) else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(e) => {
                    return Err(ExportError::Failed(e.error().to_string()));
                }
                _ => {}
            }
        }
        self.output = None;
        Ok(ExportSummary {
            path: self.tmp.clone(),
            start: Duration::from_nanos(self.t0),
            duration: Duration::from_nanos(self.video_end_out),
            video_codec: self.plan.codec,
            audio: self.plan.audio && self.audio_caps_set,
            frames: self.frames,
            size_bytes: 0,
        })
    }

    /// Tear the output down after a failure.
    fn abort(&mut self) {
        self.output = None;
        let _ = std::fs::remove_file(self.tmp.with_extension("moov"));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bad_requests_are_refused_before_reading() {
        let none: [&Path; 0] = [];
        let out = Path::new("/tmp/never-written.mp4");
        let err = export(&none, out, &ExportOptions::default()).unwrap_err();
        assert!(matches!(err, ExportError::NoFiles));
        let options = ExportOptions {
            from: Some(Duration::from_secs(5)),
            to: Some(Duration::from_secs(5)),
            ..ExportOptions::default()
        };
        let err = export(&[Path::new("/tmp/x.mp4")], out, &options).unwrap_err();
        assert!(matches!(err, ExportError::InvalidRange(_)), "{err}");
        let err =
            export(&[Path::new("/nonexistent/a.mp4")], out, &ExportOptions::default()).unwrap_err();
        assert!(matches!(err, ExportError::BadSegment { .. }), "{err}");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(!out.exists());
    }
}
