//! A simulated camera that stamps the wall-clock time into its picture, for glass-to-glass
//! latency measurements: each frame is painted when it is "captured" with the current time
//! as a barcode, encoded live (x264, zero-latency tuning, no B-frames, 1 s GOP) and served over
//! RTSP like any [`TestCamera`](super::TestCamera).
//!
//! The barcode: the top [`BAND_HEIGHT`] rows hold [`BITS`] blocks of [`BIT_WIDTH`] pixels, most
//! significant bit first, white for 1 and black for 0, encoding the Unix time in milliseconds
//! modulo 2^[`BITS`]. A reader samples the middle of each block and thresholds at mid-grey.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

use crate::{Error, Result};

/// Bits of the time stamp.
pub const BITS: u32 = 40;
/// Width of one bit's block in pixels.
pub const BIT_WIDTH: u32 = 16;
/// Height of the barcode band in pixels.
pub const BAND_HEIGHT: u32 = 48;
/// Picture size.
pub const WIDTH: u32 = BITS * BIT_WIDTH;
/// Picture height.
pub const HEIGHT: u32 = 360;
/// Frames per second.
pub const FPS: u32 = 30;

/// A running clock camera. Dropping it stops it.
#[derive(Debug)]
pub struct ClockCamera {
    port: u16,
    stop: Arc<AtomicBool>,
    main_loop: glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The time stamp painted into a frame made now.
pub fn stamp_now() -> u64 {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    ms & ((1 << BITS) - 1)
}

/// An I420 frame carrying `stamp`.
pub fn paint(stamp: u64, frame_no: u64) -> Vec<u8> {
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut data = vec![128u8; w * h * 3 / 2];
    for y in 0..BAND_HEIGHT as usize {
        for bit in 0..BITS as usize {
            let on = (stamp >> (BITS as usize - 1 - bit)) & 1 == 1;
            let x0 = bit * BIT_WIDTH as usize;
            data[y * w + x0..y * w + x0 + BIT_WIDTH as usize].fill(if on { 235 } else { 16 });
        }
    }
    // Something that moves below the band, so the encoder has real work.
    let x = (frame_no as usize * 8) % (w - 40);
    for y in 200..240 {
        data[y * w + x..y * w + x + 40].fill(235);
    }
    data
}

impl ClockCamera {
    /// Serve on a free port on 127.0.0.1.
    pub fn start() -> Result<ClockCamera> {
        crate::init()?;
        let stop = Arc::new(AtomicBool::new(false));
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service("0");
        let mounts = server
            .mount_points()
            .ok_or_else(|| Error::Gstreamer("RTSP server has no mount points".into()))?;
        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_launch(&format!(
            "( appsrc name=src is-live=true format=time do-timestamp=true \
               caps=video/x-raw,format=I420,width={WIDTH},height={HEIGHT},framerate={FPS}/1 \
             ! x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max={FPS} bitrate=1500 \
             ! video/x-h264,profile=constrained-baseline ! h264parse \
             ! rtph264pay name=pay0 pt=96 config-interval=1 )"
        ));
        factory.set_shared(true);
        let feeder_stop = stop.clone();
        factory.connect_media_configure(move |_, media| {
            let Some(src) = media
                .element()
                .downcast_ref::<gst::Bin>()
                .and_then(|b| b.by_name("src"))
                .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            else {
                return;
            };
            let stop = feeder_stop.clone();
            let _ = std::thread::Builder::new()
                .name("clockcam-feed".into())
                .spawn(move || feed(&src, &stop));
        });
        mounts.add_factory(super::MOUNT, factory);
        let context = glib::MainContext::new();
        server.attach(Some(&context))?;
        let port = u16::try_from(server.bound_port())
            .map_err(|_| Error::Gstreamer("RTSP server did not bind".into()))?;
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let loop_ = main_loop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("clockcam-{port}"))
            .spawn(move || {
                let _server = server;
                let _ = context.with_thread_default(|| loop_.run());
            })
            .map_err(|e| Error::Gstreamer(format!("cannot start the clock camera: {e}")))?;
        Ok(ClockCamera { port, stop, main_loop, thread: Some(thread) })
    }

    /// `rtsp://127.0.0.1:PORT/cam`.
    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}{}", self.port, super::MOUNT)
    }
}

impl Drop for ClockCamera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn feed(src: &gst_app::AppSrc, stop: &AtomicBool) {
    let wait_until = Instant::now() + Duration::from_secs(30);
    while src.current_state() != gst::State::Playing && Instant::now() < wait_until {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let frame = Duration::from_secs(1) / FPS;
    let mut due = Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        due += frame;
        let buffer = gst::Buffer::from_mut_slice(paint(stamp_now(), n));
        n += 1;
        if src.push_buffer(buffer).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_reads_back_from_the_band() {
        let stamp = 0x12_3456_789a & ((1 << BITS) - 1);
        let frame = paint(stamp, 3);
        let mut read = 0u64;
        for bit in 0..BITS {
            let x = bit * BIT_WIDTH + BIT_WIDTH / 2;
            let y = BAND_HEIGHT / 2;
            read = (read << 1) | u64::from(frame[(y * WIDTH + x) as usize] > 128);
        }
        assert_eq!(read, stamp);
    }
}
