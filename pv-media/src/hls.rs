//! HLS from a tap, for browsers with neither WebRTC that connects nor Media Source (iPhones
//! before iOS 17.1): a [`Segmenter`] cuts the tap's stream at key frames into fragmented-MP4
//! segments of at least [`SEGMENT_MIN`] and keeps the last [`WINDOW`] of them in memory with
//! their init segment; [`Segmenter::playlist`] is the live media playlist (HLS version 7,
//! `EXT-X-MAP`). Nothing is transcoded and nothing touches the disk.
//!
//! Latency is that of HLS: a player starts about three segments behind the live edge (about
//! 3 s with a 1 s GOP); the camera page prefers WebRTC, then MSE, and uses HLS only when both
//! are missing.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fmp4::{AudioTrack, Fmp4Codec, Muxer, VideoTrack};
use crate::tap::{AudioCodec, StreamTap, TapInfo, Timeline, Track, VideoCodec};

/// A segment ends at the first key frame at least this long after its start.
pub const SEGMENT_MIN: Duration = Duration::from_millis(900);
/// Segments kept (and listed in the playlist).
pub const WINDOW: usize = 6;

/// One finished segment.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Its media sequence number.
    pub sequence: u64,
    /// Its length.
    pub duration: Duration,
    /// moof+mdat pairs, one per frame.
    pub data: Arc<Vec<u8>>,
}

#[derive(Debug, Default)]
struct State {
    init: Option<Arc<Vec<u8>>>,
    /// The codecs string of the init segment.
    codecs: String,
    segments: VecDeque<Segment>,
    next_sequence: u64,
    /// A new init segment (the stream changed): the next segment carries a discontinuity.
    discontinuity_at: Option<u64>,
}

/// The segmenter of one tap; its task runs until [`Segmenter::stop`] or the tap goes.
#[derive(Debug, Clone)]
pub struct Segmenter {
    state: Arc<Mutex<State>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Segmenter {
    /// Start cutting `tap` (on the current tokio runtime).
    pub fn start(tap: &StreamTap) -> Segmenter {
        let state = Arc::new(Mutex::new(State::default()));
        let task = tokio::spawn(run(tap.clone(), state.clone()));
        Segmenter { state, task: Arc::new(task) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stop cutting.
    pub fn stop(&self) {
        self.task.abort();
    }

    /// The init segment, once the stream is known.
    pub fn init(&self) -> Option<Arc<Vec<u8>>> {
        self.lock().init.clone()
    }

    /// A segment still in the window.
    pub fn segment(&self, sequence: u64) -> Option<Segment> {
        self.lock().segments.iter().find(|s| s.sequence == sequence).cloned()
    }

    /// Segments ready now.
    pub fn len(&self) -> usize {
        self.lock().segments.len()
    }

    /// Whether no segment is ready yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live media playlist; segment `N` is at `{prefix}N.m4s`, the init segment at
    /// `{prefix}init.mp4`. None until the first segment is finished.
    pub fn playlist(&self, prefix: &str) -> Option<String> {
        let state = self.lock();
        let first = state.segments.front()?;
        let target = state
            .segments
            .iter()
            .map(|s| s.duration.as_secs_f64().ceil() as u64)
            .max()
            .unwrap_or(1)
            .max(1);
        let mut out = String::new();
        let _ = writeln!(out, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}");
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", first.sequence);
        let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{prefix}init.mp4\"");
        for s in &state.segments {
            if state.discontinuity_at == Some(s.sequence) {
                let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
            }
            let _ = writeln!(
                out,
                "#EXTINF:{:.3},\n{prefix}{}.m4s",
                s.duration.as_secs_f64(),
                s.sequence
            );
        }
        Some(out)
    }

    /// The codecs string (for a multivariant playlist or a `type` attribute).
    pub fn codecs(&self) -> String {
        self.lock().codecs.clone()
    }
}

fn muxer(info: &TapInfo) -> Option<Muxer> {
    let v = info.video.as_ref()?;
    let codec = match v.codec {
        VideoCodec::H264 => Fmp4Codec::H264,
        VideoCodec::H265 => Fmp4Codec::H265,
    };
    let video =
        VideoTrack { codec, codec_data: v.codec_data.clone(), width: v.width, height: v.height };
    // HLS players take AAC only: G.711 audio is left out (its units then fail to mux and are
    // skipped below).
    let aac = info.audio.as_ref().filter(|a| match a.codec {
        AudioCodec::Aac => true,
        AudioCodec::Pcmu | AudioCodec::Pcma => false,
    });
    let audio = aac.map(|a| AudioTrack {
        codec_data: a.codec_data.clone(),
        sample_rate: a.sample_rate,
        channels: u16::try_from(a.channels).unwrap_or(2),
    });
    Muxer::new(video, audio).ok()
}

fn ticks(d: Duration, rate: u32) -> u64 {
    (d.as_nanos() * u128::from(rate) / 1_000_000_000) as u64
}

async fn run(tap: StreamTap, state: Arc<Mutex<State>>) {
    let mut sub = tap.subscribe();
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    'generation: loop {
        let info = sub.info().clone();
        let Some(mut mux) = muxer(&info) else {
            // Not streaming yet (or a codec MP4 cannot carry): wait for the next unit.
            if sub.recv().await.is_none() {
                return;
            }
            continue;
        };
        {
            let mut s = lock();
            let fresh = s.init.is_some();
            s.init = Some(Arc::new(mux.init_segment()));
            s.codecs = mux.codecs().to_owned();
            if fresh {
                s.discontinuity_at = Some(s.next_sequence);
            }
        }
        let rate = info.audio.as_ref().map_or(48_000, |a| a.sample_rate.max(1));
        // A camera that reconnects with the same tracks continues on the same timeline.
        let mut timeline = Timeline::new(Duration::from_millis(33));
        let mut current: Option<(Duration, Vec<u8>)> = None;
        loop {
            let Some(unit) = sub.recv().await else { return };
            if unit.generation() != info.generation
                && (sub.info().video != info.video || sub.info().audio != info.audio)
            {
                continue 'generation;
            }
            let Some(since) = timeline.place(&unit) else { continue };
            if unit.track() == Track::Video {
                if unit.is_key_frame()
                    && let Some((start, data)) =
                        current.take_if(|(start, _)| since >= *start + SEGMENT_MIN)
                {
                    let mut s = lock();
                    let sequence = s.next_sequence;
                    s.next_sequence += 1;
                    s.segments.push_back(Segment {
                        sequence,
                        duration: since - start,
                        data: Arc::new(data),
                    });
                    while s.segments.len() > WINDOW {
                        s.segments.pop_front();
                    }
                }
                if current.is_none() {
                    if !unit.is_key_frame() {
                        continue;
                    }
                    current = Some((since, Vec::new()));
                }
                let cts = unit.pts().zip(unit.dts()).map_or(0, |(p, d)| {
                    let diff = ticks(p.abs_diff(d), 90_000) as i64;
                    i32::try_from(if p >= d { diff } else { -diff }).unwrap_or(0)
                });
                let duration = unit
                    .duration()
                    .map(|d| ticks(d, 90_000))
                    .unwrap_or_else(|| ticks(timeline.frame_interval(), 90_000))
                    .clamp(1, 90_000) as u32;
                if let (Some((_, data)), Ok(frag)) = (
                    current.as_mut(),
                    mux.video_fragment(
                        unit.data(),
                        ticks(since, 90_000),
                        cts,
                        duration,
                        unit.is_key_frame(),
                    ),
                ) {
                    data.extend_from_slice(&frag);
                }
            } else if let Some((_, data)) = current.as_mut()
                && let Ok(frag) = mux.audio_fragment(unit.data(), ticks(since, rate), 1024)
            {
                data.extend_from_slice(&frag);
            }
        }
    }
}
