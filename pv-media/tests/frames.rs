//! A frame sampler decodes a tap fed by a real (simulated) camera: frames at about the asked
//! rate and size with increasing wall-clock times, across camera restarts, for H.264 and H.265,
//! and a picture camera shows its picture.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use pv_core::SystemClock;
use pv_media::frames::{FrameSampler, RgbFrame, SamplerConfig};
use pv_media::live::pull::{LivePull, PullConfig};
use pv_media::tap::StreamTap;
use pv_media::testcam::{Clip, TestCamera, TestCameraOptions, picture};
use tokio::sync::mpsc::Receiver;

fn clock() -> Arc<SystemClock> {
    Arc::new(SystemClock::new())
}

/// The next frame within `limit`.
async fn next(rx: &mut Receiver<RgbFrame>, limit: Duration) -> RgbFrame {
    tokio::time::timeout(limit, rx.recv())
        .await
        .expect("no frame in time")
        .expect("the sampler ended")
}

/// Every frame received during `span`.
async fn during(rx: &mut Receiver<RgbFrame>, span: Duration) -> Vec<RgbFrame> {
    let end = tokio::time::Instant::now() + span;
    let mut frames = Vec::new();
    while let Ok(Some(frame)) = tokio::time::timeout_at(end, rx.recv()).await {
        frames.push(frame);
    }
    frames
}

fn check_frames(frames: &[RgbFrame], width: u32, height: u32) {
    for f in frames {
        assert_eq!((f.width, f.height), (width, height));
        assert_eq!(f.data.len(), (width * height * 3) as usize);
    }
    for pair in frames.windows(2) {
        assert!(pair[1].at > pair[0].at, "frame times increase: {pair:?}");
    }
}

/// Frames per second of the frames' own times.
fn rate(frames: &[RgbFrame]) -> f64 {
    let span = (frames[frames.len() - 1].at - frames[0].at).num_milliseconds() as f64 / 1000.0;
    (frames.len() - 1) as f64 / span
}

async fn stop_promptly(sampler: FrameSampler, mut rx: Receiver<RgbFrame>) {
    let started = Instant::now();
    sampler.stop().await;
    assert!(started.elapsed() < Duration::from_secs(2), "stop took {:?}", started.elapsed());
    while rx.try_recv().is_ok() {}
    assert!(rx.recv().await.is_none(), "the channel closes when the sampler stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_come_at_the_asked_rate_and_size_and_follow_a_camera_restart() {
    let mut cam = TestCamera::start(Clip::Moving).unwrap();
    let tap = StreamTap::new();
    let pull = LivePull::start(PullConfig::new(cam.url()), tap.clone()).unwrap();
    let config = SamplerConfig { fps: 3, max_width: 320 };
    let (sampler, mut rx) = FrameSampler::start(&tap, config, clock()).unwrap();

    let first = next(&mut rx, Duration::from_secs(20)).await;
    let lag = (Utc::now() - first.at).num_milliseconds();
    assert!((-200..3000).contains(&lag), "frame time {} is {lag} ms before now", first.at);
    let frames = during(&mut rx, Duration::from_secs(5)).await;
    check_frames(&frames, 320, 180);
    assert!((10..=20).contains(&frames.len()), "{} frames in 5 s at 3 fps", frames.len());
    let r = rate(&frames);
    assert!((2.4..=3.6).contains(&r), "{r:.2} frames per second of stream time");
    assert!(frames.windows(2).any(|p| p[0].data != p[1].data), "the ball moves");

    // The camera goes away and comes back: a new generation, a new pipeline, frames again.
    let generation = tap.info().generation;
    cam.stop();
    let gone = Instant::now();
    while tap.info().live {
        assert!(gone.elapsed() < Duration::from_secs(20), "the pull did not notice");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cam.restart().unwrap();
    let back = Utc::now();
    loop {
        let frame = next(&mut rx, Duration::from_secs(40)).await;
        if frame.at > back {
            assert_eq!((frame.width, frame.height), (320, 180));
            break;
        }
    }
    assert!(tap.info().generation > generation);
    let frames = during(&mut rx, Duration::from_secs(3)).await;
    check_frames(&frames, 320, 180);
    assert!(frames.len() >= 5, "{} frames in 3 s after the restart", frames.len());

    stop_promptly(sampler, rx).await;
    pull.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_is_sampled_at_the_default_size() {
    let cam = TestCamera::start(Clip::MovingH265).unwrap();
    let tap = StreamTap::new();
    let pull = LivePull::start(PullConfig::new(cam.url()), tap.clone()).unwrap();
    let (sampler, mut rx) = FrameSampler::start(&tap, SamplerConfig::default(), clock()).unwrap();
    next(&mut rx, Duration::from_secs(20)).await;
    let frames = during(&mut rx, Duration::from_secs(3)).await;
    check_frames(&frames, 640, 360);
    assert!((4..=8).contains(&frames.len()), "{} frames in 3 s at 2 fps", frames.len());
    stop_promptly(sampler, rx).await;
    pull.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampler_of_an_idle_tap_stops_at_once_and_one_of_a_dropped_tap_ends() {
    let tap = StreamTap::new();
    let (sampler, rx) = FrameSampler::start(&tap, SamplerConfig::default(), clock()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_promptly(sampler, rx).await;

    let (_sampler, mut rx) = FrameSampler::start(&tap, SamplerConfig::default(), clock()).unwrap();
    drop(tap);
    let end = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
    assert!(matches!(end, Ok(None)), "the channel closes when the tap is gone");

    let bad = SamplerConfig { fps: 30, max_width: 640 };
    assert!(FrameSampler::start(&StreamTap::new(), bad, clock()).is_err());
}

fn face_image(name: &str) -> PathBuf {
    let dir = std::env::var_os("PV_FACE_IMAGES").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME"))
            .join(".cache/pentavision/face-test-images")
    });
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run bins/face-test-images.sh (or set PV_FACE_IMAGES)",
        path.display()
    );
    path
}

/// Mean RGB and the standard deviation of luma over a `side`-pixel square at the centre.
fn centre_stats(f: &RgbFrame, side: u32) -> ([f64; 3], f64) {
    let (x0, y0) = ((f.width - side) / 2, (f.height - side) / 2);
    let mut sum = [0f64; 3];
    let mut lumas = Vec::new();
    for y in y0..y0 + side {
        for x in x0..x0 + side {
            let i = ((y * f.width + x) * 3) as usize;
            let px = [f.data[i], f.data[i + 1], f.data[i + 2]].map(f64::from);
            for c in 0..3 {
                sum[c] += px[c];
            }
            lumas.push(0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]);
        }
    }
    let n = lumas.len() as f64;
    let mean_luma = lumas.iter().sum::<f64>() / n;
    let var = lumas.iter().map(|l| (l - mean_luma).powi(2)).sum::<f64>() / n;
    (sum.map(|s| s / n), var.sqrt())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picture_camera_shows_its_picture_drifting_on_grey() {
    let obama = face_image("obama.jpg");
    let file = picture::picture_file(&obama).unwrap();
    assert_eq!(picture::picture_file(&obama).unwrap(), file, "the clip is cached");
    assert!(file.to_string_lossy().contains("picture-"), "{}", file.display());

    let cam = TestCamera::start_picture(&obama, TestCameraOptions::default()).unwrap();
    assert_eq!(cam.clip(), Clip::Picture);
    assert_eq!(cam.picture(), Some(obama.as_path()));
    let tap = StreamTap::new();
    let pull = LivePull::start(PullConfig::new(cam.url()), tap.clone()).unwrap();
    let config = SamplerConfig { fps: 2, max_width: 640 };
    let (sampler, mut rx) = FrameSampler::start(&tap, config, clock()).unwrap();
    let first = next(&mut rx, Duration::from_secs(30)).await;
    assert_eq!((first.width, first.height), (640, 360));

    // The picture is in the middle: not the flat grey background.
    let (mean, spread) = centre_stats(&first, 80);
    let off_grey = mean.iter().map(|c| (c - 128.0).abs()).fold(0.0, f64::max);
    assert!(
        spread > 8.0 || off_grey > 20.0,
        "centre {mean:?} ± {spread:.1} looks like the grey background"
    );
    // The corners are the background.
    let corner = &first.data[..3];
    assert!(corner.iter().all(|c| c.abs_diff(128) <= 6), "corner {corner:?} is not grey");

    // It drifts: the centre changes within a second or two.
    let later = during(&mut rx, Duration::from_secs(2)).await;
    assert!(later.iter().any(|f| f.data != first.data), "the picture moves");

    stop_promptly(sampler, rx).await;
    pull.stop().await;
}
