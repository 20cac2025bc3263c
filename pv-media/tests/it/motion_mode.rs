//! Motion watching and motion-mode recording on simulated cameras: the burst clip is recorded
//! around its motion (pre- and post-roll) and nowhere else, a still scene records nothing, and
//! the watcher reports motion on the moving clip only.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pv_core::SystemClock;
use pv_core::ids::CameraId;
use pv_media::RecordingMode;
use pv_media::motion::ZoneSpec;
use pv_media::record::{Backend, EndReason, RecorderConfig, RecorderEvent, RecorderStatus};
use pv_media::testcam::{Clip, TestCamera};
use pv_media::watch::{MotionWatcher, WatcherConfig, WatcherState};
use tokio::sync::{mpsc, watch};

use crate::support::{Rec, check_segments, config, ffprobe_file, init_tracing};

const PRE_ROLL: Duration = Duration::from_secs(2);
const POST_ROLL: Duration = Duration::from_secs(3);
/// One group of pictures of the test clips.
const GOP_MS: i64 = 1000;

fn motion_config(camera: i64, url: &str, data_dir: &Path) -> RecorderConfig {
    let mut c = config(camera, url, data_dir);
    c.mode = RecordingMode::Motion;
    c.pre_roll = PRE_ROLL;
    c.post_roll = POST_ROLL;
    c.motion.end_after = Duration::from_secs(1);
    c
}

fn motion_events(events: &[RecorderEvent]) -> Vec<&RecorderEvent> {
    events
        .iter()
        .filter(|e| {
            matches!(e, RecorderEvent::MotionStarted { .. } | RecorderEvent::MotionEnded { .. })
        })
        .collect()
}

/// Files in a camera directory.
fn files(data: &Path, camera: i64) -> Vec<std::path::PathBuf> {
    let dir = data.join(format!("cameras/id-{camera}"));
    let mut v: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn motion_mode_records_the_motion_with_pre_and_post_roll_and_nothing_else() {
    // The built-in backend and GStreamer's, side by side on one camera.
    let cam = TestCamera::start(Clip::Burst).unwrap();
    let data = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut recs = Vec::new();
    for (camera, backend) in [(30, Backend::Native), (33, Backend::Gstreamer)] {
        let mut c = motion_config(camera, &cam.url(), data.path());
        c.backend = backend;
        recs.push((Rec::start(c), camera, backend));
    }
    for (rec, _, backend) in &mut recs {
        let done = rec
            .wait_until(Duration::from_secs(30), |r| {
                r.segments().iter().any(|s| s.end_reason == EndReason::MotionEnd)
            })
            .await;
        assert!(
            done,
            "{backend}: a motion recording, events {:?} statuses {:?}",
            rec.events, rec.statuses
        );
    }
    let elapsed = started.elapsed();
    for (mut rec, camera, backend) in recs {
        rec.stop().await;
        assert!(rec.segments().iter().all(|s| s.backend == backend), "{:?}", rec.segments());
        eprintln!("{backend}:");
        check_motion_recording(&rec, data.path(), camera, elapsed);
    }
}

fn check_motion_recording(rec: &Rec, data: &Path, camera: i64, elapsed: Duration) {
    let motion = motion_events(&rec.events);
    let (start, end, peak) = match motion.as_slice() {
        [
            RecorderEvent::MotionStarted { at, score, .. },
            RecorderEvent::MotionEnded { started_at, ended_at, peak_score, .. },
        ] => {
            assert_eq!(at, started_at);
            assert!(peak_score >= score && *score > 0.01, "{motion:?}");
            (*at, *ended_at, *peak_score)
        }
        other => panic!("one motion event expected: {other:?}"),
    };
    let moving = (end - start).num_milliseconds();
    assert!((2500..=3700).contains(&moving), "the block moves for 3 s: {moving} ms");

    let segs = rec.segments();
    check_segments(&segs, "h264");
    assert!(segs.iter().all(|s| s.motion), "{segs:?}");
    assert_eq!(segs.last().unwrap().end_reason, EndReason::MotionEnd);
    for w in segs.windows(2) {
        let gap = (w[1].started_at - w[0].ended_at).num_milliseconds().abs();
        assert!(gap < 200, "one recording in consecutive segments: {gap} ms");
        assert_eq!(w[0].end_reason, EndReason::Duration);
    }
    let ms = |a: DateTime<Utc>, b: DateTime<Utc>| (a - b).num_milliseconds();
    let want_start = start - chrono::Duration::from_std(PRE_ROLL).unwrap();
    let want_end = end + chrono::Duration::from_std(POST_ROLL).unwrap();
    let first = segs.first().unwrap();
    let last = segs.last().unwrap();
    let early = ms(want_start, first.started_at);
    let late = ms(last.ended_at, want_end);
    eprintln!(
        "motion {moving} ms (peak {peak:.3}); recorded {} segment(s), start {early} ms before \
         motion − pre-roll, end {late} ms after motion + post-roll; test took {elapsed:?}",
        segs.len()
    );
    assert!((-250..=GOP_MS + 250).contains(&early), "starts within one GOP before: {early} ms");
    assert!(late.abs() <= GOP_MS, "ends within one GOP: {late} ms");

    // Nothing else was written: the files on disk are the segments.
    let mut recorded: Vec<_> = segs.iter().map(|s| s.path.clone()).collect();
    recorded.sort();
    assert_eq!(files(data, camera), recorded);
    for s in &segs {
        let probe = ffprobe_file(&s.path).unwrap();
        assert_eq!((probe.codec.as_str(), probe.width, probe.height), ("h264", 1280, 720));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_still_scene_records_nothing_and_a_stop_during_motion_finalises_the_recording() {
    let still_cam = TestCamera::start(Clip::Static).unwrap();
    let moving_cam = TestCamera::start(Clip::Moving).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut still = Rec::start(motion_config(31, &still_cam.url(), data.path()));
    // The ball is small: most sensitive, so it moves all the time.
    let mut c = motion_config(32, &moving_cam.url(), data.path());
    c.motion.zones = vec![ZoneSpec::full_frame(None, 1.0)];
    let mut moving = Rec::start(c);
    for rec in [&mut still, &mut moving] {
        let streaming = rec
            .wait_until(Duration::from_secs(10), |r| r.status().status == RecorderStatus::Streaming)
            .await;
        assert!(streaming, "{:?}", rec.statuses);
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    still.stop().await;
    moving.stop().await;

    assert!(still.segments().is_empty(), "{:?}", still.events);
    assert!(motion_events(&still.events).is_empty(), "{:?}", still.events);
    assert!(still.events.iter().all(|e| !matches!(e, RecorderEvent::GapStarted { .. })));
    assert!(files(data.path(), 31).is_empty(), "{:?}", files(data.path(), 31));

    // Stopped in the middle of motion: the event is ended and the open segment finalised.
    let segs = moving.segments();
    check_segments(&segs, "h264");
    assert!(segs.len() >= 2 && segs.iter().all(|s| s.motion), "{segs:?}");
    assert_eq!(segs.last().unwrap().end_reason, EndReason::Shutdown);
    assert!(matches!(
        motion_events(&moving.events).as_slice(),
        [RecorderEvent::MotionStarted { .. }, RecorderEvent::MotionEnded { .. }]
    ));
    let mut recorded: Vec<_> = segs.iter().map(|s| s.path.clone()).collect();
    recorded.sort();
    assert_eq!(files(data.path(), 32), recorded);
}

/// A watcher and what it reported.
struct Watched {
    watcher: Option<MotionWatcher>,
    rx: mpsc::UnboundedReceiver<RecorderEvent>,
    state: watch::Receiver<WatcherState>,
    events: Vec<RecorderEvent>,
}

impl Watched {
    fn start(camera: i64, url: &str) -> Watched {
        init_tracing();
        let mut c = WatcherConfig::new(CameraId(camera), url);
        // The ball is small: most sensitive, as in the kernel's clip test.
        c.settings.zones = vec![ZoneSpec::full_frame(Some(1), 1.0)];
        let (tx, rx) = mpsc::unbounded_channel();
        let watcher = MotionWatcher::start(c, Arc::new(SystemClock::new()), tx).unwrap();
        let state = watcher.state();
        Watched { watcher: Some(watcher), rx, state, events: Vec::new() }
    }

    fn drain(&mut self) {
        while let Ok(e) = self.rx.try_recv() {
            self.events.push(e);
        }
    }

    async fn stop(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.stop().await;
        }
        self.drain();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_reports_motion_on_the_moving_clip_only() {
    let moving_cam = TestCamera::start(Clip::Moving).unwrap();
    let still_cam = TestCamera::start(Clip::Static).unwrap();
    let mut moving = Watched::start(40, &moving_cam.url());
    let mut still = Watched::start(41, &still_cam.url());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(15);
    while Instant::now() < deadline {
        moving.drain();
        if !moving.events.is_empty() && started.elapsed() > Duration::from_secs(8) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first_motion = started.elapsed();
    for w in [&moving, &still] {
        assert_eq!(w.state.borrow().status, RecorderStatus::Streaming);
    }
    assert!(moving.state.borrow().motion_since.is_some());
    assert!(still.state.borrow().motion_since.is_none());
    moving.stop().await;
    still.stop().await;
    assert!(still.events.is_empty(), "nothing moves: {:?}", still.events);
    // The ball never stops: one event, ended when the watcher stops.
    match moving.events.as_slice() {
        [
            RecorderEvent::MotionStarted { camera, at, score },
            RecorderEvent::MotionEnded { started_at, ended_at, peak_score, .. },
        ] => {
            assert_eq!(*camera, CameraId(40));
            assert_eq!(at, started_at);
            assert!(ended_at > at && peak_score >= score, "{:?}", moving.events);
        }
        other => panic!("one event expected: {other:?}"),
    }
    assert_eq!(moving.state.borrow().status, RecorderStatus::Stopped);
    eprintln!("watcher: motion reported, test ran {first_motion:?}");
}
