//! The segment writer of the built-in ingest: one fragmented MP4 file per segment, written as
//! the access units arrive.
//!
//! Layout: `ftyp` + `moov` (empty sample tables, `mvex`) when the file is created, then one
//! `moof` + `mdat` per fragment, and an `mfra` (key-frame index) when it is finished: the same
//! shape the GStreamer recorder writes, so [`crate::mp4::inspect`] and the recovery pass read
//! both alike. A fragment starts at every video key frame and whenever the queued video
//! reaches the fragment duration; each is written with one vectored write of its header and
//! the samples' own [`Bytes`] (sample data is never copied). A kill loses at most the fragment
//! being queued; a fragment cut short is what recovery truncates away.
//!
//! Times: video in 90 kHz ticks, audio in ticks of its sample rate, both counted from the
//! segment's first video frame (`tfdt` of the first fragment is 0). Sample durations come from
//! the next sample's decode time, so one sample per track is held back until the next
//! arrives (or [`SegmentWriter::finish`]).

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use crate::fmp4::{
    self, AUDIO_TRACK_ID, AudioFormat, AudioTrack, Fmp4Codec, Fmp4Error, RunSample, TrackRun,
    VIDEO_TIMESCALE, VIDEO_TRACK_ID, VideoTrack,
};
use crate::tap::{AccessUnit, AudioCodec, AudioParams, Track, VideoCodec, VideoParams};
use crate::{Error, Result};

/// Video sample duration used when nothing better is known (one frame at 30 fps).
const DEFAULT_VIDEO_TICKS: u32 = VIDEO_TIMESCALE / 30;
/// Samples per AAC-LC frame, for a last AAC frame of unknown duration.
const AAC_FRAME: u32 = 1024;

/// What a finished segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    /// The file's size.
    pub size_bytes: u64,
    /// Decode time stamp of the first video frame (the source's clock).
    pub first_dts: Duration,
    /// Decode time stamp of the last video frame plus its duration (the source's clock).
    pub end_dts: Duration,
    /// `end_dts - first_dts` in milliseconds.
    pub duration_ms: i64,
    /// Video frames written.
    pub video_samples: u64,
    /// Audio frames (AAC) or blocks (G.711) written.
    pub audio_samples: u64,
}

/// A unit waiting for the next one of its track, which gives its duration.
struct Pending {
    data: Bytes,
    /// Where the sample sits on the track's timeline (ticks from the segment's origin).
    at: u64,
    sync: bool,
    composition_offset: i32,
    /// The duration the unit itself gave (or its size implies), for when no unit follows.
    own_duration: Option<u32>,
}

/// One track's samples queued for the next fragment.
struct Queue {
    timescale: u32,
    /// Whether the track is G.711 with this many channels (block duration = bytes / channels).
    g711_channels: Option<u32>,
    pending: Option<Pending>,
    samples: Vec<RunSample>,
    data: Vec<Bytes>,
    /// Decode time of the first queued sample.
    start: u64,
    /// Decode time just after the last queued sample.
    end: u64,
    last_duration: Option<u32>,
    written: u64,
}

impl Queue {
    fn new(timescale: u32, g711_channels: Option<u32>) -> Queue {
        Queue {
            timescale,
            g711_channels,
            pending: None,
            samples: Vec::new(),
            data: Vec::new(),
            start: 0,
            end: 0,
            last_duration: None,
            written: 0,
        }
    }

    /// Take a unit at `at` ticks: the held one gets its duration and is queued.
    fn push(&mut self, unit: &AccessUnit, at: u64, composition_offset: i32) {
        let placed = match self.pending.take() {
            // Never before the previous sample: durations are at least one tick.
            Some(p) => {
                let duration = clamp_u32(at.saturating_sub(p.at)).max(1);
                self.queue(p, duration);
                self.end
            }
            None => at,
        }
        .max(at);
        let own_duration =
            unit.duration().map(|d| clamp_u32(ticks(d, self.timescale))).or_else(|| {
                let channels = self.g711_channels?.max(1);
                Some(clamp_u32((unit.len() as u64) / u64::from(channels)))
            });
        self.pending = Some(Pending {
            data: unit.data().clone(),
            at: placed,
            sync: unit.track() == Track::Audio || unit.is_key_frame(),
            composition_offset,
            own_duration: own_duration.filter(|d| *d > 0),
        });
    }

    fn queue(&mut self, p: Pending, duration: u32) {
        if self.samples.is_empty() {
            self.start = p.at;
        }
        self.end = p.at + u64::from(duration);
        self.last_duration = Some(duration);
        self.samples.push(RunSample {
            size: clamp_u32(p.data.len() as u64),
            duration,
            sync: p.sync,
            composition_offset: p.composition_offset,
        });
        self.data.push(p.data);
    }

    /// Queue the held unit with its own duration, else the previous sample's, else `default`.
    fn release(&mut self, default: u32) {
        if let Some(p) = self.pending.take() {
            let duration = p.own_duration.or(self.last_duration).unwrap_or(default).max(1);
            self.queue(p, duration);
        }
    }

    fn queued_ticks(&self) -> u64 {
        if self.samples.is_empty() { 0 } else { self.end - self.start }
    }

    fn run(&self, track_id: u32) -> TrackRun<'_> {
        TrackRun {
            track_id,
            decode_time: self.start,
            composition_offsets: self.samples.iter().any(|s| s.composition_offset != 0),
            samples: &self.samples,
        }
    }

    fn clear(&mut self) {
        self.written += self.samples.len() as u64;
        self.samples.clear();
        self.data.clear();
    }
}

/// Writes one segment file: [`create`](SegmentWriter::create), [`push`](SegmentWriter::push)
/// every unit, [`finish`](SegmentWriter::finish).
pub(crate) struct SegmentWriter {
    file: File,
    path: PathBuf,
    fragment_ticks: u64,
    sequence: u32,
    video: Queue,
    audio: Option<Queue>,
    /// Decode time stamp of the first video frame: the segment's time origin.
    origin: Option<Duration>,
    bytes: u64,
    /// Video decode time up to which fragments are written.
    video_written: u64,
    /// (decode time, moof offset) of fragments that start with a key frame, for the `mfra`.
    key_fragments: Vec<(u64, u64)>,
}

impl SegmentWriter {
    /// Create the file (it must not exist) and write `ftyp` + `moov`: the video track, and an
    /// audio track when `audio` is given (AAC as `mp4a` + `esds`, G.711 as QuickTime-style
    /// `ulaw` / `alaw` entries, which ffmpeg reads and browsers do not play). A fragment is
    /// written at each video key frame and whenever `fragment` of video is queued.
    pub(crate) fn create(
        path: &Path,
        video: &VideoParams,
        audio: Option<&AudioParams>,
        fragment: Duration,
    ) -> Result<SegmentWriter> {
        let codec = match video.codec {
            VideoCodec::H264 => Fmp4Codec::H264,
            VideoCodec::H265 => Fmp4Codec::H265,
        };
        let video_track = VideoTrack {
            codec,
            codec_data: video.codec_data.clone(),
            width: video.width,
            height: video.height,
        };
        let audio_track = audio.map(|a| {
            let format = match a.codec {
                AudioCodec::Aac => AudioFormat::Aac,
                AudioCodec::Pcmu => AudioFormat::Pcmu,
                AudioCodec::Pcma => AudioFormat::Pcma,
            };
            let track = AudioTrack {
                codec_data: a.codec_data.clone(),
                sample_rate: a.sample_rate,
                channels: u16::try_from(a.channels).unwrap_or(u16::MAX),
            };
            (track, format)
        });
        let init = fmp4::recording_init(&video_track, audio_track.as_ref().map(|(t, f)| (t, *f)))
            .map_err(mux_error)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        file.write_all(&init).map_err(|e| Error::io(path, e))?;
        let audio = audio.map(|a| {
            let g711 = matches!(a.codec, AudioCodec::Pcmu | AudioCodec::Pcma);
            Queue::new(a.sample_rate, g711.then_some(a.channels))
        });
        Ok(SegmentWriter {
            file,
            path: path.to_owned(),
            fragment_ticks: ticks(fragment, VIDEO_TIMESCALE).max(1),
            sequence: 0,
            video: Queue::new(VIDEO_TIMESCALE, None),
            audio,
            origin: None,
            bytes: init.len() as u64,
            video_written: 0,
            key_fragments: Vec::new(),
        })
    }

    /// Queue one unit (video or audio), writing a fragment first when this unit is a video key
    /// frame or `fragment` of video is queued. Video before the first key frame, audio before
    /// the first video frame or earlier than it, audio when the file has no audio track, and
    /// units without time stamps are dropped: the segment starts with a decodable frame and
    /// every time is counted from it.
    pub(crate) fn push(&mut self, unit: &AccessUnit) -> Result<()> {
        let Some(dts) = unit.dts_or_pts() else {
            tracing::debug!(track = ?unit.track(), "dropping an access unit without time stamps");
            return Ok(());
        };
        match unit.track() {
            Track::Video => {
                let origin = match self.origin {
                    Some(o) => o,
                    None if unit.is_key_frame() => *self.origin.insert(dts),
                    None => return Ok(()),
                };
                let at = ticks(dts.saturating_sub(origin), VIDEO_TIMESCALE);
                let cto = unit.pts().map_or(0, |pts| {
                    let diff = ticks(pts.abs_diff(dts), VIDEO_TIMESCALE);
                    let diff = i64::try_from(diff).unwrap_or(i64::MAX);
                    let signed = if pts >= dts { diff } else { -diff };
                    i32::try_from(signed).unwrap_or(if signed < 0 { i32::MIN } else { i32::MAX })
                });
                // The held frame gets its duration from this one and is queued; a key frame
                // starts a new fragment.
                self.video.push(unit, at, cto);
                if !self.video.samples.is_empty()
                    && (unit.is_key_frame() || self.video.queued_ticks() >= self.fragment_ticks)
                {
                    self.flush()?;
                }
            }
            Track::Audio => {
                let (Some(origin), Some(audio)) = (self.origin, self.audio.as_mut()) else {
                    return Ok(());
                };
                if dts < origin {
                    return Ok(());
                }
                let at = ticks(dts - origin, audio.timescale);
                audio.push(unit, at, 0);
                // A video stall must not grow the queue without bound.
                let limit = self.fragment_ticks.saturating_mul(2 * u64::from(audio.timescale))
                    / u64::from(VIDEO_TIMESCALE);
                if audio.queued_ticks() > limit {
                    self.flush()?;
                }
            }
        }
        Ok(())
    }

    /// Write everything queued (the last sample of each track lasts as long as its unit says,
    /// else as long as the track's previous sample) and the closing `mfra`. The caller fsyncs
    /// the file and its directory.
    pub(crate) fn finish(mut self) -> Result<SegmentSummary> {
        self.video.release(DEFAULT_VIDEO_TICKS);
        if let Some(audio) = self.audio.as_mut() {
            audio.release(AAC_FRAME);
        }
        self.flush()?;
        let mfra = fmp4::mfra(&self.key_fragments);
        self.write(&mut [IoSlice::new(&mfra)])?;
        self.bytes += mfra.len() as u64;
        let first_dts = self.origin.unwrap_or_default();
        let written = self.written().1;
        Ok(SegmentSummary {
            size_bytes: self.bytes,
            first_dts,
            end_dts: first_dts + written,
            duration_ms: i64::try_from(written.as_millis()).unwrap_or(i64::MAX),
            video_samples: self.video.written,
            audio_samples: self.audio.as_ref().map_or(0, |a| a.written),
        })
    }

    /// Bytes written so far and the media (video) duration they hold.
    pub(crate) fn written(&self) -> (u64, Duration) {
        let nanos = u128::from(self.video_written) * 1_000_000_000 / u128::from(VIDEO_TIMESCALE);
        (self.bytes, Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
    }

    /// Write the queued samples of both tracks as one fragment.
    fn flush(&mut self) -> Result<()> {
        let audio_queued = self.audio.as_ref().is_some_and(|a| !a.samples.is_empty());
        if self.video.samples.is_empty() && !audio_queued {
            return Ok(());
        }
        self.sequence = self.sequence.wrapping_add(1).max(1);
        let mut runs = vec![self.video.run(VIDEO_TRACK_ID)];
        if let Some(audio) = &self.audio {
            runs.push(audio.run(AUDIO_TRACK_ID));
        }
        let header = fmp4::fragment_header(self.sequence, &runs).map_err(mux_error)?;
        let audio_data = self.audio.as_ref().map_or(&[][..], |a| &a.data[..]);
        let mut slices: Vec<IoSlice<'_>> = std::iter::once(&header[..])
            .chain(self.video.data.iter().chain(audio_data).map(|b| &b[..]))
            .map(IoSlice::new)
            .collect();
        let len: u64 = slices.iter().map(|s| s.len() as u64).sum();
        let moof_at = self.bytes;
        write_all(&mut self.file, &mut slices).map_err(|e| Error::io(&self.path, e))?;
        self.bytes += len;
        if self.video.samples.first().is_some_and(|s| s.sync) {
            self.key_fragments.push((self.video.start, moof_at));
        }
        if !self.video.samples.is_empty() {
            self.video_written = self.video.end;
        }
        self.video.clear();
        if let Some(audio) = self.audio.as_mut() {
            audio.clear();
        }
        Ok(())
    }

    fn write(&mut self, slices: &mut [IoSlice<'_>]) -> Result<()> {
        write_all(&mut self.file, slices).map_err(|e| Error::io(&self.path, e))
    }
}

/// `write_all` for vectored writes: writes the slices in order, whatever the kernel takes
/// per call.
fn write_all(file: &mut File, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    let mut left: usize = slices.iter().map(|s| s.len()).sum();
    while left > 0 {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                left = left.saturating_sub(n);
                IoSlice::advance_slices(&mut slices, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn mux_error(e: Fmp4Error) -> Error {
    Error::InvalidFrame(format!("cannot write MP4: {e}"))
}

/// `d` in ticks of `rate` per second (rounded down).
fn ticks(d: Duration, rate: u32) -> u64 {
    u64::try_from(d.as_nanos() * u128::from(rate) / 1_000_000_000).unwrap_or(u64::MAX)
}

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::process::Command;

    use super::*;
    use crate::mp4;

    /// An H.264 RBSP writer: bits, Exp-Golomb codes, then emulation prevention.
    #[derive(Default)]
    struct Bits {
        bytes: Vec<u8>,
        bit: u8,
    }

    impl Bits {
        fn u(&mut self, n: u32, v: u32) -> &mut Self {
            for i in (0..n).rev() {
                if self.bit == 0 {
                    self.bytes.push(0);
                }
                let last = self.bytes.last_mut().unwrap();
                *last |= (((v >> i) & 1) as u8) << (7 - self.bit);
                self.bit = (self.bit + 1) % 8;
            }
            self
        }
        fn ue(&mut self, v: u32) -> &mut Self {
            let len = 32 - (v + 1).leading_zeros();
            self.u(len - 1, 0).u(len, v + 1)
        }
        fn se(&mut self, v: i32) -> &mut Self {
            self.ue(if v > 0 { 2 * v as u32 - 1 } else { (-2 * v) as u32 })
        }
        fn align_zero(&mut self) -> &mut Self {
            while self.bit != 0 {
                self.u(1, 0);
            }
            self
        }
        /// RBSP trailing bits, then the NAL unit (header byte + escaped payload).
        fn nal(&mut self, header: u8) -> Vec<u8> {
            self.u(1, 1).align_zero();
            let mut out = vec![header];
            let mut zeros = 0;
            for &b in &self.bytes {
                if zeros >= 2 && b <= 3 {
                    out.push(3);
                    zeros = 0;
                }
                zeros = if b == 0 { zeros + 1 } else { 0 };
                out.push(b);
            }
            out
        }
    }

    const MBS_W: u32 = 4;
    const MBS_H: u32 = 3;

    /// Baseline SPS for a 64x48 picture: POC type 2, one reference frame, 4-bit frame_num.
    fn sps() -> Vec<u8> {
        let mut b = Bits::default();
        b.u(8, 66).u(8, 0xc0).u(8, 30).ue(0).ue(0).ue(2).ue(1).u(1, 0);
        b.ue(MBS_W - 1).ue(MBS_H - 1).u(1, 1).u(1, 1).u(1, 0).u(1, 0);
        b.nal(0x67)
    }

    fn pps() -> Vec<u8> {
        let mut b = Bits::default();
        b.ue(0).ue(0).u(1, 0).u(1, 0).ue(0).ue(0).ue(0).u(1, 0).u(2, 0);
        b.se(0).se(0).se(0).u(1, 1).u(1, 0).u(1, 0);
        b.nal(0x68)
    }

    /// The avcC record, built by hand (4-byte NAL lengths).
    fn avcc() -> Bytes {
        let (sps, pps) = (sps(), pps());
        let mut v = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
        v.extend((sps.len() as u16).to_be_bytes());
        v.extend(&sps);
        v.push(1);
        v.extend((pps.len() as u16).to_be_bytes());
        v.extend(&pps);
        Bytes::from(v)
    }

    /// A decodable IDR picture: every macroblock I_PCM with the given luma.
    fn idr(luma: u8) -> Vec<u8> {
        let mut b = Bits::default();
        // first_mb, slice_type I, pps, frame_num, idr_pic_id, no_output_of_prior_pics,
        // long_term_reference, slice_qp_delta, disable_deblocking_filter_idc
        b.ue(0).ue(7).ue(0).u(4, 0).ue(0).u(1, 0).u(1, 0).se(0).ue(1);
        for _ in 0..MBS_W * MBS_H {
            b.ue(25).align_zero(); // I_PCM
            for i in 0..384 {
                b.u(8, if i < 256 { u32::from(luma) } else { 128 });
            }
        }
        b.nal(0x65)
    }

    /// A decodable P picture: every macroblock skipped.
    fn skip(frame_num: u32) -> Vec<u8> {
        let mut b = Bits::default();
        // first_mb, slice_type P, pps, frame_num, num_ref_idx_override, ref_pic_list_mod,
        // adaptive_ref_pic_marking, slice_qp_delta, disable_deblocking_filter_idc, skip run
        b.ue(0).ue(5).ue(0).u(4, frame_num % 16).u(1, 0).u(1, 0).u(1, 0).se(0).ue(1);
        b.ue(MBS_W * MBS_H);
        b.nal(0x41)
    }

    fn length_prefixed(nal: &[u8]) -> Bytes {
        let mut v = (nal.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(nal);
        Bytes::from(v)
    }

    fn video_params() -> VideoParams {
        VideoParams {
            codec: VideoCodec::H264,
            codec_data: avcc(),
            width: MBS_W * 16,
            height: MBS_H * 16,
            framerate: Some((30, 1)),
        }
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// `frames` video frames at 30 fps from `start`, a key frame every `gop`, each followed by
    /// the audio blocks of its interval from `audio` (duration of one block, bytes).
    fn units(
        start: Duration,
        frames: u32,
        gop: u32,
        audio: Option<(Duration, Bytes)>,
    ) -> Vec<AccessUnit> {
        let frame = Duration::from_nanos(1_000_000_000 / 30);
        let mut out = Vec::new();
        let mut audio_at = start;
        for i in 0..frames {
            let dts = start + frame * i;
            let key = i % gop == 0;
            let data = if key { idr(16 + (i / gop) as u8 * 40) } else { skip(i % gop) };
            let t = Some(dts);
            out.push(AccessUnit::new(Track::Video, length_prefixed(&data), t, t, None, key));
            // The audio of this frame's interval follows it.
            if let Some((block, data)) = &audio {
                while audio_at < dts + frame {
                    let t = Some(audio_at);
                    out.push(AccessUnit::new(Track::Audio, data.clone(), t, t, None, true));
                    audio_at += *block;
                }
            }
        }
        out
    }

    fn write(path: &Path, audio: Option<&AudioParams>, units: &[AccessUnit]) -> SegmentSummary {
        let mut w = SegmentWriter::create(path, &video_params(), audio, ms(1000)).unwrap();
        for u in units {
            w.push(u).unwrap();
        }
        w.finish().unwrap()
    }

    fn tools() -> bool {
        let ok =
            |p: &str| Command::new(p).arg("-version").output().is_ok_and(|o| o.status.success());
        let found = ok("ffprobe") && ok("ffmpeg");
        if !found {
            eprintln!("SKIPPED: ffmpeg/ffprobe not found on PATH");
        }
        found
    }

    fn ffprobe(path: &Path) -> serde_json::Value {
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-show_streams", "-show_format", "-of", "json"])
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Decode every stream; ffmpeg's complaints (nothing when the file is right).
    fn decode_errors(path: &Path) -> String {
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(path)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn stream<'a>(probe: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
        probe["streams"].as_array().unwrap().iter().find(|s| s["codec_type"] == kind).unwrap()
    }

    fn seconds(v: &serde_json::Value) -> f64 {
        v.as_str().unwrap().parse().unwrap()
    }

    #[test]
    fn h264_and_aac_segments_read_right() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.mp4");
        let aac = AudioParams {
            codec: AudioCodec::Aac,
            codec_data: Bytes::from_static(&[0x11, 0x90]), // AAC-LC, 48 kHz, stereo
            sample_rate: 48_000,
            channels: 2,
        };
        // Starts 5 s into the session; 3 s of video (GOPs of 1 s), AAC frames of 1024 samples.
        let block = Duration::from_nanos(1024 * 1_000_000_000 / 48_000);
        let units = units(ms(5000), 90, 30, Some((block, Bytes::from_static(&[0x21; 40]))));
        let audio_units = units.iter().filter(|u| u.track() == Track::Audio).count() as u64;
        let summary = write(&path, Some(&aac), &units);
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(summary.size_bytes, len);
        assert_eq!((summary.first_dts, summary.video_samples), (ms(5000), 90));
        assert_eq!(summary.audio_samples, audio_units);
        // The last frame lasts as long as the one before it (one tick of rounding per frame).
        assert!(summary.duration_ms.abs_diff(3000) <= 1, "{summary:?}");
        let end = (summary.end_dts - summary.first_dts).as_secs_f64();
        assert!((end - 3.0).abs() < 0.001, "{summary:?}");

        if tools() {
            let probe = ffprobe(&path);
            let video = stream(&probe, "video");
            assert_eq!(video["codec_name"], "h264");
            assert_eq!((&video["width"], &video["height"]), (&64.into(), &48.into()));
            assert_eq!(video["time_base"], "1/90000");
            let audio = stream(&probe, "audio");
            assert_eq!(
                (&audio["codec_name"], &audio["sample_rate"]),
                (&"aac".into(), &"48000".into())
            );
            assert_eq!(audio["channels"], 2);
            let duration = seconds(&probe["format"]["duration"]);
            assert!((duration - 3.0).abs() < 0.05, "{duration}");
        }

        let info = mp4::inspect(&path).unwrap();
        assert!(info.is_complete(), "{info:?}");
        assert_eq!((info.fragments, info.file_len, info.trailing_bytes), (3, len, 0));
        assert!(info.valid_len < len && info.valid_len > len - 200, "all but the mfra: {info:?}");
        assert_eq!(info.video.as_ref().unwrap().codec, "h264");
        assert_eq!(info.audio.as_ref().unwrap().codec, "aac");
        assert!(info.duration_ns.abs_diff(3_000_000_000) < 2_000_000, "{}", info.duration_ns);

        // Cut inside the last fragment: what recovery keeps is the first two, which still play.
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.mp4");
        std::fs::write(&cut, &bytes[..bytes.len() - 2000]).unwrap();
        let info = mp4::inspect(&cut).unwrap();
        assert!(!info.is_complete());
        assert_eq!(info.fragments, 2);
        assert!(info.duration_ns.abs_diff(2_000_000_000) < 2_000_000, "{}", info.duration_ns);
        mp4::truncate(&cut, info.valid_len).unwrap();
        if tools() {
            let video = ffprobe(&cut);
            let duration = seconds(&video["format"]["duration"]);
            assert!((duration - 2.0).abs() < 0.05, "{duration}");
        }
    }

    #[test]
    fn g711_tracks_are_read_as_pcm() {
        let cases =
            [(AudioCodec::Pcmu, "ulaw", "pcm_mulaw"), (AudioCodec::Pcma, "alaw", "pcm_alaw")];
        for (codec, entry, name) in cases {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("g711.mp4");
            let g711 =
                AudioParams { codec, codec_data: Bytes::new(), sample_rate: 8000, channels: 1 };
            // 20 ms blocks of 160 samples (0xd5: A-law silence; fine as mu-law too).
            let units = units(ms(0), 60, 30, Some((ms(20), Bytes::from(vec![0xd5; 160]))));
            let summary = write(&path, Some(&g711), &units);
            assert_eq!(summary.audio_samples, 100);
            let info = mp4::inspect(&path).unwrap();
            // mp4.rs names the `ulaw` / `alaw` entries as ffmpeg does.
            assert_eq!(info.audio.as_ref().unwrap().codec, name);
            let file = std::fs::read(&path).unwrap();
            assert!(file.windows(4).any(|w| w == entry.as_bytes()), "{entry} sample entry");
            if tools() {
                let probe = ffprobe(&path);
                let audio = stream(&probe, "audio");
                assert_eq!(audio["codec_name"], name);
                assert_eq!(
                    (&audio["sample_rate"], &audio["channels"]),
                    (&"8000".into(), &1.into())
                );
                assert!((seconds(&audio["duration"]) - 2.0).abs() < 0.03, "{audio}");
                assert_eq!(stream(&probe, "video")["codec_name"], "h264");
                // Video and audio decode cleanly.
                assert_eq!(decode_errors(&path), "");
            }
        }
    }

    #[test]
    fn fragments_start_at_key_frames_or_after_the_fragment_duration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.mp4");
        // GOPs of 2 s with 1 s fragments: a fragment every second, every other one a key.
        let units = units(ms(0), 120, 60, None);
        let mut w = SegmentWriter::create(&path, &video_params(), None, ms(1000)).unwrap();
        for u in &units {
            w.push(u).unwrap();
        }
        // Three fragments are out (0-1 s, 1-2 s, 2-3 s); nothing is buffered unwritten.
        let (bytes, media) = w.written();
        assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
        assert!((media.as_secs_f64() - 3.0).abs() < 0.001, "{media:?}");
        let summary = w.finish().unwrap();
        assert_eq!(summary.video_samples, 120);
        let info = mp4::inspect(&path).unwrap();
        assert_eq!(info.fragments, 4);
        assert!(info.is_complete());
        if tools() {
            assert_eq!(decode_errors(&path), "");
        }
    }

    #[test]
    fn composition_offsets_are_written_when_pts_differs_from_dts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.mp4");
        let frame = ms(40);
        // Presentation two frames after decode (as with B-frames reordering).
        let units: Vec<AccessUnit> = units(ms(0), 10, 10, None)
            .into_iter()
            .map(|u| {
                let dts = u.dts().unwrap();
                AccessUnit::new(
                    Track::Video,
                    u.data().clone(),
                    Some(dts + frame * 2),
                    Some(dts),
                    None,
                    u.is_key_frame(),
                )
            })
            .collect();
        write(&path, None, &units);
        if tools() {
            let out = Command::new("ffprobe")
                .args(["-v", "error", "-show_entries", "packet=pts,dts", "-of", "csv=p=0"])
                .arg(&path)
                .output()
                .unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let first: Vec<&str> = text.lines().next().unwrap().split(',').collect();
            assert_eq!(first, ["7200", "0"], "{text}");
        }
    }

    #[test]
    fn audio_before_video_and_video_before_a_key_frame_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.mp4");
        let aac = AudioParams {
            codec: AudioCodec::Aac,
            codec_data: Bytes::from_static(&[0x11, 0x90]),
            sample_rate: 48_000,
            channels: 2,
        };
        let mut all = units(ms(0), 45, 30, None);
        all.drain(..5); // starts with non-key frames
        let early = AccessUnit::new(
            Track::Audio,
            Bytes::from_static(&[1]),
            None,
            Some(ms(900)),
            None,
            true,
        );
        all.insert(0, early);
        let summary = write(&path, Some(&aac), &all);
        assert_eq!((summary.video_samples, summary.audio_samples), (15, 0));
        assert_eq!(summary.first_dts, Duration::from_nanos(1_000_000_000 / 30) * 30);
    }

    #[test]
    fn an_existing_file_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.mp4");
        std::fs::write(&path, b"keep").unwrap();
        assert!(SegmentWriter::create(&path, &video_params(), None, ms(1000)).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    }
}
