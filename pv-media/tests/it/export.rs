//! Export: recorded segments joined into one MP4 (no transcoding) that plays from 0 with
//! continuous time stamps; trimming at key frames; AAC kept; mismatched files refused.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pv_media::export::{self, ExportError, ExportOptions, ExportSummary};
use pv_media::testcam::{Clip, TestCamera};

use crate::support::{Rec, config, ffprobe_file, stream_codecs};

async fn run_export(
    files: Vec<PathBuf>,
    out: PathBuf,
    options: ExportOptions,
) -> Result<ExportSummary, ExportError> {
    let options = ExportOptions { timeout: Duration::from_secs(60), ..options };
    tokio::task::spawn_blocking(move || export::export(&files, &out, &options)).await.unwrap()
}

/// Video packet time stamps (pts, dts) in seconds, in file order.
fn video_packets(path: &Path) -> Vec<(f64, f64)> {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,dts_time",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split(',').map(|v| v.trim().parse::<f64>());
            Some((it.next()?.ok()?, it.next()?.ok()?))
        })
        .collect()
}

/// Plays from 0, decode times strictly increasing, no step longer than two frames.
fn check_continuous(path: &Path) {
    let packets = video_packets(path);
    assert!(packets.len() > 10, "{packets:?}");
    assert!(
        packets[0].0.abs() < 0.01 && packets[0].1.abs() < 0.01,
        "starts at 0: {:?}",
        packets[0]
    );
    for w in packets.windows(2) {
        let step = w[1].1 - w[0].1;
        assert!(step > 0.0 && step < 0.14, "dts step {step} at {:?}", w);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_segments_become_one_mp4_of_their_total_length() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let aac_cam = TestCamera::start(Clip::MovingAac).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut rec = Rec::start(config(40, &cam.url(), data.path()));
    let mut aac = Rec::start(config(41, &aac_cam.url(), data.path()));
    let mut ff = config(42, &cam.url(), data.path());
    ff.backend = pv_media::record::Backend::Ffmpeg;
    let mut ff = Rec::start(ff);
    for r in [&mut rec, &mut aac, &mut ff] {
        let got = r.wait_until(Duration::from_secs(30), |r| r.segments().len() >= 3).await;
        assert!(got, "events {:?}", r.events);
    }
    rec.stop().await;
    aac.stop().await;
    ff.stop().await;
    let segs: Vec<_> = rec.segments().into_iter().take(3).cloned().collect();
    let files: Vec<PathBuf> = segs.iter().map(|s| s.path.clone()).collect();
    let sum: f64 = files.iter().map(|f| ffprobe_file(f).unwrap().duration).sum();
    let out_dir = tempfile::tempdir().unwrap();

    // Whole segments.
    let out = out_dir.path().join("whole.mp4");
    let t = Instant::now();
    let summary = run_export(files.clone(), out.clone(), ExportOptions::default()).await.unwrap();
    let took = t.elapsed();
    assert_eq!(summary.path, out);
    assert_eq!(summary.start, Duration::ZERO);
    assert!(!summary.audio);
    assert_eq!(stream_codecs(&out), ["h264"]);
    let probe = ffprobe_file(&out).unwrap();
    assert_eq!((probe.codec.as_str(), probe.width, probe.height), ("h264", 1280, 720));
    assert!((probe.duration - sum).abs() < 0.5, "export {} s, segments {sum} s", probe.duration);
    assert!((summary.duration.as_secs_f64() - probe.duration).abs() < 0.2, "{summary:?} {probe:?}");
    assert_eq!(summary.size_bytes, std::fs::metadata(&out).unwrap().len());
    check_continuous(&out);
    let input_bytes: u64 = segs.iter().map(|s| s.size_bytes).sum();
    eprintln!(
        "export of 3 segments ({sum:.2} s, {input_bytes} bytes) -> {:.2} s, {} bytes in {took:?}",
        probe.duration, summary.size_bytes
    );
    let names: Vec<_> =
        std::fs::read_dir(out_dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "no temporary files left: {names:?}");

    // Trimmed: from 4 s to 7 s on the joined timeline starts at the key frame at or before
    // 4 s (one per second) and ends before 7 s.
    let out = out_dir.path().join("trim.mp4");
    let options = ExportOptions {
        from: Some(Duration::from_secs(4)),
        to: Some(Duration::from_secs(7)),
        ..ExportOptions::default()
    };
    let summary = run_export(files.clone(), out.clone(), options).await.unwrap();
    let start = summary.start.as_secs_f64();
    assert!((2.9..=4.0).contains(&start), "{summary:?}");
    let probe = ffprobe_file(&out).unwrap();
    assert!((probe.duration - (7.0 - start)).abs() < 0.2, "{probe:?} {summary:?}");
    check_continuous(&out);

    // A range past the end holds nothing.
    let options =
        ExportOptions { from: Some(Duration::from_secs(600)), ..ExportOptions::default() };
    let err =
        run_export(files.clone(), out_dir.path().join("none.mp4"), options).await.unwrap_err();
    assert!(matches!(err, ExportError::EmptyRange), "{err}");
    assert!(!out_dir.path().join("none.mp4").exists());

    // AAC is kept.
    let aac_files: Vec<PathBuf> = aac.segments().iter().take(3).map(|s| s.path.clone()).collect();
    let aac_sum: f64 = aac_files.iter().map(|f| ffprobe_file(f).unwrap().duration).sum();
    let out = out_dir.path().join("aac.mp4");
    let summary =
        run_export(aac_files.clone(), out.clone(), ExportOptions::default()).await.unwrap();
    assert!(summary.audio);
    assert_eq!(stream_codecs(&out), ["h264", "aac"]);
    let probe = ffprobe_file(&out).unwrap();
    assert!((probe.duration - aac_sum).abs() < 0.5, "{probe:?} vs {aac_sum}");
    check_continuous(&out);

    // Segments of the ffmpeg fallback.
    let ff_files: Vec<PathBuf> = ff.segments().iter().take(3).map(|s| s.path.clone()).collect();
    let ff_sum: f64 = ff_files.iter().map(|f| ffprobe_file(f).unwrap().duration).sum();
    let out = out_dir.path().join("ffmpeg.mp4");
    run_export(ff_files, out.clone(), ExportOptions::default()).await.unwrap();
    assert_eq!(stream_codecs(&out), ["h264"]);
    let probe = ffprobe_file(&out).unwrap();
    assert!((probe.duration - ff_sum).abs() < 0.5, "{probe:?} vs {ff_sum}");
    check_continuous(&out);

    // One file with audio and one without: video only.
    let mixed = vec![aac_files[0].clone(), files[0].clone()];
    let out = out_dir.path().join("mixed.mp4");
    let summary = run_export(mixed, out.clone(), ExportOptions::default()).await;
    match summary {
        Ok(s) => {
            assert!(!s.audio);
            assert_eq!(stream_codecs(&out), ["h264"]);
        }
        // Different cameras may have different parameter sets: refused, clearly.
        Err(ExportError::Mismatch { reason, .. }) => eprintln!("mixed refused: {reason}"),
        Err(e) => panic!("{e}"),
    }
}
