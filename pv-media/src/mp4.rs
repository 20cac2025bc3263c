//! A small reader for the MP4 files the recorder writes: which top-level boxes are complete, the
//! tracks' codecs and frame size, the media duration, and where the last complete fragment ends.
//!
//! The recorder writes fragmented MP4 (`ftyp`, `moov` with `mvex`, then `moof`+`mdat` pairs, and
//! `mfra` when the file is finalised). A hard kill leaves a file that stops somewhere inside the
//! last fragment; everything up to the end of the last complete `moof`+`mdat` pair is still a
//! valid, playable file, which is what [`Mp4Info::valid_len`] reports and the recovery pass
//! truncates to. Only box headers, `moov` and `moof` boxes are read; `mdat` payloads are skipped.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::{Error, Result};

/// What [`inspect`] learned about one MP4 file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mp4Info {
    /// The file's length in bytes.
    pub file_len: u64,
    /// An `ftyp` and a `moov` box are present and complete.
    pub has_moov: bool,
    /// The file is fragmented (`moov` has `mvex`, or `moof` boxes follow).
    pub fragmented: bool,
    /// Complete `moof`+`mdat` pairs.
    pub fragments: u32,
    /// The `mfra` box that closes a finalised fragmented file is present.
    pub finalised: bool,
    /// Bytes after the last complete top-level box (a box cut short, or a `moof` without its
    /// `mdat`): the file was not closed properly.
    pub trailing_bytes: u64,
    /// Length of the longest prefix that is a valid file on its own: up to the end of the last
    /// complete `moof`+`mdat` pair (fragmented) or of the last complete box (plain MP4 with
    /// `moov`); 0 when no prefix is playable.
    pub valid_len: u64,
    /// The first video track.
    pub video: Option<Track>,
    /// The first audio track.
    pub audio: Option<Track>,
    /// Media duration of the video track (else of the first track) in nanoseconds, from the
    /// fragments' sample durations (fragmented) or the track header (plain MP4).
    pub duration_ns: u64,
}

impl Mp4Info {
    /// The file is whole: every box complete, a `moov`, and (when fragmented) the closing
    /// `mfra` and at least one fragment.
    pub fn is_complete(&self) -> bool {
        self.has_moov
            && self.trailing_bytes == 0
            && (!self.fragmented || (self.finalised && self.fragments > 0))
    }
}

/// One track of an MP4 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// Track id.
    pub id: u32,
    /// Codec name: `h264`, `h265`, `aac`, or the sample entry's four characters.
    pub codec: String,
    /// Frame width (video).
    pub width: Option<u32>,
    /// Frame height (video).
    pub height: Option<u32>,
    /// Media time units per second.
    pub timescale: u32,
    /// Duration from the media header, in timescale units (0 in fragmented files).
    pub header_duration: u64,
    /// Default sample duration from `trex` (fragmented files).
    pub default_sample_duration: u32,
    kind: TrackKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrackKind {
    Video,
    Audio,
    Other,
}

/// The largest `moov` or `moof` box read into memory; larger ones are treated as corrupt.
const MAX_META_BOX: u64 = 64 * 1024 * 1024;

/// Read the structure of the MP4 file at `path`.
pub fn inspect(path: &Path) -> Result<Mp4Info> {
    let io = |e| Error::io(path, e);
    let mut file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut info = Mp4Info { file_len, ..Mp4Info::default() };
    let mut tracks: Vec<Track> = Vec::new();
    let mut seen_ftyp = false;
    // Per track: summed sample durations over complete fragments.
    let mut durations: Vec<(u32, u64)> = Vec::new();
    let mut pending_moof: Option<Vec<(u32, u64)>> = None;
    let mut pos = 0u64;
    let mut last_complete = 0u64;
    while pos < file_len {
        let Some((kind, header_len, box_len)) =
            read_header(&mut file, pos, file_len).map_err(io)?
        else {
            break; // header cut short
        };
        let end = pos.saturating_add(box_len);
        if box_len < header_len || end > file_len {
            break; // box cut short (or nonsense size)
        }
        match &kind {
            b"ftyp" => seen_ftyp = true,
            b"moov" => {
                let body =
                    read_body(&mut file, pos + header_len, box_len - header_len).map_err(io)?;
                let Some(body) = body else { break };
                let (parsed, fragmented) = parse_moov(&body);
                tracks = parsed;
                info.fragmented |= fragmented;
                info.has_moov = seen_ftyp;
            }
            b"moof" => {
                info.fragmented = true;
                let body =
                    read_body(&mut file, pos + header_len, box_len - header_len).map_err(io)?;
                let Some(body) = body else { break };
                pending_moof = Some(parse_moof(&body, &tracks));
            }
            b"mdat" => {
                if let Some(frag) = pending_moof.take() {
                    info.fragments += 1;
                    for (id, d) in frag {
                        match durations.iter_mut().find(|(t, _)| *t == id) {
                            Some((_, total)) => *total += d,
                            None => durations.push((id, d)),
                        }
                    }
                    info.valid_len = end;
                }
            }
            b"mfra" => info.finalised = true,
            _ => {}
        }
        pos = end;
        if pending_moof.is_none() {
            last_complete = end;
        }
    }
    info.trailing_bytes = file_len - last_complete;
    if !info.has_moov {
        info.valid_len = 0;
    } else if !info.fragmented {
        info.valid_len = last_complete;
    }
    info.video = tracks.iter().find(|t| t.kind == TrackKind::Video).cloned();
    info.audio = tracks.iter().find(|t| t.kind == TrackKind::Audio).cloned();
    if let Some(main) = info.video.as_ref().or(tracks.first()) {
        let units = if info.fragmented {
            durations.iter().find(|(id, _)| *id == main.id).map_or(0, |(_, d)| *d)
        } else {
            main.header_duration
        };
        if main.timescale > 0 {
            info.duration_ns =
                u64::try_from(u128::from(units) * 1_000_000_000 / u128::from(main.timescale))
                    .unwrap_or(u64::MAX);
        }
    }
    Ok(info)
}

/// Cut the file at `path` to `len` bytes and fsync it (the recovery pass's repair).
pub fn truncate(path: &Path, len: u64) -> Result<()> {
    let io = |e| Error::io(path, e);
    let file = std::fs::OpenOptions::new().write(true).open(path).map_err(io)?;
    file.set_len(len).map_err(io)?;
    file.sync_all().map_err(io)
}

fn read_header(
    file: &mut File,
    pos: u64,
    file_len: u64,
) -> std::io::Result<Option<([u8; 4], u64, u64)>> {
    if file_len - pos < 8 {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(pos))?;
    let mut h = [0u8; 8];
    file.read_exact(&mut h)?;
    let size = u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
    let kind = [h[4], h[5], h[6], h[7]];
    match size {
        0 => Ok(Some((kind, 8, file_len - pos))),
        1 => {
            if file_len - pos < 16 {
                return Ok(None);
            }
            let mut l = [0u8; 8];
            file.read_exact(&mut l)?;
            Ok(Some((kind, 16, u64::from_be_bytes(l))))
        }
        n => Ok(Some((kind, 8, n))),
    }
}

fn read_body(file: &mut File, pos: u64, len: u64) -> std::io::Result<Option<Vec<u8>>> {
    if len > MAX_META_BOX {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(pos))?;
    let mut buf = vec![0u8; len as usize];
    file.read_exact(&mut buf)?;
    Ok(Some(buf))
}

/// Iterate over the boxes inside `data`: (type, body).
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let h = data.get(pos..pos + 8)?;
        let size = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let kind = [h[4], h[5], h[6], h[7]];
        let (header, size) = match size {
            0 => (8, data.len() - pos),
            1 => {
                let l = data.get(pos + 8..pos + 16)?;
                let l = u64::from_be_bytes([l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7]]);
                (16, usize::try_from(l).ok()?)
            }
            n => (8, n),
        };
        if size < header {
            return None;
        }
        let body = data.get(pos + header..pos.checked_add(size)?)?;
        pos += size;
        Some((kind, body))
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data).find(|(k, _)| k == kind).map(|(_, b)| b)
}

fn be_u32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be_u64(data: &[u8], at: usize) -> Option<u64> {
    let b = data.get(at..at + 8)?;
    Some(u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
}

fn be_u16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Tracks, and whether `mvex` says the file is fragmented.
fn parse_moov(moov: &[u8]) -> (Vec<Track>, bool) {
    let mut tracks: Vec<Track> = boxes(moov)
        .filter(|(k, _)| k == b"trak")
        .filter_map(|(_, trak)| parse_trak(trak))
        .collect();
    let mvex = child(moov, b"mvex");
    if let Some(mvex) = mvex {
        for (_, trex) in boxes(mvex).filter(|(k, _)| k == b"trex") {
            // version/flags, track_ID, default_sample_description_index, default_sample_duration
            if let (Some(id), Some(dur)) = (be_u32(trex, 4), be_u32(trex, 12))
                && let Some(t) = tracks.iter_mut().find(|t| t.id == id)
            {
                t.default_sample_duration = dur;
            }
        }
    }
    (tracks, mvex.is_some())
}

fn parse_trak(trak: &[u8]) -> Option<Track> {
    let tkhd = child(trak, b"tkhd")?;
    let id = if tkhd.first() == Some(&1) { be_u32(tkhd, 20)? } else { be_u32(tkhd, 12)? };
    let mdia = child(trak, b"mdia")?;
    let mdhd = child(mdia, b"mdhd")?;
    let (timescale, header_duration) = if mdhd.first() == Some(&1) {
        (be_u32(mdhd, 20)?, be_u64(mdhd, 24)?)
    } else {
        (be_u32(mdhd, 12)?, u64::from(be_u32(mdhd, 16)?))
    };
    let hdlr = child(mdia, b"hdlr")?;
    let kind = match hdlr.get(8..12) {
        Some(b"vide") => TrackKind::Video,
        Some(b"soun") => TrackKind::Audio,
        _ => TrackKind::Other,
    };
    let stsd = child(child(child(mdia, b"minf")?, b"stbl")?, b"stsd")?;
    // version/flags, entry_count, then the first sample entry box.
    let (fourcc, entry) = boxes(stsd.get(8..)?).next()?;
    let (width, height) = if kind == TrackKind::Video {
        // 6 reserved + 2 data reference index + 16 pre-defined/reserved, then width, height.
        (be_u16(entry, 24).map(u32::from), be_u16(entry, 26).map(u32::from))
    } else {
        (None, None)
    };
    let codec = match &fourcc {
        b"avc1" | b"avc3" => "h264".to_owned(),
        b"hvc1" | b"hev1" => "h265".to_owned(),
        b"mp4a" => "aac".to_owned(),
        // G.711 in QuickTime sample entries, named as ffmpeg names them.
        b"ulaw" => "pcm_mulaw".to_owned(),
        b"alaw" => "pcm_alaw".to_owned(),
        other => String::from_utf8_lossy(other).trim().to_ascii_lowercase(),
    };
    Some(Track {
        id,
        codec,
        width,
        height,
        timescale,
        header_duration,
        default_sample_duration: 0,
        kind,
    })
}

/// Summed sample durations per track id in one `moof`.
fn parse_moof(moof: &[u8], tracks: &[Track]) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    for (_, traf) in boxes(moof).filter(|(k, _)| k == b"traf") {
        let Some(tfhd) = child(traf, b"tfhd") else { continue };
        let Some(flags) = be_u32(tfhd, 0).map(|v| v & 0x00ff_ffff) else { continue };
        let Some(id) = be_u32(tfhd, 4) else { continue };
        let mut at = 8;
        if flags & 0x01 != 0 {
            at += 8; // base data offset
        }
        if flags & 0x02 != 0 {
            at += 4; // sample description index
        }
        let default_duration = if flags & 0x08 != 0 {
            be_u32(tfhd, at)
        } else {
            tracks.iter().find(|t| t.id == id).map(|t| t.default_sample_duration)
        }
        .unwrap_or(0);
        let mut total = 0u64;
        for (_, trun) in boxes(traf).filter(|(k, _)| k == b"trun") {
            total += trun_duration(trun, default_duration).unwrap_or(0);
        }
        out.push((id, total));
    }
    out
}

fn trun_duration(trun: &[u8], default_duration: u32) -> Option<u64> {
    let flags = be_u32(trun, 0)? & 0x00ff_ffff;
    let count = be_u32(trun, 4)? as usize;
    let mut at = 8;
    if flags & 0x001 != 0 {
        at += 4; // data offset
    }
    if flags & 0x004 != 0 {
        at += 4; // first sample flags
    }
    let has_duration = flags & 0x100 != 0;
    if !has_duration {
        return Some(count as u64 * u64::from(default_duration));
    }
    let per_sample = [0x100, 0x200, 0x400, 0x800].iter().filter(|f| flags & **f != 0).count() * 4;
    let mut total = 0u64;
    for i in 0..count {
        total += u64::from(be_u32(trun, at + i * per_sample)?);
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn full(kind: &[u8; 4], flags: u32, body: &[u8]) -> Vec<u8> {
        let mut b = flags.to_be_bytes().to_vec();
        b.extend_from_slice(body);
        bx(kind, &b)
    }

    /// A minimal fragmented file: one 1280x720 avc1 track at timescale 90000, `n` fragments of
    /// 15 samples of 6000 units (1 s each), optionally finalised.
    fn fragmented(n: usize, finalised: bool) -> Vec<u8> {
        let mut tkhd = vec![0u8; 8];
        tkhd.extend_from_slice(&1u32.to_be_bytes());
        tkhd.extend_from_slice(&[0u8; 60]);
        let mut mdhd = vec![0u8; 8];
        mdhd.extend_from_slice(&90_000u32.to_be_bytes());
        mdhd.extend_from_slice(&0u32.to_be_bytes());
        mdhd.extend_from_slice(&[0u8; 4]);
        let mut hdlr = vec![0u8; 4];
        hdlr.extend_from_slice(b"vide");
        hdlr.extend_from_slice(&[0u8; 13]);
        let mut entry = vec![0u8; 24];
        entry.extend_from_slice(&1280u16.to_be_bytes());
        entry.extend_from_slice(&720u16.to_be_bytes());
        entry.extend_from_slice(&[0u8; 50]);
        let mut stsd_body = 1u32.to_be_bytes().to_vec();
        stsd_body.extend(bx(b"avc1", &entry));
        let stbl = bx(b"stbl", &full(b"stsd", 0, &stsd_body));
        let minf = bx(b"minf", &stbl);
        let mut mdia_body = full(b"mdhd", 0, &mdhd);
        mdia_body.extend(full(b"hdlr", 0, &hdlr));
        mdia_body.extend(minf);
        let mut trak_body = full(b"tkhd", 0, &tkhd);
        trak_body.extend(bx(b"mdia", &mdia_body));
        let mut trex = 1u32.to_be_bytes().to_vec();
        trex.extend_from_slice(&1u32.to_be_bytes());
        trex.extend_from_slice(&6000u32.to_be_bytes());
        trex.extend_from_slice(&[0u8; 8]);
        let mut moov_body = bx(b"trak", &trak_body);
        moov_body.extend(bx(b"mvex", &full(b"trex", 0, &trex)));
        let mut file = bx(b"ftyp", b"iso6mp41");
        file.extend(bx(b"moov", &moov_body));
        for _ in 0..n {
            let tfhd = full(b"tfhd", 0, &1u32.to_be_bytes());
            let mut trun = 15u32.to_be_bytes().to_vec();
            trun.extend_from_slice(&[0u8; 4]);
            let trun = full(b"trun", 0x001, &trun);
            let mut traf = tfhd;
            traf.extend(trun);
            file.extend(bx(b"moof", &bx(b"traf", &traf)));
            file.extend(bx(b"mdat", &[7u8; 1000]));
        }
        if finalised {
            file.extend(bx(b"mfra", &[0u8; 8]));
        }
        file
    }

    fn write(dir: &tempfile::TempDir, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.path().join("x.mp4");
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn a_finalised_fragmented_file_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = fragmented(3, true);
        let info = inspect(&write(&dir, &bytes)).unwrap();
        assert!(info.is_complete(), "{info:?}");
        assert_eq!(info.fragments, 3);
        assert_eq!(info.duration_ns, 3_000_000_000);
        let video = info.video.unwrap();
        assert_eq!(
            (video.codec.as_str(), video.width, video.height),
            ("h264", Some(1280), Some(720))
        );
        assert_eq!(info.trailing_bytes, 0);
    }

    #[test]
    fn a_truncated_file_reports_its_last_complete_fragment() {
        let dir = tempfile::tempdir().unwrap();
        let whole = fragmented(3, false);
        let two = fragmented(2, false).len() as u64;
        for cut in [whole.len() - 1, whole.len() - 900, whole.len() - 1010, two as usize + 3] {
            let path = write(&dir, &whole[..cut]);
            let info = inspect(&path).unwrap();
            assert!(!info.is_complete(), "cut at {cut}");
            assert_eq!(info.fragments, 2, "cut at {cut}");
            assert_eq!(info.valid_len, two, "cut at {cut}");
            assert!(info.trailing_bytes > 0);
            truncate(&path, info.valid_len).unwrap();
            let again = inspect(&path).unwrap();
            assert_eq!((again.trailing_bytes, again.fragments), (0, 2));
            assert_eq!(again.duration_ns, 2_000_000_000);
        }
        // Whole fragments but no mfra: valid, not finalised.
        let info = inspect(&write(&dir, &whole)).unwrap();
        assert_eq!(
            (info.trailing_bytes, info.finalised, info.valid_len),
            (0, false, whole.len() as u64)
        );
    }

    #[test]
    fn garbage_and_headers_only_are_not_playable() {
        let dir = tempfile::tempdir().unwrap();
        for bytes in [vec![], vec![0u8; 5], vec![0xffu8; 4096], fragmented(0, false)] {
            let info = inspect(&write(&dir, &bytes)).unwrap();
            assert!(!info.is_complete());
            assert_eq!(info.valid_len, 0, "{info:?}");
        }
    }
}
