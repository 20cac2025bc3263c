//! The motion kernel (`pv_media::motion::MotionDetector::process`) on 640x360 luma frames, the
//! watcher's default analysis input: block-averaged to 320x180, blurred, compared with the
//! background, scored per zone. A still textured scene and one with a moving block alternate
//! so both the quiet and the triggered paths are measured; one zone and one mask as a camera
//! with a configured zone would have.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pv_media::motion::{LumaFrame, MotionConfig, MotionDetector, ZoneSpec};

const W: usize = 640;
const H: usize = 360;

/// A textured scene with sensor noise and, when `block` is given, a bright block at that x.
fn scene(block: Option<usize>, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut v: Vec<u8> = (0..W * H)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state % 7) as i32 - 3;
            let base = 70 + ((i % W) / 40 * 7 + (i / W) / 30 * 5) as i32 % 90;
            (base + noise) as u8
        })
        .collect();
    if let Some(x0) = block {
        for y in 120..280 {
            v[y * W + x0..y * W + x0 + 80].fill(220);
        }
    }
    v
}

fn bench(c: &mut Criterion) {
    let zones = [
        ZoneSpec {
            id: Some(1),
            polygon: vec![(0.0, 0.2), (1.0, 0.2), (1.0, 1.0), (0.0, 1.0)],
            sensitivity: 0.6,
            is_mask: false,
        },
        ZoneSpec {
            id: Some(2),
            polygon: vec![(0.8, 0.0), (1.0, 0.0), (1.0, 0.3), (0.8, 0.3)],
            sensitivity: 0.0,
            is_mask: true,
        },
    ];
    let still: Vec<Vec<u8>> = (0..8).map(|i| scene(None, 100 + i)).collect();
    let moving: Vec<Vec<u8>> = (0..8).map(|i| scene(Some(40 + 60 * i as usize), 200 + i)).collect();

    let mut group = c.benchmark_group("motion kernel 640x360");
    for (name, frames) in [("still scene", &still), ("moving block", &moving)] {
        let mut d = MotionDetector::new(W, H, &zones, MotionConfig::default()).unwrap();
        for f in &still {
            d.process(&LumaFrame::new(W, H, W, f).unwrap()).unwrap();
        }
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % frames.len();
                let frame = LumaFrame::new(W, H, W, &frames[i]).unwrap();
                black_box(d.process(black_box(&frame)).unwrap())
            })
        });
    }
    let full = MotionConfig { max_analysis_width: W, ..MotionConfig::default() };
    let mut d = MotionDetector::new(W, H, &zones, full).unwrap();
    let mut i = 0;
    group.bench_function("still scene, analysed at 640x360", |b| {
        b.iter(|| {
            i = (i + 1) % still.len();
            let frame = LumaFrame::new(W, H, W, &still[i]).unwrap();
            black_box(d.process(black_box(&frame)).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
