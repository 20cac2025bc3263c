//! Recording from a simulated camera: segment length, ffprobe validity, camera loss. Each
//! scenario runs the built-in backend (the default) and the GStreamer one side by side.

use std::time::Duration;

use pv_media::record::{Backend, EndReason, RecorderEvent, RecorderStatus, Transport};
use pv_media::testcam::{Clip, TestCamera};

use crate::support::{Rec, check_segments, config, stream_codecs};

/// The backends every scenario runs.
const BACKENDS: [Backend; 2] = [Backend::Native, Backend::Gstreamer];

/// One recorder per backend on the same camera, camera ids from `first`.
fn start_each(first: i64, url: &str, data: &std::path::Path) -> Vec<Rec> {
    BACKENDS
        .iter()
        .zip(first..)
        .map(|(backend, id)| {
            let mut c = config(id, url, data);
            c.backend = *backend;
            Rec::start(c)
        })
        .collect()
}

/// Every segment of `rec` was written by `backend`, which records the camera now.
fn by(rec: &Rec, backend: Backend) {
    assert_eq!(rec.status().backend, backend, "{:?}", rec.statuses);
    assert!(rec.segments().iter().all(|s| s.backend == backend), "{:?}", rec.segments());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_h264_segments_of_the_target_length() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let data = tempfile::tempdir().unwrap();
    for (mut rec, backend) in start_each(1, &cam.url(), data.path()).into_iter().zip(BACKENDS) {
        let got = rec.wait_until(Duration::from_secs(25), |r| r.segments().len() >= 3).await;
        assert!(
            got,
            "{backend}: 3 segments expected, events {:?} statuses {:?}",
            rec.events, rec.statuses
        );
        assert_eq!(rec.status().status, RecorderStatus::Streaming);
        rec.stop().await;
        by(&rec, backend);
        let segs = rec.segments();
        check_segments(&segs, "h264");
        assert!(segs.iter().take(3).all(|s| s.end_reason == EndReason::Duration), "{segs:?}");
        assert_eq!(segs.last().unwrap().end_reason, EndReason::Shutdown);
        for w in segs.windows(2) {
            let gap = (w[1].started_at - w[0].ended_at).num_milliseconds().abs();
            assert!(gap < 200, "{backend}: consecutive segments are contiguous: {gap} ms");
        }
        // Segment times are the machine's: the first started about when recording began.
        assert!(rec.events.iter().all(|e| !matches!(e, RecorderEvent::GapStarted { .. })));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_h265_without_transcoding() {
    let cam = TestCamera::start(Clip::MovingH265).unwrap();
    let data = tempfile::tempdir().unwrap();
    for (mut rec, backend) in start_each(2, &cam.url(), data.path()).into_iter().zip(BACKENDS) {
        let got = rec.wait_until(Duration::from_secs(25), |r| r.segments().len() >= 2).await;
        assert!(
            got,
            "{backend}: 2 segments expected, events {:?} statuses {:?}",
            rec.events, rec.statuses
        );
        rec.stop().await;
        by(&rec, backend);
        check_segments(&rec.segments(), "h265");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_loss_opens_a_gap_and_recording_resumes() {
    let mut cam = TestCamera::start(Clip::Moving).unwrap();
    let port = cam.port();
    let data = tempfile::tempdir().unwrap();
    let mut recs = start_each(3, &cam.url(), data.path());
    for rec in &mut recs {
        assert!(rec.wait_until(Duration::from_secs(20), |r| !r.segments().is_empty()).await);
    }

    cam.stop();
    let mut before = Vec::new();
    for rec in &mut recs {
        let lost = rec
            .wait_until(Duration::from_secs(8), |r| {
                matches!(r.status().status, RecorderStatus::Reconnecting { .. })
            })
            .await;
        assert!(lost, "camera loss must be noticed: {:?}", rec.statuses);
        before.push(rec.segments().len());
    }
    tokio::time::sleep(Duration::from_secs(5)).await;

    cam.restart().unwrap();
    assert_eq!(cam.port(), port, "the camera comes back on the same port");
    let back = std::time::Instant::now();
    for (rec, backend) in recs.iter_mut().zip(BACKENDS) {
        let resumed = rec
            .wait_until(Duration::from_secs(10).saturating_sub(back.elapsed()), |r| {
                r.events.iter().any(|e| matches!(e, RecorderEvent::GapEnded { .. }))
            })
            .await;
        assert!(
            resumed,
            "{backend}: recording resumes within 10 s: {:?} {:?}",
            rec.statuses, rec.events
        );
    }
    let resume_s = back.elapsed().as_secs_f64();
    for ((mut rec, backend), before) in recs.into_iter().zip(BACKENDS).zip(before) {
        assert!(
            rec.wait_until(Duration::from_secs(10), |r| r.segments().len() > before).await,
            "{backend}: a segment after the gap"
        );
        rec.stop().await;
        by(&rec, backend);
        check_gap(&rec, backend, resume_s);
    }
}

fn check_gap(rec: &Rec, backend: Backend, resume_s: f64) {
    let gaps: Vec<_> = rec
        .events
        .iter()
        .filter_map(|e| match e {
            RecorderEvent::GapStarted { at, reason, .. } => Some((*at, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(gaps.len(), 1, "one gap: {:?}", rec.events);
    let ended = rec.events.iter().find_map(|e| match e {
        RecorderEvent::GapEnded { started_at, ended_at, .. } => Some((*started_at, *ended_at)),
        _ => None,
    });
    let (started_at, ended_at) = ended.unwrap();
    assert_eq!(started_at, gaps[0].0);
    let gap_s = (ended_at - started_at).num_milliseconds() as f64 / 1000.0;
    assert!((4.0..20.0).contains(&gap_s), "gap of {gap_s} s");
    let segs = rec.segments();
    // The camera closed the connection: its stream ended (EOS) or broke off (error).
    let cut = segs.iter().filter(|s| matches!(s.end_reason, EndReason::Eos | EndReason::Error));
    assert_eq!(cut.count(), 1, "{segs:?}");
    // Everything recorded before and after the loss is intact.
    check_segments(&segs, "h264");
    eprintln!(
        "{backend}: camera loss: resumed within {resume_s:.1} s of the camera's return, gap {gap_s:.1} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_transport_and_the_ffmpeg_backend_record_too() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut recs: Vec<(Rec, Backend)> = Vec::new();
    for (id, backend) in [(4, Backend::Native), (7, Backend::Gstreamer)] {
        let mut udp = config(id, &cam.url(), data.path());
        udp.transport = Transport::Udp;
        udp.backend = backend;
        recs.push((Rec::start(udp), backend));
    }
    let mut ff = config(5, &cam.url(), data.path());
    ff.backend = Backend::Ffmpeg;
    recs.push((Rec::start(ff), Backend::Ffmpeg));
    for (rec, backend) in &mut recs {
        let got = rec.wait_until(Duration::from_secs(20), |r| r.segments().len() >= 2).await;
        assert!(got, "{backend}: events {:?} statuses {:?}", rec.events, rec.statuses);
        assert_eq!(rec.status().status, RecorderStatus::Streaming);
    }
    for (rec, backend) in &mut recs {
        rec.stop().await;
        by(rec, *backend);
        check_segments(&rec.segments(), "h264");
        assert_eq!(rec.segments().last().unwrap().end_reason, EndReason::Shutdown);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aac_audio_is_passed_through() {
    let cam = TestCamera::start(Clip::MovingAac).unwrap();
    let data = tempfile::tempdir().unwrap();
    for (mut rec, backend) in start_each(8, &cam.url(), data.path()).into_iter().zip(BACKENDS) {
        let got = rec.wait_until(Duration::from_secs(20), |r| r.segments().len() >= 2).await;
        assert!(got, "{backend}: events {:?} statuses {:?}", rec.events, rec.statuses);
        rec.stop().await;
        by(&rec, backend);
        let segs = rec.segments();
        check_segments(&segs, "h264");
        for s in &segs {
            assert_eq!(s.audio_codec.as_deref(), Some("aac"), "{backend}: {s:?}");
            assert_eq!(stream_codecs(&s.path), ["h264", "aac"], "{backend}: {s:?}");
        }
    }
}
