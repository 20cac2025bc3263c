//! The simulated camera itself: what it serves, stop and restart on the same port.

use std::time::{Duration, Instant};

use pv_media::testcam::{Clip, TestCamera, TestCameraOptions};

use crate::support::{ffprobe, init_tracing};

#[test]
fn serves_the_clip_and_comes_back_on_the_same_port() {
    init_tracing();
    let mut cam = TestCamera::start(Clip::Static).unwrap();
    let probe = ffprobe(&cam.url()).unwrap();
    assert_eq!((probe.codec.as_str(), probe.width, probe.height), ("h264", 1280, 720));

    let port = cam.port();
    cam.stop();
    assert!(!cam.is_running());
    let t = Instant::now();
    assert!(ffprobe(&cam.url()).is_err(), "a stopped camera is gone");
    assert!(t.elapsed() < Duration::from_secs(5), "refused at once");

    cam.restart().unwrap();
    assert_eq!(cam.port(), port);
    assert_eq!(ffprobe(&cam.url()).unwrap().codec, "h264");
}

#[test]
fn h265_and_credentials() {
    init_tracing();
    let cam = TestCamera::start(Clip::MovingH265).unwrap();
    assert_eq!(ffprobe(&cam.url()).unwrap().codec, "hevc");

    let options = TestCameraOptions {
        credentials: Some(("viewer".into(), "s3cret".into())),
        ..TestCameraOptions::default()
    };
    let locked = TestCamera::start_with(Clip::Moving, options).unwrap();
    let err = ffprobe(&locked.url()).unwrap_err();
    assert!(err.contains("401") || err.to_lowercase().contains("unauthorized"), "{err}");
    assert_eq!(ffprobe(&locked.url_with_credentials()).unwrap().codec, "h264");
}
