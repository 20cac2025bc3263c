//! Pictures as packed RGB8: decoding uploads (JPEG, PNG) with size caps, resizing, mirroring,
//! cropping and JPEG encoding.
//!
//! Every resampling here goes through one affine sampler that takes several bilinear samples per
//! output pixel when it shrinks, so a 4000-pixel photo scaled to a 128-pixel model input does not
//! alias.

use std::io::Cursor;

use ::image::metadata::Orientation;
use ::image::{ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::detect::BBox;
use crate::{Error, Result};

/// The largest encoded picture accepted (20 MiB).
pub const MAX_IMAGE_BYTES: usize = 20 << 20;
/// The most pixels a decoded picture may have (a guard against decompression bombs).
pub const MAX_PIXELS: u64 = 50_000_000;

/// A picture as packed 8-bit RGB, row-major, no padding between rows.
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl RgbImage {
    /// Wrap packed RGB8 data. Fails unless `data.len() == width * height * 3` and both sides are
    /// at least 1.
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<RgbImage> {
        let expected = u64::from(width) * u64::from(height) * 3;
        if width == 0 || height == 0 || data.len() as u64 != expected {
            return Err(Error::NotAnImage(format!(
                "a {width}x{height} RGB picture needs {expected} bytes, got {}",
                data.len()
            )));
        }
        Ok(RgbImage { width, height, data })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The packed RGB8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The colour at (`x`, `y`), which must be inside the picture.
    #[inline]
    pub(crate) fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// A left-right mirror image.
    pub fn mirrored(&self) -> RgbImage {
        let row = self.width as usize * 3;
        let mut data = Vec::with_capacity(self.data.len());
        for line in self.data.chunks_exact(row) {
            for px in line.chunks_exact(3).rev() {
                data.extend_from_slice(px);
            }
        }
        RgbImage { width: self.width, height: self.height, data }
    }

    /// The picture scaled to `width` x `height` (bilinear, averaging several samples per pixel
    /// when shrinking). A zero side is taken as 1.
    pub fn resized(&self, width: u32, height: u32) -> RgbImage {
        let (width, height) = (width.max(1), height.max(1));
        let sx = self.width as f32 / width as f32;
        let sy = self.height as f32 / height as f32;
        warp(self, width, height, &Affine([sx, 0.0, 0.0, 0.0, sy, 0.0]), [0, 0, 0])
    }

    /// A square crop centred on `b`, with a margin of 25% of the box's longer side on every side,
    /// scaled to `out_side` x `out_side`. Parts outside the picture are black.
    pub fn crop(&self, b: &BBox, out_side: u32) -> RgbImage {
        let out_side = out_side.max(1);
        let side = (b.w.max(b.h) * 1.5).max(1.0);
        let (cx, cy) = (b.x + b.w / 2.0, b.y + b.h / 2.0);
        let s = side / out_side as f32;
        warp(
            self,
            out_side,
            out_side,
            &Affine([s, 0.0, cx - side / 2.0, 0.0, s, cy - side / 2.0]),
            [0, 0, 0],
        )
    }
}

/// An affine map from output pixel coordinates to source pixel coordinates (continuous
/// coordinates: pixel `i` covers `[i, i+1)`): `sx = m0*x + m1*y + m2`, `sy = m3*x + m4*y + m5`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Affine(pub(crate) [f32; 6]);

impl Affine {
    /// How many source pixels one output pixel spans (the larger axis), at least 1.
    fn footprint(&self) -> f32 {
        let m = &self.0;
        let a = (m[0] * m[0] + m[3] * m[3]).sqrt();
        let b = (m[1] * m[1] + m[4] * m[4]).sqrt();
        a.max(b).max(1.0)
    }
}

/// Resample `src` through `map` into an `out_w` x `out_h` picture. Samples falling outside the
/// source take `fill`. When shrinking, each output pixel averages a k x k grid of bilinear
/// samples (k = how many source pixels it spans, at most 8).
pub(crate) fn warp(
    src: &RgbImage,
    out_w: u32,
    out_h: u32,
    map: &Affine,
    fill: [u8; 3],
) -> RgbImage {
    // Shrinking a lot: average whole blocks of source pixels first (each read once), so the
    // bilinear pass needs only a few samples per output pixel.
    let m = map.0;
    let factor = (m[0].abs().min(m[4].abs()).floor() as u32).min(src.width.min(src.height));
    if m[1] == 0.0 && m[3] == 0.0 && factor >= 2 {
        let small = box_shrink(src, factor);
        let f = factor as f32;
        let scaled = Affine([m[0] / f, 0.0, m[2] / f, 0.0, m[4] / f, m[5] / f]);
        return warp_bilinear(&small, out_w, out_h, &scaled, fill);
    }
    warp_bilinear(src, out_w, out_h, map, fill)
}

/// `src` shrunk by an integer `factor`: each output pixel is the mean of a `factor` x `factor`
/// block (blocks at the right and bottom edges may be smaller).
fn box_shrink(src: &RgbImage, factor: u32) -> RgbImage {
    let (w, h) = (src.width as usize, src.height as usize);
    let f = factor as usize;
    let (ow, oh) = (w.div_ceil(f), h.div_ceil(f));
    let mut sums = vec![0u32; ow * 3];
    let mut data = Vec::with_capacity(ow * oh * 3);
    for oy in 0..oh {
        sums.iter_mut().for_each(|v| *v = 0);
        let ys = oy * f..((oy + 1) * f).min(h);
        let rows = ys.len();
        for y in ys {
            let line = &src.data[y * w * 3..(y + 1) * w * 3];
            for (x, px) in line.chunks_exact(3).enumerate() {
                let o = (x / f) * 3;
                sums[o] += u32::from(px[0]);
                sums[o + 1] += u32::from(px[1]);
                sums[o + 2] += u32::from(px[2]);
            }
        }
        for ox in 0..ow {
            let cols = (ox * f..((ox + 1) * f).min(w)).len();
            let n = (rows * cols) as u32;
            for c in 0..3 {
                data.push(((sums[ox * 3 + c] + n / 2) / n) as u8);
            }
        }
    }
    RgbImage { width: ow as u32, height: oh as u32, data }
}

fn warp_bilinear(src: &RgbImage, out_w: u32, out_h: u32, map: &Affine, fill: [u8; 3]) -> RgbImage {
    let k = (map.footprint().ceil() as u32).clamp(1, 8);
    let m = map.0;
    let inv_k = 1.0 / k as f32;
    let mut data = Vec::with_capacity(out_w as usize * out_h as usize * 3);
    let (w, h) = (src.width as f32, src.height as f32);
    for y in 0..out_h {
        for x in 0..out_w {
            let mut acc = [0.0f32; 3];
            for j in 0..k {
                let oy = y as f32 + (j as f32 + 0.5) * inv_k;
                for i in 0..k {
                    let ox = x as f32 + (i as f32 + 0.5) * inv_k;
                    let sx = m[0] * ox + m[1] * oy + m[2];
                    let sy = m[3] * ox + m[4] * oy + m[5];
                    let px = if sx < 0.0 || sy < 0.0 || sx >= w || sy >= h {
                        [fill[0] as f32, fill[1] as f32, fill[2] as f32]
                    } else {
                        bilinear(src, sx - 0.5, sy - 0.5)
                    };
                    acc[0] += px[0];
                    acc[1] += px[1];
                    acc[2] += px[2];
                }
            }
            let n = (k * k) as f32;
            for c in acc {
                data.push((c / n).round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    RgbImage { width: out_w, height: out_h, data }
}

/// Bilinear sample at pixel-centre coordinates (`x`, `y`), clamped to the picture's edges.
#[inline]
fn bilinear(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let max_x = (img.width - 1) as f32;
    let max_y = (img.height - 1) as f32;
    let x = x.clamp(0.0, max_x);
    let y = y.clamp(0.0, max_y);
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as u32, y0 as u32);
    let x1 = (x0 + 1).min(img.width - 1);
    let y1 = (y0 + 1).min(img.height - 1);
    let (p00, p10) = (img.pixel(x0, y0), img.pixel(x1, y0));
    let (p01, p11) = (img.pixel(x0, y1), img.pixel(x1, y1));
    let mut out = [0.0f32; 3];
    for c in 0..3 {
        let top = p00[c] as f32 * (1.0 - fx) + p10[c] as f32 * fx;
        let bottom = p01[c] as f32 * (1.0 - fx) + p11[c] as f32 * fx;
        out[c] = top * (1.0 - fy) + bottom * fy;
    }
    out
}

/// Decode a JPEG or PNG of any colour type (grey, RGBA, 16-bit, palette) to RGB8, turned upright
/// by its EXIF orientation; transparency is dropped.
///
/// Errors: [`Error::ImageTooLarge`] when `bytes` exceeds [`MAX_IMAGE_BYTES`] or the picture
/// has more than [`MAX_PIXELS`] pixels (checked from the header, before any pixel memory is
/// allocated); [`Error::NotAnImage`] for anything that is not a readable JPEG or PNG.
pub fn decode(bytes: &[u8]) -> Result<RgbImage> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(Error::ImageTooLarge(format!(
            "the picture is {} MiB; the limit is {} MiB",
            bytes.len() >> 20,
            MAX_IMAGE_BYTES >> 20
        )));
    }
    let format = match ::image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png)) => f,
        _ => {
            return Err(Error::NotAnImage("the file is not a JPEG or PNG picture".to_owned()));
        }
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 8 + (64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(not_an_image)?;
    let (w, h) = decoder.dimensions();
    let pixels = u64::from(w) * u64::from(h);
    if pixels > MAX_PIXELS {
        return Err(too_many_pixels(w, h));
    }
    if pixels == 0 {
        return Err(Error::NotAnImage("the picture has no pixels".to_owned()));
    }
    // Phone photos are often stored sideways with an EXIF note saying how to turn them.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut dynamic = ::image::DynamicImage::from_decoder(decoder).map_err(not_an_image)?;
    dynamic.apply_orientation(orientation);
    let rgb = dynamic.into_rgb8();
    let (width, height) = rgb.dimensions();
    RgbImage::new(width, height, rgb.into_raw())
}

fn too_many_pixels(w: u32, h: u32) -> Error {
    Error::ImageTooLarge(format!(
        "the picture is {w}x{h} pixels; the limit is {} megapixels",
        MAX_PIXELS / 1_000_000
    ))
}

fn not_an_image(e: ::image::ImageError) -> Error {
    match e {
        ::image::ImageError::Limits(_) => Error::ImageTooLarge(
            "the picture is too large to decode within PentaVision's memory limit".to_owned(),
        ),
        other => Error::NotAnImage(format!("the picture could not be read: {other}")),
    }
}

/// Encode `img` as a baseline JPEG; `quality` is 1..=100 (values outside are clamped).
pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    ::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
        .encode(&img.data, img.width, img.height, ::image::ExtendedColorType::Rgb8)
        .map_err(|e| Error::Io(format!("could not encode the picture as JPEG: {e}")))?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[(x * 10) as u8, (y * 10) as u8, 7]);
            }
        }
        RgbImage::new(w, h, data).unwrap()
    }

    #[test]
    fn new_checks_length() {
        assert!(RgbImage::new(2, 2, vec![0; 12]).is_ok());
        assert!(matches!(RgbImage::new(2, 2, vec![0; 11]), Err(Error::NotAnImage(_))));
        assert!(RgbImage::new(0, 2, vec![]).is_err());
    }

    #[test]
    fn mirror_flips_columns() {
        let img = gradient(3, 2);
        let m = img.mirrored();
        assert_eq!(m.pixel(0, 1), img.pixel(2, 1));
        assert_eq!(m.mirrored(), img);
    }

    #[test]
    fn resize_same_size_is_identity_and_halving_averages() {
        let img = gradient(8, 6);
        assert_eq!(img.resized(8, 6), img);
        let half = img.resized(4, 3);
        assert_eq!((half.width(), half.height()), (4, 3));
        // Pixel (0,0) of the half-size picture averages source columns 0,1 (0 and 10).
        assert_eq!(half.pixel(0, 0)[0], 5);
    }

    #[test]
    fn crop_is_square_and_centred() {
        let img = gradient(20, 20);
        let c = img.crop(&BBox { x: 4.5, y: 4.5, w: 10.0, h: 10.0 }, 15);
        assert_eq!((c.width(), c.height()), (15, 15));
        // Side 15 around centre (9.5, 9.5): the crop starts at source pixel 2.
        assert_eq!(c.pixel(7, 7), img.pixel(9, 9));
    }

    #[test]
    fn jpeg_round_trip() {
        let img = gradient(16, 16);
        let jpeg = encode_jpeg(&img, 90).unwrap();
        let back = decode(&jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (16, 16));
    }

    #[test]
    fn rejects_non_images_and_oversized_input() {
        assert!(matches!(decode(b"hello"), Err(Error::NotAnImage(_))));
        let big = vec![0u8; MAX_IMAGE_BYTES + 1];
        assert!(matches!(decode(&big), Err(Error::ImageTooLarge(_))));
    }
}
