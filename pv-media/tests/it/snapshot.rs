//! Snapshots: JPEG from a recorder's live tap (H.264 and H.265) and from segment files (also
//! those of the ffmpeg fallback, which has no tap); the size is read back from the JPEG's own
//! SOF0 header.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pv_media::record::Backend;
use pv_media::snapshot::{self, FramePick, Jpeg, SnapshotError, SnapshotOptions};
use pv_media::tap::StreamTap;
use pv_media::testcam::{Clip, TestCamera};

use crate::support::{Rec, config};

/// Width and height from a baseline JPEG's SOF0 marker.
pub fn sof0_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    if jpeg.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut i = 2;
    while i + 4 <= jpeg.len() {
        if jpeg[i] != 0xFF {
            return None;
        }
        let marker = jpeg[i + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if marker == 0xC0 {
            let seg = jpeg.get(i + 4..i + 2 + len)?;
            let height = u32::from(u16::from_be_bytes([seg[1], seg[2]]));
            let width = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
            return Some((width, height));
        }
        i += 2 + len;
    }
    None
}

fn check(jpeg: &Jpeg, size: (u32, u32)) {
    assert_eq!(sof0_size(&jpeg.data), Some(size), "SOF0 of a {} byte JPEG", jpeg.data.len());
    assert_eq!((jpeg.width, jpeg.height), size);
    assert_eq!(jpeg.data[jpeg.data.len() - 2..], [0xFF, 0xD9], "ends with EOI");
}

async fn wait_for_key_frame(tap: &StreamTap) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while tap.key_frame().is_none() {
        assert!(Instant::now() < deadline, "no key frame in the tap: {tap:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn from_tap(tap: &StreamTap, options: SnapshotOptions) -> Result<Jpeg, SnapshotError> {
    let tap = tap.clone();
    tokio::task::spawn_blocking(move || snapshot::from_tap(&tap, &options)).await.unwrap()
}

async fn from_file(path: PathBuf, pick: FramePick) -> Result<Jpeg, SnapshotError> {
    tokio::task::spawn_blocking(move || {
        snapshot::from_file(&path, pick, &SnapshotOptions::default())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_from_the_live_tap_and_from_segment_files() {
    let cam = TestCamera::start(Clip::Moving).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut rec = Rec::start(config(30, &cam.url(), data.path()));
    let mut ff = config(31, &cam.url(), data.path());
    ff.backend = Backend::Ffmpeg;
    let mut ff = Rec::start(ff);
    let tap = rec.recorder.as_ref().unwrap().tap();

    wait_for_key_frame(&tap).await;
    let t = Instant::now();
    let full = from_tap(&tap, SnapshotOptions::default()).await.unwrap();
    let took = t.elapsed();
    check(&full, (1280, 720));
    let small = SnapshotOptions { max_width: Some(640), ..SnapshotOptions::default() };
    check(&from_tap(&tap, small).await.unwrap(), (640, 360));
    let odd = SnapshotOptions { max_width: Some(333), quality: 50, ..SnapshotOptions::default() };
    check(&from_tap(&tap, odd).await.unwrap(), (332, 186));
    eprintln!("tap snapshot: {} bytes in {took:?}", full.data.len());

    // The ffmpeg fallback feeds no tap: its snapshots come from files.
    let ff_tap = ff.recorder.as_ref().unwrap().tap();
    let err = from_tap(&ff_tap, SnapshotOptions::default()).await.unwrap_err();
    assert!(matches!(err, SnapshotError::NoFrame), "{err}");
    assert_eq!(err.kind(), pv_core::ErrorKind::Unavailable);

    for r in [&mut rec, &mut ff] {
        assert!(r.wait_until(Duration::from_secs(20), |r| !r.segments().is_empty()).await);
    }
    for r in [&rec, &ff] {
        let path = r.segments()[0].path.clone();
        let t = Instant::now();
        check(&from_file(path.clone(), FramePick::Last).await.unwrap(), (1280, 720));
        let last_took = t.elapsed();
        check(&from_file(path.clone(), FramePick::First).await.unwrap(), (1280, 720));
        eprintln!("{:?} segment snapshot (last key frame): {last_took:?}", r.status().backend);

        // The key frame at or before an offset: the listed offsets pick exactly those frames
        // (the same frame decodes to the same bytes), an offset past the end the last one.
        let p = path.clone();
        let offsets = tokio::task::spawn_blocking(move || {
            snapshot::key_frame_offsets(&p, Duration::from_secs(5))
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(offsets[0], Duration::ZERO, "{offsets:?}");
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
        let first = from_file(path.clone(), FramePick::First).await.unwrap();
        let last = from_file(path.clone(), FramePick::Last).await.unwrap();
        let at = |d| from_file(path.clone(), FramePick::AtOrBefore(d));
        assert_eq!(at(Duration::ZERO).await.unwrap(), first);
        assert_eq!(at(*offsets.last().unwrap()).await.unwrap(), last);
        assert_eq!(at(Duration::from_secs(3600)).await.unwrap(), last);
        if let [_, second, ..] = offsets[..] {
            let just_before = at(second - Duration::from_millis(1)).await.unwrap();
            assert_eq!(just_before, first, "a moment before the second key frame shows the first");
        }
        eprintln!("{:?} segment key frames at {offsets:?}", r.status().backend);
    }

    rec.stop().await;
    ff.stop().await;
    // The last key frame outlives the stream; max_age refuses it.
    assert!(!tap.info().live);
    check(&from_tap(&tap, SnapshotOptions::default()).await.unwrap(), (1280, 720));
    let fresh =
        SnapshotOptions { max_age: Some(Duration::from_millis(1)), ..SnapshotOptions::default() };
    let err = from_tap(&tap, fresh).await.unwrap_err();
    assert!(matches!(err, SnapshotError::Stale { .. }), "{err}");

    // Not a video file.
    let junk = data.path().join("junk.mp4");
    std::fs::write(&junk, vec![0x5a; 4096]).unwrap();
    let err = from_file(junk, FramePick::Last).await.unwrap_err();
    assert!(matches!(err, SnapshotError::BadFile { .. }), "{err}");
    assert_eq!(err.kind(), pv_core::ErrorKind::InvalidInput);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_snapshots_decode_and_rtmp_refuses_h265() {
    let cam = TestCamera::start(Clip::MovingH265).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut rec = Rec::start(config(32, &cam.url(), data.path()));
    let tap = rec.recorder.as_ref().unwrap().tap();
    wait_for_key_frame(&tap).await;
    assert_eq!(tap.info().video_codec(), Some(pv_media::tap::VideoCodec::H265));
    check(&from_tap(&tap, SnapshotOptions::default()).await.unwrap(), (1280, 720));

    let err = pv_media::rtmp::RtmpPush::start(
        tap.clone(),
        pv_media::rtmp::RtmpConfig::new("rtmp://127.0.0.1:1935/live/h265"),
    )
    .unwrap_err();
    assert!(matches!(err, pv_media::rtmp::RtmpError::UnsupportedCodec(_)), "{err}");
    assert!(err.to_string().contains("FLV"), "{err}");
    rec.stop().await;
}
