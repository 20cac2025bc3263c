//! The motion kernel on the simulated cameras' clips: the moving clip triggers, the static one
//! (with real H.264 compression noise) never does.

use pv_media::motion::{LumaFrame, MotionConfig, MotionDetector, ZoneSpec};
use pv_media::testcam::Clip;
use pv_media::testcam::clip::luma_frames;

use crate::support::init_tracing;

fn triggered_frames(clip: Clip, zones: &[ZoneSpec]) -> (usize, usize) {
    let (w, h) = (320, 180);
    let frames = luma_frames(clip, w as u32, h as u32).unwrap();
    let mut d = MotionDetector::new(w, h, zones, MotionConfig::default()).unwrap();
    let mut triggered = 0;
    let started = std::time::Instant::now();
    for f in &frames {
        let r = d.process(&LumaFrame::new(w, h, w, f).unwrap()).unwrap();
        assert!(!r.lighting_change);
        triggered += usize::from(r.triggered);
    }
    let per_frame = started.elapsed() / frames.len() as u32;
    eprintln!(
        "{clip:?}: {triggered}/{} frames triggered, {per_frame:?} per {w}x{h} frame",
        frames.len()
    );
    (triggered, frames.len())
}

#[test]
fn the_moving_clip_triggers_and_the_static_clip_does_not() {
    init_tracing();
    // Most sensitive: the ball is small (its changing edge is ~0.2 % of the frame).
    let zones = [ZoneSpec::full_frame(Some(1), 1.0)];
    let (moving, n) = triggered_frames(Clip::Moving, &zones);
    let warmup = MotionConfig::default().warmup_frames as usize;
    assert!(moving * 10 >= (n - warmup) * 9, "the ball moves in every frame: {moving}/{n}");
    let (still, n) = triggered_frames(Clip::Static, &zones);
    assert_eq!(still, 0, "nothing moves in the static clip, even at full sensitivity ({n} frames)");
}
