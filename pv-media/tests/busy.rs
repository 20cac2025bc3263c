//! A busy machine is no reason for a gap: the built-in recorder keeps recording a live camera
//! while busy loops take every core for a minute (three spinning threads per core), with no
//! gap, no error segment and contiguous segments. Its own test binary, so the load does not
//! slow other tests.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pv_core::SystemClock;
use pv_core::ids::CameraId;
use pv_media::layout::CameraDir;
use pv_media::record::{
    Backend, EndReason, Recorder, RecorderConfig, RecorderEvent, RecorderStatus,
};
use pv_media::testcam::{Clip, TestCamera};

/// How long the machine is kept busy.
const BUSY: Duration = Duration::from_secs(60);

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_of_busy_cores_leaves_no_gap() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let data = tempfile::tempdir().unwrap();
    let id = CameraId(1);
    let mut config =
        RecorderConfig::new(id, cam.url(), data.path(), CameraDir::new(id, None).unwrap());
    config.segment_duration = Duration::from_secs(5);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let recorder = Recorder::start(config, Arc::new(SystemClock::new()), tx).unwrap();
    let state = recorder.state();
    let started = Instant::now();
    while state.borrow().status != RecorderStatus::Streaming {
        assert!(started.elapsed() < Duration::from_secs(20), "{:?}", state.borrow());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Three spinning threads per core, at the recorder's own priority.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..cores * 3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            })
        })
        .collect();
    let busy_from = chrono::Utc::now();
    tokio::time::sleep(BUSY).await;
    let load = load_average();
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
    let busy_to = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = state.borrow().clone();
    recorder.stop().await;

    let mut segments = Vec::new();
    let mut gaps = Vec::new();
    while let Ok(e) = rx.try_recv() {
        match e {
            RecorderEvent::SegmentFinished(s) => segments.push(s),
            RecorderEvent::GapStarted { at, reason, .. } => gaps.push(format!("{at}: {reason}")),
            _ => {}
        }
    }
    eprintln!(
        "busy for {} s with {} spinning threads on {cores} cores, load average {load}; {} segments",
        BUSY.as_secs(),
        cores * 3,
        segments.len()
    );
    assert!(gaps.is_empty(), "no gap while busy: {gaps:?}");
    assert_eq!(status.status, RecorderStatus::Streaming);
    assert_eq!(status.backend, Backend::Native);
    let last = segments.len() - 1;
    for (i, s) in segments.iter().enumerate() {
        let expected = if i == last { EndReason::Shutdown } else { EndReason::Duration };
        assert_eq!(s.end_reason, expected, "segment {i}: {s:?}");
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
            .arg(&s.path)
            .output()
            .unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "segment {i} reads cleanly");
    }
    for w in segments.windows(2) {
        let hole = (w[1].started_at - w[0].ended_at).num_milliseconds();
        assert!(hole.abs() < 500, "{hole} ms between segments at {}", w[0].ended_at);
    }
    let first = segments.first().unwrap();
    let end = segments.last().unwrap();
    assert!(first.started_at <= busy_from && end.ended_at >= busy_to, "the busy minute is covered");
}
