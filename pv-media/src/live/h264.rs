//! H.264 as WebRTC needs it: the decoder configuration record read, access units turned from
//! length-prefixed NAL units (as the tap carries them) into Annex B with the parameter sets in
//! front of every IDR frame, the profile-level-id to answer with, and B-frame detection.

use bytes::Bytes;

/// An AVCDecoderConfigurationRecord (`avcC`), the parts a sender needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// Bytes of each NAL unit's length prefix in access units (1, 2 or 4).
    pub nal_length_size: usize,
    /// Sequence parameter sets.
    pub sps: Vec<Bytes>,
    /// Picture parameter sets.
    pub pps: Vec<Bytes>,
    /// profile_idc, the constraint flags and level_idc, as in SDP's `profile-level-id`.
    pub profile_level_id: u32,
}

impl AvcConfig {
    /// Read an `avcC` record; None when it is not one.
    pub fn parse(data: &[u8]) -> Option<AvcConfig> {
        if data.len() < 7 || data[0] != 1 {
            return None;
        }
        let profile_level_id =
            (u32::from(data[1]) << 16) | (u32::from(data[2]) << 8) | u32::from(data[3]);
        let nal_length_size = usize::from(data[4] & 0x03) + 1;
        if nal_length_size == 3 {
            return None;
        }
        let mut at = 5;
        let sets = |count_mask: u8, at: &mut usize| -> Option<Vec<Bytes>> {
            let count = usize::from(*data.get(*at)? & count_mask);
            *at += 1;
            let mut out = Vec::with_capacity(count);
            for _ in 0..count {
                let len = usize::from(u16::from_be_bytes([*data.get(*at)?, *data.get(*at + 1)?]));
                *at += 2;
                out.push(Bytes::copy_from_slice(data.get(*at..*at + len)?));
                *at += len;
            }
            Some(out)
        };
        let sps = sets(0x1f, &mut at)?;
        let pps = sets(0xff, &mut at)?;
        if sps.is_empty() || pps.is_empty() {
            return None;
        }
        Some(AvcConfig { nal_length_size, sps, pps, profile_level_id })
    }

    /// The profile-level-id to answer with: the camera's profile in the canonical form browsers
    /// offer (constrained baseline `42e0`, main `4d00`, high `6400`), the camera's level.
    pub fn answer_profile_level_id(&self) -> u32 {
        (profile_class(self.profile_level_id) << 8) | (self.profile_level_id & 0xff)
    }

    /// A human name of the profile (for messages).
    pub fn profile_name(&self) -> &'static str {
        match (self.profile_level_id >> 16) as u8 {
            0x42 => "baseline",
            0x4d => "main",
            0x58 => "extended",
            0x64 => "high",
            0x6e => "high 10",
            0x7a => "high 4:2:2",
            0xf4 => "high 4:4:4",
            _ => "unknown",
        }
    }
}

/// The profile class of a profile-level-id, canonical (level dropped): constrained baseline
/// `0x42e0`, baseline `0x4200`, main `0x4d00`, high `0x6400`; others as they are.
pub fn profile_class(plid: u32) -> u32 {
    let profile = (plid >> 16) & 0xff;
    let constraints = (plid >> 8) & 0xff;
    match profile {
        // constraint_set1 makes baseline constrained baseline.
        0x42 if constraints & 0x40 != 0 => 0x42e0,
        0x42 => 0x4200,
        0x4d => 0x4d00,
        0x64 => 0x6400,
        _ => plid >> 8,
    }
}

/// The H.264 profile-level-id to answer `offer` (SDP) with for a camera whose profile is
/// `camera`: the camera's when the offer has that profile class with packetization-mode 1;
/// else the first the offer has of main, constrained baseline, baseline (as offered); None
/// when it has no H.264 with packetization-mode 1.
pub fn choose_profile(offer: &str, camera: u32) -> Option<u32> {
    let h264_pts: Vec<&str> = offer
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=rtpmap:"))
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, codec)| codec.to_ascii_uppercase().starts_with("H264/"))
        .map(|(pt, _)| pt)
        .collect();
    let offered: Vec<u32> = offer
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=fmtp:"))
        .filter_map(|l| l.split_once(' '))
        .filter(|(pt, _)| h264_pts.contains(pt))
        .filter_map(|(_, params)| {
            let mut plid = None;
            let mut mode1 = false;
            for p in params.split(';').map(str::trim) {
                match p.split_once('=') {
                    Some(("profile-level-id", v)) => plid = u32::from_str_radix(v, 16).ok(),
                    Some(("packetization-mode", v)) => mode1 = v == "1",
                    _ => {}
                }
            }
            plid.filter(|_| mode1)
        })
        .collect();
    if offered.iter().any(|o| profile_class(*o) == profile_class(camera)) {
        return Some(camera);
    }
    [0x4d00, 0x42e0, 0x4200]
        .iter()
        .find_map(|class| offered.iter().copied().find(|o| profile_class(*o) == *class))
}

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// The NAL units of a length-prefixed access unit; stops at the first malformed length.
pub fn nal_units(unit: &[u8], nal_length_size: usize) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let header = unit.get(at..at + nal_length_size)?;
        let len = header.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        let nal = unit.get(at + nal_length_size..at + nal_length_size + len)?;
        at += nal_length_size + len;
        Some(nal)
    })
}

/// The access unit in Annex B form. A key frame gets the configuration's SPS and PPS in front
/// (in-band parameter sets and access unit delimiters are dropped, so they are never sent
/// twice or stale).
pub fn to_annex_b(unit: &[u8], config: &AvcConfig, key: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(unit.len() + 64);
    if key {
        for ps in config.sps.iter().chain(&config.pps) {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(ps);
        }
    }
    for nal in nal_units(unit, config.nal_length_size) {
        let kind = nal.first().map_or(0, |h| h & 0x1f);
        if matches!(kind, 7..=9) {
            continue;
        }
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(nal);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn avcc() -> Vec<u8> {
        // High profile level 4.0, 4-byte lengths, one SPS, one PPS.
        let sps = [0x67, 0x64, 0x00, 0x28, 0xac];
        let pps = [0x68, 0xee, 0x3c, 0x80];
        let mut v = vec![1, 0x64, 0x00, 0x28, 0xff, 0xe1, 0, sps.len() as u8];
        v.extend_from_slice(&sps);
        v.extend_from_slice(&[1, 0, pps.len() as u8]);
        v.extend_from_slice(&pps);
        v
    }

    #[test]
    fn the_record_is_read_and_the_profile_answered_canonically() {
        let c = AvcConfig::parse(&avcc()).unwrap();
        assert_eq!(c.nal_length_size, 4);
        assert_eq!(c.profile_level_id, 0x640028);
        assert_eq!(c.answer_profile_level_id(), 0x640028);
        assert_eq!(c.profile_name(), "high");
        let mut main = avcc();
        main[1] = 0x4d;
        main[2] = 0x40;
        assert_eq!(AvcConfig::parse(&main).unwrap().answer_profile_level_id(), 0x4d0028);
        assert!(AvcConfig::parse(&[1, 2, 3]).is_none());
        assert!(AvcConfig::parse(&avcc()[..10]).is_none(), "a cut record is refused");
    }

    #[test]
    fn the_answer_profile_is_the_cameras_or_the_closest_offered() {
        let offer = |fmtps: &[(&str, &str)]| {
            let mut o = String::from("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97 98\r\n");
            for (pt, params) in fmtps {
                o += &format!("a=rtpmap:{pt} H264/90000\r\na=fmtp:{pt} {params}\r\n");
            }
            o
        };
        // Debian's Chromium: no high.
        let chromium = offer(&[
            ("96", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"),
            ("97", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
            ("98", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"),
        ]);
        assert_eq!(choose_profile(&chromium, 0x640028), Some(0x4d001f), "high → main");
        assert_eq!(choose_profile(&chromium, 0x42e01f), Some(0x42e01f), "own class");
        assert_eq!(choose_profile(&chromium, 0x4d0029), Some(0x4d0029), "own class, own level");
        let with_high = offer(&[("100", "packetization-mode=1;profile-level-id=64001f")]);
        assert_eq!(choose_profile(&with_high, 0x640028), Some(0x640028));
        let mode0 = offer(&[("96", "packetization-mode=0;profile-level-id=42e01f")]);
        assert_eq!(choose_profile(&mode0, 0x42e01f), None, "mode 0 only");
        assert_eq!(
            choose_profile("v=0\r\nm=video 9 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n", 0x42e01f),
            None
        );
        assert_eq!(profile_class(0x42c01f), 0x42e0, "x264's constrained baseline");
    }

    #[test]
    fn a_key_frame_gets_its_parameter_sets_and_loses_in_band_ones() {
        let c = AvcConfig::parse(&avcc()).unwrap();
        // AUD, an in-band SPS, then an IDR slice.
        let unit = [0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 2, 0x67, 0x00, 0, 0, 0, 3, 0x65, 0x88, 0x84];
        let out = to_annex_b(&unit, &c, true);
        let expected: Vec<u8> = [
            &[0, 0, 0, 1][..],
            &[0x67, 0x64, 0x00, 0x28, 0xac],
            &[0, 0, 0, 1],
            &[0x68, 0xee, 0x3c, 0x80],
            &[0, 0, 0, 1],
            &[0x65, 0x88, 0x84],
        ]
        .concat();
        assert_eq!(out, expected);
        let p = [0, 0, 0, 2, 0x41, 0x9a];
        assert_eq!(to_annex_b(&p, &c, false), [0, 0, 0, 1, 0x41, 0x9a]);
        // A length running past the end stops the unit there.
        assert_eq!(to_annex_b(&[0, 0, 0, 9, 0x41], &c, false), Vec::<u8>::new());
    }
}
