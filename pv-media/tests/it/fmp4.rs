//! The MSE fragmented-MP4 muxer on real streams: an x264 H.264 stream (and an AAC stream)
//! made by ffmpeg, muxed one sample per fragment, then read back by ffprobe and decoded by
//! ffmpeg without a single error.

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use pv_media::fmp4::{AudioTrack, Fmp4Codec, Muxer, VideoTrack};

/// 15 fps in 90 kHz ticks.
const FRAME: u64 = 6000;

fn have_ffmpeg() -> bool {
    let ok = |p: &str| Command::new(p).arg("-version").output().is_ok_and(|o| o.status.success());
    if !(ok("ffmpeg") && ok("ffprobe")) {
        eprintln!("SKIPPED: ffmpeg/ffprobe not found on PATH");
        return false;
    }
    true
}

fn ffmpeg(args: &[&str], out: &Path) {
    let o =
        Command::new("ffmpeg").args(["-y", "-v", "error"]).args(args).arg(out).output().unwrap();
    assert!(o.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// 2 s of 320x240 15 fps H.264 (no B-frames, a key frame every second), Annex B with an
/// access unit delimiter before each access unit.
fn h264_stream(dir: &Path) -> Vec<u8> {
    let path = dir.join("out.h264");
    let args = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=15", "-t", "2", "-c:v", "libx264"];
    let more = ["-bf", "0", "-g", "15", "-pix_fmt", "yuv420p", "-x264-params", "aud=1"];
    ffmpeg(&[&args[..], &more, &["-bsf:v", "h264_mp4toannexb", "-f", "h264"]].concat(), &path);
    std::fs::read(path).unwrap()
}

/// The NAL units of an Annex B stream (start codes removed).
fn nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new(); // (start code position, payload position)
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            let at = if i > 0 && stream[i - 1] == 0 { i - 1 } else { i };
            starts.push((at, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends = starts.iter().skip(1).map(|s| s.0).chain([stream.len()]);
    starts.iter().zip(ends).map(|(s, end)| &stream[s.1..end]).collect()
}

/// An H.264 stream as an avcC record and samples (4-byte length-prefixed NAL units without
/// AUD, SPS and PPS), each with its key frame flag.
fn avcc_samples(stream: &[u8]) -> (Bytes, Vec<(Vec<u8>, bool)>) {
    let (mut sps, mut pps) = (None, None);
    let mut samples: Vec<(Vec<u8>, bool)> = Vec::new();
    for nal in nal_units(stream) {
        match nal[0] & 0x1f {
            9 => samples.push((Vec::new(), false)),
            7 => sps = sps.or(Some(nal)),
            8 => pps = pps.or(Some(nal)),
            kind => {
                let (sample, key) = samples.last_mut().expect("NAL unit before the first AUD");
                sample.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                sample.extend_from_slice(nal);
                *key |= kind == 5;
            }
        }
    }
    let (sps, pps) = (sps.unwrap(), pps.unwrap());
    let mut avcc = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
    avcc.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(sps);
    avcc.push(1);
    avcc.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(pps);
    // High profile: chroma format 4:2:0, 8-bit luma and chroma, no SPS extensions.
    avcc.extend_from_slice(&[0xfd, 0xf8, 0xf8, 0]);
    (Bytes::from(avcc), samples)
}

/// 2 s of a 440 Hz tone at 48 kHz as AAC-LC: the AudioSpecificConfig and the raw frames.
fn aac_stream(dir: &Path) -> (AudioTrack, Vec<Vec<u8>>) {
    let path = dir.join("out.aac");
    let args = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "2"];
    ffmpeg(&[&args[..], &["-c:a", "aac", "-f", "adts"]].concat(), &path);
    let adts = std::fs::read(path).unwrap();
    let (mut frames, mut pos, mut asc) = (Vec::new(), 0, None);
    while pos + 7 <= adts.len() {
        let h = &adts[pos..pos + 7];
        assert_eq!((h[0], h[1] & 0xf0), (0xff, 0xf0), "ADTS sync word at {pos}");
        let header = if h[1] & 1 == 1 { 7 } else { 9 }; // protection absent: no CRC
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        let (object_type, rate_index) = ((h[2] >> 6) + 1, (h[2] >> 2) & 0xf);
        let channels = ((h[2] & 1) << 2) | (h[3] >> 6);
        asc = asc.or(Some([
            (object_type << 3) | (rate_index >> 1),
            ((rate_index & 1) << 7) | (channels << 3),
        ]));
        frames.push(adts[pos + header..pos + len].to_vec());
        pos += len;
    }
    assert_eq!(pos, adts.len(), "whole ADTS frames");
    let asc = asc.unwrap();
    assert_eq!(asc, [0x11, 0x88], "AAC-LC, 48 kHz, mono");
    let track =
        AudioTrack { codec_data: Bytes::copy_from_slice(&asc), sample_rate: 48_000, channels: 1 };
    (track, frames)
}

/// ffprobe's `stream` entries, one CSV line per stream; frames counted.
fn ffprobe(path: &Path, entries: &str) -> String {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", entries, "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "ffprobe: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// ffmpeg decodes every stream of the file and reports nothing.
fn assert_decodes_cleanly(path: &Path) {
    let mut ffmpeg = Command::new("ffmpeg");
    let o =
        ffmpeg.args(["-v", "error", "-i"]).arg(path).args(["-f", "null", "-"]).output().unwrap();
    let errors = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && errors.trim().is_empty(), "decoding errors: {errors}");
}

#[test]
fn an_h264_stream_muxed_one_frame_per_fragment_plays() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (avcc, samples) = avcc_samples(&h264_stream(dir.path()));
    assert_eq!(samples.len(), 30);
    assert_eq!(samples.iter().filter(|s| s.1).count(), 2, "a key frame every 15 frames");
    let profile = format!("avc1.{:02X}{:02X}{:02X}", avcc[1], avcc[2], avcc[3]);
    let video = VideoTrack { codec: Fmp4Codec::H264, codec_data: avcc, width: 320, height: 240 };
    let mut muxer = Muxer::new(video, None).unwrap();
    assert_eq!(muxer.mime_type(), format!("video/mp4; codecs=\"{profile}\""));
    let mut file = muxer.init_segment();
    for (i, (sample, key)) in samples.iter().enumerate() {
        let t = i as u64 * FRAME;
        file.extend(muxer.video_fragment(sample, t, 0, FRAME as u32, *key).unwrap());
    }
    let path = dir.path().join("live.mp4");
    std::fs::write(&path, file).unwrap();
    let probe = ffprobe(&path, "stream=codec_name,width,height,nb_read_frames");
    assert_eq!(probe, "h264,320,240,30");
    assert_decodes_cleanly(&path);
}

#[test]
fn video_and_aac_interleaved_by_time_play() {
    if !have_ffmpeg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (avcc, samples) = avcc_samples(&h264_stream(dir.path()));
    let (audio, frames) = aac_stream(dir.path());
    assert!(frames.len() > 90, "{} AAC frames", frames.len());
    let video = VideoTrack { codec: Fmp4Codec::H264, codec_data: avcc, width: 320, height: 240 };
    let mut muxer = Muxer::new(video, Some(audio)).unwrap();
    assert!(muxer.mime_type().ends_with(",mp4a.40.2\""), "{}", muxer.mime_type());
    let mut file = muxer.init_segment();
    let (mut v, mut a) =
        (samples.iter().enumerate().peekable(), frames.iter().enumerate().peekable());
    loop {
        // Compare the next video and audio times in a common unit (1/90000 * 1/48000 s).
        let video_next = v.peek().map(|(i, _)| *i as u64 * FRAME * 48_000);
        let audio_next = a.peek().map(|(j, _)| *j as u64 * 1024 * 90_000);
        let video_first = match (video_next, audio_next) {
            (None, None) => break,
            (Some(tv), Some(ta)) => tv <= ta,
            (tv, _) => tv.is_some(),
        };
        let fragment = if video_first {
            let (i, (sample, key)) = v.next().unwrap();
            muxer.video_fragment(sample, i as u64 * FRAME, 0, FRAME as u32, *key)
        } else {
            let (j, frame) = a.next().unwrap();
            muxer.audio_fragment(frame, j as u64 * 1024, 1024)
        };
        file.extend(fragment.unwrap());
    }
    let path = dir.path().join("live-av.mp4");
    std::fs::write(&path, file).unwrap();
    let probe = ffprobe(&path, "stream=codec_type,codec_name,sample_rate,nb_read_frames");
    let lines: Vec<&str> = probe.lines().collect();
    assert_eq!(lines.len(), 2, "{probe}");
    assert!(lines.contains(&"h264,video,30"), "{probe}");
    let audio_line = format!("aac,audio,48000,{}", frames.len());
    assert!(lines.contains(&audio_line.as_str()), "{probe}");
    assert_decodes_cleanly(&path);
}
