//! The on-disk ingest layout: which directory a camera's segments go to and what they are called.
//!
//! ```text
//! <ingest root>/cameras/mac-aa-bb-cc-dd-ee-ff/20261123T101500Z-42.mp4
//! <ingest root>/cameras/id-42/20261123T101500Z-42.mp4      (MAC address not known)
//! ```
//!
//! The directory follows the camera's MAC address when it is known, because that survives the
//! camera changing IP address or being deleted and re-added; otherwise it is the numeric camera
//! id. File names start with the segment's UTC start time in a fixed-width form, so sorting names
//! sorts segments by time, and end with the camera id, so the start-up recovery pass can rebuild
//! a `segments` row from a file the database does not know ([`parse_segment_file_name`]).
//!
//! Names have whole-second precision: the authoritative start time is the database row's. A
//! recorder must open segment files with `create_new` so two segments starting in the same second
//! cannot overwrite each other.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use pv_core::ids::CameraId;

use crate::{Error, Result};

/// The directory under the ingest root that holds every camera directory.
pub const CAMERAS_DIR: &str = "cameras";

/// The file extension of segment files (without the dot).
pub const SEGMENT_EXTENSION: &str = "mp4";

/// `strftime` form of the start time in a segment file name, e.g. `20261123T101500Z`.
const START_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// Length of a formatted start time.
const START_LEN: usize = 16;

/// A unicast Ethernet MAC address that can identify a camera.
///
/// Parsing accepts `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` (one separator throughout) and
/// `aabbccddeeff`, in any letter case, with surrounding whitespace ignored. The all-zero
/// address and group (multicast and broadcast) addresses are rejected: no camera interface has
/// one, so they would only merge unrelated cameras into one directory.
///
/// [`Display`](fmt::Display) gives the lowercase colon form stored in `cameras.mac_address`;
/// [`MacAddress::dashed`] gives the form used in directory names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddress([u8; 6]);

impl MacAddress {
    /// A MAC address from its six octets, validated as described on [`MacAddress`].
    pub fn from_octets(octets: [u8; 6]) -> Result<Self> {
        let reason = if octets == [0; 6] {
            Some("the all-zero address does not identify a device")
        } else if octets[0] & 0x01 != 0 {
            Some("a multicast or broadcast address does not identify a device")
        } else {
            None
        };
        match reason {
            Some(reason) => {
                Err(Error::InvalidMacAddress { value: Self(octets).to_string(), reason })
            }
            None => Ok(Self(octets)),
        }
    }

    /// The six octets.
    pub fn octets(self) -> [u8; 6] {
        self.0
    }

    /// The lowercase dash-separated form, `aa-bb-cc-dd-ee-ff` (safe in file names everywhere).
    pub fn dashed(self) -> String {
        self.join('-')
    }

    fn join(self, sep: char) -> String {
        let mut out = String::with_capacity(17);
        for (i, octet) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(sep);
            }
            out.push_str(&format!("{octet:02x}"));
        }
        out
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.join(':'))
    }
}

impl FromStr for MacAddress {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidMacAddress { value: s.to_owned(), reason };
        let text = s.trim();
        if !text.is_ascii() {
            return Err(invalid("only hexadecimal digits and ':' or '-' are allowed"));
        }
        let pairs: Vec<&str> = match text.len() {
            12 => (0..6).map(|i| &text[i * 2..i * 2 + 2]).collect(),
            17 => {
                let sep = match text.as_bytes()[2] {
                    b':' => ':',
                    b'-' => '-',
                    _ => return Err(invalid("octets must be separated by ':' or '-'")),
                };
                text.split(sep).collect()
            }
            _ => return Err(invalid("expected six two-digit hexadecimal octets")),
        };
        if pairs.len() != 6 || pairs.iter().any(|p| p.len() != 2) {
            return Err(invalid("expected six two-digit octets with one kind of separator"));
        }
        let mut octets = [0u8; 6];
        for (octet, pair) in octets.iter_mut().zip(&pairs) {
            if !pair.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid("octets must be hexadecimal"));
            }
            *octet =
                u8::from_str_radix(pair, 16).map_err(|_| invalid("octets must be hexadecimal"))?;
        }
        Self::from_octets(octets).map_err(|err| match err {
            Error::InvalidMacAddress { reason, .. } => invalid(reason),
            other => other,
        })
    }
}

/// A camera's ingest directory, relative to the ingest root: `cameras/mac-…` or `cameras/id-…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CameraDir {
    /// Keyed by the camera's MAC address (preferred: stable across IP changes and re-adding).
    Mac(MacAddress),
    /// Keyed by the numeric camera id (the MAC address is not known).
    Id(CameraId),
}

impl CameraDir {
    /// The directory for camera `id`: by `mac` when known, else by `id`. Fails if `id` is not
    /// positive (it is also written into every segment file name).
    pub fn new(id: CameraId, mac: Option<MacAddress>) -> Result<Self> {
        check_camera_id(id)?;
        Ok(match mac {
            Some(mac) => CameraDir::Mac(mac),
            None => CameraDir::Id(id),
        })
    }

    /// The directory's own name: `mac-aa-bb-cc-dd-ee-ff` or `id-42`.
    pub fn dir_name(&self) -> String {
        match self {
            CameraDir::Mac(mac) => format!("mac-{}", mac.dashed()),
            CameraDir::Id(id) => format!("id-{id}"),
        }
    }

    /// Parse a directory name made by [`CameraDir::dir_name`] (for the recovery pass). Only
    /// the exact form written is accepted, so every directory maps to one camera key.
    pub fn parse_dir_name(name: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidCameraDir { name: name.to_owned(), reason };
        let dir = if let Some(mac) = name.strip_prefix("mac-") {
            let mac: MacAddress = mac.parse().map_err(|_| invalid("not a valid MAC address"))?;
            CameraDir::Mac(mac)
        } else if let Some(id) = name.strip_prefix("id-") {
            let id = parse_camera_id(id).ok_or_else(|| invalid("not a positive camera id"))?;
            CameraDir::Id(id)
        } else {
            return Err(invalid("expected 'mac-…' or 'id-…'"));
        };
        if dir.dir_name() != name {
            return Err(invalid(
                "not in canonical form (lowercase, '-' separated, no leading zeros)",
            ));
        }
        Ok(dir)
    }

    /// The path relative to the ingest root, `cameras/<dir name>`.
    pub fn relative_path(&self) -> PathBuf {
        PathBuf::from(CAMERAS_DIR).join(self.dir_name())
    }
}

impl fmt::Display for CameraDir {
    /// The path relative to the ingest root with `/` separators.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{CAMERAS_DIR}/{}", self.dir_name())
    }
}

/// The file name of a segment of `camera` starting at `start`:
/// `YYYYMMDDTHHMMSSZ-<camera id>.mp4`. Sub-second precision is dropped.
pub fn segment_file_name(start: DateTime<Utc>, camera: CameraId) -> Result<String> {
    check_camera_id(camera)?;
    if !(0..=9999).contains(&start.year()) {
        return Err(Error::UnrepresentableTime(start));
    }
    Ok(format!("{}-{camera}.{SEGMENT_EXTENSION}", start.format(START_FORMAT)))
}

/// The path of a segment relative to the ingest root: `<camera dir>/<segment file name>`.
pub fn segment_path(dir: &CameraDir, start: DateTime<Utc>, camera: CameraId) -> Result<PathBuf> {
    Ok(dir.relative_path().join(segment_file_name(start, camera)?))
}

/// Parse a name made by [`segment_file_name`] back into the start time (whole seconds) and the
/// camera id. Anything else (temporary files, other extensions, non-canonical ids) is an error,
/// which the recovery pass reports and skips.
pub fn parse_segment_file_name(name: &str) -> Result<(DateTime<Utc>, CameraId)> {
    let invalid = |reason| Error::InvalidSegmentName { name: name.to_owned(), reason };
    let stem = name
        .strip_suffix(SEGMENT_EXTENSION)
        .and_then(|s| s.strip_suffix('.'))
        .ok_or_else(|| invalid("expected the .mp4 extension"))?;
    let (start, id) =
        stem.split_once('-').ok_or_else(|| invalid("expected '<start>-<camera id>'"))?;
    let start =
        parse_start(start).ok_or_else(|| invalid("start is not a valid YYYYMMDDTHHMMSSZ time"))?;
    let id = parse_camera_id(id)
        .ok_or_else(|| invalid("camera id is not a positive integer without leading zeros"))?;
    Ok((start, id))
}

fn parse_start(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() != START_LEN || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |from: usize, to: usize| -> Option<u32> {
        let part = b.get(from..to)?;
        part.iter()
            .try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    };
    let year = i32::try_from(digits(0, 4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, digits(4, 6)?, digits(6, 8)?)?;
    let time = NaiveTime::from_hms_opt(digits(9, 11)?, digits(11, 13)?, digits(13, 15)?)?;
    Some(NaiveDateTime::new(date, time).and_utc())
}

/// A positive decimal camera id without sign or leading zeros.
fn parse_camera_id(s: &str) -> Option<CameraId> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
    if !canonical {
        return None;
    }
    s.parse::<i64>().ok().map(CameraId)
}

fn check_camera_id(id: CameraId) -> Result<()> {
    if id.0 > 0 { Ok(()) } else { Err(Error::InvalidCameraId(id)) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn mac_addresses_are_normalised() {
        for text in
            ["AA:BB:CC:DD:EE:0F", "aa-bb-cc-dd-ee-0f", "AaBbCcDdEe0f", "  aa:bb:cc:dd:ee:0f\n"]
        {
            let mac: MacAddress = text.parse().unwrap();
            assert_eq!(mac.octets(), [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f], "{text:?}");
            assert_eq!(mac.dashed(), "aa-bb-cc-dd-ee-0f");
            assert_eq!(mac.to_string(), "aa:bb:cc:dd:ee:0f");
        }
    }

    #[test]
    fn bad_mac_addresses_are_rejected() {
        for text in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb-cc:dd:ee:0f", // mixed separators
            "aa.bb.cc.dd.ee.0f", // unsupported separator
            "aa:bb:cc:dd:e:0ff", // misplaced separator
            "gg:bb:cc:dd:ee:0f", // not hex
            "+a:bb:cc:dd:ee:0f", // from_str_radix would take the sign
            "aabbccddeé",        // 12 bytes, not ASCII: must not panic on slicing
            "00:00:00:00:00:00", // all-zero
            "ff:ff:ff:ff:ff:ff", // broadcast
            "01:00:5e:00:00:01", // multicast
        ] {
            let err = text.parse::<MacAddress>().unwrap_err();
            assert!(
                matches!(err, Error::InvalidMacAddress { ref value, .. } if value == text),
                "{text:?}"
            );
            assert_eq!(err.kind(), pv_core::ErrorKind::InvalidInput);
        }
        assert!(MacAddress::from_octets([0x02, 0, 0, 0, 0, 1]).is_ok()); // locally administered
        assert!(MacAddress::from_octets([0x03, 0, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn camera_dir_prefers_the_mac_address() {
        let mac: MacAddress = "AA:BB:CC:DD:EE:0F".parse().unwrap();
        let by_mac = CameraDir::new(CameraId(42), Some(mac)).unwrap();
        assert_eq!(by_mac.to_string(), "cameras/mac-aa-bb-cc-dd-ee-0f");
        assert_eq!(by_mac.relative_path(), PathBuf::from("cameras").join("mac-aa-bb-cc-dd-ee-0f"));

        let by_id = CameraDir::new(CameraId(42), None).unwrap();
        assert_eq!(by_id.to_string(), "cameras/id-42");
        assert_eq!(by_id.dir_name(), "id-42");

        assert!(matches!(CameraDir::new(CameraId(0), None), Err(Error::InvalidCameraId(_))));
        assert!(matches!(CameraDir::new(CameraId(-5), Some(mac)), Err(Error::InvalidCameraId(_))));
    }

    #[test]
    fn camera_dir_names_parse_back_only_in_canonical_form() {
        let mac: MacAddress = "aa:bb:cc:dd:ee:0f".parse().unwrap();
        for dir in
            [CameraDir::Mac(mac), CameraDir::Id(CameraId(7)), CameraDir::Id(CameraId(i64::MAX))]
        {
            assert_eq!(CameraDir::parse_dir_name(&dir.dir_name()).unwrap(), dir);
        }
        for bad in [
            "mac-AA-BB-CC-DD-EE-0F",
            "mac-aa:bb:cc:dd:ee:0f",
            "mac-aabbccddee0f",
            "mac-00-00-00-00-00-00",
            "id-042",
            "id-0",
            "id--1",
            "id-",
            "id-99999999999999999999",
            "42",
            "lost+found",
        ] {
            assert!(
                matches!(CameraDir::parse_dir_name(bad), Err(Error::InvalidCameraDir { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn segment_file_names_are_fixed_width_utc() {
        let start = utc(2026, 1, 2, 3, 4, 5) + chrono::Duration::milliseconds(678);
        assert_eq!(segment_file_name(start, CameraId(42)).unwrap(), "20260102T030405Z-42.mp4");
        let dir = CameraDir::new(CameraId(42), None).unwrap();
        assert_eq!(
            segment_path(&dir, start, CameraId(42)).unwrap(),
            PathBuf::from("cameras/id-42/20260102T030405Z-42.mp4")
        );
    }

    #[test]
    fn segment_file_names_round_trip_to_whole_seconds() {
        let start = utc(2026, 11, 23, 23, 59, 59) + chrono::Duration::milliseconds(999);
        let name = segment_file_name(start, CameraId(9)).unwrap();
        let (parsed, id) = parse_segment_file_name(&name).unwrap();
        assert_eq!(parsed, utc(2026, 11, 23, 23, 59, 59));
        assert_eq!(id, CameraId(9));
        for start in
            [utc(1970, 1, 1, 0, 0, 0), utc(2024, 2, 29, 12, 0, 0), utc(9999, 12, 31, 23, 59, 59)]
        {
            let name = segment_file_name(start, CameraId(i64::MAX)).unwrap();
            assert_eq!(parse_segment_file_name(&name).unwrap(), (start, CameraId(i64::MAX)));
        }
    }

    #[test]
    fn sorting_names_sorts_by_start_time() {
        let starts = [
            utc(2026, 11, 23, 10, 0, 0),
            utc(2025, 12, 31, 23, 59, 59),
            utc(2026, 11, 23, 9, 59, 59),
            utc(2026, 1, 1, 0, 0, 0),
        ];
        // Ids of different widths must not disturb the order.
        let mut names: Vec<String> = starts
            .iter()
            .zip([5, 123_456, 42, 7])
            .map(|(s, id)| segment_file_name(*s, CameraId(id)).unwrap())
            .collect();
        names.sort();
        let parsed: Vec<DateTime<Utc>> =
            names.iter().map(|n| parse_segment_file_name(n).unwrap().0).collect();
        let mut expected = starts.to_vec();
        expected.sort();
        assert_eq!(parsed, expected);
    }

    #[test]
    fn unrepresentable_segments_are_errors() {
        let start = utc(2026, 1, 1, 0, 0, 0);
        assert!(matches!(segment_file_name(start, CameraId(0)), Err(Error::InvalidCameraId(_))));
        assert!(matches!(segment_file_name(start, CameraId(-3)), Err(Error::InvalidCameraId(_))));
        let far = utc(10_000, 1, 1, 0, 0, 0);
        assert!(matches!(segment_file_name(far, CameraId(1)), Err(Error::UnrepresentableTime(_))));
    }

    #[test]
    fn foreign_file_names_are_rejected() {
        for bad in [
            "",
            ".mp4",
            "20260102T030405Z-42.mkv",
            "20260102T030405Z-42.mp4.part",
            "20260102T030405Z-42mp4",
            "20260102T030405Z.mp4",
            "20260102T030405Z-.mp4",
            "20260102T030405Z-042.mp4",
            "20260102T030405Z-0.mp4",
            "20260102T030405Z--5.mp4",
            "20260102T030405Z-+5.mp4",
            "20260102T030405Z-99999999999999999999.mp4",
            "2026012T030405Z-42.mp4",
            "20260102 030405Z-42.mp4",
            "20260102T030405-42.mp4",
            "20261301T030405Z-42.mp4",  // month 13
            "20260230T030405Z-42.mp4",  // 30 February
            "20260102T240000Z-42.mp4",  // hour 24
            "20260102T235960Z-42.mp4",  // second 60
            "2026０102T030405Z-42.mp4", // non-ASCII digit must not panic
        ] {
            let err = parse_segment_file_name(bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidSegmentName { ref name, .. } if name == bad),
                "{bad:?}"
            );
        }
    }
}
