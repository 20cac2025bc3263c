//! The pre-encoded clips a [`TestCamera`](super::TestCamera) serves: generated once with x264 or
//! x265 into a cache file, then loaded into memory as access units.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::{Error, Result};

/// Frame width of every clip but [`Clip::MovingSub`] and [`Clip::Moving1080`].
pub const WIDTH: u32 = 1280;
/// Frame height of every clip but [`Clip::MovingSub`] and [`Clip::Moving1080`].
pub const HEIGHT: u32 = 720;
/// Frames per second of every clip.
pub const FPS: u32 = 15;
/// Frames per group of pictures: one key frame per second.
pub const GOP_FRAMES: u32 = FPS;
/// Frames in one loop of a clip (10 s), except [`Clip::Burst`] ([`BURST_FRAMES`]).
pub const FRAMES: u32 = FPS * 10;
/// Frames in one loop of [`Clip::Burst`] (16 s).
pub const BURST_FRAMES: u32 = FPS * 16;
/// The frames of a [`Clip::Burst`] loop in which the object moves: 7 s to 10 s.
pub const BURST_MOVING: std::ops::Range<u32> = FPS * 7..FPS * 10;
/// AAC frames (1024 samples at 16 kHz) in one loop of a clip with audio (9.98 s).
const AUDIO_FRAMES: u32 = 16_000 * 10 / 1024;

/// What a simulated camera shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Clip {
    /// H.264: a ball moving over a static grey background.
    Moving,
    /// H.264: a static scene (colour bars); nothing moves.
    Static,
    /// H.265: the moving ball.
    MovingH265,
    /// H.264 moving ball with an AAC audio track (a 440 Hz tone, 16 kHz mono).
    MovingAac,
    /// RTP-packetised H.264 that is not H.264: random slice data, no parameter sets, no key
    /// frame. Nothing can be recorded from it.
    Garbage,
    /// H.264, 16 s loop: a still textured scene for 7 s, then a person-sized block crossing the
    /// frame for 3 s ([`BURST_MOVING`]), then the still scene again for 6 s.
    Burst,
    /// H.264 moving ball at 640x360: what a camera's sub stream looks like.
    MovingSub,
    /// H.264 at 1920x1080 and 4 Mbit/s: colour bars scrolling sideways (with the bars' noise
    /// patch), what a camera's 1080p main stream looks like.
    Moving1080,
    /// H.264: a picture file (JPEG or PNG) on a grey background, drifting slowly sideways and
    /// back ([`picture`](super::picture)). The picture is given to
    /// [`TestCamera::start_picture`](super::TestCamera::start_picture); this clip has no file
    /// of its own ([`clip_file`] refuses it).
    Picture,
}

impl Clip {
    /// Short name, used in cache file names.
    pub fn name(self) -> &'static str {
        match self {
            Clip::Moving => "moving",
            Clip::Static => "static",
            Clip::MovingH265 => "moving-h265",
            Clip::MovingAac => "moving-aac",
            Clip::Garbage => "garbage",
            Clip::Burst => "burst",
            Clip::MovingSub => "moving-sub",
            Clip::Moving1080 => "moving-1080",
            Clip::Picture => "picture",
        }
    }

    /// Frame size in pixels: 1280x720, 640x360 for [`Clip::MovingSub`], 1920x1080 for
    /// [`Clip::Moving1080`].
    pub fn size(self) -> (u32, u32) {
        match self {
            Clip::MovingSub => (640, 360),
            Clip::Moving1080 => (1920, 1080),
            _ => (WIDTH, HEIGHT),
        }
    }

    /// How long one loop of the clip lasts (10 s; 16 s for [`Clip::Burst`]).
    pub fn loop_duration(self) -> Duration {
        Duration::from_secs(u64::from(self.frames() / FPS))
    }

    /// When the scene moves within one loop: `None` for a clip that moves all the time or
    /// never; for [`Clip::Burst`], 7 s to 10 s after the loop starts.
    pub fn motion_span(self) -> Option<(Duration, Duration)> {
        let frame = Duration::from_secs(1) / FPS;
        match self {
            Clip::Burst => Some((frame * BURST_MOVING.start, frame * BURST_MOVING.end)),
            _ => None,
        }
    }

    fn frames(self) -> u32 {
        match self {
            Clip::Burst => BURST_FRAMES,
            _ => FRAMES,
        }
    }

    /// The codec name recordings of this clip carry (`h264`, `h265`).
    pub fn codec(self) -> &'static str {
        match self {
            Clip::MovingH265 => "h265",
            _ => "h264",
        }
    }

    fn source(self) -> String {
        match self {
            Clip::Static => "videotestsrc pattern=smpte".to_owned(),
            Clip::Burst => format!(
                "appsrc name=src format=time block=true caps=\"video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate={FPS}/1\""
            ),
            Clip::Moving1080 => "videotestsrc pattern=smpte horizontal-speed=4".to_owned(),
            _ => "videotestsrc pattern=ball background-color=0xff505050".to_owned(),
        }
    }

    fn encoder(self) -> String {
        match self {
            Clip::MovingH265 => format!(
                "x265enc key-int-max={GOP_FRAMES} speed-preset=ultrafast bitrate=1500 option-string=bframes=0 ! h265parse"
            ),
            Clip::Moving1080 => format!(
                "x264enc bframes=0 key-int-max={GOP_FRAMES} speed-preset=ultrafast bitrate=4000 ! h264parse"
            ),
            _ => CLIP_ENCODER_H264.to_owned(),
        }
    }

    fn parser(self) -> &'static str {
        match self {
            Clip::MovingH265 => {
                "h265parse config-interval=-1 ! video/x-h265,stream-format=byte-stream,alignment=au"
            }
            _ => {
                "h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au"
            }
        }
    }

    /// The RTP payloader a camera uses for this clip.
    pub(crate) fn payloader(self) -> &'static str {
        match self {
            Clip::MovingH265 => "rtph265pay",
            _ => "rtph264pay",
        }
    }
}

/// The H.264 encoder of most clips (one key frame a second, no B-frames).
pub(crate) const CLIP_ENCODER_H264: &str =
    "x264enc bframes=0 key-int-max=15 speed-preset=ultrafast bitrate=1500 ! h264parse";

/// A clip in memory: its caps and access units, and those of its audio track.
#[derive(Debug)]
pub(crate) struct ClipData {
    pub caps: gst::Caps,
    pub frames: Vec<gst::Buffer>,
    pub audio: Option<(gst::Caps, Vec<gst::Buffer>)>,
}

/// The directory clips are cached in: `$PV_TESTCAM_CACHE`, else `<tmp>/pv-media-testcam`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("PV_TESTCAM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("pv-media-testcam"))
}

/// The cached MP4 file of `clip`, generated on first use (atomically: other processes may race).
/// [`Clip::Garbage`] has no file; it is made in memory. [`Clip::Picture`] has one per picture
/// ([`super::picture::picture_file`]).
pub fn clip_file(clip: Clip) -> Result<PathBuf> {
    if clip == Clip::Picture {
        return Err(Error::InvalidFrame(
            "the picture clip needs a picture file (see testcam::picture::picture_file)".into(),
        ));
    }
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let (width, height) = clip.size();
    let path = dir.join(format!("{}-{width}x{height}-{FPS}fps-v2.mp4", clip.name()));
    if path.is_file() {
        return Ok(path);
    }
    let tmp = dir.join(format!(".{}-{}.tmp.mp4", clip.name(), std::process::id()));
    let audio = if clip == Clip::MovingAac {
        format!(
            "audiotestsrc num-buffers={AUDIO_FRAMES} samplesperbuffer=1024 ! audio/x-raw,rate=16000,channels=1 ! avenc_aac ! aacparse ! mux. "
        )
    } else {
        String::new()
    };
    let launch = format!(
        "{} num-buffers={} ! video/x-raw,format=I420,width={width},height={height},framerate={FPS}/1 ! {} ! mux. {audio}mp4mux name=mux ! filesink location={}",
        clip.source(),
        clip.frames(),
        clip.encoder(),
        tmp.display()
    );
    tracing::info!(clip = clip.name(), path = %path.display(), "generating test clip");
    let feed: Option<Feed> = match clip {
        Clip::Burst => Some(Box::new(feed_burst)),
        _ => None,
    };
    run_to_eos(&launch, feed)?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// The clip's access units, loaded once per process.
pub(crate) fn load(clip: Clip) -> Result<Arc<ClipData>> {
    type Loaded = Vec<(Clip, Arc<ClipData>)>;
    static CACHE: OnceLock<Mutex<Loaded>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, data)) = cache.iter().find(|(c, _)| *c == clip) {
        return Ok(data.clone());
    }
    let data = Arc::new(match clip {
        Clip::Garbage => garbage(),
        _ => read_access_units(clip, &clip_file(clip)?)?,
    });
    cache.push((clip, data.clone()));
    Ok(data)
}

pub(crate) fn read_access_units(clip: Clip, path: &Path) -> Result<ClipData> {
    crate::init()?;
    let audio = if clip == Clip::MovingAac {
        "d.audio_0 ! queue ! aacparse ! appsink name=asink sync=false"
    } else {
        ""
    };
    let launch = format!(
        "filesrc location={} ! qtdemux name=d d.video_0 ! queue ! {} ! appsink name=sink sync=false {audio}",
        path.display(),
        clip.parser()
    );
    let pipeline = gst::parse::launch(&launch)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| Error::Gstreamer("clip reader is not a pipeline".into()))?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| Error::Gstreamer("clip reader has no appsink".into()))?;
    let asink = pipeline.by_name("asink").and_then(|e| e.downcast::<gst_app::AppSink>().ok());
    pipeline.set_state(gst::State::Playing)?;
    let video = pull_all(&sink);
    let audio = asink.as_ref().map(pull_all);
    let _ = pipeline.set_state(gst::State::Null);
    let (Some(caps), frames) = video else {
        return Err(Error::Gstreamer(format!("{}: no video", path.display())));
    };
    if frames.is_empty() {
        return Err(Error::Gstreamer(format!("{}: no frames", path.display())));
    }
    let audio = match audio {
        Some((Some(caps), frames)) if !frames.is_empty() => Some((caps, frames)),
        Some(_) => return Err(Error::Gstreamer(format!("{}: no audio", path.display()))),
        None => None,
    };
    Ok(ClipData { caps, frames, audio })
}

/// Every sample of an appsink until EOS: the first caps and the buffers.
fn pull_all(sink: &gst_app::AppSink) -> (Option<gst::Caps>, Vec<gst::Buffer>) {
    let mut frames = Vec::new();
    let mut caps = None;
    while let Ok(sample) = sink.pull_sample() {
        if caps.is_none() {
            caps = sample.caps_owned();
        }
        if let Some(buffer) = sample.buffer_owned() {
            frames.push(buffer);
        }
    }
    (caps, frames)
}

/// Random slice NAL units with start codes: valid RTP, useless H.264.
fn garbage() -> ClipData {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let frames = (0..FRAMES)
        .map(|_| {
            let mut data = vec![0u8, 0, 0, 1, 0x41];
            data.extend((0..4000).map(|_| (next() & 0xff) as u8 | 0x01));
            gst::Buffer::from_mut_slice(data)
        })
        .collect();
    let caps = gst::Caps::builder("video/x-h264")
        .field("stream-format", "byte-stream")
        .field("alignment", "au")
        .field("width", WIDTH as i32)
        .field("height", HEIGHT as i32)
        .field("framerate", gst::Fraction::new(FPS as i32, 1))
        .build();
    ClipData { caps, frames, audio: None }
}

/// The raw pictures of [`Clip::Burst`], pushed into the encoder's `appsrc`: a still scene of
/// shaded blocks; during [`BURST_MOVING`] a bright 160x320 block with a dark stripe crosses it
/// from left to right.
fn feed_burst(src: &gst_app::AppSrc) {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut scene = vec![128u8; w * h * 3 / 2];
    for y in 0..h {
        for x in 0..w {
            let block = (x / 80 * 7 + y / 60 * 13) % 9;
            scene[y * w + x] = (60 + block * 12 + x * 20 / w) as u8;
        }
    }
    let frame = gst::ClockTime::from_nseconds(1_000_000_000 / u64::from(FPS));
    let moving = BURST_MOVING.end - BURST_MOVING.start;
    for i in 0..BURST_FRAMES {
        let mut data = scene.clone();
        if BURST_MOVING.contains(&i) {
            let step = (i - BURST_MOVING.start) as usize;
            let (bw, bh, top) = (160, 320, 300);
            let left = 60 + step * (w - bw - 120) / (moving as usize - 1);
            for y in top..top + bh {
                for x in left..left + bw {
                    data[y * w + x] = if (x - left) / 20 == 3 { 40 } else { 215 };
                }
            }
        }
        let mut buffer = gst::Buffer::from_mut_slice(data);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(frame * u64::from(i));
            b.set_duration(frame);
        }
        if src.push_buffer(buffer).is_err() {
            return;
        }
    }
    let _ = src.end_of_stream();
}

/// Pushes raw pictures into a clip generator's `appsrc`, then ends the stream.
pub(crate) type Feed = Box<dyn FnOnce(&gst_app::AppSrc) + Send>;

/// Run `launch` until EOS; `feed`, when given, pushes the pictures into its `appsrc` named
/// `src` on another thread.
pub(crate) fn run_to_eos(launch: &str, feed: Option<Feed>) -> Result<()> {
    crate::init()?;
    let pipeline = gst::parse::launch(launch)?;
    let bus = pipeline.bus().ok_or_else(|| Error::Gstreamer("pipeline has no bus".into()))?;
    pipeline.set_state(gst::State::Playing)?;
    if let Some(feed) = feed {
        let src = pipeline
            .downcast_ref::<gst::Bin>()
            .and_then(|b| b.by_name("src"))
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| Error::Gstreamer("clip generator has no appsrc".into()))?;
        std::thread::spawn(move || feed(&src));
    }
    let mut result = Err(Error::Gstreamer("clip generation timed out".into()));
    while let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(120)) {
        match msg.view() {
            gst::MessageView::Eos(_) => {
                result = Ok(());
                break;
            }
            gst::MessageView::Error(err) => {
                result = Err(Error::Gstreamer(format!("clip generation: {}", err.error())));
                break;
            }
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Decode `clip` to grayscale frames of `width`×`height` (width a multiple of 4, so rows are
/// unpadded), for motion tests.
pub fn luma_frames(clip: Clip, width: u32, height: u32) -> Result<Vec<Vec<u8>>> {
    if width == 0 || height == 0 || !width.is_multiple_of(4) {
        return Err(Error::InvalidFrame(format!(
            "{width}x{height}: width must be a multiple of 4"
        )));
    }
    if clip == Clip::Garbage {
        return Err(Error::InvalidFrame("the garbage clip has no pictures".into()));
    }
    crate::init()?;
    let launch = format!(
        "filesrc location={} ! qtdemux name=d d.video_0 ! decodebin ! videoconvert ! videoscale ! video/x-raw,format=GRAY8,width={width},height={height} ! appsink name=sink sync=false",
        clip_file(clip)?.display()
    );
    let pipeline = gst::parse::launch(&launch)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| Error::Gstreamer("decoder is not a pipeline".into()))?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| Error::Gstreamer("decoder has no appsink".into()))?;
    pipeline.set_state(gst::State::Playing)?;
    let (_, buffers) = pull_all(&sink);
    let _ = pipeline.set_state(gst::State::Null);
    let frames: Vec<Vec<u8>> = buffers
        .iter()
        .filter_map(|b| b.map_readable().ok().map(|m| m.as_slice().to_vec()))
        .collect();
    let size = (width * height) as usize;
    if frames.is_empty() || frames.iter().any(|f| f.len() != size) {
        return Err(Error::Gstreamer(format!(
            "decoding {} gave no {width}x{height} frames",
            clip.name()
        )));
    }
    Ok(frames)
}
