//! A fragmented MP4 (ISO BMFF) writer for Media Source Extensions live streaming.
//!
//! [`Muxer::init_segment`] gives the initialization segment (`ftyp` + `moov` with `mvex`, no
//! samples); every [`Muxer::video_fragment`] and [`Muxer::audio_fragment`] call gives one media
//! segment (`moof` + `mdat`) holding a single sample, for the lowest latency. Video uses a
//! 90 kHz timescale ([`VIDEO_TIMESCALE`]), audio its sample rate. [`mime_type`] gives the string
//! for `MediaSource.isTypeSupported` and `addSourceBuffer`.
//!
//! [`fragment_header`] builds the `moof` and `mdat` header of a fragment with many samples of
//! both tracks (the muxer's one-sample fragments are made with it too); the caller writes the
//! sample data after it, uncopied. The recorder's segment writer (`ingest::segment`) uses it,
//! with an initialization segment that can also describe G.711 audio.
//!
//! Samples are written as given: video access units must already be length-prefixed NAL units
//! (AVCC/HVCC form, with the NAL length size of the track's `codec_data`), audio raw AAC frames
//! without ADTS headers. Nothing here decodes or rewrites media, and nothing reads files:
//! [`crate::mp4`] is the reader of recorded files.

use bytes::{BufMut, Bytes};

/// Video media time units per second.
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// Track id of the video track in everything written here.
pub const VIDEO_TRACK_ID: u32 = 1;
/// Track id of the audio track (when there is one).
pub const AUDIO_TRACK_ID: u32 = 2;
/// Largest codec configuration record accepted (real ones are well under a kilobyte).
const MAX_CODEC_DATA: usize = 1 << 20;
/// Largest sample accepted: sample and `mdat` sizes are 32-bit.
const MAX_SAMPLE: u32 = u32::MAX - 4096;
/// Sample flags of a sync sample (depends on no other sample).
const SYNC: u32 = 0x0200_0000;
/// Sample flags of a non-sync sample (depends on others).
const NON_SYNC: u32 = 0x0101_0000;
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Video codec of a [`VideoTrack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmp4Codec {
    /// H.264 / AVC: `codec_data` is an `AVCDecoderConfigurationRecord` (avcC).
    H264,
    /// H.265 / HEVC: `codec_data` is an `HEVCDecoderConfigurationRecord` (hvcC).
    H265,
}

/// Video track parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    /// The codec.
    pub codec: Fmp4Codec,
    /// The decoder configuration record: avcC for H.264, hvcC for H.265.
    pub codec_data: Bytes,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
}

/// AAC audio track parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrack {
    /// The AAC `AudioSpecificConfig` (2 bytes for AAC-LC).
    pub codec_data: Bytes,
    /// Samples per second; also the track's timescale.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u16,
}

/// Why tracks or samples cannot be muxed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fmp4Error {
    /// The avcC or hvcC record is too short, too long or of an unknown version.
    #[error("invalid {0} decoder configuration record")]
    BadVideoConfig(&'static str),
    /// The AudioSpecificConfig is too short or too long, or names no object type.
    #[error("invalid AAC AudioSpecificConfig")]
    BadAudioConfig,
    /// The audio sample rate is zero.
    #[error("audio sample rate is zero")]
    ZeroSampleRate,
    /// An audio sample was given to a muxer without an audio track.
    #[error("the muxer has no audio track")]
    NoAudioTrack,
    /// A sample does not fit the 32-bit size fields.
    #[error("sample of {0} bytes is too large")]
    SampleTooLarge(usize),
}

/// The RFC 6381 codecs list, e.g. `avc1.640028,mp4a.40.2`: `avc1.PPCCLL` from the avcC's
/// profile, compatibility and level bytes, `hvc1.…` from the hvcC's profile, tier, level and
/// constraint flags, and `mp4a.40.N` with the AudioSpecificConfig's object type. Also checks the
/// configuration records (what [`Muxer::new`] accepts).
pub fn codecs(video: &VideoTrack, audio: Option<&AudioTrack>) -> Result<String, Fmp4Error> {
    let d = &video.codec_data[..];
    let mut out = match video.codec {
        Fmp4Codec::H264 => {
            if d.len() < 7 || d.len() > MAX_CODEC_DATA || d[0] != 1 {
                return Err(Fmp4Error::BadVideoConfig("avcC"));
            }
            format!("avc1.{:02X}{:02X}{:02X}", d[1], d[2], d[3])
        }
        Fmp4Codec::H265 => {
            if d.len() < 23 || d.len() > MAX_CODEC_DATA || d[0] != 1 {
                return Err(Fmp4Error::BadVideoConfig("hvcC"));
            }
            let space = ["", "A", "B", "C"][usize::from(d[1] >> 6)];
            let tier = if d[1] & 0x20 != 0 { 'H' } else { 'L' };
            // The compatibility flags in reverse bit order, in hex without leading zeros.
            let compat = u32::from_be_bytes([d[2], d[3], d[4], d[5]]).reverse_bits();
            let mut s = format!("hvc1.{space}{}.{compat:X}.{tier}{}", d[1] & 0x1f, d[12]);
            // Constraint flag bytes; trailing zero bytes are left out (the first one is kept).
            let flags = &d[6..12];
            let n = flags.iter().rposition(|b| *b != 0).map_or(1, |i| i + 1);
            for b in &flags[..n] {
                s.push_str(&format!(".{b:02X}"));
            }
            s
        }
    };
    if let Some(audio) = audio {
        if audio.sample_rate == 0 {
            return Err(Fmp4Error::ZeroSampleRate);
        }
        let asc = &audio.codec_data[..];
        if asc.len() < 2 || asc.len() > MAX_CODEC_DATA {
            return Err(Fmp4Error::BadAudioConfig);
        }
        // 5-bit audioObjectType; 31 escapes to 32 + the next 6 bits.
        let object_type = match asc[0] >> 3 {
            0 => return Err(Fmp4Error::BadAudioConfig),
            31 => 32 + (((asc[0] & 7) << 3) | (asc[1] >> 5)),
            n => n,
        };
        out.push_str(&format!(",mp4a.40.{object_type}"));
    }
    Ok(out)
}

/// The MSE type string, e.g. `video/mp4; codecs="avc1.640028,mp4a.40.2"` (see [`codecs`]).
pub fn mime_type(video: &VideoTrack, audio: Option<&AudioTrack>) -> Result<String, Fmp4Error> {
    Ok(format!("video/mp4; codecs=\"{}\"", codecs(video, audio)?))
}

/// A fragmented MP4 muxer: one [`init_segment`](Muxer::init_segment), then one fragment
/// (`moof` + `mdat`, one sample) per call. Video is track 1, audio (if any) track 2; fragment
/// sequence numbers start at 1 and are shared by both tracks.
#[derive(Debug, Clone)]
pub struct Muxer {
    video: VideoTrack,
    audio: Option<AudioTrack>,
    codecs: String,
    sequence: u32,
}

impl Muxer {
    /// A muxer for these tracks; errors when a codec configuration record is malformed.
    pub fn new(video: VideoTrack, audio: Option<AudioTrack>) -> Result<Muxer, Fmp4Error> {
        let codecs = codecs(&video, audio.as_ref())?;
        Ok(Muxer { video, audio, codecs, sequence: 0 })
    }

    /// The codecs list of the tracks (see [`codecs`]).
    pub fn codecs(&self) -> &str {
        &self.codecs
    }

    /// The MSE type string of the tracks (see [`mime_type`]).
    pub fn mime_type(&self) -> String {
        format!("video/mp4; codecs=\"{}\"", self.codecs)
    }

    /// The initialization segment: `ftyp` (iso5, compatible with iso6 and mp41) and `moov`
    /// (`mvhd`, a `trak` per track with empty sample tables and an `avc1`+`avcC`,
    /// `hvc1`+`hvcC` or `mp4a`+`esds` sample entry, and `mvex` with a `trex` per track).
    pub fn init_segment(&self) -> Vec<u8> {
        init_segment(&self.video, self.audio.as_ref().map(|a| (a, AudioFormat::Aac)))
    }

    /// One video access unit (length-prefixed NAL units) as a fragment. `decode_time`,
    /// `composition_offset` (may be negative) and `duration` are in 90 kHz ticks; a zero
    /// duration is written as 1 (Safari drops zero-length samples). `key` marks a sync sample.
    pub fn video_fragment(
        &mut self,
        data: &[u8],
        decode_time: u64,
        composition_offset: i32,
        duration: u32,
        key: bool,
    ) -> Result<Vec<u8>, Fmp4Error> {
        let flags = if key { SYNC } else { NON_SYNC };
        let sample = Sample { decode_time, duration, flags, cto: Some(composition_offset) };
        self.fragment(VIDEO_TRACK_ID, data, sample)
    }

    /// One raw AAC frame (no ADTS header) as a fragment; `decode_time` and `duration` in the
    /// audio timescale (the sample rate), a zero duration written as 1.
    pub fn audio_fragment(
        &mut self,
        data: &[u8],
        decode_time: u64,
        duration: u32,
    ) -> Result<Vec<u8>, Fmp4Error> {
        if self.audio.is_none() {
            return Err(Fmp4Error::NoAudioTrack);
        }
        let sample = Sample { decode_time, duration, flags: SYNC, cto: None };
        self.fragment(AUDIO_TRACK_ID, data, sample)
    }

    /// A one-sample fragment: the header from [`fragment_header`], then the sample.
    fn fragment(&mut self, track: u32, data: &[u8], s: Sample) -> Result<Vec<u8>, Fmp4Error> {
        let size = u32::try_from(data.len()).map_err(|_| Fmp4Error::SampleTooLarge(data.len()))?;
        self.sequence = self.sequence.wrapping_add(1).max(1);
        let sample = RunSample {
            size,
            duration: s.duration,
            sync: s.flags == SYNC,
            composition_offset: s.cto.unwrap_or(0),
        };
        let run = TrackRun {
            track_id: track,
            decode_time: s.decode_time,
            composition_offsets: s.cto.is_some(),
            samples: std::slice::from_ref(&sample),
        };
        let mut o = fragment_header(self.sequence, std::slice::from_ref(&run))?;
        o.extend_from_slice(data);
        Ok(o)
    }
}

/// One sample of a [`TrackRun`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSample {
    /// Size in bytes.
    pub size: u32,
    /// Duration in the track's timescale; 0 is written as 1 (Safari drops zero-length samples).
    pub duration: u32,
    /// A sync sample: a video key frame, or any audio frame.
    pub sync: bool,
    /// Presentation time minus decode time in the track's timescale (written only when the
    /// run has [`TrackRun::composition_offsets`]).
    pub composition_offset: i32,
}

/// One track's samples in a fragment (a `traf` with one `trun`).
#[derive(Debug, Clone, Copy)]
pub struct TrackRun<'a> {
    /// [`VIDEO_TRACK_ID`] or [`AUDIO_TRACK_ID`].
    pub track_id: u32,
    /// Decode time of the first sample in the track's timescale (the `tfdt`).
    pub decode_time: u64,
    /// Write the samples' composition offsets (a version 1 `trun`, signed offsets).
    pub composition_offsets: bool,
    /// The samples, in decode order.
    pub samples: &'a [RunSample],
}

/// The header of a fragment holding several samples of one or more tracks: `moof` (`mfhd` with
/// `sequence`, then per run with samples a `traf` with `tfhd` (default-base-is-moof), a 64-bit
/// `tfdt` and a `trun` with per-sample duration, size and flags) and the `mdat` box header.
///
/// The `mdat` payload is not included, so callers can write sample data without copying it:
/// it must follow the header as the samples of the first run in order, then those of the
/// second, and so on. Runs without samples are left out.
pub fn fragment_header(sequence: u32, runs: &[TrackRun<'_>]) -> Result<Vec<u8>, Fmp4Error> {
    let mut payload = 0u64;
    for s in runs.iter().flat_map(|r| r.samples) {
        payload += u64::from(s.size);
    }
    let payload = u32::try_from(payload)
        .ok()
        .filter(|n| *n <= MAX_SAMPLE)
        .ok_or(Fmp4Error::SampleTooLarge(usize::try_from(payload).unwrap_or(usize::MAX)))?;
    let samples: usize = runs.iter().map(|r| r.samples.len()).sum();
    let mut o = Vec::with_capacity(64 + runs.len() * 64 + samples * 16);
    // Where each trun's data offset goes, and that run's offset within the mdat payload.
    let mut offsets = Vec::with_capacity(runs.len());
    bx(&mut o, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| o.put_u32(sequence));
        let mut within = 0u32;
        for run in runs.iter().filter(|r| !r.samples.is_empty()) {
            bx(o, b"traf", |o| {
                full(o, b"tfhd", 0, 0x02_0000, |o| o.put_u32(run.track_id)); // default-base-is-moof
                full(o, b"tfdt", 1, 0, |o| o.put_u64(run.decode_time));
                // data offset, sample duration, size, flags (+ composition offset, signed in v1)
                let cto = run.composition_offsets;
                let (version, cto_flag) = if cto { (1, 0x800) } else { (0, 0) };
                full(o, b"trun", version, 0x701 | cto_flag, |o| {
                    o.put_u32(u32::try_from(run.samples.len()).unwrap_or(u32::MAX));
                    offsets.push((o.len(), within));
                    o.put_u32(0); // data offset, patched below
                    for s in run.samples {
                        o.put_u32(s.duration.max(1));
                        o.put_u32(s.size);
                        o.put_u32(if s.sync { SYNC } else { NON_SYNC });
                        if cto {
                            o.put_i32(s.composition_offset);
                        }
                        within += s.size;
                    }
                });
            });
        }
    });
    // Data offsets count from the start of the moof; the payload starts after the mdat header.
    let payload_start = o.len() + 8;
    for (at, within) in offsets {
        let offset = u32::try_from(payload_start).unwrap_or(u32::MAX).saturating_add(within);
        if let Some(field) = o.get_mut(at..at + 4) {
            field.copy_from_slice(&offset.to_be_bytes());
        }
    }
    o.put_u32(payload + 8);
    o.put_slice(b"mdat");
    Ok(o)
}

/// How an audio track's samples are coded (its sample entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AudioFormat {
    /// AAC: `mp4a` + `esds` with the AudioSpecificConfig.
    Aac,
    /// G.711 mu-law: a QuickTime `ulaw` entry (no ISO entry exists; ffmpeg reads this one).
    Pcmu,
    /// G.711 A-law: a QuickTime `alaw` entry.
    Pcma,
}

/// An initialization segment for recorded files: like [`Muxer::init_segment`], also for G.711
/// audio. Checks the configuration records as [`Muxer::new`] does.
pub(crate) fn recording_init(
    video: &VideoTrack,
    audio: Option<(&AudioTrack, AudioFormat)>,
) -> Result<Vec<u8>, Fmp4Error> {
    match audio {
        Some((a, AudioFormat::Aac)) => codecs(video, Some(a))?,
        Some((a, _)) if a.sample_rate == 0 => return Err(Fmp4Error::ZeroSampleRate),
        _ => codecs(video, None)?,
    };
    Ok(init_segment(video, audio))
}

/// `ftyp` (iso5, compatible with iso6 and mp41) and `moov` (`mvhd`, a `trak` per track with
/// empty sample tables, `mvex` with a `trex` per track).
fn init_segment(v: &VideoTrack, audio: Option<(&AudioTrack, AudioFormat)>) -> Vec<u8> {
    let mut o = Vec::with_capacity(1024 + v.codec_data.len());
    bx(&mut o, b"ftyp", |o| {
        o.put_slice(b"iso5");
        o.put_u32(512);
        o.put_slice(b"iso5iso6mp41");
    });
    bx(&mut o, b"moov", |o| {
        full(o, b"mvhd", 0, 0, |o| {
            // creation and modification time, timescale, duration (unknown), rate 1.0
            u32s(o, &[0, 0, 1000, 0, 0x0001_0000]);
            o.put_u16(0x0100); // volume 1.0
            o.put_bytes(0, 10);
            u32s(o, &MATRIX);
            o.put_bytes(0, 24);
            o.put_u32(AUDIO_TRACK_ID + 1); // next track id
        });
        let size = Some((v.width.min(0xffff), v.height.min(0xffff)));
        trak(o, VIDEO_TRACK_ID, VIDEO_TIMESCALE, size, |o| {
            let (entry, config) = match v.codec {
                Fmp4Codec::H264 => (b"avc1", b"avcC"),
                Fmp4Codec::H265 => (b"hvc1", b"hvcC"),
            };
            bx(o, entry, |o| {
                o.put_bytes(0, 6);
                o.put_u16(1); // data reference index
                o.put_bytes(0, 16);
                o.put_u16(v.width.min(0xffff) as u16);
                o.put_u16(v.height.min(0xffff) as u16);
                u32s(o, &[0x0048_0000, 0x0048_0000, 0]); // 72 dpi
                o.put_u16(1); // frame count
                o.put_bytes(0, 32); // compressor name
                o.put_u16(0x0018); // depth
                o.put_i16(-1);
                bx(o, config, |o| o.put_slice(&v.codec_data));
            });
        });
        if let Some((a, format)) = audio {
            trak(o, AUDIO_TRACK_ID, a.sample_rate, None, |o| {
                let entry = match format {
                    AudioFormat::Aac => b"mp4a",
                    AudioFormat::Pcmu => b"ulaw",
                    AudioFormat::Pcma => b"alaw",
                };
                // The ISO AudioSampleEntry, which is also QuickTime's version 0 sound
                // description (version, revision, vendor = 0; compression id, packet size = 0).
                bx(o, entry, |o| {
                    o.put_bytes(0, 6);
                    o.put_u16(1); // data reference index
                    o.put_bytes(0, 8);
                    o.put_u16(a.channels);
                    o.put_u16(16); // sample size
                    o.put_u32(0);
                    // 16.16 fixed point; rates above 65535 are left to the AudioSpecificConfig.
                    o.put_u32(if a.sample_rate <= 0xffff { a.sample_rate << 16 } else { 0 });
                    if format == AudioFormat::Aac {
                        full(o, b"esds", 0, 0, |o| esds(o, &a.codec_data));
                    }
                });
            });
        }
        bx(o, b"mvex", |o| {
            let ids = [Some(VIDEO_TRACK_ID), audio.map(|_| AUDIO_TRACK_ID)];
            for id in ids.into_iter().flatten() {
                full(o, b"trex", 0, 0, |o| {
                    o.put_u32(id);
                    o.put_u32(1); // sample description index
                    o.put_bytes(0, 12); // default duration, size, flags
                });
            }
        });
    });
    o
}

/// The `mfra` that closes a recorded file: a `tfra` for the video track listing fragments that
/// start with a key frame as (decode time, file offset of the `moof`), then `mfro`.
pub(crate) fn mfra(key_fragments: &[(u64, u64)]) -> Vec<u8> {
    let mut o = Vec::with_capacity(40 + key_fragments.len() * 19);
    bx(&mut o, b"mfra", |o| {
        full(o, b"tfra", 1, 0, |o| {
            o.put_u32(VIDEO_TRACK_ID);
            o.put_u32(0); // traf, trun and sample numbers are one byte each
            o.put_u32(u32::try_from(key_fragments.len()).unwrap_or(u32::MAX));
            for (time, moof_offset) in key_fragments {
                o.put_u64(*time);
                o.put_u64(*moof_offset);
                o.put_slice(&[1, 1, 1]); // first traf, first trun, first sample
            }
        });
        // mfro: the size of the whole mfra, so readers find it from the end of the file.
        let size = u32::try_from(o.len() + 16).unwrap_or(u32::MAX);
        full(o, b"mfro", 0, 0, |o| o.put_u32(size));
    });
    o
}

/// One sample's timing and flags.
struct Sample {
    decode_time: u64,
    duration: u32,
    flags: u32,
    cto: Option<i32>,
}

fn u32s(o: &mut Vec<u8>, values: &[u32]) {
    values.iter().for_each(|v| o.put_u32(*v));
}

/// Append a box: a size placeholder, the type, the body written by `body`, then the size.
fn bx(o: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = o.len();
    o.put_u32(0);
    o.put_slice(kind);
    body(o);
    let size = u32::try_from(o.len() - start).unwrap_or(u32::MAX);
    if let Some(field) = o.get_mut(start..start + 4) {
        field.copy_from_slice(&size.to_be_bytes());
    }
}

/// Append a full box: version and flags, then the body.
fn full(o: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Vec<u8>)) {
    bx(o, kind, |o| {
        o.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(o);
    });
}

/// A `trak` with an empty sample table; `size` is `Some((width, height))` for video.
fn trak(
    o: &mut Vec<u8>,
    id: u32,
    timescale: u32,
    size: Option<(u32, u32)>,
    entry: impl FnOnce(&mut Vec<u8>),
) {
    bx(o, b"trak", |o| {
        full(o, b"tkhd", 0, 3, |o| {
            // flags: enabled, in movie
            o.put_bytes(0, 8); // creation and modification time
            o.put_u32(id);
            o.put_bytes(0, 16); // reserved, duration, reserved
            o.put_u32(0); // layer, alternate group
            o.put_u16(if size.is_some() { 0 } else { 0x0100 }); // volume
            o.put_u16(0);
            u32s(o, &MATRIX);
            let (w, h) = size.unwrap_or((0, 0));
            o.put_u32(w << 16); // 16.16 fixed point
            o.put_u32(h << 16);
        });
        bx(o, b"mdia", |o| {
            full(o, b"mdhd", 0, 0, |o| {
                u32s(o, &[0, 0, timescale, 0]); // times, timescale, duration
                o.put_u32(0x55c4_0000); // language "und"
            });
            let (handler, name) = match size {
                Some(_) => (b"vide", &b"PentaVision video\0"[..]),
                None => (b"soun", &b"PentaVision audio\0"[..]),
            };
            full(o, b"hdlr", 0, 0, |o| {
                o.put_u32(0);
                o.put_slice(handler);
                o.put_bytes(0, 12);
                o.put_slice(name);
            });
            bx(o, b"minf", |o| {
                match size {
                    Some(_) => full(o, b"vmhd", 0, 1, |o| o.put_bytes(0, 8)),
                    None => full(o, b"smhd", 0, 0, |o| o.put_bytes(0, 4)),
                }
                bx(o, b"dinf", |o| {
                    full(o, b"dref", 0, 0, |o| {
                        o.put_u32(1);
                        full(o, b"url ", 0, 1, |_| {}); // media in this file
                    });
                });
                bx(o, b"stbl", |o| {
                    full(o, b"stsd", 0, 0, |o| {
                        o.put_u32(1);
                        entry(o);
                    });
                    full(o, b"stts", 0, 0, |o| o.put_u32(0));
                    full(o, b"stsc", 0, 0, |o| o.put_u32(0));
                    full(o, b"stsz", 0, 0, |o| o.put_bytes(0, 8));
                    full(o, b"stco", 0, 0, |o| o.put_u32(0));
                });
            });
        });
    });
}

/// The `esds` body: ES descriptor with decoder config (AAC, audio stream) and SL config.
fn esds(o: &mut Vec<u8>, asc: &[u8]) {
    let mut config = vec![0x40, 0x15]; // MPEG-4 audio; audio stream, reserved bit
    config.put_bytes(0, 11); // buffer size, max and average bit rate
    descriptor(&mut config, 0x05, asc); // DecoderSpecificInfo
    let mut es = Vec::with_capacity(config.len() + 16);
    es.put_u16(AUDIO_TRACK_ID as u16); // ES id
    es.put_u8(0); // no dependency, URL or OCR stream
    descriptor(&mut es, 0x04, &config); // DecoderConfigDescriptor
    descriptor(&mut es, 0x06, &[0x02]); // SLConfigDescriptor: predefined for MP4
    descriptor(o, 0x03, &es); // ES_Descriptor
}

/// An MPEG-4 descriptor: tag, length in 7-bit groups (high bit: more follow), body.
fn descriptor(o: &mut Vec<u8>, tag: u8, body: &[u8]) {
    o.put_u8(tag);
    let len = body.len();
    for shift in [21, 14, 7] {
        if len >> shift != 0 {
            o.put_u8(0x80 | ((len >> shift) & 0x7f) as u8);
        }
    }
    o.put_u8((len & 0x7f) as u8);
    o.put_slice(body);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const AVCC: &[u8] =
        &[1, 0x64, 0, 0x28, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x28, 1, 0, 2, 0x68, 0xee];

    fn h264(codec_data: &[u8]) -> VideoTrack {
        let codec_data = Bytes::copy_from_slice(codec_data);
        VideoTrack { codec: Fmp4Codec::H264, codec_data, width: 1280, height: 720 }
    }

    fn aac(asc: &[u8], sample_rate: u32) -> AudioTrack {
        AudioTrack { codec_data: Bytes::copy_from_slice(asc), sample_rate, channels: 2 }
    }

    /// The boxes in `data` (which must be exactly a run of boxes): (type, body).
    fn children(data: &[u8]) -> Vec<(String, &[u8])> {
        let (mut out, mut pos) = (Vec::new(), 0);
        while pos < data.len() {
            let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
            assert!(size >= 8 && pos + size <= data.len(), "bad box size {size} at {pos}");
            let kind = String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned();
            out.push((kind, &data[pos + 8..pos + size]));
            pos += size;
        }
        out
    }

    fn kinds(boxes: &[(String, &[u8])]) -> Vec<String> {
        boxes.iter().map(|(k, _)| k.clone()).collect()
    }

    /// The body of the first box of type `kind` in `data`.
    fn child<'a>(data: &'a [u8], kind: &str) -> &'a [u8] {
        children(data).into_iter().find(|(k, _)| k == kind).unwrap().1
    }

    fn u32_at(data: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(data[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn codecs_strings_come_from_the_configuration_records() {
        assert_eq!(codecs(&h264(AVCC), None).unwrap(), "avc1.640028");
        let baseline = [1, 0x42, 0xe0, 0x1f, 0xff, 0xe1, 0];
        let audio = aac(&[0x11, 0x90], 48_000);
        assert_eq!(codecs(&h264(&baseline), Some(&audio)).unwrap(), "avc1.42E01F,mp4a.40.2");
        let he = aac(&[0x2b, 0x11, 0x88], 24_000);
        assert_eq!(
            mime_type(&h264(AVCC), Some(&he)).unwrap(),
            "video/mp4; codecs=\"avc1.640028,mp4a.40.5\""
        );
        // HEVC Main, level 3.1 (93), compatibility flags 0x60000000, constraint byte 0x90.
        let mut hvcc = vec![1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93];
        hvcc.resize(23, 0);
        let mut hevc = VideoTrack { codec: Fmp4Codec::H265, ..h264(&hvcc) };
        assert_eq!(codecs(&hevc, None).unwrap(), "hvc1.1.6.L93.90");
        // Main 10, high tier, level 5.1 (153), two constraint bytes.
        hvcc[1..8].copy_from_slice(&[0x22, 0x20, 0, 0, 0, 0xb0, 0x01]);
        hvcc[12] = 153;
        hevc.codec_data = Bytes::from(hvcc);
        assert_eq!(codecs(&hevc, None).unwrap(), "hvc1.2.4.H153.B0.01");
    }

    #[test]
    fn malformed_records_are_refused() {
        let bad_video = Fmp4Error::BadVideoConfig("avcC");
        assert_eq!(Muxer::new(h264(&[]), None).unwrap_err(), bad_video);
        assert_eq!(Muxer::new(h264(&[0, 0x64, 0, 0x28, 0, 0, 0]), None).unwrap_err(), bad_video);
        let hevc = VideoTrack { codec: Fmp4Codec::H265, ..h264(AVCC) }; // too short for hvcC
        assert_eq!(codecs(&hevc, None).unwrap_err(), Fmp4Error::BadVideoConfig("hvcC"));
        let video = h264(AVCC);
        let err = |a: AudioTrack| Muxer::new(video.clone(), Some(a)).unwrap_err();
        assert_eq!(err(aac(&[0x11], 48_000)), Fmp4Error::BadAudioConfig);
        assert_eq!(err(aac(&[0x01, 0x90], 48_000)), Fmp4Error::BadAudioConfig);
        assert_eq!(err(aac(&[0x11, 0x90], 0)), Fmp4Error::ZeroSampleRate);
        let mut m = Muxer::new(video, None).unwrap();
        assert_eq!(m.audio_fragment(&[1, 2], 0, 1024).unwrap_err(), Fmp4Error::NoAudioTrack);
    }

    #[test]
    fn the_init_segment_has_one_trak_per_track_and_mvex() {
        let m = Muxer::new(h264(AVCC), Some(aac(&[0x11, 0x90], 48_000))).unwrap();
        let init = m.init_segment();
        let top = children(&init);
        assert_eq!(kinds(&top), ["ftyp", "moov"]);
        assert_eq!(&top[0].1[..4], b"iso5");
        let moov = children(top[1].1);
        assert_eq!(kinds(&moov), ["mvhd", "trak", "trak", "mvex"]);
        let video_stbl = child(child(child(moov[1].1, "mdia"), "minf"), "stbl");
        assert_eq!(kinds(&children(video_stbl)), ["stsd", "stts", "stsc", "stsz", "stco"]);
        let entries = children(&child(video_stbl, "stsd")[8..]);
        assert_eq!(kinds(&entries), ["avc1"]);
        let avc1 = entries[0].1;
        assert_eq!((&avc1[24..26], &avc1[26..28]), (&[5, 0][..], &[2, 0xd0][..]));
        assert_eq!(children(&avc1[78..]), [("avcC".to_owned(), AVCC)]);
        let audio_mdia = child(moov[2].1, "mdia");
        assert_eq!(u32_at(child(audio_mdia, "mdhd"), 12), 48_000);
        let stsd = child(child(child(audio_mdia, "minf"), "stbl"), "stsd");
        let mp4a = child(&stsd[8..], "mp4a");
        assert_eq!(u32_at(mp4a, 24), 48_000 << 16);
        let esds = child(&mp4a[28..], "esds");
        assert!(esds.ends_with(&[0x05, 2, 0x11, 0x90, 0x06, 1, 2]), "{esds:02x?}");
        let trex = children(child(top[1].1, "mvex"));
        assert_eq!(trex.iter().map(|(_, t)| u32_at(t, 4)).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn fragments_carry_sequence_numbers_decode_times_and_flags() {
        let mut m = Muxer::new(h264(AVCC), Some(aac(&[0x11, 0x90], 48_000))).unwrap();
        let cases = [
            (1, m.video_fragment(&[9; 100], 1 << 33, -3000, 3000, true).unwrap()),
            (2, m.audio_fragment(&[7; 20], 960, 1024).unwrap()),
            (1, m.video_fragment(&[8; 50], (1 << 33) + 3000, 0, 0, false).unwrap()),
        ];
        for (i, (track, frag)) in cases.iter().enumerate() {
            let top = children(frag);
            assert_eq!(kinds(&top), ["moof", "mdat"]);
            let moof = children(top[0].1);
            assert_eq!(kinds(&moof), ["mfhd", "traf"]);
            assert_eq!(u32_at(moof[0].1, 4), i as u32 + 1, "sequence number");
            let traf = children(moof[1].1);
            assert_eq!(kinds(&traf), ["tfhd", "tfdt", "trun"]);
            assert_eq!(u32_at(traf[0].1, 4), *track);
            let tfdt = traf[1].1;
            assert_eq!(tfdt[0], 1, "64-bit tfdt");
            let base = u64::from_be_bytes(tfdt[4..12].try_into().unwrap());
            let trun = traf[2].1;
            let data_offset = u32_at(trun, 8) as usize;
            let (duration, size, flags) = (u32_at(trun, 12), u32_at(trun, 16), u32_at(trun, 20));
            assert_eq!(&frag[data_offset..], top[1].1, "data offset points at the sample");
            assert_eq!(size as usize, top[1].1.len());
            match i {
                0 => {
                    assert_eq!((base, duration, flags, trun[0]), (1 << 33, 3000, SYNC, 1));
                    assert_eq!(u32_at(trun, 24) as i32, -3000);
                }
                1 => assert_eq!((base, duration, flags, trun.len()), (960, 1024, SYNC, 24)),
                _ => assert_eq!((base, duration, flags), ((1 << 33) + 3000, 1, NON_SYNC)),
            }
        }
    }

    #[test]
    fn a_fragment_header_places_every_run_in_the_mdat_payload() {
        let sample = |size, sync, composition_offset| RunSample {
            size,
            duration: 3000,
            sync,
            composition_offset,
        };
        let video = [sample(100, true, 0), sample(30, false, 6000), sample(20, false, -3000)];
        let audio = [sample(7, true, 0), sample(9, true, 0)];
        let runs = [
            TrackRun {
                track_id: VIDEO_TRACK_ID,
                decode_time: 90_000,
                composition_offsets: true,
                samples: &video,
            },
            TrackRun { track_id: 3, decode_time: 5, composition_offsets: false, samples: &[] },
            TrackRun {
                track_id: AUDIO_TRACK_ID,
                decode_time: 48_000,
                composition_offsets: false,
                samples: &audio,
            },
        ];
        let header = fragment_header(7, &runs).unwrap();
        let moof_len = u32_at(&header, 0) as usize;
        // The header ends with the mdat box header, sized for the payload that follows it.
        assert_eq!(header.len(), moof_len + 8);
        assert_eq!(&header[moof_len + 4..], b"mdat");
        assert_eq!(u32_at(&header, moof_len), 8 + 150 + 16);
        let moof = children(&header[8..moof_len]);
        assert_eq!(kinds(&moof), ["mfhd", "traf", "traf"], "the empty run is left out");
        assert_eq!(u32_at(moof[0].1, 4), 7);
        let (v, a) = (child(moof[1].1, "trun"), child(moof[2].1, "trun"));
        assert_eq!((v[0], u32_at(v, 4), u32_at(v, 8) as usize), (1, 3, moof_len + 8));
        assert_eq!((a[0], u32_at(a, 4), u32_at(a, 8) as usize), (0, 2, moof_len + 8 + 150));
        // Per video sample: duration, size, flags, signed composition offset.
        assert_eq!(&v[12..28], [3000u32, 100, SYNC, 0].map(u32::to_be_bytes).concat());
        assert_eq!((u32_at(v, 36), u32_at(v, 40)), (NON_SYNC, 6000));
        assert_eq!(u32_at(v, 44 + 12) as i32, -3000);
        assert_eq!(a.len(), 12 + 2 * 12, "no composition offsets for audio");
        let too_big = [sample(MAX_SAMPLE, true, 0), sample(MAX_SAMPLE, true, 0)];
        let run = TrackRun { samples: &too_big, ..runs[0] };
        assert!(matches!(fragment_header(1, &[run]), Err(Fmp4Error::SampleTooLarge(_))));
    }

    #[test]
    fn the_mfra_ends_with_its_own_size() {
        let mfra = mfra(&[(0, 1000), (90_000, 5000)]);
        let top = children(&mfra);
        assert_eq!(kinds(&top), ["mfra"]);
        assert_eq!(kinds(&children(top[0].1)), ["tfra", "mfro"]);
        assert_eq!(u32_at(&mfra, mfra.len() - 4) as usize, mfra.len());
    }

    #[test]
    fn the_recording_reader_understands_the_output() {
        let mut m = Muxer::new(h264(AVCC), Some(aac(&[0x11, 0x90], 48_000))).unwrap();
        let mut file = m.init_segment();
        for i in 0..30u64 {
            file.extend(m.video_fragment(&[0, 0, 0, 1, 0x65], i * 3000, 0, 3000, i == 0).unwrap());
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.mp4");
        std::fs::write(&path, &file).unwrap();
        let info = crate::mp4::inspect(&path).unwrap();
        assert_eq!(
            (info.fragments, info.valid_len, info.trailing_bytes),
            (30, file.len() as u64, 0)
        );
        assert_eq!(info.duration_ns, 1_000_000_000);
        let video = info.video.unwrap();
        assert_eq!(
            (video.codec.as_str(), video.width, video.height),
            ("h264", Some(1280), Some(720))
        );
        assert_eq!((info.audio.unwrap().codec.as_str(), video.timescale), ("aac", 90_000));
    }
}
