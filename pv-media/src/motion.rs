//! Motion detection on grayscale (luma) frames, in plain Rust.
//!
//! Per frame: downscale (block average) to at most [`MotionConfig::max_analysis_width`] pixels
//! wide, box blur, compare with a running-average background, discount each pixel's usual
//! deviation (compression flicker on edges, swaying leaves), threshold the difference per zone,
//! and score each zone as the fraction of its pixels that changed. Zones are the
//! `motion_zones` rows: polygons in normalised 0..1 frame coordinates with a sensitivity in
//! 0..1; mask zones are cut out of every detection zone. With no detection zone the whole frame
//! (minus masks) is watched at [`MotionConfig::default_sensitivity`].
//!
//! Sensitivity `s` sets two thresholds: a pixel counts as changed when its blurred luma differs
//! from the background by more than `50 − 40·s` (50 at 0, 10 at 1), and a zone triggers when
//! more than `10 % · 0.01^s` of it changed (10 % at 0, 1 % at 0.5, 0.1 % at 1).
//!
//! When most of the frame changes at once (lights switched, the camera's infrared mode flips)
//! the background is reset and the frame reports [`MotionResult::lighting_change`] instead of
//! motion.
//!
//! ```
//! use pv_media::motion::{LumaFrame, MotionConfig, MotionDetector};
//! # fn main() -> pv_media::Result<()> {
//! let (w, h) = (64, 48);
//! let mut detector = MotionDetector::new(w, h, &[], MotionConfig::default())?;
//! let still = vec![100u8; w * h];
//! for _ in 0..MotionConfig::default().warmup_frames {
//!     assert!(detector.process(&LumaFrame::new(w, h, w, &still)?)?.warming_up);
//! }
//! let mut moved = still.clone();
//! for y in 10..30 { for x in 10..30 { moved[y * w + x] = 220; } }
//! let result = detector.process(&LumaFrame::new(w, h, w, &moved)?)?;
//! assert!(result.triggered);
//! # Ok(()) }
//! ```

use crate::{Error, Result};

/// A grayscale frame: `height` rows of `width` luma bytes, rows `stride` bytes apart (the Y
/// plane of I420/NV12, or GRAY8).
#[derive(Debug, Clone, Copy)]
pub struct LumaFrame<'a> {
    width: usize,
    height: usize,
    stride: usize,
    data: &'a [u8],
}

impl<'a> LumaFrame<'a> {
    /// A frame over `data`, checked: non-zero size, `stride >= width`, and enough bytes.
    pub fn new(width: usize, height: usize, stride: usize, data: &'a [u8]) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::InvalidFrame(format!("empty frame {width}x{height}")));
        }
        if stride < width {
            return Err(Error::InvalidFrame(format!("stride {stride} < width {width}")));
        }
        let needed = stride
            .checked_mul(height - 1)
            .and_then(|n| n.checked_add(width))
            .ok_or_else(|| Error::InvalidFrame("frame size overflows".into()))?;
        if data.len() < needed {
            return Err(Error::InvalidFrame(format!(
                "{width}x{height} frame with stride {stride} needs {needed} bytes, got {}",
                data.len()
            )));
        }
        Ok(Self { width, height, stride, data })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    fn row(&self, y: usize) -> &[u8] {
        let start = y * self.stride;
        &self.data[start..start + self.width]
    }
}

/// A detection zone or mask (a `motion_zones` row).
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneSpec {
    /// The zone's id, echoed in results.
    pub id: Option<i64>,
    /// Polygon corners as `(x, y)` in 0..=1 of the frame; at least three.
    pub polygon: Vec<(f64, f64)>,
    /// 0..=1, 1 most sensitive (ignored for masks).
    pub sensitivity: f64,
    /// Motion inside is ignored everywhere.
    pub is_mask: bool,
}

impl ZoneSpec {
    /// The whole frame as one detection zone.
    pub fn full_frame(id: Option<i64>, sensitivity: f64) -> Self {
        Self {
            id,
            polygon: vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)],
            sensitivity,
            is_mask: false,
        }
    }
}

/// Detector settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MotionConfig {
    /// Frames are block-averaged down to at most this width before analysis (default 320).
    pub max_analysis_width: usize,
    /// Box blur radius in analysis pixels (default 1: a 3×3 box).
    pub blur_radius: usize,
    /// Weight of each new frame in the background average (default 0.05: the background
    /// follows slow changes over a few seconds at 10 fps).
    pub learning_rate: f32,
    /// Sensitivity of the whole-frame zone used when no detection zone is given (default 0.5).
    pub default_sensitivity: f64,
    /// Fraction of the watched area that, changing at once, counts as a lighting change
    /// rather than motion (default 0.6).
    pub lighting_change_fraction: f64,
    /// A pixel's threshold is raised by this many times its usual deviation from the
    /// background (default 3), so edges that flicker with compression noise or swaying leaves
    /// do not count as motion while flat areas stay sensitive.
    pub deviation_factor: f32,
    /// Frames that only teach the background and its deviation, reporting no motion
    /// (default 10).
    pub warmup_frames: u32,
}

impl Default for MotionConfig {
    fn default() -> Self {
        Self {
            max_analysis_width: 320,
            blur_radius: 1,
            learning_rate: 0.05,
            default_sensitivity: 0.5,
            lighting_change_fraction: 0.6,
            deviation_factor: 3.0,
            warmup_frames: 10,
        }
    }
}

/// The verdict for one zone.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneResult {
    /// The zone's id.
    pub id: Option<i64>,
    /// Fraction of the zone's pixels that changed, 0..=1.
    pub score: f64,
    /// The score passed the zone's area threshold.
    pub triggered: bool,
}

/// The verdict for one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct MotionResult {
    /// Fraction of the watched area (detection zones minus masks) that changed, 0..=1.
    pub score: f64,
    /// Some zone triggered.
    pub triggered: bool,
    /// Per detection zone, in the order given.
    pub zones: Vec<ZoneResult>,
    /// Most of the frame changed at once; the background was reset and no motion reported.
    pub lighting_change: bool,
    /// One of the first [`MotionConfig::warmup_frames`]: it taught the background, no motion
    /// is reported.
    pub warming_up: bool,
}

#[derive(Debug)]
struct Zone {
    id: Option<i64>,
    /// The analysis pixels inside the zone and outside every mask.
    area: Area,
    pixel_threshold: u8,
    area_threshold: f64,
}

/// A set of analysis pixels: every one, or those whose byte in a 0/1 mask is 1 (a mask keeps
/// the counting loop linear and vectorisable).
#[derive(Debug)]
struct Area {
    mask: Option<Vec<u8>>,
    pixels: usize,
}

impl Area {
    fn new(inside: &[bool]) -> Self {
        let pixels = inside.iter().filter(|&&b| b).count();
        let mask = (pixels < inside.len()).then(|| inside.iter().map(|&b| u8::from(b)).collect());
        Self { mask, pixels }
    }

    /// The fraction of the area whose `diff` is above `threshold` (0 for an empty area).
    fn fraction_above(&self, diff: &[u8], threshold: u8) -> f64 {
        if self.pixels == 0 {
            return 0.0;
        }
        let changed: u32 = match &self.mask {
            None => diff.iter().map(|&d| u32::from(d > threshold)).sum(),
            Some(mask) => {
                diff.iter().zip(mask).map(|(&d, &m)| u32::from(u8::from(d > threshold) & m)).sum()
            }
        };
        f64::from(changed) / self.pixels as f64
    }
}

/// Exact `x / d` for the sums the kernel divides (`x <= 255 * d`), by a 32-bit multiplication
/// and shift (vectorisable, unlike a division).
#[derive(Debug, Clone, Copy)]
struct Divisor {
    d: u32,
    /// `ceil(2^24 / d)`: exact for `x <= 255 * d` when `255 * d² <= 2^24` (d <= 256), and
    /// `x * m` stays below 2^32; 0: divide.
    m: u32,
}

impl Divisor {
    fn new(d: u32) -> Self {
        let d = d.max(1);
        let exact = u64::from(d) * u64::from(d) * 255 <= 1 << 24;
        Self { d, m: if exact { (1u32 << 24).div_ceil(d) } else { 0 } }
    }

    #[inline]
    fn div(self, x: u32) -> u32 {
        if self.m == 0 { x / self.d } else { (x * self.m) >> 24 }
    }
}

/// Motion detection state for one camera stream at one frame size.
#[derive(Debug)]
pub struct MotionDetector {
    width: usize,
    height: usize,
    factor: usize,
    aw: usize,
    ah: usize,
    config: MotionConfig,
    zones: Vec<Zone>,
    /// The watched area (union of zones), for the overall score.
    watched: Area,
    background: Vec<f32>,
    /// Running average of each pixel's absolute deviation from the background.
    deviation: Vec<f32>,
    small: Vec<u8>,
    /// One analysis row of block sums (downscale) or box sums (blur).
    sums: Vec<u32>,
    /// One analysis row with its edge pixels repeated `blur_radius` times on each side.
    padded: Vec<u8>,
    tmp: Vec<u16>,
    blurred: Vec<u8>,
    diff: Vec<u8>,
    /// Frames seen since the start or the last reset.
    seen: u32,
}

impl MotionDetector {
    /// A detector for `width`×`height` frames with these zones.
    pub fn new(
        width: usize,
        height: usize,
        zones: &[ZoneSpec],
        config: MotionConfig,
    ) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::InvalidFrame(format!("empty frame {width}x{height}")));
        }
        let valid = config.max_analysis_width > 0
            && config.learning_rate > 0.0
            && config.learning_rate <= 1.0
            && (0.0..=1.0).contains(&config.default_sensitivity)
            && config.lighting_change_fraction > 0.0
            && config.lighting_change_fraction <= 1.0
            && config.deviation_factor >= 0.0
            && config.deviation_factor.is_finite();
        if !valid {
            return Err(Error::InvalidZone(format!("invalid motion settings {config:?}")));
        }
        let factor = width.div_ceil(config.max_analysis_width).max(1);
        let (aw, ah) = ((width / factor).max(1), (height / factor).max(1));
        for z in zones {
            check_zone(z)?;
        }
        let rasters: Vec<(&ZoneSpec, Vec<bool>)> =
            zones.iter().map(|z| (z, rasterise(&z.polygon, aw, ah))).collect();
        let masked: Vec<bool> =
            (0..aw * ah).map(|i| rasters.iter().any(|(z, r)| z.is_mask && r[i])).collect();
        let default_zone = ZoneSpec::full_frame(None, config.default_sensitivity);
        let mut detection: Vec<(&ZoneSpec, Vec<bool>)> =
            rasters.into_iter().filter(|(z, _)| !z.is_mask).collect();
        if detection.is_empty() {
            detection.push((&default_zone, vec![true; aw * ah]));
        }
        let mut in_any = vec![false; aw * ah];
        let zones = detection
            .into_iter()
            .map(|(spec, raster)| {
                let inside: Vec<bool> = (0..aw * ah).map(|i| raster[i] && !masked[i]).collect();
                for (any, &b) in in_any.iter_mut().zip(&inside) {
                    *any |= b;
                }
                Zone {
                    id: spec.id,
                    area: Area::new(&inside),
                    pixel_threshold: (50.0 - 40.0 * spec.sensitivity).round() as u8,
                    area_threshold: 0.1 * 0.01f64.powf(spec.sensitivity),
                }
            })
            .collect();
        let watched = Area::new(&in_any);
        Ok(Self {
            width,
            height,
            factor,
            aw,
            ah,
            config,
            zones,
            watched,
            background: vec![0.0; aw * ah],
            deviation: vec![0.0; aw * ah],
            small: vec![0; aw * ah],
            sums: vec![0; aw],
            padded: Vec::new(),
            tmp: vec![0; aw * ah],
            blurred: vec![0; aw * ah],
            diff: vec![0; aw * ah],
            seen: 0,
        })
    }

    /// The analysis resolution (after downscaling).
    pub fn analysis_size(&self) -> (usize, usize) {
        (self.aw, self.ah)
    }

    /// Forget the background: the next frame starts over.
    pub fn reset(&mut self) {
        self.seen = 0;
    }

    /// Score one frame and update the background. The frame must have the detector's size.
    pub fn process(&mut self, frame: &LumaFrame<'_>) -> Result<MotionResult> {
        if (frame.width, frame.height) != (self.width, self.height) {
            return Err(Error::InvalidFrame(format!(
                "frame is {}x{}, detector expects {}x{}",
                frame.width, frame.height, self.width, self.height
            )));
        }
        self.downscale(frame);
        self.blur();
        self.seen = self.seen.saturating_add(1);
        if self.seen == 1 {
            for (b, &p) in self.background.iter_mut().zip(&self.blurred) {
                *b = f32::from(p);
            }
            self.deviation.fill(0.0);
        }
        let k = self.config.deviation_factor;
        for (((d, &p), &b), &dev) in
            self.diff.iter_mut().zip(&self.blurred).zip(&self.background).zip(&self.deviation)
        {
            // The difference beyond what this pixel usually deviates.
            // (Clamped first, so the integer conversion is exact.)
            *d = ((f32::from(p) - b).abs() - k * dev).clamp(0.0, 255.0) as i32 as u8;
        }
        if self.seen <= self.config.warmup_frames.max(1) {
            // Learn fast: a plain average over the warm-up frames.
            let rate = 1.0 / self.seen as f32;
            self.learn(rate, None);
            return Ok(self.quiet(false, true));
        }
        let zones: Vec<ZoneResult> = self
            .zones
            .iter()
            .map(|z| {
                let score = z.area.fraction_above(&self.diff, z.pixel_threshold);
                ZoneResult { id: z.id, score, triggered: score > z.area_threshold }
            })
            .collect();
        // Overall score at the least strict pixel threshold of any zone.
        let threshold = self.zones.iter().map(|z| z.pixel_threshold).min().unwrap_or(30);
        let score = self.watched.fraction_above(&self.diff, threshold);
        if score >= self.config.lighting_change_fraction {
            for (b, &p) in self.background.iter_mut().zip(&self.blurred) {
                *b = f32::from(p);
            }
            return Ok(self.quiet(true, false));
        }
        self.learn(self.config.learning_rate, Some(threshold));
        let triggered = zones.iter().any(|z| z.triggered);
        Ok(MotionResult { score, triggered, zones, lighting_change: false, warming_up: false })
    }

    /// Move the background and the deviation towards the current frame. Pixels that changed
    /// more than `foreground` keep their deviation, so a standing object fades into the
    /// background at the learning rate instead of being explained away as noise.
    fn learn(&mut self, rate: f32, foreground: Option<u8>) {
        let pixels =
            self.background.iter_mut().zip(&mut self.deviation).zip(&self.blurred).zip(&self.diff);
        let threshold = foreground.unwrap_or(u8::MAX);
        for (((b, dev), &p), &d) in pixels {
            let p = f32::from(p);
            // A select rather than a branch, so the loop vectorises; × 1.0 is exact.
            let learn = if d <= threshold { rate } else { 0.0 };
            *dev += learn * ((p - *b).abs() - *dev);
            *b += rate * (p - *b);
        }
    }

    fn quiet(&self, lighting_change: bool, warming_up: bool) -> MotionResult {
        MotionResult {
            score: 0.0,
            triggered: false,
            zones: self
                .zones
                .iter()
                .map(|z| ZoneResult { id: z.id, score: 0.0, triggered: false })
                .collect(),
            lighting_change,
            warming_up,
        }
    }

    /// Block-average `factor`×`factor` pixels into `small`.
    fn downscale(&mut self, frame: &LumaFrame<'_>) {
        let f = self.factor;
        if f == 1 {
            for y in 0..self.ah {
                self.small[y * self.aw..(y + 1) * self.aw]
                    .copy_from_slice(&frame.row(y)[..self.aw]);
            }
            return;
        }
        let area = Divisor::new((f * f) as u32);
        let aw = self.aw;
        for y in 0..self.ah {
            self.sums.fill(0);
            for dy in 0..f {
                let row = &frame.row(y * f + dy)[..aw * f];
                if f == 2 {
                    for (sum, px) in self.sums.iter_mut().zip(row.chunks_exact(2)) {
                        *sum += u32::from(px[0]) + u32::from(px[1]);
                    }
                } else {
                    for (sum, px) in self.sums.iter_mut().zip(row.chunks_exact(f)) {
                        *sum += px.iter().map(|&p| u32::from(p)).sum::<u32>();
                    }
                }
            }
            let out = &mut self.small[y * aw..(y + 1) * aw];
            for (o, &s) in out.iter_mut().zip(&self.sums) {
                *o = area.div(s) as u8;
            }
        }
    }

    /// Separable box blur of `small` into `blurred` (sliding sums), edges clamped.
    fn blur(&mut self) {
        let r = self.config.blur_radius;
        if r == 0 {
            self.blurred.copy_from_slice(&self.small);
            return;
        }
        let (w, h) = (self.aw, self.ah);
        let n = Divisor::new((2 * r + 1) as u32);
        let clamp = |i: isize, len: usize| i.clamp(0, len as isize - 1) as usize;
        // Horizontally: each row padded with copies of its edge pixels, then one pass per tap
        // (independent sums, so the loops vectorise).
        self.padded.resize(w + 2 * r, 0);
        for y in 0..h {
            let row = &self.small[y * w..(y + 1) * w];
            let (first, last) = (row[0], row[w - 1]);
            self.padded[..r].fill(first);
            self.padded[r..r + w].copy_from_slice(row);
            self.padded[r + w..].fill(last);
            self.sums.fill(0);
            for k in 0..=2 * r {
                for (sum, &v) in self.sums.iter_mut().zip(&self.padded[k..k + w]) {
                    *sum += u32::from(v);
                }
            }
            let out = &mut self.tmp[y * w..(y + 1) * w];
            for (o, &sum) in out.iter_mut().zip(&self.sums) {
                *o = n.div(sum) as u16;
            }
        }
        // Vertically, a row at a time: column sums slide down the image.
        self.sums.fill(0);
        for k in -(r as isize)..=r as isize {
            let row = &self.tmp[clamp(k, h) * w..][..w];
            for (sum, &v) in self.sums.iter_mut().zip(row) {
                *sum += u32::from(v);
            }
        }
        for y in 0..h {
            let out = &mut self.blurred[y * w..(y + 1) * w];
            for (o, &sum) in out.iter_mut().zip(&self.sums) {
                *o = n.div(sum) as u8;
            }
            let next = clamp(y as isize + r as isize + 1, h) * w;
            let gone = clamp(y as isize - r as isize, h) * w;
            let (next, gone) = (&self.tmp[next..next + w], &self.tmp[gone..gone + w]);
            for ((sum, &a), &b) in self.sums.iter_mut().zip(next).zip(gone) {
                *sum = *sum + u32::from(a) - u32::from(b);
            }
        }
    }
}

fn check_zone(z: &ZoneSpec) -> Result<()> {
    if z.polygon.len() < 3 {
        return Err(Error::InvalidZone(format!("zone {:?}: a polygon needs three points", z.id)));
    }
    let in_range = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
    if !z.polygon.iter().all(|&(x, y)| in_range(x) && in_range(y)) {
        return Err(Error::InvalidZone(format!("zone {:?}: points must be within 0..=1", z.id)));
    }
    if !in_range(z.sensitivity) {
        return Err(Error::InvalidZone(format!(
            "zone {:?}: sensitivity must be within 0..=1",
            z.id
        )));
    }
    Ok(())
}

/// Which analysis pixels have their centre inside the polygon (even-odd rule).
fn rasterise(polygon: &[(f64, f64)], w: usize, h: usize) -> Vec<bool> {
    let mut out = vec![false; w * h];
    for y in 0..h {
        let py = (y as f64 + 0.5) / h as f64;
        for x in 0..w {
            let px = (x as f64 + 0.5) / w as f64;
            let mut inside = false;
            let mut j = polygon.len() - 1;
            for i in 0..polygon.len() {
                let (xi, yi) = polygon[i];
                let (xj, yj) = polygon[j];
                if (yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi {
                    inside = !inside;
                }
                j = i;
            }
            out[y * w + x] = inside;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const W: usize = 160;
    const H: usize = 120;

    /// A textured static background with an optional bright square at (x, y).
    fn scene(square: Option<(usize, usize, usize)>, noise_seed: u64) -> Vec<u8> {
        let mut state = noise_seed | 1;
        let mut v: Vec<u8> = (0..W * H)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let noise = (state % 7) as i32 - 3; // ±3 sensor noise
                let base = 80 + ((i % W) / 20 * 5 + (i / W) / 20 * 3) as i32;
                (base + noise) as u8
            })
            .collect();
        if let Some((sx, sy, size)) = square {
            for y in sy..sy + size {
                for x in sx..sx + size {
                    v[y * W + x] = 230;
                }
            }
        }
        v
    }

    fn run(d: &mut MotionDetector, frame: &[u8]) -> MotionResult {
        d.process(&LumaFrame::new(W, H, W, frame).unwrap()).unwrap()
    }

    /// Feed the warm-up frames: the still scene with fresh noise each time.
    fn warm_up(d: &mut MotionDetector) {
        for seed in 0..MotionConfig::default().warmup_frames {
            assert!(run(d, &scene(None, 1000 + u64::from(seed))).warming_up);
        }
    }

    #[test]
    fn a_still_noisy_scene_is_quiet_and_a_moving_object_triggers() {
        let mut d = MotionDetector::new(W, H, &[], MotionConfig::default()).unwrap();
        warm_up(&mut d);
        for seed in 2..20 {
            let r = run(&mut d, &scene(None, seed));
            assert!(!r.triggered && r.score < 0.001, "noise only: {r:?}");
        }
        let r = run(&mut d, &scene(Some((40, 40, 24)), 21));
        assert!(r.triggered, "{r:?}");
        assert!(r.score > 0.02 && r.score < 0.1, "{r:?}");
        assert_eq!(r.zones.len(), 1);
    }

    #[test]
    fn masks_hide_motion_and_zones_score_separately() {
        let left = ZoneSpec {
            id: Some(1),
            polygon: vec![(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)],
            sensitivity: 0.5,
            is_mask: false,
        };
        let right = ZoneSpec {
            id: Some(2),
            polygon: vec![(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)],
            ..left.clone()
        };
        let mut d =
            MotionDetector::new(W, H, &[left.clone(), right], MotionConfig::default()).unwrap();
        warm_up(&mut d);
        let r = run(&mut d, &scene(Some((10, 40, 24)), 2)); // in the left half
        assert_eq!(
            r.zones.iter().map(|z| (z.id, z.triggered)).collect::<Vec<_>>(),
            [(Some(1), true), (Some(2), false)]
        );

        let mask = ZoneSpec { id: Some(3), is_mask: true, ..left };
        let mut d = MotionDetector::new(W, H, &[mask], MotionConfig::default()).unwrap();
        warm_up(&mut d);
        let r = run(&mut d, &scene(Some((10, 40, 24)), 2));
        assert!(!r.triggered, "masked: {r:?}");
        let r = run(&mut d, &scene(Some((110, 40, 24)), 3));
        assert!(r.triggered, "outside the mask: {r:?}");
    }

    #[test]
    fn sensitivity_decides_for_small_or_faint_changes() {
        let small = Some((70, 50, 6)); // 36 px of 19 200: 0.19 %
        let results: Vec<bool> = [0.0, 0.5, 1.0]
            .iter()
            .map(|&s| {
                let zone = ZoneSpec::full_frame(None, s);
                let mut d = MotionDetector::new(W, H, &[zone], MotionConfig::default()).unwrap();
                warm_up(&mut d);
                run(&mut d, &scene(small, 2)).triggered
            })
            .collect();
        assert_eq!(results, [false, false, true]);
    }

    #[test]
    fn a_lighting_change_resets_the_background_instead_of_triggering() {
        let mut d = MotionDetector::new(W, H, &[], MotionConfig::default()).unwrap();
        warm_up(&mut d);
        let bright: Vec<u8> = scene(None, 2).iter().map(|p| p.saturating_add(90)).collect();
        let r = run(&mut d, &bright);
        assert!(r.lighting_change && !r.triggered, "{r:?}");
        let r =
            run(&mut d, &scene(None, 3).iter().map(|p| p.saturating_add(90)).collect::<Vec<_>>());
        assert!(!r.triggered && !r.lighting_change, "the new light is the background: {r:?}");
    }

    #[test]
    fn the_background_absorbs_a_parked_object() {
        let mut d = MotionDetector::new(W, H, &[], MotionConfig::default()).unwrap();
        warm_up(&mut d);
        let parked = scene(Some((40, 40, 24)), 2);
        assert!(run(&mut d, &parked).triggered);
        let mut frames = 0;
        while run(&mut d, &parked).triggered {
            frames += 1;
            assert!(frames < 200, "never absorbed");
        }
        assert!(frames > 5, "not absorbed at once ({frames})");
    }

    #[test]
    fn large_frames_are_downscaled_and_strides_respected() {
        let (w, h, stride) = (1280, 720, 1344);
        let mut d = MotionDetector::new(w, h, &[], MotionConfig::default()).unwrap();
        assert_eq!(d.analysis_size(), (320, 180));
        let mut buf = vec![0xEEu8; stride * h]; // padding is garbage
        for y in 0..h {
            buf[y * stride..y * stride + w].fill(90);
        }
        for _ in 0..MotionConfig::default().warmup_frames {
            d.process(&LumaFrame::new(w, h, stride, &buf).unwrap()).unwrap();
        }
        assert!(!d.process(&LumaFrame::new(w, h, stride, &buf).unwrap()).unwrap().triggered);
        for y in 300..400 {
            buf[y * stride + 600..y * stride + 700].fill(250);
        }
        assert!(d.process(&LumaFrame::new(w, h, stride, &buf).unwrap()).unwrap().triggered);
    }

    #[test]
    fn the_fast_division_and_blur_match_the_plain_ones() {
        for d in 1..=300u32 {
            let div = Divisor::new(d);
            assert!((0..=255 * d).all(|x| div.div(x) == x / d), "{d}");
        }
        // Two-pass box blur with clamped edges and a floor division per pass.
        let reference = |img: &[u8], w: usize, h: usize, r: isize| -> Vec<u8> {
            let n = (2 * r + 1) as u32;
            let at = |v: isize, len: usize| v.clamp(0, len as isize - 1) as usize;
            let mut tmp = vec![0u32; w * h];
            for y in 0..h {
                for x in 0..w {
                    let sum: u32 =
                        (-r..=r).map(|k| u32::from(img[y * w + at(x as isize + k, w)])).sum();
                    tmp[y * w + x] = sum / n;
                }
            }
            (0..w * h)
                .map(|i| {
                    let (x, y) = (i % w, i / w);
                    let sum: u32 = (-r..=r).map(|k| tmp[at(y as isize + k, h) * w + x]).sum();
                    (sum / n) as u8
                })
                .collect()
        };
        for radius in [1, 2, 4] {
            let config = MotionConfig { blur_radius: radius, ..MotionConfig::default() };
            let mut d = MotionDetector::new(W, H, &[], config).unwrap();
            let img = scene(Some((30, 50, 20)), 7);
            d.process(&LumaFrame::new(W, H, W, &img).unwrap()).unwrap();
            assert_eq!(d.small, img, "no downscale at {W}");
            assert_eq!(d.blurred, reference(&img, W, H, radius as isize), "radius {radius}");
        }
        // Block averages at factors 2 and 3, with a padded stride.
        for f in [2usize, 3] {
            let (w, h, stride) = (W * f, H * f, W * f + 7);
            let img: Vec<u8> = (0..stride * h).map(|i| (i * 31 % 251) as u8).collect();
            let config = MotionConfig { max_analysis_width: W, ..MotionConfig::default() };
            let mut d = MotionDetector::new(w, h, &[], config).unwrap();
            assert_eq!(d.analysis_size(), (W, H));
            d.process(&LumaFrame::new(w, h, stride, &img).unwrap()).unwrap();
            let want: Vec<u8> = (0..W * H)
                .map(|i| {
                    let (x, y) = (i % W, i / W);
                    let sum: usize = (0..f * f)
                        .map(|k| usize::from(img[(y * f + k / f) * stride + x * f + k % f]))
                        .sum();
                    (sum / (f * f)) as u8
                })
                .collect();
            assert_eq!(d.small, want, "factor {f}");
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(LumaFrame::new(0, 10, 10, &[]).is_err());
        assert!(LumaFrame::new(10, 10, 5, &[0; 100]).is_err());
        assert!(LumaFrame::new(10, 10, 10, &[0; 99]).is_err());
        assert!(LumaFrame::new(usize::MAX, 3, usize::MAX, &[0; 4]).is_err());
        assert!(LumaFrame::new(10, 10, 12, &[0; 118]).is_ok(), "last row needs no padding");
        let mut d = MotionDetector::new(W, H, &[], MotionConfig::default()).unwrap();
        let other = vec![0u8; 100];
        let err = d.process(&LumaFrame::new(10, 10, 10, &other).unwrap()).unwrap_err();
        assert_eq!(err.kind(), pv_core::ErrorKind::InvalidInput);
        let bad_zones = [
            ZoneSpec { polygon: vec![(0.0, 0.0), (1.0, 1.0)], ..ZoneSpec::full_frame(None, 0.5) },
            ZoneSpec {
                polygon: vec![(0.0, 0.0), (1.5, 0.0), (0.0, 1.0)],
                ..ZoneSpec::full_frame(None, 0.5)
            },
            ZoneSpec {
                polygon: vec![(f64::NAN, 0.0), (1.0, 0.0), (0.0, 1.0)],
                ..ZoneSpec::full_frame(None, 0.5)
            },
            ZoneSpec::full_frame(None, 1.5),
        ];
        for z in bad_zones {
            let err = MotionDetector::new(W, H, &[z], MotionConfig::default()).unwrap_err();
            assert_eq!(err.kind(), pv_core::ErrorKind::InvalidInput);
        }
        assert!(MotionDetector::new(0, H, &[], MotionConfig::default()).is_err());
        let config = MotionConfig { learning_rate: 0.0, ..MotionConfig::default() };
        assert!(MotionDetector::new(W, H, &[], config).is_err());
        // A tiny frame and a degenerate (zero-area) zone still work.
        let sliver = ZoneSpec {
            polygon: vec![(0.5, 0.5), (0.5, 0.5), (0.5, 0.5)],
            ..ZoneSpec::full_frame(Some(9), 1.0)
        };
        let mut d = MotionDetector::new(1, 1, &[sliver], MotionConfig::default()).unwrap();
        d.process(&LumaFrame::new(1, 1, 1, &[5]).unwrap()).unwrap();
        let r = d.process(&LumaFrame::new(1, 1, 1, &[250]).unwrap()).unwrap();
        assert_eq!(r.zones[0].score, 0.0);
    }
}
