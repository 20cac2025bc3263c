//! G.711 audio turned into AAC for recordings.
//!
//! Hikvision, Dahua and Reolink cameras often send G.711 (µ-law or A-law, 8 kHz mono). MP4 can
//! carry it only in QuickTime `ulaw`/`alaw` sample entries, which browsers refuse: Chromium's
//! Media Source rejects the whole file, video included, so such recordings would not play on
//! the recordings page, and live MSE viewers and RTMP pushes cannot carry it either. So the
//! built-in recorder does what Frigate's recording presets do: video is never touched, and the
//! audio alone is decoded and encoded to AAC-LC (`mulawdec`/`alawdec` → `avenc_aac`, 32 kbit/s
//! at the camera's rate) through a small GStreamer pipeline, inline on the recorder's thread.
//! 8 kHz mono costs little next to the video (see the `record_cpu` figures in the docs); the
//! sound is already narrow-band, so nothing audible is lost. When the AAC encoder is missing
//! the audio is left out, as GStreamer's recorder does.

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::tap::{AccessUnit, AudioCodec, AudioParams, Track};

/// Encoded AAC audio leaving the transcoder.
pub(crate) enum AacOut {
    /// The AAC track's parameters, when the encoder's differ from [`AacTranscoder::params`].
    Params(AudioParams),
    /// One AAC frame.
    Unit(AccessUnit),
}

/// The AudioSpecificConfig of AAC-LC at `rate` with `channels` (ISO 14496-3 1.6.2.1) as
/// ffmpeg's encoder writes it: with the sync extension that says "no SBR" (0x2b7, SBR, 0), so
/// decoders need not guess. None for a rate AAC has no index for.
fn aac_lc_config(rate: u32, channels: u32) -> Option<[u8; 5]> {
    const RATES: [u32; 13] =
        [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
    let index = RATES.iter().position(|r| *r == rate)? as u16;
    let channels = u16::try_from(channels).ok().filter(|c| (1..=7).contains(c))?;
    let [a, b] = ((2u16 << 11) | (index << 7) | (channels << 3)).to_be_bytes();
    Some([a, b, 0x56, 0xe5, 0x00])
}

/// One camera's G.711 → AAC pipeline.
pub(crate) struct AacTranscoder {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
    params: AudioParams,
}

impl AacTranscoder {
    /// A transcoder for `input` (G.711); Err when it is not G.711 or GStreamer lacks an
    /// element.
    pub(crate) fn new(input: &AudioParams) -> Result<AacTranscoder, String> {
        let rate = input.sample_rate.max(1);
        let channels = input.channels.max(1);
        let config = aac_lc_config(rate, channels)
            .ok_or_else(|| format!("AAC has no {rate} Hz {channels}-channel configuration"))?;
        let (caps, decoder) = match input.codec {
            AudioCodec::Pcmu => ("audio/x-mulaw", "mulawdec"),
            AudioCodec::Pcma => ("audio/x-alaw", "alawdec"),
            _ => return Err("only G.711 audio is transcoded".into()),
        };
        crate::init().map_err(|e| e.to_string())?;
        let launch = format!(
            "appsrc name=src format=time caps={caps},rate={},channels={} ! {decoder} ! \
             audioconvert ! audio/x-raw,rate={rate},channels={channels} ! \
             avenc_aac bitrate=32000 ! aacparse ! audio/mpeg,mpegversion=4,stream-format=raw ! \
             appsink name=sink sync=false",
            input.sample_rate.max(1),
            input.channels.max(1),
        );
        let pipeline = gst::parse::launch(&launch)
            .map_err(|e| format!("no AAC encoder for G.711 audio: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "the audio transcoder is not a pipeline".to_owned())?;
        let src = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or("the audio transcoder has no source")?;
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or("the audio transcoder has no sink")?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("the audio transcoder did not start: {e}"))?;
        let params = AudioParams {
            codec: AudioCodec::Aac,
            codec_data: bytes::Bytes::copy_from_slice(&config),
            sample_rate: rate,
            channels,
        };
        Ok(AacTranscoder { pipeline, src, sink, params })
    }

    /// The AAC track the transcoder produces (known before the first frame, so a segment
    /// opened at once has its audio track).
    pub(crate) fn params(&self) -> &AudioParams {
        &self.params
    }

    /// Feed one G.711 unit; returns the AAC that is ready (encoders work in 1024-sample
    /// frames, so output lags input by a frame or two).
    pub(crate) fn push(&mut self, unit: &AccessUnit) -> Vec<AacOut> {
        let mut buffer = gst::Buffer::from_slice(unit.data().clone());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(unit.pts().map(clock_time));
            b.set_duration(unit.duration().map(clock_time));
        }
        if let Err(e) = self.src.push_buffer(buffer) {
            tracing::debug!(error = ?e, "audio transcoder refused a buffer");
        }
        self.ready()
    }

    fn ready(&mut self) -> Vec<AacOut> {
        let mut out = Vec::new();
        while let Some(sample) = self.sink.try_pull_sample(gst::ClockTime::ZERO) {
            if let Some(params) = sample.caps().and_then(crate::tap::gst::audio_params)
                && params != self.params
            {
                tracing::debug!(?params, "the AAC encoder chose other parameters");
                out.push(AacOut::Params(params.clone()));
                self.params = params;
            }
            let Some(buffer) = sample.buffer_owned() else { continue };
            let pts = buffer.pts().map(|t| Duration::from_nanos(t.nseconds()));
            let duration = buffer.duration().map(|t| Duration::from_nanos(t.nseconds()));
            let Ok(map) = buffer.into_mapped_buffer_readable() else { continue };
            let data = bytes::Bytes::from_owner(map);
            out.push(AacOut::Unit(AccessUnit::new(Track::Audio, data, pts, pts, duration, false)));
        }
        out
    }
}

impl Drop for AacTranscoder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn clock_time(d: Duration) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn aac_lc_configs_match_the_standard_tables() {
        // 8 kHz mono (index 11) and 48 kHz stereo (index 3), as ffmpeg writes them.
        assert_eq!(aac_lc_config(8000, 1), Some([0x15, 0x88, 0x56, 0xe5, 0x00]));
        assert_eq!(aac_lc_config(48000, 2), Some([0x11, 0x90, 0x56, 0xe5, 0x00]));
        assert_eq!(aac_lc_config(8001, 1), None);
        assert_eq!(aac_lc_config(8000, 0), None);
    }

    #[test]
    fn g711_becomes_aac_with_the_announced_parameters() {
        let input = AudioParams {
            codec: AudioCodec::Pcmu,
            codec_data: bytes::Bytes::new(),
            sample_rate: 8000,
            channels: 1,
        };
        let Ok(mut t) = AacTranscoder::new(&input) else {
            // No AAC encoder here: the recorder leaves the audio out (checked elsewhere).
            return;
        };
        let announced = t.params().clone();
        let mut frames = Vec::new();
        let mut changed = false;
        // Two seconds of 20 ms packets of silence (µ-law 0xff).
        for i in 0..100u64 {
            let pts = Duration::from_millis(20 * i);
            let unit = AccessUnit::new(
                Track::Audio,
                bytes::Bytes::from(vec![0xffu8; 160]),
                Some(pts),
                Some(pts),
                Some(Duration::from_millis(20)),
                false,
            );
            for out in t.push(&unit) {
                match out {
                    AacOut::Params(p) => {
                        eprintln!(
                            "encoder: {:02x?} announced {:02x?}",
                            p.codec_data.as_ref(),
                            announced.codec_data.as_ref()
                        );
                        changed = true;
                    }
                    AacOut::Unit(u) => frames.push(u),
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(!changed, "the encoder keeps the announced parameters");
        assert_eq!(announced.codec, AudioCodec::Aac);
        // 2 s at 8 kHz is 15.6 frames of 1024 samples; the encoder holds one or two back.
        assert!((10..=16).contains(&frames.len()), "{} AAC frames", frames.len());
        let pts: Vec<Duration> = frames.iter().filter_map(AccessUnit::pts).collect();
        assert!(pts.windows(2).all(|w| w[1] > w[0]), "{pts:?}");
    }
}
