//! A live-only pull feeds a tap from a camera without recording, reconnects after the camera
//! comes back, and leaves the camera when stopped.

use std::time::{Duration, Instant};

use pv_media::live::pull::{LivePull, PullConfig};
use pv_media::tap::{StreamTap, VideoCodec};
use pv_media::testcam::{Clip, TestCamera};

async fn until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_feeds_the_tap_without_recording_and_follows_the_camera() {
    let mut cam = TestCamera::start(Clip::Moving).unwrap();
    let tap = StreamTap::new();
    let config = PullConfig::new(cam.url());
    let pull = LivePull::start(config, tap.clone()).unwrap();
    until("the first key frame", Duration::from_secs(15), || {
        tap.info().is_ready() && tap.key_frame().is_some()
    })
    .await;
    assert_eq!(tap.info().video_codec(), Some(VideoCodec::H264));
    assert_eq!(tap.info().dimensions(), Some((1280, 720)));
    assert_eq!(cam.sessions(), 1);
    let mut sub = tap.subscribe();
    let first = sub.recv().await.unwrap();
    assert!(first.is_key_frame(), "a new consumer starts at a key frame");

    // The camera goes away and comes back: a new generation on the same tap.
    let generation = tap.info().generation;
    cam.stop();
    until("the pull to notice", Duration::from_secs(15), || !tap.info().live).await;
    cam.restart().unwrap();
    until("the pull to reconnect", Duration::from_secs(30), || {
        tap.info().live && tap.info().generation > generation && tap.info().is_ready()
    })
    .await;

    pull.stop().await;
    assert!(!tap.info().live);
    until("the camera to see the session go", Duration::from_secs(10), || cam.sessions() == 0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_segments_are_cut_at_key_frames_from_a_tap() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let tap = StreamTap::new();
    let config = PullConfig::new(cam.url());
    let segmenter = pv_media::hls::Segmenter::start(&tap);
    let pull = LivePull::start(config, tap.clone()).unwrap();
    until("three segments", Duration::from_secs(20), || segmenter.len() >= 3).await;
    let list = segmenter.playlist("p/").unwrap();
    assert!(list.contains("#EXT-X-MAP:URI=\"p/init.mp4\""), "{list}");
    let first: u64 = list
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .unwrap()
        .parse()
        .unwrap();
    let seg = segmenter.segment(first).unwrap();
    assert!(seg.duration >= pv_media::hls::SEGMENT_MIN, "{list}");
    assert!(seg.duration < Duration::from_millis(2500), "one GOP per segment: {list}");
    assert!(segmenter.init().is_some());
    pull.stop().await;
    segmenter.stop();
}
