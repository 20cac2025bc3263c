//! kill -9 of a recording process mid-segment, then the recovery pass.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pv_core::ids::CameraId;
use pv_media::layout::CameraDir;
use pv_media::recovery::{self, Outcome};
use pv_media::testcam::{Clip, TestCamera};

use crate::support::{ffprobe_file, init_tracing};

/// `target/<profile>/examples/record`, built by `cargo test` with the test binary.
fn example_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    profile_dir.join("examples").join("record")
}

#[test]
fn kill_9_mid_segment_then_recovery_keeps_every_playable_second() {
    init_tracing();
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let data = tempfile::tempdir().unwrap();
    let bin = example_binary();
    assert!(bin.is_file(), "{} is built by cargo test", bin.display());
    let mut child = Command::new(&bin)
        .args([cam.url().as_str(), data.path().to_str().unwrap(), "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut finished = Vec::new();
    while finished.len() < 2 && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
            && let Some(rest) = line.strip_prefix("segment ")
        {
            finished.push(rest.split(' ').next().unwrap().to_owned());
        }
    }
    assert_eq!(finished.len(), 2, "two segments before the kill");
    // Mid-segment: once the third segment has a fragment on disk, before it is finalised.
    let camera_dir = CameraDir::new(CameraId(1), None).unwrap();
    let dir = data.path().join(camera_dir.relative_path());
    let third = loop {
        assert!(Instant::now() < deadline, "no third segment with a fragment");
        let newest = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !finished.iter().any(|f| p.ends_with(f)))
            .max();
        let info = newest.as_ref().and_then(|p| pv_media::mp4::inspect(p).ok());
        if info.is_some_and(|i| i.fragments >= 1 && !i.is_complete()) {
            break newest.unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Debris the pass must handle: an empty segment file, garbage with a segment name, and a
    // foreign file it must leave alone.
    std::fs::write(dir.join("20200101T000000Z-1.mp4"), b"").unwrap();
    std::fs::write(dir.join("20200101T000001Z-1.mp4"), vec![0x5a; 3000]).unwrap();
    std::fs::write(dir.join("notes.txt"), b"keep me").unwrap();

    let report = recovery::scan(data.path(), &camera_dir).unwrap();
    let complete: Vec<_> = report.usable().filter(|f| f.outcome == Outcome::Complete).collect();
    let repaired: Vec<_> = report.repaired().collect();
    for name in &finished {
        let f = report.files.iter().find(|f| recovery::path_key(&f.relative_path) == *name);
        assert_eq!(f.map(|f| &f.outcome), Some(&Outcome::Complete), "{name} is intact");
    }
    assert_eq!(complete.len(), 2, "{report:#?}");
    assert_eq!(repaired.len(), 1, "the killed segment is repaired: {report:#?}");
    let partial = repaired[0];
    assert_eq!(partial.path, third);
    assert!(partial.duration_ms >= 500, "{partial:?}");
    for f in report.usable() {
        let probe = ffprobe_file(&f.path).unwrap();
        assert_eq!((probe.codec.as_str(), probe.width, probe.height), ("h264", 1280, 720));
        assert!((probe.duration * 1000.0 - f.duration_ms as f64).abs() < 200.0, "{probe:?} {f:?}");
        assert_eq!(f.size_bytes, std::fs::metadata(&f.path).unwrap().len());
    }
    assert_eq!(report.discarded.len(), 2, "{report:#?}");
    assert!(!dir.join("20200101T000000Z-1.mp4").exists());
    assert!(!dir.join("20200101T000001Z-1.mp4").exists());
    assert_eq!(report.ignored.len(), 1);
    assert_eq!(std::fs::read(dir.join("notes.txt")).unwrap(), b"keep me");

    // Reconciliation helpers: the two finished segments have rows, the repaired one does not,
    // and one row points at a file that is gone.
    let mut known: Vec<String> = finished.clone();
    known.push("cameras/id-1/20190101T000000Z-1.mp4".into());
    let set: HashSet<String> = known.iter().cloned().collect();
    let missing = report.without_row(&set);
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].path, partial.path);
    assert_eq!(missing[0].to_segment().end_reason.as_str(), "recovered");
    assert_eq!(
        report.rows_without_file(data.path(), &known),
        vec!["cameras/id-1/20190101T000000Z-1.mp4"]
    );

    // A second pass finds everything complete or already repaired and changes nothing.
    let again = recovery::scan(data.path(), &camera_dir).unwrap();
    assert_eq!(again.files.len(), 3);
    assert!(again.discarded.is_empty());
    assert!(again.repaired().all(|f| f.outcome == Outcome::Repaired { cut_bytes: 0 }));
}
