//! Bad cameras: unreachable, not RTSP, wrong credentials, garbage instead of H.264 — each gets
//! a clear status and no segments, while a good camera's recorder beside them keeps going.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use pv_core::ErrorKind;
use pv_media::record::{Backend, RecorderEvent, RecorderStatus};
use pv_media::testcam::{Clip, TestCamera, TestCameraOptions};

use crate::support::{Rec, check_segments, config};

/// A port nothing listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A TCP server that answers every connection with an HTTP 404.
fn http_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 1024];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    });
    port
}

fn reconnecting_reason(rec: &Rec) -> Option<String> {
    match rec.status().status {
        RecorderStatus::Reconnecting { reason, attempt } if attempt >= 1 => Some(reason),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cameras_fail_clearly_and_leave_a_good_one_recording() {
    let good_cam = TestCamera::start(Clip::Static).unwrap();
    let locked = TestCamera::start_with(
        Clip::Moving,
        TestCameraOptions {
            credentials: Some(("viewer".into(), "s3cret".into())),
            ..TestCameraOptions::default()
        },
    )
    .unwrap();
    let garbage_cam = TestCamera::start(Clip::Garbage).unwrap();
    let data = tempfile::tempdir().unwrap();

    let mut good = Rec::start(config(10, &good_cam.url(), data.path()));
    let mut unreachable =
        Rec::start(config(11, &format!("rtsp://127.0.0.1:{}/cam", dead_port()), data.path()));
    let mut http =
        Rec::start(config(12, &format!("rtsp://127.0.0.1:{}/cam", http_port()), data.path()));
    let mut wrong = config(13, &locked.url(), data.path());
    wrong.username = Some("viewer".into());
    wrong.password = Some("wrong".into());
    let mut wrong = Rec::start(wrong);
    let mut right = config(14, &locked.url(), data.path());
    right.username = Some("viewer".into());
    right.password = Some("s3cret".into());
    let mut right = Rec::start(right);
    let mut garbage = Rec::start(config(15, &garbage_cam.url(), data.path()));

    // The garbage camera takes longest: the built-in recorder's start timeout, GStreamer's,
    // then ffmpeg's.
    let done = garbage
        .wait_until(Duration::from_secs(45), |r| {
            r.status().backend == Backend::Ffmpeg && reconnecting_reason(r).is_some()
        })
        .await;
    assert!(done, "garbage: {:?}", garbage.statuses);
    for rec in [&mut good, &mut right] {
        assert!(rec.wait_until(Duration::from_secs(10), |r| r.segments().len() >= 2).await);
        assert_eq!(rec.status().status, RecorderStatus::Streaming);
    }
    for (name, rec) in
        [("unreachable", &mut unreachable), ("http", &mut http), ("wrong", &mut wrong)]
    {
        assert!(rec.wait_until(Duration::from_secs(5), |r| reconnecting_reason(r).is_some()).await);
        let reason = reconnecting_reason(rec).unwrap();
        eprintln!("{name}: {reason}");
        assert!(!reason.is_empty());
        assert_eq!(rec.status().backend, Backend::Native, "{name}: no fallback for {reason}");
    }
    let wrong_reason = reconnecting_reason(&wrong).unwrap().to_lowercase();
    assert!(wrong_reason.contains("refused the user name or password"), "{wrong_reason}");
    for (name, rec) in [("unreachable", &unreachable), ("http", &http), ("wrong", &wrong)] {
        let reason = reconnecting_reason(rec).unwrap();
        assert!(!reason.contains("rtspsrc") && !reason.contains("s3cret"), "{name}: {reason}");
    }
    eprintln!("garbage: {}", reconnecting_reason(&garbage).unwrap());

    for rec in [&mut good, &mut unreachable, &mut http, &mut wrong, &mut right, &mut garbage] {
        rec.stop().await;
    }
    check_segments(&good.segments(), "h264");
    check_segments(&right.segments(), "h264");
    for rec in [&unreachable, &http, &wrong, &garbage] {
        assert!(rec.segments().is_empty(), "{:?}", rec.events);
        assert!(rec.events.iter().any(|e| matches!(e, RecorderEvent::GapStarted { .. })));
        assert_eq!(rec.status().status, RecorderStatus::Stopped);
    }
    // Nothing was left behind by the failed cameras.
    for id in [11, 12, 13, 15] {
        let dir = data.path().join(format!("cameras/id-{id}"));
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(files.is_empty(), "{id}: {files:?}");
    }
}

#[test]
fn unusable_settings_are_refused_up_front() {
    let data = tempfile::tempdir().unwrap();
    for url in ["http://127.0.0.1/cam", "rtsp://", "file:///etc/passwd"] {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let err = pv_media::record::Recorder::start(
            config(20, url, data.path()),
            std::sync::Arc::new(pv_core::SystemClock::new()),
            tx,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{url}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorder_with_no_usable_backend_reports_failed() {
    let data = tempfile::tempdir().unwrap();
    let mut c = config(21, "rtsp://127.0.0.1:9/cam", data.path());
    c.backend = Backend::Ffmpeg;
    c.ffmpeg_program = "/nonexistent/ffmpeg".into();
    let mut rec = Rec::start(c);
    let failed = rec
        .wait_until(Duration::from_secs(5), |r| {
            matches!(r.status().status, RecorderStatus::Failed { .. })
        })
        .await;
    assert!(failed, "{:?}", rec.statuses);
    let reason = rec.status().status.reason().unwrap().to_owned();
    assert!(reason.contains("/nonexistent/ffmpeg"), "{reason}");
    assert_eq!(rec.status().status.as_str(), "failed");
    rec.stop().await;
    assert_eq!(rec.status().status, RecorderStatus::Stopped);
}
