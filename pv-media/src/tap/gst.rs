//! GStreamer on either side of the tap: caps and buffers from the recorder's parsers become
//! [`VideoParams`] / [`AudioParams`] and [`AccessUnit`]s (the buffer is wrapped, not copied),
//! and GStreamer consumers (snapshots, RTMP pushes) turn them back into caps and buffers.
//! Nothing here is public: the tap's API carries no GStreamer type.

use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;

use super::{AccessUnit, AudioCodec, AudioParams, StreamTap, Track, VideoCodec, VideoParams};

/// The codec of video caps, if it is one the tap carries.
pub(crate) fn video_codec(caps: &gst::CapsRef) -> Option<VideoCodec> {
    match caps.structure(0)?.name().as_str() {
        "video/x-h264" => Some(VideoCodec::H264),
        "video/x-h265" => Some(VideoCodec::H265),
        _ => None,
    }
}

/// Width and height of video caps.
pub(crate) fn caps_dimensions(caps: &gst::CapsRef) -> Option<(u32, u32)> {
    let st = caps.structure(0)?;
    let w = st.get::<i32>("width").ok()?;
    let h = st.get::<i32>("height").ok()?;
    Some((u32::try_from(w).ok()?, u32::try_from(h).ok()?))
}

fn codec_data(st: &gst::StructureRef) -> Option<Bytes> {
    let buffer = st.get::<gst::Buffer>("codec_data").ok()?;
    let map = buffer.into_mapped_buffer_readable().ok()?;
    Some(Bytes::from_owner(map))
}

/// The video track described by parser caps (`avc` / `hvc1` with `codec_data`).
pub(crate) fn video_params(caps: &gst::CapsRef) -> Option<VideoParams> {
    let codec = video_codec(caps)?;
    let st = caps.structure(0)?;
    let (width, height) = caps_dimensions(caps)?;
    let framerate = st.get::<gst::Fraction>("framerate").ok().and_then(|f| {
        Some((u32::try_from(f.numer()).ok()?, u32::try_from(f.denom()).ok().filter(|d| *d > 0)?))
    });
    Some(VideoParams { codec, codec_data: codec_data(st)?, width, height, framerate })
}

/// The audio track described by AAC parser caps (`stream-format=raw` with `codec_data`).
pub(crate) fn audio_params(caps: &gst::CapsRef) -> Option<AudioParams> {
    let st = caps.structure(0)?;
    if st.name() != "audio/mpeg" || st.get::<i32>("mpegversion").ok()? != 4 {
        return None;
    }
    Some(AudioParams {
        codec: AudioCodec::Aac,
        codec_data: codec_data(st)?,
        sample_rate: u32::try_from(st.get::<i32>("rate").ok()?).ok()?,
        channels: u32::try_from(st.get::<i32>("channels").ok()?).ok()?,
    })
}

fn to_duration(t: Option<gst::ClockTime>) -> Option<Duration> {
    t.map(|t| Duration::from_nanos(t.nseconds()))
}

fn to_clock(d: Option<Duration>) -> Option<gst::ClockTime> {
    d.map(|d| gst::ClockTime::from_nseconds(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
}

/// A unit wrapping `buffer` (no copy: the bytes own the mapped buffer).
pub(crate) fn unit_from_buffer(track: Track, buffer: gst::Buffer) -> AccessUnit {
    let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
    let (pts, dts, duration) =
        (to_duration(buffer.pts()), to_duration(buffer.dts()), to_duration(buffer.duration()));
    let data = match buffer.into_mapped_buffer_readable() {
        Ok(map) => Bytes::from_owner(map),
        Err(_) => Bytes::new(),
    };
    AccessUnit::new(track, data, pts, dts, duration, key)
}

/// Caps a parser would give for the video track.
pub(crate) fn video_caps(params: &VideoParams) -> gst::Caps {
    let (name, format) = match params.codec {
        VideoCodec::H264 => ("video/x-h264", "avc"),
        VideoCodec::H265 => ("video/x-h265", "hvc1"),
    };
    let mut caps = gst::Caps::builder(name)
        .field("stream-format", format)
        .field("alignment", "au")
        .field("codec_data", gst::Buffer::from_slice(params.codec_data.clone()))
        .field("width", i32::try_from(params.width).unwrap_or(i32::MAX))
        .field("height", i32::try_from(params.height).unwrap_or(i32::MAX));
    if let Some((n, d)) = params.framerate {
        let n = i32::try_from(n).unwrap_or(0);
        let d = i32::try_from(d).unwrap_or(1).max(1);
        caps = caps.field("framerate", gst::Fraction::new(n, d));
    }
    caps.build()
}

/// Caps an AAC parser would give for the audio track.
pub(crate) fn audio_caps(params: &AudioParams) -> gst::Caps {
    gst::Caps::builder("audio/mpeg")
        .field("mpegversion", 4i32)
        .field("stream-format", "raw")
        .field("framed", true)
        .field("codec_data", gst::Buffer::from_slice(params.codec_data.clone()))
        .field("rate", i32::try_from(params.sample_rate).unwrap_or(i32::MAX))
        .field("channels", i32::try_from(params.channels).unwrap_or(i32::MAX))
        .build()
}

/// A buffer carrying the unit's bytes (no copy) and time stamps.
pub(crate) fn buffer_of(unit: &AccessUnit) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_slice(unit.data.clone());
    if let Some(b) = buffer.get_mut() {
        b.set_pts(to_clock(unit.pts));
        b.set_dts(to_clock(unit.dts));
        b.set_duration(to_clock(unit.duration));
        if unit.track == Track::Video && !unit.key {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
    }
    buffer
}

impl StreamTap {
    /// A track's caps are known or changed (from a parser's caps event); caps the tap cannot
    /// describe (no `codec_data` yet) are ignored.
    pub(crate) fn set_gst_caps(&self, track: Track, caps: &gst::CapsRef) {
        match track {
            Track::Video => {
                if let Some(p) = video_params(caps) {
                    self.set_video(p);
                }
            }
            Track::Audio => {
                if let Some(p) = audio_params(caps) {
                    self.set_audio(p);
                }
            }
        }
    }

    /// An access unit left the parser.
    pub(crate) fn publish_gst(&self, track: Track, buffer: gst::Buffer) {
        self.publish(unit_from_buffer(track, buffer));
    }
}
