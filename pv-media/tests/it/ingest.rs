//! The built-in recording ingest against simulated cameras: G.711 audio kept (as AAC), digest and
//! basic logins, RTSPS handed to GStreamer with the reason in the status, segment times on the
//! machine's clock.

use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use pv_media::record::{Backend, EndReason, RecorderStatus};
use pv_media::testcam::{Clip, TestCamera, TestCameraOptions};

use crate::support::{Rec, check_segments, config, stream_codecs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g711_audio_is_kept_by_the_built_in_recorder() {
    let cam = TestCamera::start_with(
        Clip::Moving,
        TestCameraOptions { g711: true, ..Default::default() },
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut native = Rec::start(config(40, &cam.url(), data.path()));
    let mut gst = config(41, &cam.url(), data.path());
    gst.backend = Backend::Gstreamer;
    let mut gst = Rec::start(gst);
    for rec in [&mut native, &mut gst] {
        let got = rec.wait_until(Duration::from_secs(20), |r| r.segments().len() >= 2).await;
        assert!(got, "events {:?} statuses {:?}", rec.events, rec.statuses);
        rec.stop().await;
        check_segments(&rec.segments(), "h264");
    }
    for s in native.segments() {
        assert_eq!(s.backend, Backend::Native);
        // Browsers play AAC, not G.711: the audio is transcoded, the video untouched.
        assert_eq!(stream_codecs(&s.path), ["h264", "aac"], "{s:?}");
        assert_eq!(s.audio_codec.as_deref(), Some("aac"), "{s:?}");
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&s.path)
            .args(["-map", "0:a", "-f", "null", "-"])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "the audio decodes cleanly: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let audio = audio_seconds(&s.path);
        let video = s.duration_ms as f64 / 1000.0;
        assert!((audio - video).abs() < 0.5, "audio {audio} s beside video {video} s");
    }
    // GStreamer cannot put G.711 in MP4 and leaves it out.
    for s in gst.segments() {
        assert_eq!(stream_codecs(&s.path), ["h264"], "{s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_and_basic_logins_record_and_a_wrong_password_is_named() {
    let login = |digest| TestCameraOptions {
        credentials: Some(("viewer".into(), "s3cret".into())),
        digest,
        ..Default::default()
    };
    let digest_cam = TestCamera::start_with(Clip::Moving, login(true)).unwrap();
    let basic_cam = TestCamera::start_with(Clip::Moving, login(false)).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut recs = Vec::new();
    for (id, cam, pass) in
        [(42, &digest_cam, "s3cret"), (43, &basic_cam, "s3cret"), (44, &digest_cam, "wrong")]
    {
        let mut c = config(id, &cam.url(), data.path());
        c.username = Some("viewer".into());
        c.password = Some(pass.into());
        recs.push(Rec::start(c));
    }
    let mut wrong = recs.pop().unwrap();
    for rec in &mut recs {
        let got = rec.wait_until(Duration::from_secs(20), |r| r.segments().len() >= 2).await;
        assert!(got, "events {:?} statuses {:?}", rec.events, rec.statuses);
        assert_eq!(rec.status().backend, Backend::Native);
    }
    let refused = wrong
        .wait_until(Duration::from_secs(10), |r| {
            matches!(r.status().status, RecorderStatus::Reconnecting { .. })
        })
        .await;
    assert!(refused, "{:?}", wrong.statuses);
    let reason = wrong.status().status.reason().unwrap_or_default().to_owned();
    assert!(reason.contains("refused the user name or password"), "{reason}");
    assert!(!reason.contains("wrong") && !reason.contains("s3cret"), "{reason}");
    assert_eq!(
        wrong.status().backend,
        Backend::Native,
        "a wrong password is no reason to fall back"
    );
    for rec in recs.iter_mut().chain([&mut wrong]) {
        rec.stop().await;
    }
    for rec in &recs {
        check_segments(&rec.segments(), "h264");
    }
}

/// Seconds of audio in a file.
fn audio_seconds(path: &std::path::Path) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0", "-show_entries", "stream=duration"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_the_built_in_recorder_refuses_is_recorded_by_gstreamer_and_says_why() {
    let cam = TestCamera::start_with(
        Clip::Moving,
        TestCameraOptions {
            tls: Some(pv_media::testcam::self_signed_certificate().unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(cam.url().starts_with("rtsps://"));
    let data = tempfile::tempdir().unwrap();
    let mut rec = Rec::start(config(45, &cam.url(), data.path()));
    let got = rec.wait_until(Duration::from_secs(30), |r| r.segments().len() >= 2).await;
    assert!(got, "events {:?} statuses {:?}", rec.events, rec.statuses);
    let state = rec.status();
    assert_eq!(state.status, RecorderStatus::Streaming);
    assert_eq!(state.backend, Backend::Gstreamer);
    let why = state.backend_reason.clone().unwrap_or_default();
    assert!(why.starts_with("The built-in recorder could not record this camera"), "{why}");
    assert!(why.contains("TLS"), "{why}");
    rec.stop().await;
    check_segments(&rec.segments(), "h264");
    assert!(rec.segments().iter().all(|s| s.backend == Backend::Gstreamer));
    eprintln!("fallback: {why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_times_follow_the_machine_clock() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let data = tempfile::tempdir().unwrap();
    let begun = Utc::now();
    let mut rec = Rec::start(config(46, &cam.url(), data.path()));
    let got = rec.wait_until(Duration::from_secs(25), |r| r.segments().len() >= 3).await;
    assert!(got, "events {:?} statuses {:?}", rec.events, rec.statuses);
    let seen = Utc::now();
    rec.stop().await;
    let segs = rec.segments();
    let first = segs.first().unwrap();
    let lead = (first.started_at - begun).num_milliseconds();
    assert!((0..3000).contains(&lead), "the first frame is placed {lead} ms after the start");
    let third = segs[2];
    assert_eq!(third.end_reason, EndReason::Duration);
    let behind = (seen - third.ended_at).num_milliseconds();
    assert!(
        (-200..1500).contains(&behind),
        "a finished segment ends {behind} ms before it is reported"
    );
}
