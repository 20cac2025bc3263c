//! Recognising one face against a large gallery: 1,000 identities with 10 embeddings each,
//! 512 dimensions (the default embedder's size), one in ten embeddings a negative example.
//!
//! `cargo bench -p pv-face --bench gallery`

use criterion::{Criterion, criterion_group, criterion_main};
use pv_core::ids::IdentityId;
use pv_face::gallery::{DEFAULT_THRESHOLD, Gallery};

const DIMENSIONS: usize = 512;
const IDENTITIES: i64 = 1_000;
const PER_IDENTITY: i64 = 10;

/// A small deterministic generator (xorshift64*), so every run measures the same data.
struct Random(u64);

impl Random {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
        bits as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    fn vector(&mut self) -> Vec<f32> {
        (0..DIMENSIONS).map(|_| self.next_f32()).collect()
    }
}

fn recognise(c: &mut Criterion) {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut gallery = Gallery::new(DIMENSIONS);
    let mut some_enrolled = Vec::new();
    for identity in 0..IDENTITIES {
        for k in 0..PER_IDENTITY {
            let v = random.vector();
            if identity % 100 == 0 && k == 0 {
                some_enrolled.push(v.clone());
            }
            gallery
                .insert(identity * PER_IDENTITY + k, IdentityId(identity), &v, k == 9)
                .unwrap_or_else(|e| panic!("insert: {e}"));
        }
    }
    assert_eq!(gallery.len(), (IDENTITIES * PER_IDENTITY) as usize);

    // A query close to an enrolled face (a match) and a random one (unknown): both scan all rows.
    let mut known = some_enrolled[3].clone();
    for x in &mut known {
        *x += 0.1 * random.next_f32();
    }
    let unknown = random.vector();
    let hit = gallery.recognise(&known, DEFAULT_THRESHOLD).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(hit.identity, Some(IdentityId(300)));

    let mut group = c.benchmark_group("gallery_10k_x_512");
    group.bench_function("recognise_known", |b| {
        b.iter(|| gallery.recognise(std::hint::black_box(&known), DEFAULT_THRESHOLD))
    });
    group.bench_function("recognise_unknown", |b| {
        b.iter(|| gallery.recognise(std::hint::black_box(&unknown), DEFAULT_THRESHOLD))
    });
    group.finish();
}

criterion_group!(benches, recognise);
criterion_main!(benches);
