//! A clip made from a picture file ([`Clip::Picture`](super::Clip::Picture)): a JPEG or PNG
//! decoded by GStreamer, scaled to fit [`FIT_WIDTH`]×[`FIT_HEIGHT`] on a grey 1280x720 frame,
//! drifting sideways by [`DRIFT_STEP`] pixels a frame and back ([`DRIFT`] pixels each way in one
//! 10 s loop), so motion detection fires and the picture stays whole. H.264, one key frame a
//! second, cached like the other clips under a name that includes the picture's content hash.
//!
//! ```no_run
//! # fn main() -> pv_media::Result<()> {
//! use pv_media::testcam::{TestCamera, TestCameraOptions};
//! let cam = TestCamera::start_picture("face.jpg".as_ref(), TestCameraOptions::default())?;
//! println!("{}", cam.url());
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::clip::{
    CLIP_ENCODER_H264, Clip, ClipData, FPS, FRAMES, Feed, HEIGHT, WIDTH, cache_dir,
    read_access_units, run_to_eos,
};
use crate::{Error, Result};

/// The picture is scaled (up or down, aspect ratio kept) to fit this width...
pub const FIT_WIDTH: u32 = 960;
/// ... and this height.
pub const FIT_HEIGHT: u32 = 720;
/// Pixels the picture moves sideways per frame.
pub const DRIFT_STEP: u32 = 4;
/// How far the picture drifts from its leftmost place (half a loop right, half a loop back).
pub const DRIFT: u32 = DRIFT_STEP * FRAMES / 2;
/// The background's luma (mid grey; chroma neutral).
pub const BACKGROUND: u8 = 128;

/// A picture decoded to I420 at its fitted size.
struct Picture {
    width: usize,
    height: usize,
    /// Y plane, then U, then V (no row padding: the width is a multiple of 8).
    data: Vec<u8>,
}

/// The left edge of the picture in frame `i` of a loop (even; a triangle wave).
pub fn picture_left(picture_width: u32, i: u32) -> u32 {
    let base = (WIDTH.saturating_sub(picture_width + DRIFT) / 2) & !1;
    let half = FRAMES / 2;
    let i = i % FRAMES;
    let step = if i < half { i } else { FRAMES - i };
    base + step * DRIFT_STEP
}

/// The fitted size of a `width`×`height` picture: width a multiple of 8, height even.
fn fitted(width: u32, height: u32) -> (u32, u32) {
    let (w, h) = (f64::from(width.max(1)), f64::from(height.max(1)));
    let scale = (f64::from(FIT_WIDTH) / w).min(f64::from(FIT_HEIGHT) / h);
    let fw = ((w * scale).round() as u32 & !7).clamp(8, FIT_WIDTH);
    let fh = ((h * scale).round() as u32 & !1).clamp(2, FIT_HEIGHT);
    (fw, fh)
}

/// FNV-1a of the file's bytes: the cache key (stable across builds and machines).
fn content_hash(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
}

fn read(picture: &Path) -> Result<Vec<u8>> {
    std::fs::read(picture).map_err(|e| Error::io(picture, e))
}

/// The cached MP4 file of the picture clip of `picture`, generated on first use.
pub fn picture_file(picture: &Path) -> Result<PathBuf> {
    let hash = content_hash(&read(picture)?);
    file_for(picture, hash)
}

fn file_for(picture: &Path, hash: u64) -> Result<PathBuf> {
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let path = dir.join(format!("picture-{hash:016x}-{WIDTH}x{HEIGHT}-{FPS}fps-v1.mp4"));
    if path.is_file() {
        return Ok(path);
    }
    let pic = decode(picture)?;
    let tmp = dir.join(format!(".picture-{hash:016x}-{}.tmp.mp4", std::process::id()));
    let launch = format!(
        "appsrc name=src format=time block=true caps=\"video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate={FPS}/1\" ! {CLIP_ENCODER_H264} ! mp4mux ! filesink location=\"{}\"",
        tmp.display()
    );
    tracing::info!(picture = %picture.display(), path = %path.display(), "generating picture test clip");
    let feed: Feed = Box::new(move |src: &gst_app::AppSrc| feed_frames(src, &pic));
    if let Err(err) = run_to_eos(&launch, Some(feed)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err);
    }
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// The picture clip's access units, loaded once per process per picture content.
pub(crate) fn load(picture: &Path) -> Result<Arc<ClipData>> {
    type Loaded = Vec<(u64, Arc<ClipData>)>;
    static CACHE: OnceLock<Mutex<Loaded>> = OnceLock::new();
    let hash = content_hash(&read(picture)?);
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, data)) = cache.iter().find(|(h, _)| *h == hash) {
        return Ok(data.clone());
    }
    let data = Arc::new(read_access_units(Clip::Picture, &file_for(picture, hash)?)?);
    cache.push((hash, data.clone()));
    Ok(data)
}

/// Decode `picture` (any format GStreamer decodes: JPEG, PNG) to one I420 frame of `size`
/// (None: its own size).
fn decode_frame(picture: &Path, size: Option<(u32, u32)>) -> Result<(u32, u32, Vec<u8>)> {
    crate::init()?;
    let make = |factory: &str| {
        gst::ElementFactory::make(factory)
            .build()
            .map_err(|_| Error::Gstreamer(format!("element {factory} is not installed")))
    };
    let pipeline = gst::Pipeline::with_name("testcam-picture");
    let src = make("filesrc")?;
    src.set_property("location", picture.to_string_lossy().as_ref());
    let decode = make("decodebin")?;
    let convert = make("videoconvert")?;
    let scale = make("videoscale")?;
    let filter = make("capsfilter")?;
    let mut caps = gst::Caps::builder("video/x-raw").field("format", "I420");
    if let Some((w, h)) = size {
        caps = caps
            .field("width", w as i32)
            .field("height", h as i32)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1));
    }
    filter.set_property("caps", caps.build());
    let sink = gst_app::AppSink::builder().sync(false).max_buffers(1).build();
    pipeline.add_many([&src, &decode, &convert, &scale, &filter, sink.upcast_ref()])?;
    src.link(&decode)?;
    gst::Element::link_many([&convert, &scale, &filter, sink.upcast_ref()])?;
    let convert_sink = convert.static_pad("sink");
    decode.connect_pad_added(move |_, pad| {
        if let Some(sink) = &convert_sink
            && !sink.is_linked()
        {
            let _ = pad.link(sink);
        }
    });
    pipeline.set_state(gst::State::Playing)?;
    let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(30));
    let error = pipeline.bus().and_then(|b| b.pop_filtered(&[gst::MessageType::Error])).and_then(
        |m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        },
    );
    let _ = pipeline.set_state(gst::State::Null);
    let not_a_picture = |why: String| {
        Error::Gstreamer(format!(
            "{} is not a picture GStreamer can decode: {why}",
            picture.display()
        ))
    };
    let sample = sample.ok_or_else(|| not_a_picture(error.unwrap_or_else(|| "no frame".into())))?;
    let st = sample
        .caps()
        .and_then(|c| c.structure(0))
        .ok_or_else(|| not_a_picture("no caps".into()))?;
    let dim = |n: &str| st.get::<i32>(n).ok().and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
    let (w, h) = (dim("width"), dim("height"));
    let data = sample
        .buffer()
        .and_then(|b| b.map_readable().ok().map(|m| m.as_slice().to_vec()))
        .ok_or_else(|| not_a_picture("no pixels".into()))?;
    Ok((w, h, data))
}

/// Decode `picture` at its fitted size.
fn decode(picture: &Path) -> Result<Picture> {
    let (w, h, _) = decode_frame(picture, None)?;
    let (fw, fh) = fitted(w, h);
    let (w, h, data) = decode_frame(picture, Some((fw, fh)))?;
    let (width, height) = (w as usize, h as usize);
    if (w, h) != (fw, fh) || data.len() < width * height * 3 / 2 {
        return Err(Error::Gstreamer(format!(
            "{}: decoded to {w}x{h} in {} bytes, expected {fw}x{fh}",
            picture.display(),
            data.len()
        )));
    }
    Ok(Picture { width, height, data })
}

/// Push one loop of frames: the picture on grey at [`picture_left`], vertically centred.
fn feed_frames(src: &gst_app::AppSrc, pic: &Picture) {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let (cw, ch) = (w / 2, h / 2);
    let mut background = vec![BACKGROUND; w * h];
    background.resize(w * h * 3 / 2, 128);
    let top = ((h - pic.height.min(h)) / 2) & !1;
    let (py, pu) = (pic.width * pic.height, pic.width * pic.height / 4);
    let frame = gst::ClockTime::from_nseconds(1_000_000_000 / u64::from(FPS));
    for i in 0..FRAMES {
        let left = picture_left(pic.width as u32, i) as usize;
        let mut data = background.clone();
        for y in 0..pic.height.min(h - top) {
            let row = &pic.data[y * pic.width..(y + 1) * pic.width];
            let at = (top + y) * w + left;
            data[at..at + pic.width].copy_from_slice(row);
        }
        for plane in 0..2 {
            let (src_base, dst_base) = (py + plane * pu, w * h + plane * cw * ch);
            let pw = pic.width / 2;
            for y in 0..(pic.height / 2).min(ch - top / 2) {
                let row = &pic.data[src_base + y * pw..src_base + (y + 1) * pw];
                let at = dst_base + (top / 2 + y) * cw + left / 2;
                data[at..at + pw].copy_from_slice(row);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_fit_the_box_and_drift_within_the_frame() {
        assert_eq!(fitted(910, 1137), (576, 720));
        assert_eq!(fitted(4000, 1000), (960, 240));
        assert_eq!(fitted(100, 100), (720, 720), "small pictures are scaled up");
        for width in [8, 576, 960] {
            let lefts: Vec<u32> = (0..FRAMES).map(|i| picture_left(width, i)).collect();
            assert!(lefts.iter().all(|l| l % 2 == 0 && l + width <= WIDTH), "{width}");
            assert_eq!(lefts.iter().max().unwrap_or(&0) - lefts.iter().min().unwrap_or(&0), DRIFT);
            assert_eq!(picture_left(width, FRAMES), lefts[0], "the loop is seamless");
        }
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
    }
}
